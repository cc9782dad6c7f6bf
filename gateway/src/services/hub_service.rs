//! The "hub" background service: gives the hub a runtime for its feeds and
//! timers, and starts the drain when pingora says shut down.
//!
//! The drain itself is [`Drain`](sse_gateway_sinks::Drain)'s (see
//! [`AppState::begin_drain`]). Pingora has stopped accepting by then; it
//! exits after `shutdown_grace`.

use std::sync::Arc;

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use sse_gateway_hub::TopicHub;

use crate::state::AppState;

/// Builds the hub on this service's runtime, then waits for shutdown.
pub(crate) struct HubService {
    state: Arc<AppState>,
}

// === impl HubService ===

impl HubService {
    /// The service over the shared state.
    pub(crate) fn new(state: Arc<AppState>) -> Self {
        Self { state }
    }
}

#[async_trait]
impl BackgroundService for HubService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let state = &self.state;
        let hub = TopicHub::new(
            state.limits,
            state.metrics.clone(),
            tokio::runtime::Handle::current(),
        );
        state.set_hub(hub);
        tracing::debug!("hub ready");
        while !*shutdown.borrow() {
            if shutdown.changed().await.is_err() {
                break;
            }
        }
        let clients = state.hub().map_or(0, TopicHub::client_count);
        tracing::info!(
            clients,
            retry_ms = u64::try_from(state.drain.retry().as_millis()).unwrap_or(u64::MAX),
            "shutting down: draining client streams"
        );
        state.begin_drain();
        tracing::info!("drained: client streams and upstream feeds closed");
    }
}
