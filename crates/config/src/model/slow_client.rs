//! The slow-client policy of a fan-out route (`slow_client`, `coalesce_by`).

/// `slow_client`: what happens to a client whose pending bytes would pass
/// `client_queue`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SlowClientPolicy {
    /// `disconnect` (the default): the client is cut, and comes back with
    /// `Last-Event-ID` to be replayed.
    #[default]
    Disconnect,
    /// `coalesce`: the client's pending events are reduced to the newest one
    /// per key (`coalesce_by`), with an in-band note of how many were
    /// skipped; cut only if that still does not fit.
    Coalesce,
}

/// `coalesce_by`: what makes two events "the same thing" for
/// [`SlowClientPolicy::Coalesce`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CoalesceKey {
    /// `event` (the default): the event type.
    #[default]
    EventType,
    /// `data.FIELD`: the value of a top-level field of the event's data,
    /// read as JSON (events whose data has no such field share one key).
    DataField(String),
}
