//! [`Frame`]: the bytes of one event as every client receives them.

use bytes::Bytes;

use crate::text::{validated, Span};

/// One complete SSE block (ending with its empty line), shared by every
/// subscriber: cloning a frame increments one reference count.
///
/// A frame built by the [`Decoder`](crate::Decoder) holds the upstream's own
/// bytes when they were canonical, or a canonical rebuild of the same lines
/// (see the crate documentation); either way it is valid UTF-8. [`Frame::id`]
/// is `Some` exactly when the block set (or, with an empty value, reset) the
/// client's last event ID; [`Frame::event_type`] is `Some` exactly when the
/// block dispatches an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    bytes: Bytes,
    /// The `id` field's value in `bytes`, when the block has a valid one;
    /// [`Span::NONE`] otherwise (a bare span keeps frames and events small).
    id: Span,
    /// Where the frame's event type is (see [`EventTypeRange`]).
    event_type: EventTypeRange,
}

/// Where a frame's event type is in its bytes: small and `Copy`, so that it
/// travels beside a clone of the frame's bytes (a fan-out delivery) and lets
/// a per-client filter read the type without parsing or copying anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventTypeRange(Span);

// === impl Frame ===

impl Frame {
    /// Wraps bytes that form complete SSE blocks and set no event id, such
    /// as a heartbeat comment or `retry` advice made by the gateway.
    pub fn without_id(bytes: Bytes) -> Self {
        Self {
            bytes,
            id: Span::NONE,
            event_type: EventTypeRange::NONE,
        }
    }

    /// A frame whose `id` value is `bytes[id]` and that dispatches no event
    /// (an id update); `bytes` is valid UTF-8.
    pub(crate) fn with_id_span(bytes: Bytes, id: Option<Span>) -> Self {
        Self {
            bytes,
            id: id.unwrap_or(Span::NONE),
            event_type: EventTypeRange::NONE,
        }
    }

    /// A frame that dispatches an event of type `bytes[event_type]` (an
    /// empty span: `message`), with the `id` value `bytes[id]`; `bytes` is
    /// valid UTF-8.
    pub(crate) fn event(bytes: Bytes, id: Option<Span>, event_type: Span) -> Self {
        let event_type = if event_type.is_empty() {
            EventTypeRange::MESSAGE
        } else {
            EventTypeRange(event_type)
        };
        Self {
            bytes,
            id: id.unwrap_or(Span::NONE),
            event_type,
        }
    }

    /// The bytes to write to a client.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// The id this frame gives the client's last event ID, if it sets one.
    pub fn id(&self) -> Option<&str> {
        if self.id == Span::NONE {
            None
        } else {
            Some(validated(&self.bytes, self.id.range()))
        }
    }

    /// The type of the event this frame dispatches (`message` when the
    /// block named none); `None` when it dispatches nothing (an id update,
    /// or a gateway-made comment or advice).
    pub fn event_type(&self) -> Option<&str> {
        self.event_type
            .of(&self.bytes)
            .map(|t| validated(t, 0..t.len()))
    }

    /// Where [`Frame::event_type`] is, to keep beside the bytes.
    pub fn event_type_range(&self) -> EventTypeRange {
        self.event_type
    }

    /// Whether the block named its event type (an `event` field with a
    /// non-empty value).
    pub fn has_explicit_type(&self) -> bool {
        self.event_type != EventTypeRange::NONE && self.event_type != EventTypeRange::MESSAGE
    }

    /// Length of the frame in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the frame is empty (never true for decoded frames).
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Takes the bytes out of the frame.
    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }
}

// === impl EventTypeRange ===

impl EventTypeRange {
    /// The frame dispatches no event.
    pub const NONE: Self = Self(Span::NONE);

    /// The frame dispatches an event of the default type, `message`.
    const MESSAGE: Self = Self(Span::EMPTY);

    /// The event type in `bytes`, the bytes of the frame this range was
    /// taken from: `None` when the frame dispatches no event. Other bytes
    /// give `None` or some bytes, never a panic.
    pub fn of(self, bytes: &[u8]) -> Option<&[u8]> {
        match self {
            Self::NONE => None,
            Self::MESSAGE => Some(b"message"),
            Self(span) => bytes.get(span.range()),
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use crate::{CodecLimits, Decoder, Item};

    /// Every frame of `input`, with what it dispatches.
    fn frames(input: &'static str) -> Vec<(Option<String>, bool)> {
        let mut decoder = Decoder::new(CodecLimits::default());
        decoder
            .decode(Bytes::from_static(input.as_bytes()))
            .filter_map(|item| match item {
                Item::Event(event) => Some(event.frame().clone()),
                Item::IdUpdate(frame) => Some(frame),
                _ => None,
            })
            .map(|f| {
                let range = f.event_type_range();
                assert_eq!(range.of(f.bytes()), f.event_type().map(str::as_bytes));
                (f.event_type().map(str::to_owned), f.has_explicit_type())
            })
            .collect()
    }

    #[test]
    fn a_frame_knows_the_type_it_dispatches() {
        let got = frames(
            "event: price\r\ndata: 1\r\n\r\ndata: 2\n\nid: 3\n\nevent: a\nevent: b\rdata\n\nevent:\ndata: x\n\n",
        );
        let want = [
            (Some("price"), true),
            (Some("message"), false),
            (None, false),
            (Some("b"), true),
            (Some("message"), false),
        ];
        let want: Vec<(Option<String>, bool)> = want
            .iter()
            .map(|(t, explicit)| (t.map(str::to_owned), *explicit))
            .collect();
        assert_eq!(got, want);
    }
}
