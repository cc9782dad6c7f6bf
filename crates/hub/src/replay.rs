//! [`ReplayRing`]: a topic's recent frames, for `Last-Event-ID` resume, and
//! [`ReplayBudget`], the bytes every ring of the process may hold together.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sse_gateway_codec::Frame;
use sse_gateway_metrics::ProcessMetrics;

/// The last `capacity` frames of a topic, none older than `max_age`, at
/// most `max_bytes` of them, and no more than the process-wide
/// [`ReplayBudget`] lets it take.
///
/// Frames are the same shared `Bytes` that were fanned out, so the ring costs
/// a reference count per frame, not a copy. (They are slices of the
/// upstream's read buffers, so the memory they keep alive can be somewhat
/// more than their length, which is what the bounds count.)
///
/// **The ring always holds an unbroken run of the newest frames.** A frame
/// that cannot be kept (larger than `max_bytes`, or the budget is spent even
/// after this ring gave up all it held) empties the ring instead of leaving
/// a hole: a client resuming from an id before it is told the id is missing
/// (and gets the route's `gap` event), never silently skips a frame.
#[derive(Debug)]
pub struct ReplayRing {
    entries: VecDeque<(Frame, Instant)>,
    capacity: usize,
    max_age: Duration,
    max_bytes: usize,
    /// Frame bytes held.
    bytes: usize,
    budget: Option<Arc<ReplayBudget>>,
}

/// The frame bytes every replay ring of the process may hold together
/// (`limits.replay_memory`); its use is exported as
/// `sse_gateway_replay_bytes`.
///
/// While it has room, any ring takes what it needs. Once a ring finds it
/// spent, the budget is **under pressure** until its use falls to three
/// quarters of the limit: meanwhile every ring holds at most its fair share
/// (the limit divided by the rings that keep frames) and gives up its oldest
/// frames past it, at its next push or timer tick (within a second). So the
/// first busy topics cannot keep the whole budget from the ones that open
/// later. A ring short of budget gives up its own oldest frames first.
#[derive(Debug)]
pub struct ReplayBudget {
    limit: u64,
    used: AtomicU64,
    /// Rings that keep frames (capacity above zero) and draw from it.
    rings: AtomicUsize,
    pressed: AtomicBool,
    metrics: Option<ProcessMetrics>,
}

/// The result of looking up a `Last-Event-ID`.
#[derive(Debug)]
pub enum Resume<'a> {
    /// The id is held: these frames came after it, oldest first.
    Found(Vec<&'a Frame>),
    /// The id is not held (too old, or never seen).
    Missing {
        /// The oldest id still held, if any.
        oldest: Option<&'a str>,
    },
}

// === impl ReplayRing ===

impl ReplayRing {
    /// A ring of at most `capacity` frames (0 = off) and `max_age`, with no
    /// byte bound.
    pub fn new(capacity: usize, max_age: Duration) -> Self {
        Self::bounded(capacity, max_age, usize::MAX, None)
    }

    /// A ring of at most `capacity` frames (0 = off), `max_age` and
    /// `max_bytes` of frames, drawing its bytes from `budget`.
    pub fn bounded(
        capacity: usize,
        max_age: Duration,
        max_bytes: usize,
        budget: Option<Arc<ReplayBudget>>,
    ) -> Self {
        if let Some(budget) = budget.as_ref().filter(|_| capacity > 0) {
            budget.rings.fetch_add(1, Ordering::AcqRel);
        }
        Self {
            // Grown as frames come: a quiet topic's ring stays small.
            entries: VecDeque::new(),
            capacity,
            max_age,
            max_bytes,
            bytes: 0,
            budget,
        }
    }

    /// Adds a frame received at `now`, dropping the oldest past the bounds.
    pub fn push(&mut self, frame: Frame, now: Instant) {
        if self.capacity == 0 {
            return;
        }
        let len = frame.len();
        if len > self.max_bytes {
            // Never kept: start over after it rather than leave a hole.
            self.clear();
            return;
        }
        if self.entries.len() == self.capacity {
            self.pop_oldest();
        }
        while self.bytes + len > self.max_bytes && self.pop_oldest() {}
        if let Some(budget) = self.budget.clone() {
            if let Some(share) = budget.pressed_share() {
                while self.bytes + len > share && self.pop_oldest() {}
            }
            let mut given_up = 0;
            while !budget.try_take(len as u64) {
                given_up += 1;
                if !self.pop_oldest() {
                    // Nothing of ours left to give up: not kept, and the
                    // ring is empty (no hole).
                    budget.evicted(given_up);
                    return;
                }
            }
            if given_up > 0 {
                budget.evicted(given_up);
            }
        }
        self.bytes += len;
        self.entries.push_back((frame, now));
        self.expire(now);
    }

    /// Drops the oldest frame; false when there was none.
    fn pop_oldest(&mut self) -> bool {
        let Some((frame, _)) = self.entries.pop_front() else {
            return false;
        };
        self.bytes -= frame.len();
        if let Some(budget) = &self.budget {
            budget.give_back(frame.len() as u64);
        }
        true
    }

    /// Drops every frame (a closed topic gives its bytes back at once, even
    /// while something still refers to it).
    pub fn clear(&mut self) {
        while self.pop_oldest() {}
        self.entries = VecDeque::new();
    }

    /// Drops frames older than `max_age`, and, while the budget is under
    /// pressure, the oldest past this ring's fair share.
    pub fn expire(&mut self, now: Instant) {
        while let Some((_, at)) = self.entries.front() {
            if now.saturating_duration_since(*at) <= self.max_age {
                break;
            }
            self.pop_oldest();
        }
        if let Some(share) = self.budget.as_ref().and_then(|b| b.pressed_share()) {
            while self.bytes > share && self.pop_oldest() {}
        }
    }

    /// When [`expire`](Self::expire) next has something to do: the oldest
    /// frame's expiry, or within a second while the budget is under pressure
    /// and this ring holds more than its share. `None` when empty.
    pub fn next_expiry(&self, now: Instant) -> Option<Instant> {
        let (_, oldest) = self.entries.front()?;
        let aged = *oldest + self.max_age;
        let squeezed = self
            .budget
            .as_ref()
            .and_then(|b| b.pressed_share())
            .filter(|share| self.bytes > *share)
            .map(|_| now + PRESSURE_CHECK);
        Some(squeezed.map_or(aged, |at| at.min(aged)))
    }

    /// Frame bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The frames after the newest frame whose id is `last_event_id`.
    pub fn resume(&self, last_event_id: &str) -> Resume<'_> {
        let position = self
            .entries
            .iter()
            .rposition(|(frame, _)| frame.id() == Some(last_event_id));
        match position {
            Some(i) => Resume::Found(self.entries.range(i + 1..).map(|(f, _)| f).collect()),
            None => Resume::Missing {
                oldest: self.entries.iter().find_map(|(f, _)| f.id()),
            },
        }
    }

    /// Every frame held, oldest first.
    pub fn all(&self) -> Vec<&Frame> {
        self.entries.iter().map(|(frame, _)| frame).collect()
    }

    /// Frames held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no frame is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Most frames held.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

impl Drop for ReplayRing {
    fn drop(&mut self) {
        if let Some(budget) = &self.budget {
            budget.give_back(self.bytes as u64);
            if self.capacity > 0 {
                budget.rings.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }
}

/// How soon a ring over its share looks again while the budget is under
/// pressure.
const PRESSURE_CHECK: Duration = Duration::from_secs(1);

// === impl ReplayBudget ===

impl ReplayBudget {
    /// A budget of `limit` bytes for every ring that draws from it; `metrics`
    /// gets its use (`sse_gateway_replay_bytes`) and its evictions.
    pub fn new(limit: u64, metrics: Option<ProcessMetrics>) -> Arc<Self> {
        Arc::new(Self {
            limit,
            used: AtomicU64::new(0),
            rings: AtomicUsize::new(0),
            pressed: AtomicBool::new(false),
            metrics,
        })
    }

    /// Bytes held by every ring now.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Acquire)
    }

    /// Takes `n` bytes if they fit.
    fn try_take(&self, n: u64) -> bool {
        let taken = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(n).filter(|total| *total <= self.limit)
            })
            .is_ok();
        if taken {
            if let Some(metrics) = &self.metrics {
                metrics.replay_bytes_changed(i64::try_from(n).unwrap_or(i64::MAX));
            }
        } else {
            self.pressed.store(true, Ordering::Release);
        }
        taken
    }

    /// Each ring's fair share while the budget is under pressure; `None`
    /// while it is not.
    fn pressed_share(&self) -> Option<usize> {
        if !self.pressed.load(Ordering::Acquire) {
            return None;
        }
        let rings = self.rings.load(Ordering::Acquire).max(1) as u64;
        Some(usize::try_from(self.limit / rings).unwrap_or(usize::MAX))
    }

    fn give_back(&self, n: u64) {
        if n == 0 {
            return;
        }
        let left = self.used.fetch_sub(n, Ordering::AcqRel) - n;
        if left <= self.limit / 4 * 3 {
            self.pressed.store(false, Ordering::Release);
        }
        if let Some(metrics) = &self.metrics {
            metrics.replay_bytes_changed(-i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    fn evicted(&self, frames: u64) {
        if let Some(metrics) = &self.metrics {
            metrics.replay_budget_evicted(frames);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use sse_gateway_codec::{encode_event, OutgoingEvent};

    fn frame(id: Option<&str>, data: &str) -> Frame {
        encode_event(&OutgoingEvent {
            id,
            data,
            ..Default::default()
        })
        .unwrap()
    }

    fn ids(resume: Resume<'_>) -> Vec<String> {
        match resume {
            Resume::Found(frames) => frames
                .iter()
                .map(|f| String::from_utf8_lossy(f.bytes()).into_owned())
                .collect(),
            Resume::Missing { oldest } => vec![format!("missing, oldest {oldest:?}")],
        }
    }

    #[test]
    fn resumes_after_the_id() {
        let now = Instant::now();
        let mut ring = ReplayRing::new(3, Duration::from_secs(60));
        for i in 1..=4 {
            ring.push(frame(Some(&i.to_string()), "x"), now);
        }
        assert_eq!(ring.len(), 3);
        assert_eq!(ids(ring.resume("3")), vec!["id: 4\ndata: x\n\n"]);
        assert_eq!(ids(ring.resume("4")), Vec::<String>::new());
        assert_eq!(ids(ring.resume("1")), vec!["missing, oldest Some(\"2\")"]);
    }

    #[test]
    fn frames_without_id_follow_the_last_id() {
        let now = Instant::now();
        let mut ring = ReplayRing::new(10, Duration::from_secs(60));
        ring.push(frame(Some("1"), "a"), now);
        ring.push(frame(None, "b"), now);
        ring.push(frame(Some("2"), "c"), now);
        assert_eq!(
            ids(ring.resume("1")),
            vec!["data: b\n\n", "id: 2\ndata: c\n\n"]
        );
    }

    #[test]
    fn max_age_expires_frames() {
        let start = Instant::now();
        let mut ring = ReplayRing::new(10, Duration::from_secs(5));
        ring.push(frame(Some("1"), "a"), start);
        ring.push(frame(Some("2"), "b"), start + Duration::from_secs(10));
        assert_eq!(ring.len(), 1);
        assert_eq!(ids(ring.resume("1")), vec!["missing, oldest Some(\"2\")"]);
    }

    #[test]
    fn zero_capacity_is_off() {
        let mut ring = ReplayRing::new(0, Duration::from_secs(5));
        ring.push(frame(Some("1"), "a"), Instant::now());
        assert!(ring.is_empty());
    }

    fn sized(id: u32, len: usize) -> Frame {
        // `id: N\ndata: ` + padding + `\n\n`: pad to exactly `len` bytes.
        let head = format!("id: {id}\ndata: ");
        let pad = len - head.len() - 2;
        frame(Some(&id.to_string()), &"x".repeat(pad))
    }

    #[test]
    fn max_bytes_drops_the_oldest() {
        let now = Instant::now();
        let mut ring = ReplayRing::bounded(100, Duration::from_secs(60), 250, None);
        for id in 1..=3 {
            ring.push(sized(id, 100), now);
        }
        assert_eq!((ring.len(), ring.bytes()), (2, 200));
        assert_eq!(
            ids(ring.resume("2")),
            vec![format!("id: 3\ndata: {}\n\n", "x".repeat(86))]
        );
        assert!(matches!(ring.resume("1"), Resume::Missing { .. }));
    }

    #[test]
    fn a_frame_over_max_bytes_empties_the_ring_instead_of_leaving_a_hole() {
        let now = Instant::now();
        let mut ring = ReplayRing::bounded(100, Duration::from_secs(60), 250, None);
        ring.push(sized(1, 100), now);
        ring.push(sized(2, 300), now);
        assert!(ring.is_empty());
        assert_eq!(ring.bytes(), 0);
        ring.push(sized(3, 100), now);
        // Resuming from 1 must not skip 2 silently.
        assert!(matches!(
            ring.resume("1"),
            Resume::Missing { oldest: Some("3") }
        ));
    }

    #[test]
    fn the_budget_is_shared_and_given_back() {
        let now = Instant::now();
        let budget = ReplayBudget::new(300, None);
        let mut a = ReplayRing::bounded(100, Duration::from_secs(60), 1000, Some(budget.clone()));
        let mut b = ReplayRing::bounded(100, Duration::from_secs(60), 1000, Some(budget.clone()));
        a.push(sized(1, 100), now);
        a.push(sized(2, 100), now);
        assert_eq!(budget.used(), 200);
        // b takes what is left, then gives up its own oldest for more.
        b.push(sized(10, 100), now);
        b.push(sized(11, 100), now);
        assert_eq!((b.len(), budget.used()), (1, 300));
        assert!(matches!(b.resume("10"), Resume::Missing { .. }));
        // A frame larger than all b could free is not kept; b is empty.
        b.push(sized(12, 200), now);
        assert!(b.is_empty());
        assert_eq!(budget.used(), 200);
        drop(a);
        assert_eq!(budget.used(), 0);
        b.push(sized(13, 200), now);
        assert_eq!(budget.used(), 200);
        ring_expires_into_the_budget(b, &budget, now);
    }

    fn ring_expires_into_the_budget(mut ring: ReplayRing, budget: &ReplayBudget, now: Instant) {
        ring.expire(now + Duration::from_secs(120));
        assert!(ring.is_empty());
        assert_eq!(budget.used(), 0);
    }

    proptest! {
        #[test]
        fn never_exceeds_capacity_and_resumes_in_order(capacity in 1usize..20, pushes in 0usize..60, ask in 0usize..60) {
            let now = Instant::now();
            let mut ring = ReplayRing::new(capacity, Duration::from_secs(60));
            for i in 0..pushes {
                ring.push(frame(Some(&i.to_string()), "x"), now);
                prop_assert!(ring.len() <= capacity);
            }
            let held = pushes.saturating_sub(capacity)..pushes;
            match ring.resume(&ask.to_string()) {
                Resume::Found(frames) => {
                    prop_assert!(held.contains(&ask));
                    let got: Vec<_> = frames.iter().map(|f| f.id().unwrap().parse::<usize>().unwrap()).collect();
                    prop_assert_eq!(got, (ask + 1..pushes).collect::<Vec<_>>());
                }
                Resume::Missing { .. } => prop_assert!(!held.contains(&ask)),
            }
        }

        /// Whatever the sizes and bounds: the ring stays within them, holds an
        /// unbroken run of the newest frames, and the budget counts exactly
        /// what the rings hold.
        #[test]
        fn byte_bounds_keep_an_unbroken_newest_run(
            sizes in proptest::collection::vec(20usize..400, 0..80),
            max_bytes in 50usize..1500,
            limit in 50u64..2000,
        ) {
            let now = Instant::now();
            let budget = ReplayBudget::new(limit, None);
            let mut ring = ReplayRing::bounded(1000, Duration::from_secs(60), max_bytes, Some(budget.clone()));
            let mut other = ReplayRing::bounded(1000, Duration::from_secs(60), usize::MAX, Some(budget.clone()));
            other.push(sized(100_000, 40), now);
            for (i, len) in sizes.iter().enumerate() {
                ring.push(sized(i as u32, *len), now);
                prop_assert!(ring.bytes() <= max_bytes);
                prop_assert!(budget.used() <= limit);
                prop_assert_eq!(budget.used(), (ring.bytes() + other.bytes()) as u64);
                let held: Vec<u32> = ring.all().iter().map(|f| f.id().unwrap().parse().unwrap()).collect();
                if let Some(last) = held.last() {
                    prop_assert_eq!(*last, i as u32, "the newest frame is held when anything is");
                }
                for pair in held.windows(2) {
                    prop_assert_eq!(pair[1], pair[0] + 1, "no hole");
                }
            }
        }
    }
}
