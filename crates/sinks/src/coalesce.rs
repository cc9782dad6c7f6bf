//! [`Coalescing`]: fewer sends than deliveries on the direct path, without
//! a latency floor.
//!
//! A frame goes out at once to a client that has acknowledged what it was
//! sent. A client whose socket still holds more unacknowledged bytes than
//! the last send (a receiver may delay the ACK of the last segment it read,
//! so that much is normal) has not read what it was sent: the frames that
//! arrive for it during the next `coalesce_window` are gathered in its
//! pending queue (the shared `Bytes`, no copies) and go out in one vectored
//! write when the window closes (earlier only when the next frame would put
//! them over `client_queue`). The sends the kernel would make for it one by
//! one (≈ 3.7 µs each on loopback) are made once. The socket is asked
//! (`ioctl(SIOCOUTQ)`, one system call) only for a frame that follows the
//! last write to it within the window: frames further apart could not share
//! a send, and go out at no extra cost.
//!
//! Acknowledgements say what the client's kernel received, not what the
//! client read: a receiver that reads nothing still acknowledges on its
//! delayed-ACK timer (every few tens of milliseconds). So a client counts
//! as behind only between such acknowledgements, and a window, once open,
//! is not closed early because the socket looks caught up.
//!
//! The windows close here: one small task per route holds the gathering
//! sinks in the order their windows close (the window is the route's, so
//! the order is that of their start) and flushes each when its window
//! closes. It is woken by its timer, or when a window opens while it had
//! none: never once per frame or per sink.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::sink::DirectSink;

/// The gathering windows of one route's direct subscribers (see the module
/// docs). Shared by the route's [`DirectSettings`](crate::DirectSettings).
#[derive(Debug)]
pub struct Coalescing {
    window: Duration,
    /// Gathering sinks, in the order their windows close.
    closing: Mutex<VecDeque<(Instant, Weak<DirectSink>)>>,
    /// Wakes the flusher when a window opens while it has none.
    opened: Notify,
    /// Whether the flusher was spawned (on the first window, on the
    /// runtime that offers the frames).
    started: AtomicBool,
}

// === impl Coalescing ===

impl Coalescing {
    /// Gathering windows of `window`; zero turns gathering off (every frame
    /// is sent when it arrives).
    pub fn new(window: Duration) -> Arc<Self> {
        Arc::new(Self {
            window,
            closing: Mutex::new(VecDeque::new()),
            opened: Notify::new(),
            started: AtomicBool::new(false),
        })
    }

    /// The window; `None` when gathering is off.
    pub(crate) fn window(&self) -> Option<Duration> {
        (!self.window.is_zero()).then_some(self.window)
    }

    /// Whether windows can be closed: the flusher runs, or was just spawned
    /// on the current runtime. False only off a runtime (then nothing is
    /// gathered).
    pub(crate) fn ready(self: &Arc<Self>) -> bool {
        self.started.load(Ordering::Acquire) || self.start()
    }

    /// Closes `sink`'s window at `until` (after [`ready`](Self::ready)).
    pub(crate) fn close_at(&self, until: Instant, sink: Weak<DirectSink>) {
        let was_empty = {
            let mut closing = self.closing.lock();
            let was_empty = closing.is_empty();
            closing.push_back((until, sink));
            was_empty
        };
        if was_empty {
            // A permit is kept when the flusher is not waiting yet: no
            // window is missed between its last look and its wait.
            self.opened.notify_one();
        }
    }

    /// Spawns the flusher on the current runtime, once.
    fn start(self: &Arc<Self>) -> bool {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return false;
        };
        if !self.started.swap(true, Ordering::AcqRel) {
            runtime.spawn(flusher(Arc::downgrade(self)));
        }
        true
    }
}

/// How long the flusher waits without windows before it checks whether its
/// route's settings are still there.
const IDLE_CHECK: Duration = Duration::from_secs(1);

/// Flushes each gathering sink when its window closes; ends with the
/// route's settings.
async fn flusher(coalescing: Weak<Coalescing>) {
    let mut due = Vec::new();
    loop {
        let next = {
            let Some(coalescing) = coalescing.upgrade() else {
                return;
            };
            let now = Instant::now();
            let mut closing = coalescing.closing.lock();
            while let Some((until, _)) = closing.front() {
                if *until > now {
                    break;
                }
                if let Some((_, sink)) = closing.pop_front() {
                    due.push(sink);
                }
            }
            closing.front().map(|(until, _)| *until)
        };
        for sink in due.drain(..) {
            if let Some(sink) = sink.upgrade() {
                sink.close_window();
            }
        }
        match next {
            Some(until) => tokio::time::sleep_until(until.into()).await,
            None => {
                let Some(coalescing) = coalescing.upgrade() else {
                    return;
                };
                // Woken when a window opens; at the latest within a second,
                // to end once the route's settings are gone (this task
                // holds them only while it waits).
                let _ = tokio::time::timeout(IDLE_CHECK, coalescing.opened.notified()).await;
            }
        }
    }
}
