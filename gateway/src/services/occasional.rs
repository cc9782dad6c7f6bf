//! [`Occasional`]: lets a warning that a flood would repeat thousands of
//! times a second through at most once per period, with the count of the
//! ones held back.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// At most one "yes" per `every`.
#[derive(Debug)]
pub(crate) struct Occasional {
    every: Duration,
    last: Mutex<Option<Instant>>,
    held_back: AtomicU64,
}

// === impl Occasional ===

impl Occasional {
    /// At most once per `every`.
    pub(crate) fn new(every: Duration) -> Self {
        Self {
            every,
            last: Mutex::new(None),
            held_back: AtomicU64::new(0),
        }
    }

    /// `Some(held back since the last one)` when this occurrence should be
    /// logged, `None` when it is held back.
    pub(crate) fn due(&self) -> Option<u64> {
        let now = Instant::now();
        let mut last = self.last.lock();
        if last.is_some_and(|at| now.duration_since(at) < self.every) {
            self.held_back.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        *last = Some(now);
        Some(self.held_back.swap(0, Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_per_period_with_the_count_held_back() {
        let occasional = Occasional::new(Duration::from_secs(60));
        assert_eq!(occasional.due(), Some(0));
        assert_eq!(occasional.due(), None);
        assert_eq!(occasional.due(), None);
        *occasional.last.lock() = Some(Instant::now() - Duration::from_secs(61));
        assert_eq!(occasional.due(), Some(2));
    }
}
