//! The access log of client streams: one line per stream, whichever path
//! wrote it and however it ended (target `sse_gateway::access`, level info):
//! route, topic, client address, duration, events and bytes written, and
//! why it closed. The line comes from [`AccessLog`]'s `Drop`, so a stream
//! whose future pingora dropped is logged too.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use pingora::proxy::Session;
use sse_gateway_hub::{CloseReason, Membership};

/// The `tracing` target of access-log lines.
pub(crate) const ACCESS_TARGET: &str = "sse_gateway::access";

/// Counts what one stream wrote and logs the access line when dropped.
pub(crate) struct AccessLog {
    route: Arc<str>,
    topic: Arc<str>,
    /// `None` for a client that is not on TCP.
    client: Option<SocketAddr>,
    started: Instant,
    pub(crate) events: u64,
    pub(crate) bytes: u64,
    /// Why the stream ended (the line's `reason`).
    pub(crate) end: CloseReason,
}

/// The client address as the access line shows it (`-` when not on TCP).
struct ClientAddr(Option<SocketAddr>);

impl std::fmt::Display for ClientAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(addr) => addr.fmt(f),
            None => f.write_str("-"),
        }
    }
}

// === impl AccessLog ===

impl AccessLog {
    /// A log line for `membership`'s stream, starting now; it says
    /// `dropped` unless [`AccessLog::end`] is set before it is dropped.
    pub(crate) fn new(membership: &Membership, session: &Session) -> Self {
        // Shared names and a plain address: nothing allocated per stream.
        let (route, topic) = membership.names();
        Self {
            route,
            topic,
            client: session.client_addr().and_then(|a| a.as_inet()).copied(),
            started: Instant::now(),
            events: 0,
            bytes: 0,
            end: CloseReason::Dropped,
        }
    }
}

impl Drop for AccessLog {
    fn drop(&mut self) {
        let duration_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        tracing::info!(
            target: ACCESS_TARGET,
            route = %self.route,
            topic = %self.topic,
            client = %ClientAddr(self.client),
            duration_ms,
            events = self.events,
            bytes = self.bytes,
            reason = %self.end.as_str(),
            "stream closed"
        );
    }
}
