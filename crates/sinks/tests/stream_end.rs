//! How a direct stream ends: the client closes or sends bytes; the drain (hub shutdown:
//! pending, the stream's own jittered final `retry:`, the last chunk); the upstream
//! stop; credential expiry (pending, the route's expiry notice, the last chunk).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::{Duration, Instant};

use sse_gateway_hub::CloseReason;
use sse_gateway_hub::TopicSettings;
use sse_gateway_sinks::Expiry;
use tokio::io::AsyncWriteExt;

use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_closes_ends_the_stream_and_leaves_the_topic() {
    let settings = TopicSettings {
        linger: Duration::from_secs(60),
        ..quiet()
    };
    let h = Harness::new(settings);
    let (membership, sink) =
        h.subscribe(None, direct_settings(1 << 20, DEADLINE, TestDrain::idle()));
    let (mut client, served) = connect(&sink, &membership, false).await;
    let publisher = h.feed.publisher();
    let sent = publish(&publisher, 1, 3, 0);
    assert_eq!(client.data().await, b":\n");
    for want in &sent {
        assert_eq!(client.data().await, &want[..]);
    }
    drop(client);

    let outcome = served.outcome().await;
    assert_eq!(outcome.end, CloseReason::ClientClosed);
    assert_eq!(outcome.events, 3);
    assert_eq!(h.metric(SUBSCRIBERS_SERIES), Some(1.0), "until it leaves");
    drop(membership);
    assert_eq!(h.metric(SUBSCRIBERS_SERIES), Some(0.0));
    assert_eq!(h.hub.client_count(), 0);
    assert_eq!(h.subscribers(), 0);
    // The sink answers no more offers: publishing goes nowhere.
    publish(&publisher, 4, 1, 0);
    assert_eq!(sink.written().0, 3);
}

// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_sends_bytes_after_its_request_is_closed() {
    let h = Harness::new(quiet());
    let (membership, sink) =
        h.subscribe(None, direct_settings(1 << 20, DEADLINE, TestDrain::idle()));
    let (mut client, served) = connect(&sink, &membership, false).await;
    assert_eq!(client.data().await, b":\n");
    client.io.write_all(b"x").await.unwrap();

    let outcome = served.outcome().await;
    assert_eq!(outcome.end, CloseReason::ClientClosed);
    assert!(
        client.cut_body().await.is_empty(),
        "closed without the last chunk"
    );
    drop(membership);
}

// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_shutdown_flushes_then_writes_the_final_frame_and_the_last_chunk() {
    let settings = TopicSettings {
        client_retry: Duration::from_millis(1000),
        ..quiet()
    };
    let h = Harness::new(settings);
    let drain = TestDrain::idle();
    let (membership, sink) = h.subscribe(None, direct_settings(8 << 20, DEADLINE, drain.clone()));
    let (mut client, served) = connect(&sink, &membership, true).await;
    let publisher = h.feed.publisher();
    let sent = publish(&publisher, 1, 300, 700);
    assert!(sink.written().0 < 300, "frames are pending at the drain");

    assert!(drain.start());
    h.hub.shutdown();
    let chunks = client.complete_body().await;

    let first = std::str::from_utf8(&chunks[0]).unwrap();
    let ms: u64 = first
        .strip_prefix("retry: ")
        .unwrap_or_else(|| panic!("the join's advice, got {first:?}"))
        .trim_end()
        .parse()
        .unwrap();
    assert!((800..=1200).contains(&ms), "the join's advice: {ms}");
    assert_frames(&chunks[1..=300], &sent);
    assert_eq!(chunks.len(), 302, "one final frame after the events");
    let last = std::str::from_utf8(&chunks[301]).unwrap();
    let ms: u64 = last
        .strip_prefix("retry: ")
        .and_then(|rest| rest.strip_suffix("\n\n"))
        .unwrap_or_else(|| panic!("the drain's final retry, got {last:?}"))
        .parse()
        .unwrap();
    assert!((987..=1481).contains(&ms), "jittered around 1234 ms: {ms}");

    let outcome = served.outcome().await;
    assert_eq!(outcome.end, CloseReason::Shutdown);
    assert_eq!(outcome.events, 300);
    drop(membership);
}

// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_stop_flushes_then_writes_the_last_chunk() {
    let h = Harness::new(quiet());
    let drain = TestDrain::idle();
    let (membership, sink) = h.subscribe(None, direct_settings(8 << 20, DEADLINE, drain));
    let (mut client, served) = connect(&sink, &membership, true).await;
    let publisher = h.feed.publisher();
    let sent = publish(&publisher, 1, 300, 700);
    assert!(sink.written().0 < 300, "frames are pending at the stop");
    publisher.stop();

    let chunks = client.complete_body().await;
    assert_eq!(chunks[0], b":\n");
    assert_frames(&chunks[1..], &sent);
    let outcome = served.outcome().await;
    assert_eq!(outcome.end, CloseReason::UpstreamStopped);
    assert_eq!(outcome.events, 300);
    assert_eq!(outcome.bytes, payload_bytes(&sent));
    drop(membership);
}

// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_flushes_then_writes_the_notice_and_the_last_chunk() {
    let h = Harness::new(quiet());
    let drain = TestDrain::idle();
    let (membership, sink) = h.subscribe(None, direct_settings(8 << 20, DEADLINE, drain));
    let expiry = Instant::now() + Duration::from_secs(1);
    let notice = Expiry::notice_frame("auth_expired").unwrap();
    let (mut client, served) = connect_expiring(
        &sink,
        &membership,
        true,
        Some(Expiry::new(expiry, notice.clone())),
    )
    .await;
    let publisher = h.feed.publisher();
    let sent = publish(&publisher, 1, 300, 700);
    assert!(
        Instant::now() < expiry && sink.written().0 < 300,
        "frames are pending before the expiry"
    );
    // The client reads nothing until the credentials have expired.
    tokio::time::sleep_until(expiry.into()).await;

    let chunks = client.complete_body().await;
    assert_eq!(chunks[0], b":\n");
    // Every frame, then the notice as the last chunk before the end.
    let (last, frames) = chunks[1..].split_last().unwrap();
    assert_frames(frames, &sent);
    assert_eq!(last[..], notice[..]);
    let outcome = served.outcome().await;
    assert_eq!(outcome.end, CloseReason::CredentialsExpired);
    assert_eq!(outcome.events, 300);
    // The topic carries on and drops the ended sink at its next offer.
    assert_eq!(h.subscribers(), 1);
    publish(&publisher, 301, 1, 0);
    assert_eq!(h.subscribers(), 0);
    drop(membership);
}
