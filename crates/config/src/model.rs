//! The validated configuration: plain data, every default filled in, every
//! value parsed. This is all that other crates see; they map it onto their
//! own small settings structs.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use regex::Regex;

mod auth;
mod slow_client;

pub use self::auth::{AuthConfig, JwtAlgorithm, JwtConfig, JwtKey, Secret, DEFAULT_EXPIRED_EVENT};
pub use self::slow_client::{CoalesceKey, SlowClientPolicy};

use crate::error::ConfigWarning;
use crate::values::cidr::IpCidr;
use crate::values::origin::OriginPattern;
use crate::values::path_pattern::PathPattern;
use crate::values::template::Template;

/// The whole gateway configuration.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// `listen`: public plain-HTTP listeners. Default `["127.0.0.1:8080"]`.
    pub listen: Vec<SocketAddr>,
    /// `admin`: the admin listener (`/metrics`, `/healthz`, ...). Default `127.0.0.1:9090`.
    pub admin: SocketAddr,
    /// `threads`: worker threads. Default: the number of cores.
    pub threads: usize,
    /// `tls`: HTTPS listeners, if any.
    pub tls: Option<TlsConfig>,
    /// `h2c`: cleartext HTTP/2 (prior knowledge) on the plain listeners. Default `false`.
    pub h2c: bool,
    /// `shutdown_grace`: how long a graceful shutdown waits for clients to
    /// leave before closing them. Default 10s.
    pub shutdown_grace: Duration,
    /// `log`: log format and filter.
    pub log: LogConfig,
    /// `runtime_dir`: the private directory (created with mode 0700 by the
    /// gateway) for the upgrade socket and the pid file. A relative path is
    /// resolved against the configuration file's directory (and made
    /// absolute); it need not exist, but if it does it is a directory.
    /// `None` when not set: the gateway then uses
    /// `/run/sse-gateway` for root, `/tmp/sse-gateway-<uid>` for any other
    /// user (never taken from the environment, which may differ between the
    /// running process and the one started with `run --upgrade`).
    pub runtime_dir: Option<PathBuf>,
    /// `trusted_proxies`: load balancers and proxies in front of the
    /// gateway (addresses or networks). A connection from one of them is
    /// counted, for the per-address limits, as the client its
    /// `X-Forwarded-For` names (the right-most address there that is not
    /// itself trusted). Default: none (every connection is its own peer).
    pub trusted_proxies: Vec<IpCidr>,
    /// `defaults`, resolved: what a route gets for every setting it does not set.
    pub defaults: TopicSettingsConfig,
    /// `limits`: global admission limits.
    pub limits: Limits,
    /// `metrics`: metric cardinality settings.
    pub metrics: MetricsConfig,
    /// `multi`: the multi-topic endpoint, if any.
    pub multi: Option<MultiConfig>,
    /// `routes`, in file order (the first matching route wins).
    pub routes: Vec<RouteConfig>,
    /// Valid but risky settings, in file order (see [`ConfigWarning`]).
    /// They never fail the load; `sse-gateway check` prints them to stderr.
    pub warnings: Vec<ConfigWarning>,
}

/// `tls:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// `tls.listen`: HTTPS listeners (HTTP/2 offered by ALPN beside HTTP/1.1).
    pub listen: Vec<SocketAddr>,
    /// `tls.cert`: PEM certificate chain. Relative paths are resolved against
    /// the configuration file's directory; the file existed when loaded.
    pub cert: PathBuf,
    /// `tls.key`: PEM private key, resolved like `cert`.
    pub key: PathBuf,
    /// `tls.h2_max_concurrent_streams`: HTTP/2 streams one client connection
    /// may have open at once (browsers open one per EventSource). Default
    /// 100; applies to h2 over TLS and to h2c.
    pub h2_max_concurrent_streams: u32,
}

/// `log:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// `log.format`. Default [`LogFormat::Text`].
    pub format: LogFormat,
    /// `log.level`: a level (`error`, `warn`, `info`, `debug`, `trace`) or a
    /// filter directive such as `info,sse_gateway_hub=debug`. Default `info`.
    pub level: String,
}

/// `log.format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// `text`: human-readable lines.
    Text,
    /// `json`: one JSON object per line.
    Json,
}

/// `limits:`. Counts, sizes and durations are all greater than zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `limits.max_clients`: subscribers across all topics. Default 100000.
    pub max_clients: usize,
    /// `limits.max_clients_per_topic`. Default 50000.
    pub max_clients_per_topic: usize,
    /// `limits.max_topics`: open topics at once. Default 10000.
    pub max_topics: usize,
    /// `limits.max_connections`: open client connections across all public
    /// listeners (plain and TLS), direct-path streams included; over it a
    /// new connection is closed at once. Default 100000.
    pub max_connections: usize,
    /// `limits.max_streams_per_address`: concurrent event streams from one
    /// client IP address. Default 1000.
    pub max_streams_per_address: usize,
    /// `limits.request_header_timeout`: the whole request header must arrive
    /// within this, counted from accept, or from the end of the previous
    /// response on a kept-alive connection. Default 10s.
    pub request_header_timeout: Duration,
    /// `limits.new_topics_per_address`: how many topics one client address
    /// may open (a request for a topic that is not open yet): `max` at once,
    /// then one more every `per / max`; over it the request is refused like
    /// any limit. `None` when `max` is 0 (off). Default `{ max: 100, per: 10s }`.
    pub new_topics_per_address: Option<TopicOpenRate>,
    /// `limits.replay_memory`: process-wide budget, in bytes, for the frame
    /// bytes held by all replay rings. Default 256 MiB.
    pub replay_memory: u64,
}

/// `limits.new_topics_per_address`: at most `max` new topics per `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicOpenRate {
    /// `max`: topics one client address may open per window (> 0 here:
    /// `max: 0` in the file turns the limit off).
    pub max: u32,
    /// `per`: the window (> 0).
    pub per: Duration,
}

/// `metrics:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsConfig {
    /// `metrics.max_topic_series`: topics with their own label value; the
    /// rest share `topic="__other__"`. 0 puts every topic in `__other__`.
    /// Default 1000.
    pub max_topic_series: usize,
}

/// `multi:`: one stream for several topics of fan-out routes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultiConfig {
    /// `multi.path`: the endpoint's path (exact; it must not be a route's).
    pub path: String,
    /// `multi.max_topics`: most member topics per stream (at most 64).
    /// Default 8.
    pub max_topics: usize,
}

/// The per-topic settings of a fan-out route (`defaults:` merged with the
/// route's own keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSettingsConfig {
    /// `heartbeat`: a `:` comment after this much idle time on a client
    /// stream; `None` when set to `0s` (off). Default 15s.
    pub heartbeat: Option<Duration>,
    /// `client_retry`: the `retry:` sent to each client when its stream
    /// opens (jittered); `None` when `0s` (none sent). Default 3s.
    pub client_retry: Option<Duration>,
    /// `replay`: the per-topic replay ring.
    pub replay: ReplayConfig,
    /// `client_queue`: bytes a client may have pending before it is
    /// disconnected as slow. Default 1 MiB. At least `max_event_size`.
    pub client_queue: u64,
    /// `max_event_size`: larger upstream events are dropped and counted.
    /// Default 1 MiB.
    pub max_event_size: u64,
    /// `linger`: keep a topic's upstream open this long after its last
    /// client leaves. Default 30s.
    pub linger: Duration,
    /// `upstream_backoff`: reconnect delays (with jitter).
    pub upstream_backoff: BackoffConfig,
    /// `upstream_idle_timeout`: an upstream silent this long is reconnected;
    /// `None` when `0s` (never). Default 45s.
    pub upstream_idle_timeout: Option<Duration>,
    /// `stop_holdoff`: after the upstream answers 204, new subscribers get
    /// 204 for this long. Default 30s.
    pub stop_holdoff: Duration,
    /// `gap_event`: when set, clients that resume from an id no longer in
    /// the replay ring first get an event of this type. Default none.
    pub gap_event: Option<String>,
    /// `write_window`: how long a topic may gather frames before writing to
    /// clients; zero writes each frame at once. Default 0ms.
    pub write_window: Duration,
    /// `coalesce_window`: on the direct path, frames for a client that has
    /// not acknowledged the last ones it was sent are gathered into one
    /// write for this long; a
    /// client that keeps up gets each frame at once. Zero: every frame is
    /// sent when it arrives. Default 5ms.
    pub coalesce_window: Duration,
    /// `upstream_connect_timeout`: time allowed to connect to the upstream
    /// and receive its response head. Default 5s.
    pub upstream_connect_timeout: Duration,
    /// `direct_write`: plain HTTP/1.1 subscribers leave pingora after the
    /// response header and the topic writes to their sockets itself (the
    /// direct path); `false` keeps every subscriber on the session path.
    /// TLS and HTTP/2 subscribers always use the session path. Default true.
    pub direct_write: bool,
    /// `max_topics`: topics this route may have open at once, on top of
    /// `limits.max_topics`; `None` when not set (only the global limit).
    /// Greater than zero. Default none.
    pub max_topics: Option<usize>,
    /// `upstream_answer_timeout`: how long the first subscribers of a new
    /// topic wait for the upstream's first answer before they get their 200.
    /// On 401/403/404/410 or a wrong content type they get the upstream's
    /// status instead; after this bound they get 200 and the gateway keeps
    /// retrying. Zero: do not wait. Default 5s.
    pub upstream_answer_timeout: Duration,
    /// `resume_from_client`: a new topic's upstream is opened with its first
    /// subscriber's `Last-Event-ID` (for the zero-downtime upgrade
    /// hand-over); off, the first subscriber cannot choose where the shared
    /// upstream resumes. Default false.
    pub resume_from_client: bool,
    /// `slow_client`: cut a client that falls behind (default), or coalesce
    /// its pending events to the newest per `coalesce_by` key.
    pub slow_client: SlowClientPolicy,
    /// `coalesce_by`: the key of `slow_client: coalesce` (default: the event
    /// type).
    pub coalesce_by: CoalesceKey,
    /// `event_filter`: a client may ask for only some event types with
    /// `?event=a,b` (filtered at the gateway, replay included); off, the
    /// parameter is ignored. Default false.
    pub event_filter: bool,
}

/// `replay:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayConfig {
    /// `replay.events`: events kept per topic for `Last-Event-ID` resume;
    /// 0 turns replay off. Default 1000.
    pub events: usize,
    /// `replay.max_age`: older events are not replayed. Default 5m; > 0.
    pub max_age: Duration,
    /// `replay.max_bytes`: payload bytes one topic's replay ring keeps (the
    /// oldest events go first). Default 8 MiB; > 0.
    pub max_bytes: u64,
}

/// `upstream_backoff:`. `initial <= max` and `max > 0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffConfig {
    /// `upstream_backoff.initial`: the first delay. Default 250ms.
    pub initial: Duration,
    /// `upstream_backoff.max`: the largest delay. Default 30s.
    pub max: Duration,
}

/// One entry of `routes:`.
#[derive(Debug, Clone)]
pub struct RouteConfig {
    /// `name`: unique; the `route` label in metrics.
    pub name: String,
    /// `path`: the request path pattern.
    pub path: PathPattern,
    /// `params`: capture name → regex the whole decoded capture must match.
    /// Every name is a capture of `path`.
    pub params: BTreeMap<String, ParamRegex>,
    /// Fan-out or pass-through.
    pub kind: RouteKind,
    /// `cors`: the CORS policy, if any (none: no CORS headers).
    pub cors: Option<CorsConfig>,
    /// `auth`: credentials required, if any.
    pub auth: Option<AuthConfig>,
    /// `lenient_captures`: by default a fan-out route's path captures refuse
    /// (the route does not match) any Unicode White_Space character and any
    /// format character (general category Cf, such as U+202E or U+200B),
    /// after percent-decoding; `true` accepts them. Fan-out routes only
    /// (always false on proxy routes, whose captures are never checked for
    /// these). Default false.
    pub lenient_captures: bool,
}

/// What a route does.
#[derive(Debug, Clone)]
#[allow(
    clippy::large_enum_variant,
    reason = "built once at start-up; unboxed variants keep matching simple"
)]
pub enum RouteKind {
    /// `upstream:`: one upstream connection per topic, shared by all subscribers.
    FanOut(FanOutRoute),
    /// `proxy:`: a plain reverse-proxy route, per request, streamed.
    Proxy(ProxyRoute),
}

/// A fan-out route.
#[derive(Debug, Clone)]
pub struct FanOutRoute {
    /// `topic`: the topic name template. Default: the request path (a
    /// template mirroring `path`, filled with the decoded captures).
    pub topic: Template,
    /// `upstream`: where each topic's events come from.
    pub upstream: UpstreamConfig,
    /// The topic settings (`defaults:` merged with this route's keys).
    pub settings: TopicSettingsConfig,
}

/// `upstream:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamConfig {
    /// `upstream.url`: an http(s) URL template whose `{name}` references
    /// are path captures, only after the host (in the path or query);
    /// `${VAR}` already expanded.
    pub url: Template,
    /// `upstream.headers`: extra request headers, in file order, with
    /// `${VAR}` already expanded. Names are valid header names; values
    /// have no control characters.
    pub headers: Vec<(String, String)>,
    /// `upstream.ca_file`: PEM file of CA certificates that an `https`
    /// upstream's certificate is verified against, instead of the system
    /// roots. Resolved like `tls.cert`; parsed when loaded. Default none.
    pub ca_file: Option<PathBuf>,
    /// `upstream.insecure_skip_verify`: do not verify an `https` upstream's
    /// certificate or host name at all (logged as a warning at start-up and
    /// on every connect). Default false.
    pub insecure_skip_verify: bool,
}

/// A `proxy:` route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyRoute {
    /// `proxy`: the upstream base URL (http or https, with a host, no query
    /// or fragment); `${VAR}` already expanded.
    pub url: url::Url,
    /// `upstream_connect_timeout` for this route. Default 5s.
    pub connect_timeout: Duration,
}

/// `cors:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorsConfig {
    /// `cors.origins`: allowed origins (not empty). `*` is never combined
    /// with `credentials: true`.
    pub origins: Vec<OriginPattern>,
    /// `cors.credentials`: allow credentials (echo the origin, never `*`). Default false.
    pub credentials: bool,
    /// `cors.allow_null`: accept `Origin: null` (sandboxed iframes, `file:`
    /// pages, some redirects). Any such page can then read the stream: keep it
    /// off unless you need it. Default false.
    pub allow_null: bool,
    /// `cors.max_age`: how long a browser may cache a preflight answer;
    /// `None`: no `Access-Control-Max-Age` header. Default none.
    pub max_age: Option<Duration>,
}

/// A `params` regex, compiled anchored (it must match the whole capture).
#[derive(Debug, Clone)]
pub struct ParamRegex {
    source: String,
    regex: Regex,
}

// === impl ParamRegex ===

impl ParamRegex {
    /// Compiles `source` anchored at both ends (`^(?:source)$`).
    ///
    /// `source` must compile on its own first: otherwise a source such as
    /// `a)|(.*` would close the wrapper's group and become
    /// `^(?:a)|(.*)$`, which matches anything.
    pub fn new(source: &str) -> Result<Self, regex::Error> {
        Regex::new(source)?;
        let regex = Regex::new(&format!("^(?:{source})$"))?;
        Ok(Self {
            source: source.to_owned(),
            regex,
        })
    }

    /// The regex as written in the file.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// True when the whole of `value` matches.
    pub fn is_match(&self, value: &str) -> bool {
        self.regex.is_match(value)
    }
}

// === impl RouteConfig ===

impl RouteConfig {
    /// The fan-out part, for fan-out routes.
    pub fn fan_out(&self) -> Option<&FanOutRoute> {
        match &self.kind {
            RouteKind::FanOut(fan_out) => Some(fan_out),
            RouteKind::Proxy(_) => None,
        }
    }

    /// The proxy part, for proxy routes.
    pub fn proxy(&self) -> Option<&ProxyRoute> {
        match &self.kind {
            RouteKind::Proxy(proxy) => Some(proxy),
            RouteKind::FanOut(_) => None,
        }
    }
}

// === defaults ===

impl Default for TopicSettingsConfig {
    fn default() -> Self {
        Self {
            heartbeat: Some(Duration::from_secs(15)),
            client_retry: Some(Duration::from_secs(3)),
            replay: ReplayConfig::default(),
            client_queue: 1 << 20,
            max_event_size: 1 << 20,
            linger: Duration::from_secs(30),
            upstream_backoff: BackoffConfig::default(),
            upstream_idle_timeout: Some(Duration::from_secs(45)),
            stop_holdoff: Duration::from_secs(30),
            gap_event: None,
            write_window: Duration::ZERO,
            coalesce_window: Duration::from_millis(5),
            upstream_connect_timeout: Duration::from_secs(5),
            direct_write: true,
            max_topics: None,
            upstream_answer_timeout: Duration::from_secs(5),
            resume_from_client: false,
            event_filter: false,
            slow_client: SlowClientPolicy::Disconnect,
            coalesce_by: CoalesceKey::EventType,
        }
    }
}

impl Default for ReplayConfig {
    fn default() -> Self {
        Self {
            events: 1000,
            max_age: Duration::from_secs(5 * 60),
            max_bytes: 8 << 20,
        }
    }
}

impl Default for BackoffConfig {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(250),
            max: Duration::from_secs(30),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_clients: 100_000,
            max_clients_per_topic: 50_000,
            max_topics: 10_000,
            max_connections: 100_000,
            max_streams_per_address: 1000,
            request_header_timeout: Duration::from_secs(10),
            new_topics_per_address: Some(TopicOpenRate::default()),
            replay_memory: 256 << 20,
        }
    }
}

impl Default for TopicOpenRate {
    fn default() -> Self {
        Self {
            max: 100,
            per: Duration::from_secs(10),
        }
    }
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            max_topic_series: 1000,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".to_owned(),
        }
    }
}
