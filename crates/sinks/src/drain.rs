//! [`Drain`]: the gateway's drain, as every client stream sees it.
//!
//! One value owns it: whether it started, the signal streams wait on, and
//! each stream's last frame. The drain, in order: [`Drain::start`] (the
//! first call wins), `/readyz` turns 503, the hub refuses new subscribers and
//! closes every topic (`TopicHub::shutdown`, each stream with
//! [`CloseReason::Shutdown`](sse_gateway_hub::CloseReason::Shutdown)), and
//! each stream, on either path, ends with its own [`Drain::final_frame`]: a
//! `retry:` jittered per client, so that the reconnects spread out instead of
//! arriving as one herd.

use std::time::Duration;

use bytes::Bytes;
use sse_gateway_codec::encode_retry;
use tokio::sync::watch;

/// The drain: started once, seen by every stream.
#[derive(Debug)]
pub struct Drain {
    /// The `retry` around which each stream's final advice is jittered.
    retry: Duration,
    started: watch::Sender<bool>,
}

// === impl Drain ===

impl Drain {
    /// A drain not started yet, whose streams will advise `retry`.
    pub fn new(retry: Duration) -> Self {
        Self {
            retry,
            started: watch::Sender::new(false),
        }
    }

    /// Starts the drain. True for the call that started it (later calls
    /// change nothing).
    pub fn start(&self) -> bool {
        !self.started.send_replace(true)
    }

    /// Whether the drain has started.
    pub fn is_draining(&self) -> bool {
        *self.started.borrow()
    }

    /// The `retry` the drain advises (before jitter).
    pub fn retry(&self) -> Duration {
        self.retry
    }

    /// A receiver that turns `true` when the drain starts (for streams that
    /// wait on something else too).
    pub fn signal(&self) -> watch::Receiver<bool> {
        self.started.subscribe()
    }

    /// A drained stream's last frame: `retry:` jittered around the drain's
    /// `retry`, made per stream. `None` while not draining.
    pub fn final_frame(&self) -> Option<Bytes> {
        self.is_draining().then(|| {
            let ms = sse_gateway_hub::jittered(self.retry).as_millis();
            encode_retry(u64::try_from(ms).unwrap_or(u64::MAX))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_once_and_then_advises_a_jittered_retry() {
        let drain = Drain::new(Duration::from_secs(5));
        let mut signal = drain.signal();
        assert!(!drain.is_draining());
        assert_eq!(drain.final_frame(), None);
        assert!(drain.start());
        assert!(!drain.start(), "the second call changes nothing");
        assert!(drain.is_draining());
        assert!(signal.has_changed().unwrap() && *signal.borrow_and_update());
        for _ in 0..200 {
            let frame = drain.final_frame().unwrap();
            let text = std::str::from_utf8(&frame).unwrap();
            let ms: u64 = text
                .strip_prefix("retry: ")
                .and_then(|rest| rest.strip_suffix("\n\n"))
                .unwrap()
                .parse()
                .unwrap();
            assert!((4000..=6000).contains(&ms), "{text:?}");
        }
    }
}
