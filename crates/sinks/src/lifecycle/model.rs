//! Model checks of the direct sink's protocol, with loom: every
//! interleaving of the threads that touch one sink (an offer round on a
//! topic's thread, the topic closing the stream, the subscriber's task
//! ending it), each step made as the sink makes it, under one lock, with
//! the same [`Lifecycle`] transitions. What is checked:
//!
//! * one writer at a time: the round's gathered send (made without the
//!   sink's lock), the task's flush and the offering thread's own send never
//!   overlap;
//! * nobody writes to a socket that was let go of;
//! * the task lets go of the socket only after a send in flight landed, and
//!   the landing always wakes it (no lost wake-up: the task would otherwise
//!   hold the stream open for good);
//! * the stream ends once, with the first reason.

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::{Arc, Mutex, Notify};
use loom::thread;

use super::*;

/// One sink: its lifecycle (under its lock), the task's waker, and a count
/// of writers at work on its socket.
struct Sink {
    life: Mutex<Lifecycle>,
    /// The task's waker: notified on a landing the end waits for.
    task: Notify,
    writers: AtomicUsize,
}

impl Sink {
    fn attached() -> Arc<Self> {
        let mut life = Lifecycle::new();
        life.attach(true);
        Arc::new(Self {
            life: Mutex::new(life),
            task: Notify::new(),
            writers: AtomicUsize::new(0),
        })
    }

    /// A write to the socket: nobody else writes meanwhile.
    fn write(&self, life: Phase) {
        assert_ne!(life, Phase::Detached, "written after the let-go");
        assert_eq!(
            self.writers.fetch_add(1, Ordering::SeqCst),
            0,
            "two writers at once"
        );
        thread::yield_now();
        self.writers.fetch_sub(1, Ordering::SeqCst);
    }

    /// An offer round: gathers the send when caught up, makes it without
    /// the lock, then settles it (a partial send puts the sink behind).
    fn round(&self, partial: bool) {
        let gathered = {
            let mut life = self.life.lock().unwrap();
            life.takes_offers() && life.fly()
        };
        if !gathered {
            return;
        }
        self.write(Phase::InFlight);
        let mut life = self.life.lock().unwrap();
        let waited_for = life.land();
        if partial {
            life.fell_behind(Instant::now());
        }
        drop(life);
        if waited_for || partial {
            self.task.notify();
        }
    }

    /// The subscriber's task on write-readiness: flushes what is pending,
    /// when the sink is behind (under the lock, as the sink does).
    fn flush(&self) {
        let mut life = self.life.lock().unwrap();
        if life.flushable() {
            self.write(life.phase());
            life.caught_up_again();
        }
    }

    /// An offer to a client that has not acknowledged what it was sent:
    /// the frame is pending and the sink gathers; when it already gathers
    /// and the frame would put it `over` the bound, the offer closes the
    /// window and flushes (under the lock, as the sink does).
    fn gathering_offer(&self, over: bool) {
        let mut life = self.life.lock().unwrap();
        if !life.takes_offers() {
            return;
        }
        if life.gathering_until().is_some() {
            if over {
                self.close_window(&mut life);
            }
            return;
        }
        life.gather(Instant::now());
    }

    /// The route's flusher, at the window's end.
    fn flusher(&self) {
        let mut life = self.life.lock().unwrap();
        if life.gathering_until().is_some() {
            self.close_window(&mut life);
        }
    }

    /// Closes a gathering window: behind, one flush, caught up.
    fn close_window(&self, life: &mut Lifecycle) {
        life.fell_behind(Instant::now());
        self.write(life.phase());
        life.caught_up_again();
    }

    /// The subscriber's task: flushes once, ends the stream, waits for a
    /// send in flight, flushes what is pending, lets go of the socket.
    fn end_and_detach(&self, reason: CloseReason) {
        self.flush();
        let mut life = self.life.lock().unwrap();
        life.finish(reason);
        while life.in_flight() {
            drop(life);
            self.task.wait();
            life = self.life.lock().unwrap();
        }
        if life.flushable() {
            self.write(life.phase());
            life.caught_up_again();
        }
        life.detach();
        assert!(!life.in_flight() && life.end().is_some());
    }
}

#[test]
fn a_round_and_the_task_ending_the_stream() {
    loom::model(|| {
        let sink = Sink::attached();
        let round = thread::spawn({
            let sink = sink.clone();
            move || sink.round(false)
        });
        sink.end_and_detach(CloseReason::ClientClosed);
        round.join().unwrap();
        let life = sink.life.lock().unwrap();
        assert_eq!(life.phase(), Phase::Detached);
        assert_eq!(life.end(), Some(CloseReason::ClientClosed));
    });
}

#[test]
fn a_partial_send_the_task_flushes_before_the_let_go() {
    loom::model(|| {
        let sink = Sink::attached();
        let round = thread::spawn({
            let sink = sink.clone();
            move || sink.round(true)
        });
        sink.end_and_detach(CloseReason::Shutdown);
        round.join().unwrap();
        assert_eq!(sink.life.lock().unwrap().phase(), Phase::Detached);
    });
}

#[test]
fn the_topic_closing_while_a_round_and_the_task_run() {
    loom::model(|| {
        let sink = Sink::attached();
        let round = thread::spawn({
            let sink = sink.clone();
            move || sink.round(false)
        });
        let topic = thread::spawn({
            let sink = sink.clone();
            move || {
                let first = sink
                    .life
                    .lock()
                    .unwrap()
                    .finish(CloseReason::UpstreamStopped);
                sink.task.notify();
                first
            }
        });
        sink.end_and_detach(CloseReason::ClientClosed);
        round.join().unwrap();
        let topic_first = topic.join().unwrap();
        let end = sink.life.lock().unwrap().end();
        let expected = if topic_first {
            CloseReason::UpstreamStopped
        } else {
            CloseReason::ClientClosed
        };
        assert_eq!(end, Some(expected), "the first end stays");
    });
}

#[test]
fn a_gathering_window_closed_by_an_offer_the_flusher_or_the_end() {
    loom::model(|| {
        let sink = Sink::attached();
        let offers = thread::spawn({
            let sink = sink.clone();
            move || {
                sink.gathering_offer(false);
                sink.gathering_offer(true);
                sink.gathering_offer(false);
            }
        });
        let flusher = thread::spawn({
            let sink = sink.clone();
            move || sink.flusher()
        });
        sink.end_and_detach(CloseReason::ClientClosed);
        offers.join().unwrap();
        flusher.join().unwrap();
        let life = sink.life.lock().unwrap();
        assert_eq!(
            life.phase(),
            Phase::Detached,
            "nobody writes after the let-go"
        );
    });
}
