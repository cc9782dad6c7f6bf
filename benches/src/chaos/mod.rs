//! The pieces of a chaos run (`benches/run-chaos`): what the origin emits
//! and when ([`Plan`]), when it misbehaves ([`Schedule`]), and how a
//! subscriber counts what it lost or received twice ([`IdSet`], and the
//! subscribers themselves in [`subscriber`]).
//!
//! Everything is a pure function of the run's start time, so that an origin
//! killed and started again with the same arguments emits the same events
//! at the same times, and the checker knows which events the gateway drops
//! by design (the oversize ones) without asking anyone.

pub mod ids;
mod schedule;
pub mod subscriber;

pub use ids::IdSet;
pub use schedule::{Kind, Schedule, Window};

/// Sequence numbers an origin can still replay behind the newest due one.
pub const HISTORY: u64 = 10_000;

/// What a chaos origin emits: event `n` (from 1) of every topic is due at
/// `start + n / rate`, and is oversize when `n` is a multiple of
/// `oversize_every` and falls due inside an oversize window.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The run's start, microseconds since the Unix epoch.
    pub start_micros: u64,
    /// Events per second per topic.
    pub rate: f64,
    /// Data bytes of an ordinary event.
    pub size: usize,
    /// Data bytes of an oversize event.
    pub oversize_size: usize,
    /// Every k-th event is oversize inside an oversize window (0 = never).
    pub oversize_every: u64,
    /// The misbehaviour windows, in milliseconds from the start.
    pub schedule: Schedule,
}

impl Plan {
    /// When event `n` is due, in microseconds since the Unix epoch.
    pub fn due_micros(&self, n: u64) -> u64 {
        let offset = n as f64 * 1e6 / self.rate.max(1e-6);
        self.start_micros.saturating_add(offset as u64)
    }

    /// The newest event due at `now_micros` (0 before the first).
    pub fn last_due(&self, now_micros: u64) -> u64 {
        let elapsed = now_micros.saturating_sub(self.start_micros) as f64 / 1e6;
        let mut n = (elapsed * self.rate.max(1e-6)).floor() as u64;
        // Float rounding: make `due_micros(n) <= now < due_micros(n + 1)` exact.
        while n > 0 && self.due_micros(n) > now_micros {
            n -= 1;
        }
        while self.due_micros(n + 1) <= now_micros {
            n += 1;
        }
        n
    }

    /// Milliseconds from the start to `micros` (0 before the start).
    pub fn offset_ms(&self, micros: u64) -> u64 {
        micros.saturating_sub(self.start_micros) / 1000
    }

    /// Whether event `n` is oversize (the gateway drops it by design).
    pub fn is_oversize(&self, n: u64) -> bool {
        self.oversize_every > 0
            && n.is_multiple_of(self.oversize_every)
            && self
                .schedule
                .active(Kind::Oversize, self.offset_ms(self.due_micros(n)))
    }

    /// The data of event `n` of `topic` (see [`crate::payload`]); its
    /// timestamp is the time it is due.
    pub fn data(&self, topic: &str, n: u64) -> String {
        let size = if self.is_oversize(n) {
            self.oversize_size
        } else {
            self.size
        };
        crate::payload(topic, n, self.due_micros(n), size)
    }

    /// The whole SSE frame of event `n` of `topic`.
    pub fn frame(&self, topic: &str, n: u64) -> String {
        format!("id: {n}\ndata: {}\n\n", self.data(topic, n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(schedule: &str) -> Plan {
        Plan {
            start_micros: 1_000_000_000,
            rate: 10.0,
            size: 128,
            oversize_size: 5000,
            oversize_every: 5,
            schedule: schedule.parse().unwrap(),
        }
    }

    #[test]
    fn events_are_due_on_schedule_and_the_same_every_time() {
        let plan = plan("");
        assert_eq!(plan.due_micros(1), 1_000_100_000);
        assert_eq!(plan.due_micros(30), 1_003_000_000);
        assert_eq!(plan.last_due(1_000_000_000), 0);
        assert_eq!(plan.last_due(1_000_099_999), 0);
        assert_eq!(plan.last_due(1_000_100_000), 1);
        assert_eq!(plan.last_due(1_003_050_000), 30);
        assert_eq!(plan.data("a", 7), plan.data("a", 7));
        assert_ne!(plan.data("a", 7), plan.data("b", 7));
        let checked = crate::check_payload("a", &plan.data("a", 7)).unwrap();
        assert_eq!(
            (checked.seq, checked.ts, checked.intact),
            (7, plan.due_micros(7), true)
        );
    }

    #[test]
    fn oversize_events_are_every_kth_inside_their_windows() {
        // Events 20..=40 fall due in [2 s, 4 s].
        let plan = plan("oversize:2-4");
        let oversize: Vec<u64> = (1..60).filter(|&n| plan.is_oversize(n)).collect();
        assert_eq!(oversize, [20, 25, 30, 35]);
        assert_eq!(plan.data("t", 25).len(), 5000);
        assert_eq!(plan.data("t", 26).len(), 128);
    }
}
