//! `/metrics` tells the truth: every counter is compared with the traffic this test
//! generated itself (events the upstream sent, events and bytes each client received,
//! replays, disconnects, slow-client disconnects, rejections by reason), and `/topics`
//! with the topic's state. Also: the `__other__` series cap and series removal on close.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use sse_gateway_tests::{
    deadline, GatewayConfig, GatewayProcess, Response, Route, Settings, SseClient, SseEvent,
    SseParser, StalledClient, UpstreamServer,
};

const WAIT: Duration = Duration::from_secs(20);
const EVENTS: u64 = 50;

fn numbered(from: u64, to: u64) -> String {
    (from..=to)
        .map(|n| format!("id: {n}\ndata: {n}\n\n"))
        .collect()
}

fn event_bytes(events: &[SseEvent]) -> usize {
    events.iter().map(|e| e.raw.len()).sum()
}

async fn metric(gateway: &GatewayProcess, name: &str, labels: &[(&str, &str)]) -> f64 {
    gateway.metric(name, labels).await.unwrap()
}

/// Waits until the metric equals `want` (counters settle a moment after the bytes left).
async fn assert_metric(gateway: &GatewayProcess, name: &str, labels: &[(&str, &str)], want: f64) {
    let (value, ok) = gateway.wait_metric(name, labels, WAIT, |v| v == want).await;
    assert!(ok, "{name}{labels:?} = {value}, want {want}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_match_the_traffic_the_test_made() {
    // One upstream connection: 50 events, sent only once both clients are in.
    let upstream = UpstreamServer::new()
        .default_response(Response::sse().wait_release().chunk(numbered(1, EVENTS)))
        .run()
        .await
        .unwrap();
    let config = GatewayConfig::quiet()
        .threads(2)
        .linger("30s")
        .replay(1000, "5m")
        .limit("max_clients", "3")
        .limit("max_clients_per_topic", "3")
        .limit("max_topics", "10")
        .route(Route::fan_out(
            "truth",
            "/t/{name}",
            &upstream.url("/stream/{name}"),
        ));
    let gateway = GatewayProcess::start(&config.to_yaml()).await.unwrap();
    let topic = [("route", "truth"), ("topic", "/t/X")];

    let mut a = SseClient::get(gateway.addr(), "/t/X").await.unwrap();
    let mut b = SseClient::get(gateway.addr(), "/t/X").await.unwrap();
    assert_eq!((a.status(), b.status()), (200, 200));
    assert_metric(&gateway, "sse_gateway_subscribers", &topic, 2.0).await;
    assert_metric(&gateway, "sse_gateway_upstream_up", &topic, 1.0).await;
    upstream.release();

    let got_a = a
        .events_until(EVENTS as usize, deadline(WAIT))
        .await
        .unwrap();
    let got_b = b
        .events_until(EVENTS as usize, deadline(WAIT))
        .await
        .unwrap();
    for got in [&got_a, &got_b] {
        let ids: Vec<u64> = got.iter().map(|e| e.id_num().unwrap()).collect();
        assert_eq!(ids, (1..=EVENTS).collect::<Vec<_>>());
    }

    // What the upstream really sent, read by the oracle parser. (The test
    // server records a write after it completed: the clients can have the
    // events a moment before the record does.)
    let count_sent = || {
        let mut sent = SseParser::new();
        sent.feed(&upstream.sent(0));
        let mut count = 0;
        while sent.pop_event().is_some() {
            count += 1;
        }
        count
    };
    let recorded_by = Instant::now() + WAIT;
    let mut upstream_events = count_sent();
    while upstream_events < EVENTS && Instant::now() < recorded_by {
        tokio::time::sleep(Duration::from_millis(20)).await;
        upstream_events = count_sent();
    }
    assert_eq!(upstream_events, EVENTS);
    assert_eq!(upstream.connections(), 1);
    assert_metric(
        &gateway,
        "sse_gateway_upstream_events_total",
        &topic,
        upstream_events as f64,
    )
    .await;

    // A resume from id 40 is replayed 41..=50 from the ring.
    let mut c = SseClient::resume(gateway.addr(), "/t/X", "40")
        .await
        .unwrap();
    let got_c = c.events_until(10, deadline(WAIT)).await.unwrap();
    assert_eq!(got_c[0].id_num(), Some(41));
    assert_eq!(got_c[9].id_num(), Some(50));
    assert_metric(&gateway, "sse_gateway_replayed_events_total", &topic, 10.0).await;

    let delivered_events = (got_a.len() + got_b.len() + got_c.len()) as f64;
    let delivered_bytes = (event_bytes(&got_a) + event_bytes(&got_b) + event_bytes(&got_c)) as f64;
    assert_eq!(
        delivered_bytes,
        (2 * upstream.sent(0).len() + event_bytes(&got_c)) as f64
    );
    assert_metric(
        &gateway,
        "sse_gateway_delivered_events_total",
        &topic,
        delivered_events,
    )
    .await;
    assert_metric(
        &gateway,
        "sse_gateway_delivered_bytes_total",
        &topic,
        delivered_bytes,
    )
    .await;
    // One fan-out delay observation per live event per client (replays are not).
    assert_metric(
        &gateway,
        "sse_gateway_fanout_delay_seconds_count",
        &[("route", "truth")],
        2.0 * EVENTS as f64,
    )
    .await;
    assert_metric(&gateway, "sse_gateway_subscribers", &topic, 3.0).await;

    // /topics agrees.
    let topics = gateway.topics().await.unwrap();
    for field in [
        r#""route":"truth""#,
        r#""topic":"/t/X""#,
        r#""subscribers":3"#,
        r#""upstream":"live""#,
        r#""last_event_id":"50""#,
        r#""events_received":50"#,
        r#""replay_len":50"#,
        r#""replay_capacity":1000"#,
    ] {
        assert!(topics.contains(field), "/topics lacks {field}: {topics}");
    }

    // Rejections, one per reason this test provokes.
    let full = SseClient::get(gateway.addr(), "/t/X").await.unwrap();
    assert_eq!(
        full.status(),
        200,
        "EventSource clients over a limit get 200"
    );
    let not_found = SseClient::get(gateway.addr(), "/nope").await.unwrap();
    assert_eq!(not_found.status(), 404);
    let method = SseClient::request(gateway.addr(), "DELETE", "/t/X", &[])
        .await
        .unwrap();
    assert_eq!(method.status(), 405);
    let rejected = "sse_gateway_rejected_requests_total";
    assert_metric(
        &gateway,
        rejected,
        &[("route", "truth"), ("reason", "limit")],
        1.0,
    )
    .await;
    assert_metric(
        &gateway,
        rejected,
        &[("route", "__unmatched__"), ("reason", "not_found")],
        1.0,
    )
    .await;
    assert_metric(
        &gateway,
        rejected,
        &[("route", "truth"), ("reason", "method")],
        1.0,
    )
    .await;
    assert_metric(&gateway, rejected, &[], 3.0).await;

    // Disconnects: the gauge follows each client that leaves.
    drop(b);
    assert_metric(&gateway, "sse_gateway_subscribers", &topic, 2.0).await;
    drop(c);
    assert_metric(&gateway, "sse_gateway_subscribers", &topic, 1.0).await;

    // Nothing else moved.
    assert_eq!(
        metric(&gateway, "sse_gateway_upstream_reconnects_total", &topic).await,
        0.0
    );
    assert_eq!(
        metric(
            &gateway,
            "sse_gateway_slow_client_disconnects_total",
            &topic
        )
        .await,
        0.0
    );
    assert_eq!(
        metric(&gateway, "sse_gateway_heartbeats_sent_total", &[]).await,
        0.0
    );
    assert_eq!(
        metric(&gateway, "sse_gateway_upstream_events_total", &topic).await,
        EVENTS as f64
    );
    drop(a);
    assert_metric(&gateway, "sse_gateway_subscribers", &topic, 0.0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_stalled_client_is_one_slow_client_disconnect() {
    let upstream = UpstreamServer::new()
        .default_response(Response::live(2000).padding(1000))
        .run()
        .await
        .unwrap();
    let config = GatewayConfig::quiet()
        .threads(2)
        .client_queue("64KiB")
        .max_event_size("16KiB")
        .linger("30s")
        .route(Route::fan_out(
            "slow",
            "/s/{name}",
            &upstream.url("/stream/{name}"),
        ));
    let gateway = GatewayProcess::start(&config.to_yaml()).await.unwrap();
    let topic = [("route", "slow"), ("topic", "/s/X")];
    let mut reader = SseClient::get(gateway.addr(), "/s/X").await.unwrap();
    reader
        .events_until(10, deadline(WAIT))
        .await
        .expect("the reading client gets events");
    let mut stalled = StalledClient::connect(gateway.addr(), "/s/X", 4096)
        .await
        .unwrap();
    // Keep the reader reading while the stalled one falls behind.
    let end = deadline(Duration::from_secs(40));
    loop {
        reader.events_until(200, end).await.unwrap();
        let slow = metric(
            &gateway,
            "sse_gateway_slow_client_disconnects_total",
            &topic,
        )
        .await;
        if slow >= 1.0 {
            assert_eq!(slow, 1.0, "one stalled client, one disconnect");
            break;
        }
        assert!(
            std::time::Instant::now() < end,
            "never disconnected as slow"
        );
    }
    assert_metric(&gateway, "sse_gateway_subscribers", &topic, 1.0).await;
    stalled.drain_until_closed(deadline(WAIT)).await.unwrap();
    reader.events_until(200, deadline(WAIT)).await.unwrap();
    assert_eq!(
        metric(
            &gateway,
            "sse_gateway_slow_client_disconnects_total",
            &topic
        )
        .await,
        1.0
    );
    let log = gateway.log();
    assert!(
        log.lines()
            .any(|l| l.contains("sse_gateway::access") && l.contains("reason=slow_client")),
        "the access log names the slow client:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_past_the_cap_share_other_and_series_leave_with_their_topic() {
    let upstream = UpstreamServer::new()
        .default_response(Response::live(50))
        .run()
        .await
        .unwrap();
    let config = GatewayConfig::quiet()
        .threads(2)
        .max_topic_series(1)
        .linger("100ms")
        .route(Route::fan_out(
            "cap",
            "/c/{name}",
            &upstream.url("/stream/{name}"),
        ));
    let gateway = GatewayProcess::start(&config.to_yaml()).await.unwrap();
    let mut first = SseClient::get(gateway.addr(), "/c/A").await.unwrap();
    first.events_until(1, deadline(WAIT)).await.unwrap();
    let mut second = SseClient::get(gateway.addr(), "/c/B").await.unwrap();
    let mut third = SseClient::get(gateway.addr(), "/c/C").await.unwrap();
    second.events_until(1, deadline(WAIT)).await.unwrap();
    third.events_until(1, deadline(WAIT)).await.unwrap();

    let own = [("route", "cap"), ("topic", "/c/A")];
    let other = [("route", "cap"), ("topic", "__other__")];
    assert_metric(&gateway, "sse_gateway_subscribers", &own, 1.0).await;
    assert_metric(&gateway, "sse_gateway_subscribers", &other, 2.0).await;
    assert_metric(&gateway, "sse_gateway_upstream_up", &other, 2.0).await;
    let text = gateway.metrics().await.unwrap();
    assert!(!text.contains("/c/B") && !text.contains("/c/C"), "{text}");

    drop((first, second, third));
    let gone = sse_gateway_tests::poll_until(WAIT, || async {
        let text = gateway.metrics().await.unwrap_or_default();
        !text.contains("/c/A") && !text.contains("__other__")
    })
    .await;
    assert!(
        gone,
        "closed topics leave /metrics:\n{}",
        gateway.metrics().await.unwrap()
    );
    assert_eq!(gateway.topics().await.unwrap(), "[]");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_contract_family_process_metrics_and_build_info_are_served() {
    // Per-topic families have series (and so `# TYPE` lines) once a topic is open.
    let upstream = UpstreamServer::new()
        .default_response(Response::live(20))
        .run()
        .await
        .unwrap();
    let config = GatewayConfig::new().route(Route::fan_out("p", "/p/{s}", &upstream.url("/{s}")));
    let gateway = GatewayProcess::start(&config.to_yaml()).await.unwrap();
    let mut client = SseClient::get(gateway.addr(), "/p/A").await.unwrap();
    client.events_until(2, deadline(WAIT)).await.unwrap();
    let resp = gateway.admin_get("/metrics").await.unwrap();
    assert_eq!(resp.status, 200);
    assert!(resp
        .header("content-type")
        .unwrap_or_default()
        .starts_with("text/plain"));
    let text = resp.text();
    for (name, kind) in [
        ("sse_gateway_subscribers", "gauge"),
        ("sse_gateway_upstream_up", "gauge"),
        ("sse_gateway_upstream_events_total", "counter"),
        ("sse_gateway_delivered_events_total", "counter"),
        ("sse_gateway_delivered_bytes_total", "counter"),
        ("sse_gateway_upstream_reconnects_total", "counter"),
        ("sse_gateway_slow_client_disconnects_total", "counter"),
        ("sse_gateway_replayed_events_total", "counter"),
        ("sse_gateway_heartbeats_sent_total", "counter"),
        ("sse_gateway_rejected_requests_total", "counter"),
        ("sse_gateway_fanout_delay_seconds", "histogram"),
        ("sse_gateway_build_info", "gauge"),
        ("process_cpu_seconds_total", "counter"),
        ("process_resident_memory_bytes", "gauge"),
        ("process_open_fds", "gauge"),
    ] {
        assert!(
            text.contains(&format!("# TYPE {name} {kind}\n")),
            "/metrics lacks `# TYPE {name} {kind}`:\n{text}"
        );
    }
    assert!(
        text.contains("sse_gateway_build_info{version=\""),
        "build info carries the version"
    );
    assert!(
        sse_gateway_tests::gateway::metric_sum(&text, "process_resident_memory_bytes", &[]) > 0.0
    );
    assert_eq!(gateway.admin_get("/healthz").await.unwrap().status, 200);
    assert_eq!(gateway.admin_get("/readyz").await.unwrap().status, 200);
    assert_eq!(gateway.admin_get("/nope").await.unwrap().status, 404);
    // The admin endpoints are not on the public listener.
    let public = SseClient::get(gateway.addr(), "/metrics").await.unwrap();
    assert_eq!(public.status(), 404);
}
