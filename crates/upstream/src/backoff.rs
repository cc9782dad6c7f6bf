//! [`Backoff`]: exponential reconnect delays with full jitter.
//!
//! Attempt `n` (from 0) waits a uniformly random delay in `[0, cap_n]`, where
//! `cap_0 = initial` and `cap_{n+1} = min(2 × cap_n, max)` ("full jitter":
//! reconnecting topics spread out instead of arriving as one herd). A stream
//! that stayed up a while [`resets`](Backoff::reset) the cap to `initial`. The
//! feed never waits less than the upstream's last `retry:` (which it clamps
//! to `max`; [`Backoff::next_delay_at_least`]).

use std::time::Duration;

use thiserror::Error;

/// Smallest step the cap grows by, so that `initial = 0` still grows.
const MIN_STEP: Duration = Duration::from_millis(1);

/// Reconnect delays for one feed. Validated at construction.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    /// Upper bound of the next delay.
    cap: Duration,
    rng: fastrand::Rng,
}

/// Why [`Backoff::try_new`] refused its bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum BackoffError {
    /// `max` is zero: every reconnect would be immediate.
    #[error("upstream_backoff.max must be greater than zero")]
    ZeroMax,
    /// `initial` is larger than `max`.
    #[error(
        "upstream_backoff.initial ({initial:?}) is larger than upstream_backoff.max ({max:?})"
    )]
    InitialAboveMax {
        /// The initial cap given.
        initial: Duration,
        /// The largest cap given.
        max: Duration,
    },
}

// === impl Backoff ===

impl Backoff {
    /// Delays starting under `initial` and never above `max`.
    pub fn try_new(initial: Duration, max: Duration) -> Result<Self, BackoffError> {
        Self::with_rng(initial, max, fastrand::Rng::new())
    }

    /// Like [`Backoff::try_new`], with a given random source (for tests).
    pub fn with_rng(
        initial: Duration,
        max: Duration,
        rng: fastrand::Rng,
    ) -> Result<Self, BackoffError> {
        if max.is_zero() {
            return Err(BackoffError::ZeroMax);
        }
        if initial > max {
            return Err(BackoffError::InitialAboveMax { initial, max });
        }
        Ok(Self {
            initial,
            max,
            cap: initial,
            rng,
        })
    }

    /// The bound of the first delay.
    pub fn initial(&self) -> Duration {
        self.initial
    }

    /// The largest bound of any delay.
    pub fn max(&self) -> Duration {
        self.max
    }

    /// The bound of the next delay: it lies in `[0, cap]`.
    pub fn cap(&self) -> Duration {
        self.cap
    }

    /// The next delay, uniformly random in `[0, cap]`; then the cap doubles,
    /// up to `max`.
    pub fn next_delay(&mut self) -> Duration {
        let cap_nanos = u64::try_from(self.cap.as_nanos()).unwrap_or(u64::MAX);
        let delay = Duration::from_nanos(self.rng.u64(0..=cap_nanos));
        self.cap = self.cap.saturating_mul(2).max(MIN_STEP).min(self.max);
        delay
    }

    /// [`Backoff::next_delay`], but never less than `floor` (the upstream's
    /// last `retry:`, which the feed clamps to `max` before it gets here).
    pub fn next_delay_at_least(&mut self, floor: Duration) -> Duration {
        self.next_delay().max(floor)
    }

    /// Jumps to the largest cap (after an error that retrying soon cannot fix).
    pub fn saturate(&mut self) {
        self.cap = self.max;
    }

    /// Back to `initial`, after a stream that stayed up a while.
    pub fn reset(&mut self) {
        self.cap = self.initial;
    }
}

impl Default for Backoff {
    /// The configuration reference's defaults: 250 ms up to 30 s.
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(250),
            max: Duration::from_secs(30),
            cap: Duration::from_millis(250),
            rng: fastrand::Rng::new(),
        }
    }
}

#[cfg(test)]
mod tests;
