//! Connection admission on the public listeners: a cap on open client
//! connections, a deadline for every request header, and the permit a
//! direct-path stream carries once its socket has left pingora.
//!
//! [`GatedProxy`] wraps the proxy service's app: every accepted connection
//! (after the TLS handshake, which pingora bounds at 60 s itself) first takes
//! a [`ConnectionPermit`] from the [`ConnectionGate`] or is closed at once
//! (`limits.max_connections`; counted in
//! `sse_gateway_dropped_connections_total{reason="max_connections"}`). Then
//! its request header must arrive within `limits.request_header_timeout` of
//! the accept; on a kept-alive connection (or an HTTP/2 connection with no
//! stream open) the next one must arrive within [`KEEPALIVE_IDLE`] plus that
//! timeout of the end of its last response (pingora itself closes an H1
//! connection idle for 60 s; the extra bounds one whose next header
//! trickles in). A connection that overstays is closed
//! (`reason="header_timeout"`). Pingora's own timeout is per read (60 s), so
//! without this a client trickling one byte a minute could hold a
//! connection forever. Connections still in their TLS handshake are not
//! counted yet: pingora bounds the handshake at 60 s before the app sees the
//! connection.
//!
//! The proxy tells the gate when a request starts and ends
//! ([`ConnectionGate::request_started`], [`ConnectionGate::request_ended`]);
//! connections are found by their (peer, local) address pair, which also
//! works for HTTP/2 streams (pingora runs each in its own task). A direct
//! stream takes the connection's permit along
//! ([`ConnectionGate::hand_off`]): the connection counts until the stream
//! ends, not until pingora lets go of it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use pingora::apps::ServerApp;
use pingora::protocols::Stream;
use pingora::server::ShutdownWatch;
use sse_gateway_metrics::{ConnectionDrop, ProcessMetrics};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::services::occasional::Occasional;

/// Shards of the connection table (a connection touches it on accept, at
/// each request start and end, and on close).
const SHARDS: usize = 16;

/// How long a kept-alive connection may stay idle between requests before
/// its next header is due (pingora's H1 keep-alive timeout).
pub(crate) const KEEPALIVE_IDLE: Duration = Duration::from_secs(60);

/// At most one "limit reached" warning per this long.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// A connection's identity: (peer, local) socket addresses.
type ConnKey = (SocketAddr, SocketAddr);

/// The open connections and their header deadlines.
pub(crate) struct ConnectionGate {
    counter: Arc<OpenCount>,
    header_timeout: Duration,
    table: [Mutex<HashMap<ConnKey, Arc<ConnSlot>>>; SHARDS],
    full_warning: Occasional,
}

/// How many connections are open, and the cap.
struct OpenCount {
    open: AtomicUsize,
    max: usize,
    metrics: ProcessMetrics,
}

/// One open connection. The connection counts as open until the last
/// reference to its slot is dropped.
pub(crate) struct ConnSlot {
    counter: Arc<OpenCount>,
    state: Mutex<SlotState>,
    changed: Notify,
}

#[derive(Debug)]
struct SlotState {
    /// When the connection must have sent a request header; `None` while
    /// a request is being served.
    header_due: Option<Instant>,
    /// Requests being served (several on an HTTP/2 connection).
    active: usize,
}

/// Keeps a connection counted; a direct-path stream holds one until it ends.
pub(crate) struct ConnectionPermit {
    _slot: Arc<ConnSlot>,
}

/// The proxy service's app behind the [`ConnectionGate`].
pub(crate) struct GatedProxy<A> {
    inner: Arc<A>,
    gate: Arc<ConnectionGate>,
}

// === impl ConnectionGate ===

impl ConnectionGate {
    /// A gate for at most `max` connections whose request headers must
    /// arrive within `header_timeout`.
    pub(crate) fn new(max: usize, header_timeout: Duration, metrics: ProcessMetrics) -> Self {
        Self {
            counter: Arc::new(OpenCount {
                open: AtomicUsize::new(0),
                max,
                metrics,
            }),
            header_timeout,
            table: std::array::from_fn(|_| Mutex::new(HashMap::new())),
            full_warning: Occasional::new(WARN_EVERY),
        }
    }

    /// Admits a new connection, or `None` (close it) over the cap.
    fn admit(&self, key: Option<ConnKey>) -> Option<Arc<ConnSlot>> {
        let counter = &self.counter;
        if counter.open.fetch_add(1, Ordering::AcqRel) >= counter.max {
            counter.open.fetch_sub(1, Ordering::AcqRel);
            counter
                .metrics
                .connection_dropped(ConnectionDrop::MaxConnections);
            self.warn_full();
            return None;
        }
        counter.metrics.connections_changed(1);
        let slot = Arc::new(ConnSlot {
            counter: counter.clone(),
            state: Mutex::new(SlotState {
                header_due: Some(Instant::now() + self.header_timeout),
                active: 0,
            }),
            changed: Notify::new(),
        });
        if let Some(key) = key {
            self.shard(&key).lock().insert(key, slot.clone());
        }
        Some(slot)
    }

    fn warn_full(&self) {
        if let Some(held_back) = self.full_warning.due() {
            tracing::warn!(
                max_connections = self.counter.max,
                refused_since_last_warning = held_back,
                "limits.max_connections reached: new connections are closed at once"
            );
        }
    }

    fn forget(&self, key: Option<ConnKey>, slot: &Arc<ConnSlot>) {
        if let Some(key) = key {
            let mut shard = self.shard(&key).lock();
            if shard.get(&key).is_some_and(|held| Arc::ptr_eq(held, slot)) {
                shard.remove(&key);
            }
        }
    }

    fn shard(&self, key: &ConnKey) -> &Mutex<HashMap<ConnKey, Arc<ConnSlot>>> {
        let index = usize::from(key.0.port()) % SHARDS;
        &self.table[index]
    }

    fn slot(&self, key: Option<ConnKey>) -> Option<Arc<ConnSlot>> {
        let key = key?;
        self.shard(&key).lock().get(&key).cloned()
    }

    /// A request's header arrived on the connection `(peer, local)`: no
    /// deadline while it is served.
    pub(crate) fn request_started(&self, key: Option<ConnKey>) {
        if let Some(slot) = self.slot(key) {
            let mut state = slot.state.lock();
            state.active += 1;
            state.header_due = None;
            drop(state);
            slot.changed.notify_one();
        }
    }

    /// A request on the connection `(peer, local)` was answered: when none
    /// is left, the next header is due within [`KEEPALIVE_IDLE`] plus the
    /// header timeout.
    pub(crate) fn request_ended(&self, key: Option<ConnKey>) {
        if let Some(slot) = self.slot(key) {
            let mut state = slot.state.lock();
            state.active = state.active.saturating_sub(1);
            if state.active == 0 {
                let idle = KEEPALIVE_IDLE + self.header_timeout;
                state.header_due = Some(Instant::now() + idle);
            }
            drop(state);
            slot.changed.notify_one();
        }
    }

    /// The permit of the connection `(peer, local)`, for a stream that
    /// takes the socket out of pingora; its header deadline no longer
    /// applies.
    pub(crate) fn hand_off(&self, key: Option<ConnKey>) -> Option<ConnectionPermit> {
        let slot = self.slot(key)?;
        let mut state = slot.state.lock();
        state.active += 1;
        state.header_due = None;
        drop(state);
        slot.changed.notify_one();
        Some(ConnectionPermit { _slot: slot })
    }
}

/// The (peer, local) pair of a connection, when both are IP addresses.
pub(crate) fn conn_key(
    peer: Option<&pingora::protocols::l4::socket::SocketAddr>,
    local: Option<&pingora::protocols::l4::socket::SocketAddr>,
) -> Option<ConnKey> {
    Some((*peer?.as_inet()?, *local?.as_inet()?))
}

// === impl ConnSlot ===

impl ConnSlot {
    /// Resolves when the connection's request header is overdue.
    async fn header_overdue(&self) {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let due = self.state.lock().header_due;
            match due {
                None => changed.await,
                Some(at) if Instant::now() >= at => return,
                Some(at) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(at) => {}
                        () = &mut changed => {}
                    }
                }
            }
        }
    }
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        self.counter.open.fetch_sub(1, Ordering::AcqRel);
        self.counter.metrics.connections_changed(-1);
    }
}

/// Takes a connection out of the gate's table when dropped.
struct Registered<'a> {
    gate: &'a ConnectionGate,
    key: Option<ConnKey>,
    slot: &'a Arc<ConnSlot>,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.gate.forget(self.key, self.slot);
    }
}

// === impl GatedProxy ===

impl<A> GatedProxy<A> {
    /// `inner` behind `gate`.
    pub(crate) fn new(inner: A, gate: Arc<ConnectionGate>) -> Self {
        Self {
            inner: Arc::new(inner),
            gate,
        }
    }
}

#[async_trait]
impl<A> ServerApp for GatedProxy<A>
where
    A: ServerApp + Send + Sync + 'static,
{
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let key = stream
            .get_socket_digest()
            .and_then(|digest| conn_key(digest.peer_addr(), digest.local_addr()));
        let slot = self.gate.admit(key)?;
        // Out of the table however this ends (a panic or a dropped task too).
        let _registered = Registered {
            gate: &self.gate,
            key,
            slot: &slot,
        };
        let served = self.inner.process_new(stream, shutdown);
        tokio::select! {
            out = served => out,
            () = slot.header_overdue() => {
                slot.counter.metrics.connection_dropped(ConnectionDrop::HeaderTimeout);
                tracing::debug!(peer = ?key.map(|k| k.0), "request header overdue: connection closed");
                None
            }
        }
    }

    async fn cleanup(&self) {
        self.inner.cleanup().await;
    }
}

#[cfg(test)]
mod tests {
    use sse_gateway_metrics::GatewayMetrics;

    use super::*;

    fn key(port: u16) -> Option<ConnKey> {
        Some((
            SocketAddr::from(([127, 0, 0, 1], port)),
            SocketAddr::from(([127, 0, 0, 1], 8080)),
        ))
    }

    fn gate(max: usize) -> (ConnectionGate, GatewayMetrics) {
        let metrics = GatewayMetrics::new(10).unwrap();
        let gate = ConnectionGate::new(max, Duration::from_secs(10), metrics.process().clone());
        (gate, metrics)
    }

    #[test]
    fn over_the_cap_a_connection_is_refused_and_counted() {
        let (gate, metrics) = gate(2);
        let a = gate.admit(key(1)).unwrap();
        let _b = gate.admit(key(2)).unwrap();
        assert!(gate.admit(key(3)).is_none());
        let text = metrics.encode_text();
        assert!(text.contains("sse_gateway_open_connections 2"), "{text}");
        assert!(
            text.contains(r#"sse_gateway_dropped_connections_total{reason="max_connections"} 1"#)
        );
        gate.forget(key(1), &a);
        drop(a);
        assert!(gate.admit(key(3)).is_some(), "a place was freed");
    }

    #[test]
    fn a_handed_off_connection_counts_until_its_permit_is_dropped() {
        let (gate, metrics) = gate(1);
        let slot = gate.admit(key(1)).unwrap();
        let permit = gate.hand_off(key(1)).unwrap();
        gate.forget(key(1), &slot);
        drop(slot); // pingora let go of it
        assert!(gate.admit(key(2)).is_none(), "the stream still holds it");
        drop(permit);
        assert!(gate.admit(key(2)).is_some());
        assert!(metrics
            .encode_text()
            .contains("sse_gateway_open_connections 1"));
    }

    #[tokio::test(start_paused = true)]
    async fn the_header_deadline_is_off_while_a_request_is_served() {
        let (gate, _metrics) = gate(10);
        let slot = gate.admit(key(1)).unwrap();
        // Overdue 10 s after the accept.
        let start = Instant::now();
        slot.header_overdue().await;
        assert_eq!(start.elapsed(), Duration::from_secs(10));

        let slot = gate.admit(key(2)).unwrap();
        gate.request_started(key(2));
        let waited = tokio::time::timeout(Duration::from_secs(3600), slot.header_overdue()).await;
        assert!(waited.is_err(), "no deadline while serving a request");
        // Two requests at once (HTTP/2): the deadline comes back after both.
        gate.request_started(key(2));
        gate.request_ended(key(2));
        let waited = tokio::time::timeout(Duration::from_secs(3600), slot.header_overdue()).await;
        assert!(waited.is_err(), "one is still served");
        gate.request_ended(key(2));
        let start = Instant::now();
        slot.header_overdue().await;
        assert_eq!(start.elapsed(), KEEPALIVE_IDLE + Duration::from_secs(10));
    }
}
