//! [`Lifecycle`]: where a direct subscriber is in its life, as one value
//! (see `LIFECYCLE.md`), and who may write to its socket in each state.
//!
//! Two parts, because they are independent: the **phase** says who may
//! write to the socket now (nobody before the take-over; the offering
//! thread when caught up; the subscriber's task when behind; the round's
//! thread while a gathered send is in flight; nobody once let go of), and
//! the **end** says whether the stream has ended and why (an ended stream
//! may still be behind: its task flushes what is pending before the last
//! chunk).
//!
//! The transitions are pure: the sink makes them under its lock and does
//! the I/O they allow. `lifecycle/model.rs` checks the protocol with loom.

use std::time::Instant;

use sse_gateway_hub::CloseReason;

/// Who may write to the socket now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Before the take-over: offers are held.
    Holding,
    /// Attached, nothing pending: an offer is sent at once by the thread
    /// that makes it.
    CaughtUp,
    /// Attached, bytes pending: later offers queue behind them and the
    /// subscriber's task flushes them on write-readiness. `since`: when
    /// the socket last took bytes (the write timeout counts from it).
    Behind {
        /// When the socket last took bytes, or when it fell behind.
        since: Instant,
    },
    /// Attached, the frames that arrived since the client fell behind its
    /// socket (it has not acknowledged what it was sent) pending: they go
    /// out together, in one vectored write, at `until` (the route's
    /// `coalesce_window` after the first), or earlier when one more would
    /// put them over `client_queue`. Nobody writes until then; whoever
    /// closes the window (the offering thread, the route's
    /// [`Coalescing`](crate::Coalescing) flusher, or the task ending the
    /// stream) makes the sink behind and flushes, under the sink's lock.
    Gathering {
        /// When the gathered frames go out at the latest.
        until: Instant,
    },
    /// A send gathered by an offer round and not made yet: only the round's
    /// thread may write, and the stream may not end its response or let go
    /// of the socket until it lands.
    InFlight,
    /// The socket was let go of: nobody writes.
    Detached,
}

/// A direct subscriber's state: its [`Phase`] and its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lifecycle {
    phase: Phase,
    end: Option<CloseReason>,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Self::new()
    }
}

// === impl Lifecycle ===

impl Lifecycle {
    /// A subscriber that joined its topic and waits for its socket.
    pub(crate) const fn new() -> Self {
        Self {
            phase: Phase::Holding,
            end: None,
        }
    }

    /// The phase.
    pub(crate) const fn phase(&self) -> Phase {
        self.phase
    }

    /// Why the stream ended, once it has.
    pub(crate) const fn end(&self) -> Option<CloseReason> {
        self.end
    }

    /// Whether the topic may still offer: not ended, not let go of.
    pub(crate) fn takes_offers(&self) -> bool {
        self.end.is_none() && self.phase != Phase::Detached
    }

    /// Whether the offering thread may write to the socket now.
    pub(crate) fn caught_up(&self) -> bool {
        self.phase == Phase::CaughtUp
    }

    /// Whether what is pending may be flushed now (behind, or gathering:
    /// a flush closes the window).
    pub(crate) fn flushable(&self) -> bool {
        matches!(self.phase, Phase::Behind { .. } | Phase::Gathering { .. })
    }

    /// Until when the sink gathers (`None` when it does not).
    pub(crate) fn gathering_until(&self) -> Option<Instant> {
        match self.phase {
            Phase::Gathering { until } => Some(until),
            _ => None,
        }
    }

    /// The client has not acknowledged what it was sent: later frames wait
    /// for it, until `until` at the latest. Caught up → gathering. False
    /// (and nothing changes) when it was not caught up.
    pub(crate) fn gather(&mut self, until: Instant) -> bool {
        let caught_up = self.caught_up();
        if caught_up {
            self.phase = Phase::Gathering { until };
        }
        caught_up
    }

    /// Whether a gathered send is still to land.
    pub(crate) fn in_flight(&self) -> bool {
        self.phase == Phase::InFlight
    }

    /// Since when the socket is behind (`None` when it is not).
    pub(crate) fn behind_since(&self) -> Option<Instant> {
        match self.phase {
            Phase::Behind { since } => Some(since),
            _ => None,
        }
    }

    /// The socket arrived (`attached`), or a second one was refused (the
    /// stream fails; the first socket stays). Holding → caught up.
    pub(crate) fn attach(&mut self, attached: bool) {
        if !attached {
            self.finish(CloseReason::WriteFailed);
        } else if self.phase == Phase::Holding {
            self.phase = Phase::CaughtUp;
        }
    }

    /// The socket did not take everything (or a gathering window closed):
    /// what is left is pending, from `now`. Caught up, in flight or
    /// gathering → behind; behind: progress, the write timeout counts from
    /// `now`.
    pub(crate) fn fell_behind(&mut self, now: Instant) {
        if matches!(
            self.phase,
            Phase::CaughtUp | Phase::InFlight | Phase::Behind { .. } | Phase::Gathering { .. }
        ) {
            self.phase = Phase::Behind { since: now };
        }
    }

    /// Nothing is pending any more. Behind (or gathering) → caught up.
    pub(crate) fn caught_up_again(&mut self) {
        if self.flushable() {
            self.phase = Phase::CaughtUp;
        }
    }

    /// An offer round gathered this subscriber's send. Caught up → in
    /// flight. False (and nothing changes) when it was not caught up.
    pub(crate) fn fly(&mut self) -> bool {
        let caught_up = self.caught_up();
        if caught_up {
            self.phase = Phase::InFlight;
        }
        caught_up
    }

    /// The gathered send landed (made, or given up). In flight → caught
    /// up; the sink then settles the send (which may put it behind). True
    /// when the stream's end is waiting for it (its task must be woken).
    pub(crate) fn land(&mut self) -> bool {
        if self.in_flight() {
            self.phase = Phase::CaughtUp;
        }
        self.end.is_some()
    }

    /// The stream ends for `reason` (the first reason stays). True when
    /// this call ended it. A slow client's pending bytes are dropped by the
    /// caller: the stream is caught up at once.
    pub(crate) fn finish(&mut self, reason: CloseReason) -> bool {
        if self.end.is_some() {
            return false;
        }
        self.end = Some(reason);
        if reason == CloseReason::SlowClient {
            self.caught_up_again();
        }
        true
    }

    /// The socket is let go of. Only once nothing is in flight: the caller
    /// waits for [`land`](Self::land) first.
    pub(crate) fn detach(&mut self) {
        debug_assert!(!self.in_flight(), "detached with a send in flight");
        self.phase = Phase::Detached;
        if self.end.is_none() {
            self.end = Some(CloseReason::ClientClosed);
        }
    }
}

#[cfg(test)]
mod model;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subscriber_goes_from_holding_to_detached() {
        let mut life = Lifecycle::new();
        assert!(life.takes_offers() && !life.caught_up());
        life.attach(true);
        assert!(life.caught_up());
        assert!(life.fly());
        assert!(!life.fly(), "one send in flight at a time");
        assert!(!life.caught_up() && !life.flushable());
        assert!(!life.land(), "nobody waits for it");
        let now = Instant::now();
        life.fell_behind(now);
        assert_eq!(life.behind_since(), Some(now));
        life.caught_up_again();
        assert!(life.caught_up());
        assert!(life.finish(CloseReason::UpstreamStopped));
        assert!(
            !life.finish(CloseReason::WriteFailed),
            "the first end stays"
        );
        assert!(!life.takes_offers());
        life.detach();
        assert_eq!(life.phase(), Phase::Detached);
        assert_eq!(life.end(), Some(CloseReason::UpstreamStopped));
    }

    #[test]
    fn an_end_asked_in_flight_waits_for_the_landing() {
        let mut life = Lifecycle::new();
        life.attach(true);
        assert!(life.fly());
        assert!(life.finish(CloseReason::ClientClosed));
        assert!(life.in_flight(), "the end does not take the socket back");
        assert!(life.land(), "the landing wakes the waiting end");
        assert!(life.caught_up());
    }

    #[test]
    fn a_gathering_window_closes_behind_and_flushes_to_caught_up() {
        let mut life = Lifecycle::new();
        assert!(
            !life.gather(Instant::now()),
            "not attached: nothing to gather for"
        );
        life.attach(true);
        let until = Instant::now() + std::time::Duration::from_millis(5);
        assert!(life.gather(until));
        assert_eq!(life.gathering_until(), Some(until));
        assert!(
            !life.caught_up() && !life.fly(),
            "nobody sends while it gathers"
        );
        assert!(life.flushable() && life.behind_since().is_none());
        assert!(!life.gather(until), "one window at a time");
        let now = Instant::now();
        life.fell_behind(now);
        assert_eq!(life.behind_since(), Some(now));
        life.caught_up_again();
        assert!(life.caught_up());

        let mut slow = Lifecycle::new();
        slow.attach(true);
        slow.gather(until);
        assert!(slow.finish(CloseReason::SlowClient));
        assert!(
            slow.caught_up(),
            "a slow client's gathered frames are dropped"
        );
    }

    #[test]
    fn a_second_socket_fails_the_stream_and_a_slow_one_drops_its_backlog() {
        let mut life = Lifecycle::new();
        life.attach(true);
        life.attach(false);
        assert_eq!(life.end(), Some(CloseReason::WriteFailed));

        let mut slow = Lifecycle::new();
        slow.attach(true);
        slow.fell_behind(Instant::now());
        assert!(slow.finish(CloseReason::SlowClient));
        assert!(slow.caught_up(), "nothing left to flush");
    }
}
