//! The hub's policies, driven through its public API with tokio timers: heartbeats and
//! linger on a paused clock (`start_paused`, so they take no real time and their timing
//! is exact), the rest in real time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sse_gateway_codec::Frame;
use sse_gateway_hub::testing::{frame, quiet, TestFeed};
use sse_gateway_hub::{
    CloseReason, Delivery, DeliveryKind, HubLimits, Membership, Refusal, SubscribeRequest,
    TopicHub, TopicPublisher, TopicSettings, UpstreamAnswer, UpstreamState,
};
use sse_gateway_metrics::GatewayMetrics;
use sse_gateway_sinks::ClientQueue;

const DEADLINE: Duration = Duration::from_secs(10);

struct Harness {
    hub: TopicHub,
    metrics: GatewayMetrics,
    settings: Arc<TopicSettings>,
    feed: TestFeed,
}

impl Harness {
    fn new(settings: TopicSettings, limits: HubLimits) -> Self {
        let metrics = GatewayMetrics::new(100).unwrap();
        let hub = TopicHub::new(limits, metrics.clone(), tokio::runtime::Handle::current());
        Self {
            hub,
            metrics,
            settings: Arc::new(settings),
            feed: TestFeed::default(),
        }
    }

    fn join(
        &self,
        topic: &str,
        last_event_id: Option<&str>,
        queue_bytes: usize,
    ) -> Result<(Membership, Arc<ClientQueue>), Refusal> {
        let queue = Arc::new(ClientQueue::new(queue_bytes));
        let request = SubscribeRequest {
            route: "r",
            topic,
            settings: &self.settings,
            last_event_id,
            may_open: None,
        };
        let membership = self
            .hub
            .subscribe(request, queue.clone(), self.feed.open())?;
        Ok((membership, queue))
    }
}

async fn batch(queue: &ClientQueue) -> Result<Vec<Delivery>, CloseReason> {
    let mut out = Vec::new();
    tokio::time::timeout(DEADLINE, queue.next_batch(&mut out))
        .await
        .expect("delivery in time")?;
    Ok(out)
}

/// Polls `check` every 5 ms on tokio's clock (paused or not) until it holds, for at most
/// [`DEADLINE`].
async fn eventually(mut check: impl FnMut() -> bool) {
    let start = tokio::time::Instant::now();
    while !check() {
        assert!(start.elapsed() < DEADLINE, "condition not met in time");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// How [`resume_repeatedly`] resumes.
struct Resumes {
    /// Start once the live stream passed this id.
    live_after: u64,
    rounds: usize,
    /// How far behind the live edge each resume asks from (surely in the ring).
    behind: u64,
    /// Ids each resumed subscriber reads before it leaves.
    read: usize,
}

/// While `publisher` keeps publishing, joins `rounds` times with a
/// `Last-Event-ID` a little behind the live edge and checks that each joiner
/// reads contiguous ids right after it: no gap, no duplicate at the hand-over.
async fn resume_repeatedly(h: &Harness, publisher: &Arc<TopicPublisher>, resumes: Resumes) {
    let live = || -> u64 {
        publisher
            .last_event_id()
            .map_or(0, |id| id.parse().unwrap())
    };
    eventually(|| live() > resumes.live_after).await;
    for _ in 0..resumes.rounds {
        let asked = live().saturating_sub(resumes.behind).max(1);
        let (member, queue) = h.join("t", Some(&asked.to_string()), 64 << 20).unwrap();
        let mut seen = Vec::new();
        while seen.len() < resumes.read {
            seen.extend(all_ids(&batch(&queue).await.unwrap()));
        }
        drop(member);
        let expected: Vec<u64> = (asked + 1..asked + 1 + seen.len() as u64).collect();
        assert_eq!(seen, expected, "contiguous after {asked}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_feed_per_topic_and_one_bytes_for_everyone() {
    let h = Harness::new(quiet(), HubLimits::default());
    let clients: Vec<_> = (0..100)
        .map(|_| h.join("t", None, 1 << 20).unwrap())
        .collect();
    assert_eq!(h.feed.opened(), 1);
    let other = h.join("u", None, 1 << 20).unwrap();
    assert_eq!(h.feed.opened(), 2, "another topic has its own feed");

    let sent = frame(1, 0);
    h.feed
        .publisher_at(0)
        .expect("opened")
        .publish(sent.clone(), Instant::now());
    for (_, queue) in &clients {
        let got = batch(queue).await.unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].bytes, *sent.bytes());
        assert_eq!(
            got[0].bytes.as_ptr(),
            sent.bytes().as_ptr(),
            "shared, not copied"
        );
    }
    assert_eq!(other.1.pending_bytes(), 0, "topics are separate");
    assert!(h
        .metrics
        .encode_text()
        .contains(r#"sse_gateway_subscribers{route="r",topic="t"} 100"#));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_hand_over_has_no_gap_and_no_duplicate_under_load() {
    let h = Harness::new(quiet(), HubLimits::default());
    let (_first, _queue) = h.join("t", None, 64 << 20).unwrap();
    let publisher = h.feed.publisher();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let producer = {
        let (publisher, stop) = (publisher.clone(), stop.clone());
        tokio::spawn(async move {
            let mut id = 0;
            while !stop.load(Ordering::SeqCst) && id < 5_000_000 {
                id += 1;
                publisher.publish(frame(id, 0), Instant::now());
                if id % 64 == 0 {
                    tokio::task::yield_now().await;
                }
            }
            id
        })
    };
    resume_repeatedly(
        &h,
        &publisher,
        Resumes {
            live_after: 100,
            rounds: 30,
            behind: 50,
            read: 500,
        },
    )
    .await;
    stop.store(true, Ordering::SeqCst);
    let published = producer.await.unwrap();
    assert!(
        published > 1000,
        "the stream was live during the resumes ({published})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_client_is_disconnected_and_the_rest_carry_on() {
    let h = Harness::new(quiet(), HubLimits::default());
    let (_slow, slow_queue) = h.join("t", None, 1000).unwrap();
    let (_fast, fast_queue) = h.join("t", None, 1 << 20).unwrap();
    let publisher = h.feed.publisher();
    let mut fast_ids = Vec::new();
    for id in 1..=200 {
        publisher.publish(frame(id, 0), Instant::now());
        fast_ids.extend(all_ids(&batch(&fast_queue).await.unwrap()));
    }
    assert_eq!(fast_ids, (1..=200).collect::<Vec<_>>());
    assert_eq!(
        batch(&slow_queue).await.unwrap_err(),
        CloseReason::SlowClient
    );
    let text = h.metrics.encode_text();
    assert!(
        text.contains(r#"sse_gateway_slow_client_disconnects_total{route="r",topic="t"} 1"#),
        "{text}"
    );
    assert!(text.contains(r#"sse_gateway_subscribers{route="r",topic="t"} 1"#));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn advice_first_then_replay_then_live() {
    let settings = TopicSettings {
        client_retry: Duration::from_millis(1000),
        ..quiet()
    };
    let h = Harness::new(settings, HubLimits::default());
    let (_a, a) = h.join("t", None, 1 << 20).unwrap();
    let first = batch(&a).await.unwrap();
    assert_eq!(first[0].kind, DeliveryKind::Advice);
    let text = std::str::from_utf8(&first[0].bytes).unwrap();
    let ms: u64 = text.trim_start_matches("retry: ").trim().parse().unwrap();
    assert!((800..=1200).contains(&ms), "jittered ±20%: {ms}");

    let publisher = h.feed.publisher();
    for id in 1..=5 {
        publisher.publish(frame(id, 0), Instant::now());
    }
    publisher.advise_retry(4321);
    let (_b, b) = h.join("t", Some("2"), 1 << 20).unwrap();
    let got = batch(&b).await.unwrap();
    assert_eq!(
        &got[0].bytes[..],
        b"retry: 4321\n\n",
        "the upstream's retry wins"
    );
    assert_eq!(all_ids(&got), vec![3, 4, 5]);
    publisher.publish(frame(6, 0), Instant::now());
    assert_eq!(all_ids(&batch(&b).await.unwrap()), vec![6]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_miss_is_counted_and_answered_with_a_gap_event() {
    let settings = TopicSettings {
        gap_event: Some("gap".into()),
        replay_events: 2,
        ..quiet()
    };
    let h = Harness::new(settings, HubLimits::default());
    let (_a, _) = h.join("t", None, 1 << 20).unwrap();
    let publisher = h.feed.publisher();
    for id in 1..=5 {
        publisher.publish(frame(id, 0), Instant::now());
    }
    let (_b, b) = h.join("t", Some("1"), 1 << 20).unwrap();
    let got = batch(&b).await.unwrap();
    assert_eq!(
        &got[0].bytes[..],
        b"event: gap\ndata: {\"requested\":\"1\",\"oldest\":\"4\"}\n\n"
    );
    assert!(h
        .metrics
        .encode_text()
        .contains(r#"sse_gateway_replay_misses_total{route="r"} 1"#));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_subscribers_id_seeds_the_feed_and_is_not_a_miss() {
    let settings = TopicSettings {
        gap_event: Some("gap".into()),
        resume_from_client: true,
        ..quiet()
    };
    let h = Harness::new(settings, HubLimits::default());
    let (_a, a) = h.join("t", Some("41"), 1 << 20).unwrap();
    assert_eq!(h.feed.publisher().last_event_id().as_deref(), Some("41"));
    assert_eq!(
        a.pending_bytes(),
        0,
        "no gap event: the upstream resumes from 41"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_resume_from_client_the_first_subscriber_does_not_choose_where_the_feed_resumes() {
    let settings = TopicSettings {
        gap_event: Some("gap".into()),
        ..quiet()
    };
    let h = Harness::new(settings, HubLimits::default());
    let (_a, a) = h.join("t", Some("41"), 1 << 20).unwrap();
    assert_eq!(h.feed.publisher().last_event_id(), None);
    let got = batch(&a).await.unwrap();
    assert!(
        got[0].bytes.starts_with(b"event: gap\n"),
        "the id is not in the ring: a gap, not a silent resume"
    );
}

#[tokio::test(start_paused = true)]
async fn heartbeats_reach_idle_streams() {
    // Three periods that take 15 s on a real clock take no real time on the paused one.
    let every = Duration::from_secs(5);
    let real = Instant::now();
    let settings = TopicSettings {
        heartbeat: every,
        ..quiet()
    };
    let h = Harness::new(settings, HubLimits::default());
    let start = tokio::time::Instant::now();
    let (_a, a) = h.join("t", None, 1 << 20).unwrap();
    for n in 1..=3 {
        let got = batch(&a).await.unwrap();
        assert_eq!(got[0].kind, DeliveryKind::Heartbeat);
        assert_eq!(&got[0].bytes[..], b":\n");
        // On the paused clock a heartbeat comes exactly one period after the last one.
        let at = start.elapsed();
        assert!(
            at >= every * n && at < every * n + Duration::from_millis(5),
            "heartbeat {n} at {at:?}"
        );
    }
    assert!(
        real.elapsed() < DEADLINE,
        "the hub's timer follows the paused clock"
    );
    let metrics = h.metrics.clone();
    eventually(|| {
        metrics
            .encode_text()
            .contains(r#"sse_gateway_heartbeats_sent_total{route="r"}"#)
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn linger_keeps_the_feed_then_closes_it() {
    // The default linger: on the paused clock it takes no real time.
    let linger = Duration::from_secs(30);
    let real = Instant::now();
    let settings = TopicSettings { linger, ..quiet() };
    let h = Harness::new(settings, HubLimits::default());
    let (a, _) = h.join("t", None, 1 << 20).unwrap();
    h.feed.publisher().set_state(UpstreamState::Live);
    drop(a);
    let (b, _) = h.join("t", None, 1 << 20).unwrap();
    assert_eq!(h.feed.opened(), 1, "reused within linger");
    let publisher = h.feed.publisher();
    let left = tokio::time::Instant::now();
    drop(b);
    tokio::time::timeout(linger * 2, publisher.closed())
        .await
        .expect("feed closed after linger");
    // On the paused clock: not before the linger, and at its end.
    let lingered = left.elapsed();
    assert!(
        lingered >= linger && lingered < linger + Duration::from_millis(5),
        "closed after {lingered:?}"
    );
    assert!(
        real.elapsed() < DEADLINE,
        "the hub's timer follows the paused clock"
    );
    let hub = h.hub.clone();
    eventually(|| hub.topic_count() == 0).await;
    let (_c, _) = h.join("t", None, 1 << 20).unwrap();
    assert_eq!(h.feed.opened(), 2, "a new feed after linger");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_closes_subscribers_and_refuses_during_the_holdoff() {
    let settings = TopicSettings {
        stop_holdoff: Duration::from_millis(300),
        ..quiet()
    };
    let h = Harness::new(settings, HubLimits::default());
    let (_a, a) = h.join("t", None, 1 << 20).unwrap();
    h.feed.publisher().stop();
    assert_eq!(batch(&a).await.unwrap_err(), CloseReason::UpstreamStopped);
    assert_eq!(h.join("t", None, 1 << 20).unwrap_err(), Refusal::Stopped);
    let start = Instant::now();
    loop {
        match h.join("t", None, 1 << 20) {
            Ok(_) => break,
            Err(Refusal::Stopped) => assert!(start.elapsed() < DEADLINE),
            Err(other) => panic!("{other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(start.elapsed() >= Duration::from_millis(200), "held off");
    assert_eq!(h.feed.opened(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_refuse_and_release() {
    let limits = HubLimits {
        max_clients: 3,
        max_clients_per_topic: 2,
        max_topics: 2,
        shard_threads: 1,
        ..HubLimits::default()
    };
    let h = Harness::new(quiet(), limits);
    let a = h.join("t", None, 1024).unwrap();
    let _b = h.join("t", None, 1024).unwrap();
    assert_eq!(
        h.join("t", None, 1024).unwrap_err(),
        Refusal::Limit("max_clients_per_topic")
    );
    let _c = h.join("u", None, 1024).unwrap();
    assert_eq!(
        h.join("v", None, 1024).unwrap_err(),
        Refusal::Limit("max_clients")
    );
    drop(a);
    assert_eq!(
        h.join("v", None, 1024).unwrap_err(),
        Refusal::Limit("max_topics")
    );
    assert_eq!(h.hub.client_count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_everything() {
    let h = Harness::new(quiet(), HubLimits::default());
    let (_a, a) = h.join("t", None, 1 << 20).unwrap();
    let publisher = h.feed.publisher();
    h.hub.shutdown();
    // Nothing before the close: each stream writes its own final `retry:`.
    assert_eq!(batch(&a).await.unwrap_err(), CloseReason::Shutdown);
    tokio::time::timeout(DEADLINE, publisher.closed())
        .await
        .unwrap();
    assert_eq!(h.join("t", None, 1024).unwrap_err(), Refusal::ShuttingDown);
    let _ = Bytes::new();
}

/// After a gateway restart, every client of a topic comes back with the same
/// Last-Event-ID; the first one's opens the feed from it, the others must get
/// what arrived since from the ring (found by the upgrade test).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_resuming_from_the_id_the_topic_opened_from_miss_nothing() {
    let settings = TopicSettings {
        gap_event: Some("gap".into()),
        resume_from_client: true,
        ..quiet()
    };
    let h = Harness::new(settings, HubLimits::default());
    let (_a, a) = h.join("t", Some("10"), 1 << 20).unwrap();
    let publisher = h.feed.publisher();
    for id in 11..=15 {
        publisher.publish(frame(id, 0), Instant::now());
    }
    assert_eq!(
        all_ids(&batch(&a).await.unwrap()),
        (11..=15).collect::<Vec<_>>()
    );
    let (_b, b) = h.join("t", Some("10"), 1 << 20).unwrap();
    assert_eq!(
        all_ids(&batch(&b).await.unwrap()),
        (11..=15).collect::<Vec<_>>(),
        "replayed, no gap event"
    );
    assert!(!h
        .metrics
        .encode_text()
        .contains(r#"sse_gateway_replay_misses_total{route="r"} 1"#));
}

// === the write window ===

fn windowed(window: Duration) -> TopicSettings {
    TopicSettings {
        write_window: window,
        ..quiet()
    }
}

/// Every `id:` in the deliveries, batches included, in order.
fn all_ids(deliveries: &[Delivery]) -> Vec<u64> {
    deliveries
        .iter()
        .filter(|d| d.events() > 0)
        .flat_map(|d| {
            let text = std::str::from_utf8(&d.bytes).unwrap().to_owned();
            let ids: Vec<u64> = text
                .split("\n\n")
                .filter(|frame| !frame.is_empty())
                .map(|frame| {
                    frame
                        .strip_prefix("id: ")
                        .unwrap()
                        .split('\n')
                        .next()
                        .unwrap()
                        .parse()
                        .unwrap()
                })
                .collect();
            assert_eq!(ids.len() as u64, d.events(), "events() counts the frames");
            ids
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_topics_frame_goes_out_at_once_despite_the_window() {
    let h = Harness::new(windowed(Duration::from_secs(3600)), HubLimits::default());
    let (_member, queue) = h.join("t", None, 1 << 20).unwrap();
    h.feed.publisher().publish(frame(1, 0), Instant::now());
    // Far less than the (one hour) window: the first frame is not held.
    let got = batch(&queue).await.unwrap();
    assert_eq!(all_ids(&got), vec![1]);
    assert_eq!(got[0].kind, DeliveryKind::Event);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_topic_gathers_frames_into_one_delivery_per_window() {
    let window = Duration::from_millis(100);
    let h = Harness::new(windowed(window), HubLimits::default());
    let (_member, queue) = h.join("t", None, 1 << 20).unwrap();
    let publisher = h.feed.publisher();
    let start = Instant::now();
    for id in 1..=20 {
        publisher.publish(frame(id, 0), Instant::now());
    }
    let mut got = batch(&queue).await.unwrap();
    // The first frame at once, the other 19 together when the window ends.
    while all_ids(&got).len() < 20 {
        got.extend(batch(&queue).await.unwrap());
    }
    assert!(start.elapsed() >= window, "the batch waited for the window");
    assert_eq!(all_ids(&got), (1..=20).collect::<Vec<_>>());
    let kinds: Vec<_> = got.iter().map(|d| d.kind).collect();
    assert_eq!(
        kinds,
        vec![DeliveryKind::Event, DeliveryKind::Batch { events: 19 }]
    );
    // Counted as 20 upstream events; the ring holds all of them.
    let (_late, late_queue) = h.join("t", Some("10"), 1 << 20).unwrap();
    assert_eq!(
        all_ids(&batch(&late_queue).await.unwrap()),
        (11..=20).collect::<Vec<_>>()
    );
    assert!(h
        .metrics
        .encode_text()
        .contains(r#"sse_gateway_upstream_events_total{route="r",topic="t"} 20"#));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resuming_during_a_window_has_no_gap_and_no_duplicate() {
    let h = Harness::new(windowed(Duration::from_millis(20)), HubLimits::default());
    let (_first, _queue) = h.join("t", None, 64 << 20).unwrap();
    let publisher = h.feed.publisher();
    let producer = {
        let publisher = publisher.clone();
        tokio::spawn(async move {
            for id in 1..=20_000u64 {
                publisher.publish(frame(id, 0), Instant::now());
                if id % 16 == 0 {
                    tokio::time::sleep(Duration::from_micros(200)).await;
                }
            }
        })
    };
    resume_repeatedly(
        &h,
        &publisher,
        Resumes {
            live_after: 200,
            rounds: 20,
            behind: 30,
            read: 200,
        },
    )
    .await;
    producer.abort();
}

// === shards ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_topic_is_offered_in_shards_with_order_and_the_slow_policy_kept() {
    let limits = HubLimits {
        shard_threads: 2,
        ..HubLimits::default()
    };
    let h = Harness::new(quiet(), limits);
    let count = 4 * sse_gateway_hub::SHARD_MIN;
    let members: Vec<_> = (0..count)
        .map(|i| {
            // Every 100th subscriber has room for 10 frames only.
            let bound = if i % 100 == 7 {
                10 * frame(1, 0).bytes().len()
            } else {
                1 << 20
            };
            h.join("t", None, bound).unwrap()
        })
        .collect();
    let publisher = h.feed.publisher();
    for id in 1..=50 {
        publisher.publish(frame(id, 0), Instant::now());
    }
    for (i, (_member, queue)) in members.iter().enumerate() {
        let got = batch(queue).await;
        if i % 100 == 7 {
            assert_eq!(got.unwrap_err(), CloseReason::SlowClient, "subscriber {i}");
        } else {
            assert_eq!(
                all_ids(&got.unwrap()),
                (1..=50).collect::<Vec<_>>(),
                "subscriber {i}"
            );
        }
    }
    let slow = (0..count).filter(|i| i % 100 == 7).count();
    assert!(h.metrics.encode_text().contains(&format!(
        r#"sse_gateway_slow_client_disconnects_total{{route="r",topic="t"}} {slow}"#
    )));
    assert!(h.metrics.encode_text().contains(&format!(
        r#"sse_gateway_subscribers{{route="r",topic="t"}} {}"#,
        count - slow
    )));
}

// === frames of one read ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_read_together_go_out_as_one_delivery_and_are_each_kept() {
    let h = Harness::new(quiet(), HubLimits::default());
    let (_member, queue) = h.join("t", None, 1 << 20).unwrap();
    let publisher = h.feed.publisher();
    let mut frames: Vec<Frame> = (1..=5).map(|id| frame(id, 0)).collect();
    publisher.publish_all(&mut frames, Instant::now());
    assert!(frames.is_empty(), "publish_all drains the frames");
    let got = batch(&queue).await.unwrap();
    assert_eq!(got.len(), 1, "one delivery for the read");
    assert_eq!(got[0].kind, DeliveryKind::Batch { events: 5 });
    assert_eq!(all_ids(&got), vec![1, 2, 3, 4, 5]);
    assert_eq!(publisher.last_event_id().as_deref(), Some("5"));
    // Every frame is in the ring and counted.
    let (_late, late_queue) = h.join("t", Some("2"), 1 << 20).unwrap();
    assert_eq!(all_ids(&batch(&late_queue).await.unwrap()), vec![3, 4, 5]);
    let text = h.metrics.encode_text();
    assert!(text.contains(r#"sse_gateway_upstream_events_total{route="r",topic="t"} 5"#));
    // A single frame is an ordinary event.
    publisher.publish_all(&mut vec![frame(6, 0)], Instant::now());
    let got = batch(&queue).await.unwrap();
    assert_eq!(got[0].kind, DeliveryKind::Event);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_that_publishes_at_once_reaches_its_first_subscriber() {
    // The feed starts only after the first subscriber joined: whatever it
    // publishes first (here: before its future is even polled) reaches it.
    let h = Harness::new(quiet(), HubLimits::default());
    let queue = Arc::new(ClientQueue::new(1 << 20));
    let request = SubscribeRequest {
        route: "r",
        topic: "t",
        settings: &h.settings,
        last_event_id: None,
        may_open: None,
    };
    let _member = h
        .hub
        .subscribe(request, queue.clone(), |publisher| {
            publisher.publish(frame(1, 0), Instant::now());
            Box::pin(async move { publisher.closed().await })
        })
        .unwrap();
    assert_eq!(all_ids(&batch(&queue).await.unwrap()), vec![1]);
}

// === abuse limits and upstream answers ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_whose_upstream_never_streamed_closes_without_linger() {
    let settings = TopicSettings {
        linger: Duration::from_secs(60),
        ..quiet()
    };
    let h = Harness::new(settings, HubLimits::default());
    let (a, _) = h.join("never", None, 1 << 20).unwrap();
    let never = h.feed.publisher();
    drop(a);
    tokio::time::timeout(DEADLINE, never.closed())
        .await
        .expect("closed at once, not after 60 s");
    // One that streamed lingers.
    let (b, _) = h.join("streamed", None, 1 << 20).unwrap();
    let streamed = h.feed.publisher();
    streamed.set_state(UpstreamState::Live);
    drop(b);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!streamed.is_closed(), "lingers after it streamed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_bound_on_topics_and_the_open_permit_refuse_only_new_topics() {
    let settings = TopicSettings {
        max_topics: Some(2),
        ..quiet()
    };
    let h = Harness::new(settings, HubLimits::default());
    let _a = h.join("a", None, 1024).unwrap();
    let _b = h.join("b", None, 1024).unwrap();
    assert_eq!(
        h.join("c", None, 1024).unwrap_err(),
        Refusal::Limit("route max_topics")
    );
    let _a2 = h
        .join("a", None, 1024)
        .expect("joining an open topic is fine");
    // Another route has its own count.
    let queue = Arc::new(ClientQueue::new(1024));
    let other = SubscribeRequest {
        route: "other",
        topic: "c",
        settings: &h.settings,
        last_event_id: None,
        may_open: None,
    };
    let _c = h.hub.subscribe(other, queue, h.feed.open()).unwrap();

    let asked = std::sync::atomic::AtomicUsize::new(0);
    let refuse = || {
        asked.fetch_add(1, Ordering::SeqCst);
        false
    };
    let join = |topic: &str| {
        let request = SubscribeRequest {
            route: "permit",
            topic,
            settings: &h.settings,
            last_event_id: None,
            may_open: Some(&refuse),
        };
        h.hub
            .subscribe(request, Arc::new(ClientQueue::new(1024)), h.feed.open())
    };
    assert_eq!(
        join("x").unwrap_err(),
        Refusal::Limit("new_topics_per_address")
    );
    assert_eq!(asked.load(Ordering::SeqCst), 1);
    assert_eq!(h.hub.client_count(), 4, "a refusal leaves no client behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_subscribers_wait_for_the_upstreams_answer() {
    let h = Harness::new(quiet(), HubLimits::default());
    let (a, _) = h.join("t", None, 1 << 20).unwrap();
    assert_eq!(
        a.upstream_answer(Duration::from_millis(50)).await,
        UpstreamAnswer::Pending,
        "no answer within the wait"
    );
    let publisher = h.feed.publisher();
    let waiting = tokio::spawn(async move {
        let answer = a.upstream_answer(DEADLINE).await;
        (a, answer)
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    publisher.set_state(UpstreamState::Backoff);
    let (a, answer) = waiting.await.unwrap();
    assert_eq!(answer, UpstreamAnswer::Retrying);
    publisher.set_state(UpstreamState::Live);
    assert_eq!(
        a.upstream_answer(Duration::ZERO).await,
        UpstreamAnswer::Streaming
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_topic_closes_its_subscribers_and_answers_joiners_then_reopens() {
    let h = Harness::new(quiet(), HubLimits::default());
    let (a, queue) = h.join("t", None, 1 << 20).unwrap();
    let publisher = h.feed.publisher();
    publisher.refuse(404);
    assert_eq!(
        a.upstream_answer(DEADLINE).await,
        UpstreamAnswer::Refused { status: 404 }
    );
    assert_eq!(
        batch(&queue).await.unwrap_err(),
        CloseReason::UpstreamRefused
    );
    assert_eq!(
        h.join("t", None, 1024).unwrap_err(),
        Refusal::Upstream { status: 404 }
    );
    drop(a);
    let start = Instant::now();
    loop {
        match h.join("t", None, 1024) {
            Ok(_) => break,
            Err(Refusal::Upstream { status: 404 }) => assert!(start.elapsed() < DEADLINE),
            Err(other) => panic!("{other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(h.feed.opened(), 2, "a new attempt after the hold-off");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_rings_draw_from_the_process_budget() {
    let settings = TopicSettings {
        replay_max_bytes: 1 << 20,
        ..quiet()
    };
    let limits = HubLimits {
        replay_memory: 100,
        ..HubLimits::default()
    };
    let h = Harness::new(settings, limits);
    let (a, _qa) = h.join("a", None, 1 << 20).unwrap();
    let pa = h.feed.publisher();
    let (b, qb) = h.join("b", None, 1 << 20).unwrap();
    let pb = h.feed.publisher();
    for id in 1..=3 {
        pa.publish(frame(id, 0), Instant::now()); // `id: N\ndata: event N\n\n`: 21 bytes
    }
    assert_eq!(h.hub.replay_bytes(), 63);
    for id in 10..=12 {
        pb.publish(frame(id, 0), Instant::now()); // 23 bytes each
    }
    // b gave up its own oldest (10, then 11) to stay within the budget.
    assert_eq!(h.hub.replay_bytes(), 63 + 23);
    let text = h.metrics.encode_text();
    assert!(text.contains("sse_gateway_replay_bytes 86"), "{text}");
    assert!(text.contains("sse_gateway_replay_budget_evictions_total 2"));
    let _ = batch(&qb).await.unwrap();
    let (_late, late) = h.join("b", Some("11"), 1 << 20).unwrap();
    assert_eq!(late.pending_bytes(), 0, "11 is gone: nothing replayed");
    assert!(h
        .metrics
        .encode_text()
        .contains(r#"sse_gateway_replay_misses_total{route="r"} 1"#));
    drop((a, b, _late));
    let hub = h.hub.clone();
    eventually(|| hub.replay_bytes() == 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forgotten_upstream_id_empties_the_ring_instead_of_leaving_a_silent_gap() {
    let settings = TopicSettings {
        gap_event: Some("gap".into()),
        resume_from_client: true,
        ..quiet()
    };
    let h = Harness::new(settings, HubLimits::default());
    let (_a, a) = h.join("t", Some("1000"), 1 << 20).unwrap();
    let publisher = h.feed.publisher();
    publisher.publish(frame(1001, 0), Instant::now());
    publisher.publish(frame(1002, 0), Instant::now());
    assert_eq!(all_ids(&batch(&a).await.unwrap()), vec![1001, 1002]);
    // The upstream refused Last-Event-ID: 1002; it starts again at its live edge.
    publisher.forget_last_event_id();
    let got = batch(&a).await.unwrap();
    assert!(
        got[0].bytes.starts_with(b"event: gap\n"),
        "the live subscriber is told"
    );
    publisher.publish(frame(5, 0), Instant::now());
    publisher.publish(frame(6, 0), Instant::now());
    // Neither a resume from the ring nor from the id the topic opened from may
    // skip what the upstream never sent.
    for asked in ["1001", "1000"] {
        let (_b, b) = h.join("t", Some(asked), 1 << 20).unwrap();
        let got = batch(&b).await.unwrap();
        assert!(
            got[0].bytes.starts_with(b"event: gap\n"),
            "resume from {asked}: {:?}",
            got[0].bytes
        );
        assert_eq!(got.len(), 1, "nothing replayed for {asked}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_open_permit_leaves_no_client_counted() {
    let h = Harness::new(quiet(), HubLimits::default());
    let panicking = || -> bool { panic!("a permit callback failed") };
    let request = SubscribeRequest {
        route: "r",
        topic: "t",
        settings: &h.settings,
        last_event_id: None,
        may_open: Some(&panicking),
    };
    let queue = Arc::new(ClientQueue::new(1024));
    let joined = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        h.hub.subscribe(request, queue, h.feed.open())
    }));
    assert!(joined.is_err());
    assert_eq!(h.hub.client_count(), 0);
    assert!(h.join("t", None, 1024).is_ok(), "the hub still works");
}
