//! Offering deliveries: one round to every subscriber of a topic (in
//! parallel shards for a large one), and how a written delivery is counted.

use std::sync::Arc;
use std::time::Instant;

use parking_lot::MutexGuard;
use rayon::prelude::*;
use sse_gateway_codec::Frame;

use super::{Lane, Phase, State, Topic, SHARD_MIN};
use crate::{CloseReason, Delivery, DeliveryKind, Offer, OfferRound, SubscriberSink};

/// One delivery for frames offered together: the frame's own bytes for one,
/// a `Batch` of their bytes (copied once, shared by every subscriber) for
/// several.
pub(super) fn delivery_of<'a>(
    frames: impl ExactSizeIterator<Item = &'a Frame> + Clone,
    received: Instant,
) -> Delivery {
    if frames.len() == 1 {
        if let Some(frame) = frames.clone().next() {
            return Delivery::of_frame(frame, DeliveryKind::Event, received);
        }
    }
    Delivery::batch(frames, received)
}

/// A subscriber in a round's snapshot: slab key, subscriber id, sink.
type RoundSink = (usize, u64, Arc<dyn SubscriberSink>);

/// Offers to one sink; `Some(slow)` when it must be removed.
fn offer_one(
    sink: &dyn SubscriberSink,
    delivery: &Delivery,
    round: &mut OfferRound<'_>,
) -> Option<bool> {
    match sink.offer(delivery, round) {
        Offer::Accepted => None,
        Offer::Full => Some(true),
        Offer::Closed => Some(false),
    }
}

// === impl Topic ===

impl Topic {
    /// Records deliveries written whole to a client (see
    /// [`DeliveryTally`](crate::DeliveryTally)).
    pub(crate) fn record_written<'d>(&self, deliveries: impl IntoIterator<Item = &'d Delivery>) {
        let mut round = OfferRound::new(&self.route_metrics);
        for delivery in deliveries {
            round.tally().written(delivery);
        }
        round.record(&self.metrics);
    }

    /// Offers a delivery to every subscriber; removes the slow and the
    /// gone. Returns how many subscribers the topic has after.
    ///
    /// The caller holds the offer lane (`lane`) throughout and the state
    /// lock (`state`) on entry and on return. The subscribers are taken
    /// into the lane's snapshot under the state lock; the state lock is let
    /// go of while they are offered (the round's writes to sockets hold up
    /// no join or leave) and taken back to remove the slow and the gone.
    /// A topic of at least two [`SHARD_MIN`]s of subscribers is split into
    /// shards offered in parallel on the hub's shard threads; the round ends
    /// when every shard is done.
    pub(super) fn offer_all(
        &self,
        lane: &mut Lane,
        state: &mut State<'_>,
        delivery: &Delivery,
    ) -> usize {
        lane.round.extend(
            state
                .subscribers
                .iter()
                .map(|(key, (id, sink))| (key, *id, sink.clone())),
        );
        let dropped = MutexGuard::unlocked(state, || {
            let dropped = self.offer_round(&lane.round, delivery);
            // The snapshot's references go here, without the state lock
            // (the last one to a sink that left closes its socket).
            lane.round.clear();
            dropped
        });
        let mut removed = false;
        for (key, id, slow) in dropped {
            // Counted whether or not it is still in the table: a sink answers
            // `Full` once (it ends itself), and its task may already have
            // left the topic during the round.
            if slow {
                self.metrics.slow_client_disconnected();
            }
            // Removed only if still there: it may have left during the round
            // (and its slot been taken by a newcomer).
            if state
                .subscribers
                .get(key)
                .is_none_or(|(held, _)| *held != id)
            {
                continue;
            }
            let (_, sink) = state.subscribers.remove(key);
            removed = true;
            self.metrics.subscriber_left();
            if slow {
                sink.close(CloseReason::SlowClient);
            }
        }
        if removed && state.subscribers.is_empty() && state.phase == Phase::Active {
            state.phase = Phase::Lingering {
                since: delivery.received,
            };
            self.wake.notify_one();
        }
        state.subscribers.len()
    }

    /// Offers `delivery` to every sink of the round (in shards on a large
    /// topic); returns those to remove: slab key, subscriber id, and
    /// whether it was slow.
    fn offer_round(&self, sinks: &[RoundSink], delivery: &Delivery) -> Vec<(usize, u64, bool)> {
        let count = sinks.len();
        match &self.shards {
            Some(pool) if count >= 2 * SHARD_MIN => {
                let shards = pool.current_num_threads().clamp(1, count / SHARD_MIN);
                let per_shard = count.div_ceil(shards);
                pool.install(|| {
                    sinks
                        .par_chunks(per_shard)
                        .flat_map_iter(|shard| self.offer_shard(shard, delivery))
                        .collect()
                })
            }
            _ => self.offer_shard(sinks, delivery),
        }
    }

    /// Offers `delivery` to the sinks of one shard on this thread, with
    /// one tally for them all.
    fn offer_shard(&self, shard: &[RoundSink], delivery: &Delivery) -> Vec<(usize, u64, bool)> {
        let mut round = OfferRound::new(&self.route_metrics);
        let dropped = shard
            .iter()
            .filter_map(|(key, id, sink)| {
                offer_one(sink.as_ref(), delivery, &mut round).map(|slow| (*key, *id, slow))
            })
            .collect();
        round.record(&self.metrics);
        dropped
    }
}
