//! [`TopicPublisher`]: the feed's handle on its topic.

use std::sync::Arc;
use std::time::Instant;

use sse_gateway_codec::Frame;
use sse_gateway_metrics::{RouteMetrics, TopicMetrics};
use tokio::sync::watch;

use crate::topic::Topic;
use crate::TopicSettings;

/// What the feed of a topic is doing, for `/topics` and `upstream_up`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamState {
    /// Opening the connection.
    Connecting,
    /// Streaming.
    Live,
    /// Waiting before the next attempt.
    Backoff,
    /// The upstream said stop (HTTP 204).
    Stopped,
    /// The upstream refused the topic (401, 403, 404, 410, or not an event
    /// stream).
    Refused,
}

/// What the upstream answered a topic: what the first subscribers of a new
/// topic wait for before they get their own answer (see
/// [`Membership::upstream_answer`](crate::Membership::upstream_answer)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamAnswer {
    /// Nothing yet: the first attempt is under way.
    Pending,
    /// 200 `text/event-stream`: the topic streams.
    Streaming,
    /// An attempt failed in a way worth retrying (a 5xx, a reset, a
    /// timeout): the feed retries with backoff while clients stay connected.
    Retrying,
    /// The upstream answered 204: the topic is stopped.
    Stopped,
    /// The upstream refused the topic and it ended; `status` is what its
    /// clients are answered (the upstream's 401, 403, 404 or 410; 502 for a
    /// response that is not an event stream).
    Refused {
        /// The HTTP status.
        status: u16,
    },
}

/// Given to a topic's feed when the topic opens. The feed publishes what the
/// upstream sends and watches [`TopicPublisher::closed`] to know when to stop.
pub struct TopicPublisher {
    topic: Arc<Topic>,
    closed: watch::Receiver<bool>,
}

// === impl UpstreamState ===

impl UpstreamState {
    /// A lower-case name for logs and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connecting => "connecting",
            Self::Live => "live",
            Self::Backoff => "backoff",
            Self::Stopped => "stopped",
            Self::Refused => "refused",
        }
    }
}

// === impl TopicPublisher ===

impl TopicPublisher {
    pub(crate) fn new(topic: Arc<Topic>) -> Self {
        let closed = topic.closed_watch();
        Self { topic, closed }
    }

    /// The route that opened the topic.
    pub fn route(&self) -> &str {
        &self.topic.key.route
    }

    /// The topic name.
    pub fn topic(&self) -> &str {
        &self.topic.key.topic
    }

    /// The topic's settings.
    pub fn settings(&self) -> &TopicSettings {
        &self.topic.settings
    }

    /// The id to send as `Last-Event-ID` when (re)connecting: the last id
    /// published, or (when the route resumes from clients) the first
    /// subscriber's before any event arrived.
    pub fn last_event_id(&self) -> Option<String> {
        self.topic.last_event_id()
    }

    /// Forgets the stored `Last-Event-ID` (the upstream answered 4xx to a
    /// request carrying it): the next connection starts from the live edge.
    /// The replay ring is emptied with it (what it holds is no longer
    /// followed by what comes next) and current subscribers get the route's
    /// `gap` event, if it has one.
    pub fn forget_last_event_id(&self) {
        self.topic.forget_last_event_id(Instant::now());
    }

    /// Fans a frame out to every subscriber and keeps it for replay.
    pub fn publish(&self, frame: Frame, received: Instant) {
        self.topic.publish(frame, received);
    }

    /// Fans out frames that arrived together (one read from the upstream)
    /// as one delivery per subscriber: one write each instead of one per
    /// frame, at no cost in latency. Every frame is kept for replay and
    /// counted as it would be by [`TopicPublisher::publish`].
    pub fn publish_all(&self, frames: &mut Vec<Frame>, received: Instant) {
        self.topic.publish_all(frames, received);
    }

    /// The upstream sent `retry`: tell current and future clients.
    pub fn advise_retry(&self, ms: u64) {
        self.topic.advise_retry(ms, Instant::now());
    }

    /// Reports the feed's state.
    pub fn set_state(&self, state: UpstreamState) {
        self.topic.set_upstream(state);
    }

    /// The upstream said stop (HTTP 204): closes every subscriber and refuses
    /// new ones for the hold-off. The feed should return after this.
    pub fn stop(&self) {
        self.topic.stop(Instant::now());
    }

    /// The upstream refused the topic: every subscriber is closed, clients
    /// joining in the next moment are answered `status`, then the topic
    /// closes. The feed should return after this.
    pub fn refuse(&self, status: u16) {
        self.topic.refuse(status, Instant::now());
    }

    /// Whether the topic has closed (its feed should return).
    pub fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }

    /// Resolves once the topic closes (linger over, hold-off over, shutdown).
    pub async fn closed(&self) {
        let mut closed = self.closed.clone();
        // An error means the topic is gone, which is closed too.
        let _ = closed.wait_for(|closed| *closed).await;
    }

    /// The topic's metric handles (reconnects, events).
    pub fn metrics(&self) -> &TopicMetrics {
        &self.topic.metrics
    }

    /// The route's metric handles (upstream errors).
    pub fn route_metrics(&self) -> &RouteMetrics {
        &self.topic.route_metrics
    }
}

impl std::fmt::Debug for TopicPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TopicPublisher")
            .field("route", &self.route())
            .field("topic", &self.topic())
            .finish()
    }
}
