//! An idle upstream: clients still get `:` comment lines every `heartbeat`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use sse_gateway_tests::{
    deadline, on_both_paths, GatewayConfig, GatewayProcess, Response, Route, Settings, SseClient,
    UpstreamServer, WritePath,
};

on_both_paths!(idle_stream_gets_heartbeat_comments);

async fn idle_stream_gets_heartbeat_comments(path: WritePath) {
    // The upstream answers and then says nothing at all.
    let upstream = UpstreamServer::new()
        .default_response(Response::sse())
        .run()
        .await
        .unwrap();
    let config = GatewayConfig::new()
        .threads(2)
        .write_path(path)
        .heartbeat("200ms")
        .client_retry("0s")
        .linger("30s")
        .upstream_idle_timeout("0s")
        .route(Route::fan_out(
            "quiet",
            "/quiet/{name}",
            &upstream.url("/stream/{name}"),
        ));
    let gateway = GatewayProcess::start(&config.to_yaml()).await.unwrap();
    let mut client = SseClient::get(gateway.addr(), "/quiet/a").await.unwrap();
    assert_eq!(client.status(), 200);
    path.assert_used(&gateway.metrics().await.unwrap(), "quiet");
    client
        .read_until(deadline(Duration::from_secs(10)), |c| {
            c.comments().len() >= 3
        })
        .await
        .unwrap();
    assert_eq!(
        client.parser().pending_events(),
        0,
        "heartbeats are not events"
    );
    let body = String::from_utf8(client.raw_body().to_vec()).unwrap();
    assert!(
        body.lines().any(|l| l.starts_with(':')),
        "a comment line in {body:?}"
    );
    let (sent, ok) = gateway
        .wait_metric(
            "sse_gateway_heartbeats_sent_total",
            &[("route", "quiet")],
            Duration::from_secs(10),
            |v| v >= 3.0,
        )
        .await;
    assert!(ok, "heartbeats_sent_total = {sent}");
    assert_eq!(upstream.connections(), 1);
}
