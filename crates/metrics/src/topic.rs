//! Per-topic handles and the cap on `topic` label values.
//!
//! A topic's handles are resolved once, when the topic opens
//! ([`TopicSeriesBudget::open`]), into a [`TopicMetrics`] holding plain
//! `IntGauge`/`IntCounter` clones for its `(route, topic)` label pair. Using
//! them is an atomic add: no label lookup, no map, no lock.
//!
//! # The budget
//!
//! At most `max_topic_series` distinct `(route, topic)` pairs have series of
//! their own at any time. A topic opened while the budget is spent gets the
//! shared label value `topic="__other__"` of its route
//! ([`OTHER_TOPIC`](crate::names::OTHER_TOPIC)), and keeps it until it
//! closes: a slot freed later goes to a topic opened later, so a series
//! never changes labels under a live topic. A topic literally named
//! `__other__` always goes to the shared series.
//!
//! When a [`TopicMetrics`] is closed (or dropped), its contribution to the
//! gauges is withdrawn, and when it was the last user of its series, those
//! series are removed from every family and its slot is freed. `__other__`
//! series are reference-counted per route the same way. Gauges are only
//! ever moved with add/sub, so shared series stay exact: `subscribers` is the
//! sum over the topics sharing it, `upstream_up` the number of them whose
//! upstream is up. Counters of a removed series restart from zero if the
//! topic opens again, which Prometheus reads as a counter reset.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use prometheus::{IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Registry};

use crate::names;
use crate::registry::{int_counter_vec, int_gauge_vec, MetricsError};

/// The metrics of one open topic, resolved once.
///
/// Every method is a relaxed atomic operation on a handle owned by this
/// value. Share it behind an `Arc` if several tasks report for the topic.
/// Dropping it is the same as [`close`](Self::close).
pub struct TopicMetrics {
    handles: TopicHandles,
    /// What this topic added to the shared gauges, withdrawn on close.
    subscribers: AtomicI64,
    upstream_up: AtomicBool,
    route: Box<str>,
    topic: Box<str>,
    overflow: bool,
    budget: Arc<BudgetShared>,
}

/// Hands out `topic` label values within `metrics.max_topic_series` and
/// removes a topic's series when it closes. See the module doc.
///
/// Cloning is cheap and clones share the budget.
#[derive(Clone)]
pub struct TopicSeriesBudget {
    shared: Arc<BudgetShared>,
}

/// The families with `(route, topic)` labels.
#[derive(Clone)]
pub(crate) struct TopicFamilies {
    subscribers: IntGaugeVec,
    upstream_up: IntGaugeVec,
    upstream_events: IntCounterVec,
    delivered_events: IntCounterVec,
    delivered_bytes: IntCounterVec,
    upstream_reconnects: IntCounterVec,
    slow_client_disconnects: IntCounterVec,
    replayed_events: IntCounterVec,
}

/// One `(route, topic)` pair's handles.
#[derive(Clone)]
struct TopicHandles {
    subscribers: IntGauge,
    upstream_up: IntGauge,
    upstream_events: IntCounter,
    delivered_events: IntCounter,
    delivered_bytes: IntCounter,
    upstream_reconnects: IntCounter,
    slow_client_disconnects: IntCounter,
    replayed_events: IntCounter,
}

struct BudgetShared {
    families: TopicFamilies,
    max_topic_series: usize,
    state: Mutex<BudgetState>,
}

#[derive(Default)]
struct BudgetState {
    /// Topics with their own series, by `(route, topic)`.
    own: HashMap<(Box<str>, Box<str>), Series>,
    /// The shared `__other__` series, by route.
    overflow: HashMap<Box<str>, Series>,
}

/// A series set and how many open [`TopicMetrics`] use it.
struct Series {
    users: usize,
    handles: TopicHandles,
}

// === impl TopicMetrics ===

impl TopicMetrics {
    /// A client subscribed: `sse_gateway_subscribers` + 1.
    pub fn subscriber_joined(&self) {
        self.subscribers.fetch_add(1, Ordering::Relaxed);
        self.handles.subscribers.inc();
    }

    /// A client left (for any reason): `sse_gateway_subscribers` - 1.
    pub fn subscriber_left(&self) {
        self.subscribers.fetch_sub(1, Ordering::Relaxed);
        self.handles.subscribers.dec();
    }

    /// Records whether the upstream stream is open (`sse_gateway_upstream_up`).
    /// Repeating the current state changes nothing.
    pub fn set_upstream_up(&self, up: bool) {
        if self.upstream_up.swap(up, Ordering::Relaxed) != up {
            if up {
                self.handles.upstream_up.inc();
            } else {
                self.handles.upstream_up.dec();
            }
        }
    }

    /// One event was read from the upstream.
    pub fn upstream_event(&self) {
        self.handles.upstream_events.inc();
    }

    /// `count` events were read from the upstream together.
    pub fn upstream_events(&self, count: u64) {
        self.handles.upstream_events.inc_by(count);
    }

    /// `events` events totalling `bytes` bytes were handed to clients (count
    /// each event once per client).
    pub fn delivered(&self, events: u64, bytes: u64) {
        self.handles.delivered_events.inc_by(events);
        self.handles.delivered_bytes.inc_by(bytes);
    }

    /// The upstream stream was opened again after it ended.
    pub fn upstream_reconnected(&self) {
        self.handles.upstream_reconnects.inc();
    }

    /// A client was disconnected for passing its queue bound.
    pub fn slow_client_disconnected(&self) {
        self.handles.slow_client_disconnects.inc();
    }

    /// `events` events were replayed to a resuming client.
    pub fn replayed(&self, events: u64) {
        self.handles.replayed_events.inc_by(events);
    }

    /// The route label of this topic's series.
    pub fn route(&self) -> &str {
        &self.route
    }

    /// The topic name (as opened, not the label).
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The `topic` label value of the series this topic reports to: its name,
    /// or `__other__`.
    pub fn topic_label(&self) -> &str {
        if self.overflow {
            names::OTHER_TOPIC
        } else {
            &self.topic
        }
    }

    /// Whether this topic reports to its route's shared `__other__` series.
    pub fn is_overflow(&self) -> bool {
        self.overflow
    }

    /// This topic's own count of subscribers (joined minus left).
    pub fn subscribers(&self) -> i64 {
        self.subscribers.load(Ordering::Relaxed)
    }

    /// Closes the topic's metrics: withdraws its gauge contributions and, if
    /// nothing else uses its series, removes them and frees the slot. Same as
    /// dropping it.
    pub fn close(self) {
        drop(self);
    }
}

impl Drop for TopicMetrics {
    fn drop(&mut self) {
        self.handles
            .subscribers
            .sub(self.subscribers.swap(0, Ordering::Relaxed));
        if self.upstream_up.swap(false, Ordering::Relaxed) {
            self.handles.upstream_up.dec();
        }
        self.budget.release(&self.route, &self.topic, self.overflow);
    }
}

impl fmt::Debug for TopicMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TopicMetrics")
            .field("route", &self.route)
            .field("topic", &self.topic)
            .field("overflow", &self.overflow)
            .field("subscribers", &self.subscribers())
            .finish_non_exhaustive()
    }
}

// === impl TopicSeriesBudget ===

impl TopicSeriesBudget {
    pub(crate) fn new(families: TopicFamilies, max_topic_series: usize) -> Self {
        Self {
            shared: Arc::new(BudgetShared {
                families,
                max_topic_series,
                state: Mutex::new(BudgetState::default()),
            }),
        }
    }

    /// Resolves the handles of topic `topic` of route `route`: its own series
    /// while the budget allows, else the route's `__other__` series. Opening
    /// a pair that is already open shares its series (and its slot).
    ///
    /// Takes the budget's lock; call it when a topic opens, never per frame.
    pub fn open(&self, route: &str, topic: &str) -> TopicMetrics {
        let shared = &self.shared;
        let mut state = shared.state.lock();
        let key = (Box::<str>::from(route), Box::<str>::from(topic));
        let own = topic != names::OTHER_TOPIC
            && (state.own.contains_key(&key) || state.own.len() < shared.max_topic_series);
        let (handles, overflow) = if own {
            let series = state
                .own
                .entry(key)
                .or_insert_with(|| Series::new(shared.families.resolve(route, topic)));
            series.users += 1;
            (series.handles.clone(), false)
        } else {
            let series = state
                .overflow
                .entry(Box::from(route))
                .or_insert_with(|| Series::new(shared.families.resolve(route, names::OTHER_TOPIC)));
            series.users += 1;
            (series.handles.clone(), true)
        };
        drop(state);
        TopicMetrics {
            handles,
            subscribers: AtomicI64::new(0),
            upstream_up: AtomicBool::new(false),
            route: Box::from(route),
            topic: Box::from(topic),
            overflow,
            budget: Arc::clone(&self.shared),
        }
    }

    /// `metrics.max_topic_series`.
    pub fn max_topic_series(&self) -> usize {
        self.shared.max_topic_series
    }

    /// How many `(route, topic)` pairs have series of their own now.
    pub fn own_series(&self) -> usize {
        self.shared.state.lock().own.len()
    }

    /// How many open topics report to an `__other__` series now.
    pub fn overflow_topics(&self) -> usize {
        let state = self.shared.state.lock();
        state.overflow.values().map(|s| s.users).sum()
    }
}

impl fmt::Debug for TopicSeriesBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TopicSeriesBudget")
            .field("max_topic_series", &self.max_topic_series())
            .field("own_series", &self.own_series())
            .field("overflow_topics", &self.overflow_topics())
            .finish()
    }
}

// === impl BudgetShared ===

impl BudgetShared {
    /// One user of a series set is gone; the last one removes the series.
    fn release(&self, route: &str, topic: &str, overflow: bool) {
        let mut state = self.state.lock();
        let last = if overflow {
            match state.overflow.get_mut(route) {
                Some(series) if series.users > 1 => {
                    series.users -= 1;
                    false
                }
                Some(_) => state.overflow.remove(route).is_some(),
                None => false,
            }
        } else {
            let key = (Box::<str>::from(route), Box::<str>::from(topic));
            match state.own.get_mut(&key) {
                Some(series) if series.users > 1 => {
                    series.users -= 1;
                    false
                }
                Some(_) => state.own.remove(&key).is_some(),
                None => false,
            }
        };
        if last {
            // Under the lock, so a concurrent open of the same pair cannot
            // resolve handles that this removal would then orphan.
            let label = if overflow { names::OTHER_TOPIC } else { topic };
            self.families.remove(route, label);
        }
    }
}

// === impl Series ===

impl Series {
    fn new(handles: TopicHandles) -> Self {
        Self { users: 0, handles }
    }
}

// === impl TopicFamilies ===

impl TopicFamilies {
    /// Creates and registers the per-topic families.
    pub(crate) fn register(registry: &Registry) -> Result<Self, MetricsError> {
        Ok(Self {
            subscribers: int_gauge_vec(registry, &names::SUBSCRIBERS)?,
            upstream_up: int_gauge_vec(registry, &names::UPSTREAM_UP)?,
            upstream_events: int_counter_vec(registry, &names::UPSTREAM_EVENTS)?,
            delivered_events: int_counter_vec(registry, &names::DELIVERED_EVENTS)?,
            delivered_bytes: int_counter_vec(registry, &names::DELIVERED_BYTES)?,
            upstream_reconnects: int_counter_vec(registry, &names::UPSTREAM_RECONNECTS)?,
            slow_client_disconnects: int_counter_vec(registry, &names::SLOW_CLIENT_DISCONNECTS)?,
            replayed_events: int_counter_vec(registry, &names::REPLAYED_EVENTS)?,
        })
    }

    /// Creates (at zero) or finds the series of one label pair.
    fn resolve(&self, route: &str, topic: &str) -> TopicHandles {
        // Two values for two label names: `with_label_values` cannot fail.
        let labels = [route, topic];
        TopicHandles {
            subscribers: self.subscribers.with_label_values(&labels),
            upstream_up: self.upstream_up.with_label_values(&labels),
            upstream_events: self.upstream_events.with_label_values(&labels),
            delivered_events: self.delivered_events.with_label_values(&labels),
            delivered_bytes: self.delivered_bytes.with_label_values(&labels),
            upstream_reconnects: self.upstream_reconnects.with_label_values(&labels),
            slow_client_disconnects: self.slow_client_disconnects.with_label_values(&labels),
            replayed_events: self.replayed_events.with_label_values(&labels),
        }
    }

    /// Removes the series of one label pair from every family.
    fn remove(&self, route: &str, topic: &str) {
        let labels = [route, topic];
        // An absent series is already what we want; nothing to report.
        let _ = self.subscribers.remove_label_values(&labels);
        let _ = self.upstream_up.remove_label_values(&labels);
        let _ = self.upstream_events.remove_label_values(&labels);
        let _ = self.delivered_events.remove_label_values(&labels);
        let _ = self.delivered_bytes.remove_label_values(&labels);
        let _ = self.upstream_reconnects.remove_label_values(&labels);
        let _ = self.slow_client_disconnects.remove_label_values(&labels);
        let _ = self.replayed_events.remove_label_values(&labels);
    }
}

#[cfg(test)]
mod tests;
