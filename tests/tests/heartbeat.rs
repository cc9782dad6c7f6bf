//! An idle upstream: clients still get `:` comment lines every `heartbeat`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use sse_gateway_tests::{deadline, GatewayProcess, Response, SseClient, UpstreamServer, WritePath};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_stream_gets_heartbeat_comments() {
    heartbeats(WritePath::Direct).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_stream_gets_heartbeat_comments_on_the_session_path() {
    heartbeats(WritePath::Session).await;
}

async fn heartbeats(path: WritePath) {
    // The upstream answers and then says nothing at all.
    let upstream = UpstreamServer::new()
        .default_response(Response::sse())
        .run()
        .await
        .unwrap();
    let yaml = format!(
        r#"
threads: 2
defaults:
{direct}
  heartbeat: 200ms
  client_retry: 0s
  linger: 30s
  upstream_idle_timeout: 0s
routes:
  - name: quiet
    path: /quiet/{{name}}
    upstream:
      url: "{}"
"#,
        upstream.url("/stream/{name}"),
        direct = path.yaml(),
    );
    let gateway = GatewayProcess::start(&yaml).await.unwrap();
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
