//! [`UpstreamError`]: why one connection attempt or stream ended.

use sse_gateway_metrics::UpstreamErrorKind;
use thiserror::Error;

/// Why an upstream connection attempt failed or a live stream ended.
///
/// Every variant maps onto one [`UpstreamErrorKind`] metric label
/// ([`UpstreamError::kind`]). The feed retries retryable errors with backoff;
/// a non-retryable one (a request that can never be built, such as an
/// unsupported URL) is retried too, but at the backoff's longest delay, since
/// a configuration reload is the only thing that fixes it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum UpstreamError {
    /// Resolving the host, connecting (TCP, TLS) or sending the request failed.
    #[error("cannot connect to the upstream: {0}")]
    Connect(String),
    /// The upstream answered a status other than 200 or 204.
    #[error("upstream answered HTTP {0}")]
    Status(u16),
    /// The upstream answered 200 without `Content-Type: text/event-stream`.
    #[error("upstream answered content type {0:?}, not text/event-stream")]
    ContentType(String),
    /// The response could not be read as HTTP.
    #[error("upstream protocol error: {0}")]
    Protocol(String),
    /// The request cannot be built from the settings (unsupported URL scheme,
    /// invalid header). Not retryable: only new settings fix it.
    #[error("invalid upstream request: {0}")]
    InvalidRequest(String),
    /// The upstream closed the stream, or reading it failed.
    #[error("upstream stream closed: {0}")]
    Closed(String),
    /// Connecting took longer than `connect_timeout`, or the upstream sent
    /// nothing for `idle_timeout`.
    #[error("upstream timed out: {0}")]
    Timeout(String),
}

// === impl UpstreamError ===

impl UpstreamError {
    /// Whether retrying soon may help. `false` only for a request that the
    /// settings make impossible: retrying cannot fix it.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, Self::InvalidRequest(_))
    }

    /// The status a topic's clients are answered when this error ends the
    /// topic, as a plain reverse proxy would pass it on: the upstream's own
    /// 401, 403, 404 or 410, and 502 for a response that is not an event
    /// stream. `None` for everything worth retrying (5xx, 429, resets,
    /// timeouts, other statuses).
    pub fn refusal_status(&self) -> Option<u16> {
        match self {
            Self::Status(status @ (401 | 403 | 404 | 410)) => Some(*status),
            Self::ContentType(_) => Some(502),
            _ => None,
        }
    }

    /// Whether the upstream refused the request itself (a 4xx other than
    /// 408 and 429): when the request carried a `Last-Event-ID`, that id may
    /// be what it refuses.
    pub fn is_request_refused(&self) -> bool {
        matches!(self, Self::Status(status) if (400..500).contains(status) && !matches!(status, 408 | 429))
    }

    /// The metric label for this error.
    pub fn kind(&self) -> UpstreamErrorKind {
        match self {
            Self::Connect(_) => UpstreamErrorKind::Connect,
            Self::Status(_) => UpstreamErrorKind::Status,
            Self::ContentType(_) => UpstreamErrorKind::ContentType,
            Self::Protocol(_) | Self::InvalidRequest(_) => UpstreamErrorKind::Protocol,
            Self::Closed(_) => UpstreamErrorKind::Closed,
            Self::Timeout(_) => UpstreamErrorKind::Timeout,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_end_the_topic_with_the_status_clients_get() {
        for status in [401, 403, 404, 410] {
            assert_eq!(UpstreamError::Status(status).refusal_status(), Some(status));
        }
        assert_eq!(
            UpstreamError::ContentType("text/html".into()).refusal_status(),
            Some(502)
        );
        for status in [400, 429, 500, 502, 503] {
            assert_eq!(UpstreamError::Status(status).refusal_status(), None);
        }
        assert_eq!(UpstreamError::Closed("eof".into()).refusal_status(), None);
        assert!(UpstreamError::Status(400).is_request_refused());
        assert!(UpstreamError::Status(404).is_request_refused());
        assert!(!UpstreamError::Status(429).is_request_refused());
        assert!(!UpstreamError::Status(408).is_request_refused());
        assert!(!UpstreamError::Status(500).is_request_refused());
    }

    #[test]
    fn only_impossible_requests_are_not_retryable() {
        assert!(UpstreamError::Connect("refused".into()).is_retryable());
        assert!(UpstreamError::Status(500).is_retryable());
        assert!(UpstreamError::Protocol("bad header".into()).is_retryable());
        assert!(!UpstreamError::InvalidRequest("ftp URL".into()).is_retryable());
        assert_eq!(UpstreamError::Status(503).kind(), UpstreamErrorKind::Status);
        assert_eq!(
            UpstreamError::Timeout("idle".into()).kind(),
            UpstreamErrorKind::Timeout
        );
    }
}
