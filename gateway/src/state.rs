//! [`AppState`]: what every service shares: routes, their prepared
//! settings, metrics, the hub (once its runtime is up) and the drain.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;

use sse_gateway_config::{FanOutRoute, GatewayConfig, IpCidr, MultiConfig};
use sse_gateway_hub::{HubLimits, TopicHub, TopicSettings};
use sse_gateway_metrics::{names, GatewayMetrics, RouteMetrics};
use sse_gateway_routes::RouteTable;
use sse_gateway_sinks::{Conflation, DirectSettings, Drain};

use crate::services::access::RouteAccess;
use crate::services::address_limits::{AddressKey, AddressStreams, NewTopicRate};
use crate::services::client_stream;
use crate::services::connections::ConnectionGate;
use crate::services::occasional::Occasional;
use crate::settings;

/// At most one warning per limit this often.
const REFUSAL_WARNING_EVERY: Duration = Duration::from_secs(10);

/// Shared by the proxy, admin and hub services.
pub(crate) struct AppState {
    /// The route table (match order), each route with its plan.
    pub(crate) routes: RouteTable<RoutePlan>,
    /// Metrics of requests that matched no route.
    pub(crate) unmatched: RouteMetrics,
    /// The registry served on `/metrics`.
    pub(crate) metrics: GatewayMetrics,
    /// Limits for the hub, built when its runtime starts.
    pub(crate) limits: HubLimits,
    /// The drain: started once, seen by every stream (each ends with its
    /// own jittered `retry:`).
    pub(crate) drain: Arc<Drain>,
    /// The demo page served at `/` (the `demo` command only).
    pub(crate) demo_page: Option<Bytes>,
    /// Open client connections and their request-header deadlines.
    pub(crate) connections: Arc<ConnectionGate>,
    /// Concurrent event streams per client address.
    pub(crate) address_streams: Arc<AddressStreams>,
    /// New topics per client address (`None`: off).
    pub(crate) new_topics: Option<NewTopicRate>,
    /// Proxies whose `X-Forwarded-For` names the client (`trusted_proxies`).
    pub(crate) trusted_proxies: Vec<IpCidr>,
    /// The multi-topic endpoint (`multi`), if configured.
    pub(crate) multi: Option<MultiConfig>,
    /// Paces the warning logged when a limit refuses subscribers, one pace
    /// per limit (a flood on one does not hide another).
    refusal_warnings: Mutex<HashMap<&'static str, Occasional>>,
    hub: OnceLock<TopicHub>,
}

/// One route, prepared.
pub(crate) struct RoutePlan {
    /// The route's metric handles.
    pub(crate) metrics: RouteMetrics,
    /// For fan-out routes: the topic settings shared by all its topics.
    pub(crate) topic_settings: Option<Arc<TopicSettings>>,
    /// For fan-out routes with `direct_write`: the direct path's settings.
    pub(crate) direct: Option<Arc<DirectSettings>>,
    /// `retry` advised on refusals (jittered by the caller).
    pub(crate) refusal_retry: Duration,
    /// How long the first subscribers of a new topic wait for the
    /// upstream's first answer (`upstream_answer_timeout`).
    pub(crate) answer_timeout: Duration,
    /// The route's CORS and auth policies.
    pub(crate) access: RouteAccess,
    /// Whether clients may filter event types (`event_filter`).
    pub(crate) event_filter: bool,
    /// `slow_client: coalesce` (`None`: slow clients are cut).
    pub(crate) conflation: Option<Conflation>,
}

// === impl AppState ===

impl AppState {
    /// Prepares everything that does not need a runtime. Fails on a metrics
    /// registry error or a JWT key file that cannot be read or parsed.
    pub(crate) fn new(config: &GatewayConfig, demo_page: Option<Bytes>) -> anyhow::Result<Self> {
        let metrics = GatewayMetrics::new(config.metrics.max_topic_series)?;
        let drain = Arc::new(Drain::new(settings::advised_retry(&config.defaults)));
        let routes = RouteTable::with_plans(config, |route| {
            let fan_out: Option<&FanOutRoute> = route.fan_out();
            Ok::<_, anyhow::Error>(RoutePlan {
                metrics: metrics.route(&route.name),
                topic_settings: fan_out.map(|f| Arc::new(settings::topic_settings(&f.settings))),
                direct: fan_out
                    .filter(|f| f.settings.direct_write)
                    .map(|f| client_stream::direct_settings(&f.settings, &drain)),
                refusal_retry: settings::advised_retry(
                    fan_out.map_or(&config.defaults, |f| &f.settings),
                ),
                answer_timeout: fan_out
                    .map_or(Duration::ZERO, |f| settings::answer_timeout(&f.settings)),
                access: RouteAccess::new(route)?,
                event_filter: fan_out.is_some_and(|f| f.settings.event_filter),
                conflation: fan_out.and_then(|f| settings::conflation(&f.settings)),
            })
        })?;
        let connections = Arc::new(ConnectionGate::new(
            config.limits.max_connections,
            config.limits.request_header_timeout,
            metrics.process().clone(),
        ));
        Ok(Self {
            unmatched: metrics.route(names::UNMATCHED_ROUTE),
            routes,
            metrics,
            limits: settings::hub_limits(&config.limits, config.threads),
            drain,
            demo_page,
            connections,
            address_streams: AddressStreams::new(config.limits.max_streams_per_address),
            new_topics: config.limits.new_topics_per_address.map(NewTopicRate::new),
            trusted_proxies: config.trusted_proxies.clone(),
            multi: config.multi.clone(),
            refusal_warnings: Mutex::new(HashMap::new()),
            hub: OnceLock::new(),
        })
    }

    /// The hub, once the hub service has started (`None` before: answer 503).
    pub(crate) fn hub(&self) -> Option<&TopicHub> {
        self.hub.get()
    }

    /// Installs the hub (first call wins).
    pub(crate) fn set_hub(&self, hub: TopicHub) {
        let _ = self.hub.set(hub);
    }

    /// True while serving: the hub is up and no drain has begun.
    pub(crate) fn is_ready(&self) -> bool {
        self.hub.get().is_some() && !self.drain.is_draining()
    }

    /// Logs (at most every 10 s per limit) that `limit` refused a
    /// subscriber of `route`; every refusal is counted in the metrics
    /// either way. `address` is given for the per-address limits.
    pub(crate) fn note_refusal(
        &self,
        route: &str,
        limit: &'static str,
        address: Option<AddressKey>,
    ) {
        let due = self
            .refusal_warnings
            .lock()
            .entry(limit)
            .or_insert_with(|| Occasional::new(REFUSAL_WARNING_EVERY))
            .due();
        let Some(held_back) = due else {
            return;
        };
        match address {
            Some(address) => tracing::warn!(
                route,
                limit,
                %address,
                refused_since_last_warning = held_back,
                "subscriber refused by {limit} (told to retry later); if {address} is a load \
                 balancer or proxy, list it in trusted_proxies so its clients are told apart"
            ),
            None => tracing::warn!(
                route,
                limit,
                refused_since_last_warning = held_back,
                "subscriber refused by {limit} (told to retry later)"
            ),
        }
    }

    /// True once a drain has begun.
    pub(crate) fn is_draining(&self) -> bool {
        self.drain.is_draining()
    }

    /// Starts draining (once): `/readyz` answers 503, the hub refuses new
    /// subscribers and closes every topic, and each stream ends with its own
    /// final `retry:`.
    pub(crate) fn begin_drain(&self) {
        if !self.drain.start() {
            return;
        }
        if let Some(hub) = self.hub.get() {
            hub.shutdown();
        }
    }
}
