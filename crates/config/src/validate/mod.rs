//! Raw shape → validated [`GatewayConfig`]: values parsed, defaults filled,
//! and the cross-field rules checked. Every problem is recorded; nothing
//! stops at the first one.

mod access;
mod check;
mod route;
mod settings;
mod tls;
mod urls;
mod warnings;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;

use self::check::{
    count, duration, positive_count, positive_duration, positive_size, section, socket_addr,
    socket_addrs,
};
use crate::model::{GatewayConfig, Limits, LogConfig, LogFormat, MetricsConfig, TopicOpenRate};
use crate::raw::{RawConfig, RawLimits, RawLog, Text, TextList};
use crate::read::{Diag, Spanned};
use crate::values::cidr::IpCidr;
use crate::values::env::EnvSource;

pub(crate) use self::check::not_regular;

/// The default public listener.
const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// The default admin listener.
const DEFAULT_ADMIN: &str = "127.0.0.1:9090";

/// Validates the whole file. `None` when any error was recorded.
pub(crate) fn validate(
    diag: &mut Diag,
    raw: &RawConfig,
    env: &dyn EnvSource,
    base_dir: &Path,
) -> Option<GatewayConfig> {
    let listen = match &raw.listen {
        Some(list) => socket_addrs(diag, list),
        None => Vec::new(),
    };
    let admin = raw.admin.as_ref().and_then(|text| socket_addr(diag, text));
    check_addresses(diag, raw);
    let threads = match &raw.threads {
        Some(n) => positive_count(diag, n),
        None => Some(std::thread::available_parallelism().map_or(1, usize::from)),
    };
    let tls = raw
        .tls
        .as_ref()
        .map(|tls| tls::tls_config(diag, tls, base_dir));
    let shutdown_grace = match &raw.shutdown_grace {
        Some(text) => duration(diag, text),
        None => Some(std::time::Duration::from_secs(10)),
    };
    let runtime_dir = match &raw.runtime_dir {
        Some(text) => check::runtime_dir(diag, text, base_dir).map(Some),
        None => Some(None),
    };
    let trusted_proxies = trusted_proxies(diag, raw.trusted_proxies.as_ref());
    let log = log_config(diag, &raw.log);
    let limits = limits(diag, &raw.limits);
    let metrics = match &raw.metrics.max_topic_series {
        Some(n) => count(diag, n).map(|max_topic_series| MetricsConfig { max_topic_series }),
        None => Some(MetricsConfig::default()),
    };
    let defaults = settings::apply(diag, &Default::default(), &raw.defaults);
    let routes = routes(diag, raw, env, base_dir, &defaults);
    let config = GatewayConfig {
        listen: if raw.listen.is_some() {
            listen.into_iter().map(|(addr, _)| addr).collect()
        } else {
            vec![default_addr(DEFAULT_LISTEN)?]
        },
        admin: match &raw.admin {
            Some(_) => admin?,
            None => default_addr(DEFAULT_ADMIN)?,
        },
        threads: threads?,
        tls: section(tls)?,
        h2c: raw.h2c.as_ref().is_some_and(|b| b.value),
        shutdown_grace: shutdown_grace?,
        log: log?,
        runtime_dir: runtime_dir?,
        trusted_proxies: trusted_proxies?,
        defaults,
        limits: limits?,
        metrics: metrics?,
        routes,
        warnings: Vec::new(), // filled by `from_str` from the `Diag`
    };
    diag.is_empty().then_some(config)
}

/// `trusted_proxies`: IP addresses and networks.
fn trusted_proxies(diag: &mut Diag, raw: Option<&TextList>) -> Option<Vec<IpCidr>> {
    let Some(list) = raw else {
        return Some(Vec::new());
    };
    let mut ok = true;
    let mut out = Vec::new();
    for text in &list.value {
        match IpCidr::parse(&text.value) {
            Ok(cidr) => out.push(cidr),
            Err(e) => {
                diag.at(text, e.to_string());
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

fn default_addr(text: &str) -> Option<SocketAddr> {
    text.parse().ok()
}

/// No address is used twice across `admin`, `listen` and `tls.listen`,
/// defaults included (port 0, "any free port", may repeat). Reported at the
/// later of the two explicit entries.
fn check_addresses(diag: &mut Diag, raw: &RawConfig) {
    let mut entries: Vec<(Option<SocketAddr>, Option<&Text>, String)> = Vec::new();
    if raw.admin.is_none() {
        entries.push((
            default_addr(DEFAULT_ADMIN),
            None,
            "`admin` (its default)".into(),
        ));
    }
    if raw.listen.is_none() {
        entries.push((
            default_addr(DEFAULT_LISTEN),
            None,
            "`listen` (its default)".into(),
        ));
    }
    let tls_listen = raw.tls.as_ref().and_then(|tls| tls.listen.as_ref());
    let explicit = raw
        .admin
        .iter()
        .chain(raw.listen.iter().flat_map(|l| &l.value));
    for text in explicit.chain(tls_listen.iter().flat_map(|l| &l.value)) {
        entries.push((
            text.value.parse().ok(),
            Some(text),
            format!("`{}`", text.path),
        ));
    }
    let entries: Vec<(SocketAddr, Option<&Text>, String)> = entries
        .into_iter()
        .filter_map(|(addr, text, label)| Some((addr?, text, label)))
        .collect();
    for (i, (addr, text, _)) in entries.iter().enumerate() {
        let earlier = entries[..i].iter().find(|(a, _, _)| a == addr);
        if let (Some((_, _, label)), Some(text), false) = (earlier, text, addr.port() == 0) {
            diag.at(text, format!("address {addr} is already used by {label}"));
        }
    }
}

fn log_config(diag: &mut Diag, raw: &RawLog) -> Option<LogConfig> {
    let mut log = LogConfig::default();
    if let Some(text) = &raw.format {
        match text.value.as_str() {
            "text" => log.format = LogFormat::Text,
            "json" => log.format = LogFormat::Json,
            other => {
                diag.at(
                    text,
                    format!("unknown log format `{other}`; expected text or json"),
                );
                return None;
            }
        }
    }
    if let Some(text) = &raw.level {
        let valid = !text.value.is_empty()
            && text
                .value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_:,=.-[]{}\"".contains(c));
        if !valid {
            diag.at(text, "expected a level (error, warn, info, debug, trace) or a filter such as info,sse_gateway_hub=debug");
            return None;
        }
        log.level = text.value.clone();
    }
    Some(log)
}

fn limits(diag: &mut Diag, raw: &RawLimits) -> Option<Limits> {
    let base = Limits::default();
    let mut pick = |slot: &Option<Spanned<u64>>, default: usize| match slot {
        Some(n) => positive_count(diag, n),
        None => Some(default),
    };
    let max_clients = pick(&raw.max_clients, base.max_clients);
    let max_clients_per_topic = pick(&raw.max_clients_per_topic, base.max_clients_per_topic);
    let max_topics = pick(&raw.max_topics, base.max_topics);
    let max_connections = pick(&raw.max_connections, base.max_connections);
    let max_streams_per_address = pick(&raw.max_streams_per_address, base.max_streams_per_address);
    let request_header_timeout = match &raw.request_header_timeout {
        Some(text) => positive_duration(diag, text),
        None => Some(base.request_header_timeout),
    };
    let new_topics_per_address = new_topics_per_address(diag, raw);
    let replay_memory = match &raw.replay_memory {
        Some(text) => positive_size(diag, text),
        None => Some(base.replay_memory),
    };
    Some(Limits {
        max_clients: max_clients?,
        max_clients_per_topic: max_clients_per_topic?,
        max_topics: max_topics?,
        max_connections: max_connections?,
        max_streams_per_address: max_streams_per_address?,
        request_header_timeout: request_header_timeout?,
        new_topics_per_address: new_topics_per_address?,
        replay_memory: replay_memory?,
    })
}

/// `limits.new_topics_per_address`: each key over its default; `max: 0`
/// turns the limit off (`Some(None)`), `per` is > 0 even then.
fn new_topics_per_address(diag: &mut Diag, raw: &RawLimits) -> Option<Option<TopicOpenRate>> {
    let base = TopicOpenRate::default();
    let max = match &raw.new_topics_max {
        Some(n) => u32::try_from(n.value)
            .map_err(|_| diag.at(n, "number too large (at most 4294967295)"))
            .ok(),
        None => Some(base.max),
    };
    let per = match &raw.new_topics_per {
        Some(text) => positive_duration(diag, text),
        None => Some(base.per),
    };
    let (max, per) = (max?, per?);
    Some((max > 0).then_some(TopicOpenRate { max, per }))
}

/// Every route, and the rule that names are unique.
fn routes(
    diag: &mut Diag,
    raw: &RawConfig,
    env: &dyn EnvSource,
    base_dir: &Path,
    defaults: &crate::model::TopicSettingsConfig,
) -> Vec<crate::model::RouteConfig> {
    let mut names: HashMap<&str, &str> = HashMap::new();
    for route in &raw.routes {
        if let Some(name) = &route.name {
            if let Some(first) = names.get(name.value.as_str()) {
                diag.at(
                    name,
                    format!("route name `{}` is already used by {first}", name.value),
                );
            } else {
                names.insert(&name.value, &route.path_key);
            }
        }
    }
    let ctx = route::RouteCtx {
        env,
        base_dir,
        defaults,
    };
    raw.routes
        .iter()
        .filter_map(|r| route::route(diag, r, &ctx))
        .collect()
}
