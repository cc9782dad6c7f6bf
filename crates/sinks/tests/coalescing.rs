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
use sse_gateway_sinks::{Coalescing, DirectSettings};
use tokio::net::TcpStream;

use support::*;

const SENDS_SERIES: &str = r#"sse_gateway_sends_total{path="direct",route="r"}"#;

/// Settings with `client_queue` and a gathering window of `window`, each frame sent on
/// its own (`batched`: false) or through the round's ring.
fn settings(client_queue: usize, window: Duration, batched: bool) -> Arc<DirectSettings> {
    let base = direct_settings(client_queue, DEADLINE, TestDrain::idle());
    let settings = Arc::new(DirectSettings {
        client_queue: base.client_queue,
        write_timeout: base.write_timeout,
        drain: base.drain.clone(),
        batched_sends: base.batched_sends,
        coalescing: Coalescing::new(window),
        conflation: None,
    });
    sending(batched, settings)
}

/// One subscriber of topic `t` on its settings, attached, its opening comment read.
struct Subscribed {
    h: Harness,
    membership: Membership,
    client: ChunkReader<TcpStream>,
    served: Served,
    publisher: Arc<TopicPublisher>,
    /// Sends counted before the test's frames (the opening comment's).
    before: u64,
}

impl Subscribed {
    async fn new(settings: Arc<DirectSettings>) -> Self {
        let h = Harness::new(quiet());
        let (membership, sink) = h.subscribe(None, settings);
        let (mut client, served) = connect(&sink, &membership, false).await;
        assert_eq!(client.data().await, b":\n");
        let publisher = h.feed.publisher();
        let before = sends(&h);
        Self {
            h,
            membership,
            client,
            served,
            publisher,
            before,
        }
    }

    /// Sends made since the subscriber was attached.
    fn sends(&self) -> u64 {
        sends(&self.h) - self.before
    }

    /// Publishes frame `id` (`pad` bytes of data) and returns its bytes.
    fn publish(&self, id: u64, pad: usize) -> Bytes {
        let frame = frame(id, pad);
        let bytes = frame.bytes().clone();
        self.publisher.publish(frame, Instant::now());
        bytes
    }

    /// Publishes `count` frames (ids from 1), `pause` apart, reading nothing.
    async fn publish_unread(&self, count: u64, pad: usize, pause: Duration) -> Vec<Bytes> {
        let mut sent = Vec::new();
        for id in 1..=count {
            sent.push(self.publish(id, pad));
            tokio::time::sleep(pause).await;
        }
        sent
    }

    /// Reads `sent`, each frame in order.
    async fn read_all(&mut self, sent: &[Bytes]) {
        for (index, frame) in sent.iter().enumerate() {
            assert_eq!(&self.client.data().await, frame, "frame {}", index + 1);
        }
    }

    /// Stops the upstream; the stream ends with it.
    async fn stop(self) -> sse_gateway_sinks::DirectOutcome {
        self.publisher.stop();
        let outcome = self.served.outcome().await;
        drop(self.membership);
        outcome
    }
}

fn sends(h: &Harness) -> u64 {
    h.metric(SENDS_SERIES).unwrap_or(0.0) as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_keeps_up_gets_each_frame_in_a_send_of_its_own() {
    for batched in [true, false] {
        let mut s = Subscribed::new(settings(64 << 20, Duration::from_secs(5), batched)).await;
        // Lockstep: the next frame is published once the client read the
        // last, so it has acknowledged everything but (perhaps) the last
        // segment, which a receiver may delay.
        for id in 1..=50 {
            let sent = s.publish(id, 40);
            assert_eq!(s.client.data().await, sent, "frame {id}");
        }
        assert_eq!(
            s.sends(),
            50,
            "one send per frame for a reader that keeps up (batched: {batched}), \
             none of them waiting for the 5 s window"
        );
        assert_eq!(s.h.metric(EVENTS_SERIES), Some(50.0));
        assert_eq!(s.stop().await.end, CloseReason::UpstreamStopped);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_read_gets_frames_gathered_in_order_and_none_lost() {
    for batched in [true, false] {
        let mut s = Subscribed::new(settings(64 << 20, Duration::from_millis(20), batched)).await;
        // The client reads nothing while 200 frames arrive, 1 ms apart.
        let sent = s.publish_unread(200, 40, Duration::from_millis(1)).await;
        s.read_all(&sent).await;
        let made = s.sends();
        assert_eq!(
            s.h.metric(EVENTS_SERIES),
            Some(200.0),
            "every delivery counted"
        );
        assert!(
            made <= 100,
            "{made} sends for 200 frames to a client that read nothing (batched: {batched})"
        );
        s.publisher.stop();
        assert_eq!(s.client.next().await, Ok(Chunk::Last));
        assert_eq!(s.stop().await.events, 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gathered_frames_go_out_when_the_window_closes_with_no_frame_after_them() {
    let mut s = Subscribed::new(settings(64 << 20, Duration::from_millis(5), true)).await;
    // Enough unread frames that the receiver stops acknowledging each at
    // once, then nothing more: only the window's end can send the last.
    let sent = s.publish_unread(60, 40, Duration::from_micros(200)).await;
    s.read_all(&sent).await;
    // Caught up again: the next frame comes at once, in its own send.
    let before = s.sends();
    let last = s.publish(61, 40);
    assert_eq!(s.client.data().await, last);
    assert_eq!(s.sends() - before, 1);
    let _ = s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zero_window_sends_every_frame_when_it_arrives() {
    let mut s = Subscribed::new(settings(64 << 20, Duration::ZERO, false)).await;
    let sent = s.publish_unread(100, 40, Duration::from_micros(500)).await;
    s.read_all(&sent).await;
    assert_eq!(s.sends(), 100, "one send per frame, gathered never");
    assert_eq!(s.stop().await.end, CloseReason::UpstreamStopped);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gathering_never_makes_a_slow_client_of_one_whose_socket_takes_everything() {
    // A queue bound of two frames: were the gathered frames held until the
    // (long) window closed, the third would be over the bound.
    let mut s = Subscribed::new(settings(6000, Duration::from_secs(1), true)).await;
    let sent = s.publish_unread(40, 2500, Duration::from_micros(300)).await;
    s.read_all(&sent).await;
    assert_eq!(
        s.h.metric(SLOW_SERIES).unwrap_or(0.0),
        0.0,
        "nobody cut as slow"
    );
    assert_eq!(s.stop().await.end, CloseReason::UpstreamStopped);
}
