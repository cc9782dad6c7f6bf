//! Errors of the decoder and the encoder.

use thiserror::Error;

/// A problem in the incoming stream. The decoder has already recovered: it
/// discarded the offending event and resumes at the next empty line.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// An event grew past [`CodecLimits::max_event_size`](crate::CodecLimits).
    #[error("event larger than the limit of {limit} bytes")]
    EventTooLarge {
        /// The configured limit.
        limit: usize,
    },
    /// A line grew past [`CodecLimits::max_line_len`](crate::CodecLimits).
    #[error("line longer than the limit of {limit} bytes")]
    LineTooLong {
        /// The configured limit.
        limit: usize,
    },
}

/// An event that cannot be written as SSE without changing its meaning.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EncodeError {
    /// The event type contains CR, LF or NUL.
    #[error("event type contains CR, LF or NUL")]
    InvalidEventType,
    /// The id contains CR, LF or NUL (a client would ignore or split it).
    #[error("event id contains CR, LF or NUL")]
    InvalidId,
}
