//! A round's writes hold up no join: subscribers arrive (on the proxy
//! runtime) while a round is still writing to its sinks, and each gets the
//! round's frame exactly once, live or from the ring.
//!
//! The "slow write" is a sink whose offer waits until the test lets it go
//! (a direct sink's `send(2)` never waits that long, but a round of 10,000
//! of them takes milliseconds); before the offer lane, the join waited for
//! it on the topic's one lock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use sse_gateway_hub::testing::{frame, quiet, TestFeed};
use sse_gateway_hub::{
    CloseReason, Delivery, DeliveryKind, HubLimits, Offer, OfferRound, SubscribeRequest,
    SubscriberSink, TopicHub, TopicSettings,
};
use sse_gateway_metrics::GatewayMetrics;
use sse_gateway_sinks::ClientQueue;

const DEADLINE: Duration = Duration::from_secs(10);

/// A hub, its metrics and quiet settings for topic `t` of route `r`.
fn hub() -> (TopicHub, GatewayMetrics, Arc<TopicSettings>) {
    let metrics = GatewayMetrics::new(100).unwrap();
    let hub = TopicHub::new(
        HubLimits::default(),
        metrics.clone(),
        tokio::runtime::Handle::current(),
    );
    (hub, metrics, Arc::new(quiet()))
}

/// A subscription to topic `t` of route `r`.
fn request<'a>(
    settings: &'a Arc<TopicSettings>,
    last_event_id: Option<&'a str>,
) -> SubscribeRequest<'a> {
    SubscribeRequest {
        route: "r",
        topic: "t",
        settings,
        last_event_id,
        may_open: None,
    }
}

/// A sink whose offers of live events wait until the test lets them go.
struct StalledSink {
    entered: Mutex<mpsc::Sender<()>>,
    release: Mutex<mpsc::Receiver<()>>,
}

impl StalledSink {
    /// The sink, the receiver told when an offer stalls, and the sender that
    /// lets one go.
    fn new() -> (Arc<Self>, mpsc::Receiver<()>, mpsc::Sender<()>) {
        let (entered, entered_rx) = mpsc::channel();
        let (release_tx, release) = mpsc::channel();
        let sink = Arc::new(Self {
            entered: Mutex::new(entered),
            release: Mutex::new(release),
        });
        (sink, entered_rx, release_tx)
    }
}

impl SubscriberSink for StalledSink {
    fn offer(&self, delivery: &Delivery, _round: &mut OfferRound<'_>) -> Offer {
        if delivery.kind == DeliveryKind::Event {
            let _ = self.entered.lock().send(());
            let _ = self.release.lock().recv_timeout(DEADLINE);
        }
        Offer::Accepted
    }

    fn close(&self, _reason: CloseReason) {}
}

/// The ids of a queue's events, in order (what it holds now).
async fn ids(queue: &ClientQueue) -> Vec<String> {
    let mut batch = Vec::new();
    let mut out = Vec::new();
    for _ in 0..10 {
        let next = tokio::time::timeout(Duration::from_millis(200), queue.next_batch(&mut batch));
        match next.await {
            Ok(Ok(())) => {}
            Ok(Err(reason)) => panic!("closed: {reason}"),
            Err(_idle) => break,
        }
        for delivery in batch.drain(..) {
            let text = String::from_utf8(delivery.bytes.to_vec()).unwrap();
            let id = text
                .strip_prefix("id: ")
                .unwrap()
                .split('\n')
                .next()
                .unwrap();
            out.push(id.to_owned());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_join_while_a_round_writes_and_get_its_frame_once() {
    let (hub, _metrics, settings) = hub();
    let feed = TestFeed::default();

    let (stalled, entered_rx, release_tx) = StalledSink::new();
    let _stalled = hub
        .subscribe(request(&settings, None), stalled.clone(), feed.open())
        .unwrap();
    let publisher = feed.publisher();

    // Frame 1 goes out whole; frame 2's round stalls in the first sink.
    release_tx.send(()).unwrap();
    publisher.publish(frame(1, 0), Instant::now());
    entered_rx.recv_timeout(DEADLINE).unwrap();
    let round = std::thread::spawn({
        let publisher = publisher.clone();
        move || publisher.publish(frame(2, 0), Instant::now())
    });
    entered_rx.recv_timeout(DEADLINE).unwrap();

    // Two subscribers arrive while frame 2's round is still writing.
    let joined = Instant::now();
    let live = Arc::new(ClientQueue::new(1 << 20));
    let resuming = Arc::new(ClientQueue::new(1 << 20));
    let (done_tx, done) = mpsc::channel();
    std::thread::spawn({
        let (hub, live, resuming) = (hub.clone(), live.clone(), resuming.clone());
        let (settings, feed_open, feed_open_2) = (settings.clone(), feed.open(), feed.open());
        move || {
            let a = hub
                .subscribe(request(&settings, None), live, feed_open)
                .unwrap();
            let b = hub
                .subscribe(request(&settings, Some("1")), resuming, feed_open_2)
                .unwrap();
            let _ = done_tx.send((a, b));
        }
    });
    let memberships = done.recv_timeout(Duration::from_secs(5));
    let waited = joined.elapsed();
    release_tx.send(()).unwrap();
    let (_live, _resuming) = memberships.expect("the joins waited for the round's writes");
    round.join().unwrap();

    // Frame 3 is live for both.
    release_tx.send(()).unwrap();
    publisher.publish(frame(3, 0), Instant::now());
    assert_eq!(
        ids(&live).await,
        ["3"],
        "joined after frame 2 was offered: live from 3"
    );
    assert_eq!(
        ids(&resuming).await,
        ["2", "3"],
        "frame 2 from the ring, once; then 3 live"
    );
    eprintln!("joins during a stalled round took {waited:?}");
}

/// A sink that is always full: the first live event makes it slow.
struct FullSink;

impl SubscriberSink for FullSink {
    fn offer(&self, delivery: &Delivery, _round: &mut OfferRound<'_>) -> Offer {
        if delivery.kind == DeliveryKind::Event {
            Offer::Full
        } else {
            Offer::Accepted
        }
    }

    fn close(&self, _reason: CloseReason) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_subscriber_that_leaves_during_the_round_is_counted_once() {
    let (hub, metrics, settings) = hub();
    let feed = TestFeed::default();
    // The full sink is offered first (it joined first), then the round
    // stalls in the second while the full one's stream leaves the topic.
    let full = hub
        .subscribe(request(&settings, None), Arc::new(FullSink), feed.open())
        .unwrap();
    let (stalled, entered_rx, release_tx) = StalledSink::new();
    let _stalled = hub
        .subscribe(request(&settings, None), stalled, feed.open())
        .unwrap();
    let publisher = feed.publisher();
    let round = std::thread::spawn({
        let publisher = publisher.clone();
        move || publisher.publish(frame(1, 0), Instant::now())
    });
    entered_rx.recv_timeout(DEADLINE).unwrap();
    drop(full);
    release_tx.send(()).unwrap();
    round.join().unwrap();

    let text = metrics.encode_text();
    let slow = text
        .lines()
        .find(|l| {
            l.starts_with(r#"sse_gateway_slow_client_disconnects_total{route="r",topic="t"}"#)
        })
        .unwrap_or_else(|| panic!("no slow-client series:\n{text}"));
    assert!(slow.ends_with(" 1"), "counted once: {slow}");
    assert_eq!(hub.client_count(), 1, "the stalled one is still in");
}
