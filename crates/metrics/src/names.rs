//! Every metric name, label name and label value the gateway exports.
//!
//! The families in [`CONTRACT`] mirror the metrics table of the configuration
//! contract (the "Metrics" section of the design's `config.md`) exactly: users, dashboards
//! and external checks rely on these names, so they never change. Families
//! in [`ADDITIONS`] are ours to evolve; they are still documented here and
//! rendered by the same registry.
//!
//! # How to add a metric
//!
//! 1. Add a [`Family`] constant below, in the section of its subject
//!    (per topic, per route, process-wide). The name starts with
//!    `sse_gateway_`, counters end in `_total`, units are base units
//!    (`_seconds`, `_bytes`). Write the help text as one sentence.
//! 2. Use only label names from the "Label names" section. A label whose
//!    values come from outside (a path, a header) must be bounded: `topic`
//!    goes through [`TopicSeriesBudget`](crate::TopicSeriesBudget), and a
//!    closed set of values gets an enum here, like [`RejectReason`].
//! 3. Append the constant to [`ADDITIONS`] (or to [`CONTRACT`] only when the
//!    contract table itself changes, which is a user-visible change).
//! 4. Register it in `registry.rs` and resolve its handle once, in
//!    `topic.rs` (per topic) or on [`RouteMetrics`](crate::RouteMetrics)
//!    (per route); nothing on the per-frame path may look a label up.
//! 5. The name test renders the registry and checks every family in both
//!    lists for its `# TYPE` line; extend the topic or route tests if the
//!    family has a new lifetime.

// === Types ===

/// The Prometheus type of a metric family, as written on its `# TYPE` line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A value that goes up and down.
    Gauge,
    /// A value that only goes up (reset on restart or when its series is removed).
    Counter,
    /// Observations counted into buckets, with their sum and count.
    Histogram,
}

/// One metric family: its name, help text, type and label names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Family {
    /// The exported metric name.
    pub name: &'static str,
    /// The `# HELP` text.
    pub help: &'static str,
    /// The `# TYPE`.
    pub kind: Kind,
    /// Variable label names, in the order handles are resolved with.
    pub labels: &'static [&'static str],
}

/// Why a request was refused: the value of the `reason` label of
/// [`REJECTED_REQUESTS`].
///
/// The set is closed on purpose (bounded cardinality); the access layer maps
/// its own denial causes onto it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// The CORS policy refused the origin or the preflight.
    Cors,
    /// A required cookie was missing, or a credential failed verification or
    /// did not grant the topic.
    Auth,
    /// A configured limit was reached (clients, clients per topic, topics).
    Limit,
    /// No route matched the path, or a capture failed its pattern.
    NotFound,
    /// A route matched the path but not the method.
    Method,
    /// The upstream refused the topic (401, 403, 404, 410, or a response
    /// that is not an event stream) and the client got that answer.
    Upstream,
}

/// Why a client connection was closed before it was served: the value of
/// the `reason` label of [`DROPPED_CONNECTIONS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConnectionDrop {
    /// `limits.max_connections` connections were open already.
    MaxConnections,
    /// The request header did not arrive within `limits.request_header_timeout`.
    HeaderTimeout,
}

/// What went wrong with an upstream: the value of the `kind` label of
/// [`UPSTREAM_ERRORS`].
///
/// A closed set, so that the label stays bounded; the upstream crate maps its
/// error type onto it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UpstreamErrorKind {
    /// The connection (TCP, TLS or the HTTP handshake) could not be made.
    Connect,
    /// The upstream answered with a status other than 200 (204 excluded).
    Status,
    /// The upstream answered 200 without `text/event-stream`.
    ContentType,
    /// The body broke the SSE wire format or a codec limit.
    Protocol,
    /// One event exceeded `max_event_size` and was dropped.
    EventTooLarge,
    /// The upstream closed the stream or the read failed.
    Closed,
    /// The upstream did not answer or went silent for too long.
    Timeout,
}

/// How a client stream is written: the value of the `path` label of
/// [`CLIENT_STREAMS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StreamPath {
    /// The socket left pingora after the header; the topic writes to it.
    Direct,
    /// A pingora session per subscriber (TLS, HTTP/2, or `direct_write: false`).
    Session,
}

// === Label names ===

/// Label: the route's `name` from the configuration.
pub const ROUTE: &str = "route";
/// Label: the topic name, or [`OTHER_TOPIC`] once the series budget is spent.
pub const TOPIC: &str = "topic";
/// Label: a [`RejectReason`] (or, on connection families, a [`ConnectionDrop`]).
pub const REASON: &str = "reason";
/// Label: an [`UpstreamErrorKind`].
pub const KIND: &str = "kind";
/// Label: a [`StreamPath`].
pub const PATH: &str = "path";
/// Label: the gateway version on [`BUILD_INFO`].
pub const VERSION: &str = "version";

// === Label values ===

/// The `topic` label value shared by every topic opened after
/// `metrics.max_topic_series` topics already have their own series.
pub const OTHER_TOPIC: &str = "__other__";

/// The `route` label value for requests that matched no route (for example a
/// [`RejectReason::NotFound`] rejection).
pub const UNMATCHED_ROUTE: &str = "__unmatched__";

// === Per-topic families (labels: route, topic) ===

/// Clients currently subscribed to the topic.
pub const SUBSCRIBERS: Family = Family {
    name: "sse_gateway_subscribers",
    help: "Clients currently subscribed to the topic.",
    kind: Kind::Gauge,
    labels: &[ROUTE, TOPIC],
};

/// 1 while the topic's upstream stream is open, else 0. Under
/// [`OTHER_TOPIC`] it is the number of overflow topics whose upstream is up.
pub const UPSTREAM_UP: Family = Family {
    name: "sse_gateway_upstream_up",
    help: "1 while the topic's upstream stream is open, 0 otherwise.",
    kind: Kind::Gauge,
    labels: &[ROUTE, TOPIC],
};

/// Events read from the topic's upstream.
pub const UPSTREAM_EVENTS: Family = Family {
    name: "sse_gateway_upstream_events_total",
    help: "Events read from the topic's upstream.",
    kind: Kind::Counter,
    labels: &[ROUTE, TOPIC],
};

/// Events handed to clients (one per event per client).
pub const DELIVERED_EVENTS: Family = Family {
    name: "sse_gateway_delivered_events_total",
    help: "Events delivered to clients, counted once per client.",
    kind: Kind::Counter,
    labels: &[ROUTE, TOPIC],
};

/// Bytes of events handed to clients.
pub const DELIVERED_BYTES: Family = Family {
    name: "sse_gateway_delivered_bytes_total",
    help: "Bytes of events delivered to clients.",
    kind: Kind::Counter,
    labels: &[ROUTE, TOPIC],
};

/// Times the topic's upstream stream was opened again after it ended.
pub const UPSTREAM_RECONNECTS: Family = Family {
    name: "sse_gateway_upstream_reconnects_total",
    help: "Reconnections of the topic's upstream stream.",
    kind: Kind::Counter,
    labels: &[ROUTE, TOPIC],
};

/// Clients disconnected because their queue passed `client_queue`.
pub const SLOW_CLIENT_DISCONNECTS: Family = Family {
    name: "sse_gateway_slow_client_disconnects_total",
    help: "Clients disconnected because their pending bytes passed client_queue.",
    kind: Kind::Counter,
    labels: &[ROUTE, TOPIC],
};

/// Events sent from the replay ring to clients resuming with `Last-Event-ID`.
pub const REPLAYED_EVENTS: Family = Family {
    name: "sse_gateway_replayed_events_total",
    help: "Events replayed to clients resuming with Last-Event-ID.",
    kind: Kind::Counter,
    labels: &[ROUTE, TOPIC],
};

// === Per-route families (label: route) ===

/// Heartbeat comments written to idle client streams.
pub const HEARTBEATS_SENT: Family = Family {
    name: "sse_gateway_heartbeats_sent_total",
    help: "Heartbeat comments written to idle client streams.",
    kind: Kind::Counter,
    labels: &[ROUTE],
};

/// Requests refused, by [`RejectReason`].
pub const REJECTED_REQUESTS: Family = Family {
    name: "sse_gateway_rejected_requests_total",
    help: "Requests refused, by reason.",
    kind: Kind::Counter,
    labels: &[ROUTE, REASON],
};

/// Time from reading an event from the upstream to writing it to a client.
pub const FANOUT_DELAY: Family = Family {
    name: "sse_gateway_fanout_delay_seconds",
    help: "Time from reading an event from the upstream to writing it to a client.",
    kind: Kind::Histogram,
    labels: &[ROUTE],
};

/// Addition: resumes whose `Last-Event-ID` was no longer (or never) in the
/// replay ring, so the client got live events only.
pub const REPLAY_MISSES: Family = Family {
    name: "sse_gateway_replay_misses_total",
    help: "Resumes whose Last-Event-ID was not found in the replay ring.",
    kind: Kind::Counter,
    labels: &[ROUTE],
};

/// Addition: upstream failures, by [`UpstreamErrorKind`].
pub const UPSTREAM_ERRORS: Family = Family {
    name: "sse_gateway_upstream_errors_total",
    help: "Upstream failures, by kind.",
    kind: Kind::Counter,
    labels: &[ROUTE, KIND],
};

/// Addition: client streams opened, by the [`StreamPath`] that writes them.
pub const CLIENT_STREAMS: Family = Family {
    name: "sse_gateway_client_streams_total",
    help: "Client streams opened, by write path (direct or session).",
    kind: Kind::Counter,
    labels: &[ROUTE, PATH],
};

/// Addition: writes to client sockets, by the [`StreamPath`] that made
/// them. Beside `sse_gateway_delivered_events_total` it shows how many
/// deliveries one write carries: the direct path gathers the frames that
/// arrive for a client that has not taken the last ones yet (and replay,
/// and a backlog) into one write; a session writes what its queue holds.
pub const SENDS: Family = Family {
    name: "sse_gateway_sends_total",
    help: "Writes to client sockets (system calls, or io_uring sends), by write path (direct or session).",
    kind: Kind::Counter,
    labels: &[ROUTE, PATH],
};

// === Process-wide families ===

/// Addition: bytes of frames held by every topic's replay ring.
pub const REPLAY_BYTES: Family = Family {
    name: "sse_gateway_replay_bytes",
    help: "Bytes of frames held by the replay rings of every topic.",
    kind: Kind::Gauge,
    labels: &[],
};

/// Addition: frames a replay ring could not keep (or dropped early) because
/// the process-wide replay budget (`limits.replay_memory`) was spent.
pub const REPLAY_BUDGET_EVICTIONS: Family = Family {
    name: "sse_gateway_replay_budget_evictions_total",
    help: "Frames dropped from (or never kept in) a replay ring because the process-wide replay budget was spent.",
    kind: Kind::Counter,
    labels: &[],
};

/// Addition: client connections open on the public listeners (direct-path
/// streams included).
pub const OPEN_CONNECTIONS: Family = Family {
    name: "sse_gateway_open_connections",
    help: "Client connections open on the public listeners.",
    kind: Kind::Gauge,
    labels: &[],
};

/// Addition: client connections closed before they were served, by
/// [`ConnectionDrop`].
pub const DROPPED_CONNECTIONS: Family = Family {
    name: "sse_gateway_dropped_connections_total",
    help: "Client connections closed before they were served, by reason.",
    kind: Kind::Counter,
    labels: &[REASON],
};

/// Addition: always 1; the `version` label carries the gateway version.
pub const BUILD_INFO: Family = Family {
    name: "sse_gateway_build_info",
    help: "Always 1; the version label carries the gateway version.",
    kind: Kind::Gauge,
    labels: &[VERSION],
};

/// Process CPU time (user + system), exported by prometheus's process
/// collector on Linux.
pub const PROCESS_CPU_SECONDS: &str = "process_cpu_seconds_total";
/// Process resident memory, exported by the process collector on Linux.
pub const PROCESS_RESIDENT_MEMORY: &str = "process_resident_memory_bytes";
/// Open file descriptors, exported by the process collector on Linux.
pub const PROCESS_OPEN_FDS: &str = "process_open_fds";

// === Lists ===

/// The contract table, in its order: these names never change.
pub const CONTRACT: [Family; 11] = [
    SUBSCRIBERS,
    UPSTREAM_UP,
    UPSTREAM_EVENTS,
    DELIVERED_EVENTS,
    DELIVERED_BYTES,
    UPSTREAM_RECONNECTS,
    SLOW_CLIENT_DISCONNECTS,
    REPLAYED_EVENTS,
    HEARTBEATS_SENT,
    REJECTED_REQUESTS,
    FANOUT_DELAY,
];

/// Families beyond the contract table.
pub const ADDITIONS: [Family; 9] = [
    REPLAY_MISSES,
    UPSTREAM_ERRORS,
    CLIENT_STREAMS,
    SENDS,
    BUILD_INFO,
    REPLAY_BYTES,
    REPLAY_BUDGET_EVICTIONS,
    OPEN_CONNECTIONS,
    DROPPED_CONNECTIONS,
];

// === impl Kind ===

impl Kind {
    /// The word on the `# TYPE` line: `gauge`, `counter` or `histogram`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Gauge => "gauge",
            Self::Counter => "counter",
            Self::Histogram => "histogram",
        }
    }
}

// === impl RejectReason ===

impl RejectReason {
    /// Every reason, in label order.
    pub const ALL: [Self; 6] = [
        Self::Cors,
        Self::Auth,
        Self::Limit,
        Self::NotFound,
        Self::Method,
        Self::Upstream,
    ];

    /// The `reason` label value: `cors`, `auth`, `limit`, `not_found`,
    /// `method` or `upstream`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Cors => "cors",
            Self::Auth => "auth",
            Self::Limit => "limit",
            Self::NotFound => "not_found",
            Self::Method => "method",
            Self::Upstream => "upstream",
        }
    }

    pub(crate) const fn index(self) -> usize {
        self as usize
    }
}

// === impl ConnectionDrop ===

impl ConnectionDrop {
    /// Every reason, in label order.
    pub const ALL: [Self; 2] = [Self::MaxConnections, Self::HeaderTimeout];

    /// The `reason` label value (`max_connections`, `header_timeout`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::MaxConnections => "max_connections",
            Self::HeaderTimeout => "header_timeout",
        }
    }

    pub(crate) const fn index(self) -> usize {
        self as usize
    }
}

// === impl StreamPath ===

impl StreamPath {
    /// Every path, in label order.
    pub const ALL: [Self; 2] = [Self::Direct, Self::Session];

    /// The `path` label value (`direct`, `session`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Session => "session",
        }
    }

    pub(crate) const fn index(self) -> usize {
        self as usize
    }
}

// === impl UpstreamErrorKind ===

impl UpstreamErrorKind {
    /// Every kind, in label order.
    pub const ALL: [Self; 7] = [
        Self::Connect,
        Self::Status,
        Self::ContentType,
        Self::Protocol,
        Self::EventTooLarge,
        Self::Closed,
        Self::Timeout,
    ];

    /// The `kind` label value, in snake case (`connect`, `content_type`, …).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Status => "status",
            Self::ContentType => "content_type",
            Self::Protocol => "protocol",
            Self::EventTooLarge => "event_too_large",
            Self::Closed => "closed",
            Self::Timeout => "timeout",
        }
    }

    pub(crate) const fn index(self) -> usize {
        self as usize
    }
}
