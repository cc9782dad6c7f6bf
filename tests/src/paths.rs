//! The two write paths of client streams, so that a test can run on both:
//! the direct path (the socket leaves pingora after the header; the default
//! for plain HTTP/1.1) and the session path (a pingora session per
//! subscriber; TLS, HTTP/2, or `direct_write: false`).

use crate::gateway::metric_sum;

/// Which path a gateway's fan-out routes use for plain HTTP/1.1 clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WritePath {
    /// `direct_write: true` (the default).
    Direct,
    /// `direct_write: false`.
    Session,
}

impl WritePath {
    /// The `path` label of `sse_gateway_client_streams_total`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Session => "session",
        }
    }

    /// Panics unless `metrics` (a `/metrics` text) shows streams of `route`
    /// opened on this path and none on the other: the test really ran on it.
    pub fn assert_used(self, metrics: &str, route: &str) {
        let name = "sse_gateway_client_streams_total";
        let this = metric_sum(metrics, name, &[("route", route), ("path", self.label())]);
        let other = match self {
            Self::Direct => Self::Session,
            Self::Session => Self::Direct,
        };
        let that = metric_sum(metrics, name, &[("route", route), ("path", other.label())]);
        assert!(
            this >= 1.0 && that == 0.0,
            "route {route}: {this} streams on the {} path, {that} on the {} path",
            self.label(),
            other.label()
        );
    }
}

/// Turns `async fn NAME(path: WritePath)` into two tests, `NAME::direct` and
/// `NAME::session`, that run it on each write path, so that a failure names its path.
///
/// The function stays a plain `async fn` beside the generated module (a module and a
/// function may share a name). Both tests run on a two-thread runtime, like every
/// end-to-end test.
///
/// ```text
/// async fn heartbeats_reach_idle_streams(path: WritePath) { /* ... */ }
/// on_both_paths!(heartbeats_reach_idle_streams);
/// ```
#[macro_export]
macro_rules! on_both_paths {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn direct() {
                super::$name($crate::WritePath::Direct).await;
            }

            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn session() {
                super::$name($crate::WritePath::Session).await;
            }
        }
    )+};
}
