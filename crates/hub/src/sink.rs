//! What a topic hands to subscribers, and the sink trait that receives it.

use std::sync::OnceLock;
use std::time::Instant;

use bytes::Bytes;
use sse_gateway_metrics::{FanoutDelays, RouteMetrics, TopicMetrics};
use thiserror::Error;

/// One piece of a client stream: the shared bytes plus what they are.
///
/// A topic makes one `Delivery` per frame and offers the same value (by
/// reference) to every sink, so whatever a sink derives from the bytes can
/// be made once and shared: [`Delivery::wire`].
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Bytes to write, shared by every subscriber.
    pub bytes: Bytes,
    /// What the bytes are.
    pub kind: DeliveryKind,
    /// When the frame was read from the upstream (for the fan-out delay).
    pub received: Instant,
    /// The bytes as a transport frames them, made by the first sink that
    /// asks and shared by the others (the direct path's HTTP/1.1 chunk).
    wire: OnceLock<Bytes>,
}

/// The kinds of [`Delivery`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryKind {
    /// A live upstream event (or id update).
    Event,
    /// An event replayed from the ring at join. Not counted against the
    /// sink's byte bound: the ring already bounds it.
    Replay,
    /// A heartbeat comment.
    Heartbeat,
    /// Gateway advice: `retry:` lines and `gap` events.
    Advice,
    /// Several live events gathered by the route's write window, as one
    /// buffer.
    Batch {
        /// How many events the buffer holds.
        events: u32,
    },
}

// === impl Delivery ===

impl Delivery {
    /// A delivery of `bytes`.
    pub fn new(bytes: Bytes, kind: DeliveryKind, received: Instant) -> Self {
        Self {
            bytes,
            kind,
            received,
            wire: OnceLock::new(),
        }
    }

    /// The bytes framed for a transport by `frame`, computed once per
    /// delivery: every sink that asks gets the same `Bytes`. (A delivery
    /// serves one transport framing; `frame` must be the same function for
    /// every caller.)
    pub fn wire(&self, frame: impl FnOnce(&Bytes) -> Bytes) -> &Bytes {
        self.wire.get_or_init(|| frame(&self.bytes))
    }

    /// How many events the bytes hold: one for an event (live or replayed),
    /// the count for a batch, none for heartbeats and advice.
    pub fn events(&self) -> u64 {
        match self.kind {
            DeliveryKind::Event | DeliveryKind::Replay => 1,
            DeliveryKind::Batch { events } => u64::from(events),
            DeliveryKind::Heartbeat | DeliveryKind::Advice => 0,
        }
    }

    /// Whether this is the gateway's `retry:` advice (left out by streams
    /// that write their own final `retry:` at drain).
    pub fn is_retry_advice(&self) -> bool {
        self.kind == DeliveryKind::Advice && self.bytes.starts_with(b"retry:")
    }

    /// Whether the bytes hold live events (whose fan-out delay is measured).
    pub fn is_live_event(&self) -> bool {
        matches!(self.kind, DeliveryKind::Event | DeliveryKind::Batch { .. })
    }
}

/// A sink's answer to an offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// Taken.
    Accepted,
    /// Over its byte bound: the subscriber must be disconnected as slow.
    Full,
    /// The subscriber is gone.
    Closed,
}

/// Why a subscriber's stream ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum CloseReason {
    /// It fell more than `client_queue` bytes behind.
    #[error("slow client")]
    SlowClient,
    /// The upstream said stop (HTTP 204).
    #[error("upstream stopped the topic")]
    UpstreamStopped,
    /// The gateway is shutting down.
    #[error("shutdown")]
    Shutdown,
    /// The client went away.
    #[error("client closed")]
    ClientClosed,
}

/// Why a subscription was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum Refusal {
    /// A limit of [`HubLimits`](crate::HubLimits) was reached; try later.
    #[error("limit reached: {0}")]
    Limit(&'static str),
    /// The upstream stopped this topic (HTTP 204) within the hold-off.
    #[error("topic stopped by its upstream")]
    Stopped,
    /// The hub is shutting down.
    #[error("shutting down")]
    ShuttingDown,
}

/// Where a topic offers frames for one subscriber. Implementations must not
/// block: they take the delivery, or answer [`Offer::Full`] or
/// [`Offer::Closed`] at once. Called with the topic's lock held.
pub trait SubscriberSink: Send + Sync + 'static {
    /// Offers one delivery.
    fn offer(&self, delivery: &Delivery) -> Offer;
    /// Offers one delivery of a round that offers it to every subscriber
    /// (or to a shard of them). A sink that writes the delivery to its
    /// client at once counts it in `tally`, which the topic adds to the
    /// metrics once per round; a sink whose own task writes later ignores
    /// it. The default is [`offer`](Self::offer).
    fn offer_in_round(&self, delivery: &Delivery, tally: &mut DeliveryTally<'_>) -> Offer {
        let _ = tally;
        self.offer(delivery)
    }
    /// Ends the subscriber's stream (after what it already took, unless the
    /// reason is [`CloseReason::SlowClient`]).
    fn close(&self, reason: CloseReason);
}

/// What was written whole to clients, added to the topic's metrics in one
/// go: once per offer round (once per shard on a sharded topic) rather than
/// once per subscriber, since shard threads updating the same counters and
/// histogram for every write would contend for them. The one place that
/// says how a written delivery counts.
#[derive(Debug)]
pub struct DeliveryTally<'a> {
    route: &'a RouteMetrics,
    events: u64,
    bytes: u64,
    /// Made at the first live event: rounds of heartbeats, and rounds whose
    /// sinks write later (the session path), allocate nothing.
    delays: Option<FanoutDelays>,
}

// === impl DeliveryTally ===

impl<'a> DeliveryTally<'a> {
    /// An empty tally for a topic of `route`.
    pub(crate) fn new(route: &'a RouteMetrics) -> Self {
        Self {
            route,
            events: 0,
            bytes: 0,
            delays: None,
        }
    }

    /// The whole of `delivery` was written to a client.
    pub fn written(&mut self, delivery: &Delivery) {
        let events = delivery.events();
        self.events += events;
        self.bytes += delivery.bytes.len() as u64;
        if delivery.is_live_event() {
            // One observation per event: a batch's events share the delay
            // of its first (they went out together).
            let delay = delivery.received.elapsed();
            let route = self.route;
            let delays = self.delays.get_or_insert_with(|| route.fanout_delays());
            for _ in 0..events {
                delays.observe(delay);
            }
        }
    }

    /// Adds the tally to the topic's counters (and, when dropped, its
    /// delays to the route's histogram).
    pub(crate) fn record(self, metrics: &TopicMetrics) {
        if self.events > 0 || self.bytes > 0 {
            metrics.delivered(self.events, self.bytes);
        }
    }
}
