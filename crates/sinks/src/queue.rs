//! [`ClientQueue`]: the sink drained by a client's own task (the session path).

use std::collections::VecDeque;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use tokio::sync::Notify;

use sse_gateway_hub::{CloseReason, Delivery, DeliveryKind, Offer, OfferRound, SubscriberSink};

use crate::conflate::{skipped_note, Conflation};

/// A subscriber's pending deliveries, bounded in bytes.
///
/// The topic offers; the client's task awaits [`ClientQueue::next_batch`] and
/// writes what it gets. Past `limit` pending bytes (replayed frames excluded:
/// the ring bounds those) the queue drops what it holds and closes as
/// [`CloseReason::SlowClient`]. A queue with no live bytes pending takes any
/// one delivery, however large (the frames of one upstream read, or a write
/// window's batch, may add up to more than `limit`): only a client that is
/// still behind on the previous delivery is slow. With a [`Conflation`]
/// (`slow_client: coalesce`), what is pending is first reduced to the newest
/// event per key; the client is cut only if that still does not fit.
#[derive(Debug)]
pub struct ClientQueue {
    state: Mutex<QueueState>,
    ready: Notify,
    limit: usize,
    conflation: Option<Conflation>,
}

#[derive(Debug, Default)]
struct QueueState {
    items: VecDeque<Delivery>,
    bytes: usize,
    /// Events dropped by conflation since the client last took its batch
    /// (the note at the front of `items` says so when non-zero).
    skipped: u64,
    closed: Option<CloseReason>,
}

// === impl ClientQueue ===

impl ClientQueue {
    /// A queue that holds at most `limit` bytes of live deliveries.
    pub fn new(limit: usize) -> Self {
        Self::with_conflation(limit, None)
    }

    /// A queue of at most `limit` live bytes that coalesces instead of
    /// closing when `conflation` is set.
    pub fn with_conflation(limit: usize, conflation: Option<Conflation>) -> Self {
        Self {
            state: Mutex::new(QueueState::default()),
            ready: Notify::new(),
            limit,
            conflation,
        }
    }

    /// Waits for deliveries and moves all pending ones into `out`. Returns the
    /// reason once the queue is closed and drained.
    pub async fn next_batch(&self, out: &mut Vec<Delivery>) -> Result<(), CloseReason> {
        loop {
            {
                let mut state = self.state.lock();
                if !state.items.is_empty() {
                    out.extend(state.items.drain(..));
                    state.bytes = 0;
                    state.skipped = 0;
                    return Ok(());
                }
                if let Some(reason) = state.closed {
                    return Err(reason);
                }
            }
            self.ready.notified().await;
        }
    }

    /// Bytes pending.
    pub fn pending_bytes(&self) -> usize {
        self.state.lock().bytes
    }
}

impl SubscriberSink for ClientQueue {
    fn offer(&self, delivery: &Delivery, _round: &mut OfferRound<'_>) -> Offer {
        let mut state = self.state.lock();
        if state.closed.is_some() {
            return Offer::Closed;
        }
        if delivery.kind != DeliveryKind::Replay {
            let bytes = state.bytes + delivery.bytes.len();
            if bytes > self.limit && state.bytes > 0 {
                if let Some(conflation) = &self.conflation {
                    state.items.push_back(delivery.clone());
                    if coalesce(&mut state, conflation) <= self.limit {
                        drop(state);
                        self.ready.notify_one();
                        return Offer::Accepted;
                    }
                }
                state.items.clear();
                state.bytes = 0;
                state.closed = Some(CloseReason::SlowClient);
                drop(state);
                self.ready.notify_one();
                return Offer::Full;
            }
            state.bytes = bytes;
        }
        state.items.push_back(delivery.clone());
        drop(state);
        self.ready.notify_one();
        Offer::Accepted
    }

    fn close(&self, reason: CloseReason) {
        let mut state = self.state.lock();
        if state.closed.is_none() {
            if reason == CloseReason::SlowClient {
                state.items.clear();
                state.bytes = 0;
            }
            state.closed = Some(reason);
        }
        drop(state);
        self.ready.notify_one();
    }
}

/// Coalesces everything pending (nothing of it has gone out: the client's
/// task takes whole batches), with the note of the skipped events in front;
/// returns the live bytes left.
fn coalesce(state: &mut QueueState, conflation: &Conflation) -> usize {
    if state.skipped > 0 {
        // The previous note: replaced by one with the new total.
        state.items.pop_front();
    }
    state.skipped += conflation.apply(&mut state.items, 0, |d| d, |d| d);
    if state.skipped > 0 {
        let note = Delivery::new(
            skipped_note(state.skipped),
            DeliveryKind::Advice,
            state
                .items
                .front()
                .map_or_else(Instant::now, |d| d.received),
        );
        state.items.push_front(note);
    }
    state.bytes = state
        .items
        .iter()
        .filter(|d| d.kind != DeliveryKind::Replay)
        .map(|d| d.bytes.len())
        .sum();
    state.bytes
}

/// A batch from [`ClientQueue::next_batch`] as one `Bytes` to write (the
/// shared one itself when there is a single delivery, else one copy of
/// them all) and how many of its deliveries are events.
pub fn joined(batch: &[Delivery]) -> (Bytes, u64) {
    let events = batch.iter().map(Delivery::events).sum();
    let bytes = match batch {
        [] => Bytes::new(),
        [one] => one.bytes.clone(),
        many => {
            let total = many.iter().map(|d| d.bytes.len()).sum();
            let mut out = BytesMut::with_capacity(total);
            for delivery in many {
                out.extend_from_slice(&delivery.bytes);
            }
            out.freeze()
        }
    };
    (bytes, events)
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use bytes::Bytes;

    use super::*;

    fn offer(queue: &ClientQueue, delivery: &Delivery) -> Offer {
        queue.offer(delivery, &mut OfferRound::uncounted())
    }

    fn delivery(len: usize, kind: DeliveryKind) -> Delivery {
        Delivery::new(Bytes::from(vec![b'x'; len]), kind, Instant::now())
    }

    #[tokio::test]
    async fn drains_in_order_then_reports_close() {
        let queue = ClientQueue::new(100);
        assert_eq!(
            offer(&queue, &delivery(10, DeliveryKind::Event)),
            Offer::Accepted
        );
        assert_eq!(
            offer(&queue, &delivery(20, DeliveryKind::Heartbeat)),
            Offer::Accepted
        );
        queue.close(CloseReason::UpstreamStopped);
        let mut out = Vec::new();
        queue.next_batch(&mut out).await.unwrap();
        assert_eq!(
            out.iter().map(|d| d.bytes.len()).collect::<Vec<_>>(),
            vec![10, 20]
        );
        assert_eq!(
            queue.next_batch(&mut out).await,
            Err(CloseReason::UpstreamStopped)
        );
        assert_eq!(
            offer(&queue, &delivery(1, DeliveryKind::Event)),
            Offer::Closed
        );
    }

    #[tokio::test]
    async fn over_the_bound_it_closes_as_slow_and_drops_pending() {
        let queue = ClientQueue::new(100);
        assert_eq!(
            offer(&queue, &delivery(60, DeliveryKind::Event)),
            Offer::Accepted
        );
        assert_eq!(
            offer(&queue, &delivery(41, DeliveryKind::Event)),
            Offer::Full
        );
        let mut out = Vec::new();
        assert_eq!(
            queue.next_batch(&mut out).await,
            Err(CloseReason::SlowClient)
        );
        assert!(out.is_empty());
    }

    #[tokio::test]
    async fn an_empty_queue_takes_one_delivery_larger_than_the_bound() {
        let queue = ClientQueue::new(100);
        assert_eq!(
            offer(&queue, &delivery(150, DeliveryKind::Batch { events: 2 })),
            Offer::Accepted
        );
        // Still behind on it: the next live delivery is over the bound.
        assert_eq!(
            offer(&queue, &delivery(1, DeliveryKind::Event)),
            Offer::Full
        );
        let queue = ClientQueue::new(100);
        offer(&queue, &delivery(150, DeliveryKind::Event));
        let mut out = Vec::new();
        queue.next_batch(&mut out).await.unwrap();
        // Taken by the client's task: empty again, so it takes another.
        assert_eq!(
            offer(&queue, &delivery(150, DeliveryKind::Event)),
            Offer::Accepted
        );
    }

    #[tokio::test]
    async fn replay_does_not_count_against_the_bound() {
        let queue = ClientQueue::new(100);
        for _ in 0..10 {
            assert_eq!(
                offer(&queue, &delivery(60, DeliveryKind::Replay)),
                Offer::Accepted
            );
        }
        assert_eq!(
            offer(&queue, &delivery(60, DeliveryKind::Event)),
            Offer::Accepted
        );
        let mut out = Vec::new();
        queue.next_batch(&mut out).await.unwrap();
        assert_eq!(out.len(), 11);
        assert_eq!(queue.pending_bytes(), 0);
    }

    #[tokio::test]
    async fn a_waiting_reader_is_woken() {
        let queue = std::sync::Arc::new(ClientQueue::new(100));
        let reader = {
            let queue = queue.clone();
            tokio::spawn(async move {
                let mut out = Vec::new();
                queue.next_batch(&mut out).await.map(|()| out.len())
            })
        };
        tokio::task::yield_now().await;
        offer(&queue, &delivery(5, DeliveryKind::Event));
        assert_eq!(reader.await.unwrap(), Ok(1));
    }

    fn bytes_delivery(bytes: &'static [u8], kind: DeliveryKind) -> Delivery {
        Delivery::new(Bytes::from_static(bytes), kind, Instant::now())
    }

    #[test]
    fn one_delivery_is_written_as_is() {
        let shared = Bytes::from_static(b"data: x\n\n");
        let batch = vec![Delivery::new(
            shared.clone(),
            DeliveryKind::Event,
            Instant::now(),
        )];
        let (bytes, events) = joined(&batch);
        assert_eq!(
            bytes.as_ptr(),
            shared.as_ptr(),
            "no copy for a single delivery"
        );
        assert_eq!(events, 1);
    }

    #[test]
    fn several_are_concatenated_and_only_events_count() {
        let batch = vec![
            bytes_delivery(b"retry: 3000\n\n", DeliveryKind::Advice),
            bytes_delivery(b"id: 1\ndata: a\n\n", DeliveryKind::Replay),
            bytes_delivery(b":\n", DeliveryKind::Heartbeat),
            bytes_delivery(b"id: 2\ndata: b\n\n", DeliveryKind::Event),
        ];
        let (bytes, events) = joined(&batch);
        assert_eq!(
            &bytes[..],
            b"retry: 3000\n\nid: 1\ndata: a\n\n:\nid: 2\ndata: b\n\n"
        );
        assert_eq!(events, 2);
        assert_eq!(joined(&[]), (Bytes::new(), 0));
    }
}
