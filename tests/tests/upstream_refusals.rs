//! When the upstream refuses a topic, its clients get the upstream's answer, as from a
//! plain reverse proxy; when it fails in a way worth retrying, they stay connected; and
//! no client decides where the shared upstream resumes unless the route says so.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use sse_gateway_tests::{
    deadline, poll_until, GatewayProcess, Response, SseClient, Upstream, UpstreamServer,
};

const WAIT: Duration = Duration::from_secs(20);

async fn gateway_for(upstream: &Upstream, extra_defaults: &str) -> GatewayProcess {
    let yaml = format!(
        r#"
threads: 2
defaults:
  client_retry: 0s
  heartbeat: 0s
  linger: 30s
  upstream_backoff: {{ initial: 50ms, max: 300ms }}
{extra_defaults}
routes:
  - name: up
    path: /up/{{name}}
    params: {{ name: "[a-z0-9]+" }}
    cors:
      origins: ["https://app.example"]
    upstream:
      url: "{}"
"#,
        upstream.url("/stream/{name}")
    );
    GatewayProcess::start(&yaml).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_404_upstream_is_answered_404_with_cors_and_not_retried() {
    let upstream = UpstreamServer::new()
        .default_response(Response::status(404))
        .run()
        .await
        .unwrap();
    let gateway = gateway_for(&upstream, "").await;
    let origin = [("origin", "https://app.example")];
    let client = SseClient::request(gateway.addr(), "GET", "/up/missing", &origin)
        .await
        .unwrap();
    assert_eq!(
        client.status(),
        404,
        "the upstream's 404, not a 200 and heartbeats"
    );
    assert_eq!(
        client.header("access-control-allow-origin"),
        Some("https://app.example"),
        "readable cross-origin"
    );
    // The topic is over: no retry of a 404 (a 50 ms backoff would show many).
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(upstream.connections(), 1, "a refused topic is not retried");
    let refused = gateway
        .metric(
            "sse_gateway_rejected_requests_total",
            &[("route", "up"), ("reason", "upstream")],
        )
        .await
        .unwrap();
    assert_eq!(refused, 1.0);
    assert!(
        poll_until(WAIT, || async { gateway.topics().await.unwrap() == "[]" }).await,
        "the refused topic closes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_that_is_not_an_event_stream_is_answered_502() {
    let upstream = UpstreamServer::new()
        .default_response(
            Response::sse()
                .chunk("<html>oops</html>")
                .content_type("text/html"),
        )
        .run()
        .await
        .unwrap();
    let gateway = gateway_for(&upstream, "").await;
    let client = SseClient::get(gateway.addr(), "/up/html").await.unwrap();
    assert_eq!(client.status(), 502);
    assert!(!String::from_utf8_lossy(client.raw_body()).contains("oops"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_topic_whose_upstream_starts_refusing_ends_and_clients_get_the_status() {
    let upstream = UpstreamServer::new()
        .respond(
            Response::sse()
                .chunk("id: 1\ndata: one\n\n")
                .chunk_after(Duration::from_millis(200), "id: 2\ndata: two\n\n")
                .then_close(),
        )
        .default_response(Response::status(410))
        .run()
        .await
        .unwrap();
    let gateway = gateway_for(&upstream, "").await;
    let mut client = SseClient::get(gateway.addr(), "/up/gone").await.unwrap();
    assert_eq!(client.status(), 200);
    let events = client.events_until(2, deadline(WAIT)).await.unwrap();
    assert_eq!(events.len(), 2);
    // The reconnect (with Last-Event-ID: 2) is answered 410: the id is dropped and
    // asked again without; 410 again ends the topic and the stream.
    client.read_to_end(deadline(WAIT)).await.unwrap();
    let requests = upstream.requests();
    assert_eq!(requests[1].last_event_id(), Some("2"));
    assert_eq!(
        requests[2].last_event_id(),
        None,
        "the refused id is dropped"
    );
    let again = SseClient::get(gateway.addr(), "/up/gone").await.unwrap();
    assert_eq!(again.status(), 410, "the browser's reconnect gets the 410");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_subscribers_last_event_id_does_not_choose_where_the_upstream_resumes() {
    let upstream = UpstreamServer::new()
        .default_response(Response::live(100))
        .run()
        .await
        .unwrap();
    let gateway = gateway_for(&upstream, "").await;
    let mut client = SseClient::resume(gateway.addr(), "/up/a", "1000")
        .await
        .unwrap();
    assert_eq!(client.status(), 200);
    client.events_until(1, deadline(WAIT)).await.unwrap();
    assert_eq!(
        upstream.requests()[0].last_event_id(),
        None,
        "the shared upstream starts from its live edge"
    );

    // A route that opts in (the upgrade hand-over) resumes from it.
    let opted_in = UpstreamServer::new()
        .default_response(Response::live(100))
        .run()
        .await
        .unwrap();
    let gateway = gateway_for(&opted_in, "  resume_from_client: true").await;
    let mut client = SseClient::resume(gateway.addr(), "/up/a", "1000")
        .await
        .unwrap();
    let first = client.next_event(deadline(WAIT)).await.unwrap().unwrap();
    assert_eq!(first.id_num(), Some(1001));
    assert_eq!(opted_in.requests()[0].last_event_id(), Some("1000"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_whose_upstream_never_answered_200_does_not_linger() {
    // Topic flooding: GET /up/<random> and hang up used to leave the topic and its
    // upstream connection open for `linger` (30 s here).
    let upstream = UpstreamServer::new()
        .default_response(Response::status(503))
        .run()
        .await
        .unwrap();
    let gateway = gateway_for(&upstream, "").await;
    for name in ["r1", "r2", "r3"] {
        let client = SseClient::get(gateway.addr(), &format!("/up/{name}"))
            .await
            .unwrap();
        assert_eq!(client.status(), 200, "a 503 is retried: clients are held");
        drop(client);
    }
    assert!(
        poll_until(Duration::from_secs(5), || async {
            gateway.topics().await.unwrap() == "[]"
        })
        .await,
        "topics still open: {}",
        gateway.topics().await.unwrap()
    );
}
