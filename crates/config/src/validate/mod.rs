//! YAML nodes → validated [`GatewayConfig`]: each key is read where it is
//! validated, through a [`MapReader`] that checks its YAML type and reports
//! the keys nobody read as unknown; values are parsed, defaults filled, and
//! the cross-field rules checked. Every problem is recorded; nothing stops
//! at the first one.

mod access;
mod check;
mod fan_out;
mod route;
mod settings;
mod tls;
mod topic;
mod urls;
mod warnings;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;

use self::check::{
    count, duration, positive_count, positive_duration, positive_size, section, socket_addr,
    socket_addrs,
};
use crate::diag::Diag;
use crate::model::{
    GatewayConfig, Limits, LogConfig, LogFormat, MetricsConfig, MultiConfig, RouteConfig,
    TopicOpenRate, TopicSettingsConfig,
};
use crate::read::{MapReader, Text, TextList};
use crate::values::cidr::IpCidr;
use crate::values::env::EnvSource;
use crate::yaml::{Node, NodeKind};

pub(crate) use self::check::not_regular;

/// The default public listener.
const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// The default admin listener.
const DEFAULT_ADMIN: &str = "127.0.0.1:9090";

/// Validates the whole file. `None` when any error was recorded.
pub(crate) fn validate(
    diag: &mut Diag,
    root: &Node,
    env: &dyn EnvSource,
    base_dir: &Path,
) -> Option<GatewayConfig> {
    let config = MapReader::read(diag, root, "", |diag, map| top(diag, map, env, base_dir));
    config.flatten().filter(|_| diag.is_empty())
}

/// The top-level keys.
fn top(
    diag: &mut Diag,
    map: &mut MapReader<'_>,
    env: &dyn EnvSource,
    base_dir: &Path,
) -> Option<GatewayConfig> {
    let listen_list = map.take::<Vec<Text>>(diag, "listen");
    let listen = listen_list.as_ref().map(|list| socket_addrs(diag, list));
    let admin_text = map.take::<String>(diag, "admin");
    let admin = admin_text.as_ref().map(|text| socket_addr(diag, text));
    let threads = match map.take::<u64>(diag, "threads") {
        Some(n) => positive_count(diag, &n),
        None => Some(std::thread::available_parallelism().map_or(1, usize::from)),
    };
    let (tls, tls_listen) = map
        .map(diag, "tls", |diag, tls| {
            tls::tls_config(diag, tls, base_dir)
        })
        .map_or((None, None), |(tls, listen)| (Some(tls), listen));
    check_addresses(
        diag,
        admin_text.as_ref(),
        listen_list.as_ref(),
        tls_listen.as_ref(),
    );
    let h2c = map.take::<bool>(diag, "h2c").is_some_and(|b| b.value);
    let shutdown_grace = match map.take(diag, "shutdown_grace") {
        Some(text) => duration(diag, &text),
        None => Some(std::time::Duration::from_secs(10)),
    };
    let runtime_dir = match map.take(diag, "runtime_dir") {
        Some(text) => check::runtime_dir(diag, &text, base_dir).map(Some),
        None => Some(None),
    };
    let trusted = map.take(diag, "trusted_proxies");
    let trusted_proxies = trusted_proxies(diag, trusted.as_ref());
    let log = map.map(diag, "log", log_config);
    let defaults = map.map(diag, "defaults", |diag, defaults| {
        let base = TopicSettingsConfig::default();
        settings::apply(diag, &base, defaults, settings::Mode::FanOut)
    });
    let defaults = defaults.unwrap_or_default();
    let limits = map.map(diag, "limits", limits);
    let metrics = map.map(diag, "metrics", |diag, metrics| {
        match metrics.take::<u64>(diag, "max_topic_series") {
            Some(n) => count(diag, &n).map(|max_topic_series| MetricsConfig { max_topic_series }),
            None => Some(MetricsConfig::default()),
        }
    });
    let multi = map.map(diag, "multi", multi);
    let routes = routes(diag, map, env, base_dir, &defaults);
    Some(GatewayConfig {
        listen: match listen {
            Some(listen) => listen.into_iter().map(|(addr, _)| addr).collect(),
            None => vec![default_addr(DEFAULT_LISTEN)?],
        },
        admin: match admin {
            Some(admin) => admin?,
            None => default_addr(DEFAULT_ADMIN)?,
        },
        threads: threads?,
        tls: section(tls)?,
        h2c,
        shutdown_grace: shutdown_grace?,
        log: log.unwrap_or_else(|| Some(LogConfig::default()))?,
        runtime_dir: runtime_dir?,
        trusted_proxies: trusted_proxies?,
        defaults,
        limits: limits.unwrap_or_else(|| Some(Limits::default()))?,
        metrics: metrics.unwrap_or(Some(MetricsConfig::default()))?,
        multi: section(multi)?,
        routes,
        warnings: Vec::new(), // filled by `from_str` from the `Diag`
    })
}

/// Most members `multi.max_topics` may allow (the composite id grows with it).
const MAX_MULTI_TOPICS: u64 = 64;

/// `multi:`: the endpoint's path and its member cap.
fn multi(diag: &mut Diag, map: &mut MapReader<'_>) -> Option<MultiConfig> {
    let path = map.require::<String>(diag, "path");
    let max = map.take::<u64>(diag, "max_topics");
    let path = path.and_then(|text| {
        let ok = text.value.starts_with('/')
            && !text.value.contains(['?', '#', '{', '}'])
            && !text.value.chars().any(char::is_whitespace);
        if !ok {
            diag.at(
                &text,
                "an exact path: starts with `/`, no `{capture}`, query or spaces",
            );
            return None;
        }
        Some(text.value)
    });
    let max_topics = match max {
        Some(n) if n.value == 0 || n.value > MAX_MULTI_TOPICS => {
            diag.at(&n, format!("must be between 1 and {MAX_MULTI_TOPICS}"));
            None
        }
        Some(n) => usize::try_from(n.value).ok(),
        None => Some(8),
    };
    Some(MultiConfig {
        path: path?,
        max_topics: max_topics?,
    })
}

/// `trusted_proxies`: IP addresses and networks.
fn trusted_proxies(diag: &mut Diag, list: Option<&TextList>) -> Option<Vec<IpCidr>> {
    let Some(list) = list else {
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
fn check_addresses(
    diag: &mut Diag,
    admin: Option<&Text>,
    listen: Option<&TextList>,
    tls_listen: Option<&TextList>,
) {
    let mut entries: Vec<(Option<SocketAddr>, Option<&Text>, String)> = Vec::new();
    if admin.is_none() {
        entries.push((
            default_addr(DEFAULT_ADMIN),
            None,
            "`admin` (its default)".into(),
        ));
    }
    if listen.is_none() {
        entries.push((
            default_addr(DEFAULT_LISTEN),
            None,
            "`listen` (its default)".into(),
        ));
    }
    let explicit = admin
        .into_iter()
        .chain(listen.iter().flat_map(|l| &l.value));
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

/// `log:`.
fn log_config(diag: &mut Diag, map: &mut MapReader<'_>) -> Option<LogConfig> {
    let format = map.take::<String>(diag, "format");
    let level = map.take::<String>(diag, "level");
    let mut log = LogConfig::default();
    if let Some(text) = &format {
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
    if let Some(text) = level {
        let valid = !text.value.is_empty()
            && text
                .value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_:,=.-[]{}\"".contains(c));
        if !valid {
            diag.at(&text, "expected a level (error, warn, info, debug, trace) or a filter such as info,sse_gateway_hub=debug");
            return None;
        }
        log.level = text.value;
    }
    Some(log)
}

/// `limits:`.
fn limits(diag: &mut Diag, map: &mut MapReader<'_>) -> Option<Limits> {
    let base = Limits::default();
    let mut pick = |key, default: usize| match map.take::<u64>(diag, key) {
        Some(n) => positive_count(diag, &n),
        None => Some(default),
    };
    let max_clients = pick("max_clients", base.max_clients);
    let max_clients_per_topic = pick("max_clients_per_topic", base.max_clients_per_topic);
    let max_topics = pick("max_topics", base.max_topics);
    let max_connections = pick("max_connections", base.max_connections);
    let max_streams_per_address = pick("max_streams_per_address", base.max_streams_per_address);
    let request_header_timeout = match map.take(diag, "request_header_timeout") {
        Some(text) => positive_duration(diag, &text),
        None => Some(base.request_header_timeout),
    };
    let new_topics_per_address = map
        .map(diag, "new_topics_per_address", new_topics_per_address)
        .unwrap_or(Some(base.new_topics_per_address));
    let replay_memory = match map.take(diag, "replay_memory") {
        Some(text) => positive_size(diag, &text),
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
fn new_topics_per_address(
    diag: &mut Diag,
    map: &mut MapReader<'_>,
) -> Option<Option<TopicOpenRate>> {
    let base = TopicOpenRate::default();
    let max = match map.take::<u64>(diag, "max") {
        Some(n) => u32::try_from(n.value)
            .map_err(|_| diag.at(&n, "number too large (at most 4294967295)"))
            .ok(),
        None => Some(base.max),
    };
    let per = match map.take(diag, "per") {
        Some(text) => positive_duration(diag, &text),
        None => Some(base.per),
    };
    let (max, per) = (max?, per?);
    Some((max > 0).then_some(TopicOpenRate { max, per }))
}

/// `routes:` (required, a non-empty list): every route, and the rule that
/// names are unique.
fn routes(
    diag: &mut Diag,
    map: &mut MapReader<'_>,
    env: &dyn EnvSource,
    base_dir: &Path,
    defaults: &TopicSettingsConfig,
) -> Vec<RouteConfig> {
    let Some((node, path)) = map.take_node("routes") else {
        map.missing(diag, "routes");
        return Vec::new();
    };
    let items = match &node.kind {
        NodeKind::Seq(items) if items.is_empty() => {
            diag.push(node.pos, &path, "at least one route is needed");
            return Vec::new();
        }
        NodeKind::Seq(items) => items,
        _ => {
            let message = format!("expected a list of routes, found {}", node.describe());
            diag.push(node.pos, &path, message);
            return Vec::new();
        }
    };
    let mut ctx = route::RouteCtx {
        env,
        base_dir,
        defaults,
        names: HashMap::new(),
    };
    let mut routes = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let read = MapReader::read(diag, item, &format!("{path}[{i}]"), |diag, route| {
            route::route(diag, route, &mut ctx)
        });
        routes.extend(read.flatten());
    }
    routes
}
