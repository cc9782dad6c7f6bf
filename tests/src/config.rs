//! A typed builder for the gateway's YAML configuration, so that a test says which keys
//! it sets instead of writing a YAML block by hand.
//!
//! ```
//! use sse_gateway_tests::config::{GatewayConfig, Route, Settings};
//!
//! let yaml = GatewayConfig::quiet()
//!     .threads(2)
//!     .linger("30s")
//!     .route(
//!         Route::fan_out("prices", "/prices/{sym}", "http://127.0.0.1:9/stream/{sym}")
//!             .topic("prices/{sym}")
//!             .replay(100, "5m"),
//!     )
//!     .to_yaml();
//! assert!(yaml.contains("  linger: 30s\n"));
//! assert!(yaml.contains("    topic: \"prices/{sym}\"\n"));
//! ```
//!
//! The keys and their meaning are those of `configs/reference.yaml`. `listen` and `admin`
//! are left out: [`GatewayProcess::start`](crate::GatewayProcess::start) adds both. Keys
//! of `defaults` that a route may override are set through [`Settings`], which both
//! [`GatewayConfig`] (for `defaults:`) and [`Route`] implement. Durations and sizes are
//! written as the gateway reads them (`"200ms"`, `"64KiB"`). Strings are written
//! double-quoted (JSON escaping, which YAML reads the same), keys in the order they were
//! set; a key set twice is written twice, which the gateway refuses, so set each once.

use std::fmt::Display;

use crate::paths::WritePath;

/// Quotes `s` as a YAML double-quoted scalar.
fn quote(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

/// `["a", "b"]`.
fn quote_list(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| quote(s)).collect();
    format!("[{}]", quoted.join(", "))
}

/// `key: value` lines at one indentation, in the order they were set.
#[derive(Debug, Clone, Default)]
struct Block(Vec<(String, String)>);

impl Block {
    fn set(&mut self, key: &str, value: String) {
        self.0.push((key.to_owned(), value));
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn write(&self, out: &mut String, indent: usize) {
        for (key, value) in &self.0 {
            out.push_str(&format!("{:indent$}{key}: {value}\n", ""));
        }
    }
}

/// The per-topic keys of `defaults:` that a route may also set for itself.
///
/// Every method sets one key and returns `self`; [`set`](Settings::set) sets any key of
/// that section with a value written as given (YAML flow syntax).
pub trait Settings: Sized {
    /// Sets `key: value` in this section; `value` is written as it is.
    fn set(self, key: &str, value: impl Into<String>) -> Self;

    /// `heartbeat`: a `:` comment after this much idle time (`"0s"` = off).
    fn heartbeat(self, every: &str) -> Self {
        self.set("heartbeat", every)
    }

    /// `client_retry`: the `retry:` sent when a stream opens (`"0s"` = none).
    fn client_retry(self, after: &str) -> Self {
        self.set("client_retry", after)
    }

    /// `replay: { events, max_age }`.
    fn replay(self, events: u64, max_age: &str) -> Self {
        self.set(
            "replay",
            format!("{{ events: {events}, max_age: {max_age} }}"),
        )
    }

    /// `client_queue`: bytes a client may have pending before it is cut off as slow.
    fn client_queue(self, size: &str) -> Self {
        self.set("client_queue", size)
    }

    /// `max_event_size`: larger upstream events are dropped.
    fn max_event_size(self, size: &str) -> Self {
        self.set("max_event_size", size)
    }

    /// `linger`: how long a topic's upstream outlives its last client.
    fn linger(self, linger: &str) -> Self {
        self.set("linger", linger)
    }

    /// `upstream_backoff: { initial, max }`.
    fn upstream_backoff(self, initial: &str, max: &str) -> Self {
        self.set(
            "upstream_backoff",
            format!("{{ initial: {initial}, max: {max} }}"),
        )
    }

    /// `upstream_idle_timeout` (`"0s"` = never).
    fn upstream_idle_timeout(self, timeout: &str) -> Self {
        self.set("upstream_idle_timeout", timeout)
    }

    /// `stop_holdoff`: after a 204 from the upstream, new subscribers get 204 this long.
    fn stop_holdoff(self, holdoff: &str) -> Self {
        self.set("stop_holdoff", holdoff)
    }

    /// `gap_event`: the event type sent to a client resuming from an unknown id.
    fn gap_event(self, event_type: &str) -> Self {
        self.set("gap_event", quote(event_type))
    }

    /// `write_window`: how long a busy topic gathers frames before writing them.
    fn write_window(self, window: &str) -> Self {
        self.set("write_window", window)
    }

    /// `coalesce_window`: how long frames for a client that is behind its
    /// socket are gathered (direct path).
    fn coalesce_window(self, window: &str) -> Self {
        self.set("coalesce_window", window)
    }

    /// `direct_write`: the direct write path on (`true`) or off.
    fn direct_write(self, on: bool) -> Self {
        self.set("direct_write", on.to_string())
    }

    /// `direct_write` for this [`WritePath`].
    fn write_path(self, path: WritePath) -> Self {
        self.direct_write(path == WritePath::Direct)
    }

    /// `max_topics`: topics this route (or each route) may have open at once.
    fn max_topics(self, max: u64) -> Self {
        self.set("max_topics", max.to_string())
    }

    /// `slow_client`: `disconnect` or `coalesce`.
    fn slow_client(self, policy: &str) -> Self {
        self.set("slow_client", policy)
    }

    /// `coalesce_by`: `event` or `data.FIELD`.
    fn coalesce_by(self, key: &str) -> Self {
        self.set("coalesce_by", key)
    }

    /// `event_filter`: clients may ask for some event types with `?event=a,b`.
    fn event_filter(self, on: bool) -> Self {
        self.set("event_filter", on.to_string())
    }

    /// `resume_from_client`: open a new topic's upstream from its first client's id.
    fn resume_from_client(self, on: bool) -> Self {
        self.set("resume_from_client", on.to_string())
    }
}

/// A whole configuration (without `listen` and `admin`).
#[derive(Debug, Clone, Default)]
pub struct GatewayConfig {
    top: Block,
    tls: Option<Tls>,
    log: Block,
    defaults: Block,
    limits: Block,
    metrics: Block,
    multi: Block,
    routes: Vec<Route>,
}

impl GatewayConfig {
    /// An empty configuration: every key at its default (a route must still be added).
    pub fn new() -> Self {
        Self::default()
    }

    /// The usual test base: `heartbeat: 0s` and `client_retry: 0s` in `defaults`, so that
    /// a stream carries only the upstream's events.
    pub fn quiet() -> Self {
        Self::new().heartbeat("0s").client_retry("0s")
    }

    /// `threads`: worker threads.
    pub fn threads(mut self, threads: usize) -> Self {
        self.top.set("threads", threads.to_string());
        self
    }

    /// `h2c`: cleartext HTTP/2 with prior knowledge on the plain listeners.
    pub fn h2c(mut self, on: bool) -> Self {
        self.top.set("h2c", on.to_string());
        self
    }

    /// `shutdown_grace`: how long clients get to leave on shutdown.
    pub fn shutdown_grace(mut self, grace: &str) -> Self {
        self.top.set("shutdown_grace", grace.to_owned());
        self
    }

    /// `trusted_proxies`: addresses or networks whose `X-Forwarded-For` is believed.
    pub fn trusted_proxies(mut self, proxies: &[&str]) -> Self {
        self.top.set("trusted_proxies", quote_list(proxies));
        self
    }

    /// `tls:` HTTPS listeners.
    pub fn tls(mut self, tls: Tls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// `log.format`: `text` or `json`.
    pub fn log_format(mut self, format: &str) -> Self {
        self.log.set("format", format.to_owned());
        self
    }

    /// `log.level`: a level or a filter directive.
    pub fn log_level(mut self, level: &str) -> Self {
        self.log.set("level", quote(level));
        self
    }

    /// `limits.<key>: value`, `value` written as it is (a count, a duration, or flow
    /// YAML such as `{ max: 3, per: 1m }`).
    pub fn limit(mut self, key: &str, value: impl Into<String>) -> Self {
        self.limits.set(key, value.into());
        self
    }

    /// `metrics.max_topic_series`.
    pub fn max_topic_series(mut self, max: u64) -> Self {
        self.metrics.set("max_topic_series", max.to_string());
        self
    }

    /// `multi: { path, max_topics }`: the multi-topic endpoint.
    pub fn multi(mut self, path: &str, max_topics: u64) -> Self {
        self.multi.set("path", quote(path));
        self.multi.set("max_topics", max_topics.to_string());
        self
    }

    /// Adds a route (routes are tried in the order they were added).
    pub fn route(mut self, route: Route) -> Self {
        self.routes.push(route);
        self
    }

    /// The YAML text.
    pub fn to_yaml(&self) -> String {
        let mut out = String::new();
        self.top.write(&mut out, 0);
        if let Some(tls) = &self.tls {
            out.push_str("tls:\n");
            tls.0.write(&mut out, 2);
        }
        for (name, block) in [
            ("log", &self.log),
            ("defaults", &self.defaults),
            ("limits", &self.limits),
            ("metrics", &self.metrics),
            ("multi", &self.multi),
        ] {
            if !block.is_empty() {
                out.push_str(&format!("{name}:\n"));
                block.write(&mut out, 2);
            }
        }
        if !self.routes.is_empty() {
            out.push_str("routes:\n");
            for route in &self.routes {
                route.write(&mut out);
            }
        }
        out
    }
}

impl Settings for GatewayConfig {
    fn set(mut self, key: &str, value: impl Into<String>) -> Self {
        self.defaults.set(key, value.into());
        self
    }
}

/// The `tls:` section.
#[derive(Debug, Clone)]
pub struct Tls(Block);

impl Tls {
    /// One HTTPS listener on `listen` with this PEM certificate chain and key.
    pub fn new(listen: impl Display, cert: impl Display, key: impl Display) -> Self {
        let mut block = Block::default();
        block.set("listen", quote_list(&[&listen.to_string()]));
        block.set("cert", quote(&cert.to_string()));
        block.set("key", quote(&key.to_string()));
        Self(block)
    }

    /// `h2_max_concurrent_streams`.
    pub fn h2_max_concurrent_streams(mut self, max: u64) -> Self {
        self.0.set("h2_max_concurrent_streams", max.to_string());
        self
    }
}

/// One entry of `routes:`, a fan-out route or a proxy route.
#[derive(Debug, Clone)]
pub struct Route {
    head: Block,
    settings: Block,
    upstream: Block,
    cors: Option<Cors>,
    auth: Option<Auth>,
}

impl Route {
    fn named(name: &str, path: &str) -> Self {
        let mut head = Block::default();
        head.set("name", quote(name));
        head.set("path", quote(path));
        Self {
            head,
            settings: Block::default(),
            upstream: Block::default(),
            cors: None,
            auth: None,
        }
    }

    /// A fan-out route: `name`, request `path` pattern (`/prices/{sym}`), and the
    /// upstream URL template.
    pub fn fan_out(name: &str, path: &str, upstream_url: &str) -> Self {
        let mut route = Self::named(name, path);
        route.upstream.set("url", quote(upstream_url));
        route
    }

    /// A proxy route: requests under `path` are passed through to `url`.
    pub fn proxy(name: &str, path: &str, url: &str) -> Self {
        let mut route = Self::named(name, path);
        route.head.set("proxy", quote(url));
        route
    }

    /// `topic`: the topic name template.
    pub fn topic(mut self, topic: &str) -> Self {
        self.head.set("topic", quote(topic));
        self
    }

    /// `params`: each capture must match its regex.
    pub fn params(mut self, params: &[(&str, &str)]) -> Self {
        let pairs: Vec<String> = params
            .iter()
            .map(|(name, regex)| format!("{name}: {}", quote(regex)))
            .collect();
        self.head
            .set("params", format!("{{ {} }}", pairs.join(", ")));
        self
    }

    /// `lenient_captures`: accept whitespace and format characters in captures.
    pub fn lenient_captures(mut self, on: bool) -> Self {
        self.head.set("lenient_captures", on.to_string());
        self
    }

    /// `upstream.ca_file`: CA certificates for an https upstream.
    pub fn ca_file(mut self, path: impl Display) -> Self {
        self.upstream.set("ca_file", quote(&path.to_string()));
        self
    }

    /// `upstream.insecure_skip_verify`.
    pub fn insecure_skip_verify(mut self, on: bool) -> Self {
        self.upstream.set("insecure_skip_verify", on.to_string());
        self
    }

    /// `cors:`.
    pub fn cors(mut self, cors: Cors) -> Self {
        self.cors = Some(cors);
        self
    }

    /// `auth:`.
    pub fn auth(mut self, auth: Auth) -> Self {
        self.auth = Some(auth);
        self
    }

    fn write(&self, out: &mut String) {
        let mut head = String::new();
        self.head.write(&mut head, 4);
        // The first line opens the list item.
        out.push_str("  - ");
        out.push_str(head.trim_start());
        self.settings.write(out, 4);
        if !self.upstream.is_empty() {
            out.push_str("    upstream:\n");
            self.upstream.write(out, 6);
        }
        if let Some(cors) = &self.cors {
            out.push_str("    cors:\n");
            cors.0.write(out, 6);
        }
        if let Some(auth) = &self.auth {
            out.push_str("    auth:\n");
            auth.cookie.write(out, 6);
            if !auth.jwt.is_empty() {
                out.push_str("      jwt:\n");
                auth.jwt.write(out, 8);
            }
        }
    }
}

impl Settings for Route {
    fn set(mut self, key: &str, value: impl Into<String>) -> Self {
        self.settings.set(key, value.into());
        self
    }
}

/// A route's `cors:` policy.
#[derive(Debug, Clone)]
pub struct Cors(Block);

impl Cors {
    /// `origins`: `"*"`, exact origins or `scheme://*.domain` patterns.
    pub fn origins(origins: &[&str]) -> Self {
        let mut block = Block::default();
        block.set("origins", quote_list(origins));
        Self(block)
    }

    /// `credentials: true`.
    pub fn credentials(mut self) -> Self {
        self.0.set("credentials", "true".to_owned());
        self
    }

    /// `max_age`: how long a preflight answer may be cached.
    pub fn max_age(mut self, max_age: &str) -> Self {
        self.0.set("max_age", max_age.to_owned());
        self
    }
}

/// A route's `auth:` policy.
#[derive(Debug, Clone)]
pub struct Auth {
    cookie: Block,
    jwt: Block,
}

impl Auth {
    /// `cookie`: the cookie that must be present.
    pub fn cookie(name: &str) -> Self {
        let mut cookie = Block::default();
        cookie.set("cookie", quote(name));
        Self {
            cookie,
            jwt: Block::default(),
        }
    }

    /// `jwt: { algorithm, key_file }`: verify the cookie as a JWT with this public key.
    pub fn jwt(mut self, algorithm: &str, key_file: impl Display) -> Self {
        self.jwt.set("algorithm", algorithm.to_owned());
        self.jwt.set("key_file", quote(&key_file.to_string()));
        self
    }

    /// `jwt.topics_claim`: the claim listing the topic patterns a user may read.
    pub fn topics_claim(mut self, claim: &str) -> Self {
        self.jwt.set("topics_claim", quote(claim));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::{Auth, Cors, GatewayConfig, Route, Settings, Tls};
    use crate::WritePath;

    #[test]
    fn writes_every_section_in_place() {
        let yaml = GatewayConfig::quiet()
            .threads(2)
            .trusted_proxies(&["127.0.0.1"])
            .tls(Tls::new("127.0.0.1:1", "c.pem", "k.pem").h2_max_concurrent_streams(4))
            .log_format("json")
            .write_path(WritePath::Session)
            .limit("max_clients", "5")
            .max_topic_series(1)
            .route(
                Route::fan_out("a", "/a/{n}", "http://127.0.0.1:9/{n}")
                    .params(&[("n", "[a-z]+")])
                    .gap_event("gap")
                    .cors(Cors::origins(&["*"]))
                    .auth(Auth::cookie("s").jwt("ES256", "k.pem").topics_claim("sub")),
            )
            .route(Route::proxy("p", "/p/{*rest}", "http://127.0.0.1:9"))
            .to_yaml();
        let want = r#"threads: 2
trusted_proxies: ["127.0.0.1"]
tls:
  listen: ["127.0.0.1:1"]
  cert: "c.pem"
  key: "k.pem"
  h2_max_concurrent_streams: 4
log:
  format: json
defaults:
  heartbeat: 0s
  client_retry: 0s
  direct_write: false
limits:
  max_clients: 5
metrics:
  max_topic_series: 1
routes:
  - name: "a"
    path: "/a/{n}"
    params: { n: "[a-z]+" }
    gap_event: "gap"
    upstream:
      url: "http://127.0.0.1:9/{n}"
    cors:
      origins: ["*"]
    auth:
      cookie: "s"
      jwt:
        algorithm: ES256
        key_file: "k.pem"
        topics_claim: "sub"
  - name: "p"
    path: "/p/{*rest}"
    proxy: "http://127.0.0.1:9"
"#;
        assert_eq!(yaml, want);
    }
}
