//! The files in `configs/prometheus/` use real metric names: every `sse_gateway_*` and
//! `process_*` name in the alerting rules and the Grafana dashboard is exported by a live
//! gateway's `/metrics`, and the dashboard charts every family of the contract table.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::time::Duration;

use sse_gateway_tests::gateway::workspace_root;
use sse_gateway_tests::{
    deadline, GatewayConfig, GatewayProcess, Response, Route, SseClient, UpstreamServer,
};

const CONTRACT: [&str; 11] = [
    "sse_gateway_subscribers",
    "sse_gateway_upstream_up",
    "sse_gateway_upstream_events_total",
    "sse_gateway_delivered_events_total",
    "sse_gateway_delivered_bytes_total",
    "sse_gateway_upstream_reconnects_total",
    "sse_gateway_slow_client_disconnects_total",
    "sse_gateway_replayed_events_total",
    "sse_gateway_heartbeats_sent_total",
    "sse_gateway_rejected_requests_total",
    "sse_gateway_fanout_delay_seconds",
];

fn read(name: &str) -> String {
    let path = workspace_root().join("configs/prometheus").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every metric name with one of our prefixes that occurs in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for prefix in ["sse_gateway_", "process_"] {
        let mut rest = text;
        while let Some(at) = rest.find(prefix) {
            let before = rest[..at].chars().next_back();
            let tail = &rest[at..];
            let len = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            if !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
                names.insert(tail[..len].to_owned());
            }
            rest = &tail[len..];
        }
    }
    names
}

/// The family a sample name belongs to, given the `# TYPE` lines of `/metrics`.
fn family<'a>(name: &'a str, exposition: &str) -> Option<&'a str> {
    let declared = |family: &str| {
        exposition
            .lines()
            .any(|l| l.strip_prefix("# TYPE ").and_then(|l| l.split(' ').next()) == Some(family))
    };
    if declared(name) {
        return Some(name);
    }
    ["_bucket", "_sum", "_count"]
        .iter()
        .filter_map(|suffix| name.strip_suffix(suffix))
        .find(|base| declared(base))
}

#[test]
fn names_are_extracted_whole() {
    let names =
        metric_names("rate(sse_gateway_x_total[5m]) / my_sse_gateway_no process_open_fds{a=\"b\"}");
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        ["process_open_fds", "sse_gateway_x_total"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_in_the_rules_and_the_dashboard_is_exported() {
    let upstream = UpstreamServer::new()
        .default_response(Response::live(20))
        .run()
        .await
        .unwrap();
    let config = GatewayConfig::new().route(Route::fan_out("eco", "/e/{s}", &upstream.url("/{s}")));
    let gateway = GatewayProcess::start(&config.to_yaml()).await.unwrap();
    // Traffic, so that per-topic families have series (and `# TYPE` lines).
    let mut client = SseClient::get(gateway.addr(), "/e/A").await.unwrap();
    client
        .events_until(3, deadline(Duration::from_secs(20)))
        .await
        .unwrap();
    let missing = SseClient::get(gateway.addr(), "/nope").await.unwrap();
    assert_eq!(missing.status(), 404);
    let exposition = gateway.metrics().await.unwrap();

    let rules = read("alerts.yml");
    let dashboard = read("grafana-dashboard.json");
    let scrape = read("prometheus.yml");
    assert!(scrape.contains("metrics_path: /metrics"));
    assert!(
        scrape.contains("alerts.yml"),
        "the scrape config loads the rules"
    );
    assert!(dashboard.trim_start().starts_with('{') && dashboard.contains("\"panels\""));
    assert!(
        dashboard.contains("\"__inputs\""),
        "import-ready: asks for a data source"
    );

    let used: BTreeSet<String> = metric_names(&rules)
        .into_iter()
        .chain(metric_names(&dashboard))
        .collect();
    assert!(used.len() >= 12, "too few names found: {used:?}");
    let unknown: Vec<&String> = used
        .iter()
        .filter(|name| family(name, &exposition).is_none())
        .collect();
    assert!(
        unknown.is_empty(),
        "names not in /metrics: {unknown:?}\n{exposition}"
    );

    let charted: BTreeSet<&str> = metric_names(&dashboard)
        .iter()
        .filter_map(|name| family(name, &exposition).map(str::to_owned))
        .collect::<BTreeSet<String>>()
        .into_iter()
        .map(|f| CONTRACT.into_iter().find(|c| *c == f).unwrap_or("other"))
        .collect();
    for name in CONTRACT {
        assert!(
            charted.contains(name),
            "the dashboard does not chart {name}"
        );
    }
    for alert in [
        "SseGatewayUpstreamDown",
        "SseGatewaySlowClientDisconnects",
        "SseGatewayRejectionsSpike",
        "SseGatewayNoEventsReceived",
    ] {
        assert!(rules.contains(&format!("alert: {alert}")), "{alert} rule");
    }
}
