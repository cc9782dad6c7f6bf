//! Per-client event filters (`?event=a,b` on a route with `event_filter:
//! true`): a [`FilteredSink`] sits between the topic and a subscriber's own
//! sink and passes on only the events of the types the client asked for.
//!
//! * **From the shared frames.** Every delivery knows the type of the event
//!   it dispatches (read once, when the frame was parsed), so a filter
//!   compares a few bytes and passes the same `Bytes` on, or nothing. Frames
//!   that dispatch no event (id updates, heartbeats, `retry:` advice, the
//!   `gap` event) always pass: they keep the client's last event ID and the
//!   connection right.
//! * **Batches** (frames that arrived in one upstream read, or a route's
//!   write window) pass whole when every event in them passes and not at
//!   all when none does. A batch the filter keeps only some of is copied
//!   once per thread and distinct selection (every client with the same
//!   filter shares that copy), never once per client.
//! * **Replay** goes through the same filter: a client that resumes gets
//!   only the missed events of its types.
//! * **Kept alive.** A client whose types are rare on a busy topic would get
//!   nothing for long stretches (the topic's heartbeat only runs when the
//!   topic is idle), and proxies cut idle connections: when an event is
//!   skipped and nothing went to the client for the route's `heartbeat`, a
//!   heartbeat comment goes instead.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use sse_gateway_hub::{CloseReason, Delivery, DeliveryKind, Offer, OfferRound, SubscriberSink};
use thiserror::Error;

use crate::OPENING_COMMENT;

/// Most event types one filter may name.
pub const MAX_FILTER_TYPES: usize = 16;

/// Longest event type a filter may name, in bytes.
pub const MAX_FILTER_TYPE_LEN: usize = 128;

/// The event types a client asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFilter {
    types: Arc<[Box<[u8]>]>,
}

/// Why a filter was refused (the client gets a 400 saying so).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FilterError {
    /// No type at all, or an empty one (`?event=` or `?event=a,,b`).
    #[error("an event filter names empty event types")]
    Empty,
    /// More than [`MAX_FILTER_TYPES`] types.
    #[error("an event filter names at most {MAX_FILTER_TYPES} event types")]
    TooMany,
    /// A type longer than [`MAX_FILTER_TYPE_LEN`] bytes.
    #[error("an event type in a filter is at most {MAX_FILTER_TYPE_LEN} bytes")]
    TooLong,
    /// A type with a control character (no event could have it).
    #[error("an event type in a filter has a control character")]
    Control,
}

// === impl EventFilter ===

impl EventFilter {
    /// A filter passing events of `types` (`message` is the type of events
    /// that name none). Repeated types count once.
    pub fn new<'a>(types: impl IntoIterator<Item = &'a str>) -> Result<Self, FilterError> {
        let mut kept: Vec<Box<[u8]>> = Vec::new();
        for name in types {
            if name.is_empty() {
                return Err(FilterError::Empty);
            }
            if name.len() > MAX_FILTER_TYPE_LEN {
                return Err(FilterError::TooLong);
            }
            if name.chars().any(char::is_control) {
                return Err(FilterError::Control);
            }
            if !kept.iter().any(|t| **t == *name.as_bytes()) {
                if kept.len() == MAX_FILTER_TYPES {
                    return Err(FilterError::TooMany);
                }
                kept.push(name.as_bytes().into());
            }
        }
        if kept.is_empty() {
            return Err(FilterError::Empty);
        }
        Ok(Self { types: kept.into() })
    }

    /// Whether an event of `event_type` passes; `None` (a frame that
    /// dispatches no event) always does.
    pub fn passes(&self, event_type: Option<&[u8]>) -> bool {
        event_type.is_none_or(|t| self.types.iter().any(|kept| **kept == *t))
    }

    /// The types, as given (deduplicated).
    pub fn types(&self) -> impl Iterator<Item = &[u8]> {
        self.types.iter().map(|t| &**t)
    }
}

/// A subscriber's sink behind its [`EventFilter`].
pub struct FilteredSink {
    inner: Arc<dyn SubscriberSink>,
    filter: EventFilter,
    /// The route's `heartbeat` (`None`: off).
    keepalive: Option<Duration>,
    /// When something was last handed to `inner`.
    last_passed: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for FilteredSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FilteredSink")
            .field("filter", &self.filter)
            .field("keepalive", &self.keepalive)
            .finish_non_exhaustive()
    }
}

// === impl FilteredSink ===

impl FilteredSink {
    /// `inner` behind `filter`; `keepalive` is the route's `heartbeat`.
    pub fn new(
        inner: Arc<dyn SubscriberSink>,
        filter: EventFilter,
        keepalive: Option<Duration>,
    ) -> Self {
        Self {
            inner,
            filter,
            keepalive,
            last_passed: Mutex::new(None),
        }
    }

    fn pass(&self, delivery: &Delivery, round: &mut OfferRound<'_>) -> Offer {
        *self.last_passed.lock() = Some(delivery.received);
        self.inner.offer(delivery, round)
    }

    /// Nothing of `delivery` is for this client: a heartbeat instead when
    /// the client got nothing for the keep-alive period.
    fn skip(&self, delivery: &Delivery, round: &mut OfferRound<'_>) -> Offer {
        let Some(keepalive) = self.keepalive else {
            return Offer::Accepted;
        };
        let now = delivery.received;
        let due = {
            let mut last = self.last_passed.lock();
            match *last {
                Some(at) if now.saturating_duration_since(at) < keepalive => false,
                Some(_) => {
                    *last = Some(now);
                    true
                }
                None => {
                    *last = Some(now);
                    false
                }
            }
        };
        if !due {
            return Offer::Accepted;
        }
        let heartbeat = Delivery::new(OPENING_COMMENT, DeliveryKind::Heartbeat, now);
        self.inner.offer(&heartbeat, round)
    }

    fn offer_batch(&self, delivery: &Delivery, round: &mut OfferRound<'_>) -> Offer {
        let Some(parts) = delivery.parts() else {
            return self.pass(delivery, round);
        };
        let mut selection = vec![0u64; parts.len().div_ceil(64)];
        let mut kept = 0u32;
        for (i, part) in parts.iter().enumerate() {
            if self.filter.passes(part.event_type(&delivery.bytes)) {
                selection[i / 64] |= 1 << (i % 64);
                kept += 1;
            }
        }
        if kept == 0 {
            return self.skip(delivery, round);
        }
        if kept as usize == parts.len() {
            return self.pass(delivery, round);
        }
        let bytes = selected(delivery, &selection);
        // It keeps each frame's type (and a batch its frames), so that what
        // the inner sink does by type (slow_client: coalesce) still can.
        match delivery.select(bytes, |i| selection[i / 64] & (1 << (i % 64)) != 0) {
            Some(selection) => self.pass(&selection, round),
            None => self.skip(delivery, round),
        }
    }
}

impl SubscriberSink for FilteredSink {
    fn offer(&self, delivery: &Delivery, round: &mut OfferRound<'_>) -> Offer {
        match delivery.kind {
            DeliveryKind::Event | DeliveryKind::Replay => {
                if self.filter.passes(delivery.event_type()) {
                    self.pass(delivery, round)
                } else {
                    self.skip(delivery, round)
                }
            }
            DeliveryKind::Batch { .. } => self.offer_batch(delivery, round),
            DeliveryKind::Heartbeat | DeliveryKind::Advice => self.pass(delivery, round),
        }
    }

    fn close(&self, reason: CloseReason) {
        self.inner.close(reason);
    }
}

/// Selections of a batch this thread made lately: the batch (held, so its
/// address is not reused while cached), which parts, and their bytes.
type Selection = (Bytes, Vec<u64>, Bytes);

/// How many selections a thread keeps (distinct filters on one topic that
/// keep different parts of one batch).
const SELECTIONS_KEPT: usize = 4;

thread_local! {
    static SELECTIONS: RefCell<Vec<Selection>> = const { RefCell::new(Vec::new()) };
}

/// The parts of `delivery` (a batch) that `selection` marks, as one buffer:
/// made once per thread, batch and selection, and shared by every client
/// whose filter selects the same parts.
fn selected(delivery: &Delivery, selection: &[u64]) -> Bytes {
    let batch = &delivery.bytes;
    SELECTIONS.with(|cache| {
        let mut cache = cache.borrow_mut();
        let same = |(held, bits, _): &&Selection| {
            held.as_ptr() == batch.as_ptr() && held.len() == batch.len() && bits == selection
        };
        if let Some((_, _, bytes)) = cache.iter().find(same) {
            return bytes.clone();
        }
        let mut out = BytesMut::new();
        for (i, part) in delivery.parts().unwrap_or_default().iter().enumerate() {
            if selection[i / 64] & (1 << (i % 64)) != 0 {
                if let Some(frame) = batch.get(part.range()) {
                    out.extend_from_slice(frame);
                }
            }
        }
        let bytes = out.freeze();
        if cache.len() == SELECTIONS_KEPT {
            cache.remove(0);
        }
        cache.push((batch.clone(), selection.to_vec(), bytes.clone()));
        bytes
    })
}

#[cfg(test)]
mod tests {
    use sse_gateway_codec::{encode_event, Frame, OutgoingEvent};

    use super::*;

    /// Takes every offer and keeps it.
    #[derive(Default)]
    struct Kept(Mutex<Vec<Delivery>>);

    impl SubscriberSink for Kept {
        fn offer(&self, delivery: &Delivery, _: &mut OfferRound<'_>) -> Offer {
            self.0.lock().push(delivery.clone());
            Offer::Accepted
        }

        fn close(&self, _: CloseReason) {}
    }

    fn frame(event_type: &str, id: &str) -> Frame {
        let event_type = Some(event_type).filter(|t| *t != "message");
        let data = format!("{id}!");
        encode_event(&OutgoingEvent {
            event_type,
            id: Some(id),
            data: &data,
            retry: None,
        })
        .unwrap()
    }

    fn filtered(types: &[&str], keepalive: Option<Duration>) -> (Arc<Kept>, FilteredSink) {
        let kept = Arc::new(Kept::default());
        let filter = EventFilter::new(types.iter().copied()).unwrap();
        let sink = FilteredSink::new(kept.clone(), filter, keepalive);
        (kept, sink)
    }

    fn offer(sink: &FilteredSink, delivery: &Delivery) {
        assert_eq!(
            sink.offer(delivery, &mut OfferRound::uncounted()),
            Offer::Accepted
        );
    }

    #[test]
    fn single_frames_pass_or_not_by_type_and_share_the_bytes() {
        let (kept, sink) = filtered(&["a", "message"], None);
        let now = Instant::now();
        let frames = [frame("a", "1"), frame("b", "2"), frame("message", "3")];
        for f in &frames {
            offer(&sink, &Delivery::of_frame(f, DeliveryKind::Event, now));
        }
        // An id update, advice and a heartbeat always pass.
        let id_only = Delivery::new(Bytes::from_static(b"id: 4\n\n"), DeliveryKind::Event, now);
        offer(&sink, &id_only);
        offer(
            &sink,
            &Delivery::new(OPENING_COMMENT, DeliveryKind::Heartbeat, now),
        );
        let kept = kept.0.lock();
        let got: Vec<&[u8]> = kept.iter().map(|d| &d.bytes[..]).collect();
        assert_eq!(
            got,
            [
                frames[0].bytes().as_ref(),
                frames[2].bytes().as_ref(),
                b"id: 4\n\n",
                b":\n"
            ]
        );
        assert_eq!(
            kept[0].bytes.as_ptr(),
            frames[0].bytes().as_ptr(),
            "not copied"
        );
    }

    #[test]
    fn a_batch_passes_whole_in_part_or_not_at_all() {
        let now = Instant::now();
        let frames = [frame("a", "1"), frame("b", "2"), frame("c", "3")];
        let batch = Delivery::batch(frames.iter(), now);
        let (all, sink) = filtered(&["a", "b", "c"], None);
        offer(&sink, &batch);
        assert_eq!(
            all.0.lock()[0].bytes.as_ptr(),
            batch.bytes.as_ptr(),
            "whole"
        );
        let (none, sink) = filtered(&["z"], None);
        offer(&sink, &batch);
        assert!(none.0.lock().is_empty());

        let (first, sink) = filtered(&["a", "c"], None);
        let (second, other) = filtered(&["c", "a"], None);
        offer(&sink, &batch);
        offer(&other, &batch);
        let (first, second) = (first.0.lock(), second.0.lock());
        let want = [frames[0].bytes().as_ref(), frames[2].bytes().as_ref()].concat();
        assert_eq!(first[0].bytes[..], want[..]);
        assert_eq!(first[0].kind, DeliveryKind::Batch { events: 2 });
        // The selection still knows its frames and their types.
        let parts = first[0].parts().unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[1].event_type(&first[0].bytes), Some(&b"c"[..]));
        assert_eq!(parts[1].range().end, first[0].bytes.len());
        assert_eq!(
            first[0].bytes.as_ptr(),
            second[0].bytes.as_ptr(),
            "one copy per selection, shared"
        );
    }

    #[test]
    fn a_skipped_event_becomes_a_heartbeat_once_per_period() {
        let (kept, sink) = filtered(&["a"], Some(Duration::from_secs(1)));
        let start = Instant::now();
        let b = frame("b", "1");
        for ms in [0, 500, 999, 1000, 1500, 2100] {
            let at = start + Duration::from_millis(ms);
            offer(&sink, &Delivery::of_frame(&b, DeliveryKind::Event, at));
        }
        // The first offer starts the period; 1000 and 2100 ms are due.
        let kinds: Vec<DeliveryKind> = kept.0.lock().iter().map(|d| d.kind).collect();
        assert_eq!(kinds, [DeliveryKind::Heartbeat, DeliveryKind::Heartbeat]);
    }

    #[test]
    fn types_are_checked_and_deduplicated() {
        let filter = EventFilter::new(["a", "b", "a"]).unwrap();
        assert_eq!(filter.types().count(), 2);
        assert!(filter.passes(Some(b"a")) && filter.passes(Some(b"b")));
        assert!(!filter.passes(Some(b"message")) && !filter.passes(Some(b"ab")));
        assert!(filter.passes(None), "frames that dispatch nothing pass");
        assert_eq!(EventFilter::new([]), Err(FilterError::Empty));
        assert_eq!(EventFilter::new(["a", ""]), Err(FilterError::Empty));
        assert_eq!(EventFilter::new(["a\nb"]), Err(FilterError::Control));
        let long = "x".repeat(MAX_FILTER_TYPE_LEN + 1);
        assert_eq!(EventFilter::new([long.as_str()]), Err(FilterError::TooLong));
        let many: Vec<String> = (0..=MAX_FILTER_TYPES).map(|i| i.to_string()).collect();
        let many = many.iter().map(String::as_str);
        assert_eq!(EventFilter::new(many), Err(FilterError::TooMany));
    }
}
