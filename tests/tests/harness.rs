//! The harness checked against itself: the scripted upstream read directly by the
//! oracle client, without a gateway in between.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use sse_gateway_tests::{deadline, Response, SseClient, UpstreamServer};

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_stream_resumes_after_last_event_id_and_is_recorded() {
    let upstream = UpstreamServer::new()
        .default_response(Response::live(2000))
        .run()
        .await
        .unwrap();
    let mut client = SseClient::get(upstream.addr(), "/stream/a").await.unwrap();
    assert_eq!(client.status(), 200);
    assert_eq!(client.header("content-type"), Some("text/event-stream"));
    let events = client.events_until(50, deadline(WAIT)).await.unwrap();
    let ids: Vec<u64> = events.iter().map(|e| e.id_num().unwrap()).collect();
    assert_eq!(ids, (1..=50).collect::<Vec<_>>());
    assert_eq!(events[0].raw, b"id: 1\ndata: 1\n\n");

    let mut resumed = SseClient::resume(upstream.addr(), "/stream/a", "41")
        .await
        .unwrap();
    let first = resumed.next_event(deadline(WAIT)).await.unwrap().unwrap();
    assert_eq!(first.id_num(), Some(42));
    let requests = upstream.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1].path, "/stream/a");
    assert_eq!(requests[1].last_event_id(), Some("41"));
    assert_eq!(upstream.connections(), 2);
    assert!(upstream.sent(0).starts_with(b"id: 1\ndata: 1\n\nid: 2\n"));

    drop(client);
    assert!(
        upstream.wait_open(1, WAIT).await,
        "closing a client closes its connection"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripted_statuses_and_kill_restart() {
    let upstream = UpstreamServer::new()
        .respond(Response::status(204))
        .respond(Response::status(500))
        .respond(
            Response::sse()
                .chunk("data: a\n\n")
                .chunk_after(Duration::from_millis(10), "data: b\n\n")
                .then_close(),
        )
        .default_response(Response::sse().chunk(": idle\n\n"))
        .run()
        .await
        .unwrap();
    let mut c204 = SseClient::get(upstream.addr(), "/x").await.unwrap();
    assert_eq!(c204.status(), 204);
    c204.read_to_end(deadline(WAIT)).await.unwrap();
    assert_eq!(
        SseClient::get(upstream.addr(), "/x")
            .await
            .unwrap()
            .status(),
        500
    );
    let mut scripted = SseClient::get(upstream.addr(), "/x").await.unwrap();
    scripted.read_to_end(deadline(WAIT)).await.unwrap();
    assert_eq!(scripted.raw_body(), b"data: a\n\ndata: b\n\n");
    let mut idle = SseClient::get(upstream.addr(), "/x").await.unwrap();
    idle.read_until(deadline(WAIT), |c| !c.comments().is_empty())
        .await
        .unwrap();

    upstream.kill().await;
    idle.read_to_end(deadline(WAIT)).await.unwrap();
    assert!(
        SseClient::get(upstream.addr(), "/x").await.is_err(),
        "killed server refuses connections"
    );
    upstream.restart().await.unwrap();
    let again = SseClient::get(upstream.addr(), "/x").await.unwrap();
    assert_eq!(again.status(), 200);
    assert_eq!(upstream.connections(), 5);
}
