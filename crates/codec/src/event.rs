//! [`Event`]: a dispatched event, as a browser's `MessageEvent` would show it.

use bytes::Bytes;

use crate::text::{validated, Span};
use crate::Frame;

/// An event dispatched by the [`Decoder`](crate::Decoder).
///
/// Its fields are ranges of its [`Frame`]'s bytes, so an event holds one
/// reference count and copies nothing; only data spread over several `data`
/// lines is joined into a buffer of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub(crate) frame: Frame,
    pub(crate) data: EventData,
    pub(crate) last_event_id: LastEventId,
}

/// Where an event's data lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EventData {
    /// One `data` line: a range of the frame.
    InFrame(Span),
    /// Several `data` lines joined with LF.
    Joined(String),
}

/// Where an event's `lastEventId` lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LastEventId {
    /// Set by this very frame.
    FromFrame,
    /// Set earlier in the stream (valid UTF-8, shared between events).
    Earlier(Bytes),
}

// === impl Event ===

impl Event {
    /// The event type: the last `event` field of the block, or `message`.
    pub fn event_type(&self) -> &str {
        self.frame.event_type().unwrap_or("message")
    }

    /// Whether the block named a type (an `event` field with a non-empty value).
    pub fn has_explicit_type(&self) -> bool {
        self.frame.has_explicit_type()
    }

    /// The data: every `data` field's value joined with LF.
    pub fn data(&self) -> &str {
        match &self.data {
            EventData::InFrame(span) => validated(self.frame.bytes(), span.range()),
            EventData::Joined(data) => data,
        }
    }

    /// The stream's last event ID after this event (`MessageEvent.lastEventId`).
    pub fn last_event_id(&self) -> &str {
        match &self.last_event_id {
            LastEventId::FromFrame => self.frame.id().unwrap_or_default(),
            LastEventId::Earlier(id) => validated(id, 0..id.len()),
        }
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
