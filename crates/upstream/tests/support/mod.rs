//! Test fixtures: a hand-written HTTP/1.1 SSE upstream on 127.0.0.1:0, and a
//! hub with one `ClientQueue` subscriber driving the real `feed`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    dead_code,
    unreachable_pub,
    missing_docs
)]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;
use sse_gateway_codec::CodecLimits;
use sse_gateway_hub::{
    CloseReason, Delivery, DeliveryKind, HubLimits, Membership, SubscribeRequest, TopicHub,
    TopicSettings, UpstreamAnswer,
};
use sse_gateway_metrics::GatewayMetrics;
use sse_gateway_sinks::ClientQueue;
use sse_gateway_upstream::{feed, UpstreamSettings};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Patience for anything a test waits on.
pub const PATIENCE: Duration = Duration::from_secs(10);

pub const ROUTE: &str = "r";
pub const TOPIC: &str = "t";

// === the upstream ===

/// What the upstream does after writing its reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    /// Close the connection (ends a close-delimited body).
    Close,
    /// Keep it open, reading until the gateway closes it.
    Hold,
}

/// One scripted reply: a response head and body chunks, each written (and
/// flushed) separately.
#[derive(Debug, Clone)]
pub struct Reply {
    pub head: String,
    pub chunks: Vec<Vec<u8>>,
    pub after: After,
    /// Pause before each chunk after the first.
    pub pace: Duration,
}

/// What the upstream saw of one connection.
#[derive(Debug, Clone)]
pub struct Conn {
    /// The request head, as received.
    pub head: String,
    pub accepted: Instant,
    /// The gateway closed the connection (seen while holding it).
    pub eof: bool,
}

/// An SSE upstream serving one scripted reply per connection.
pub struct Upstream {
    pub addr: SocketAddr,
    conns: Arc<Mutex<Vec<Conn>>>,
    task: JoinHandle<()>,
}

impl Reply {
    /// 200 `text/event-stream`, close-delimited, with these chunks.
    pub fn sse<C: AsRef<[u8]>>(chunks: &[C]) -> Self {
        Self::with_head(
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n\
             cache-control: no-cache\r\nconnection: close\r\n\r\n",
            chunks,
        )
    }

    /// Any head (must end with the blank line) and chunks.
    pub fn with_head<C: AsRef<[u8]>>(head: &str, chunks: &[C]) -> Self {
        Self {
            head: head.to_owned(),
            chunks: chunks.iter().map(|c| c.as_ref().to_vec()).collect(),
            after: After::Close,
            pace: Duration::ZERO,
        }
    }

    /// A bodiless status.
    pub fn status(code: u16) -> Self {
        Self::with_head::<&[u8]>(
            &format!("HTTP/1.1 {code} Scripted\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"),
            &[],
        )
    }

    /// Pause this long between chunks (pacing, not synchronisation).
    pub fn paced(mut self, pace: Duration) -> Self {
        self.pace = pace;
        self
    }

    /// Keep the connection open after the chunks.
    pub fn hold(mut self) -> Self {
        self.after = After::Hold;
        self
    }
}

impl Upstream {
    /// Serves `script(connection index, request head)` on 127.0.0.1:0.
    pub async fn start<F>(script: F) -> Self
    where
        F: Fn(usize, &str) -> Reply + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let conns = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(script);
        let task = {
            let conns = conns.clone();
            tokio::spawn(async move {
                // Bounded: no test makes anywhere near this many connections.
                for _ in 0..10_000 {
                    let Ok((socket, _)) = listener.accept().await else {
                        return;
                    };
                    let accepted = Instant::now();
                    let conns = conns.clone();
                    let script = script.clone();
                    tokio::spawn(serve(socket, accepted, conns, script));
                }
            })
        };
        Self { addr, conns, task }
    }

    pub fn url(&self, path: &str) -> url::Url {
        url::Url::parse(&format!("http://{}{path}", self.addr)).unwrap()
    }

    pub fn connections(&self) -> usize {
        self.conns.lock().len()
    }

    pub fn conn(&self, index: usize) -> Conn {
        self.conns.lock()[index].clone()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve<F>(
    mut socket: TcpStream,
    accepted: Instant,
    conns: Arc<Mutex<Vec<Conn>>>,
    script: Arc<F>,
) where
    F: Fn(usize, &str) -> Reply + Send + Sync + 'static,
{
    let Some(head) = read_head(&mut socket).await else {
        return;
    };
    let index = {
        let mut conns = conns.lock();
        conns.push(Conn {
            head: head.clone(),
            accepted,
            eof: false,
        });
        conns.len() - 1
    };
    let reply = script(index, &head);
    if socket.write_all(reply.head.as_bytes()).await.is_err() {
        return;
    }
    for (i, chunk) in reply.chunks.iter().enumerate() {
        if i > 0 && !reply.pace.is_zero() {
            tokio::time::sleep(reply.pace).await;
        }
        if socket.write_all(chunk).await.is_err() || socket.flush().await.is_err() {
            return;
        }
    }
    match reply.after {
        After::Close => {
            let _ = socket.shutdown().await;
        }
        After::Hold => {
            let mut buf = [0u8; 1024];
            let deadline = Instant::now() + Duration::from_secs(60);
            while Instant::now() < deadline {
                match tokio::time::timeout(Duration::from_secs(1), socket.read(&mut buf)).await {
                    Ok(Ok(0)) | Ok(Err(_)) => {
                        conns.lock()[index].eof = true;
                        return;
                    }
                    Ok(Ok(_)) | Err(_) => {}
                }
            }
        }
    }
}

async fn read_head(socket: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    let deadline = Instant::now() + PATIENCE;
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        if head.len() > 64 * 1024 || Instant::now() > deadline {
            return None;
        }
        let n = tokio::time::timeout(PATIENCE, socket.read(&mut buf))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        head.extend_from_slice(&buf[..n]);
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

/// A header's value in a request head (names case-insensitive).
pub fn header(head: &str, name: &str) -> Option<String> {
    head.lines().skip(1).find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_owned())
    })
}

// === the gateway side ===

/// Feed settings with short backoff, suited to tests.
pub fn settings(url: url::Url) -> UpstreamSettings {
    UpstreamSettings {
        url,
        headers: Vec::new(),
        backoff_initial: Duration::from_millis(10),
        backoff_max: Duration::from_millis(50),
        idle_timeout: None,
        connect_timeout: Duration::from_secs(2),
        limits: CodecLimits::default(),
        tls: Default::default(),
    }
}

/// A hub, its metrics and one subscriber whose topic runs the real feed.
pub struct Client {
    pub hub: TopicHub,
    pub metrics: GatewayMetrics,
    pub queue: Arc<ClientQueue>,
    pub membership: Option<Membership>,
    pending: Vec<Delivery>,
}

impl Client {
    /// A subscriber that brings `last_event_id` (which the feed does not
    /// resume from: the route does not opt in).
    pub fn subscribe(upstream: UpstreamSettings, last_event_id: Option<&str>) -> Self {
        Self::subscribe_with(upstream, last_event_id, false)
    }

    /// The first subscriber of a route with `resume_from_client`: the feed
    /// resumes from its `last_event_id`.
    pub fn resuming(upstream: UpstreamSettings, last_event_id: &str) -> Self {
        Self::subscribe_with(upstream, Some(last_event_id), true)
    }

    fn subscribe_with(
        upstream: UpstreamSettings,
        last_event_id: Option<&str>,
        resume_from_client: bool,
    ) -> Self {
        let metrics = GatewayMetrics::new(100).unwrap();
        let hub = TopicHub::new(
            HubLimits::default(),
            metrics.clone(),
            tokio::runtime::Handle::current(),
        );
        let topic_settings = Arc::new(TopicSettings {
            heartbeat: Duration::ZERO,
            client_retry: Duration::ZERO,
            linger: Duration::ZERO,
            resume_from_client,
            ..Default::default()
        });
        let queue = Arc::new(ClientQueue::new(1 << 20));
        let upstream = Arc::new(upstream);
        let membership = hub
            .subscribe(
                SubscribeRequest {
                    route: ROUTE,
                    topic: TOPIC,
                    settings: &topic_settings,
                    last_event_id,
                    may_open: None,
                },
                queue.clone(),
                |publisher| feed(upstream.clone(), publisher),
            )
            .unwrap();
        Self {
            hub,
            metrics,
            queue,
            membership: Some(membership),
            pending: Vec::new(),
        }
    }

    /// What the upstream answered the topic (waits while it has not).
    pub async fn answer(&self) -> UpstreamAnswer {
        match &self.membership {
            Some(membership) => membership.upstream_answer(PATIENCE).await,
            None => UpstreamAnswer::Pending,
        }
    }

    /// The next delivery, or `Err` with the close reason, or `None` at the
    /// deadline.
    pub async fn next(&mut self, deadline: Instant) -> Option<Result<Delivery, CloseReason>> {
        if self.pending.is_empty() {
            let mut batch = Vec::new();
            let wait = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(wait, self.queue.next_batch(&mut batch)).await {
                Err(_) => return None,
                Ok(Err(reason)) => return Some(Err(reason)),
                Ok(Ok(())) => self.pending = batch.into_iter().rev().collect(),
            }
        }
        self.pending.pop().map(Ok)
    }

    /// The next `n` live event frames (other deliveries skipped; frames that
    /// arrived in one read, delivered together, split again).
    pub async fn events(&mut self, n: usize) -> Vec<Bytes> {
        let deadline = Instant::now() + PATIENCE;
        let mut events = Vec::new();
        while events.len() < n {
            match self.next(deadline).await {
                Some(Ok(d)) if d.kind == DeliveryKind::Event => events.push(d.bytes),
                Some(Ok(d)) if matches!(d.kind, DeliveryKind::Batch { .. }) => {
                    let mut rest = d.bytes.clone();
                    while let Some(end) = rest.windows(2).position(|w| w == b"\n\n") {
                        events.push(rest.split_to(end + 2));
                    }
                    assert!(rest.is_empty(), "a batch holds whole frames");
                }
                Some(Ok(_)) => {}
                Some(Err(reason)) => panic!("stream closed ({reason}) after {events:?}"),
                None => panic!(
                    "only {} of {n} events before the deadline: {events:?}",
                    events.len()
                ),
            }
        }
        events
    }

    /// A counter or gauge from the metrics text, summed over the lines of
    /// `name` that contain every one of `labels`.
    pub fn metric(&self, name: &str, labels: &[&str]) -> u64 {
        self.metrics
            .encode_text()
            .lines()
            .filter(|l| l.starts_with(name) && labels.iter().all(|want| l.contains(want)))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .map(|v| v as u64)
            .sum()
    }

    pub fn upstream_errors(&self, kind: &str) -> u64 {
        self.metric(
            "sse_gateway_upstream_errors_total",
            &[&format!("kind=\"{kind}\"")],
        )
    }
}

/// Polls `condition` every few milliseconds until it holds or `PATIENCE` passes.
pub async fn eventually(mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    condition()
}

/// Runs `f` with a deadline of `PATIENCE`.
pub async fn within<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, f).await.expect("timed out")
}
