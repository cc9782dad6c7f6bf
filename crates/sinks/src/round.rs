//! [`RoundSends`]: the sends of an offer round, gathered per thread and made
//! together through the thread's [`SendRing`].
//!
//! In a round the topic offers one delivery to each subscriber (of a shard,
//! on a sharded topic) on one thread. A direct sink that would send at once
//! instead marks itself in flight and gathers its send here; the sends go
//! out when [`RING_SENDS`] are gathered and when the round ends (the hub
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

/// This thread's gathered sends and its ring.
#[derive(Debug)]
struct RoundSends {
    ring: Ring,
    /// The delivery every gathered send writes (a round offers one), and
    /// its chunk.
    delivery: Option<(Delivery, Bytes)>,
    sinks: Vec<Arc<DirectSink>>,
    /// Reused for each batch's outcomes.
    outcomes: Vec<SendOutcome>,
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
        let same = round
            .delivery
            .as_ref()
            .is_some_and(|(_, held)| held.as_ptr() == wire.as_ptr());
        if !same {
            // A round offers one delivery and makes its sends before it
            // ends, so nothing is gathered when a new one starts. (Were
            // something left, it is made now rather than lost.)
            debug_assert!(round.delivery.is_none(), "sends left from an earlier round");
            round.make(offers.tally());
            round.delivery = Some((delivery.clone(), wire));
        }
        round.sinks.push(sink);
        if round.sinks.len() >= RING_SENDS {
            round.make(offers.tally());
        }
    });
    offers.at_end(finish_round);
}

/// The end of an offer round: makes the sends gathered on this thread.
fn finish_round(tally: &mut DeliveryTally<'_>) {
    ROUND.with(|round| round.borrow_mut().make(tally));
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

impl RoundSends {
    const fn new() -> Self {
        Self {
            ring: Ring::Untried,
            delivery: None,
            sinks: Vec::new(),
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

    /// Makes the gathered sends and tells each sink what became of its own.
    fn make(&mut self, tally: &mut DeliveryTally<'_>) {
        let Some((delivery, wire)) = self.delivery.take() else {
            return;
        };
        let sinks = std::mem::take(&mut self.sinks);
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
        self.outcomes = outcomes;
        // Keep the buffer for the next round (the sinks are let go of).
        let mut sinks = sinks;
        sinks.clear();
        self.sinks = sinks;
    }
}
