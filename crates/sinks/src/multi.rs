//! Multi-topic streams: one client subscribed to several topics over one
//! connection. Each member topic offers to its own [`MemberSink`]; all of
//! them feed one [`MultiQueue`], which the stream's task drains in arrival
//! order and rewrites ([`MemberIds`]) so that every event carries the
//! composite id of all members' positions.
//!
//! * **Bounded as one client.** The queue's live bytes (replay excluded, as
//!   on the other paths) are bounded by the members' `client_queue`s
//!   together; past it the whole stream is cut as slow (its members leave
//!   their topics), and the client resumes every member with the composite
//!   id.
//! * **Members end alone.** A member whose topic ends (its upstream
//!   stopped or refused it) queues a [`MultiItem::Ended`]; the stream reports
//!   it in-band and goes on with the others.
//! * **Composite ids** ([`MemberIds`]): `m1.` then one segment per member,
//!   in the order of the request's topics: the base64url (no padding) of
//!   that member's last event id, empty when it has none. Only letters,
//!   digits, `-`, `_` and `.`, so it is safe in a URL and a header. A client
//!   reconnecting with it resumes every member from its own replay ring.
//!   A member id longer than [`MAX_MEMBER_ID`] bytes is not carried (its
//!   segment is empty: that member resumes live), so a composite stays
//!   under a few kilobytes however long the upstreams' ids, and a
//!   `Last-Event-ID` longer than a composite can be is not parsed.

use std::collections::VecDeque;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use bytes::{BufMut, Bytes, BytesMut};
use parking_lot::Mutex;
use sse_gateway_codec::{encode_event, CodecLimits, Decoder, Item, OutgoingEvent};
use sse_gateway_hub::{CloseReason, Delivery, DeliveryKind, Offer, OfferRound, SubscriberSink};
use tokio::sync::Notify;

/// The version prefix of composite ids.
const PREFIX: &str = "m1";

/// The longest member id a composite id carries, in bytes (a UUID is 36,
/// a Redis stream id about 20): with at most 64 members, a composite is
/// at most about 11 KB.
pub const MAX_MEMBER_ID: usize = 128;

/// The longest base64url segment of a member id of [`MAX_MEMBER_ID`] bytes.
const MAX_SEGMENT: usize = MAX_MEMBER_ID.div_ceil(3) * 4;

/// What a multi-topic stream's task takes from its queue.
#[derive(Debug, Clone)]
pub enum MultiItem {
    /// A delivery of member `member`'s topic.
    Delivery {
        /// The member's index (its place in the request).
        member: usize,
        /// What the topic offered.
        delivery: Delivery,
    },
    /// Member `member`'s topic ended the subscription.
    Ended {
        /// The member's index.
        member: usize,
        /// Why.
        reason: CloseReason,
    },
}

/// The pending items of one multi-topic stream, bounded in live bytes.
#[derive(Debug)]
pub struct MultiQueue {
    state: Mutex<MultiState>,
    ready: Notify,
    limit: usize,
}

#[derive(Debug, Default)]
struct MultiState {
    items: VecDeque<MultiItem>,
    bytes: usize,
    closed: Option<CloseReason>,
}

/// The sink one member topic offers to.
#[derive(Debug)]
pub struct MemberSink {
    queue: Arc<MultiQueue>,
    member: usize,
}

// === impl MultiQueue ===

impl MultiQueue {
    /// A queue of at most `limit` pending live bytes.
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(MultiState::default()),
            ready: Notify::new(),
            limit,
        })
    }

    /// The sink of member `member`.
    pub fn member(self: &Arc<Self>, member: usize) -> Arc<MemberSink> {
        Arc::new(MemberSink {
            queue: self.clone(),
            member,
        })
    }

    /// Waits for items and moves every pending one into `out`; the reason
    /// once the queue is closed (then nothing more is taken).
    pub async fn next_batch(&self, out: &mut Vec<MultiItem>) -> Result<(), CloseReason> {
        loop {
            {
                let mut state = self.state.lock();
                if let Some(reason) = state.closed {
                    return Err(reason);
                }
                if !state.items.is_empty() {
                    out.extend(state.items.drain(..));
                    state.bytes = 0;
                    return Ok(());
                }
            }
            self.ready.notified().await;
        }
    }

    fn push(&self, item: MultiItem, live_bytes: usize) -> Offer {
        let mut state = self.state.lock();
        if state.closed.is_some() {
            return Offer::Closed;
        }
        if live_bytes > 0 && state.bytes > 0 && state.bytes + live_bytes > self.limit {
            state.items.clear();
            state.bytes = 0;
            state.closed = Some(CloseReason::SlowClient);
            drop(state);
            self.ready.notify_one();
            return Offer::Full;
        }
        state.bytes += live_bytes;
        state.items.push_back(item);
        drop(state);
        self.ready.notify_one();
        Offer::Accepted
    }
}

impl SubscriberSink for MemberSink {
    fn offer(&self, delivery: &Delivery, _round: &mut OfferRound<'_>) -> Offer {
        let live = match delivery.kind {
            DeliveryKind::Replay => 0,
            _ => delivery.bytes.len(),
        };
        let item = MultiItem::Delivery {
            member: self.member,
            delivery: delivery.clone(),
        };
        self.queue.push(item, live)
    }

    fn close(&self, reason: CloseReason) {
        if reason == CloseReason::SlowClient {
            // The queue closed itself when it was full.
            return;
        }
        let item = MultiItem::Ended {
            member: self.member,
            reason,
        };
        self.queue.push(item, 0);
    }
}

/// Every member's last event id, and the rewriting of frames to carry the
/// composite of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberIds {
    ids: Vec<Option<String>>,
}

// === impl MemberIds ===

impl MemberIds {
    /// No id yet for any of `members` members.
    pub fn new(members: usize) -> Self {
        Self {
            ids: vec![None; members],
        }
    }

    /// The members' ids in a composite id for `members` members; `None`
    /// when it is not one (another version, another member count, a
    /// segment that is not base64url of a valid id).
    pub fn parse(composite: &str, members: usize) -> Option<Self> {
        // Longer than any composite of `members` members: not looked into.
        let longest = PREFIX.len() + members.saturating_mul(MAX_SEGMENT + 1);
        if composite.len() > longest {
            return None;
        }
        let mut segments = composite.split('.');
        if segments.next() != Some(PREFIX) {
            return None;
        }
        let ids: Vec<Option<String>> = segments
            .take(members.saturating_add(1))
            .map(|segment| {
                if segment.is_empty() {
                    return Some(None);
                }
                if segment.len() > MAX_SEGMENT {
                    return None;
                }
                let raw = URL_SAFE_NO_PAD.decode(segment).ok()?;
                let id = String::from_utf8(raw).ok()?;
                let valid = id.len() <= MAX_MEMBER_ID
                    && !id.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0));
                valid.then_some(Some(id))
            })
            .collect::<Option<_>>()?;
        (ids.len() == members).then_some(Self { ids })
    }

    /// Member `member`'s last id.
    pub fn get(&self, member: usize) -> Option<&str> {
        self.ids.get(member).and_then(|id| id.as_deref())
    }

    /// The composite id.
    pub fn composite(&self) -> String {
        let mut out = String::from(PREFIX);
        for id in &self.ids {
            out.push('.');
            if let Some(id) = id {
                out.push_str(&URL_SAFE_NO_PAD.encode(id));
            }
        }
        out
    }

    /// What the stream writes for a delivery of member `member`: its
    /// events with the composite id (after this member's id moved on),
    /// an id update as an `id:` block of the composite, anything else as
    /// it is.
    pub fn rewrite(&mut self, member: usize, delivery: &Delivery, out: &mut BytesMut) {
        match delivery.kind {
            DeliveryKind::Event | DeliveryKind::Replay | DeliveryKind::Batch { .. } => {
                for frame in delivery.split() {
                    self.rewrite_frame(member, &frame.bytes, out);
                }
            }
            DeliveryKind::Heartbeat | DeliveryKind::Advice => out.put_slice(&delivery.bytes),
        }
    }

    /// Member `member`'s last id is now `id` (not carried when longer than
    /// [`MAX_MEMBER_ID`]: the member then resumes live, rather than from an
    /// older position that would repeat events).
    fn moved_on(&mut self, member: usize, id: &str) {
        if let Some(slot) = self.ids.get_mut(member) {
            *slot = (id.len() <= MAX_MEMBER_ID).then(|| id.to_owned());
        }
    }

    fn rewrite_frame(&mut self, member: usize, frame: &Bytes, out: &mut BytesMut) {
        let mut decoder = Decoder::new(CodecLimits::with_max_event_size(frame.len() + 1));
        for item in decoder.decode(frame.clone()) {
            match item {
                Item::Event(event) => {
                    if let Some(id) = event.id() {
                        self.moved_on(member, id);
                    }
                    let composite = self.composite();
                    let event_type = event.has_explicit_type().then(|| event.event_type());
                    let encoded = encode_event(&OutgoingEvent {
                        event_type,
                        id: Some(&composite),
                        data: event.data(),
                        retry: None,
                    });
                    match encoded {
                        Ok(encoded) => out.put_slice(encoded.bytes()),
                        // A type the encoder refuses (a NUL, which the
                        // standard allows there): written field by field.
                        Err(_) => put_fields(out, event_type, &composite, event.data()),
                    }
                }
                Item::IdUpdate(update) => {
                    if let Some(id) = update.id() {
                        self.moved_on(member, id);
                    }
                    out.put_slice(format!("id: {}\n\n", self.composite()).as_bytes());
                }
                Item::Retry(ms) => out.put_slice(format!("retry: {ms}\n\n").as_bytes()),
                Item::Comment(_) | Item::Error(_) => {}
            }
        }
    }
}

/// An event written as its fields, for what [`encode_event`] refuses;
/// `data` lines split on LF (the decoder joined them with LF).
fn put_fields(out: &mut BytesMut, event_type: Option<&str>, id: &str, data: &str) {
    if let Some(event_type) = event_type {
        out.put_slice(b"event: ");
        out.put_slice(event_type.as_bytes());
        out.put_u8(b'\n');
    }
    out.put_slice(b"id: ");
    out.put_slice(id.as_bytes());
    out.put_u8(b'\n');
    for line in data.split('\n') {
        out.put_slice(b"data: ");
        out.put_slice(line.as_bytes());
        out.put_u8(b'\n');
    }
    out.put_u8(b'\n');
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    #[test]
    fn composite_ids_round_trip_and_refuse_what_they_are_not() {
        let mut ids = MemberIds::new(3);
        assert_eq!(ids.composite(), "m1...");
        ids.ids[0] = Some("41".into());
        ids.ids[2] = Some("a/b?c d".into());
        let composite = ids.composite();
        assert!(composite
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)));
        assert_eq!(MemberIds::parse(&composite, 3), Some(ids.clone()));
        assert_eq!(
            MemberIds::parse(&composite, 2),
            None,
            "another member count"
        );
        assert_eq!(MemberIds::parse("41", 1), None);
        assert_eq!(MemberIds::parse("m2.NDE", 1), None);
        assert_eq!(MemberIds::parse("m1.!!", 1), None);
        let newline = URL_SAFE_NO_PAD.encode("a\nb");
        assert_eq!(MemberIds::parse(&format!("m1.{newline}"), 1), None);
    }

    #[test]
    fn long_ids_are_neither_carried_nor_parsed() {
        let longest = "x".repeat(MAX_MEMBER_ID);
        let too_long = "x".repeat(MAX_MEMBER_ID + 1);
        let mut ids = MemberIds::new(2);
        ids.moved_on(0, &longest);
        ids.moved_on(1, "7");
        let composite = ids.composite();
        assert_eq!(MemberIds::parse(&composite, 2), Some(ids.clone()));
        // A longer id empties the segment: that member resumes live.
        ids.moved_on(0, &too_long);
        assert_eq!(ids.get(0), None);
        assert_eq!(
            ids.composite(),
            format!("m1..{}", URL_SAFE_NO_PAD.encode("7"))
        );
        // A composite carrying one (not one the gateway wrote) is refused,
        // as is anything longer than a composite of that many members.
        let forged = format!("m1.{}.", URL_SAFE_NO_PAD.encode(&too_long));
        assert_eq!(MemberIds::parse(&forged, 2), None);
        let huge = format!("m1{}", ".".repeat(1_000_000));
        assert_eq!(MemberIds::parse(&huge, 2), None);
        assert_eq!(MemberIds::parse("m1....", 2), None, "too many segments");
    }

    #[test]
    fn frames_get_the_composite_and_members_move_on_alone() {
        let now = Instant::now();
        let event = |text: &'static str| {
            let mut decoder = Decoder::new(CodecLimits::default());
            let frame = decoder
                .decode(Bytes::from_static(text.as_bytes()))
                .find_map(|item| match item {
                    Item::Event(e) => Some(e.frame().clone()),
                    Item::IdUpdate(f) => Some(f),
                    _ => None,
                })
                .unwrap();
            Delivery::of_frame(&frame, DeliveryKind::Event, now)
        };
        let mut ids = MemberIds::new(2);
        let mut out = BytesMut::new();
        ids.rewrite(
            1,
            &event("event: news\nid: 7\ndata: a\ndata: b\n\n"),
            &mut out,
        );
        ids.rewrite(0, &event("id: 3\ndata: x\n\n"), &mut out);
        ids.rewrite(0, &event("id: 4\n\n"), &mut out);
        let heartbeat = Delivery::new(Bytes::from_static(b":\n"), DeliveryKind::Heartbeat, now);
        ids.rewrite(0, &heartbeat, &mut out);
        let c1 = format!("m1..{}", URL_SAFE_NO_PAD.encode("7"));
        let c2 = format!(
            "m1.{}.{}",
            URL_SAFE_NO_PAD.encode("3"),
            URL_SAFE_NO_PAD.encode("7")
        );
        let c3 = format!(
            "m1.{}.{}",
            URL_SAFE_NO_PAD.encode("4"),
            URL_SAFE_NO_PAD.encode("7")
        );
        let want = format!(
            "event: news\nid: {c1}\ndata: a\ndata: b\n\nid: {c2}\ndata: x\n\nid: {c3}\n\n:\n"
        );
        assert_eq!(String::from_utf8_lossy(&out), want);
        assert_eq!((ids.get(0), ids.get(1)), (Some("4"), Some("7")));
        // A type with a NUL (allowed by the standard) still goes out.
        let mut out = BytesMut::new();
        ids.rewrite(0, &event("event: a\0b\nid: 5\ndata: y\n\n"), &mut out);
        let c4 = format!(
            "m1.{}.{}",
            URL_SAFE_NO_PAD.encode("5"),
            URL_SAFE_NO_PAD.encode("7")
        );
        assert_eq!(
            String::from_utf8_lossy(&out),
            format!("event: a\0b\nid: {c4}\ndata: y\n\n")
        );
    }
}
