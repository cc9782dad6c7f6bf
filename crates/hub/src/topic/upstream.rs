//! What the topic's feed reports: the upstream's state and answer, its
//! `retry:`, a refused `Last-Event-ID`, a stop (HTTP 204) or a refusal
//! (401/403/404/410, not an event stream).

use std::time::Instant;

use super::{Phase, Topic, REFUSED_HOLDOFF};
use crate::advice::gap_event;
use crate::publisher::{UpstreamAnswer, UpstreamState};
use crate::{CloseReason, Delivery, DeliveryKind};

// === impl Topic ===

impl Topic {
    /// Forwards the upstream's `retry` to current clients and remembers it.
    pub(crate) fn advise_retry(&self, ms: u64, now: Instant) {
        let mut lane = self.lane.lock();
        let mut state = self.state.lock();
        if state.upstream_retry == Some(ms) {
            return;
        }
        state.upstream_retry = Some(ms);
        let delivery = Delivery::new(
            sse_gateway_codec::encode_retry(ms),
            DeliveryKind::Advice,
            now,
        );
        self.offer_all(&mut lane, &mut state, &delivery);
    }

    pub(crate) fn set_upstream(&self, upstream: UpstreamState) {
        let mut state = self.state.lock();
        state.upstream = upstream;
        let live = upstream == UpstreamState::Live;
        state.ever_streamed |= live;
        drop(state);
        self.metrics.set_upstream_up(live);
        match upstream {
            UpstreamState::Live => {
                self.answer.send_if_modified(|answer| {
                    let changed = *answer != UpstreamAnswer::Streaming;
                    *answer = UpstreamAnswer::Streaming;
                    changed
                });
            }
            UpstreamState::Backoff => {
                self.answer.send_if_modified(|answer| {
                    let first = *answer == UpstreamAnswer::Pending;
                    if first {
                        *answer = UpstreamAnswer::Retrying;
                    }
                    first
                });
            }
            UpstreamState::Connecting | UpstreamState::Stopped | UpstreamState::Refused => {}
        }
    }

    pub(crate) fn last_event_id(&self) -> Option<String> {
        self.state.lock().last_event_id.clone()
    }

    /// The upstream refused the stored id: the feed starts again from its
    /// live edge, so what the ring holds is no longer followed by what
    /// comes next. The ring is emptied (a client resuming from an id in it
    /// is told it is missing rather than skipping events silently) and the
    /// current subscribers get the route's `gap` event, if it has one.
    pub(crate) fn forget_last_event_id(&self, now: Instant) {
        let mut lane = self.lane.lock();
        let mut state = self.state.lock();
        let Some(forgotten) = state.last_event_id.take() else {
            return;
        };
        state.opened_from = None;
        self.flush_window(&mut lane, &mut state, now);
        state.ring.clear();
        let gap = self
            .settings
            .gap_event
            .as_deref()
            .and_then(|event_type| gap_event(event_type, &forgotten, None));
        if let Some(gap) = gap {
            let gap = Delivery::new(gap, DeliveryKind::Advice, now);
            self.offer_all(&mut lane, &mut state, &gap);
        }
    }

    /// The upstream said stop: close every subscriber, refuse new ones for
    /// the hold-off.
    pub(crate) fn stop(&self, now: Instant) {
        let mut lane = self.lane.lock();
        let mut state = self.state.lock();
        if state.phase == Phase::Closed {
            return;
        }
        self.flush_window(&mut lane, &mut state, now);
        state.phase = Phase::Stopped {
            until: now + self.settings.stop_holdoff,
        };
        state.upstream = UpstreamState::Stopped;
        self.close_subscribers(&mut state, CloseReason::UpstreamStopped);
        drop(state);
        drop(lane);
        self.metrics.set_upstream_up(false);
        self.answer.send_replace(UpstreamAnswer::Stopped);
        self.wake.notify_one();
    }

    /// The upstream refused the topic: close every subscriber, answer
    /// joiners with `status` for [`REFUSED_HOLDOFF`], then close.
    pub(crate) fn refuse(&self, status: u16, now: Instant) {
        let mut lane = self.lane.lock();
        let mut state = self.state.lock();
        if state.phase == Phase::Closed {
            return;
        }
        self.flush_window(&mut lane, &mut state, now);
        state.phase = Phase::Refused {
            status,
            until: now + REFUSED_HOLDOFF,
        };
        state.upstream = UpstreamState::Refused;
        self.close_subscribers(&mut state, CloseReason::UpstreamRefused);
        drop(state);
        drop(lane);
        self.metrics.set_upstream_up(false);
        self.answer.send_replace(UpstreamAnswer::Refused { status });
        self.wake.notify_one();
    }
}
