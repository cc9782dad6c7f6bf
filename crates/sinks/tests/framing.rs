//! The direct path's order and framing: one chunk per frame, every frame to every
//! subscriber (rounds larger than a ring, shards, gathered and one-by-one sends), with the
//! outcome's and the metrics' counts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use sse_gateway_hub::{
    CloseReason, Delivery, DeliveryKind, HubLimits, Offer, OfferRound, SubscriberSink, SHARD_MIN,
};

use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_frames_arrive_in_order_one_chunk_each_and_are_counted() {
    let h = Harness::new(quiet());
    let (membership, sink) =
        h.subscribe(None, direct_settings(64 << 20, DEADLINE, TestDrain::idle()));
    let (mut client, served) = connect(&sink, &membership, false).await;
    let reader = tokio::spawn(async move { client.complete_body().await });
    let publisher = h.feed.publisher();
    let sent: Vec<Bytes> = (1..=1000)
        .map(|id| {
            let frame = frame(id, (id as usize * 7) % 97);
            let bytes = frame.bytes().clone();
            publisher.publish(frame, Instant::now());
            bytes
        })
        .collect();
    publisher.stop();

    let chunks = tokio::time::timeout(DEADLINE, reader)
        .await
        .expect("body in time")
        .unwrap();
    assert_eq!(chunks[0], b":\n", "the opening comment comes first");
    assert_frames(&chunks[1..], &sent);

    let outcome = served.outcome().await;
    assert_eq!(outcome.end, CloseReason::UpstreamStopped);
    assert_eq!(outcome.events, 1000);
    assert_eq!(
        outcome.bytes,
        payload_bytes(&sent),
        "the comment is not counted"
    );
    assert_eq!(h.metric(EVENTS_SERIES), Some(1000.0));
    assert_eq!(h.metric(BYTES_SERIES), Some(payload_bytes(&sent) as f64));
    drop(membership);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_round_larger_than_a_ring_reaches_every_subscriber() {
    many_subscribers_get_every_frame(1, &[true], 300).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_of_batched_and_one_by_one_subscribers_get_every_frame() {
    many_subscribers_get_every_frame(2, &[true, false], 2 * SHARD_MIN + 88).await;
}

/// `count` direct subscribers of one topic (their sends gathered or not, by
/// turns from `batched`), offered on `shard_threads`: each gets every frame
/// once, in order, and each is counted once.
async fn many_subscribers_get_every_frame(shard_threads: usize, batched: &[bool], count: usize) {
    let limits = HubLimits {
        shard_threads,
        ..HubLimits::default()
    };
    let h = Harness::with_limits(quiet(), limits);
    let mut streams = Vec::new();
    for index in 0..count {
        let settings = direct_settings(64 << 20, DEADLINE, TestDrain::idle());
        let (membership, sink) =
            h.subscribe(None, sending(batched[index % batched.len()], settings));
        let (mut client, served) = connect(&sink, &membership, false).await;
        let reader = tokio::spawn(async move { client.complete_body().await });
        streams.push((membership, reader, served));
    }
    assert_eq!(h.subscribers(), count);
    let publisher = h.feed.publisher();
    let sent = publish(&publisher, 1, 100, 10);
    publisher.stop();

    for (index, (membership, reader, served)) in streams.into_iter().enumerate() {
        let chunks = tokio::time::timeout(DEADLINE, reader)
            .await
            .expect("body in time")
            .unwrap();
        assert_eq!(chunks[0], b":\n", "subscriber {index}");
        assert_frames(&chunks[1..], &sent);
        let outcome = served.outcome().await;
        assert_eq!(
            outcome.end,
            CloseReason::UpstreamStopped,
            "subscriber {index}"
        );
        assert_eq!(outcome.events, 100, "subscriber {index}");
        drop(membership);
    }
    assert_eq!(h.metric(EVENTS_SERIES), Some((100 * count) as f64));
    assert_eq!(
        h.metric(BYTES_SERIES),
        Some((payload_bytes(&sent) * count as u64) as f64)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_does_not_end_while_its_gathered_send_is_in_flight() {
    if let Err(e) = sse_gateway_sinks::batched_sends() {
        eprintln!("no io_uring here ({e}): nothing is gathered, nothing to test");
        return;
    }
    let h = Harness::new(quiet());
    let (membership, sink) =
        h.subscribe(None, direct_settings(64 << 20, DEADLINE, TestDrain::idle()));
    let (mut client, served) = connect(&sink, &membership, false).await;
    assert_eq!(client.next().await, Ok(Chunk::Data(b":\n".to_vec())));
    let route = h.metrics.route("r");
    let delivery = Delivery::new(
        frame(1, 0).bytes().clone(),
        DeliveryKind::Event,
        Instant::now(),
    );

    // A round on this thread gathers the send and has not ended yet.
    let round = {
        let mut round = OfferRound::new(&route);
        assert_eq!(sink.offer(&delivery, &mut round), Offer::Accepted);
        round
    };
    // The client leaves: its task sees it, but must not end the stream (nor
    // let go of the socket) while the send is in flight.
    drop(client);
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        !served.task.is_finished(),
        "the stream ended with a send in flight"
    );
    // The round ends: the send lands, then the stream ends.
    drop(round);
    let outcome = served.outcome().await;
    assert_eq!(outcome.end, CloseReason::ClientClosed);
    drop(membership);
}
