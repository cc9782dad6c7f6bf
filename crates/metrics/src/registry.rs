//! [`GatewayMetrics`]: the gateway's own Prometheus registry and every family
//! in it, plus the text rendering the admin listener serves.

use std::fmt;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use crate::names::{self, Family};
use crate::process::ProcessMetrics;
use crate::route::{RouteFamilies, RouteMetrics};
use crate::topic::{TopicFamilies, TopicMetrics, TopicSeriesBudget};

/// The `Content-Type` of [`GatewayMetrics::encode_text`]'s output
/// (`text/plain; version=0.0.4`).
pub const TEXT_CONTENT_TYPE: &str = prometheus::TEXT_FORMAT;

/// Bucket bounds of `sse_gateway_fanout_delay_seconds`, in seconds: 50µs to
/// 5s in 1-2.5-5 steps, dense at the low end where a healthy gateway lives.
pub const FANOUT_DELAY_BUCKETS: [f64; 16] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0,
];

/// What can go wrong building or rendering the registry.
///
/// Neither happens with the names in [`names`]; the errors exist so that no
/// path in this crate panics.
#[derive(Debug)]
#[non_exhaustive]
pub enum MetricsError {
    /// A family could not be created or registered (bad name, duplicate).
    Register {
        /// The family's name.
        name: &'static str,
        /// What prometheus reported.
        source: prometheus::Error,
    },
    /// The registry could not be rendered as Prometheus text.
    Encode(prometheus::Error),
}

/// The gateway's metrics: one registry (not prometheus's global default)
/// holding every family of the contract, the additions, build info and, on
/// Linux, the process collector (CPU, memory, open file descriptors).
///
/// Cloning is cheap and clones share everything.
#[derive(Clone)]
pub struct GatewayMetrics {
    registry: Registry,
    topics: TopicSeriesBudget,
    routes: RouteFamilies,
    process: ProcessMetrics,
}

// === impl MetricsError ===

impl fmt::Display for MetricsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Register { name, source } => write!(f, "cannot register metric {name}: {source}"),
            Self::Encode(source) => write!(f, "cannot render metrics as text: {source}"),
        }
    }
}

impl std::error::Error for MetricsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Register { source, .. } | Self::Encode(source) => Some(source),
        }
    }
}

// === impl GatewayMetrics ===

impl GatewayMetrics {
    /// Builds a fresh registry with every family registered.
    ///
    /// `max_topic_series` is `metrics.max_topic_series`: how many topics get
    /// their own `topic` label before the rest share
    /// [`OTHER_TOPIC`](names::OTHER_TOPIC). Build info carries this crate's
    /// version, which is the workspace (gateway) version.
    pub fn new(max_topic_series: usize) -> Result<Self, MetricsError> {
        let registry = Registry::new();
        let topics = TopicSeriesBudget::new(TopicFamilies::register(&registry)?, max_topic_series);
        let routes = RouteFamilies::register(&registry)?;
        let process = ProcessMetrics::register(&registry)?;
        register_build_info(&registry, env!("CARGO_PKG_VERSION"))?;
        register_process_collector(&registry)?;
        Ok(Self {
            registry,
            topics,
            routes,
            process,
        })
    }

    /// The underlying registry, to register more collectors or to gather.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The per-topic series budget (shared by every clone).
    pub fn topics(&self) -> &TopicSeriesBudget {
        &self.topics
    }

    /// Resolves the handles of one open topic; shorthand for
    /// [`TopicSeriesBudget::open`]. Call once per topic, when it opens.
    pub fn open_topic(&self, route: &str, topic: &str) -> TopicMetrics {
        self.topics.open(route, topic)
    }

    /// Resolves the per-route handles of `route` (a route name, or
    /// [`UNMATCHED_ROUTE`](names::UNMATCHED_ROUTE)). Call once per route at
    /// start-up; every rejection reason and upstream error kind starts at 0.
    pub fn route(&self, route: &str) -> RouteMetrics {
        RouteMetrics::resolve(&self.routes, route)
    }

    /// The process-wide handles (replay memory, connections).
    pub fn process(&self) -> &ProcessMetrics {
        &self.process
    }

    /// The sum of every series of a counter or gauge `family` (0 when it has
    /// none yet), for a summary such as the demo page's.
    pub fn total(&self, family: &Family) -> f64 {
        self.registry
            .gather()
            .iter()
            .filter(|f| f.name() == family.name)
            .flat_map(|f| f.get_metric())
            .map(|m| m.get_counter().get_value() + m.get_gauge().get_value())
            .sum()
    }

    /// Renders every family as Prometheus text ([`TEXT_CONTENT_TYPE`]).
    pub fn try_encode_text(&self) -> Result<String, MetricsError> {
        let families = self.registry.gather();
        let mut out = Vec::with_capacity(16 * 1024);
        TextEncoder::new()
            .encode(&families, &mut out)
            .map_err(MetricsError::Encode)?;
        String::from_utf8(out)
            .map_err(|e| MetricsError::Encode(prometheus::Error::Msg(e.to_string())))
    }

    /// Renders every family as Prometheus text, or returns an empty string if
    /// rendering fails (it does not with the families of this crate). Never
    /// panics and never logs; use [`try_encode_text`](Self::try_encode_text)
    /// to see the error.
    pub fn encode_text(&self) -> String {
        self.try_encode_text().unwrap_or_default()
    }
}

impl fmt::Debug for GatewayMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GatewayMetrics")
            .field("topics", &self.topics)
            .finish_non_exhaustive()
    }
}

// === Family constructors (shared with topic.rs and route.rs) ===

/// Registers `collector` for `family`, returning it for use.
pub(crate) fn registered<C>(
    registry: &Registry,
    family: &Family,
    collector: C,
) -> Result<C, MetricsError>
where
    C: prometheus::core::Collector + Clone + 'static,
{
    registry
        .register(Box::new(collector.clone()))
        .map_err(|source| register_error(family, source))?;
    Ok(collector)
}

/// The error of a family that could not be created or registered.
pub(crate) fn register_error(family: &Family, source: prometheus::Error) -> MetricsError {
    MetricsError::Register {
        name: family.name,
        source,
    }
}

/// Creates and registers the gauge family `family`.
pub(crate) fn int_gauge_vec(
    registry: &Registry,
    family: &Family,
) -> Result<IntGaugeVec, MetricsError> {
    debug_assert_eq!(family.kind, names::Kind::Gauge);
    let vec = IntGaugeVec::new(Opts::new(family.name, family.help), family.labels)
        .map_err(|e| register_error(family, e))?;
    registered(registry, family, vec)
}

/// Creates and registers the counter family `family`.
pub(crate) fn int_counter_vec(
    registry: &Registry,
    family: &Family,
) -> Result<IntCounterVec, MetricsError> {
    debug_assert_eq!(family.kind, names::Kind::Counter);
    let vec = IntCounterVec::new(Opts::new(family.name, family.help), family.labels)
        .map_err(|e| register_error(family, e))?;
    registered(registry, family, vec)
}

/// Creates and registers the histogram family `family` with `buckets`.
pub(crate) fn histogram_vec(
    registry: &Registry,
    family: &Family,
    buckets: &[f64],
) -> Result<HistogramVec, MetricsError> {
    debug_assert_eq!(family.kind, names::Kind::Histogram);
    let opts = HistogramOpts::new(family.name, family.help).buckets(buckets.to_vec());
    let vec = HistogramVec::new(opts, family.labels).map_err(|e| register_error(family, e))?;
    registered(registry, family, vec)
}

fn register_build_info(registry: &Registry, version: &str) -> Result<(), MetricsError> {
    let family = &names::BUILD_INFO;
    let opts = Opts::new(family.name, family.help).const_label(names::VERSION, version);
    let gauge = IntGauge::with_opts(opts).map_err(|e| register_error(family, e))?;
    gauge.set(1);
    registered(registry, family, gauge).map(drop)
}

#[cfg(target_os = "linux")]
fn register_process_collector(registry: &Registry) -> Result<(), MetricsError> {
    registry
        .register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))
        .map_err(|source| MetricsError::Register {
            name: names::PROCESS_CPU_SECONDS,
            source,
        })
}

#[cfg(not(target_os = "linux"))]
fn register_process_collector(_registry: &Registry) -> Result<(), MetricsError> {
    Ok(())
}

#[cfg(test)]
mod tests;
