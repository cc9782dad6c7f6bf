//! 1,000 subscribers on one topic share ONE upstream connection, and every subscriber
//! receives every event byte for byte as the upstream sent it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use sse_gateway_tests::{
    deadline, on_both_paths, GatewayConfig, GatewayProcess, Response, Route, Settings, SseClient,
    UpstreamServer, WritePath,
};

const SUBSCRIBERS: usize = 1000;

/// Events of several shapes: ids, types, multi-line data, no id, an empty data line.
fn upstream_events() -> Vec<String> {
    (1..=20)
        .map(|n| match n % 4 {
            0 => format!("id: {n}\nevent: update\ndata: {{\"n\":{n},\"px\":101.25}}\n\n"),
            1 => format!("id: {n}\ndata: line one of {n}\ndata: line two\n\n"),
            2 => format!("data: no id here {n}\n\n"),
            _ => format!("event: tick\nid: {n}\ndata: {n}\ndata:\n\n"),
        })
        .collect()
}

on_both_paths!(thousand_subscribers_share_one_upstream_connection_byte_identical);

async fn thousand_subscribers_share_one_upstream_connection_byte_identical(path: WritePath) {
    let events = upstream_events();
    let mut script = Response::sse().wait_release();
    for event in &events {
        script = script.chunk(event.clone());
    }
    let upstream = UpstreamServer::new()
        .default_response(script)
        .run()
        .await
        .unwrap();
    let config = GatewayConfig::quiet()
        .threads(2)
        .write_path(path)
        .linger("30s")
        .limit("max_clients", "5000")
        .route(Route::fan_out(
            "fan",
            "/fan/{name}",
            &upstream.url("/stream/{name}"),
        ));
    let gateway = GatewayProcess::start(&config.to_yaml()).await.unwrap();
    let addr = gateway.addr();

    // Connect every subscriber (at most 100 connects in flight); each then reads 20 events.
    let permits = Arc::new(tokio::sync::Semaphore::new(100));
    let mut tasks = Vec::with_capacity(SUBSCRIBERS);
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(SUBSCRIBERS);
    for _ in 0..SUBSCRIBERS {
        let permits = permits.clone();
        let ready_tx = ready_tx.clone();
        tasks.push(tokio::spawn(async move {
            let permit = permits.acquire_owned().await.unwrap();
            let mut client = SseClient::get(addr, "/fan/AAPL").await.unwrap();
            drop(permit);
            assert_eq!(client.status(), 200);
            ready_tx.send(()).await.unwrap();
            let got = client
                .events_until(20, deadline(Duration::from_secs(60)))
                .await
                .unwrap();
            got.into_iter().map(|e| e.raw).collect::<Vec<_>>()
        }));
    }
    drop(ready_tx);
    for _ in 0..SUBSCRIBERS {
        tokio::time::timeout(Duration::from_secs(60), ready_rx.recv())
            .await
            .unwrap()
            .unwrap();
    }
    // Every subscriber has its response head; wait until the hub counts them all.
    let (subscribers, ok) = gateway
        .wait_metric(
            "sse_gateway_subscribers",
            &[("route", "fan")],
            Duration::from_secs(30),
            |v| v >= SUBSCRIBERS as f64,
        )
        .await;
    assert!(ok, "sse_gateway_subscribers reached only {subscribers}");
    path.assert_used(&gateway.metrics().await.unwrap(), "fan");

    upstream.release();
    for task in tasks {
        let frames = task.await.unwrap();
        let frames: Vec<String> = frames
            .into_iter()
            .map(|f| String::from_utf8(f).unwrap())
            .collect();
        assert_eq!(
            frames, events,
            "a subscriber's event frames differ from the upstream's bytes"
        );
    }
    assert_eq!(
        upstream.connections(),
        1,
        "one upstream connection for the whole topic"
    );
    assert_eq!(upstream.sent(0), events.concat().into_bytes());
    let request = &upstream.requests()[0];
    assert_eq!(request.path, "/stream/AAPL");
    assert_eq!(request.header("accept"), Some("text/event-stream"));
}
