//! Offering deliveries: one round to every subscriber of a topic (in
//! parallel shards for a large one), and how a written delivery is counted.

use std::sync::Arc;
use std::time::Instant;

use rayon::prelude::*;
use sse_gateway_codec::Frame;

use super::{Phase, Topic, TopicState, SHARD_MIN};
use crate::{CloseReason, Delivery, DeliveryKind, DeliveryTally, Offer, SubscriberSink};

/// One delivery for frames offered together: the frame's own bytes for one,
/// a `Batch` of their bytes (copied once, shared by every subscriber) for
/// several.
pub(super) fn delivery_of<'a>(
    frames: impl ExactSizeIterator<Item = &'a Frame> + Clone,
    received: Instant,
) -> Delivery {
    let count = frames.len();
    if count == 1 {
        if let Some(frame) = frames.clone().next() {
            return Delivery::new(frame.bytes().clone(), DeliveryKind::Event, received);
        }
    }
    let total = frames.clone().map(|f| f.bytes().len()).sum();
    let mut bytes = bytes::BytesMut::with_capacity(total);
    for frame in frames {
        bytes.extend_from_slice(frame.bytes());
    }
    let events = u32::try_from(count).unwrap_or(u32::MAX);
    Delivery::new(bytes.freeze(), DeliveryKind::Batch { events }, received)
}

/// Offers to one sink; `Some((key, slow))` when it must be removed.
fn offer_one(
    key: usize,
    sink: &dyn SubscriberSink,
    delivery: &Delivery,
    tally: &mut DeliveryTally<'_>,
) -> Option<(usize, bool)> {
    match sink.offer_in_round(delivery, tally) {
        Offer::Accepted => None,
        Offer::Full => Some((key, true)),
        Offer::Closed => Some((key, false)),
    }
}

// === impl Topic ===

impl Topic {
    /// Records deliveries written whole to a client (see [`DeliveryTally`]).
    pub(crate) fn record_written<'d>(&self, deliveries: impl IntoIterator<Item = &'d Delivery>) {
        let mut tally = DeliveryTally::new(&self.route_metrics);
        for delivery in deliveries {
            tally.written(delivery);
        }
        tally.record(&self.metrics);
    }

    /// Offers a delivery to everyone; removes the slow and the gone.
    ///
    /// A topic of at least two [`SHARD_MIN`]s of subscribers is split into
    /// shards offered in parallel on the hub's shard threads; the lock is
    /// held until every shard is done, so joins and leaves see a frame
    /// offered to all or to none.
    pub(super) fn offer_all(&self, state: &mut TopicState, delivery: &Delivery) -> usize {
        let mut dropped: Vec<(usize, bool)> = Vec::new();
        let count = state.subscribers.len();
        match &self.shards {
            Some(pool) if count >= 2 * SHARD_MIN => {
                let sinks: Vec<(usize, &Arc<dyn SubscriberSink>)> = state
                    .subscribers
                    .iter()
                    .map(|(key, (_, sink))| (key, sink))
                    .collect();
                let shards = pool.current_num_threads().clamp(1, count / SHARD_MIN);
                let per_shard = count.div_ceil(shards);
                dropped = pool.install(|| {
                    sinks
                        .par_chunks(per_shard)
                        .flat_map_iter(|shard| {
                            let mut tally = DeliveryTally::new(&self.route_metrics);
                            let dropped: Vec<_> = shard
                                .iter()
                                .filter_map(|(key, sink)| {
                                    offer_one(*key, sink.as_ref(), delivery, &mut tally)
                                })
                                .collect();
                            tally.record(&self.metrics);
                            dropped
                        })
                        .collect()
                });
            }
            _ => {
                let mut tally = DeliveryTally::new(&self.route_metrics);
                for (key, (_, sink)) in state.subscribers.iter() {
                    if let Some(drop) = offer_one(key, sink.as_ref(), delivery, &mut tally) {
                        dropped.push(drop);
                    }
                }
                tally.record(&self.metrics);
            }
        }
        for (key, slow) in &dropped {
            let (_, sink) = state.subscribers.remove(*key);
            self.metrics.subscriber_left();
            if *slow {
                sink.close(CloseReason::SlowClient);
                self.metrics.slow_client_disconnected();
            }
        }
        if !dropped.is_empty() && state.subscribers.is_empty() && state.phase == Phase::Active {
            state.phase = Phase::Lingering {
                since: delivery.received,
            };
            self.wake.notify_one();
        }
        state.subscribers.len()
    }
}
