//! A client that stops reading is disconnected and counted, while another client of the
//! same topic receives every event.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use sse_gateway_tests::{
    deadline, on_both_paths, GatewayConfig, GatewayProcess, Response, Route, Settings, SseClient,
    StalledClient, UpstreamServer, WritePath,
};

on_both_paths!(
    a_stalled_client_is_disconnected_while_another_gets_everything,
    one_read_larger_than_the_client_queue_cuts_nobody,
);

/// A gateway on `path` with this one route and `client_queue` (events up to 16 KiB).
async fn gateway(path: WritePath, client_queue: &str, route: Route) -> GatewayProcess {
    let config = GatewayConfig::quiet()
        .threads(2)
        .write_path(path)
        .client_queue(client_queue)
        .max_event_size("16KiB")
        .route(route);
    GatewayProcess::start(&config.to_yaml()).await.unwrap()
}

async fn a_stalled_client_is_disconnected_while_another_gets_everything(path: WritePath) {
    // 2,000 events/s of ~1 KiB: about 2 MB/s against a 64 KiB client queue.
    let upstream = UpstreamServer::new()
        .default_response(Response::live(2000).padding(1000))
        .run()
        .await
        .unwrap();
    let route = Route::fan_out("fast", "/fast/{name}", &upstream.url("/stream/{name}"));
    let gateway = gateway(path, "64KiB", route.linger("30s")).await;
    let mut good = SseClient::get(gateway.addr(), "/fast/X").await.unwrap();
    assert_eq!(good.status(), 200);
    path.assert_used(&gateway.metrics().await.unwrap(), "fast");
    let first = good
        .next_event(deadline(Duration::from_secs(20)))
        .await
        .unwrap()
        .unwrap();
    let mut expected = first.id_num().unwrap() + 1;
    let mut stalled = StalledClient::connect(gateway.addr(), "/fast/X", 4096)
        .await
        .unwrap();

    // Keep reading with the good client until the gateway has dropped the stalled one.
    let end = deadline(Duration::from_secs(40));
    let mut disconnected = false;
    let mut checks = 0u32;
    while !disconnected {
        let events = good.events_until(200, end).await.unwrap();
        for event in &events {
            assert_eq!(
                event.id_num(),
                Some(expected),
                "the reading client missed or repeated an event"
            );
            expected += 1;
        }
        checks += 1;
        if checks.is_multiple_of(5) {
            let value = gateway
                .metric(
                    "sse_gateway_slow_client_disconnects_total",
                    &[("route", "fast")],
                )
                .await
                .unwrap();
            disconnected = value >= 1.0;
        }
        assert!(
            std::time::Instant::now() < end,
            "the stalled client was never disconnected"
        );
    }
    // The good client is still served, without a gap.
    let events = good
        .events_until(1000, deadline(Duration::from_secs(20)))
        .await
        .unwrap();
    for event in &events {
        assert_eq!(event.id_num(), Some(expected));
        expected += 1;
    }
    // The stalled client's connection really is closed (what it had buffered drains).
    stalled
        .drain_until_closed(deadline(Duration::from_secs(20)))
        .await
        .unwrap();
    assert_eq!(upstream.connections(), 1);
}

/// Three events of 7 KiB written in one upstream write: one 21 KiB delivery
/// against a 16 KiB client queue. Every caught-up subscriber takes it whole;
/// none is disconnected as slow (and then replayed in a reconnect storm).
async fn one_read_larger_than_the_client_queue_cuts_nobody(path: WritePath) {
    let event = |id: u32| format!("id: {id}\ndata: {}\n\n", "x".repeat(7 * 1024));
    let burst = format!("{}{}{}", event(1), event(2), event(3));
    let upstream = UpstreamServer::new()
        .default_response(
            Response::sse()
                .chunk(":\n")
                .wait_release()
                .chunk(burst)
                .chunk_after(Duration::from_millis(100), "id: 4\ndata: after\n\n"),
        )
        .run()
        .await
        .unwrap();
    let route = Route::fan_out("burst", "/burst/{name}", &upstream.url("/stream/{name}"));
    let gateway = gateway(path, "16KiB", route).await;
    let mut clients = Vec::new();
    for _ in 0..3 {
        let client = SseClient::get(gateway.addr(), "/burst/X").await.unwrap();
        assert_eq!(client.status(), 200);
        clients.push(client);
    }
    path.assert_used(&gateway.metrics().await.unwrap(), "burst");
    assert!(upstream.wait_connections(1, Duration::from_secs(10)).await);
    upstream.release();
    for client in &mut clients {
        let events = client
            .events_until(4, deadline(Duration::from_secs(20)))
            .await
            .unwrap();
        let ids: Vec<_> = events.iter().map(|e| e.id_num()).collect();
        assert_eq!(ids, [Some(1), Some(2), Some(3), Some(4)]);
        assert_eq!(events[0].data.len(), 7 * 1024);
    }
    let slow = gateway
        .metric(
            "sse_gateway_slow_client_disconnects_total",
            &[("route", "burst")],
        )
        .await
        .unwrap();
    assert_eq!(slow, 0.0, "a subscriber was cut for one large read");
}
