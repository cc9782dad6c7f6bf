//! [`DirectSink`]: a subscriber the topic writes to itself, with
//! non-blocking writes straight to the client's socket.
//!
//! The topic offers each delivery in a round. When nothing is pending,
//! the sink sends the delivery's chunk (size line, payload, CRLF; framed once
//! per delivery and shared) with one non-blocking `send`, or, in an offer
//! round, gathers the send with the round's others to be made together at
//! the round's end (`round`); no task is woken. Whatever the socket does
//! not take waits in a pending queue (allocated only while behind) that the
//! subscriber's own task flushes when the socket becomes writable; past
//! `client_queue` pending bytes the offer answers [`Offer::Full`] and the
//! topic disconnects the subscriber as slow. See `LIFECYCLE.md`.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::sync::{Arc, OnceLock, Weak};
use std::task::Waker;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;
use socket2::SockRef;
use sse_gateway_hub::{
    CloseReason, Delivery, DeliveryKind, DeliveryRecorder, DeliveryTally, Offer, OfferRound,
    SubscriberSink,
};
use tokio::net::TcpStream;

use crate::chunk::{self, chunk_of};
use crate::coalesce::Coalescing;
use crate::conflate::{skipped_note, Conflation};
use crate::drain::Drain;
use crate::lifecycle::{Lifecycle, Phase};
use crate::ring::SendOutcome;
use crate::round;
use crate::OPENING_COMMENT;

/// Most pending deliveries gathered into one vectored write.
const MAX_BATCH: usize = 16;

/// Settings shared by the direct subscribers of a route.
pub struct DirectSettings {
    /// Bytes of live deliveries a subscriber may have pending (not taken by
    /// its socket) before it is disconnected as slow (`client_queue`).
    pub client_queue: usize,
    /// A subscriber whose socket takes nothing for this long while it has
    /// pending bytes is cut off.
    pub write_timeout: Duration,
    /// The gateway's drain (a drained stream's final frame).
    pub drain: Arc<Drain>,
    /// Whether offer rounds gather their sends and submit them together
    /// (io_uring, where the kernel gives one; one `send` each otherwise).
    pub batched_sends: bool,
    /// The route's gathering windows: frames for a client that has not
    /// acknowledged the last ones go out together (`coalesce_window`; see
    /// [`Coalescing`]).
    pub coalescing: Arc<Coalescing>,
    /// `slow_client: coalesce`: reduce what is pending to the newest event
    /// per key instead of cutting the client (see [`Conflation`]).
    pub conflation: Option<Conflation>,
}

impl std::fmt::Debug for DirectSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectSettings")
            .field("client_queue", &self.client_queue)
            .field("write_timeout", &self.write_timeout)
            .field("batched_sends", &self.batched_sends)
            .field("coalesce_window", &self.coalescing.window())
            .finish_non_exhaustive()
    }
}

/// One direct subscriber: its socket (once attached), pending bytes and
/// counters. Implements [`SubscriberSink`].
#[derive(Debug)]
pub struct DirectSink {
    /// The client's socket, set once by [`DirectSink::attach`]; it closes
    /// when the sink is dropped (the task and the topic let go of it when
    /// the stream ends).
    stream: OnceLock<TcpStream>,
    state: Mutex<SinkState>,
    /// The sink itself, for a round that gathers its send.
    me: Weak<DirectSink>,
    pub(crate) settings: Arc<DirectSettings>,
}

#[derive(Debug, Default)]
struct SinkState {
    /// Who may write to the socket, and whether the stream ended.
    life: Lifecycle,
    recorder: Option<DeliveryRecorder>,
    pending: VecDeque<Held>,
    /// Wire bytes of `pending.front()` already written.
    front_written: usize,
    /// Payload bytes of pending live (non-replay) deliveries.
    live_bytes: usize,
    /// Bytes the last write to the socket took: the client's ACK of that
    /// much may be delayed, so no more than that unacknowledged still counts
    /// as caught up (see [`Coalescing`]).
    last_sent: usize,
    /// When the last write to the socket was made: the upstream arrival of
    /// the delivery it completed (no clock is read per offer), or the time
    /// of a flush.
    last_write_at: Option<Instant>,
    /// The subscriber's task, woken when the sink falls behind, ends, or
    /// a send its end waits for lands (never per delivery).
    waker: Option<Waker>,
    events: u64,
    bytes: u64,
}

/// A delivery the socket has not taken whole yet, and its chunk (what is
/// written).
#[derive(Debug)]
struct Held {
    delivery: Delivery,
    wire: Bytes,
    /// Counted in the metrics once written (all but the opening comment).
    counted: bool,
    /// For the note in front of coalesced events: how many were skipped
    /// (zero for everything else).
    skipped: u64,
}

/// What the subscriber's task needs to know.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Status {
    pub(crate) behind_since: Option<Instant>,
    pub(crate) end: Option<CloseReason>,
}

// === impl DirectSink ===

impl DirectSink {
    /// A sink that holds what it is offered until [`DirectSink::attach`].
    pub fn new(settings: Arc<DirectSettings>) -> Arc<Self> {
        Arc::new_cyclic(|me| Self {
            stream: OnceLock::new(),
            state: Mutex::new(SinkState::default()),
            me: me.clone(),
            settings,
        })
    }

    /// Gives the sink its socket (the response header already written) and
    /// the membership's recorder, then writes what was held: the join's
    /// advice and replay, or an opening comment when there is none.
    pub fn attach(&self, stream: TcpStream, recorder: DeliveryRecorder) {
        // A second attach is refused (the first socket stays; the stream
        // fails).
        let attached = self.stream.set(stream).is_ok();
        let mut state = self.state.lock();
        state.recorder = Some(recorder);
        if state.pending.is_empty() {
            let delivery = Delivery::new(OPENING_COMMENT, DeliveryKind::Heartbeat, Instant::now());
            let wire = chunk_of(&delivery.bytes);
            state.pending.push_back(Held {
                delivery,
                wire,
                counted: false,
                skipped: 0,
            });
        }
        state.life.attach(attached);
        if attached {
            // What was held is pending: write it as a flush would.
            state.life.fell_behind(Instant::now());
            if let Some(stream) = self.socket(&state) {
                let mut sends = 0;
                if flush(&mut state, stream, &mut sends).is_err() {
                    state.life.finish(CloseReason::WriteFailed);
                }
                record_sends(&state, sends, None);
            }
        }
        if state.life.end().is_some() || state.life.flushable() {
            wake(state);
        }
    }

    /// The attached socket.
    pub(crate) fn stream(&self) -> Option<&TcpStream> {
        self.stream.get()
    }

    /// The socket, between the take-over and the let-go.
    fn socket(&self, state: &SinkState) -> Option<&TcpStream> {
        match state.life.phase() {
            Phase::Holding | Phase::Detached => None,
            Phase::CaughtUp | Phase::Behind { .. } | Phase::Gathering { .. } | Phase::InFlight => {
                self.stream.get()
            }
        }
    }

    /// The status, registering `waker` to be woken on the next transition.
    pub(crate) fn status(&self, waker: &Waker) -> Status {
        let mut state = self.state.lock();
        if !state.waker.as_ref().is_some_and(|w| w.will_wake(waker)) {
            state.waker = Some(waker.clone());
        }
        Status {
            behind_since: state.life.behind_since(),
            end: state.life.end(),
        }
    }

    /// Since when the socket last took bytes while behind (`None` when
    /// caught up).
    pub(crate) fn behind_since(&self) -> Option<Instant> {
        self.state.lock().life.behind_since()
    }

    /// Writes what is pending. `Ok(true)` when nothing is left.
    pub(crate) fn flush(&self) -> io::Result<bool> {
        let mut state = self.state.lock();
        let stream = self.socket(&state).filter(|_| state.life.flushable());
        let Some(stream) = stream else {
            return Ok(state.pending.is_empty());
        };
        let mut sends = 0;
        let result = flush(&mut state, stream, &mut sends);
        record_sends(&state, sends, None);
        if result.is_err() {
            state.life.finish(CloseReason::WriteFailed);
        }
        result
    }

    /// The gathering window the flusher holds for this sink closed: what
    /// was gathered goes out in one vectored write (unless a later window
    /// opened, or the stream's end flushed it). What the socket does not take
    /// the task flushes on write-readiness.
    pub(crate) fn close_window(&self) {
        let mut state = self.state.lock();
        let due = state
            .life
            .gathering_until()
            .is_some_and(|until| until <= Instant::now());
        if !due {
            return;
        }
        match self.close_window_now(&mut state, None) {
            Ok(true) => {}
            Ok(false) => wake(state),
            Err(_) => {
                state.life.finish(CloseReason::WriteFailed);
                wake(state);
            }
        }
    }

    /// Closes the gathering window: the sink is behind, and flushes at once.
    /// `Ok(true)` when everything was taken (caught up again).
    fn close_window_now(
        &self,
        state: &mut SinkState,
        tally: Option<&mut DeliveryTally<'_>>,
    ) -> io::Result<bool> {
        state.life.fell_behind(Instant::now());
        let Some(stream) = self.socket(state) else {
            return Ok(state.pending.is_empty());
        };
        let mut sends = 0;
        let result = flush(state, stream, &mut sends);
        record_sends(state, sends, tally);
        result
    }

    /// Whether the client holds more unacknowledged bytes than the last
    /// write (its socket's `SIOCOUTQ`): later frames should wait for it.
    fn behind_its_socket(state: &SinkState, stream: &TcpStream) -> bool {
        unacknowledged(stream).is_some_and(|bytes| bytes > state.last_sent)
    }

    /// Marks the stream ended from the subscriber's side: no more offers are
    /// taken; what is pending stays, for the response's end. A send in
    /// flight still lands: wait for [`landed`](Self::landed) before
    /// writing or letting go of the socket.
    pub(crate) fn end(&self, reason: CloseReason) {
        self.state.lock().life.finish(reason);
    }

    /// Whether no gathered send is in flight (a round is making it: at most
    /// one batch's system call away). If one is, `waker` is woken when it
    /// lands.
    pub(crate) fn landed(&self, waker: &Waker) -> bool {
        let mut state = self.state.lock();
        if !state.life.in_flight() {
            return true;
        }
        if !state.waker.as_ref().is_some_and(|w| w.will_wake(waker)) {
            state.waker = Some(waker.clone());
        }
        false
    }

    /// Lets go of the socket (after [`end`](Self::end) and
    /// [`landed`](Self::landed)); returns (events, bytes) written.
    pub(crate) fn detach(&self) -> (u64, u64) {
        let mut state = self.state.lock();
        state.life.detach();
        state.recorder = None;
        state.pending.clear();
        state.live_bytes = 0;
        (state.events, state.bytes)
    }

    /// What became of a send a round gathered (see `round`): counted in
    /// `tally` when the socket took it whole, queued when it took part or
    /// nothing, the sink failed when the socket is gone.
    pub(crate) fn sent(
        &self,
        delivery: &Delivery,
        wire: &Bytes,
        outcome: SendOutcome,
        tally: &mut DeliveryTally<'_>,
    ) {
        let mut state = self.state.lock();
        let waited_for = state.life.land();
        let result = match outcome {
            SendOutcome::Made(result) => result.and_then(|n| match n {
                0 => Err(io::ErrorKind::WriteZero.into()),
                n => Ok(n),
            }),
            // Not made: make it now, one `send`.
            SendOutcome::NotMade => match self.socket(&state) {
                Some(stream) => send(stream, wire),
                None => Err(io::ErrorKind::NotConnected.into()),
            },
            // It may still be made: nothing can follow it safely.
            SendOutcome::Unknown => Err(io::ErrorKind::Other.into()),
        };
        let live = delivery.kind != DeliveryKind::Replay;
        let sent = Sent {
            delivery,
            wire,
            live,
        };
        let _ = took(state, &sent, result, Some(tally), waited_for);
    }

    /// A gathered send whose round failed before settling it: the sink
    /// fails (its stream ends; the client reconnects and is replayed).
    pub(crate) fn abandon(&self) {
        let mut state = self.state.lock();
        state.life.land();
        state.life.finish(CloseReason::WriteFailed);
        wake(state);
    }

    /// Events and payload bytes written so far.
    pub fn written(&self) -> (u64, u64) {
        let state = self.state.lock();
        (state.events, state.bytes)
    }
}

impl SubscriberSink for DirectSink {
    /// Sent at once when caught up (or gathered with the round's other
    /// sends), else queued. What is written whole now is counted in the
    /// round's tally.
    fn offer(&self, delivery: &Delivery, round: &mut OfferRound<'_>) -> Offer {
        let mut state = self.state.lock();
        if !state.life.takes_offers() {
            return Offer::Closed;
        }
        let len = delivery.bytes.len();
        let live = delivery.kind != DeliveryKind::Replay;
        if state.life.gathering_until().is_some() {
            // The frame joins the gathered ones, unless it would put them
            // over the bound: then the window closes now (gathering never
            // makes a slow client of one whose socket takes everything),
            // and this frame is offered as to any sink. (Whether the client
            // caught up is not asked again: a receiver acknowledges data it
            // has not read yet on its delayed-ACK timer, so the answer would
            // close windows early for clients that are still behind.)
            let over = live && state.live_bytes + len > self.settings.client_queue;
            if !over {
                push(&mut state, delivery, chunk_of(&delivery.bytes), live);
                return Offer::Accepted;
            }
            match self.close_window_now(&mut state, Some(round.tally())) {
                Ok(true) => {}
                Ok(false) => {
                    // Behind now: the task flushes on write-readiness (woken
                    // under the lock; it takes the lock only when it runs).
                    if let Some(waker) = &state.waker {
                        waker.wake_by_ref();
                    }
                }
                Err(_) => {
                    state.life.finish(CloseReason::WriteFailed);
                    wake(state);
                    return Offer::Closed;
                }
            }
        }
        // Over the bound only while still behind on earlier live bytes: a
        // subscriber with nothing pending takes any one delivery (the frames
        // of one upstream read may add up to more than `client_queue`).
        if live && state.live_bytes > 0 && state.live_bytes + len > self.settings.client_queue {
            if let Some(conflation) = &self.settings.conflation {
                push(&mut state, delivery, chunk_of(&delivery.bytes), live);
                if coalesce(&mut state, conflation) <= self.settings.client_queue {
                    return Offer::Accepted;
                }
            }
            state.life.finish(CloseReason::SlowClient);
            state.pending.clear();
            state.live_bytes = 0;
            wake(state);
            return Offer::Full;
        }
        // A round offers a delivery once, and its send lands before the
        // next round: nothing is in flight at an offer. (Were it, the offer
        // would queue behind it, and the landing hand it to the task.)
        debug_assert!(!state.life.in_flight(), "offered while a send is in flight");
        let wire = chunk_of(&delivery.bytes);
        let stream = self.socket(&state).filter(|_| state.life.caught_up());
        let Some(stream) = stream else {
            // Holding (not attached yet) or behind: queue after the rest.
            push(&mut state, delivery, wire, live);
            return Offer::Accepted;
        };
        if let Some(window) = self.settings.coalescing.window() {
            // Only a frame that follows the last write within the window can
            // share a send with it or its successors soon enough; the socket
            // is asked (one system call) only then. Frames further apart go
            // out at once, at no cost.
            let soon = state
                .last_write_at
                .is_some_and(|at| delivery.received.saturating_duration_since(at) < window);
            if soon && Self::behind_its_socket(&state, stream) && self.settings.coalescing.ready() {
                let until = Instant::now() + window;
                push(&mut state, delivery, wire, live);
                state.life.gather(until);
                drop(state);
                self.settings.coalescing.close_at(until, self.me.clone());
                return Offer::Accepted;
            }
        }
        if self.settings.batched_sends && round::ready() {
            if let Some(me) = self.me.upgrade() {
                state.life.fly();
                drop(state);
                round::gather(me, delivery, wire, round);
                return Offer::Accepted;
            }
        }
        let result = send(stream, &wire);
        let sent = Sent {
            delivery,
            wire: &wire,
            live,
        };
        took(state, &sent, result, Some(round.tally()), false)
    }

    fn close(&self, reason: CloseReason) {
        let mut state = self.state.lock();
        if state.life.finish(reason) && reason == CloseReason::SlowClient {
            state.pending.clear();
            state.live_bytes = 0;
        }
        wake(state);
    }
}

/// A delivery sent (or gathered) while caught up: its chunk, and whether
/// it counts against the queue bound (live, not replayed).
struct Sent<'a> {
    delivery: &'a Delivery,
    wire: &'a Bytes,
    live: bool,
}

/// Settles a send of `delivery`'s chunk made while caught up: counted when
/// whole, the rest pending in front (and the task woken to flush it on
/// write-readiness), the stream failed on an error. `wake_anyway`: the
/// stream's end waits for this send (it was in flight).
fn took(
    mut state: parking_lot::MutexGuard<'_, SinkState>,
    sent: &Sent<'_>,
    result: io::Result<usize>,
    mut tally: Option<&mut DeliveryTally<'_>>,
    wake_anyway: bool,
) -> Offer {
    let Sent {
        delivery,
        wire,
        live,
    } = *sent;
    let written = match result {
        Ok(n) => n,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
        Err(_) => {
            state.life.finish(CloseReason::WriteFailed);
            wake(state);
            return Offer::Closed;
        }
    };
    if written > 0 {
        state.last_sent = written;
        state.last_write_at = Some(delivery.received);
        record_sends(&state, 1, tally.as_deref_mut());
    }
    if written == wire.len() {
        record(&mut state, delivery, tally);
        if state.pending.is_empty() {
            if wake_anyway {
                wake(state);
            }
            return Offer::Accepted;
        }
        // Offers queued while it was in flight: the task flushes them.
        state.life.fell_behind(Instant::now());
        wake(state);
        return Offer::Accepted;
    }
    if live {
        state.live_bytes += delivery.bytes.len();
    }
    state.pending.push_front(Held {
        delivery: delivery.clone(),
        wire: wire.clone(),
        counted: true,
        skipped: 0,
    });
    state.front_written = written;
    state.life.fell_behind(Instant::now());
    wake(state);
    Offer::Accepted
}

/// Wakes the subscriber's task (after letting go of the lock).
fn wake(state: parking_lot::MutexGuard<'_, SinkState>) {
    let waker = state.waker.clone();
    drop(state);
    if let Some(waker) = waker {
        waker.wake();
    }
}

/// Queues a delivery and its chunk (the clones share the bytes).
fn push(state: &mut SinkState, delivery: &Delivery, wire: Bytes, live: bool) {
    if live {
        state.live_bytes += delivery.bytes.len();
    }
    state.pending.push_back(Held {
        delivery: delivery.clone(),
        wire,
        counted: true,
        skipped: 0,
    });
}

/// Coalesces what is pending behind the front (which may be partly
/// written), with one note of the skipped events in front of the rest;
/// returns the live bytes left. The sink is behind (it has pending bytes),
/// so its task flushes the rest on write-readiness as before.
fn coalesce(state: &mut SinkState, conflation: &Conflation) -> usize {
    let from = usize::from(state.front_written > 0);
    let mut skipped = 0;
    if state.pending.get(from).is_some_and(|held| held.skipped > 0) {
        // The previous note, not written yet: replaced by the new total.
        skipped = state.pending.remove(from).map_or(0, |held| held.skipped);
    }
    let make = |delivery: Delivery| Held {
        wire: chunk::chunk(&delivery.bytes),
        delivery,
        counted: true,
        skipped: 0,
    };
    skipped += conflation.apply(&mut state.pending, from, |held| &held.delivery, make);
    if skipped > 0 {
        let received = state
            .pending
            .get(from)
            .map_or_else(Instant::now, |held| held.delivery.received);
        let delivery = Delivery::new(skipped_note(skipped), DeliveryKind::Advice, received);
        let wire = chunk::chunk(&delivery.bytes);
        state.pending.insert(
            from,
            Held {
                delivery,
                wire,
                counted: true,
                skipped,
            },
        );
    }
    state.live_bytes = state
        .pending
        .iter()
        .filter(|held| held.delivery.kind != DeliveryKind::Replay && held.counted)
        .map(|held| held.delivery.bytes.len())
        .sum();
    state.live_bytes
}

/// Counts `sends` writes to the socket: in the round's tally when there is
/// one, else through the membership's recorder.
fn record_sends(state: &SinkState, sends: u64, tally: Option<&mut DeliveryTally<'_>>) {
    if sends == 0 {
        return;
    }
    match (tally, &state.recorder) {
        (Some(tally), _) => tally.sent(sends),
        (None, Some(recorder)) => recorder.record_sends(sends),
        (None, None) => {}
    }
}

/// Bytes the socket holds that the client has not acknowledged (sent or
/// not), by `ioctl(SIOCOUTQ)`; `None` when the kernel does not say.
fn unacknowledged(stream: &TcpStream) -> Option<usize> {
    use std::os::fd::AsRawFd;
    let mut bytes: libc::c_int = 0;
    // SAFETY: `TIOCOUTQ` (= `SIOCOUTQ` on a socket) writes one `c_int`
    // through the pointer, which points at `bytes`, alive for the call;
    // the descriptor is the stream's own, open while it is borrowed.
    #[allow(unsafe_code)]
    let answered = unsafe { libc::ioctl(stream.as_raw_fd(), libc::TIOCOUTQ, &mut bytes) };
    if answered != 0 {
        return None;
    }
    usize::try_from(bytes).ok()
}

/// Counts a delivery the socket took whole: in the sink (for the access
/// log) and in the metrics, through the round's tally when there is one.
fn record(state: &mut SinkState, delivery: &Delivery, tally: Option<&mut DeliveryTally<'_>>) {
    state.events += delivery.events();
    state.bytes += delivery.bytes.len() as u64;
    match (tally, &state.recorder) {
        (Some(tally), _) => tally.written(delivery),
        (None, Some(recorder)) => recorder.record_written(delivery),
        (None, None) => {}
    }
}

/// Writes pending deliveries (of a sink that is behind, or whose gathering
/// window closed), several per vectored write (each counted in `sends`),
/// until the socket would block (`Ok(false)`) or nothing is left
/// (`Ok(true)`, caught up).
fn flush(state: &mut SinkState, stream: &TcpStream, sends: &mut u64) -> io::Result<bool> {
    while !state.pending.is_empty() {
        let mut slices: Vec<IoSlice<'_>> = state
            .pending
            .iter()
            .take(MAX_BATCH)
            .map(|held| IoSlice::new(&held.wire))
            .collect();
        let mut view: &mut [IoSlice<'_>] = &mut slices;
        IoSlice::advance_slices(&mut view, state.front_written);
        let written = match write_vectored(stream, view) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) => return Err(e),
        };
        drop(slices);
        *sends += 1;
        state.last_sent = written;
        state.last_write_at = Some(Instant::now());
        consume(state, written);
        // Progress: the write timeout counts from the last byte taken.
        state.life.fell_behind(Instant::now());
    }
    state.life.caught_up_again();
    // Caught up: let go of the queue's buffer (most subscribers never need
    // one again).
    state.pending = VecDeque::new();
    Ok(true)
}

/// Pops (and counts) what a write of `written` bytes completed.
fn consume(state: &mut SinkState, written: usize) {
    let mut n = state.front_written + written;
    state.front_written = 0;
    while let Some(front) = state.pending.front() {
        let len = front.wire.len();
        if n < len {
            state.front_written = n;
            return;
        }
        n -= len;
        if let Some(held) = state.pending.pop_front() {
            if held.delivery.kind != DeliveryKind::Replay && held.counted {
                state.live_bytes = state.live_bytes.saturating_sub(held.delivery.bytes.len());
            }
            if held.counted {
                record(state, &held.delivery, None);
            }
        }
    }
}

/// One non-blocking `send` of a whole buffer; zero bytes taken is an error.
/// (`send` skips the VFS layers of `write`/`writev`.)
///
/// It goes to the socket without asking tokio's readiness first (a cache
/// miss per subscriber on a path that runs for every subscriber of every
/// delivery): a socket that would block answers `WouldBlock` either way.
/// The readiness tokio keeps may then still say writable; the subscriber's
/// task then finds out with one [`flush`], whose `try_write_vectored`
/// clears it, before waiting for the next write-readiness.
fn send(stream: &TcpStream, buf: &[u8]) -> io::Result<usize> {
    loop {
        match SockRef::from(stream).send(buf) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

/// One non-blocking vectored write; a write of zero bytes is an error.
fn write_vectored(stream: &TcpStream, slices: &[IoSlice<'_>]) -> io::Result<usize> {
    loop {
        match stream.try_write_vectored(slices) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    //! How a gathered send is settled when the ring did not make it: the
    //! paths a ring failure takes, which a healthy kernel never shows.

    use std::time::Duration;

    use sse_gateway_hub::testing::TestFeed;
    use sse_gateway_hub::{HubLimits, Membership, SubscribeRequest, TopicHub, TopicSettings};
    use sse_gateway_metrics::GatewayMetrics;
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;
    use tokio::runtime::Handle;

    use super::*;

    /// An attached sink of topic `t` on route `r`, and the client's side,
    /// with the opening comment already read.
    async fn attached(hub: &TopicHub, feed: &TestFeed) -> (Arc<DirectSink>, Membership, TcpStream) {
        let sink = DirectSink::new(Arc::new(DirectSettings {
            client_queue: 1 << 20,
            write_timeout: Duration::from_secs(10),
            drain: Arc::new(Drain::new(Duration::from_secs(1))),
            batched_sends: true,
            coalescing: Coalescing::new(Duration::ZERO),
            conflation: None,
        }));
        let settings = Arc::new(TopicSettings {
            heartbeat: Duration::ZERO,
            client_retry: Duration::ZERO,
            ..TopicSettings::default()
        });
        let request = SubscribeRequest {
            route: "r",
            topic: "t",
            settings: &settings,
            last_event_id: None,
            may_open: None,
        };
        let membership = hub.subscribe(request, sink.clone(), feed.open()).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        sink.attach(server, membership.recorder());
        assert_eq!(read(&mut client, 7).await, b"2\r\n:\n\r\n");
        (sink, membership, client)
    }

    async fn read(client: &mut TcpStream, len: usize) -> Vec<u8> {
        let mut buf = vec![0; len];
        tokio::time::timeout(Duration::from_secs(10), client.read_exact(&mut buf))
            .await
            .expect("bytes in time")
            .unwrap();
        buf
    }

    /// A waker that notes it was woken.
    #[derive(Default)]
    struct Woken(std::sync::atomic::AtomicBool);

    impl std::task::Wake for Woken {
        fn wake(self: Arc<Self>) {
            self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    fn event() -> Delivery {
        Delivery::new(
            Bytes::from_static(b"data: x\n\n"),
            DeliveryKind::Event,
            Instant::now(),
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_send_the_ring_did_not_make_is_sent_and_counted_once() {
        let metrics = GatewayMetrics::new(10).unwrap();
        let hub = TopicHub::new(HubLimits::default(), metrics.clone(), Handle::current());
        let feed = TestFeed::default();
        let (sink, membership, mut client) = attached(&hub, &feed).await;
        let route = metrics.route("r");
        let delivery = event();

        assert!(sink.state.lock().life.fly());
        let mut round = OfferRound::new(&route);
        let wire = chunk_of(&delivery.bytes);
        sink.sent(&delivery, &wire, SendOutcome::NotMade, round.tally());
        drop(round);
        assert!(sink.state.lock().life.caught_up());
        assert_eq!(read(&mut client, 14).await, b"9\r\ndata: x\n\n\r\n");
        assert_eq!(sink.written(), (1, 9));
        drop(membership);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_send_of_unknown_fate_fails_the_sink_and_writes_nothing() {
        let metrics = GatewayMetrics::new(10).unwrap();
        let hub = TopicHub::new(HubLimits::default(), metrics.clone(), Handle::current());
        let feed = TestFeed::default();
        let (sink, membership, _client) = attached(&hub, &feed).await;
        let route = metrics.route("r");

        assert!(sink.state.lock().life.fly());
        let mut round = OfferRound::new(&route);
        let delivery = event();
        let wire = chunk_of(&delivery.bytes);
        sink.sent(&delivery, &wire, SendOutcome::Unknown, round.tally());
        drop(round);
        let state = sink.state.lock();
        assert_eq!(state.life.end(), Some(CloseReason::WriteFailed));
        assert!(!state.life.in_flight());
        assert_eq!((state.events, state.bytes), (0, 0));
        drop(state);
        assert_eq!(
            sink.offer(&event(), &mut OfferRound::uncounted()),
            Offer::Closed
        );
        drop(membership);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_abandoned_send_lands_and_wakes_the_ending_task() {
        let metrics = GatewayMetrics::new(10).unwrap();
        let hub = TopicHub::new(HubLimits::default(), metrics.clone(), Handle::current());
        let feed = TestFeed::default();
        let (sink, membership, _client) = attached(&hub, &feed).await;

        assert!(sink.state.lock().life.fly());
        // The task ends the stream while the send is in flight: the end is
        // recorded at once, and the task waits for the landing.
        sink.end(CloseReason::ClientClosed);
        let woken = Arc::new(Woken::default());
        let waker = Waker::from(woken.clone());
        assert!(!sink.landed(&waker), "the send is still in flight");
        sink.abandon();
        assert!(
            woken.0.load(std::sync::atomic::Ordering::SeqCst),
            "the landing wakes the waiting task"
        );
        assert!(sink.landed(&waker));
        let state = sink.state.lock();
        assert!(!state.life.in_flight());
        assert_eq!(state.life.end(), Some(CloseReason::ClientClosed));
        drop(state);
        drop(membership);
    }
}
