//! The gateway's metrics: its Prometheus registry, the metric-name contract,
//! and the per-topic and per-route handles that the hot paths report through.
//!
//! # What this crate owns
//!
//! * [`names`]: every metric name, label name and label value the gateway
//!   exports. The families of the contract table (`config.md`, "Metrics")
//!   are fixed; additions are listed separately.
//! * [`GatewayMetrics`]: one registry of its own (never prometheus's global
//!   default) holding every family, build info
//!   (`sse_gateway_build_info{version} 1`) and, on Linux, the process
//!   collector (CPU, resident memory, open file descriptors). It renders the
//!   Prometheus text the admin listener serves, without panicking.
//! * [`TopicMetrics`] / [`TopicSeriesBudget`]: per-topic handles and the cap
//!   on `topic` label values.
//! * [`RouteMetrics`]: per-route handles (heartbeats, rejections by
//!   [`RejectReason`], fan-out delay, replay misses, upstream errors by
//!   [`UpstreamErrorKind`]).
//! * [`ProcessMetrics`]: process-wide handles (replay memory, open and
//!   dropped client connections).
//!
//! It knows nothing of HTTP, sockets, configuration files or the hub: the
//! gateway passes it `metrics.max_topic_series` and route names, the hub and
//! the upstream report through the handles, the admin service serves
//! [`GatewayMetrics::encode_text`] with [`TEXT_CONTENT_TYPE`].
//!
//! # Cardinality policy
//!
//! * `route` values come from the configuration, so they are bounded; route
//!   series live for the whole process. Requests that match no route report
//!   under [`names::UNMATCHED_ROUTE`].
//! * `reason` and `kind` values are closed enums.
//! * `topic` values come from requests, so they are capped: at most
//!   `max_topic_series` `(route, topic)` pairs have series of their own;
//!   topics opened past that share their route's `topic="__other__"` series.
//!   A topic's series are removed when it closes, and `__other__` series when
//!   the last topic using them closes.
//!
//! # The per-frame path
//!
//! Handles are resolved once: when a topic opens ([`TopicSeriesBudget::open`],
//! which takes the budget lock) and when a route is set up
//! ([`GatewayMetrics::route`]). After that, **nothing on the per-frame path
//! takes a global lock or does a label lookup**: every [`TopicMetrics`] and
//! [`RouteMetrics`] method is an atomic add on a handle it holds.
//!
//! ```
//! use sse_gateway_metrics::{GatewayMetrics, RejectReason};
//!
//! # fn main() -> Result<(), sse_gateway_metrics::MetricsError> {
//! let metrics = GatewayMetrics::new(1000)?;
//! let prices = metrics.route("prices");
//! let topic = metrics.open_topic("prices", "prices/ACME");
//! topic.subscriber_joined();
//! topic.upstream_event();
//! topic.delivered(1, 42);
//! prices.rejected(RejectReason::Auth);
//! let text = metrics.encode_text();
//! assert!(text.contains(r#"sse_gateway_subscribers{route="prices",topic="prices/ACME"} 1"#));
//! topic.close(); // its series disappear from the next scrape
//! assert!(!metrics.encode_text().contains("prices/ACME"));
//! # Ok(())
//! # }
//! ```

pub mod names;
mod process;
mod registry;
mod route;
#[cfg(test)]
mod testing;
mod topic;

pub use names::{ConnectionDrop, RejectReason, StreamPath, UpstreamErrorKind};
pub use process::ProcessMetrics;
pub use prometheus;
pub use registry::{GatewayMetrics, MetricsError, FANOUT_DELAY_BUCKETS, TEXT_CONTENT_TYPE};
pub use route::{FanoutDelays, RouteMetrics};
pub use topic::{TopicMetrics, TopicSeriesBudget};
