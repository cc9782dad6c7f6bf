//! [`Event`]: a dispatched event, as a browser's `MessageEvent` would show it.

use bytestring::ByteString;

use crate::Frame;

/// An event dispatched by the [`Decoder`](crate::Decoder).
///
/// The fields share memory with the frame when the upstream bytes were valid
/// UTF-8, so an event costs no copy of its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub(crate) event_type: ByteString,
    pub(crate) data: ByteString,
    pub(crate) last_event_id: ByteString,
    pub(crate) frame: Frame,
}

// === impl Event ===

impl Event {
    /// The event type: the last `event` field of the block, or `message`.
    pub fn event_type(&self) -> &str {
        if self.event_type.is_empty() {
            "message"
        } else {
            &self.event_type
        }
    }

    /// Whether the block named a type (an `event` field with a non-empty value).
    pub fn has_explicit_type(&self) -> bool {
        !self.event_type.is_empty()
    }

    /// The data: every `data` field's value joined with LF.
    pub fn data(&self) -> &str {
        &self.data
    }

    /// The stream's last event ID after this event (`MessageEvent.lastEventId`).
    pub fn last_event_id(&self) -> &str {
        &self.last_event_id
    }

    /// The id set by this very block, if it had a valid `id` field.
    pub fn id(&self) -> Option<&str> {
        self.frame.id()
    }

    /// The frame to forward to clients.
    pub fn frame(&self) -> &Frame {
        &self.frame
    }

    /// Takes the frame out of the event.
    pub fn into_frame(self) -> Frame {
        self.frame
    }
}
