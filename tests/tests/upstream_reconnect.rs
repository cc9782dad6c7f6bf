//! What clients see when the upstream fails: a restart (resumed by `Last-Event-ID`), a
//! deliberate stop (204), errors (500, wrong content type) and bad events.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use sse_gateway_tests::{
    deadline, GatewayProcess, Response, SseClient, SseEvent, Upstream, UpstreamServer,
};

const WAIT: Duration = Duration::from_secs(20);

async fn gateway_for(upstream: &Upstream, extra_defaults: &str) -> GatewayProcess {
    let yaml = format!(
        r#"
threads: 2
defaults:
  client_retry: 0s
  linger: 30s
  upstream_backoff: {{ initial: 50ms, max: 300ms }}
{extra_defaults}
routes:
  - name: up
    path: /up/{{name}}
    upstream:
      url: "{}"
"#,
        upstream.url("/stream/{name}")
    );
    GatewayProcess::start(&yaml).await.unwrap()
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
    let gateway = gateway_for(&upstream, "  heartbeat: 0s").await;
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
    let gateway = gateway_for(&upstream, "  heartbeat: 0s\n  stop_holdoff: 30s").await;
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
    let gateway = gateway_for(&upstream, "  heartbeat: 200ms").await;
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
    let gateway = gateway_for(&upstream, "  heartbeat: 0s\n  max_event_size: 1KiB").await;
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
