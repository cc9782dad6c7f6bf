//! What a topic hands to subscribers, and the sink trait that receives it.

use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use sse_gateway_codec::{EventTypeRange, Frame};
use sse_gateway_metrics::{FanoutDelays, RouteMetrics, StreamPath, TopicMetrics};
use thiserror::Error;

/// One piece of a client stream: the shared bytes plus what they are.
///
/// A topic makes one `Delivery` per frame and offers the same value (by
/// reference) to every sink; a clone shares the bytes.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Bytes to write, shared by every subscriber.
    pub bytes: Bytes,
    /// What the bytes are.
    pub kind: DeliveryKind,
    /// When the frame was read from the upstream (for the fan-out delay).
    pub received: Instant,
    /// The event type of a one-frame delivery (see [`Delivery::event_type`]).
    event_type: EventTypeRange,
    /// A batch's frames, in order (see [`Delivery::parts`]).
    parts: Option<Arc<[BatchPart]>>,
}

/// One frame of a batch [`Delivery`]: where it is in the batch's bytes and
/// what it dispatches, so a subscriber that wants only some of a batch's
/// events can be given slices of the shared bytes instead of copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchPart {
    start: u32,
    end: u32,
    event_type: EventTypeRange,
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
    /// A delivery of `bytes`, which dispatch no event a filter would look
    /// at (gateway-made frames; see [`Delivery::of_frame`] for events).
    pub fn new(bytes: Bytes, kind: DeliveryKind, received: Instant) -> Self {
        Self {
            bytes,
            kind,
            received,
            event_type: EventTypeRange::NONE,
            parts: None,
        }
    }

    /// A delivery of one frame (its bytes shared), knowing its event type.
    pub fn of_frame(frame: &Frame, kind: DeliveryKind, received: Instant) -> Self {
        Self {
            event_type: frame.event_type_range(),
            ..Self::new(frame.bytes().clone(), kind, received)
        }
    }

    /// A [`DeliveryKind::Batch`] of `frames`, copied once into one buffer
    /// that every subscriber shares.
    pub fn batch<'a>(frames: impl Iterator<Item = &'a Frame>, received: Instant) -> Self {
        let frames: Vec<&Frame> = frames.collect();
        let total = frames.iter().map(|f| f.len()).sum();
        let mut bytes = bytes::BytesMut::with_capacity(total);
        let mut parts = Vec::with_capacity(frames.len());
        for frame in &frames {
            let start = bytes.len();
            bytes.extend_from_slice(frame.bytes());
            let clamp = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
            parts.push(BatchPart {
                start: clamp(start),
                end: clamp(bytes.len()),
                event_type: frame.event_type_range(),
            });
        }
        let events = u32::try_from(parts.len()).unwrap_or(u32::MAX);
        Self {
            parts: Some(parts.into()),
            ..Self::new(bytes.freeze(), DeliveryKind::Batch { events }, received)
        }
    }

    /// The type of the event a one-frame delivery dispatches (`message` by
    /// default); `None` for a batch, and for frames that dispatch nothing
    /// (id updates, heartbeats, advice).
    pub fn event_type(&self) -> Option<&[u8]> {
        self.event_type.of(&self.bytes)
    }

    /// A batch's frames, in order, covering its bytes (`None` for any other
    /// delivery).
    pub fn parts(&self) -> Option<&[BatchPart]> {
        self.parts.as_deref()
    }

    /// Some frames of a batch, given as `bytes` (those frames' bytes, in
    /// order) and `kept` (one flag per frame): one event, or a smaller
    /// batch, that still knows each frame's event type. `None` when this is
    /// not a batch or nothing is kept.
    pub fn select(&self, bytes: Bytes, kept: impl Fn(usize) -> bool) -> Option<Delivery> {
        let parts = self.parts()?;
        let mut start = 0u32;
        let mut selected = Vec::new();
        for (_, part) in parts.iter().enumerate().filter(|(i, _)| kept(*i)) {
            let len = part.end.saturating_sub(part.start);
            selected.push(BatchPart {
                start,
                end: start.saturating_add(len),
                event_type: part.event_type,
            });
            start = start.saturating_add(len);
        }
        match selected.as_slice() {
            [] => None,
            [one] => Some(Self {
                event_type: one.event_type,
                ..Self::new(bytes, DeliveryKind::Event, self.received)
            }),
            many => {
                let events = u32::try_from(many.len()).unwrap_or(u32::MAX);
                Some(Self {
                    parts: Some(selected.into()),
                    ..Self::new(bytes, DeliveryKind::Batch { events }, self.received)
                })
            }
        }
    }

    /// A batch as one [`DeliveryKind::Event`] delivery per frame (slices of
    /// the same bytes, each knowing its event type); any other delivery as
    /// itself.
    pub fn split(&self) -> Vec<Delivery> {
        let Some(parts) = self.parts() else {
            return vec![self.clone()];
        };
        parts
            .iter()
            .filter(|part| part.range().end <= self.bytes.len())
            .map(|part| Self {
                bytes: self.bytes.slice(part.range()),
                kind: DeliveryKind::Event,
                received: self.received,
                event_type: part.event_type,
                parts: None,
            })
            .collect()
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

    /// Whether the bytes hold live events (whose fan-out delay is measured).
    pub fn is_live_event(&self) -> bool {
        matches!(self.kind, DeliveryKind::Event | DeliveryKind::Batch { .. })
    }
}

// === impl BatchPart ===

impl BatchPart {
    /// Where the frame is in the batch's bytes.
    pub fn range(&self) -> Range<usize> {
        self.start as usize..self.end as usize
    }

    /// The frame's event type, read from `batch`, the batch's bytes (see
    /// [`Delivery::event_type`]).
    pub fn event_type<'a>(&self, batch: &'a [u8]) -> Option<&'a [u8]> {
        batch
            .get(self.range())
            .and_then(|frame| self.event_type.of(frame))
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

/// Why a subscriber's stream ended: the one answer for both paths, from the
/// topic's `close` to the access log's `reason`. The topic closes streams
/// for the first four; the stream itself finds the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum CloseReason {
    /// It fell more than `client_queue` bytes behind.
    #[error("slow client")]
    SlowClient,
    /// The upstream said stop (HTTP 204).
    #[error("upstream stopped the topic")]
    UpstreamStopped,
    /// The upstream refused the topic (401, 403, 404, 410, or a response
    /// that is not an event stream): the topic ended.
    #[error("upstream refused the topic")]
    UpstreamRefused,
    /// The gateway is shutting down.
    #[error("shutdown")]
    Shutdown,
    /// The client went away (closed its connection, or sent bytes after
    /// its request).
    #[error("client closed")]
    ClientClosed,
    /// A write to the client failed, or took nothing for the write timeout.
    #[error("write failed")]
    WriteFailed,
    /// The client's credentials reached their expiry.
    #[error("credentials expired")]
    CredentialsExpired,
    /// The stream was dropped before it could say why (its task ended with
    /// the runtime).
    #[error("dropped")]
    Dropped,
}

// === impl CloseReason ===

impl CloseReason {
    /// The `reason` value of the stream's access-log line.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ClientClosed => "client_closed",
            Self::SlowClient => "slow_client",
            Self::UpstreamStopped => "upstream_stopped",
            Self::UpstreamRefused => "upstream_refused",
            Self::Shutdown => "shutdown",
            Self::WriteFailed => "write_failed",
            Self::CredentialsExpired => "credentials_expired",
            Self::Dropped => "dropped",
        }
    }

    /// Whether the response ends properly (pending bytes, then the end of
    /// the body) rather than being cut: the gateway or the upstream ended
    /// it, or the client's credentials did.
    pub const fn ends_response(self) -> bool {
        matches!(
            self,
            Self::Shutdown
                | Self::UpstreamStopped
                | Self::UpstreamRefused
                | Self::CredentialsExpired
        )
    }
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
    /// The upstream refused this topic with `status` (401, 403, 404, 410;
    /// 502 for a response that is not an event stream) a moment ago.
    #[error("topic refused by its upstream (HTTP {status})")]
    Upstream {
        /// The status to answer with.
        status: u16,
    },
    /// The hub is shutting down.
    #[error("shutting down")]
    ShuttingDown,
}

/// Where a topic offers frames for one subscriber: the one trait between
/// the hub and the ways to a client (the `sinks` crate's client queue and
/// direct sink). Implementations must not block: they take the delivery, or
/// answer [`Offer::Full`] or [`Offer::Closed`] at once.
///
/// Rounds (a delivery offered to every subscriber, or to a shard of them)
/// are made with the topic's offer lane held, never two at once; other
/// offers (a join's advice and replay) with its state lock held, to a sink
/// that is in no round yet.
pub trait SubscriberSink: Send + Sync + 'static {
    /// Offers one delivery, in `round`. A sink that writes the delivery to
    /// its client at once counts it in the round's [`tally`](OfferRound::tally),
    /// which the topic adds to the metrics once per round; a sink whose own
    /// task writes later ignores the round.
    fn offer(&self, delivery: &Delivery, round: &mut OfferRound<'_>) -> Offer;
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
    /// `None`: the counts go nowhere ([`OfferRound::uncounted`]).
    route: Option<&'a RouteMetrics>,
    events: u64,
    bytes: u64,
    /// Writes to direct-path sockets made in the round.
    sends: u64,
    /// Made at the first live event: rounds of heartbeats, and rounds whose
    /// sinks write later (the session path), allocate nothing.
    delays: Option<FanoutDelays>,
}

/// One round of offers: its [`DeliveryTally`], and the work sinks put off
/// to its end ([`at_end`](Self::at_end)), so that the round's writes can
/// be made together (the direct path submits them in one system call).
#[derive(Debug)]
pub struct OfferRound<'a> {
    tally: DeliveryTally<'a>,
    at_end: Option<RoundEnd>,
}

/// Work a sink put off to the end of an offer round (see
/// [`OfferRound::at_end`]), counting what it writes in the round's tally.
pub type RoundEnd = fn(&mut DeliveryTally<'_>);

// === impl DeliveryTally ===

impl<'a> DeliveryTally<'a> {
    /// An empty tally for a topic of `route` (`None`: counted nowhere).
    fn new(route: Option<&'a RouteMetrics>) -> Self {
        Self {
            route,
            events: 0,
            bytes: 0,
            sends: 0,
            delays: None,
        }
    }

    /// `count` writes to direct-path client sockets were made (counted in
    /// `sse_gateway_sends_total{path="direct"}` with the round).
    pub fn sent(&mut self, count: u64) {
        self.sends += count;
    }

    /// The whole of `delivery` was written to a client.
    pub fn written(&mut self, delivery: &Delivery) {
        let events = delivery.events();
        self.events += events;
        self.bytes += delivery.bytes.len() as u64;
        if let (true, Some(route)) = (delivery.is_live_event(), self.route) {
            // One observation per event: a batch's events share the delay
            // of its first (they went out together).
            let delay = delivery.received.elapsed();
            let delays = self.delays.get_or_insert_with(|| route.fanout_delays());
            for _ in 0..events {
                delays.observe(delay);
            }
        }
    }

    /// Adds the tally to the topic's counters (and, when dropped, its
    /// delays to the route's histogram).
    fn record(self, metrics: &TopicMetrics) {
        if self.route.is_some() && (self.events > 0 || self.bytes > 0) {
            metrics.delivered(self.events, self.bytes);
        }
        if let Some(route) = self.route {
            route.sent(StreamPath::Direct, self.sends);
        }
    }
}

// === impl OfferRound ===

impl<'a> OfferRound<'a> {
    /// A round of offers for a topic of `route`.
    pub fn new(route: &'a RouteMetrics) -> Self {
        Self {
            tally: DeliveryTally::new(Some(route)),
            at_end: None,
        }
    }

    /// A round whose writes are counted nowhere (for offers a test makes to
    /// a sink itself). Its end still runs when it is dropped.
    pub fn uncounted() -> OfferRound<'static> {
        OfferRound {
            tally: DeliveryTally::new(None),
            at_end: None,
        }
    }

    /// Where a sink counts what it wrote whole during the round.
    pub fn tally(&mut self) -> &mut DeliveryTally<'a> {
        &mut self.tally
    }

    /// Asks for `finish` to run when the round's offers are done, on the
    /// thread that made them and before the topic lets go of its offer lane
    /// (also when an offer panics): a sink that put its write off (the
    /// direct path gathers a round's sends per thread) makes it there. One
    /// function per round: every sink that defers asks for the same one.
    pub fn at_end(&mut self, finish: RoundEnd) {
        debug_assert!(
            self.at_end
                .is_none_or(|asked| std::ptr::fn_addr_eq(asked, finish)),
            "two kinds of deferred writes in one round"
        );
        self.at_end = Some(finish);
    }

    /// Runs the round's end, once.
    fn finish(&mut self) {
        if let Some(finish) = self.at_end.take() {
            finish(&mut self.tally);
        }
    }

    /// Ends the round and adds its tally to the topic's counters.
    pub(crate) fn record(mut self, metrics: &TopicMetrics) {
        self.finish();
        let tally = std::mem::replace(&mut self.tally, DeliveryTally::new(None));
        tally.record(metrics);
    }
}

impl Drop for OfferRound<'_> {
    /// A round that ends without [`record`](Self::record) (an offer
    /// panicked, or a test's round) still makes the writes it put off: they
    /// refer to the round's subscribers and delivery. (Were the round's end
    /// to panic too, during that unwinding, the process would abort; it
    /// makes system calls and counts, and does not panic.)
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use bytes::Bytes;
    use sse_gateway_metrics::GatewayMetrics;

    use super::*;

    thread_local! {
        /// Events the test's round end counted in its tally.
        static ENDS: Cell<u32> = const { Cell::new(0) };
    }

    /// A round end that writes one "deferred" event.
    fn count_end(tally: &mut DeliveryTally<'_>) {
        ENDS.with(|ends| ends.set(ends.get() + 1));
        tally.written(&Delivery::new(
            Bytes::from_static(b"data: x\n\n"),
            DeliveryKind::Event,
            Instant::now(),
        ));
    }

    fn delivered(metrics: &GatewayMetrics) -> Option<String> {
        metrics
            .encode_text()
            .lines()
            .find(|l| l.starts_with("sse_gateway_delivered_events_total{"))
            .map(str::to_owned)
    }

    #[test]
    fn the_round_end_runs_once_before_the_tally_is_recorded() {
        let metrics = GatewayMetrics::new(10).unwrap();
        let route = metrics.route("r");
        let topic = metrics.open_topic("r", "t");
        ENDS.with(|ends| ends.set(0));
        let mut round = OfferRound::new(&route);
        round.at_end(count_end);
        round.at_end(count_end);
        round.record(&topic);
        assert_eq!(ENDS.with(Cell::get), 1, "asked twice, run once");
        let line = delivered(&metrics).unwrap();
        assert!(
            line.ends_with(" 1"),
            "what the end wrote is counted: {line}"
        );
    }

    #[test]
    fn a_round_dropped_without_recording_still_runs_its_end() {
        let metrics = GatewayMetrics::new(10).unwrap();
        let route = metrics.route("r");
        ENDS.with(|ends| ends.set(0));
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut round = OfferRound::new(&route);
            round.at_end(count_end);
            panic!("an offer panicked");
        }));
        assert!(result.is_err());
        assert_eq!(ENDS.with(Cell::get), 1);
    }
}
