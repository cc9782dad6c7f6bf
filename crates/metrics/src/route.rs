//! Per-route handles, resolved once per route.
//!
//! Routes come from the configuration, so their number is bounded and their
//! series live as long as the process: nothing here is ever removed.

use std::fmt;
use std::time::Duration;

use prometheus::local::LocalHistogram;
use prometheus::{Histogram, HistogramVec, IntCounter, IntCounterVec, Registry};

use crate::names::{self, RejectReason, StreamPath, UpstreamErrorKind};
use crate::registry::{histogram_vec, int_counter_vec, MetricsError, FANOUT_DELAY_BUCKETS};

/// The metrics of one route, resolved once (see
/// [`GatewayMetrics::route`](crate::GatewayMetrics::route)).
///
/// Every method is an atomic operation on a handle held here: no label
/// lookup, no lock. Cloning is cheap and clones report to the same series.
#[derive(Clone)]
pub struct RouteMetrics {
    route: Box<str>,
    heartbeats_sent: IntCounter,
    rejected: [IntCounter; RejectReason::ALL.len()],
    fanout_delay: Histogram,
    replay_misses: IntCounter,
    upstream_errors: [IntCounter; UpstreamErrorKind::ALL.len()],
    client_streams: [IntCounter; StreamPath::ALL.len()],
    sends: [IntCounter; StreamPath::ALL.len()],
}

/// The families with a `route` label and no `topic`.
#[derive(Clone)]
pub(crate) struct RouteFamilies {
    heartbeats_sent: IntCounterVec,
    rejected: IntCounterVec,
    fanout_delay: HistogramVec,
    replay_misses: IntCounterVec,
    upstream_errors: IntCounterVec,
    client_streams: IntCounterVec,
    sends: IntCounterVec,
}

// === impl RouteMetrics ===

impl RouteMetrics {
    pub(crate) fn resolve(families: &RouteFamilies, route: &str) -> Self {
        // Label counts match each family's label names, so
        // `with_label_values` cannot fail.
        Self {
            route: Box::from(route),
            heartbeats_sent: families.heartbeats_sent.with_label_values(&[route]),
            rejected: RejectReason::ALL.map(|reason| {
                families
                    .rejected
                    .with_label_values(&[route, reason.as_str()])
            }),
            fanout_delay: families.fanout_delay.with_label_values(&[route]),
            replay_misses: families.replay_misses.with_label_values(&[route]),
            upstream_errors: UpstreamErrorKind::ALL.map(|kind| {
                families
                    .upstream_errors
                    .with_label_values(&[route, kind.as_str()])
            }),
            client_streams: StreamPath::ALL.map(|path| {
                families
                    .client_streams
                    .with_label_values(&[route, path.as_str()])
            }),
            sends: StreamPath::ALL
                .map(|path| families.sends.with_label_values(&[route, path.as_str()])),
        }
    }

    /// The route label.
    pub fn route(&self) -> &str {
        &self.route
    }

    /// One heartbeat comment was written to an idle client stream.
    pub fn heartbeat_sent(&self) {
        self.heartbeats_sent.inc();
    }

    /// `count` heartbeat comments were written (one per idle client).
    pub fn heartbeats_sent(&self, count: u64) {
        self.heartbeats_sent.inc_by(count);
    }

    /// A request was refused for `reason`.
    pub fn rejected(&self, reason: RejectReason) {
        self.rejected[reason.index()].inc();
    }

    /// An event took `delay` from being read off the upstream to being
    /// written to a client.
    pub fn observe_fanout_delay(&self, delay: Duration) {
        self.fanout_delay.observe(delay.as_secs_f64());
    }

    /// A tally of fan-out delays for one thread to fill without atomic
    /// operations; it adds them to this route's histogram when dropped.
    /// For loops that observe once per subscriber (the direct path's offer
    /// round), where threads sharing the histogram would contend for it.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use sse_gateway_metrics::GatewayMetrics;
    /// # fn main() -> Result<(), sse_gateway_metrics::MetricsError> {
    /// let metrics = GatewayMetrics::new(10)?;
    /// let mut delays = metrics.route("prices").fanout_delays();
    /// delays.observe(Duration::from_millis(2));
    /// delays.observe(Duration::from_millis(3));
    /// let count = r#"sse_gateway_fanout_delay_seconds_count{route="prices"} 2"#;
    /// assert!(!metrics.encode_text().contains(count));
    /// drop(delays);
    /// assert!(metrics.encode_text().contains(count));
    /// # Ok(())
    /// # }
    /// ```
    pub fn fanout_delays(&self) -> FanoutDelays {
        FanoutDelays(self.fanout_delay.local())
    }

    /// A resuming client's `Last-Event-ID` was not in the replay ring.
    pub fn replay_miss(&self) {
        self.replay_misses.inc();
    }

    /// The upstream failed with `kind`.
    pub fn upstream_error(&self, kind: UpstreamErrorKind) {
        self.upstream_errors[kind.index()].inc();
    }

    /// A client stream opened on `path`.
    pub fn client_stream_opened(&self, path: StreamPath) {
        self.client_streams[path.index()].inc();
    }

    /// `count` writes to client sockets were made on `path` (see
    /// [`SENDS`](crate::names::SENDS)).
    pub fn sent(&self, path: StreamPath, count: u64) {
        if count > 0 {
            self.sends[path.index()].inc_by(count);
        }
    }
}

impl fmt::Debug for RouteMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RouteMetrics")
            .field("route", &self.route)
            .finish_non_exhaustive()
    }
}

// === impl RouteFamilies ===

impl RouteFamilies {
    /// Creates and registers the per-route families.
    pub(crate) fn register(registry: &Registry) -> Result<Self, MetricsError> {
        Ok(Self {
            heartbeats_sent: int_counter_vec(registry, &names::HEARTBEATS_SENT)?,
            rejected: int_counter_vec(registry, &names::REJECTED_REQUESTS)?,
            fanout_delay: histogram_vec(registry, &names::FANOUT_DELAY, &FANOUT_DELAY_BUCKETS)?,
            replay_misses: int_counter_vec(registry, &names::REPLAY_MISSES)?,
            upstream_errors: int_counter_vec(registry, &names::UPSTREAM_ERRORS)?,
            client_streams: int_counter_vec(registry, &names::CLIENT_STREAMS)?,
            sends: int_counter_vec(registry, &names::SENDS)?,
        })
    }
}

/// Fan-out delays observed by one thread, added to their route's histogram
/// in one go when dropped (see [`RouteMetrics::fanout_delays`]).
pub struct FanoutDelays(LocalHistogram);

// === impl FanoutDelays ===

impl FanoutDelays {
    /// An event took `delay` from being read off the upstream to being
    /// written to a client.
    pub fn observe(&mut self, delay: Duration) {
        self.0.observe(delay.as_secs_f64());
    }
}

impl fmt::Debug for FanoutDelays {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FanoutDelays").finish_non_exhaustive()
    }
}
