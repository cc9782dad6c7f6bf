//! Gathering windows on the direct path (`coalesce_window`): a client that keeps up
//! gets every frame in a send of its own; one that has not read what it was sent gets
//! the next frames gathered into fewer sends, in order, none lost, and the last ones
//! still go out when no frame follows them. Sends are counted in
//! `sse_gateway_sends_total{path="direct"}` beside the deliveries.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sse_gateway_hub::{CloseReason, Membership, TopicPublisher};
use sse_gateway_sinks::{Coalescing, DirectSettings, DirectSink};
use tokio::net::TcpStream;

use support::*;

const SENDS_SERIES: &str = r#"sse_gateway_sends_total{path="direct",route="r"}"#;

/// Settings with a gathering window of `window`, each frame sent on its own
/// (`batched`: false) or through the round's ring.
fn settings(window: Duration, batched: bool) -> Arc<DirectSettings> {
    let base = direct_settings(64 << 20, DEADLINE, TestDrain::idle());
    let settings = Arc::new(DirectSettings {
        client_queue: base.client_queue,
        write_timeout: base.write_timeout,
        drain: base.drain.clone(),
        batched_sends: base.batched_sends,
        coalescing: Coalescing::new(window),
    });
    sending(batched, settings)
}

/// A subscriber on `settings`, attached, its opening comment read.
async fn subscriber(
    h: &Harness,
    settings: Arc<DirectSettings>,
) -> (Membership, Arc<DirectSink>, ChunkReader<TcpStream>, Served) {
    let (membership, sink) = h.subscribe(None, settings);
    let (mut client, served) = connect(&sink, &membership, false).await;
    assert_eq!(client.data().await, b":\n");
    (membership, sink, client, served)
}

fn sends(h: &Harness) -> u64 {
    h.metric(SENDS_SERIES).unwrap_or(0.0) as u64
}

/// Publishes frame `id` (a small event) and returns its bytes.
fn publish_one(publisher: &TopicPublisher, id: u64) -> Bytes {
    let frame = frame(id, 40);
    let bytes = frame.bytes().clone();
    publisher.publish(frame, Instant::now());
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_keeps_up_gets_each_frame_in_a_send_of_its_own() {
    for batched in [true, false] {
        let h = Harness::new(quiet());
        let (membership, _sink, mut client, served) =
            subscriber(&h, settings(Duration::from_secs(5), batched)).await;
        let publisher = h.feed.publisher();
        let before = sends(&h);
        // Lockstep: the next frame is published once the client read the
        // last, so it has acknowledged everything but (perhaps) the last
        // segment, which a receiver may delay.
        for id in 1..=50 {
            let sent = publish_one(&publisher, id);
            assert_eq!(client.data().await, sent, "frame {id}");
        }
        assert_eq!(
            sends(&h) - before,
            50,
            "one send per frame for a reader that keeps up (batched: {batched}), \
             none of them waiting for the 5 s window"
        );
        assert_eq!(h.metric(EVENTS_SERIES), Some(50.0));
        publisher.stop();
        assert_eq!(served.outcome().await.end, CloseReason::UpstreamStopped);
        drop(membership);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_read_gets_frames_gathered_in_order_and_none_lost() {
    for batched in [true, false] {
        let h = Harness::new(quiet());
        let (membership, _sink, mut client, served) =
            subscriber(&h, settings(Duration::from_millis(20), batched)).await;
        let publisher = h.feed.publisher();
        let before = sends(&h);
        // The client reads nothing while 200 frames arrive, 1 ms apart.
        let mut sent = Vec::new();
        for id in 1..=200 {
            sent.push(publish_one(&publisher, id));
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        for (index, frame) in sent.iter().enumerate() {
            assert_eq!(&client.data().await, frame, "frame {}", index + 1);
        }
        let made = sends(&h) - before;
        assert_eq!(
            h.metric(EVENTS_SERIES),
            Some(200.0),
            "every delivery counted"
        );
        assert!(
            made <= 100,
            "{made} sends for 200 frames to a client that read nothing (batched: {batched})"
        );
        publisher.stop();
        assert_eq!(client.next().await, Ok(Chunk::Last));
        assert_eq!(served.outcome().await.events, 200);
        drop(membership);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gathered_frames_go_out_when_the_window_closes_with_no_frame_after_them() {
    let h = Harness::new(quiet());
    let (membership, _sink, mut client, served) =
        subscriber(&h, settings(Duration::from_millis(5), true)).await;
    let publisher = h.feed.publisher();
    // Enough unread frames that the receiver stops acknowledging each at
    // once, then nothing more: only the window's end can send the last.
    let mut sent = Vec::new();
    for id in 1..=60 {
        sent.push(publish_one(&publisher, id));
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    for (index, frame) in sent.iter().enumerate() {
        assert_eq!(&client.data().await, frame, "frame {}", index + 1);
    }
    // Caught up again: the next frame comes at once, in its own send.
    let before = sends(&h);
    let last = publish_one(&publisher, 61);
    assert_eq!(client.data().await, last);
    assert_eq!(sends(&h) - before, 1);
    drop(publisher);
    drop(client);
    drop(membership);
    let _ = served.outcome().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zero_window_sends_every_frame_when_it_arrives() {
    let h = Harness::new(quiet());
    let (membership, _sink, mut client, served) =
        subscriber(&h, settings(Duration::ZERO, false)).await;
    let publisher = h.feed.publisher();
    let before = sends(&h);
    let mut sent = Vec::new();
    for id in 1..=100 {
        sent.push(publish_one(&publisher, id));
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
    for frame in &sent {
        assert_eq!(&client.data().await, frame);
    }
    assert_eq!(
        sends(&h) - before,
        100,
        "one send per frame, gathered never"
    );
    publisher.stop();
    assert_eq!(served.outcome().await.end, CloseReason::UpstreamStopped);
    drop(membership);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gathering_never_makes_a_slow_client_of_one_whose_socket_takes_everything() {
    // A queue bound of two frames: were the gathered frames held until the
    // (long) window closed, the third would be over the bound.
    let h = Harness::new(quiet());
    let base = direct_settings(6000, DEADLINE, TestDrain::idle());
    let settings = Arc::new(DirectSettings {
        client_queue: base.client_queue,
        write_timeout: base.write_timeout,
        drain: base.drain.clone(),
        batched_sends: true,
        coalescing: Coalescing::new(Duration::from_secs(1)),
    });
    let (membership, _sink, mut client, served) = subscriber(&h, settings).await;
    let publisher = h.feed.publisher();
    let mut sent = Vec::new();
    for id in 1..=40 {
        let frame = frame(id, 2500);
        sent.push(frame.bytes().clone());
        publisher.publish(frame, Instant::now());
        tokio::time::sleep(Duration::from_micros(300)).await;
    }
    for (index, frame) in sent.iter().enumerate() {
        assert_eq!(&client.data().await, frame, "frame {}", index + 1);
    }
    assert_eq!(
        h.metric(SLOW_SERIES).unwrap_or(0.0),
        0.0,
        "nobody cut as slow"
    );
    publisher.stop();
    assert_eq!(served.outcome().await.end, CloseReason::UpstreamStopped);
    drop(membership);
}
