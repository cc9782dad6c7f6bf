//! End-to-end test harness for `sse-gateway`.
//!
//! Everything here runs on real loopback sockets with OS-assigned ports:
//!
//! - [`upstream`]: [`UpstreamServer`], a scripted SSE origin (hand-written HTTP/1.1) that
//!   records every request and counts connections; it can stream numbered events live,
//!   honour `Last-Event-ID`, answer 204/500, and be killed and restarted on its port.
//! - [`gateway`]: [`GatewayProcess`], the real `sse-gateway` binary started on free ports
//!   from a YAML snippet, ready once `/readyz` answers 200, killed on drop.
//! - [`client`]: [`SseClient`], a raw HTTP/1.1 client with an independent SSE parser used
//!   as the oracle (it does not share code with `sse-gateway-codec`), and
//!   [`StalledClient`], a client that never reads.
//! - [`config`]: [`GatewayConfig`], a typed builder for the YAML a test starts a gateway
//!   with.
//! - [`paths`]: [`WritePath`], and [`on_both_paths!`], one test body run as two tests, on
//!   the direct and on the session write path.
//! - [`ports`]: a small registry of free loopback ports.
//! - [`browser`]: headless Chromium on a test page served from another origin, for
//!   `EventSource`/CORS/cookie tests, plus test tokens and a gateway pinned to its ports.
//!
//! Waiting is always polling with a deadline ([`poll_until`]), never a bare sleep.
//!
//! Run with `cargo test -p sse-gateway-tests`. Each test process runs
//! `cargo build -p sse-gateway` once (a no-op when up to date); set `SSE_GATEWAY_BIN` to a
//! binary's path to test that binary instead.

pub mod browser;
pub mod client;
pub mod config;
pub mod gateway;
pub mod paths;
pub mod png;
pub mod ports;
pub mod sse;
pub mod upstream;
pub mod yaml;

use std::future::Future;
use std::time::{Duration, Instant};

pub use client::{HttpResponse, SseClient, StalledClient};
pub use config::{Auth, Cors, GatewayConfig, Route, Settings, Tls};
pub use gateway::GatewayProcess;
pub use paths::WritePath;
pub use sse::{SseEvent, SseParser};
pub use upstream::{Response, Upstream, UpstreamServer};

/// The instant `timeout` from now.
pub fn deadline(timeout: Duration) -> Instant {
    Instant::now() + timeout
}

/// Calls `check` every 20 ms until it returns true (then true) or `timeout` passes (then
/// false). The number of polls is bounded by the timeout.
pub async fn poll_until<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let end = deadline(timeout);
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
