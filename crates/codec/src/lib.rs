//! The Server-Sent Events wire format, as the WHATWG HTML standard defines it
//! ("Server-sent events", §9.2.6 *Interpreting an event stream*).
//!
//! This crate owns the bytes: it turns an upstream byte stream into events
//! ([`Decoder`]), turns events into canonical wire bytes ([`encode_event`]),
//! and gives every parsed event the one [`Frame`] that the gateway hands to
//! every subscriber. It knows nothing of HTTP, sockets or tokio (it is
//! sans-IO), and never panics on any input.
//!
//! # The grammar (from the standard)
//!
//! ```text
//! stream        = [ bom ] *event
//! event         = *( comment / field ) end-of-line
//! comment       = colon *any-char end-of-line
//! field         = 1*name-char [ colon [ space ] *any-char ] end-of-line
//! end-of-line   = ( cr lf / cr / lf )
//! ```
//!
//! # How lines are interpreted
//!
//! The stream is decoded as UTF-8 with replacement of invalid sequences
//! (also when a sequence is split across reads); a byte order mark is removed
//! only at the very start of the stream. Lines end at CRLF, CR or LF, also when
//! the CR ends one read and the LF starts the next. Then, per line:
//!
//! * an empty line **dispatches** the event: the last event ID string takes the
//!   value of the last event ID buffer; if no `data` field was seen the event
//!   is not dispatched (its id still applies); otherwise the data buffer loses
//!   its final LF and the event is delivered with the event type (default
//!   `message`). The data and event type buffers are then reset;
//! * a line starting with `:` is a comment;
//! * otherwise the field name is everything before the first `:` (the whole
//!   line when there is none), and the value is the rest with exactly one
//!   leading space removed;
//! * `event` sets the event type buffer; `data` appends the value and a LF to
//!   the data buffer; `id` sets the last event ID buffer unless the value
//!   contains U+0000 (an empty value resets it); `retry` sets the reconnection
//!   time when the value is all ASCII digits; any other field is ignored.
//!
//! Once the stream ends, an event that was not terminated by an empty line is
//! discarded.
//!
//! # The forwarding form
//!
//! Every dispatched [`Event`] carries a [`Frame`]: ONE [`bytes::Bytes`] holding
//! the block of lines that produced it, ready to be written to any number of
//! clients, so that fan-out never copies or re-encodes per subscriber. The
//! frame is the upstream's own bytes (a zero-copy slice of what was read) when
//! they are already canonical: LF line ends only, valid UTF-8, no comment
//! lines, no line starting with a byte order mark. Otherwise it is rebuilt
//! once from the same lines: line ends become LF, invalid UTF-8 becomes
//! U+FFFD, comments and BOM-led lines (which no client interprets) are
//! dropped. Unknown fields and `retry` lines are kept either way, so that a
//! client reading the frame sees exactly what it would have seen connected to
//! the upstream, including fields that browsers ignore but polyfills read.
//!
//! # Limits
//!
//! [`CodecLimits`] bounds the length of one line and the size of one event.
//! Past either, the decoder yields [`Item::Error`], discards the event and
//! resynchronises at the next empty line; its memory never grows past the
//! limits.
//!
//! # Example
//!
//! ```
//! use bytes::Bytes;
//! use sse_gateway_codec::{Decoder, Item};
//!
//! let mut decoder = Decoder::default();
//! let mut events = Vec::new();
//! for chunk in ["id: 7\ndata: hel", "lo\n\n"] {
//!     for item in decoder.decode(Bytes::from(chunk)) {
//!         if let Item::Event(event) = item {
//!             events.push(event);
//!         }
//!     }
//! }
//! assert_eq!(events[0].data(), "hello");
//! assert_eq!(events[0].last_event_id(), "7");
//! assert_eq!(&events[0].frame().bytes()[..], b"id: 7\ndata: hello\n\n");
//! ```

mod decoder;
mod encoder;
mod error;
mod event;
mod field;
mod frame;
mod limits;
mod text;

pub use decoder::{Decoded, Decoder, Item};
pub use encoder::{encode_comment, encode_event, encode_retry, OutgoingEvent};
pub use error::{DecodeError, EncodeError};
pub use event::Event;
pub use frame::{EventTypeRange, Frame};
pub use limits::CodecLimits;
