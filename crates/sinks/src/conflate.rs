//! Latest-value conflation (`slow_client: coalesce`): what a sink does,
//! on either path, when a delivery would put its pending bytes past
//! `client_queue`. Instead of cutting the client, its pending events are
//! reduced to the newest one per key ([`Conflation`]: the event type, or a
//! top-level JSON field of the data), kept in the order they arrived (so
//! ids still only go up), with one note in front of them:
//! `event: skipped` and `data: {"skipped":N}`, N counting every event
//! dropped since the client last caught up. Only when the survivors still
//! do not fit is the client cut, as with `disconnect`.
//!
//! * Never a stale value after a newer one: of each key only the newest
//!   pending event stays, and a later one replaces it at the back.
//! * What has started to go out stays (the front of the direct path's
//!   queue, partly written); heartbeats pending are dropped (the events are
//!   keep-alive enough); advice (`retry:`, the gap event) and id updates
//!   stay.
//! * Batches (frames of one upstream read) are split into their frames
//!   first (slices of the shared bytes).
//! * The work is done only for a client that is behind, at the moment it
//!   would have been cut; a client that keeps up never pays for it.

use std::collections::{HashSet, VecDeque};

use bytes::Bytes;
use sse_gateway_codec::{encode_event, CodecLimits, Decoder, Item, OutgoingEvent};
use sse_gateway_hub::{Delivery, DeliveryKind};

/// The event type of the note in front of coalesced events.
pub const SKIPPED_EVENT: &str = "skipped";

/// What makes two events the same thing: the newer replaces the older.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConflationKey {
    /// The event type.
    EventType,
    /// The value of this top-level field of the data, read as JSON (events
    /// whose data is not a JSON object with it share one key).
    DataField(Box<str>),
}

/// A route's `slow_client: coalesce` policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflation {
    key: ConflationKey,
}

/// How one pending delivery is treated.
enum Class {
    /// Stays where it is.
    Keep,
    /// Goes (a heartbeat).
    Drop,
    /// An event: only the newest of its key stays.
    Key(Vec<u8>),
}

// === impl Conflation ===

impl Conflation {
    /// Coalescing by `key`.
    pub fn new(key: ConflationKey) -> Self {
        Self { key }
    }

    fn class(&self, delivery: &Delivery) -> Class {
        match delivery.kind {
            DeliveryKind::Heartbeat => Class::Drop,
            DeliveryKind::Advice | DeliveryKind::Batch { .. } => Class::Keep,
            DeliveryKind::Event | DeliveryKind::Replay => match delivery.event_type() {
                None => Class::Keep,
                Some(event_type) => Class::Key(match &self.key {
                    ConflationKey::EventType => event_type.to_vec(),
                    ConflationKey::DataField(field) => data_field(&delivery.bytes, field),
                }),
            },
        }
    }

    /// Reduces `items[from..]` to the newest event per key (see the module
    /// docs); `delivery` reads an item's delivery, `make` builds an item
    /// for each frame of a batch. Returns how many events were dropped.
    pub(crate) fn apply<T>(
        &self,
        items: &mut VecDeque<T>,
        from: usize,
        delivery: impl Fn(&T) -> &Delivery,
        make: impl Fn(Delivery) -> T,
    ) -> u64 {
        let from = from.min(items.len());
        let tail: Vec<T> = items.drain(from..).collect();
        // Batches become their frames.
        let mut split = Vec::with_capacity(tail.len());
        for item in tail {
            if matches!(delivery(&item).kind, DeliveryKind::Batch { .. }) {
                split.extend(delivery(&item).split().into_iter().map(&make));
            } else {
                split.push(item);
            }
        }
        // From the newest back: the first of each key seen is the one kept.
        let mut seen = HashSet::new();
        let mut keep = vec![true; split.len()];
        let mut dropped = 0;
        for (i, item) in split.iter().enumerate().rev() {
            match self.class(delivery(item)) {
                Class::Keep => {}
                Class::Drop => keep[i] = false,
                Class::Key(key) => {
                    if !seen.insert(key) {
                        keep[i] = false;
                        dropped += delivery(item).events();
                    }
                }
            }
        }
        items.extend(
            split
                .into_iter()
                .zip(keep)
                .filter_map(|(item, keep)| keep.then_some(item)),
        );
        dropped
    }
}

/// The note in front of coalesced events: `skipped` events were dropped.
pub(crate) fn skipped_note(skipped: u64) -> Bytes {
    let data = format!("{{\"skipped\":{skipped}}}");
    encode_event(&OutgoingEvent {
        event_type: Some(SKIPPED_EVENT),
        id: None,
        data: &data,
        retry: None,
    })
    .map(|frame| frame.into_bytes())
    .unwrap_or_default()
}

/// The key of an event whose data is a JSON object with `field`: the
/// field's value as JSON text; empty for any other event.
fn data_field(frame: &Bytes, field: &str) -> Vec<u8> {
    let mut decoder = Decoder::new(CodecLimits::with_max_event_size(frame.len() + 1));
    let data = decoder.decode(frame.clone()).find_map(|item| match item {
        Item::Event(event) => Some(event.data().to_owned()),
        _ => None,
    });
    data.and_then(|data| {
        let value: serde_json::Value = serde_json::from_str(&data).ok()?;
        value.get(field).map(|v| v.to_string().into_bytes())
    })
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use sse_gateway_codec::Frame;

    use super::*;

    fn frame(event_type: &str, id: u64, data: &str) -> Frame {
        encode_event(&OutgoingEvent {
            event_type: Some(event_type).filter(|t| *t != "message"),
            id: Some(&id.to_string()),
            data,
            retry: None,
        })
        .unwrap()
    }

    fn ids(items: &VecDeque<Delivery>) -> Vec<String> {
        items
            .iter()
            .map(|d| String::from_utf8_lossy(&d.bytes).into_owned())
            .map(|text| {
                text.lines()
                    .find_map(|l| l.strip_prefix("id: "))
                    .unwrap_or(if text.starts_with(':') { "hb" } else { "-" })
                    .to_owned()
            })
            .collect()
    }

    fn run(conflation: &Conflation, items: &mut VecDeque<Delivery>, from: usize) -> u64 {
        conflation.apply(items, from, |d| d, |d| d)
    }

    #[test]
    fn the_newest_per_type_stays_in_arrival_order() {
        let now = Instant::now();
        let event = |t, id| Delivery::of_frame(&frame(t, id, "x"), DeliveryKind::Event, now);
        let mut items = VecDeque::from([
            event("a", 1),
            event("b", 2),
            Delivery::new(Bytes::from_static(b":\n"), DeliveryKind::Heartbeat, now),
            event("a", 3),
            Delivery::new(
                Bytes::from_static(b"retry: 5\n\n"),
                DeliveryKind::Advice,
                now,
            ),
            Delivery::batch(
                [frame("c", 4, "x"), frame("b", 5, "x"), frame("c", 6, "x")].iter(),
                now,
            ),
        ]);
        let by_type = Conflation::new(ConflationKey::EventType);
        assert_eq!(run(&by_type, &mut items, 0), 3);
        assert_eq!(ids(&items), ["3", "-", "5", "6"]);
    }

    #[test]
    fn the_front_is_left_alone_and_json_fields_key() {
        let now = Instant::now();
        let event = |id, data| Delivery::of_frame(&frame("q", id, data), DeliveryKind::Event, now);
        let mut items = VecDeque::from([
            event(1, r#"{"s":"A","p":1}"#),
            event(2, r#"{"s":"A","p":2}"#),
            event(3, r#"{"s":"B","p":3}"#),
            event(4, "not json"),
            event(5, r#"{"s":"A","p":5}"#),
            event(6, r#"{"p":6}"#),
        ]);
        let by_field = Conflation::new(ConflationKey::DataField("s".into()));
        // Item 0 has started to go out: it stays whatever comes after it.
        assert_eq!(run(&by_field, &mut items, 1), 2);
        assert_eq!(ids(&items), ["1", "3", "5", "6"]);
        assert_eq!(data_field(&items[1].bytes, "s"), b"\"B\"");
    }

    #[test]
    fn the_note_says_how_many() {
        assert_eq!(
            &skipped_note(12)[..],
            b"event: skipped\ndata: {\"skipped\":12}\n\n"
        );
    }
}
