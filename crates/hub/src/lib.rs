//! Topics and fan-out: the heart of the gateway.
//!
//! # The fan-out policy
//!
//! * **One feed per topic.** The first subscriber of a topic opens its feed
//!   (the upstream connection, which the `upstream` crate implements through
//!   [`TopicPublisher`]); every later subscriber shares it. After the last
//!   subscriber leaves, the feed stays open for `linger`, then closes.
//! * **One `Bytes` per frame.** The feed publishes each event as one
//!   [`Frame`](sse_gateway_codec::Frame); every subscriber is offered a clone
//!   of the same `Bytes` (a reference count, never a copy or a re-encoding).
//! * **Sinks, never waits.** A topic offers each frame to each subscriber's
//!   [`SubscriberSink`] and never waits on one: a sink either takes the frame
//!   or says it is full. Sinks are bounded in bytes (`client_queue`); a
//!   subscriber whose sink is full is **disconnected** as slow and counted,
//!   and everyone else carries on. It comes back with `Last-Event-ID` and is
//!   replayed. The sinks themselves (a queue drained by the client's own
//!   task, a sink that writes to the socket itself) are the `sinks` crate's;
//!   the hub knows only the trait.
//! * **Replay.** Each topic keeps its last `replay.events` frames (at most
//!   `replay.max_age` old) in a [`ReplayRing`]. A subscriber that joins with a
//!   `Last-Event-ID` found in the ring is offered every later frame, then the
//!   live stream: joining takes the ring and the live position under the
//!   topic's one short critical section, so nothing is missed or doubled at
//!   the hand-over. An id not in the ring is counted as a miss and, if the
//!   route asks for it, answered with a `gap` event first.
//! * **Advice and heartbeats.** A joining subscriber is first offered a
//!   `retry:` line: the upstream's last `retry` for the topic, or the route's
//!   `client_retry` with ±20% jitter. One timer per topic offers a comment
//!   (`:\n`) to every subscriber when the topic has been idle for
//!   `heartbeat`. Gateway-made frames never carry an `id`.
//! * **Stops.** A feed that says stop (the upstream answered 204) closes every
//!   subscriber, and new subscribers are refused with
//!   [`Refusal::Stopped`] until `stop_holdoff` has passed.
//!
//! The hub knows nothing of HTTP, routes, CORS, configuration files or
//! pingora. See `LIFECYCLE.md` beside this crate for the topic and
//! subscriber state machines.

mod advice;
mod hub;
mod publisher;
mod replay;
mod settings;
mod sink;
#[cfg(feature = "testing")]
pub mod testing;
mod topic;

pub use advice::{jittered, jittered_retry};
pub use hub::{
    DeliveryRecorder, FeedFuture, Membership, SubscribeRequest, TopicHub, TopicInfo, OPEN_REFUSED,
};
pub use publisher::{TopicPublisher, UpstreamAnswer, UpstreamState};
pub use replay::{ReplayBudget, ReplayRing, Resume};
pub use settings::{HubLimits, TopicSettings};
pub use sink::{
    BatchPart, CloseReason, Delivery, DeliveryKind, DeliveryTally, Offer, OfferRound, Refusal,
    RoundEnd, SubscriberSink,
};
pub use topic::SHARD_MIN;
