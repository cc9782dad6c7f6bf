//! `sse-gateway demo` starts on the given addresses, serves its page at `/` and streams
//! demo events through the gateway.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use sse_gateway_tests::client::http_get;
use sse_gateway_tests::{deadline, GatewayProcess, SseClient};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_serves_the_page_and_a_stream() {
    let demo = GatewayProcess::start_demo().await.unwrap();
    let page = http_get(demo.addr(), "/", &[]).await.unwrap();
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type")
            .is_some_and(|v| v.starts_with("text/html")),
        "{:?}",
        page.headers
    );
    assert!(
        page.text().to_ascii_lowercase().contains("eventsource"),
        "the page opens EventSources"
    );

    let mut client = SseClient::get(demo.addr(), "/prices/AAPL").await.unwrap();
    assert_eq!(client.status(), 200);
    let event = client
        .next_event(deadline(Duration::from_secs(5)))
        .await
        .unwrap()
        .expect("an event, not the end");
    assert!(!event.data.is_empty());
    assert!(event.id.is_some(), "demo events carry ids: {event:?}");

    let metrics = demo.metrics().await.unwrap();
    assert!(
        metrics.contains("sse_gateway_subscribers"),
        "the demo's admin listener serves metrics"
    );
}
