//! A client that stops reading is disconnected and counted, while another client of the
//! same topic receives every event. On a route with `slow_client: coalesce` it is not
//! cut: it gets the newest event of every key and a note of how many it missed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use sse_gateway_tests::{
    deadline, on_both_paths, GatewayConfig, GatewayProcess, Response, Route, Settings, SseClient,
    StalledClient, UpstreamServer, WritePath,
};

on_both_paths!(
    a_stalled_client_is_disconnected_while_another_gets_everything,
    one_read_larger_than_the_client_queue_cuts_nobody,
    a_paused_reader_gets_the_newest_of_every_key_and_a_count_of_the_rest,
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

/// `slow_client: coalesce` by event type: a reader that pauses for 3 s while ~2 MB/s of
/// events of four types arrive (against a 64 KiB client queue) is not cut. What it gets
/// accounts for every event: each one either arrives or is counted in a `skipped` note;
/// ids only go up (never a stale value after a newer one, of any type); once it reads
/// again it catches up to consecutive events; the topic's other client misses nothing.
async fn a_paused_reader_gets_the_newest_of_every_key_and_a_count_of_the_rest(path: WritePath) {
    let upstream = UpstreamServer::new()
        .default_response(Response::live(2000).padding(1000).types(4))
        .run()
        .await
        .unwrap();
    let route = Route::fan_out("latest", "/latest/{name}", &upstream.url("/stream/{name}"))
        .slow_client("coalesce")
        .coalesce_by("event");
    let gateway = gateway(path, "64KiB", route.linger("30s")).await;
    let mut good = SseClient::get(gateway.addr(), "/latest/X").await.unwrap();
    path.assert_used(&gateway.metrics().await.unwrap(), "latest");
    let mut paused = SseClient::get_with_recv_buffer(gateway.addr(), "/latest/X", 4096)
        .await
        .unwrap();
    let first = paused
        .next_event(deadline(Duration::from_secs(20)))
        .await
        .unwrap()
        .unwrap()
        .id_num()
        .unwrap();

    // The good client reads on for 3 s while the other does not read at all.
    let mut expected = None;
    let pause_end = std::time::Instant::now() + Duration::from_secs(3);
    while std::time::Instant::now() < pause_end {
        for event in good
            .events_until(100, deadline(Duration::from_secs(20)))
            .await
            .unwrap()
        {
            let id = event.id_num().unwrap();
            assert_eq!(
                id,
                expected.unwrap_or(id),
                "the reading client missed an event"
            );
            expected = Some(id + 1);
        }
    }

    // Now it reads: until 200 consecutive events in a row after at least one note.
    let mut last = first;
    let mut received = 1u64;
    let mut skipped = 0u64;
    let mut notes = 0;
    let mut run = 0;
    let mut newest: std::collections::HashMap<String, u64> = Default::default();
    let end = deadline(Duration::from_secs(30));
    while !(notes > 0 && run >= 200) {
        let event = paused
            .next_event(end)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("the coalescing client was cut after {received} events"));
        if event.event == "skipped" {
            let note: serde_json::Value = serde_json::from_str(&event.data).unwrap();
            let n = note["skipped"].as_u64().unwrap();
            assert!(n > 0, "{note}");
            skipped += n;
            notes += 1;
            run = 0;
            continue;
        }
        let id = event.id_num().unwrap();
        assert!(
            id > last,
            "id {id} after {last}: a stale event after a newer one"
        );
        assert_eq!(event.event, format!("k{}", id % 4), "its type");
        if let Some(before) = newest.insert(event.event.clone(), id) {
            assert!(id > before);
        }
        run = if id == last + 1 { run + 1 } else { 0 };
        last = id;
        received += 1;
    }
    assert!(notes >= 1 && skipped > 0);
    // Every event from the first to the last was either received or counted as skipped.
    assert_eq!(
        received + skipped,
        last - first + 1,
        "{received} received, {skipped} skipped"
    );
    let cut = gateway
        .metric(
            "sse_gateway_slow_client_disconnects_total",
            &[("route", "latest")],
        )
        .await
        .unwrap();
    assert_eq!(cut, 0.0, "nobody was cut");
    // The other client still has every event.
    for event in good
        .events_until(500, deadline(Duration::from_secs(20)))
        .await
        .unwrap()
    {
        let id = event.id_num().unwrap();
        assert_eq!(Some(id), expected, "the reading client missed an event");
        expected = Some(id + 1);
    }
    assert_eq!(upstream.connections(), 1);
}
