//! [`RoundSends`]: the sends of an offer round, gathered per thread and made
//! together through the thread's [`SendRing`].
//!
//! In a round the topic offers one delivery to each subscriber (of a shard,
//! on a sharded topic) on one thread; a client's event filter may hand its
//! sink another (a selection of a batch, a heartbeat in place of a skipped
//! event), so sends are gathered per delivery, a few deliveries at a time.
//! A direct sink that would send at once instead marks itself in flight
//! and gathers its send here; a delivery's sends go out when [`RING_SENDS`]
//! are gathered, when more than [`GROUPS`] deliveries would be, and when
//! the round ends (the hub
//! runs [`finish_round`] through
//! [`OfferRound::at_end`](sse_gateway_hub::OfferRound::at_end)
//! before it lets go of the topic's offer lane). No frame waits for a timer: a
//! round's sends are made before the round returns, as they were one by
//! one.
//!
//! A thread whose kernel gives no io_uring (or whose ring failed) sends one
//! by one, as the sink does outside rounds.

use std::cell::RefCell;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;

use bytes::Bytes;
use sse_gateway_hub::{Delivery, DeliveryTally, OfferRound};

use crate::ring::{SendOutcome, SendRing, RING_SENDS};
use crate::sink::DirectSink;

thread_local! {
    static ROUND: RefCell<RoundSends> = const { RefCell::new(RoundSends::new()) };
}

/// Most deliveries whose sends a thread gathers at once: the round's, and
/// a few that event filters made from it.
const GROUPS: usize = 4;

/// This thread's gathered sends and its ring.
#[derive(Debug)]
struct RoundSends {
    ring: Ring,
    /// The sends gathered, per delivery.
    groups: Vec<Group>,
    /// Emptied sink lists, kept for the next groups (no allocation per
    /// round).
    spare: Vec<Vec<Arc<DirectSink>>>,
    /// Reused for each batch's outcomes.
    outcomes: Vec<SendOutcome>,
}

/// Gathered sends of one delivery.
#[derive(Debug)]
struct Group {
    /// The delivery every send of the group writes, and its chunk.
    delivery: Delivery,
    wire: Bytes,
    sinks: Vec<Arc<DirectSink>>,
}

#[derive(Debug)]
enum Ring {
    /// Not made yet on this thread.
    Untried,
    Ready(Box<SendRing>),
    /// None on this thread: the kernel refused one, or it failed.
    Unavailable,
}

/// Whether this thread can gather sends: its ring exists, or can be made.
pub(crate) fn ready() -> bool {
    ROUND.with(|round| round.borrow_mut().ready())
}

/// Whether this kernel gives the rings that batched sends need: the
/// gateway asks once at start, to log which way direct sends go. The ring
/// made to find out is dropped at once (the asking thread may fork, as
/// `--daemon` does, and a ring is per thread); each thread that makes offer
/// rounds makes its own.
pub fn batched_sends() -> io::Result<()> {
    SendRing::new().map(drop)
}

/// Gathers a send of `wire` (`delivery`'s chunk) to `sink`, which the
/// caller marked in flight. The outcome reaches the sink through
/// [`DirectSink::sent`] by the end of `offers`, counted in its tally.
pub(crate) fn gather(
    sink: Arc<DirectSink>,
    delivery: &Delivery,
    wire: Bytes,
    offers: &mut OfferRound<'_>,
) {
    ROUND.with(|round| {
        let mut round = round.borrow_mut();
        // The same delivery: the same chunk (`chunk_of`).
        let found = round
            .groups
            .iter()
            .position(|group| group.wire.as_ptr() == wire.as_ptr());
        let index = match found {
            Some(index) => index,
            None => {
                if round.groups.len() == GROUPS {
                    // The oldest delivery's sends go now.
                    round.make(0, offers.tally());
                }
                let sinks = round.spare.pop().unwrap_or_default();
                round.groups.push(Group {
                    delivery: delivery.clone(),
                    wire,
                    sinks,
                });
                round.groups.len() - 1
            }
        };
        round.groups[index].sinks.push(sink);
        if round.groups[index].sinks.len() >= RING_SENDS {
            round.make(index, offers.tally());
        }
    });
    offers.at_end(finish_round);
}

/// The end of an offer round: makes the sends gathered on this thread.
fn finish_round(tally: &mut DeliveryTally<'_>) {
    ROUND.with(|round| {
        let mut round = round.borrow_mut();
        while !round.groups.is_empty() {
            round.make(0, tally);
        }
    });
}

/// The sinks of a batch whose sends are not settled yet. Should settling
/// unwind (a panic), the rest are failed rather than left in flight, where
/// their streams' ends would wait for them for good.
struct Unsettled<'a> {
    sinks: &'a [Arc<DirectSink>],
    next: usize,
}

impl Drop for Unsettled<'_> {
    fn drop(&mut self) {
        for sink in self.sinks.iter().skip(self.next) {
            sink.abandon();
        }
    }
}

/// The groups not being made, failed if the making unwinds.
struct OthersOnUnwind(Vec<Group>);

impl OthersOnUnwind {
    /// No unwind: the groups go back to wait for their turn.
    fn keep(mut self) -> Vec<Group> {
        std::mem::take(&mut self.0)
    }
}

impl Drop for OthersOnUnwind {
    fn drop(&mut self) {
        for group in self.0.drain(..) {
            for sink in &group.sinks {
                sink.abandon();
            }
        }
    }
}

impl RoundSends {
    const fn new() -> Self {
        Self {
            ring: Ring::Untried,
            groups: Vec::new(),
            spare: Vec::new(),
            outcomes: Vec::new(),
        }
    }

    /// Whether the thread has a ring, making it on first use (asked on
    /// every offer: after the first, one comparison).
    fn ready(&mut self) -> bool {
        if matches!(self.ring, Ring::Untried) {
            self.ring = match SendRing::new() {
                Ok(ring) => Ring::Ready(Box::new(ring)),
                Err(_) => Ring::Unavailable,
            };
        }
        matches!(self.ring, Ring::Ready(_))
    }

    /// Makes the sends gathered for the `index`th delivery and tells each
    /// sink what became of its own.
    fn make(&mut self, index: usize, tally: &mut DeliveryTally<'_>) {
        if index >= self.groups.len() {
            return;
        }
        let Group {
            delivery,
            wire,
            sinks,
        } = self.groups.remove(index);
        // The other deliveries' sends wait in flight: should making these
        // unwind, they are failed too, not left for the round's end (which
        // an unwinding round never reaches).
        let others = OthersOnUnwind(std::mem::take(&mut self.groups));
        let mut unsettled = Unsettled {
            sinks: &sinks,
            next: 0,
        };
        let mut outcomes = std::mem::take(&mut self.outcomes);
        let fds: Vec<BorrowedFd<'_>> = sinks
            .iter()
            .filter_map(|sink| sink.stream().map(AsFd::as_fd))
            .collect();
        outcomes.clear();
        if fds.len() == sinks.len() {
            self.ready();
            let sent = match &mut self.ring {
                Ring::Ready(ring) => ring.send_all(&fds, &wire, &mut outcomes),
                Ring::Untried | Ring::Unavailable => Ok(()),
            };
            if sent.is_err() {
                // The sends it did not make are made one by one; this
                // thread does not use a ring again.
                self.ring = Ring::Unavailable;
            }
        }
        drop(fds);
        outcomes.resize_with(sinks.len(), || SendOutcome::NotMade);
        for (index, (sink, outcome)) in sinks.iter().zip(outcomes.drain(..)).enumerate() {
            // An unknown outcome fails the sink (its client reconnects and
            // is replayed); its socket closes with the stream as any other:
            // a submitted send holds its own reference to the socket (see
            // `SendOutcome::Unknown`), so the descriptor may be closed and
            // its number reused without the send going anywhere else.
            sink.sent(&delivery, &wire, outcome, tally);
            unsettled.next = index + 1;
        }
        drop(unsettled);
        self.groups = others.keep();
        self.outcomes = outcomes;
        // Keep the buffer for the next rounds (the sinks are let go of).
        let mut sinks = sinks;
        sinks.clear();
        if self.spare.len() < GROUPS {
            self.spare.push(sinks);
        }
    }
}
