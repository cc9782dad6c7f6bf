//! Back-pressure with small kernel buffers (partial writes, flush on write-readiness)
//! without loss, and the slow-client disconnect while another subscriber gets everything.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::{Duration, Instant};

use sse_gateway_hub::CloseReason;

use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_behind_small_buffers_gets_everything_once_it_reads() {
    let h = Harness::new(quiet());
    let (membership, sink) = h.subscribe(
        None,
        direct_settings(8 << 20, Duration::from_secs(30), TestDrain::idle()),
    );
    let (mut client, served) = connect(&sink, &membership, true).await;
    let publisher = h.feed.publisher();
    // About 700 KiB while the client reads nothing: far past the buffers.
    let mut sent = publish(&publisher, 1, 400, 700);
    let (written, _) = sink.written();
    assert!(
        written < 400,
        "the socket must have fallen behind ({written} written)"
    );

    assert_eq!(client.data().await, b":\n");
    let mut events = Vec::new();
    for _ in 0..400 {
        events.push(client.data().await);
    }
    assert_frames(&events, &sent);
    // Caught up again: the next frame takes the direct write.
    let start = Instant::now();
    while sink.written().0 < 400 {
        assert!(start.elapsed() < DEADLINE, "the flush caught up");
        tokio::task::yield_now().await;
    }
    sent.extend(publish(&publisher, 401, 1, 10));
    assert_eq!(sink.written().0, 401, "written at once when caught up");
    assert_eq!(client.data().await, &sent[400][..]);

    publisher.stop();
    assert!(client.complete_body().await.is_empty());
    let outcome = served.outcome().await;
    assert_eq!(outcome.end, CloseReason::UpstreamStopped);
    assert_eq!(outcome.events, 401);
    assert_eq!(outcome.bytes, payload_bytes(&sent));
    assert_eq!(h.metric(EVENTS_SERIES), Some(401.0));
    drop(membership);
}

// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_client_is_cut_off_and_a_fast_one_gets_every_event() {
    slow_and_fast(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_client_is_cut_off_and_a_fast_one_gets_every_event_one_send_each() {
    slow_and_fast(false).await;
}

async fn slow_and_fast(batched: bool) {
    let h = Harness::new(quiet());
    let (fast_membership, fast_sink) = h.subscribe(
        None,
        sending(
            batched,
            direct_settings(256 << 20, DEADLINE, TestDrain::idle()),
        ),
    );
    let (mut fast_client, fast_served) = connect(&fast_sink, &fast_membership, false).await;
    let fast_reader = tokio::spawn(async move { fast_client.complete_body().await });

    let (slow_membership, slow_sink) = h.subscribe(
        None,
        sending(
            batched,
            direct_settings(64 << 10, DEADLINE, TestDrain::idle()),
        ),
    );
    let (mut slow_client, slow_served) = connect(&slow_sink, &slow_membership, true).await;
    assert_eq!(h.subscribers(), 2);

    let publisher = h.feed.publisher();
    let mut sent = Vec::new();
    let mut next = 1;
    while h.subscribers() == 2 {
        assert!(next <= 5000, "the slow client was never cut off");
        sent.extend(publish(&publisher, next, 1, 1000));
        next += 1;
    }
    // The fast one carries on.
    sent.extend(publish(&publisher, next, 50, 1000));
    publisher.stop();

    let slow = slow_served.outcome().await;
    assert_eq!(slow.end, CloseReason::SlowClient);
    assert_eq!(h.metric(SLOW_SERIES), Some(1.0));
    let slow_chunks = slow_client.cut_body().await;
    assert_eq!(slow_chunks[0], b":\n");
    assert_eq!(
        slow_chunks[1..]
            .iter()
            .map(|c| id_of(c))
            .collect::<Vec<_>>(),
        (1..slow_chunks.len() as u64).collect::<Vec<_>>(),
        "what the slow client got is a prefix without gaps"
    );
    assert!(slow.events < sent.len() as u64);

    let fast_chunks = tokio::time::timeout(DEADLINE, fast_reader)
        .await
        .expect("fast body in time")
        .unwrap();
    assert_eq!(fast_chunks[0], b":\n");
    assert_frames(&fast_chunks[1..], &sent);
    let fast = fast_served.outcome().await;
    assert_eq!(fast.end, CloseReason::UpstreamStopped);
    assert_eq!(fast.events, sent.len() as u64);
    drop((fast_membership, slow_membership));
}
