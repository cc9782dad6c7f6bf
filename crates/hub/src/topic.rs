//! [`Topic`]: one topic's subscribers, replay ring and state machine.
//!
//! Two locks, always taken in this order:
//!
//! 1. The **offer lane** ([`Lane`]) serializes whatever offers a delivery to
//!    every subscriber (publishes, heartbeats, the write window, advice,
//!    stops and closes), so rounds never overlap and every subscriber sees
//!    the topic's deliveries in one order. It is held across a round's
//!    writes to sockets (the direct path's `send(2)` and `io_uring_enter`),
//!    and only the topic's own feed and timer (and a close) wait for it.
//! 2. The **state** lock guards the subscriber table, the ring and the phase.
//!    It is held only for short bookkeeping: a round takes its snapshot of
//!    the subscribers and pushes the frame into the ring in one critical
//!    section, lets go of the state while it offers, and takes it again to
//!    remove the slow and the gone. Joins (advice, ring snapshot and live
//!    position together) and leaves take only this lock, so a subscriber
//!    arriving on the proxy runtime never waits for a round's writes.
//!
//! A round's frame is in the ring before its snapshot is taken, so a
//! subscriber that joins while the round offers it is either in the
//! snapshot (and gets it live) or not (and gets it from the ring if it asks
//! with `Last-Event-ID`): never both, never neither. See `LIFECYCLE.md`.
//! Offer rounds and how a written delivery counts are in `topic/offer.rs`;
//! what the feed reports (upstream state, stop, refusal, a refused id) in
//! `topic/upstream.rs`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::{Mutex, MutexGuard};
use slab::Slab;
use sse_gateway_codec::Frame;
use sse_gateway_metrics::{RouteMetrics, TopicMetrics};
use tokio::sync::{watch, Notify};

mod offer;
mod upstream;

use self::offer::delivery_of;
use crate::advice::{gap_event, jittered_retry, HEARTBEAT};
use crate::publisher::{UpstreamAnswer, UpstreamState};
use crate::replay::{ReplayBudget, ReplayRing, Resume};
use crate::{
    CloseReason, Delivery, DeliveryKind, OfferRound, Refusal, SubscriberSink, TopicSettings,
};

/// A topic's identity: the route that opened it and the topic name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct TopicKey {
    pub(crate) route: Arc<str>,
    pub(crate) topic: Arc<str>,
}

pub(crate) struct Topic {
    pub(crate) key: TopicKey,
    pub(crate) settings: Arc<TopicSettings>,
    pub(crate) metrics: TopicMetrics,
    pub(crate) route_metrics: RouteMetrics,
    /// `HubLimits::max_clients_per_topic`.
    max_clients: usize,
    /// Threads that share the offers when the topic is large.
    shards: Option<Arc<rayon::ThreadPool>>,
    /// Serializes offer rounds; taken before `state` (see the module doc).
    lane: Mutex<Lane>,
    state: Mutex<TopicState>,
    /// Wakes the topic's timer task when its deadlines change.
    pub(crate) wake: Notify,
    /// Becomes `true` when the topic closes; the feed watches it.
    closed: watch::Sender<bool>,
    /// What the upstream answered; the first subscribers wait for it.
    answer: watch::Sender<UpstreamAnswer>,
}

/// The offer lane: held by whoever offers to every subscriber. It keeps the
/// round's snapshot of the subscribers (its buffer reused from round to
/// round).
#[derive(Default)]
pub(crate) struct Lane {
    /// The subscribers a round offers to: slab key, subscriber id, sink.
    round: Vec<(usize, u64, Arc<dyn SubscriberSink>)>,
}

/// The state lock's guard.
type State<'a> = MutexGuard<'a, TopicState>;

struct TopicState {
    subscribers: Slab<(u64, Arc<dyn SubscriberSink>)>,
    ring: ReplayRing,
    phase: Phase,
    /// Last time anything was offered to every subscriber.
    last_activity: Instant,
    upstream: UpstreamState,
    /// The upstream's last `retry`, advised to every joining client.
    upstream_retry: Option<u64>,
    /// The last id published (or the first subscriber's, before any event):
    /// what the feed sends as `Last-Event-ID` when it reconnects.
    last_event_id: Option<String>,
    /// The first subscriber's `Last-Event-ID`, which the feed resumed from.
    opened_from: Option<String>,
    events_received: u64,
    /// The upstream answered 200 at least once. A topic whose upstream
    /// never did is not kept open for `linger` after its last subscriber.
    ever_streamed: bool,
    /// Frames the write window gathered, not yet offered nor in the ring.
    window: Vec<(Frame, Instant)>,
    /// When the gathered frames are due.
    window_due: Option<Instant>,
    /// When live frames were last offered (the write window starts there).
    last_offer: Option<Instant>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Just created, its first subscriber about to join.
    Opening,
    Active,
    Lingering {
        since: Instant,
    },
    Stopped {
        until: Instant,
    },
    /// The upstream refused the topic: joiners are answered `status` until
    /// `until`, then the topic closes.
    Refused {
        status: u16,
        until: Instant,
    },
    Closed,
}

/// How long a topic the upstream refused keeps answering joiners with the
/// upstream's status before it closes: clients that arrive together (a
/// reconnect wave) share one upstream request instead of opening one each.
pub(crate) const REFUSED_HOLDOFF: Duration = Duration::from_secs(1);

/// Why a join did not happen.
pub(crate) enum JoinError {
    Refused(Refusal),
    /// The topic closed meanwhile: open a new one.
    Closed,
}

// === impl TopicState ===

impl TopicState {
    /// Counts a frame from the upstream and remembers its id (the feed's
    /// `Last-Event-ID` when it reconnects).
    fn note_received(&mut self, frame: &Frame) {
        self.events_received += 1;
        if let Some(id) = frame.id() {
            let last = self.last_event_id.get_or_insert_with(String::new);
            last.clear();
            last.push_str(id);
        }
    }
}

/// What the timer task must do next.
pub(crate) struct Tick {
    pub(crate) next: Option<Instant>,
    pub(crate) close: bool,
}

/// A snapshot of a topic for the admin `/topics` endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    /// The route that opened the topic.
    pub route: String,
    /// The topic name.
    pub topic: String,
    /// Subscribers now.
    pub subscribers: usize,
    /// The feed's state.
    pub upstream: UpstreamState,
    /// The last event id seen, if any.
    pub last_event_id: Option<String>,
    /// Events received from the upstream.
    pub events_received: u64,
    /// Frames in the replay ring, and its capacity.
    pub replay_len: usize,
    /// Most frames the replay ring holds.
    pub replay_capacity: usize,
}

/// Fewest subscribers in one shard of a large topic's offers: below it, one
/// thread writes to everyone (waking another costs more than it saves).
pub const SHARD_MIN: usize = 256;

// === impl Topic ===

impl Topic {
    // One call site (the hub); each argument is a plain value it resolved.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        key: TopicKey,
        settings: Arc<TopicSettings>,
        metrics: TopicMetrics,
        route_metrics: RouteMetrics,
        max_clients: usize,
        shards: Option<Arc<rayon::ThreadPool>>,
        seed_last_event_id: Option<&str>,
        budget: Option<Arc<ReplayBudget>>,
        now: Instant,
    ) -> Self {
        let ring = ReplayRing::bounded(
            settings.replay_events,
            settings.replay_max_age,
            settings.replay_max_bytes,
            budget,
        );
        Self {
            key,
            settings,
            metrics,
            route_metrics,
            max_clients,
            shards,
            lane: Mutex::new(Lane::default()),
            state: Mutex::new(TopicState {
                subscribers: Slab::new(),
                ring,
                phase: Phase::Opening,
                last_activity: now,
                upstream: UpstreamState::Connecting,
                upstream_retry: None,
                last_event_id: seed_last_event_id.map(str::to_owned),
                opened_from: seed_last_event_id.map(str::to_owned),
                events_received: 0,
                ever_streamed: false,
                window: Vec::new(),
                window_due: None,
                last_offer: None,
            }),
            wake: Notify::new(),
            closed: watch::channel(false).0,
            answer: watch::channel(UpstreamAnswer::Pending).0,
        }
    }

    pub(crate) fn closed_watch(&self) -> watch::Receiver<bool> {
        self.closed.subscribe()
    }

    pub(crate) fn answer_watch(&self) -> watch::Receiver<UpstreamAnswer> {
        self.answer.subscribe()
    }

    /// Adds a subscriber: advice, then replay, then live, in one critical
    /// section of the state lock. Only a resuming subscriber of a route with
    /// a write window takes the offer lane too (the gathered frames go out,
    /// and into the ring, before its replay).
    pub(crate) fn join(
        &self,
        id: u64,
        sink: Arc<dyn SubscriberSink>,
        last_event_id: Option<&str>,
        now: Instant,
    ) -> Result<usize, JoinError> {
        let mut lane = (last_event_id.is_some() && !self.settings.write_window.is_zero())
            .then(|| self.lane.lock());
        let mut state = self.state.lock();
        match state.phase {
            Phase::Closed => return Err(JoinError::Closed),
            Phase::Stopped { .. } => return Err(JoinError::Refused(Refusal::Stopped)),
            Phase::Refused { status, .. } => {
                return Err(JoinError::Refused(Refusal::Upstream { status }))
            }
            Phase::Opening | Phase::Active | Phase::Lingering { .. } => {}
        }
        if state.subscribers.len() >= self.max_clients {
            return Err(JoinError::Refused(Refusal::Limit("max_clients_per_topic")));
        }
        let advice = |bytes: Bytes, kind| Delivery::new(bytes, kind, now);
        // The joiner's own offers (advice, replay, a gap event): a round of one.
        let mut round = OfferRound::new(&self.route_metrics);
        let retry = match state.upstream_retry {
            Some(ms) => Some(sse_gateway_codec::encode_retry(ms)),
            None if !self.settings.client_retry.is_zero() => {
                Some(jittered_retry(self.settings.client_retry))
            }
            None => None,
        };
        if let Some(retry) = retry {
            sink.offer(&advice(retry, DeliveryKind::Advice), &mut round);
        }
        if let Some(asked) = last_event_id {
            // Gathered frames go out first, so that the ring holds them.
            if let Some(lane) = &mut lane {
                self.flush_window(lane, &mut state, now);
            }
            self.replay(&state, sink.as_ref(), asked, now, &mut round);
        }
        round.record(&self.metrics);
        let key = state.subscribers.insert((id, sink));
        if state.phase != Phase::Active {
            state.phase = Phase::Active;
            self.wake.notify_one();
        }
        drop(state);
        drop(lane);
        self.metrics.subscriber_joined();
        Ok(key)
    }

    fn replay(
        &self,
        state: &TopicState,
        sink: &dyn SubscriberSink,
        asked: &str,
        now: Instant,
        round: &mut OfferRound<'_>,
    ) {
        match state.ring.resume(asked) {
            Resume::Found(frames) => {
                for frame in &frames {
                    let delivery = Delivery::of_frame(frame, DeliveryKind::Replay, now);
                    sink.offer(&delivery, round);
                }
                self.metrics.replayed(frames.len() as u64);
            }
            // The topic's feed resumed from this very id, and the ring still
            // holds everything received since: replay all of it. (Clients of
            // one topic reconnecting after a restart bring the same id.)
            Resume::Missing { .. }
                if state.opened_from.as_deref() == Some(asked)
                    && state.ring.len() as u64 == state.events_received =>
            {
                let frames = state.ring.all();
                for frame in &frames {
                    let delivery = Delivery::of_frame(frame, DeliveryKind::Replay, now);
                    sink.offer(&delivery, round);
                }
                self.metrics.replayed(frames.len() as u64);
            }
            Resume::Missing { oldest } => {
                self.route_metrics.replay_miss();
                if let Some(gap) = self
                    .settings
                    .gap_event
                    .as_deref()
                    .and_then(|event_type| gap_event(event_type, asked, oldest))
                {
                    sink.offer(&Delivery::new(gap, DeliveryKind::Advice, now), round);
                }
            }
        }
    }

    /// Removes a subscriber (if still there); the last one starts the linger.
    pub(crate) fn leave(&self, key: usize, id: u64, now: Instant) {
        let mut state = self.state.lock();
        if state
            .subscribers
            .get(key)
            .is_some_and(|(held, _)| *held == id)
        {
            state.subscribers.remove(key);
            self.metrics.subscriber_left();
            if state.subscribers.is_empty() && state.phase == Phase::Active {
                state.phase = Phase::Lingering { since: now };
                self.wake.notify_one();
            }
        }
    }

    /// Fans a frame out to every subscriber and keeps it for replay.
    pub(crate) fn publish(&self, frame: Frame, received: Instant) {
        let mut lane = self.lane.lock();
        let mut state = self.state.lock();
        if state.phase == Phase::Closed {
            return;
        }
        state.note_received(&frame);
        state.last_activity = received;
        let window = self.settings.write_window;
        if !window.is_zero() {
            let gathering = !state.window.is_empty();
            let recent = state.last_offer.filter(|at| received < *at + window);
            if gathering || recent.is_some() {
                // Busy: gather until the window after the last offer ends.
                if let (false, Some(last_offer)) = (gathering, recent) {
                    state.window_due = Some(last_offer + window);
                    self.wake.notify_one();
                }
                state.window.push((frame, received));
                drop(state);
                self.metrics.upstream_event();
                return;
            }
            state.last_offer = Some(received);
        }
        let delivery = Delivery::of_frame(&frame, DeliveryKind::Event, received);
        state.ring.push(frame, received);
        self.offer_all(&mut lane, &mut state, &delivery);
        drop(state);
        self.metrics.upstream_event();
    }

    /// Publishes frames that arrived together as one delivery (see
    /// `TopicPublisher::publish_all`); drains `frames`.
    pub(crate) fn publish_all(&self, frames: &mut Vec<Frame>, received: Instant) {
        if frames.len() <= 1 || !self.settings.write_window.is_zero() {
            // One frame, or the write window gathers them anyway.
            for frame in frames.drain(..) {
                self.publish(frame, received);
            }
            return;
        }
        let mut lane = self.lane.lock();
        let mut state = self.state.lock();
        if state.phase == Phase::Closed {
            frames.clear();
            return;
        }
        let count = frames.len() as u64;
        let delivery = delivery_of(frames.iter(), received);
        for frame in frames.drain(..) {
            state.note_received(&frame);
            state.ring.push(frame, received);
        }
        state.last_activity = received;
        self.offer_all(&mut lane, &mut state, &delivery);
        drop(state);
        self.metrics.upstream_events(count);
    }

    /// Offers the frames the write window gathered, as one delivery, and
    /// keeps them for replay.
    fn flush_window(&self, lane: &mut Lane, state: &mut State<'_>, now: Instant) {
        state.window_due = None;
        if state.window.is_empty() {
            return;
        }
        let frames = std::mem::take(&mut state.window);
        let received = frames.first().map_or(now, |(_, at)| *at);
        let delivery = delivery_of(frames.iter().map(|(frame, _)| frame), received);
        for (frame, at) in frames {
            state.ring.push(frame, at);
        }
        state.last_offer = Some(now);
        self.offer_all(lane, state, &delivery);
    }

    /// Closes the topic for good: subscribers (after `last` advice), feed, timer.
    pub(crate) fn close(&self, reason: CloseReason) {
        let mut lane = self.lane.lock();
        let mut state = self.state.lock();
        if state.phase != Phase::Closed {
            self.flush_window(&mut lane, &mut state, Instant::now());
        }
        self.close_subscribers(&mut state, reason);
        state.phase = Phase::Closed;
        state.ring.clear();
        drop(state);
        drop(lane);
        self.closed.send_replace(true);
        // Subscribers still waiting for a first answer go on (their stream
        // finds itself closed).
        self.answer.send_if_modified(|answer| {
            let pending = *answer == UpstreamAnswer::Pending;
            if pending {
                *answer = UpstreamAnswer::Retrying;
            }
            pending
        });
        self.wake.notify_one();
    }

    fn close_subscribers(&self, state: &mut TopicState, reason: CloseReason) {
        for (_, (_, sink)) in state.subscribers.iter() {
            sink.close(reason);
            self.metrics.subscriber_left();
        }
        state.subscribers.clear();
    }

    /// The timer: heartbeats, linger and hold-off expiry.
    pub(crate) fn tick(&self, now: Instant) -> Tick {
        let mut lane = self.lane.lock();
        let mut state = self.state.lock();
        let mut next = None;
        match state.phase {
            Phase::Closed => {
                return Tick {
                    next: None,
                    close: true,
                }
            }
            Phase::Lingering { since } => {
                // An upstream that never answered 200 is not worth keeping.
                let linger = if state.ever_streamed {
                    self.settings.linger
                } else {
                    Duration::ZERO
                };
                let end = since + linger;
                if now >= end {
                    state.phase = Phase::Closed;
                    return Tick {
                        next: None,
                        close: true,
                    };
                }
                next = Some(end);
            }
            Phase::Stopped { until } | Phase::Refused { until, .. } => {
                if now >= until {
                    state.phase = Phase::Closed;
                    return Tick {
                        next: None,
                        close: true,
                    };
                }
                next = Some(until);
            }
            Phase::Opening | Phase::Active => {}
        }
        if let Some(due) = state.window_due {
            if now >= due {
                self.flush_window(&mut lane, &mut state, now);
            } else {
                next = Some(next.map_or(due, |n: Instant| n.min(due)));
            }
        }
        let heartbeat = self.settings.heartbeat;
        if !heartbeat.is_zero() && !state.subscribers.is_empty() {
            let due = state.last_activity + heartbeat;
            let due = if now >= due {
                let delivery = Delivery::new(HEARTBEAT, DeliveryKind::Heartbeat, now);
                state.last_activity = now;
                let sent = self.offer_all(&mut lane, &mut state, &delivery);
                self.route_metrics.heartbeats_sent(sent as u64);
                now + heartbeat
            } else {
                due
            };
            next = Some(next.map_or(due, |n: Instant| n.min(due)));
        }
        state.ring.expire(now);
        if let Some(due) = state.ring.next_expiry(now) {
            next = Some(next.map_or(due, |n: Instant| n.min(due)));
        }
        Tick { next, close: false }
    }

    pub(crate) fn info(&self) -> TopicInfo {
        let state = self.state.lock();
        TopicInfo {
            route: self.key.route.to_string(),
            topic: self.key.topic.to_string(),
            subscribers: state.subscribers.len(),
            upstream: state.upstream,
            last_event_id: state.last_event_id.clone(),
            events_received: state.events_received,
            replay_len: state.ring.len(),
            replay_capacity: state.ring.capacity(),
        }
    }
}
