//! What clients see when the upstream fails: a restart (resumed by `Last-Event-ID`), a
//! deliberate stop (204), errors worth retrying (5xx) while clients stay connected, bad
//! events, and refusals (401/403/404/410, not an event stream) passed on as a plain
//! reverse proxy would; and no client decides where the shared upstream resumes unless
//! the route says so.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use sse_gateway_tests::{
    deadline, poll_until, Cors, GatewayConfig, GatewayProcess, Response, Route, Settings,
    SseClient, SseEvent, Upstream, UpstreamServer,
};

const WAIT: Duration = Duration::from_secs(20);

/// A gateway with one route, `up`, with a CORS policy, fast upstream reconnects, and
/// the defaults `more` sets.
async fn gateway_for(
    upstream: &Upstream,
    more: impl FnOnce(GatewayConfig) -> GatewayConfig,
) -> GatewayProcess {
    let config = GatewayConfig::new()
        .threads(2)
        .client_retry("0s")
        .linger("30s")
        .upstream_backoff("50ms", "300ms");
    let config = more(config).route(
        Route::fan_out("up", "/up/{name}", &upstream.url("/stream/{name}"))
            .params(&[("name", "[a-z0-9]+")])
            .cors(Cors::origins(&["https://app.example"])),
    );
    GatewayProcess::start(&config.to_yaml()).await.unwrap()
}

fn ids(events: &[SseEvent]) -> Vec<u64> {
    events.iter().map(|e| e.id_num().unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_and_restarted_upstream_loses_and_repeats_nothing() {
    let upstream = UpstreamServer::new()
        .default_response(Response::live(500))
        .run()
        .await
        .unwrap();
    let gateway = gateway_for(&upstream, |c| c.heartbeat("0s")).await;
    let mut a = SseClient::get(gateway.addr(), "/up/k").await.unwrap();
    let mut b = SseClient::get(gateway.addr(), "/up/k").await.unwrap();
    let mut got_a = a.events_until(200, deadline(WAIT)).await.unwrap();
    let mut got_b = b.events_until(100, deadline(WAIT)).await.unwrap();

    upstream.kill().await;
    upstream.restart().await.unwrap();
    assert!(
        upstream.wait_connections(2, WAIT).await,
        "the gateway reconnects"
    );
    got_a.extend(a.events_until(600, deadline(WAIT)).await.unwrap());
    got_b.extend(b.events_until(600, deadline(WAIT)).await.unwrap());
    for got in [&got_a, &got_b] {
        let ids = ids(got);
        let first = ids[0];
        assert_eq!(
            ids,
            (first..first + ids.len() as u64).collect::<Vec<_>>(),
            "every event exactly once"
        );
    }
    let resumed = &upstream.requests()[1];
    let last_id: u64 = resumed
        .last_event_id()
        .expect("Last-Event-ID on reconnect")
        .parse()
        .unwrap();
    assert!(
        last_id >= 200,
        "the reconnect resumes after what was delivered (Last-Event-ID: {last_id})"
    );
    assert!(!a.ended() && !b.ended(), "clients stay connected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_204_ends_client_streams_and_refuses_new_ones() {
    let upstream = UpstreamServer::new()
        .respond(
            Response::sse()
                .wait_release()
                .chunk("id: 1\ndata: one\n\n")
                .chunk("id: 2\ndata: two\n\n")
                .then_close(),
        )
        .default_response(Response::status(204))
        .run()
        .await
        .unwrap();
    let gateway = gateway_for(&upstream, |c| c.heartbeat("0s").stop_holdoff("30s")).await;
    let mut client = SseClient::get(gateway.addr(), "/up/s").await.unwrap();
    assert_eq!(client.status(), 200);
    assert!(upstream.wait_connections(1, WAIT).await);
    upstream.release();
    let events = client.events_until(2, deadline(WAIT)).await.unwrap();
    assert_eq!(ids(&events), [1, 2]);
    // The reconnect gets 204: the topic ends and so does the client's stream.
    client.read_to_end(deadline(WAIT)).await.unwrap();
    assert_eq!(upstream.requests()[1].last_event_id(), Some("2"));
    let mut late = SseClient::get(gateway.addr(), "/up/s").await.unwrap();
    assert_eq!(
        late.status(),
        204,
        "a new subscriber during the stop hold-off gets 204"
    );
    late.read_to_end(deadline(WAIT)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_upstream_holds_clients_with_heartbeats_until_it_recovers() {
    let upstream = UpstreamServer::new()
        .respond(Response::status(500))
        .respond(Response::status(503))
        .default_response(Response::status(502))
        .run()
        .await
        .unwrap();
    let gateway = gateway_for(&upstream, |c| c.heartbeat("200ms")).await;
    let mut client = SseClient::get(gateway.addr(), "/up/f").await.unwrap();
    assert_eq!(
        client.status(),
        200,
        "a client is held, not refused, while the upstream fails"
    );
    assert!(
        upstream.wait_connections(3, WAIT).await,
        "errors are retried"
    );
    client
        .read_until(deadline(WAIT), |c| c.comments().len() >= 2)
        .await
        .unwrap();
    assert_eq!(
        client.parser().pending_events(),
        0,
        "nothing from a failing upstream reaches the client"
    );

    upstream.set_default(Response::live(50));
    let events = client.events_until(5, deadline(WAIT)).await.unwrap();
    assert_eq!(ids(&events), [1, 2, 3, 4, 5], "the events after recovery");
    let (errors, ok) = gateway
        .wait_metric(
            "sse_gateway_upstream_reconnects_total",
            &[("route", "up")],
            WAIT,
            |v| v >= 1.0,
        )
        .await;
    assert!(ok, "upstream_reconnects_total = {errors}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_events_and_garbage_are_dropped() {
    let oversized = format!("id: 2\ndata: {}\n\n", "o".repeat(4096));
    let mut garbage =
        b"\x00\x01\x02garbage without colon\n\xff\xfe: \xc3\x28 junk\nretry: soon\n".to_vec();
    garbage.extend_from_slice(&[b'z'; 8192]);
    garbage.extend_from_slice(b"\n\n");
    let upstream = UpstreamServer::new()
        .default_response(
            Response::sse()
                .wait_release()
                .chunk("id: 1\ndata: small\n\n")
                .chunk(oversized)
                .chunk(garbage)
                .chunk("id: 3\ndata: after\n\n")
                .chunk("id: 4\ndata: last\n\n"),
        )
        .run()
        .await
        .unwrap();
    let gateway = gateway_for(&upstream, |c| c.heartbeat("0s").max_event_size("1KiB")).await;
    let mut client = SseClient::get(gateway.addr(), "/up/g").await.unwrap();
    assert_eq!(client.status(), 200);
    assert!(upstream.wait_connections(1, WAIT).await);
    upstream.release();
    let events = client.events_until(3, deadline(WAIT)).await.unwrap();
    let got: Vec<(Option<&str>, &str)> = events
        .iter()
        .map(|e| (e.id.as_deref(), e.data.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (Some("1"), "small"),
            (Some("3"), "after"),
            (Some("4"), "last")
        ]
    );
    assert_eq!(
        upstream.connections(),
        1,
        "bad events do not cost the upstream connection"
    );
}

// === refusals and who chooses where the upstream resumes ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_404_upstream_is_answered_404_with_cors_and_not_retried() {
    let upstream = UpstreamServer::new()
        .default_response(Response::status(404))
        .run()
        .await
        .unwrap();
    let gateway = gateway_for(&upstream, |c| c.heartbeat("0s")).await;
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
    let gateway = gateway_for(&upstream, |c| c.heartbeat("0s")).await;
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
    let gateway = gateway_for(&upstream, |c| c.heartbeat("0s")).await;
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
    let gateway = gateway_for(&upstream, |c| c.heartbeat("0s")).await;
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
    let gateway = gateway_for(&opted_in, |c| c.heartbeat("0s").resume_from_client(true)).await;
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
    let gateway = gateway_for(&upstream, |c| c.heartbeat("0s")).await;
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
