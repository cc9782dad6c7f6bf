//! A live upstream stream: what is sent upstream, what every client gets.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod support;

use sse_gateway_codec::CodecLimits;
use support::{eventually, header, settings, Client, Reply, Upstream};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_arrive_as_the_upstreams_bytes_and_the_request_carries_the_headers() {
    let upstream = Upstream::start(|_, _| {
        // Events split across writes, and two in one write.
        Reply::sse(&[
            "id: 1\ndata: he",
            "llo\n\n",
            "id: 2\nevent: tick\ndata: a\nx-poly: kept\n\nid: 3\ndata: b\n\n",
        ])
        .hold()
    })
    .await;
    let mut upstream_settings = settings(upstream.url("/stream/a?x=1"));
    upstream_settings.headers = vec![
        ("Authorization".into(), "Bearer secret".into()),
        ("X-Custom".into(), "v1".into()),
    ];
    let mut client = Client::subscribe(upstream_settings, None);

    let events = client.events(3).await;
    assert_eq!(&events[0][..], b"id: 1\ndata: hello\n\n");
    assert_eq!(
        &events[1][..],
        b"id: 2\nevent: tick\ndata: a\nx-poly: kept\n\n"
    );
    assert_eq!(&events[2][..], b"id: 3\ndata: b\n\n");

    let head = upstream.conn(0).head;
    assert!(head.starts_with("GET /stream/a?x=1 HTTP/1.1\r\n"), "{head}");
    assert_eq!(header(&head, "host"), Some(upstream.addr.to_string()));
    assert_eq!(
        header(&head, "accept").as_deref(),
        Some("text/event-stream")
    );
    assert_eq!(header(&head, "cache-control").as_deref(), Some("no-cache"));
    assert_eq!(
        header(&head, "authorization").as_deref(),
        Some("Bearer secret")
    );
    assert_eq!(header(&head, "x-custom").as_deref(), Some("v1"));
    assert_eq!(header(&head, "last-event-id"), None);
    assert_eq!(client.metric("sse_gateway_upstream_up", &[]), 1);
    assert_eq!(upstream.connections(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_subscribers_last_event_id_is_sent_on_the_first_connect() {
    let upstream = Upstream::start(|_, _| Reply::sse(&["id: 42\ndata: next\n\n"]).hold()).await;
    let mut client = Client::resuming(settings(upstream.url("/s")), "41");
    client.events(1).await;
    assert_eq!(
        header(&upstream.conn(0).head, "last-event-id").as_deref(),
        Some("41")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_resume_from_client_the_first_subscribers_id_is_not_sent() {
    let upstream = Upstream::start(|_, _| Reply::sse(&["id: 42\ndata: next\n\n"]).hold()).await;
    let mut client = Client::subscribe(settings(upstream.url("/s")), Some("41"));
    client.events(1).await;
    assert_eq!(header(&upstream.conn(0).head, "last-event-id"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crlf_line_ends_are_normalised_and_comments_are_not_forwarded() {
    let upstream = Upstream::start(|_, _| {
        Reply::sse(&[
            ": hello\r\n\r\nid: 1\r\ndata: x\r\n\r\n",
            ": keepalive\n\ndata: y\n\n",
        ])
        .hold()
    })
    .await;
    let mut client = Client::subscribe(settings(upstream.url("/s")), None);
    let events = client.events(2).await;
    assert_eq!(&events[0][..], b"id: 1\ndata: x\n\n");
    assert_eq!(&events[1][..], b"data: y\n\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_events_and_garbage_are_counted_and_the_stream_goes_on() {
    let big = format!("data: {}\n\n", "x".repeat(500));
    let upstream = Upstream::start(move |_, _| {
        Reply::sse(&[
            b"data: ok1\n\n".to_vec(),
            b"\xff\xfe\x00garbage\x01 not a field\n\n\x80\x81\n".to_vec(),
            big.clone().into_bytes(),
            b"\ndata: ok2\n\n".to_vec(),
        ])
        .hold()
    })
    .await;
    let mut upstream_settings = settings(upstream.url("/s"));
    upstream_settings.limits = CodecLimits::with_max_event_size(128);
    let mut client = Client::subscribe(upstream_settings, None);

    let events = client.events(2).await;
    assert_eq!(&events[0][..], b"data: ok1\n\n");
    assert_eq!(&events[1][..], b"data: ok2\n\n");
    assert!(eventually(|| client.upstream_errors("event_too_large") == 1).await);
    assert_eq!(upstream.connections(), 1, "the stream must not be dropped");
    assert_eq!(
        client.metric("sse_gateway_upstream_reconnects_total", &[]),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_response_is_streamed_too() {
    let upstream = Upstream::start(|_, _| {
        Reply::with_head(
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n",
            &["e\r\nid: 1\ndata: a\n\r\n", "c\r\n\nid: 2\ndata:\r\n", "4\r\n b\n\n\r\n"],
        )
        .hold()
    })
    .await;
    let mut client = Client::subscribe(settings(upstream.url("/s")), None);
    let events = client.events(2).await;
    assert_eq!(&events[0][..], b"id: 1\ndata: a\n\n");
    assert_eq!(&events[1][..], b"id: 2\ndata: b\n\n");
}
