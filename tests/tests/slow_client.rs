//! A client that stops reading is disconnected and counted, while another client of the
//! same topic receives every event.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use sse_gateway_tests::{
    deadline, GatewayProcess, Response, SseClient, StalledClient, UpstreamServer, WritePath,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_client_is_disconnected_while_another_gets_everything() {
    stalled_client(WritePath::Direct).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_client_is_disconnected_on_the_session_path() {
    stalled_client(WritePath::Session).await;
}

async fn stalled_client(path: WritePath) {
    // 2,000 events/s of ~1 KiB: about 2 MB/s against a 64 KiB client queue.
    let upstream = UpstreamServer::new()
        .default_response(Response::live(2000).padding(1000))
        .run()
        .await
        .unwrap();
    let yaml = format!(
        r#"
threads: 2
defaults:
{direct}
  heartbeat: 0s
  client_retry: 0s
  client_queue: 64KiB
  max_event_size: 16KiB
  linger: 30s
routes:
  - name: fast
    path: /fast/{{name}}
    upstream:
      url: "{}"
"#,
        upstream.url("/stream/{name}"),
        direct = path.yaml(),
    );
    let gateway = GatewayProcess::start(&yaml).await.unwrap();
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
