//! Plain settings the gateway fills from its configuration.

use std::time::Duration;

/// Per-route behaviour of the topics it opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSettings {
    /// Offer a comment when a topic has been idle this long; zero = off.
    pub heartbeat: Duration,
    /// `retry:` advice offered to joining clients (±20% jitter); zero = none.
    pub client_retry: Duration,
    /// Frames kept for `Last-Event-ID` resume; zero = off.
    pub replay_events: usize,
    /// Oldest frame kept for resume.
    pub replay_max_age: Duration,
    /// Frame bytes one topic's ring keeps (besides the process-wide
    /// [`HubLimits::replay_memory`]).
    pub replay_max_bytes: usize,
    /// Bytes a subscriber may have pending before it is disconnected as slow.
    pub client_queue: usize,
    /// How long a topic's feed stays open after its last subscriber leaves.
    pub linger: Duration,
    /// After the feed says stop (HTTP 204), refuse new subscribers this long.
    pub stop_holdoff: Duration,
    /// Event type of the `gap` event sent on a replay miss; `None` = no event.
    pub gap_event: Option<String>,
    /// How long a busy topic gathers frames into one delivery; zero = each
    /// frame is offered when it arrives. A frame that arrives when the topic
    /// offered nothing for this long goes out at once; frames arriving
    /// within the window after an offer wait for its end and go out
    /// together.
    pub write_window: Duration,
    /// Topics of this route open at once (besides
    /// [`HubLimits::max_topics`]); `None` = no bound of its own.
    pub max_topics: Option<usize>,
    /// Whether a new topic's feed resumes from its first subscriber's
    /// `Last-Event-ID` (the zero-downtime upgrade hand-over). Off, the first
    /// subscriber cannot choose where the shared upstream resumes: the feed
    /// starts from the upstream's live edge.
    pub resume_from_client: bool,
}

/// Process-wide limits. Over any of the counts a subscription is refused
/// with [`Refusal::Limit`](crate::Refusal::Limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HubLimits {
    /// Subscribers across all topics.
    pub max_clients: usize,
    /// Subscribers of one topic.
    pub max_clients_per_topic: usize,
    /// Open topics.
    pub max_topics: usize,
    /// Threads that share the writes of a large topic (one shard of at
    /// least [`SHARD_MIN`](crate::SHARD_MIN) subscribers each); 1 = the
    /// feed's own thread writes to everyone.
    pub shard_threads: usize,
    /// Frame bytes every topic's replay ring may hold together (see
    /// [`ReplayBudget`](crate::ReplayBudget)).
    pub replay_memory: u64,
}

// === impl TopicSettings ===

impl Default for TopicSettings {
    /// The defaults of the configuration reference.
    fn default() -> Self {
        Self {
            heartbeat: Duration::from_secs(15),
            client_retry: Duration::from_secs(3),
            replay_events: 1000,
            replay_max_age: Duration::from_secs(300),
            replay_max_bytes: 8 << 20,
            client_queue: 1 << 20,
            linger: Duration::from_secs(30),
            stop_holdoff: Duration::from_secs(30),
            gap_event: None,
            write_window: Duration::ZERO,
            max_topics: None,
            resume_from_client: false,
        }
    }
}

// === impl HubLimits ===

impl Default for HubLimits {
    fn default() -> Self {
        Self {
            max_clients: 100_000,
            max_clients_per_topic: 50_000,
            max_topics: 10_000,
            shard_threads: 1,
            replay_memory: 256 << 20,
        }
    }
}
