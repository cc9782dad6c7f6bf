//! `sse-gateway demo`: a built-in price ticker upstream, the gateway in
//! front of it (configured in code) and a demo page at `/`.

mod market;
mod upstream;

use std::net::SocketAddr;

use anyhow::Context as _;
use bytes::Bytes;
use sse_gateway_config::{GatewayConfig, ProcessEnv};
use sse_gateway_hub::{TopicHub, UpstreamState};
use sse_gateway_metrics::names;

pub(crate) use upstream::DemoUpstream;

use crate::cli::DemoArgs;
use crate::state::AppState;

/// The demo page, served at `/` on the public listener (`__ADMIN__` stands
/// for the admin address).
const PAGE: &str = include_str!("page.html");

/// The demo page with the admin address filled in.
pub(crate) fn page(admin: SocketAddr) -> Bytes {
    Bytes::from(PAGE.replace("__ADMIN__", &admin.to_string()))
}

/// The path of the demo page's numbers ([`stats_json`]).
pub(crate) const STATS_PATH: &str = "/demo/stats";

/// The gateway's own numbers for the demo page, on its own origin (the
/// admin listener's `/topics` and `/metrics` are on another port, which a
/// page may not read): topics, subscribers, upstream connections (one per
/// topic however many subscribers), events received and delivered.
pub(crate) fn stats_json(state: &AppState) -> String {
    let topics = state.hub().map(TopicHub::topics).unwrap_or_default();
    let delivered = state.metrics.total(&names::DELIVERED_EVENTS);
    serde_json::json!({
        "topics": topics.len(),
        "subscribers": topics.iter().map(|t| t.subscribers).sum::<usize>(),
        "upstream_connections": topics
            .iter()
            .filter(|t| t.upstream == UpstreamState::Live)
            .count(),
        "events_received": topics.iter().map(|t| t.events_received).sum::<u64>(),
        "events_delivered": delivered as u64,
    })
    .to_string()
}

/// The demo's configuration and its upstream (bound, not yet serving).
pub(crate) fn prepare(args: &DemoArgs) -> anyhow::Result<(GatewayConfig, DemoUpstream)> {
    let upstream = DemoUpstream::bind().context("binding the demo upstream")?;
    let yaml = config_yaml(args.listen, args.admin, upstream.addr());
    let config = sse_gateway_config::from_str("<demo>", &yaml, &ProcessEnv)
        .map_err(|e| anyhow::anyhow!("the demo configuration is invalid:\n{e}"))?;
    Ok((config, upstream))
}

/// The URLs a newcomer wants, as printed on start.
pub(crate) fn banner(config: &GatewayConfig) -> String {
    let listen = config
        .listen
        .first()
        .map_or_else(String::new, ToString::to_string);
    format!(
        "sse-gateway demo is running.\n\
         \n  demo page:  http://{listen}/\
         \n  a stream:   curl -N http://{listen}/prices/AAPL\
         \n  metrics:    curl http://{admin}/metrics\
         \n  topics:     curl http://{admin}/topics\
         \n\nPress Ctrl-C to stop.\n",
        admin = config.admin,
    )
}

fn config_yaml(listen: SocketAddr, admin: SocketAddr, upstream: SocketAddr) -> String {
    format!(
        r#"listen: ["{listen}"]
admin: "{admin}"
shutdown_grace: 1s
multi:
  path: /multi
  max_topics: 4
defaults:
  heartbeat: 15s
  client_retry: 2s
  linger: 10s
  replay: {{ events: 100, max_age: 5m }}
  upstream_backoff: {{ initial: 250ms, max: 5s }}
routes:
  - name: prices
    path: /prices/{{symbol}}
    params:
      symbol: "[A-Z]{{1,8}}"
    topic: "prices/{{symbol}}"
    upstream:
      url: "http://{upstream}/stream/{{symbol}}"
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_config_is_valid_and_routes_prices() {
        let args = DemoArgs {
            listen: "127.0.0.1:18080".parse().unwrap(),
            admin: "127.0.0.1:19090".parse().unwrap(),
        };
        let (config, upstream) = prepare(&args).unwrap();
        assert_eq!(config.listen, vec![args.listen]);
        assert_eq!(config.admin, args.admin);
        let table = sse_gateway_routes::RouteTable::new(&config);
        let matched = table
            .match_request(&http::Method::GET, "/prices/AAPL")
            .matched()
            .unwrap();
        assert_eq!(matched.topic(), Some("prices/AAPL"));
        assert_eq!(
            matched.upstream_url(),
            format!("http://{}/stream/AAPL", upstream.addr())
        );
        assert!(table
            .match_request(&http::Method::GET, "/prices/aapl")
            .matched()
            .is_none());
        assert!(banner(&config).contains("http://127.0.0.1:18080/prices/AAPL"));
    }

    #[test]
    fn the_page_opens_event_sources_through_the_gateway() {
        let page = page("127.0.0.1:9999".parse().unwrap());
        let page = std::str::from_utf8(&page).unwrap();
        assert!(page.contains("new EventSource"));
        assert!(page.contains("/prices/"));
        assert!(page.contains("http://127.0.0.1:9999/topics"));
        assert!(
            page.contains("<canvas class=\"chart\""),
            "a chart per symbol"
        );
        assert!(page.contains(STATS_PATH), "the gateway's numbers");
        assert!(page.contains("/multi?"), "the multi-topic card");
    }
}
