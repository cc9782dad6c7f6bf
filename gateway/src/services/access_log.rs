//! The access log of client streams: one line per stream, whichever path
//! wrote it and however it ended (target `sse_gateway::access`, level info):
//! route, topic, client address, duration, events and bytes written, and
//! why it closed. The line comes from [`AccessLog`]'s `Drop`, so a stream
//! whose future pingora dropped is logged too.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use pingora::proxy::Session;
use sse_gateway_hub::Membership;

/// The `tracing` target of access-log lines.
pub(crate) const ACCESS_TARGET: &str = "sse_gateway::access";

/// Why a client stream ended (the `reason` of its access-log line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StreamEnd {
    /// The client closed its connection (or sent something unexpected).
    ClientClosed,
    /// The client fell more than `client_queue` bytes behind.
    SlowClient,
    /// The upstream stopped the topic (HTTP 204).
    UpstreamStopped,
    /// The upstream refused the topic (401, 403, 404, 410, not an event
    /// stream): the topic ended.
    UpstreamRefused,
    /// The gateway drained it (shutdown or upgrade).
    Shutdown,
    /// A write to the client failed or timed out.
    WriteFailed,
    /// Pingora dropped the stream's future (runtime shutdown).
    Dropped,
    /// The client's token reached its `exp`.
    CredentialsExpired,
}

/// Counts what one stream wrote and logs the access line when dropped.
pub(crate) struct AccessLog {
    route: Arc<str>,
    topic: Arc<str>,
    /// `None` for a client that is not on TCP.
    client: Option<SocketAddr>,
    started: Instant,
    pub(crate) events: u64,
    pub(crate) bytes: u64,
    pub(crate) end: StreamEnd,
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

// === impl StreamEnd ===

impl StreamEnd {
    /// The `reason` value of the access-log line.
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::ClientClosed => "client_closed",
            Self::SlowClient => "slow_client",
            Self::UpstreamStopped => "upstream_stopped",
            Self::UpstreamRefused => "upstream_refused",
            Self::Shutdown => "shutdown",
            Self::WriteFailed => "write_failed",
            Self::Dropped => "dropped",
            Self::CredentialsExpired => "credentials_expired",
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
            end: StreamEnd::Dropped,
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
