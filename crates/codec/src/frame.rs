//! [`Frame`]: the bytes of one event as every client receives them.

use bytes::Bytes;
use bytestring::ByteString;

/// One complete SSE block (ending with its empty line), shared by every
/// subscriber: cloning a frame only increments reference counts.
///
/// A frame built by the [`Decoder`](crate::Decoder) holds the upstream's own
/// bytes when they were canonical, or a canonical rebuild of the same lines
/// (see the crate documentation). `id` is `Some` exactly when the block set
/// (or, with an empty value, reset) the client's last event ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    bytes: Bytes,
    id: Option<ByteString>,
}

// === impl Frame ===

impl Frame {
    /// Wraps bytes that already form one complete SSE block.
    ///
    /// The caller vouches that `bytes` ends with an empty line and that `id`
    /// is the value of its `id` field, if any. Use
    /// [`encode_event`](crate::encode_event) to build one from parts.
    pub fn from_parts(bytes: Bytes, id: Option<ByteString>) -> Self {
        Self { bytes, id }
    }

    /// The bytes to write to a client.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// The id this frame gives the client's last event ID, if it sets one.
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
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
