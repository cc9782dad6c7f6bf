//! `linger`: the upstream outlives the topic's last client for a while, is reused by a
//! client joining within it, and is closed after it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use sse_gateway_tests::{
    deadline, GatewayConfig, GatewayProcess, Response, Route, Settings, SseClient, UpstreamServer,
};

const WAIT: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reuse_within_linger_and_close_after_it() {
    let upstream = UpstreamServer::new()
        .default_response(Response::live(50))
        .run()
        .await
        .unwrap();
    let config = GatewayConfig::quiet()
        .threads(2)
        .linger("1s")
        .route(Route::fan_out(
            "ling",
            "/ling/{name}",
            &upstream.url("/stream/{name}"),
        ));
    let gateway = GatewayProcess::start(&config.to_yaml()).await.unwrap();
    let subscribers = [("route", "ling")];

    let mut first = SseClient::get(gateway.addr(), "/ling/a").await.unwrap();
    first.events_until(2, deadline(WAIT)).await.unwrap();
    drop(first);
    // The gateway has seen the client leave (the topic now lingers) ...
    let (value, ok) = gateway
        .wait_metric("sse_gateway_subscribers", &subscribers, WAIT, |v| v == 0.0)
        .await;
    assert!(ok, "subscribers = {value} after the only client left");
    // ... and a client joining within the linger reuses the upstream connection.
    let mut second = SseClient::get(gateway.addr(), "/ling/a").await.unwrap();
    second.events_until(2, deadline(WAIT)).await.unwrap();
    assert_eq!(
        upstream.connections(),
        1,
        "a client joining within linger reuses the upstream"
    );
    assert_eq!(upstream.open_connections(), 1);

    drop(second);
    assert_eq!(
        upstream.open_connections(),
        1,
        "the upstream is not closed the moment the last client leaves"
    );
    assert!(
        upstream.wait_open(0, WAIT).await,
        "the upstream is closed after the linger"
    );
    assert_eq!(
        upstream.connections(),
        1,
        "no reconnect after the topic closed"
    );
}
