//! Reconnects: after the stream ends, after errors, after silence.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod support;

use std::time::{Duration, Instant};

use sse_gateway_hub::{CloseReason, DeliveryKind, UpstreamAnswer};
use support::{eventually, header, settings, within, Client, Reply, Upstream, PATIENCE};

/// `count` events with ids after `last`.
fn events_after(last: u64, count: u64) -> String {
    (last + 1..=last + count)
        .map(|id| format!("id: {id}\ndata: e{id}\n\n"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_stream_is_resumed_from_the_last_id_and_every_event_arrives_once() {
    // An upstream that honours Last-Event-ID, sends 3 events per connection,
    // closes the first two connections and holds the third.
    let upstream = Upstream::start(|index, head| {
        let last = header(head, "last-event-id")
            .and_then(|id| id.parse().ok())
            .unwrap_or(0);
        let reply = Reply::sse(&[events_after(last, 3)]);
        if index >= 2 {
            reply.hold()
        } else {
            reply
        }
    })
    .await;
    let mut client = Client::subscribe(settings(upstream.url("/s")), None);

    let events = client.events(9).await;
    let expected: Vec<String> = (1..=9)
        .map(|id| format!("id: {id}\ndata: e{id}\n\n"))
        .collect();
    let got: Vec<String> = events
        .iter()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .collect();
    assert_eq!(got, expected);
    assert_eq!(header(&upstream.conn(0).head, "last-event-id"), None);
    assert_eq!(
        header(&upstream.conn(1).head, "last-event-id").as_deref(),
        Some("3")
    );
    assert_eq!(
        header(&upstream.conn(2).head, "last-event-id").as_deref(),
        Some("6")
    );
    assert_eq!(
        client.metric("sse_gateway_upstream_reconnects_total", &[]),
        2
    );
    assert_eq!(client.upstream_errors("closed"), 2);
    // The client kept its subscription throughout.
    assert!(client
        .next(Instant::now() + Duration::from_millis(50))
        .await
        .is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_500_is_retried_with_backoff() {
    let upstream = Upstream::start(|_, _| Reply::status(500)).await;
    let client = Client::subscribe(settings(upstream.url("/s")), None);
    assert!(
        eventually(|| upstream.connections() >= 3).await,
        "{}",
        upstream.connections()
    );
    assert!(eventually(|| client.upstream_errors("status") >= 2).await);
    assert_eq!(client.metric("sse_gateway_upstream_up", &[]), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_content_type_ends_the_topic_as_a_bad_gateway() {
    let upstream = Upstream::start(|_, _| {
        Reply::with_head(
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\n",
            &["data: not sse\n\n"],
        )
    })
    .await;
    let mut client = Client::subscribe(settings(upstream.url("/s")), None);
    let answer = within(client.answer()).await;
    assert_eq!(answer, UpstreamAnswer::Refused { status: 502 });
    // Nothing of that body reached the client; its stream ended.
    let end = client.next(Instant::now() + PATIENCE).await;
    assert!(
        matches!(end, Some(Err(CloseReason::UpstreamRefused))),
        "{end:?}"
    );
    assert_no_reconnect(&upstream, 1).await;
    assert_eq!(client.upstream_errors("content_type"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_404_ends_the_topic_with_its_status_and_is_not_retried() {
    for status in [401, 403, 404, 410] {
        let upstream = Upstream::start(move |_, _| Reply::status(status)).await;
        let mut client = Client::subscribe(settings(upstream.url("/s")), None);
        assert_eq!(
            within(client.answer()).await,
            UpstreamAnswer::Refused { status }
        );
        let end = client.next(Instant::now() + PATIENCE).await;
        assert!(
            matches!(end, Some(Err(CloseReason::UpstreamRefused))),
            "status {status}: {end:?}"
        );
        assert_no_reconnect(&upstream, 1).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_4xx_to_a_stored_id_is_retried_at_once_without_it() {
    // The upstream refuses any Last-Event-ID (it restarted and forgot its
    // ids); without one it streams.
    let upstream = Upstream::start(|_, head| match header(head, "last-event-id") {
        Some(_) => Reply::status(400),
        None => Reply::sse(&["id: 1\ndata: fresh\n\n"]).hold(),
    })
    .await;
    let mut upstream_settings = settings(upstream.url("/s"));
    upstream_settings.backoff_initial = Duration::from_secs(5);
    upstream_settings.backoff_max = Duration::from_secs(5);
    let mut client = Client::resuming(upstream_settings, "999");
    let events = client.events(1).await;
    assert_eq!(&events[0][..], b"id: 1\ndata: fresh\n\n");
    assert_eq!(
        header(&upstream.conn(0).head, "last-event-id").as_deref(),
        Some("999")
    );
    assert_eq!(header(&upstream.conn(1).head, "last-event-id"), None);
    let gap = upstream.conn(1).accepted - upstream.conn(0).accepted;
    assert!(
        gap < Duration::from_secs(2),
        "waited {gap:?}: no backoff for it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_that_sends_one_event_and_closes_gets_growing_delays() {
    // Before, every stream that delivered an event reset the backoff: with a
    // 250 ms initial cap such an upstream saw about 8 reconnects a second.
    let upstream =
        Upstream::start(|index, _| Reply::sse(&[format!("id: {}\ndata: x\n\n", index + 1)])).await;
    let mut upstream_settings = settings(upstream.url("/s"));
    upstream_settings.backoff_initial = Duration::from_millis(250);
    upstream_settings.backoff_max = Duration::from_secs(30);
    let _client = Client::subscribe(upstream_settings, None);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let connections = upstream.connections();
    // Caps 250, 500, 1000, 2000 ms...: at most about 6 in 3 s even if every
    // jittered delay were zero-ish; about 24 with the old reset.
    assert!(
        (2..=8).contains(&connections),
        "{connections} connections in 3 s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_upstream_retry_is_clamped_to_the_backoff_max_for_reconnects() {
    let (advice, gap) = retry_then_reconnect(
        60_000,
        Duration::from_millis(250),
        Duration::from_millis(300),
    )
    .await;
    // Clients are still advised the upstream's own value.
    assert!(advice.iter().any(|a| &a[..] == b"retry: 60000\n\n"));
    assert!(
        gap <= Duration::from_millis(1500),
        "reconnected after {gap:?}, not after 60 s"
    );
}

/// An upstream whose first stream advises `retry: retry_ms`, sends one event and
/// closes; its second stream sends one more. Returns the advice the client got and
/// the time between the two connections.
async fn retry_then_reconnect(
    retry_ms: u64,
    backoff_initial: Duration,
    backoff_max: Duration,
) -> (Vec<bytes::Bytes>, Duration) {
    let upstream = Upstream::start(move |index, _| {
        if index == 0 {
            Reply::sse(&[format!("retry: {retry_ms}\nid: 1\ndata: a\n\n")])
        } else {
            Reply::sse(&["id: 2\ndata: b\n\n"]).hold()
        }
    })
    .await;
    let mut upstream_settings = settings(upstream.url("/s"));
    upstream_settings.backoff_initial = backoff_initial;
    upstream_settings.backoff_max = backoff_max;
    let mut client = Client::subscribe(upstream_settings, None);
    let deadline = Instant::now() + PATIENCE;
    let mut advice = Vec::new();
    let mut events = 0;
    while events < 2 {
        let delivery = client
            .next(deadline)
            .await
            .expect("both events within the patience")
            .expect("open");
        match delivery.kind {
            DeliveryKind::Advice => advice.push(delivery.bytes),
            _ => events += delivery.events(),
        }
    }
    let gap = upstream.conn(1).accepted - upstream.conn(0).accepted;
    (advice, gap)
}

/// No connection beyond `seen` within a window where a 10 ms backoff would
/// have made several.
async fn assert_no_reconnect(upstream: &Upstream, seen: usize) {
    let window = Instant::now() + Duration::from_millis(300);
    while Instant::now() < window {
        assert_eq!(upstream.connections(), seen, "reconnected");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connections_are_retried() {
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let url = url::Url::parse(&format!("http://{closed_port}/s")).unwrap();
    let client = Client::subscribe(settings(url), None);
    assert!(eventually(|| client.upstream_errors("connect") >= 3).await);
    assert!(client.metric("sse_gateway_upstream_reconnects_total", &[]) >= 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_upstream_is_reconnected_after_the_idle_timeout() {
    let upstream =
        Upstream::start(|index, _| Reply::sse(&[format!("id: {}\ndata: x\n\n", index + 1)]).hold())
            .await;
    let mut upstream_settings = settings(upstream.url("/s"));
    upstream_settings.idle_timeout = Some(Duration::from_millis(200));
    let mut client = Client::subscribe(upstream_settings, None);

    let events = client.events(2).await;
    assert_eq!(&events[1][..], b"id: 2\ndata: x\n\n");
    assert_eq!(
        header(&upstream.conn(1).head, "last-event-id").as_deref(),
        Some("1")
    );
    assert!(client.upstream_errors("timeout") >= 1);
    // The silent connection was dropped by the gateway.
    assert!(eventually(|| upstream.conn(0).eof).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn comments_keep_an_idle_upstream_alive() {
    // 6 comments 100 ms apart: 600 ms without an event, under a 300 ms idle timeout.
    let upstream = Upstream::start(|_, _| {
        let mut chunks = vec!["data: first\n\n".to_owned()];
        chunks.extend((0..6).map(|_| ":\n".to_owned()));
        chunks.push("data: last\n\n".to_owned());
        Reply::sse(&chunks).paced(Duration::from_millis(100)).hold()
    })
    .await;
    let mut upstream_settings = settings(upstream.url("/s"));
    upstream_settings.idle_timeout = Some(Duration::from_millis(300));
    let mut client = Client::subscribe(upstream_settings, None);
    let events = client.events(2).await;
    assert_eq!(&events[1][..], b"data: last\n\n");
    assert_eq!(client.upstream_errors("timeout"), 0);
    assert_eq!(upstream.connections(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_upstreams_retry_is_a_floor_for_the_reconnect_delay() {
    // Delays of at most 1 ms, but the floor (under backoff_max) wins.
    let (advice, gap) =
        retry_then_reconnect(300, Duration::from_millis(1), Duration::from_secs(1)).await;
    assert!(
        advice.iter().any(|a| &a[..] == b"retry: 300\n\n"),
        "{advice:?}"
    );
    assert!(
        gap >= Duration::from_millis(250),
        "reconnected after {gap:?}"
    );
}
