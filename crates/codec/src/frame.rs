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
/// client's last event ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    bytes: Bytes,
    /// The `id` field's value in `bytes`, when the block has a valid one;
    /// [`Span::NONE`] otherwise (a bare span keeps frames and events small).
    id: Span,
}

// === impl Frame ===

impl Frame {
    /// Wraps bytes that form complete SSE blocks and set no event id, such
    /// as a heartbeat comment or `retry` advice made by the gateway.
    pub fn without_id(bytes: Bytes) -> Self {
        Self {
            bytes,
            id: Span::NONE,
        }
    }

    /// A frame whose `id` value is `bytes[id]`; `bytes` is valid UTF-8.
    pub(crate) fn with_id_span(bytes: Bytes, id: Option<Span>) -> Self {
        Self {
            bytes,
            id: id.unwrap_or(Span::NONE),
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
