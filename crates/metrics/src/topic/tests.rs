use std::sync::Arc;
use std::thread;

use crate::names::{self, OTHER_TOPIC};
use crate::testing::{parse, Exposition};
use crate::GatewayMetrics;

fn scrape(metrics: &GatewayMetrics) -> Exposition {
    parse(&metrics.encode_text()).unwrap()
}

fn value(e: &Exposition, name: &str, route: &str, topic: &str) -> Option<f64> {
    e.value(name, &[("route", route), ("topic", topic)])
}

/// Every per-topic family, by sample name.
fn topic_families() -> impl Iterator<Item = &'static str> {
    names::CONTRACT
        .iter()
        .filter(|f| f.labels.contains(&names::TOPIC))
        .map(|f| f.name)
}

#[test]
fn third_topic_goes_under_other_when_budget_is_two() {
    let metrics = GatewayMetrics::new(2).unwrap();
    let a = metrics.open_topic("r", "a");
    let b = metrics.open_topic("r", "b");
    let c = metrics.open_topic("r", "c");
    assert!(!a.is_overflow() && !b.is_overflow());
    assert!(c.is_overflow());
    assert_eq!(c.topic(), "c");
    assert_eq!(c.topic_label(), OTHER_TOPIC);
    assert_eq!(metrics.topics().own_series(), 2);
    assert_eq!(metrics.topics().overflow_topics(), 1);

    let e = scrape(&metrics);
    for name in topic_families() {
        assert_eq!(value(&e, name, "r", "a"), Some(0.0), "{name}");
        assert_eq!(value(&e, name, "r", "b"), Some(0.0), "{name}");
        assert_eq!(value(&e, name, "r", OTHER_TOPIC), Some(0.0), "{name}");
    }
    assert!(!e.any_label("topic", "c"));
}

#[test]
fn closing_a_topic_removes_its_series_and_frees_its_slot() {
    let metrics = GatewayMetrics::new(2).unwrap();
    let a = metrics.open_topic("r", "a");
    let _b = metrics.open_topic("r", "b");
    a.subscriber_joined();
    a.upstream_event();
    a.close();

    let e = scrape(&metrics);
    assert!(!e.any_label("topic", "a"), "a's series survived its close");
    assert!(e.any_label("topic", "b"));
    assert_eq!(metrics.topics().own_series(), 1);

    // The freed slot goes to the next topic opened.
    let d = metrics.open_topic("r", "d");
    assert!(!d.is_overflow());
    assert!(scrape(&metrics).any_label("topic", "d"));
}

#[test]
fn other_disappears_when_its_last_user_closes() {
    let metrics = GatewayMetrics::new(1).unwrap();
    let _own = metrics.open_topic("r", "own");
    let x = metrics.open_topic("r", "x");
    let y = metrics.open_topic("r", "y");
    assert!(x.is_overflow() && y.is_overflow());

    drop(x);
    assert!(scrape(&metrics).any_label("topic", OTHER_TOPIC));
    drop(y);
    let e = scrape(&metrics);
    assert!(!e.any_label("topic", OTHER_TOPIC));
    assert!(e.any_label("topic", "own"));
    assert_eq!(metrics.topics().overflow_topics(), 0);
}

#[test]
fn shared_other_series_add_up() {
    let metrics = GatewayMetrics::new(0).unwrap();
    let x = metrics.open_topic("r", "x");
    let y = metrics.open_topic("r", "y");
    x.subscriber_joined();
    x.subscriber_joined();
    y.subscriber_joined();
    x.delivered(2, 20);
    y.delivered(3, 30);
    x.upstream_event();
    y.upstream_event();
    x.upstream_reconnected();
    y.slow_client_disconnected();
    y.replayed(4);
    x.set_upstream_up(true);
    y.set_upstream_up(true);
    y.set_upstream_up(true); // repeating a state changes nothing

    let e = scrape(&metrics);
    let other = |name: &str| value(&e, name, "r", OTHER_TOPIC);
    assert_eq!(other(names::SUBSCRIBERS.name), Some(3.0));
    assert_eq!(other(names::UPSTREAM_UP.name), Some(2.0));
    assert_eq!(other(names::DELIVERED_EVENTS.name), Some(5.0));
    assert_eq!(other(names::DELIVERED_BYTES.name), Some(50.0));
    assert_eq!(other(names::UPSTREAM_EVENTS.name), Some(2.0));
    assert_eq!(other(names::UPSTREAM_RECONNECTS.name), Some(1.0));
    assert_eq!(other(names::SLOW_CLIENT_DISCONNECTS.name), Some(1.0));
    assert_eq!(other(names::REPLAYED_EVENTS.name), Some(4.0));

    // Closing x withdraws its subscribers and its "up", counters stay.
    x.close();
    let e = scrape(&metrics);
    let other = |name: &str| value(&e, name, "r", OTHER_TOPIC);
    assert_eq!(other(names::SUBSCRIBERS.name), Some(1.0));
    assert_eq!(other(names::UPSTREAM_UP.name), Some(1.0));
    assert_eq!(other(names::DELIVERED_EVENTS.name), Some(5.0));

    y.subscriber_left();
    y.set_upstream_up(false);
    let e = scrape(&metrics);
    assert_eq!(
        value(&e, names::SUBSCRIBERS.name, "r", OTHER_TOPIC),
        Some(0.0)
    );
    assert_eq!(
        value(&e, names::UPSTREAM_UP.name, "r", OTHER_TOPIC),
        Some(0.0)
    );
}

#[test]
fn own_series_report_exact_values() {
    let metrics = GatewayMetrics::new(5).unwrap();
    let t = metrics.open_topic("prices", "prices/ACME");
    t.subscriber_joined();
    t.subscriber_joined();
    t.subscriber_left();
    t.set_upstream_up(true);
    t.delivered(1, 10);
    let e = scrape(&metrics);
    let get = |name: &str| value(&e, name, "prices", "prices/ACME");
    assert_eq!(get(names::SUBSCRIBERS.name), Some(1.0));
    assert_eq!(get(names::UPSTREAM_UP.name), Some(1.0));
    assert_eq!(get(names::DELIVERED_BYTES.name), Some(10.0));
    assert_eq!(t.subscribers(), 1);
    assert_eq!(t.route(), "prices");
}

#[test]
fn other_is_per_route() {
    let metrics = GatewayMetrics::new(0).unwrap();
    let p = metrics.open_topic("prices", "p");
    let n = metrics.open_topic("news", "n");
    p.delivered(1, 1);
    n.delivered(7, 7);
    let e = scrape(&metrics);
    let name = names::DELIVERED_EVENTS.name;
    assert_eq!(value(&e, name, "prices", OTHER_TOPIC), Some(1.0));
    assert_eq!(value(&e, name, "news", OTHER_TOPIC), Some(7.0));
    drop(p);
    let e = scrape(&metrics);
    assert_eq!(value(&e, name, "prices", OTHER_TOPIC), None);
    assert_eq!(value(&e, name, "news", OTHER_TOPIC), Some(7.0));
}

#[test]
fn a_topic_named_other_never_takes_a_slot() {
    let metrics = GatewayMetrics::new(5).unwrap();
    let fake = metrics.open_topic("r", OTHER_TOPIC);
    assert!(fake.is_overflow());
    assert_eq!(metrics.topics().own_series(), 0);
    let real = metrics.open_topic("r", "real");
    assert!(!real.is_overflow());
}

#[test]
fn reopening_an_open_topic_shares_its_series_and_slot() {
    let metrics = GatewayMetrics::new(1).unwrap();
    let first = metrics.open_topic("r", "t");
    let second = metrics.open_topic("r", "t");
    assert!(!second.is_overflow());
    assert_eq!(metrics.topics().own_series(), 1);
    first.subscriber_joined();
    second.subscriber_joined();
    drop(first);
    let e = scrape(&metrics);
    assert_eq!(value(&e, names::SUBSCRIBERS.name, "r", "t"), Some(1.0));
    drop(second);
    assert!(!scrape(&metrics).any_label("topic", "t"));
    assert_eq!(metrics.topics().own_series(), 0);
}

#[test]
fn same_topic_on_two_routes_takes_two_slots() {
    let metrics = GatewayMetrics::new(1).unwrap();
    let a = metrics.open_topic("r1", "t");
    let b = metrics.open_topic("r2", "t");
    assert!(!a.is_overflow());
    assert!(b.is_overflow());
}

#[test]
fn concurrent_open_report_close_leaves_nothing_behind() {
    let metrics = GatewayMetrics::new(8).unwrap();
    let shared = Arc::new(metrics.open_topic("r", "hot"));
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let metrics = metrics.clone();
            let shared = Arc::clone(&shared);
            thread::spawn(move || {
                for j in 0..200 {
                    let t = metrics.open_topic("r", &format!("t{}", (i * 7 + j) % 20));
                    t.subscriber_joined();
                    t.delivered(1, 10);
                    shared.delivered(1, 10);
                    if j % 3 == 0 {
                        t.subscriber_left();
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let e = scrape(&metrics);
    assert_eq!(
        value(&e, names::DELIVERED_EVENTS.name, "r", "hot"),
        Some(800.0)
    );
    let topics: Vec<_> = e
        .samples_of(names::SUBSCRIBERS.name)
        .map(|s| s.labels["topic"].clone())
        .collect();
    assert_eq!(topics, ["hot"]);
    assert_eq!(metrics.topics().own_series(), 1);
    assert_eq!(metrics.topics().overflow_topics(), 0);
}
