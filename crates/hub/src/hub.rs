//! [`TopicHub`]: the open topics, global limits, subscribe and shutdown.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use sse_gateway_metrics::{GatewayMetrics, StreamPath, TopicMetrics};
use tokio::runtime::Handle;

use crate::topic::{JoinError, Topic, TopicKey};
use crate::{
    CloseReason, Delivery, HubLimits, Refusal, ReplayBudget, SubscriberSink, TopicPublisher,
    TopicSettings, UpstreamAnswer,
};

pub use crate::topic::TopicInfo;

/// The future that runs a topic's feed; the hub spawns it when the topic opens.
pub type FeedFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Every open topic. Cheap to clone; clones share the same topics.
#[derive(Clone)]
pub struct TopicHub {
    shared: Arc<HubShared>,
}

struct HubShared {
    topics: Mutex<OpenTopics>,
    clients: AtomicUsize,
    next_id: AtomicU64,
    shutting_down: AtomicBool,
    limits: HubLimits,
    metrics: GatewayMetrics,
    /// Where feeds and topic timers run.
    runtime: Handle,
    /// Shares the writes of large topics; `None` with one shard thread.
    shards: Option<Arc<rayon::ThreadPool>>,
    /// The bytes every replay ring may hold together.
    replay_budget: Arc<ReplayBudget>,
}

/// The open topics, and how many each route has.
#[derive(Default)]
struct OpenTopics {
    map: HashMap<TopicKey, Arc<Topic>>,
    per_route: HashMap<Arc<str>, usize>,
}

/// The [`Refusal::Limit`] name of a request whose `may_open` said no.
pub const OPEN_REFUSED: &str = "new_topics_per_address";

/// What a client asks for.
#[derive(Clone, Copy)]
pub struct SubscribeRequest<'a> {
    /// The route's name (metrics label, part of the topic's identity).
    pub route: &'a str,
    /// The topic name.
    pub topic: &'a str,
    /// The route's topic settings.
    pub settings: &'a Arc<TopicSettings>,
    /// The client's `Last-Event-ID`, if any.
    pub last_event_id: Option<&'a str>,
    /// Asked only when this request would open a new topic: `false`
    /// refuses it with [`Refusal::Limit`]`(`[`OPEN_REFUSED`]`)`.
    /// The gateway's per-address rate of new topics. `None`: always.
    pub may_open: Option<&'a (dyn Fn() -> bool + Sync)>,
}

impl std::fmt::Debug for SubscribeRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubscribeRequest")
            .field("route", &self.route)
            .field("topic", &self.topic)
            .field("last_event_id", &self.last_event_id)
            .field("may_open", &self.may_open.is_some())
            .finish_non_exhaustive()
    }
}

/// A subscriber's place in a topic. Dropping it leaves the topic.
pub struct Membership {
    topic: Arc<Topic>,
    shared: Arc<HubShared>,
    key: usize,
    id: u64,
}

// === impl TopicHub ===

impl TopicHub {
    /// A hub with the given limits; feeds and timers run on `runtime`.
    pub fn new(limits: HubLimits, metrics: GatewayMetrics, runtime: Handle) -> Self {
        let shards = (limits.shard_threads > 1)
            .then(|| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(limits.shard_threads)
                    .thread_name(|i| format!("sse-shard-{i}"))
                    .build()
                    .ok()
            })
            .flatten()
            .map(Arc::new);
        let replay_budget =
            ReplayBudget::new(limits.replay_memory, Some(metrics.process().clone()));
        Self {
            shared: Arc::new(HubShared {
                topics: Mutex::new(OpenTopics::default()),
                clients: AtomicUsize::new(0),
                next_id: AtomicU64::new(1),
                shutting_down: AtomicBool::new(false),
                limits,
                metrics,
                runtime,
                shards,
                replay_budget,
            }),
        }
    }

    /// Joins the topic, opening it (and its feed, built by `open_feed`) when
    /// it is not open yet. The sink is first offered the `retry` advice and
    /// the replay, then every live frame.
    pub fn subscribe<F>(
        &self,
        request: SubscribeRequest<'_>,
        sink: Arc<dyn SubscriberSink>,
        open_feed: F,
    ) -> Result<Membership, Refusal>
    where
        F: FnOnce(TopicPublisher) -> FeedFuture,
    {
        let shared = &self.shared;
        if shared.shutting_down.load(Ordering::Acquire) {
            return Err(Refusal::ShuttingDown);
        }
        if shared.clients.fetch_add(1, Ordering::AcqRel) >= shared.limits.max_clients {
            shared.clients.fetch_sub(1, Ordering::AcqRel);
            return Err(Refusal::Limit("max_clients"));
        }
        // Given back unless a membership takes it over (also if joining
        // panics: a permit callback is the caller's code).
        let mut counted = CountedClient {
            shared,
            given_back: true,
        };
        let membership = self.join(request, sink, open_feed)?;
        counted.given_back = false; // the membership gives it back
        Ok(membership)
    }

    fn join<F>(
        &self,
        request: SubscribeRequest<'_>,
        sink: Arc<dyn SubscriberSink>,
        open_feed: F,
    ) -> Result<Membership, Refusal>
    where
        F: FnOnce(TopicPublisher) -> FeedFuture,
    {
        let key = TopicKey {
            route: Arc::from(request.route),
            topic: Arc::from(request.topic),
        };
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let mut open_feed = Some(open_feed);
        // A topic found closing is replaced; two attempts always suffice.
        for _ in 0..3 {
            let (topic, created) = self.get_or_open(&key, &request)?;
            match topic.join(id, sink.clone(), request.last_event_id, now()) {
                Ok(slot) => {
                    if created {
                        // Only now: a feed started before its first
                        // subscriber joined could publish to nobody.
                        match open_feed.take() {
                            Some(open_feed) => self.start(&topic, open_feed),
                            None => return Err(Refusal::Limit("topic churn")),
                        }
                    }
                    return Ok(Membership {
                        topic,
                        shared: self.shared.clone(),
                        key: slot,
                        id,
                    });
                }
                Err(JoinError::Refused(refusal)) => {
                    if created {
                        // Nobody else can have joined a topic refused to its creator.
                        topic.close(CloseReason::ClientClosed);
                        self.shared.forget(&topic);
                    }
                    return Err(refusal);
                }
                Err(JoinError::Closed) => self.shared.forget(&topic),
            }
        }
        Err(Refusal::Limit("topic churn"))
    }

    /// The open topic for `key`, or a new one (not started: see
    /// [`TopicHub::start`]) and `true`.
    fn get_or_open(
        &self,
        key: &TopicKey,
        request: &SubscribeRequest<'_>,
    ) -> Result<(Arc<Topic>, bool), Refusal> {
        let mut topics = self.shared.topics.lock();
        if let Some(topic) = topics.map.get(key) {
            return Ok((topic.clone(), false));
        }
        if topics.map.len() >= self.shared.limits.max_topics {
            return Err(Refusal::Limit("max_topics"));
        }
        let route_topics = topics.per_route.get(&key.route).copied().unwrap_or(0);
        if request
            .settings
            .max_topics
            .is_some_and(|max| route_topics >= max)
        {
            return Err(Refusal::Limit("route max_topics"));
        }
        if request.may_open.is_some_and(|may_open| !may_open()) {
            return Err(Refusal::Limit(OPEN_REFUSED));
        }
        let metrics: TopicMetrics = self.shared.metrics.open_topic(request.route, request.topic);
        // Where the shared upstream resumes is the route's choice, not the
        // first subscriber's, unless the route says so.
        let seed = request
            .last_event_id
            .filter(|_| request.settings.resume_from_client);
        let topic = Arc::new(Topic::new(
            key.clone(),
            request.settings.clone(),
            metrics,
            self.shared.metrics.route(request.route),
            self.shared.limits.max_clients_per_topic,
            self.shared.shards.clone(),
            seed,
            Some(self.shared.replay_budget.clone()),
            now(),
        ));
        topics.insert(key, topic.clone());
        drop(topics);
        Ok((topic, true))
    }

    /// Starts a new topic's feed and timer, once its first subscriber is in.
    fn start<F>(&self, topic: &Arc<Topic>, open_feed: F)
    where
        F: FnOnce(TopicPublisher) -> FeedFuture,
    {
        self.shared
            .runtime
            .spawn(open_feed(TopicPublisher::new(topic.clone())));
        self.shared
            .runtime
            .spawn(run_timer(topic.clone(), self.shared.clone()));
    }

    /// Snapshots of every open topic, sorted by route and topic.
    pub fn topics(&self) -> Vec<TopicInfo> {
        let topics: Vec<Arc<Topic>> = self.shared.topics.lock().map.values().cloned().collect();
        let mut infos: Vec<TopicInfo> = topics.iter().map(|t| t.info()).collect();
        infos.sort_by(|a, b| (&a.route, &a.topic).cmp(&(&b.route, &b.topic)));
        infos
    }

    /// Open topics.
    pub fn topic_count(&self) -> usize {
        self.shared.topics.lock().map.len()
    }

    /// Frame bytes held by every replay ring.
    pub fn replay_bytes(&self) -> u64 {
        self.shared.replay_budget.used()
    }

    /// Subscribers across all topics.
    pub fn client_count(&self) -> usize {
        self.shared.clients.load(Ordering::Acquire)
    }

    /// Drains everything: refuses new subscribers, closes every stream (with
    /// [`CloseReason::Shutdown`]) and every feed. Each stream writes its own
    /// final `retry:` (the sinks' `Drain`), jittered per client so that
    /// reconnects do not arrive as one herd.
    pub fn shutdown(&self) {
        self.shared.shutting_down.store(true, Ordering::Release);
        let topics: Vec<Arc<Topic>> = {
            let mut open = self.shared.topics.lock();
            open.per_route.clear();
            open.map.drain().map(|(_, t)| t).collect()
        };
        for topic in topics {
            topic.close(CloseReason::Shutdown);
        }
    }
}

impl std::fmt::Debug for TopicHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TopicHub")
            .field("topics", &self.topic_count())
            .field("clients", &self.client_count())
            .finish()
    }
}

/// One place in [`HubShared::clients`], given back when dropped unless a
/// membership took it over.
struct CountedClient<'a> {
    shared: &'a HubShared,
    given_back: bool,
}

impl Drop for CountedClient<'_> {
    fn drop(&mut self) {
        if self.given_back {
            self.shared.clients.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

// === impl OpenTopics ===

impl OpenTopics {
    fn insert(&mut self, key: &TopicKey, topic: Arc<Topic>) {
        if self.map.insert(key.clone(), topic).is_none() {
            *self.per_route.entry(key.route.clone()).or_insert(0) += 1;
        }
    }

    fn remove(&mut self, key: &TopicKey) {
        if self.map.remove(key).is_some() {
            if let Some(count) = self.per_route.get_mut(&key.route) {
                *count -= 1;
                if *count == 0 {
                    self.per_route.remove(&key.route);
                }
            }
        }
    }
}

// === impl HubShared ===

impl HubShared {
    /// Removes `topic` from the map if it is still the one registered.
    fn forget(&self, topic: &Arc<Topic>) {
        let mut topics = self.topics.lock();
        if topics
            .map
            .get(&topic.key)
            .is_some_and(|held| Arc::ptr_eq(held, topic))
        {
            topics.remove(&topic.key);
        }
    }
}

/// Now, on tokio's clock: `Instant::now()`, unless a test paused the clock
/// (`#[tokio::test(start_paused = true)]`); then the timer, joins and leaves all see the
/// paused time, and tests drive heartbeats and linger without waiting for them.
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// The topic's one timer: heartbeats, linger, hold-off. Ends when it closes.
async fn run_timer(topic: Arc<Topic>, shared: Arc<HubShared>) {
    loop {
        let tick = topic.tick(now());
        if tick.close {
            topic.close(CloseReason::Shutdown);
            shared.forget(&topic);
            return;
        }
        let woken = topic.wake.notified();
        match tick.next {
            Some(at) => {
                tokio::select! {
                    () = tokio::time::sleep_until(at.into()) => {}
                    () = woken => {}
                }
            }
            None => woken.await,
        }
    }
}

// === impl Membership ===

impl Membership {
    /// The route that opened the topic.
    pub fn route(&self) -> &str {
        &self.topic.key.route
    }

    /// The topic name.
    pub fn topic(&self) -> &str {
        &self.topic.key.topic
    }

    /// The route and topic names, shared (no copy).
    pub fn names(&self) -> (Arc<str>, Arc<str>) {
        (self.topic.key.route.clone(), self.topic.key.topic.clone())
    }

    /// What the topic's upstream answered, waiting up to `wait` while it
    /// has not answered yet (the first subscribers of a new topic). Still
    /// [`UpstreamAnswer::Pending`] after `wait`: the upstream is slow, and
    /// the subscriber goes on while the feed keeps trying.
    pub async fn upstream_answer(&self, wait: Duration) -> UpstreamAnswer {
        let mut answer = self.topic.answer_watch();
        let first = *answer.borrow();
        if first != UpstreamAnswer::Pending || wait.is_zero() {
            return first;
        }
        let waited = tokio::time::timeout(
            wait,
            answer.wait_for(|answer| *answer != UpstreamAnswer::Pending),
        )
        .await;
        match waited {
            Ok(Ok(answer)) => *answer,
            // Timed out, or the topic is gone (then its stream ends anyway).
            Ok(Err(_)) | Err(_) => UpstreamAnswer::Pending,
        }
    }

    /// Records deliveries the client's stream wrote whole: events, bytes
    /// and each live event's fan-out delay.
    pub fn record_written<'d>(&self, deliveries: impl IntoIterator<Item = &'d Delivery>) {
        self.topic.record_written(deliveries);
    }

    /// Records `count` writes the client's stream made on `path`
    /// (`sse_gateway_sends_total`).
    pub fn record_sends(&self, path: StreamPath, count: u64) {
        self.topic.route_metrics.sent(path, count);
    }

    /// A handle that records deliveries without the membership, for a sink
    /// that writes to its client itself (the direct path).
    ///
    /// It refers to the topic: keep it only in a sink of this membership,
    /// which the topic lets go when the member leaves.
    pub fn recorder(&self) -> DeliveryRecorder {
        DeliveryRecorder {
            topic: self.topic.clone(),
        }
    }
}

/// Records what a sink wrote to its client, as
/// [`Membership::record_written`] does.
#[derive(Clone)]
pub struct DeliveryRecorder {
    topic: Arc<Topic>,
}

// === impl DeliveryRecorder ===

impl DeliveryRecorder {
    /// Records a delivery written whole to one client.
    pub fn record_written(&self, delivery: &Delivery) {
        self.topic.record_written([delivery]);
    }

    /// Records `count` writes made to the client's socket outside an offer
    /// round (`sse_gateway_sends_total{path="direct"}`).
    pub fn record_sends(&self, count: u64) {
        self.topic.route_metrics.sent(StreamPath::Direct, count);
    }
}

impl std::fmt::Debug for DeliveryRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryRecorder")
            .field("route", &&*self.topic.key.route)
            .field("topic", &&*self.topic.key.topic)
            .finish()
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.topic.leave(self.key, self.id, now());
        self.shared.clients.fetch_sub(1, Ordering::AcqRel);
    }
}

impl std::fmt::Debug for Membership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Membership")
            .field("route", &self.route())
            .field("topic", &self.topic())
            .field("id", &self.id)
            .finish()
    }
}
