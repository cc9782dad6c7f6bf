//! The upstream side of a topic: ONE Server-Sent Events connection per topic,
//! read through pingora's client [`Connector`](pingora::connectors::http::Connector).
//!
//! # What this crate owns
//!
//! * [`feed`]: the future the hub spawns when a topic opens. It connects to
//!   the route's upstream URL, sends `GET` with `Host`, `Accept:
//!   text/event-stream`, `Cache-Control: no-cache`, the route's headers and
//!   `Last-Event-ID` (the topic's last id, on the first connect too: the
//!   first subscriber may have seeded it), checks the answer, and streams
//!   the body through the codec's [`Decoder`](sse_gateway_codec::Decoder)
//!   into the topic's [`TopicPublisher`]: each event and id update is
//!   published as its one [`Frame`](sse_gateway_codec::Frame), `retry:` is
//!   advised to clients and becomes the reconnect floor, comments are
//!   dropped (they only count as activity), oversized events are counted
//!   and skipped.
//! * The reconnect policy: connection errors, 5xx and other statuses worth
//!   retrying, read errors, the end of the stream and silence longer than
//!   `idle_timeout` all lead to a counted error
//!   (`sse_gateway_upstream_errors_total{kind}`), a counted reconnect, and a
//!   wait drawn by [`Backoff`] (exponential, full jitter, never shorter than
//!   the upstream's last `retry:` clamped to `backoff_max`), then a new
//!   connection that resumes from the topic's last id. Only a stream that
//!   stayed up a while resets the backoff. A 4xx to a request that carried
//!   `Last-Event-ID` drops the id and asks again at once.
//! * The end: HTTP 204 stops the topic ([`TopicPublisher::stop`]); 401, 403,
//!   404, 410 and a response that is not an event stream refuse it
//!   ([`TopicPublisher::refuse`], its clients get the status); either way
//!   the feed returns. A closing topic ([`TopicPublisher::closed`]) ends the
//!   feed at once, whatever it is doing, and the connection is dropped
//!   (never returned to a pool: an SSE body never completes).
//!
//! * [`probe`]: `sse-gateway doctor URL`: the same connection, opened to
//!   report what would break behind the gateway instead of to feed a topic.
//!
//! It knows nothing of routes, configuration files, clients or the
//! downstream server: the gateway fills [`UpstreamSettings`] from the
//! configuration. Hostnames are resolved with tokio (pingora's `HttpPeer::new`
//! would block and panic). The feed never panics on anything the network
//! sends. See `LIFECYCLE.md` beside this crate for the state machine.

use std::sync::Arc;
use std::time::Duration;

use sse_gateway_codec::CodecLimits;
use sse_gateway_hub::{FeedFuture, TopicPublisher};

mod backoff;
mod error;
mod feed;
mod probe;
mod request;
mod session;

pub use backoff::{Backoff, BackoffError};
pub use error::UpstreamError;
pub use probe::{probe, Finding, ProbeReport, ProbeSettings, Verdict};

/// Everything one topic's upstream connection needs, filled by the gateway
/// from config.
#[derive(Debug, Clone)]
pub struct UpstreamSettings {
    /// The upstream stream's URL: `http://` or `https://` (TLS with the
    /// platform's roots, SNI from the host).
    pub url: url::Url,
    /// Extra request headers from the route.
    pub headers: Vec<(String, String)>,
    /// Bound of the first reconnect delay.
    pub backoff_initial: Duration,
    /// Largest bound of a reconnect delay.
    pub backoff_max: Duration,
    /// Nothing at all received this long (not even a comment): the upstream
    /// is treated as dead and reconnected. Also bounds the wait for the
    /// response head (30 s when `None`).
    pub idle_timeout: Option<Duration>,
    /// Bound on resolving, connecting (TCP and TLS) and sending the request.
    pub connect_timeout: Duration,
    /// Codec limits (largest event and line).
    pub limits: CodecLimits,
    /// How an `https` upstream's certificate is verified.
    pub tls: UpstreamTls,
}

/// Certificate verification for `https` upstreams. The default verifies
/// against the system roots, with SNI and host name from the URL.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpstreamTls {
    /// PEM CA certificates to verify against instead of the system roots
    /// (read on every connect, so a replaced file takes effect on the next
    /// reconnect).
    pub ca_file: Option<std::path::PathBuf>,
    /// Verify nothing (certificate nor host name); a warning is logged on
    /// every connect.
    pub insecure_skip_verify: bool,
}

/// Runs one topic's feed until the topic closes or the upstream answers 204.
///
/// Pass it to [`TopicHub::subscribe`](sse_gateway_hub::TopicHub::subscribe)
/// as `|publisher| feed(settings.clone(), publisher)`.
pub fn feed(settings: Arc<UpstreamSettings>, publisher: TopicPublisher) -> FeedFuture {
    Box::pin(feed::run(settings, publisher))
}
