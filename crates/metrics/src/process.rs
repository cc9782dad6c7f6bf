//! Process-wide handles: replay memory, connections. Resolved once when the
//! registry is built; every method is an atomic operation on a handle.

use std::fmt;

use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};

use crate::names::{self, ConnectionDrop, Family};
use crate::registry::{int_counter_vec, register_error, registered, MetricsError};

/// The gateway's process-wide series (no `route` or `topic` label). Cloning
/// is cheap and clones report to the same series.
#[derive(Clone)]
pub struct ProcessMetrics {
    replay_bytes: IntGauge,
    replay_budget_evictions: IntCounter,
    open_connections: IntGauge,
    dropped_connections: [IntCounter; ConnectionDrop::ALL.len()],
}

// === impl ProcessMetrics ===

impl ProcessMetrics {
    pub(crate) fn register(registry: &Registry) -> Result<Self, MetricsError> {
        let dropped: IntCounterVec = int_counter_vec(registry, &names::DROPPED_CONNECTIONS)?;
        Ok(Self {
            replay_bytes: int_gauge(registry, &names::REPLAY_BYTES)?,
            replay_budget_evictions: int_counter(registry, &names::REPLAY_BUDGET_EVICTIONS)?,
            open_connections: int_gauge(registry, &names::OPEN_CONNECTIONS)?,
            dropped_connections: ConnectionDrop::ALL
                .map(|reason| dropped.with_label_values(&[reason.as_str()])),
        })
    }

    /// Replay rings now hold `delta` more (or, negative, fewer) frame bytes.
    pub fn replay_bytes_changed(&self, delta: i64) {
        self.replay_bytes.add(delta);
    }

    /// `frames` frames were dropped from, or never kept in, a replay ring
    /// because the process-wide replay budget was spent.
    pub fn replay_budget_evicted(&self, frames: u64) {
        self.replay_budget_evictions.inc_by(frames);
    }

    /// A client connection was accepted (`+1`) or closed (`-1`).
    pub fn connections_changed(&self, delta: i64) {
        self.open_connections.add(delta);
    }

    /// A client connection was closed before it was served.
    pub fn connection_dropped(&self, reason: ConnectionDrop) {
        self.dropped_connections[reason.index()].inc();
    }
}

impl fmt::Debug for ProcessMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessMetrics")
            .field("replay_bytes", &self.replay_bytes.get())
            .field("open_connections", &self.open_connections.get())
            .finish_non_exhaustive()
    }
}

fn int_gauge(registry: &Registry, family: &Family) -> Result<IntGauge, MetricsError> {
    debug_assert!(family.labels.is_empty());
    let gauge = IntGauge::with_opts(Opts::new(family.name, family.help))
        .map_err(|source| register_error(family, source))?;
    registered(registry, family, gauge)
}

fn int_counter(registry: &Registry, family: &Family) -> Result<IntCounter, MetricsError> {
    debug_assert!(family.labels.is_empty());
    let counter = IntCounter::with_opts(Opts::new(family.name, family.help))
        .map_err(|source| register_error(family, source))?;
    registered(registry, family, counter)
}
