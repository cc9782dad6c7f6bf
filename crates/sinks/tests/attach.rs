//! Frames held between subscribe and attach: replay included, bounded by `client_queue`,
//! and kept through an upstream stop that comes before the attach.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use sse_gateway_hub::CloseReason;
use sse_gateway_hub::TopicSettings;

use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_and_frames_held_before_attach_arrive_in_order_after_it() {
    let settings = TopicSettings {
        client_retry: Duration::from_millis(2000),
        ..quiet()
    };
    let h = Harness::new(settings);
    let (_anchor, _queue) = h.subscribe_queue();
    let publisher = h.feed.publisher();
    let mut sent = publish(&publisher, 1, 10, 0);

    let (membership, sink) = h.subscribe(
        Some("4"),
        direct_settings(64 << 20, DEADLINE, TestDrain::idle()),
    );
    sent.extend(publish(&publisher, 11, 10, 0));
    assert_eq!(sink.written(), (0, 0), "nothing written before attach");

    let (mut client, served) = connect(&sink, &membership, false).await;
    sent.extend(publish(&publisher, 21, 10, 0));
    publisher.stop();

    let chunks = client.complete_body().await;
    let advice = std::str::from_utf8(&chunks[0]).unwrap();
    let ms: u64 = advice
        .strip_prefix("retry: ")
        .unwrap_or_else(|| panic!("the join's advice first, got {advice:?}"))
        .trim_end()
        .parse()
        .unwrap();
    assert!((1600..=2400).contains(&ms), "jittered ±20%: {ms}");
    assert_frames(&chunks[1..], &sent[4..]);
    assert_eq!(
        chunks[1..].iter().map(|c| id_of(c)).collect::<Vec<_>>(),
        (5..=30).collect::<Vec<_>>(),
        "replayed 5..=10, held 11..=20, live 21..=30"
    );

    let outcome = served.outcome().await;
    assert_eq!(outcome.end, CloseReason::UpstreamStopped);
    assert_eq!(outcome.events, 26);
    let bytes = chunks[0].len() as u64 + payload_bytes(&sent[4..]);
    assert_eq!(
        outcome.bytes, bytes,
        "advice bytes count, as on the session path"
    );
    assert_eq!(h.metric(EVENTS_SERIES), Some(26.0));
    assert_eq!(h.metric(BYTES_SERIES), Some(bytes as f64));
    assert_eq!(
        h.metric(r#"sse_gateway_replayed_events_total{route="r",topic="t"}"#),
        Some(6.0)
    );
    drop(membership);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_stopped_before_attach_still_gets_what_it_held_then_the_last_chunk() {
    let h = Harness::new(quiet());
    let (membership, sink) =
        h.subscribe(None, direct_settings(1 << 20, DEADLINE, TestDrain::idle()));
    let publisher = h.feed.publisher();
    let sent = publish(&publisher, 1, 5, 0);
    publisher.stop();
    assert_eq!(h.subscribers(), 0, "the stop closed the subscriber");

    let (mut client, served) = connect(&sink, &membership, false).await;
    let chunks = client.complete_body().await;
    assert_frames(&chunks, &sent);
    let outcome = served.outcome().await;
    assert_eq!(outcome.end, CloseReason::UpstreamStopped);
    assert_eq!(outcome.events, 5);
    drop(membership);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_held_before_attach_are_bounded_by_the_client_queue() {
    let h = Harness::new(quiet());
    let (_anchor, _queue) = h.subscribe_queue();
    let (membership, sink) = h.subscribe(None, direct_settings(1000, DEADLINE, TestDrain::idle()));
    let publisher = h.feed.publisher();
    publish(&publisher, 1, 10, 300);
    assert_eq!(h.subscribers(), 1, "the held sink went over its bound");
    assert_eq!(h.metric(SLOW_SERIES), Some(1.0));

    let (mut client, served) = connect(&sink, &membership, false).await;
    let outcome = served.outcome().await;
    assert_eq!(outcome.end, CloseReason::SlowClient);
    assert_eq!(outcome.events, 0, "what it held was dropped");
    let chunks = client.cut_body().await;
    assert!(
        chunks.iter().all(|c| c.as_slice() == b":\n"),
        "no event reaches a slow client: {chunks:?}"
    );
    drop(membership);
}
