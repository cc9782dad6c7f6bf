//! Giving freed heap memory back to the operating system.
//!
//! Every new client passes through a pingora session (tens of KiB for the
//! request phase) before its socket moves to the direct path, where it costs
//! about 1 KiB. glibc's allocator keeps the freed session memory in holes
//! between long-lived allocations and does not return it by itself: measured
//! with 10,000 idle direct subscribers, RSS stayed at 6–8 KiB per subscriber
//! until `malloc_trim(0)` brought it to about 1 KiB (benches/README.md).
//!
//! So the gateway trims after connection bursts: new streams are counted
//! ([`note_new_stream`]); once a second a task looks at the count, and trims
//! when streams arrived but none in the last second (the burst is over), or
//! every [`BUSY_TRIM_INTERVAL`] while they keep arriving. An idle gateway
//! never trims.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How often the trim task looks at the stream count.
const CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// While streams keep arriving, trim at most this often.
const BUSY_TRIM_INTERVAL: Duration = Duration::from_secs(10);

/// Streams opened since the process started.
static NEW_STREAMS: AtomicU64 = AtomicU64::new(0);

/// Counts a new client stream (one relaxed atomic add).
pub(crate) fn note_new_stream() {
    NEW_STREAMS.fetch_add(1, Ordering::Relaxed);
}

/// Returns free heap pages to the OS; returns how long it took.
pub(crate) fn trim() -> Duration {
    let started = Instant::now();
    release_free_pages();
    started.elapsed()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn release_free_pages() {
    // SAFETY: `malloc_trim` is glibc's documented, thread-safe call to
    // release free memory at the top of the heap and in free pages inside
    // every arena (glibc ≥ 2.8); it takes no pointers and has no
    // preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release_free_pages() {}

/// What the trim task decides on each check.
#[derive(Debug, Default)]
struct TrimPolicy {
    seen: u64,
    /// Streams arrived since the last trim.
    dirty: bool,
    last_trim: Option<Instant>,
}

impl TrimPolicy {
    /// Whether to trim now, given the stream count.
    fn check(&mut self, streams: u64, now: Instant) -> bool {
        let arriving = streams != self.seen;
        self.seen = streams;
        self.dirty |= arriving;
        let busy_due = self
            .last_trim
            .is_none_or(|at| now.duration_since(at) >= BUSY_TRIM_INTERVAL);
        if self.dirty && (!arriving || busy_due) {
            self.dirty = false;
            self.last_trim = Some(now);
            return true;
        }
        false
    }
}

/// Trims after connection bursts until the task is dropped.
pub(crate) async fn trim_after_bursts() {
    let mut ticks = tokio::time::interval(CHECK_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut policy = TrimPolicy::default();
    loop {
        ticks.tick().await;
        if policy.check(NEW_STREAMS.load(Ordering::Relaxed), Instant::now()) {
            let took = tokio::task::spawn_blocking(trim).await.unwrap_or_default();
            tracing::debug!(
                took_us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
                "heap trimmed"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_once_a_burst_is_over_and_never_when_idle() {
        let mut policy = TrimPolicy::default();
        let t0 = Instant::now();
        let s = |n| t0 + Duration::from_secs(n);
        assert!(!policy.check(0, s(1)), "idle: no trim");
        assert!(policy.check(100, s(2)), "first burst: nothing trimmed yet");
        assert!(!policy.check(200, s(3)), "still arriving, trimmed 1 s ago");
        assert!(policy.check(200, s(4)), "the burst is over");
        assert!(!policy.check(200, s(5)), "idle again: no trim");
        for n in 6..16 {
            // Continuous arrivals: at most one trim per busy interval.
            let trimmed = policy.check(200 + n, s(n));
            assert_eq!(trimmed, n == 14, "second {n}");
        }
    }

    #[test]
    fn trimming_returns() {
        let took = trim();
        assert!(took < Duration::from_secs(10));
    }
}
