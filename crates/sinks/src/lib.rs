//! Delivering to subscribers, on both paths: the sinks a topic offers its
//! frames to (the hub knows only its one small trait,
//! [`SubscriberSink`](sse_gateway_hub::SubscriberSink)), what a stream
//! writes at its start and end, and the drain.
//!
//! * **The direct path** (plain HTTP/1.1): pingora accepts the connection,
//!   parses the request, routes it, checks access and writes the response
//!   header; then the gateway takes the socket out of pingora and hands it
//!   to a [`DirectSink`]. From then on the topic writes each frame to the
//!   socket itself, in its offer round, as one non-blocking `send` of a
//!   chunk (size line, frame, CRLF) made once per frame (and thread) and
//!   shared by every direct subscriber (`chunk.rs`); a round's sends go out
//!   together through one `io_uring_enter` where the kernel allows
//!   (`round.rs`, `ring.rs`). A client that has not acknowledged the last
//!   frames it was sent gets the next ones gathered into one vectored write,
//!   within the route's `coalesce_window`
//!   ([`Coalescing`]). No per-subscriber task is woken, no bytes are
//!   copied or framed per subscriber. A socket that does not take a whole
//!   chunk gets a pending queue bounded by `client_queue` and is flushed by
//!   its own small task on write-readiness ([`serve`]); that task otherwise
//!   only waits for the client to leave (`EPOLLRDHUP`/EOF), the topic to
//!   close the stream, the drain, or credential expiry (which ends the
//!   stream with the route's [`Expiry`] notice). Its states are a
//!   type (`lifecycle.rs`), model-checked with loom.
//! * **The session path** (TLS, HTTP/2): a [`ClientQueue`] per subscriber,
//!   drained by the subscriber's task into pingora ([`joined`] makes one
//!   write of what is pending).
//! * **Either path, per client:** a [`FilteredSink`] in front of the
//!   subscriber's sink passes on only the event types it asked for
//!   (`?event=a,b`), from the shared frames.
//! * **Several topics, one client:** a [`MultiQueue`] fed by one
//!   [`MemberSink`] per member topic, drained by the stream's task, which
//!   gives each event the composite id of every member's position
//!   ([`MemberIds`]).
//! * **Both:** the [`Drain`] (each stream's own jittered final `retry:`),
//!   the [`OPENING_COMMENT`] and the [`WRITE_TIMEOUT`]. Both paths share the
//!   hub, so replay hand-over, heartbeats, the slow-client policy, `retry:`
//!   advice and metrics are the same.
//!
//! This crate knows nothing of pingora: the take-over and the session's
//! writes are in the gateway binary. See `LIFECYCLE.md` for the direct
//! subscriber's states.

mod chunk;
mod coalesce;
mod conflate;
mod drain;
mod expiry;
mod filter;
mod lifecycle;
mod multi;
mod queue;
mod ring;
mod round;
mod sink;
mod stream;

pub use conflate::{Conflation, ConflationKey, SKIPPED_EVENT};
pub use drain::Drain;
pub use expiry::{Expiry, EXPIRED_DATA};
pub use filter::{EventFilter, FilterError, FilteredSink, MAX_FILTER_TYPES, MAX_FILTER_TYPE_LEN};
pub use multi::{MemberIds, MemberSink, MultiItem, MultiQueue, MAX_MEMBER_ID};
pub use queue::{joined, ClientQueue};

use std::time::Duration;

use bytes::Bytes;

/// Written first on a stream that has nothing queued when it starts, so the
/// response header leaves at once (a comment: clients ignore it). Not
/// counted as delivered.
pub const OPENING_COMMENT: Bytes = Bytes::from_static(b":\n");

/// A client that takes nothing for this long while bytes wait for it is cut
/// off (both paths).
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
pub use coalesce::Coalescing;
pub use round::batched_sends;
pub use sink::{DirectSettings, DirectSink};
pub use stream::{serve, DirectOutcome};
