//! `Last-Event-ID` resume while the upstream streams at 2,000 events/s: no gap and no
//! duplicate at the hand-over from the replay ring to the live stream.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use sse_gateway_tests::{
    deadline, on_both_paths, GatewayConfig, GatewayProcess, Response, Route, Settings, SseClient,
    SseEvent, Upstream, UpstreamServer, WritePath,
};

const WAIT: Duration = Duration::from_secs(20);

async fn setup(path: WritePath) -> (Upstream, GatewayProcess) {
    let upstream = UpstreamServer::new()
        .default_response(Response::live(2000))
        .run()
        .await
        .unwrap();
    let url = upstream.url("/stream/{name}");
    let config = GatewayConfig::quiet()
        .threads(2)
        .write_path(path)
        .linger("30s")
        .replay(20000, "5m")
        .route(Route::fan_out("live", "/live/{name}", &url))
        .route(Route::fan_out("gapped", "/gapped/{name}", &url).gap_event("gap"));
    let gateway = GatewayProcess::start(&config.to_yaml()).await.unwrap();
    (upstream, gateway)
}

fn assert_consecutive(events: &[SseEvent], first: u64) {
    for (i, event) in events.iter().enumerate() {
        assert_eq!(event.event, "message");
        assert_eq!(
            event.id_num(),
            Some(first + i as u64),
            "event #{i} after a resume from {}",
            first - 1
        );
        assert_eq!(event.data, (first + i as u64).to_string());
    }
}

/// Reads 300 live events and returns the last id read.
async fn read_some(gateway: &GatewayProcess, path: &str) -> u64 {
    let mut client = SseClient::get(gateway.addr(), path).await.unwrap();
    assert_eq!(client.status(), 200);
    let events = client.events_until(300, deadline(WAIT)).await.unwrap();
    let first = events[0].id_num().unwrap();
    assert_consecutive(&events, first);
    events[299].id_num().unwrap()
}

on_both_paths!(
    header_resume_has_no_gap_and_no_duplicate,
    unknown_id_gets_the_live_stream_and_a_gap_event_when_configured,
);

async fn header_resume_has_no_gap_and_no_duplicate(path: WritePath) {
    let (_upstream, gateway) = setup(path).await;
    for _round in 0..3 {
        let k = read_some(&gateway, "/live/AAPL").await;
        let mut resumed = SseClient::resume(gateway.addr(), "/live/AAPL", &k.to_string())
            .await
            .unwrap();
        assert_eq!(resumed.status(), 200);
        let events = resumed.events_until(2000, deadline(WAIT)).await.unwrap();
        assert_consecutive(&events, k + 1);
    }
    let (replayed, ok) = gateway
        .wait_metric(
            "sse_gateway_replayed_events_total",
            &[("route", "live")],
            WAIT,
            |v| v > 0.0,
        )
        .await;
    assert!(ok, "replayed_events_total = {replayed}");
    path.assert_used(&gateway.metrics().await.unwrap(), "live");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_parameter_resume_has_no_gap_and_no_duplicate() {
    let (_upstream, gateway) = setup(WritePath::Direct).await;
    let k = read_some(&gateway, "/live/MSFT").await;
    let path = format!("/live/MSFT?lastEventId={k}");
    let mut resumed = SseClient::get(gateway.addr(), &path).await.unwrap();
    assert_eq!(resumed.status(), 200);
    let events = resumed.events_until(2000, deadline(WAIT)).await.unwrap();
    assert_consecutive(&events, k + 1);
}

async fn unknown_id_gets_the_live_stream_and_a_gap_event_when_configured(path: WritePath) {
    let (_upstream, gateway) = setup(path).await;
    // Warm both topics so their rings hold events.
    read_some(&gateway, "/live/IBM").await;
    read_some(&gateway, "/gapped/IBM").await;

    let mut plain = SseClient::resume(gateway.addr(), "/live/IBM", "no-such-id")
        .await
        .unwrap();
    assert_eq!(plain.status(), 200);
    let events = plain.events_until(100, deadline(WAIT)).await.unwrap();
    let first = events[0]
        .id_num()
        .expect("without gap_event the first event is a live one");
    assert_consecutive(&events, first);

    let mut gapped = SseClient::resume(gateway.addr(), "/gapped/IBM", "no-such-id")
        .await
        .unwrap();
    assert_eq!(gapped.status(), 200);
    let gap = gapped.next_event(deadline(WAIT)).await.unwrap().unwrap();
    assert_eq!(
        gap.event, "gap",
        "first event for an unknown id on a gap_event route: {gap:?}"
    );
    assert_eq!(gap.id, None, "gateway-made frames never carry an id");
    assert!(
        gap.data.contains("no-such-id"),
        "the gap event names the id asked for: {:?}",
        gap.data
    );
    let events = gapped.events_until(100, deadline(WAIT)).await.unwrap();
    assert_consecutive(&events, events[0].id_num().unwrap());
}
