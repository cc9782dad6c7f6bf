use std::time::Duration;

use crate::names::{self, Kind};
use crate::testing::{parse, Exposition};
use crate::{GatewayMetrics, RejectReason, UpstreamErrorKind, FANOUT_DELAY_BUCKETS};

/// The metrics table of config.md, copied by hand: an independent oracle for
/// the constants in `names`.
const CONTRACT_TABLE: [(&str, &str, &[&str]); 11] = [
    ("sse_gateway_subscribers", "gauge", &["route", "topic"]),
    ("sse_gateway_upstream_up", "gauge", &["route", "topic"]),
    (
        "sse_gateway_upstream_events_total",
        "counter",
        &["route", "topic"],
    ),
    (
        "sse_gateway_delivered_events_total",
        "counter",
        &["route", "topic"],
    ),
    (
        "sse_gateway_delivered_bytes_total",
        "counter",
        &["route", "topic"],
    ),
    (
        "sse_gateway_upstream_reconnects_total",
        "counter",
        &["route", "topic"],
    ),
    (
        "sse_gateway_slow_client_disconnects_total",
        "counter",
        &["route", "topic"],
    ),
    (
        "sse_gateway_replayed_events_total",
        "counter",
        &["route", "topic"],
    ),
    ("sse_gateway_heartbeats_sent_total", "counter", &["route"]),
    (
        "sse_gateway_rejected_requests_total",
        "counter",
        &["route", "reason"],
    ),
    ("sse_gateway_fanout_delay_seconds", "histogram", &["route"]),
];

/// A registry where every family has at least one series.
fn populated() -> (GatewayMetrics, Exposition) {
    let metrics = GatewayMetrics::new(10).unwrap();
    let route = metrics.route("prices");
    route.heartbeat_sent();
    route.observe_fanout_delay(Duration::from_micros(120));
    let topic = metrics.open_topic("prices", "prices/ACME");
    topic.subscriber_joined();
    let text = metrics.encode_text();
    drop(topic);
    (metrics, parse(&text).unwrap())
}

#[test]
fn names_constants_mirror_the_contract_table() {
    assert_eq!(names::CONTRACT.len(), CONTRACT_TABLE.len());
    for (family, (name, kind, labels)) in names::CONTRACT.iter().zip(CONTRACT_TABLE) {
        assert_eq!(family.name, name);
        assert_eq!(family.kind.as_str(), kind, "{name}");
        assert_eq!(family.labels, labels, "{name}");
    }
}

#[test]
fn every_contract_family_renders_with_its_type_and_labels() {
    let (_metrics, exposition) = populated();
    for (name, kind, labels) in CONTRACT_TABLE {
        assert_eq!(
            exposition.types.get(name).map(String::as_str),
            Some(kind),
            "{name}"
        );
        assert!(exposition.helps.contains_key(name), "{name} has no HELP");
        let sample_name = if kind == "histogram" {
            format!("{name}_count")
        } else {
            name.to_string()
        };
        let samples: Vec<_> = exposition.samples_of(&sample_name).collect();
        assert!(!samples.is_empty(), "{name} has no series");
        for sample in samples {
            let keys: Vec<&str> = sample.labels.keys().map(String::as_str).collect();
            let mut want = labels.to_vec();
            want.sort_unstable();
            assert_eq!(keys, want, "{name}");
        }
    }
}

#[test]
fn additions_render_with_their_type() {
    let (_metrics, exposition) = populated();
    for family in names::ADDITIONS {
        assert_eq!(
            exposition.types.get(family.name).map(String::as_str),
            Some(family.kind.as_str()),
            "{}",
            family.name
        );
    }
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        exposition.value(names::BUILD_INFO.name, &[("version", version)]),
        Some(1.0)
    );
}

#[test]
fn contract_and_additions_do_not_overlap() {
    let mut all: Vec<&str> = names::CONTRACT
        .iter()
        .chain(&names::ADDITIONS)
        .map(|f| f.name)
        .collect();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), names::CONTRACT.len() + names::ADDITIONS.len());
    for name in all {
        assert!(name.starts_with("sse_gateway_"), "{name}");
    }
    for family in names::CONTRACT.iter().chain(&names::ADDITIONS) {
        if family.kind == Kind::Counter {
            assert!(family.name.ends_with("_total"), "{}", family.name);
        }
    }
}

#[cfg(target_os = "linux")]
#[test]
fn process_metrics_are_in_the_same_registry() {
    let (_metrics, exposition) = populated();
    for name in [
        names::PROCESS_CPU_SECONDS,
        names::PROCESS_RESIDENT_MEMORY,
        names::PROCESS_OPEN_FDS,
    ] {
        assert!(exposition.types.contains_key(name), "{name} missing");
    }
    let fds = exposition.value(names::PROCESS_OPEN_FDS, &[]).unwrap();
    assert!(fds > 0.0);
}

#[test]
fn rendered_text_parses_even_with_hostile_label_values() {
    let metrics = GatewayMetrics::new(10).unwrap();
    let hostile = "a\"b\\c\nd} 1\n# TYPE x counter";
    let topic = metrics.open_topic("r", hostile);
    topic.delivered(3, 300);
    let text = metrics.encode_text();
    let exposition = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(
        exposition.value(
            names::DELIVERED_EVENTS.name,
            &[("route", "r"), ("topic", hostile)]
        ),
        Some(3.0)
    );
    // Every line is a comment or a sample; nothing else leaked in.
    assert_eq!(
        text.lines().filter(|l| !l.starts_with('#')).count(),
        exposition.samples.len()
    );
}

#[test]
fn fanout_histogram_has_the_documented_buckets() {
    assert_eq!(FANOUT_DELAY_BUCKETS[0], 50e-6);
    assert_eq!(FANOUT_DELAY_BUCKETS[FANOUT_DELAY_BUCKETS.len() - 1], 5.0);
    assert!(FANOUT_DELAY_BUCKETS.windows(2).all(|w| w[0] < w[1]));

    let metrics = GatewayMetrics::new(10).unwrap();
    let route = metrics.route("r");
    route.observe_fanout_delay(Duration::from_micros(30));
    route.observe_fanout_delay(Duration::from_millis(3));
    route.observe_fanout_delay(Duration::from_secs(9));
    let exposition = parse(&metrics.encode_text()).unwrap();
    let bucket = "sse_gateway_fanout_delay_seconds_bucket";
    assert_eq!(
        exposition.samples_of(bucket).count(),
        FANOUT_DELAY_BUCKETS.len() + 1
    );
    let le = |le: &str| exposition.value(bucket, &[("route", "r"), ("le", le)]);
    assert_eq!(le("0.00005"), Some(1.0));
    assert_eq!(le("0.005"), Some(2.0));
    assert_eq!(le("5"), Some(2.0));
    assert_eq!(le("+Inf"), Some(3.0));
    let count = "sse_gateway_fanout_delay_seconds_count";
    assert_eq!(exposition.value(count, &[("route", "r")]), Some(3.0));
}

#[test]
fn route_handles_count_by_reason_and_kind_from_zero() {
    let metrics = GatewayMetrics::new(10).unwrap();
    let route = metrics.route("prices");
    let unmatched = metrics.route(names::UNMATCHED_ROUTE);
    route.rejected(RejectReason::Auth);
    route.rejected(RejectReason::Auth);
    route.clone().rejected(RejectReason::Limit);
    unmatched.rejected(RejectReason::NotFound);
    route.upstream_error(UpstreamErrorKind::ContentType);
    route.replay_miss();
    route.heartbeats_sent(5);
    let exposition = parse(&metrics.encode_text()).unwrap();

    let rejected = names::REJECTED_REQUESTS.name;
    for reason in RejectReason::ALL {
        let want = match reason {
            RejectReason::Auth => 2.0,
            RejectReason::Limit => 1.0,
            _ => 0.0,
        };
        let got = exposition.value(
            rejected,
            &[("route", "prices"), ("reason", reason.as_str())],
        );
        assert_eq!(got, Some(want), "{reason:?}");
    }
    let not_found = [("route", names::UNMATCHED_ROUTE), ("reason", "not_found")];
    assert_eq!(exposition.value(rejected, &not_found), Some(1.0));
    for kind in UpstreamErrorKind::ALL {
        let want = if kind == UpstreamErrorKind::ContentType {
            1.0
        } else {
            0.0
        };
        let labels = [("route", "prices"), ("kind", kind.as_str())];
        assert_eq!(
            exposition.value(names::UPSTREAM_ERRORS.name, &labels),
            Some(want)
        );
    }
    let route_label = [("route", "prices")];
    assert_eq!(
        exposition.value(names::REPLAY_MISSES.name, &route_label),
        Some(1.0)
    );
    assert_eq!(
        exposition.value(names::HEARTBEATS_SENT.name, &route_label),
        Some(5.0)
    );
}

#[test]
fn enum_indexes_follow_all_and_label_values_are_the_contract() {
    let reasons: Vec<&str> = RejectReason::ALL.iter().map(|r| r.as_str()).collect();
    // The contract's five, then the additions.
    assert_eq!(
        reasons,
        ["cors", "auth", "limit", "not_found", "method", "upstream"]
    );
    for (i, reason) in RejectReason::ALL.into_iter().enumerate() {
        assert_eq!(reason.index(), i);
    }
    for (i, reason) in crate::ConnectionDrop::ALL.into_iter().enumerate() {
        assert_eq!(reason.index(), i);
    }
    for (i, kind) in UpstreamErrorKind::ALL.into_iter().enumerate() {
        assert_eq!(kind.index(), i);
    }
}

#[test]
fn process_wide_series_are_rendered() {
    let metrics = GatewayMetrics::new(10).unwrap();
    let process = metrics.process();
    process.replay_bytes_changed(100);
    process.replay_bytes_changed(-40);
    process.replay_budget_evicted(3);
    process.connections_changed(2);
    process.connection_dropped(crate::ConnectionDrop::HeaderTimeout);
    let text = metrics.encode_text();
    assert!(text.contains("sse_gateway_replay_bytes 60"), "{text}");
    assert!(text.contains("sse_gateway_replay_budget_evictions_total 3"));
    assert!(text.contains("sse_gateway_open_connections 2"));
    assert!(text.contains(r#"sse_gateway_dropped_connections_total{reason="header_timeout"} 1"#));
    assert!(text.contains(r#"sse_gateway_dropped_connections_total{reason="max_connections"} 0"#));
}

#[test]
fn registries_are_independent() {
    let a = GatewayMetrics::new(10).unwrap();
    let b = GatewayMetrics::new(10).unwrap();
    let _topic = a.open_topic("r", "only-in-a");
    assert!(a.encode_text().contains("only-in-a"));
    assert!(!b.encode_text().contains("only-in-a"));
    // Both renderings agree (process metrics may tick between two scrapes).
    assert!(a.try_encode_text().unwrap().contains("only-in-a"));
}
