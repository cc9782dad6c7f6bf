//! The file's shape: what the YAML says, key by key, with positions, before
//! any value is interpreted. Private to this crate; see [`crate::model`] for
//! what the rest of the product sees.
//!
//! Reading into this shape checks only YAML-level types (mapping, list,
//! string, whole number, boolean), unknown keys and required keys. Durations,
//! sizes, addresses, patterns and cross-field rules are checked by
//! [`crate::validate`].

mod route;

use crate::read::{Diag, MapReader, Spanned};
use crate::yaml::{Node, NodeKind, Pos};

pub(crate) use route::{RawAuth, RawCors, RawJwt, RawRoute, RawUpstream};

/// A string value with its position.
pub(crate) type Text = Spanned<String>;

/// A string or list of strings with its position.
pub(crate) type TextList = Spanned<Vec<Text>>;

/// The whole file.
#[derive(Debug, Default)]
pub(crate) struct RawConfig {
    pub(crate) listen: Option<TextList>,
    pub(crate) admin: Option<Text>,
    pub(crate) threads: Option<Spanned<u64>>,
    pub(crate) tls: Option<RawTls>,
    pub(crate) h2c: Option<Spanned<bool>>,
    pub(crate) shutdown_grace: Option<Text>,
    pub(crate) runtime_dir: Option<Text>,
    pub(crate) trusted_proxies: Option<TextList>,
    pub(crate) log: RawLog,
    pub(crate) defaults: RawSettings,
    pub(crate) limits: RawLimits,
    pub(crate) metrics: RawMetrics,
    pub(crate) routes: Vec<RawRoute>,
}

/// `tls:`.
#[derive(Debug)]
pub(crate) struct RawTls {
    pub(crate) listen: Option<TextList>,
    pub(crate) cert: Option<Text>,
    pub(crate) key: Option<Text>,
    pub(crate) h2_max_concurrent_streams: Option<Spanned<u64>>,
}

/// `log:`.
#[derive(Debug, Default)]
pub(crate) struct RawLog {
    pub(crate) format: Option<Text>,
    pub(crate) level: Option<Text>,
}

/// `limits:`.
#[derive(Debug, Default)]
pub(crate) struct RawLimits {
    pub(crate) max_clients: Option<Spanned<u64>>,
    pub(crate) max_clients_per_topic: Option<Spanned<u64>>,
    pub(crate) max_topics: Option<Spanned<u64>>,
    pub(crate) max_connections: Option<Spanned<u64>>,
    pub(crate) max_streams_per_address: Option<Spanned<u64>>,
    pub(crate) request_header_timeout: Option<Text>,
    pub(crate) new_topics_max: Option<Spanned<u64>>,
    pub(crate) new_topics_per: Option<Text>,
    pub(crate) replay_memory: Option<Text>,
}

/// `metrics:`.
#[derive(Debug, Default)]
pub(crate) struct RawMetrics {
    pub(crate) max_topic_series: Option<Spanned<u64>>,
}

/// The per-topic settings: `defaults:`, or the same keys on a route.
#[derive(Debug, Default)]
pub(crate) struct RawSettings {
    pub(crate) heartbeat: Option<Text>,
    pub(crate) client_retry: Option<Text>,
    pub(crate) replay_events: Option<Spanned<u64>>,
    pub(crate) replay_max_age: Option<Text>,
    pub(crate) replay_max_bytes: Option<Text>,
    pub(crate) client_queue: Option<Text>,
    pub(crate) max_event_size: Option<Text>,
    pub(crate) linger: Option<Text>,
    pub(crate) backoff_initial: Option<Text>,
    pub(crate) backoff_max: Option<Text>,
    pub(crate) upstream_idle_timeout: Option<Text>,
    pub(crate) stop_holdoff: Option<Text>,
    pub(crate) gap_event: Option<Text>,
    pub(crate) write_window: Option<Text>,
    pub(crate) upstream_connect_timeout: Option<Text>,
    pub(crate) direct_write: Option<Spanned<bool>>,
    pub(crate) max_topics: Option<Spanned<u64>>,
    pub(crate) upstream_answer_timeout: Option<Text>,
    pub(crate) resume_from_client: Option<Spanned<bool>>,
}

const TOP_KEYS: &[&str] = &[
    "listen",
    "admin",
    "threads",
    "tls",
    "h2c",
    "shutdown_grace",
    "runtime_dir",
    "trusted_proxies",
    "log",
    "defaults",
    "limits",
    "metrics",
    "routes",
];

/// The keys of `defaults:`, which a route may also set.
pub(crate) const SETTINGS_KEYS: &[&str] = &[
    "heartbeat",
    "client_retry",
    "replay",
    "client_queue",
    "max_event_size",
    "linger",
    "upstream_backoff",
    "upstream_idle_timeout",
    "stop_holdoff",
    "gap_event",
    "write_window",
    "upstream_connect_timeout",
    "direct_write",
    "max_topics",
    "upstream_answer_timeout",
    "resume_from_client",
];

/// The keys of `limits:`.
const LIMIT_KEYS: &[&str] = &[
    "max_clients",
    "max_clients_per_topic",
    "max_topics",
    "max_connections",
    "max_streams_per_address",
    "request_header_timeout",
    "new_topics_per_address",
    "replay_memory",
];

// === impl RawConfig ===

impl RawConfig {
    /// Reads the document root. `None` (after an error) when the root is not
    /// a mapping.
    pub(crate) fn read(diag: &mut Diag, root: &Node) -> Option<Self> {
        let map = MapReader::new(diag, root, "", TOP_KEYS)?;
        let mut raw = RawConfig {
            listen: map.strings(diag, "listen"),
            admin: map.string(diag, "admin"),
            threads: map.number(diag, "threads"),
            h2c: map.boolean(diag, "h2c"),
            shutdown_grace: map.string(diag, "shutdown_grace"),
            runtime_dir: map.string(diag, "runtime_dir"),
            trusted_proxies: map.strings(diag, "trusted_proxies"),
            ..RawConfig::default()
        };
        if let Some(tls) = map.map(
            diag,
            "tls",
            &["listen", "cert", "key", "h2_max_concurrent_streams"],
        ) {
            raw.tls = Some(RawTls {
                listen: required(diag, &tls, "listen").and_then(|_| tls.strings(diag, "listen")),
                cert: tls.required_string(diag, "cert"),
                key: tls.required_string(diag, "key"),
                h2_max_concurrent_streams: tls.number(diag, "h2_max_concurrent_streams"),
            });
        }
        if let Some(log) = map.map(diag, "log", &["format", "level"]) {
            raw.log = RawLog {
                format: log.string(diag, "format"),
                level: log.string(diag, "level"),
            };
        }
        if let Some(defaults) = map.map(diag, "defaults", SETTINGS_KEYS) {
            raw.defaults = RawSettings::read(diag, &defaults);
        }
        if let Some(limits) = map.map(diag, "limits", LIMIT_KEYS) {
            raw.limits = RawLimits::read(diag, &limits);
        }
        if let Some(metrics) = map.map(diag, "metrics", &["max_topic_series"]) {
            raw.metrics.max_topic_series = metrics.number(diag, "max_topic_series");
        }
        raw.routes = read_routes(diag, &map);
        Some(raw)
    }
}

/// `routes:` (required, a non-empty list).
fn read_routes(diag: &mut Diag, map: &MapReader<'_>) -> Vec<RawRoute> {
    let Some((node, path)) = map.child("routes") else {
        map.missing(diag, "routes");
        return Vec::new();
    };
    match &node.kind {
        NodeKind::Seq(items) if items.is_empty() => {
            diag.push(node.pos, &path, "at least one route is needed");
            Vec::new()
        }
        NodeKind::Seq(items) => items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| RawRoute::read(diag, item, &format!("{path}[{i}]")))
            .collect(),
        _ => {
            diag.push(
                node.pos,
                &path,
                format!("expected a list of routes, found {}", node.describe()),
            );
            Vec::new()
        }
    }
}

/// Reports `key` as missing when absent; `Some(())` when present.
pub(crate) fn required(diag: &mut Diag, map: &MapReader<'_>, key: &str) -> Option<()> {
    if map.node(key).is_none() {
        map.missing(diag, key);
        return None;
    }
    Some(())
}

// === impl RawLimits ===

impl RawLimits {
    /// Reads the `limits:` mapping.
    fn read(diag: &mut Diag, map: &MapReader<'_>) -> Self {
        let mut limits = RawLimits {
            max_clients: map.number(diag, "max_clients"),
            max_clients_per_topic: map.number(diag, "max_clients_per_topic"),
            max_topics: map.number(diag, "max_topics"),
            max_connections: map.number(diag, "max_connections"),
            max_streams_per_address: map.number(diag, "max_streams_per_address"),
            request_header_timeout: map.string(diag, "request_header_timeout"),
            replay_memory: map.string(diag, "replay_memory"),
            ..RawLimits::default()
        };
        if let Some(rate) = map.map(diag, "new_topics_per_address", &["max", "per"]) {
            limits.new_topics_max = rate.number(diag, "max");
            limits.new_topics_per = rate.string(diag, "per");
        }
        limits
    }
}

// === impl RawSettings ===

impl RawSettings {
    /// Reads the settings keys of `map` (the `defaults:` mapping, or a route).
    pub(crate) fn read(diag: &mut Diag, map: &MapReader<'_>) -> Self {
        let mut settings = RawSettings {
            heartbeat: map.string(diag, "heartbeat"),
            client_retry: map.string(diag, "client_retry"),
            client_queue: map.string(diag, "client_queue"),
            max_event_size: map.string(diag, "max_event_size"),
            linger: map.string(diag, "linger"),
            upstream_idle_timeout: map.string(diag, "upstream_idle_timeout"),
            stop_holdoff: map.string(diag, "stop_holdoff"),
            gap_event: map.string(diag, "gap_event"),
            write_window: map.string(diag, "write_window"),
            upstream_connect_timeout: map.string(diag, "upstream_connect_timeout"),
            direct_write: map.boolean(diag, "direct_write"),
            max_topics: map.number(diag, "max_topics"),
            upstream_answer_timeout: map.string(diag, "upstream_answer_timeout"),
            resume_from_client: map.boolean(diag, "resume_from_client"),
            ..RawSettings::default()
        };
        if let Some(replay) = map.map(diag, "replay", &["events", "max_age", "max_bytes"]) {
            settings.replay_events = replay.number(diag, "events");
            settings.replay_max_age = replay.string(diag, "max_age");
            settings.replay_max_bytes = replay.string(diag, "max_bytes");
        }
        if let Some(backoff) = map.map(diag, "upstream_backoff", &["initial", "max"]) {
            settings.backoff_initial = backoff.string(diag, "initial");
            settings.backoff_max = backoff.string(diag, "max");
        }
        settings
    }

    /// Where each fan-out-only setting that is set was written (every
    /// setting but `upstream_connect_timeout`), for errors on proxy routes.
    pub(crate) fn fan_out_only(&self) -> Vec<(Pos, &str)> {
        let texts = [
            &self.heartbeat,
            &self.client_retry,
            &self.replay_max_age,
            &self.replay_max_bytes,
            &self.client_queue,
            &self.max_event_size,
            &self.linger,
            &self.backoff_initial,
            &self.backoff_max,
            &self.upstream_idle_timeout,
            &self.stop_holdoff,
            &self.gap_event,
            &self.write_window,
            &self.upstream_answer_timeout,
        ];
        let texts = texts.into_iter().flatten().map(Spanned::at);
        let numbers = [&self.replay_events, &self.max_topics];
        let numbers = numbers.into_iter().flatten().map(Spanned::at);
        let flags = [&self.direct_write, &self.resume_from_client];
        let flags = flags.into_iter().flatten().map(Spanned::at);
        texts.chain(numbers).chain(flags).collect()
    }
}
