//! [`ReplayRing`]: a topic's recent frames, for `Last-Event-ID` resume.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use sse_gateway_codec::Frame;

/// The last `capacity` frames of a topic, none older than `max_age`.
///
/// Frames are the same shared `Bytes` that were fanned out, so the ring costs
/// a reference count per frame, not a copy.
#[derive(Debug)]
pub struct ReplayRing {
    entries: VecDeque<(Frame, Instant)>,
    capacity: usize,
    max_age: Duration,
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
    /// A ring of at most `capacity` frames (0 = off) and `max_age`.
    pub fn new(capacity: usize, max_age: Duration) -> Self {
        Self {
            // Grown as frames come: a quiet topic's ring stays small.
            entries: VecDeque::new(),
            capacity,
            max_age,
        }
    }

    /// Adds a frame received at `now`, dropping the oldest past the bounds.
    pub fn push(&mut self, frame: Frame, now: Instant) {
        if self.capacity == 0 {
            return;
        }
        if self.entries.len() == self.capacity {
            self.entries.pop_front();
        }
        self.entries.push_back((frame, now));
        self.expire(now);
    }

    /// Drops frames older than `max_age`.
    pub fn expire(&mut self, now: Instant) {
        while let Some((_, at)) = self.entries.front() {
            if now.saturating_duration_since(*at) <= self.max_age {
                break;
            }
            self.entries.pop_front();
        }
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
    }
}
