//! Fixtures of the direct path's tests, over real loopback sockets: a hub topic
//! ([`Harness`]) offers frames to a `DirectSink` that writes HTTP/1.1 chunks straight
//! to the accepted socket ([`connect`], [`socket_pair`]), and the test reads the client
//! side with a strict chunked decoder ([`ChunkReader`]: `size\r\n` + payload + `\r\n`,
//! lowercase hex without leading zeros or extensions, `0\r\n\r\n` without trailers,
//! then EOF).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sse_gateway_hub::testing::TestFeed;
use sse_gateway_hub::{
    HubLimits, Membership, SubscribeRequest, TopicHub, TopicPublisher, TopicSettings,
};
use sse_gateway_metrics::GatewayMetrics;
use sse_gateway_sinks::{
    serve, ClientQueue, Coalescing, DirectOutcome, DirectSettings, DirectSink, Drain, Expiry,
};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinHandle;

/// Bound on every wait.
pub(crate) const DEADLINE: Duration = Duration::from_secs(10);

/// Kernel buffer size asked for in the back-pressure tests (the kernel
/// doubles it and applies its minimum): small enough that a few dozen
/// kilobytes fill the path.
pub(crate) const SMALL_BUFFER: u32 = 4096;

pub(crate) const SLOW_SERIES: &str =
    r#"sse_gateway_slow_client_disconnects_total{route="r",topic="t"}"#;
pub(crate) const EVENTS_SERIES: &str = r#"sse_gateway_delivered_events_total{route="r",topic="t"}"#;
pub(crate) const BYTES_SERIES: &str = r#"sse_gateway_delivered_bytes_total{route="r",topic="t"}"#;
pub(crate) const SUBSCRIBERS_SERIES: &str = r#"sse_gateway_subscribers{route="r",topic="t"}"#;

// ---------------------------------------------------------------------------
// The hub side.

/// Quiet topic settings and test frames, as the hub's tests make them.
#[allow(unused_imports)] // each test file uses what it needs
pub(crate) use sse_gateway_hub::testing::{frame, quiet};

/// The id of an event frame as the client sees it (`id: N\n...`).
pub(crate) fn id_of(payload: &[u8]) -> u64 {
    let text = std::str::from_utf8(payload).unwrap();
    text.strip_prefix("id: ")
        .unwrap_or_else(|| panic!("not an event with an id: {text:?}"))
        .split('\n')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// The gateway's drain as the direct streams see it: not started, advising
/// 1234 ms (jittered) once it is.
pub(crate) struct TestDrain;

impl TestDrain {
    pub(crate) fn idle() -> Arc<Drain> {
        Arc::new(Drain::new(Duration::from_millis(1234)))
    }
}

/// The gathering window of the tests' settings: the gateway's default.
pub(crate) const COALESCE_WINDOW: Duration = Duration::from_millis(5);

/// Settings whose offer rounds gather their sends (io_uring where the
/// kernel gives one; [`one_by_one`] turns that off), and whose clients that
/// fall behind their sockets get frames gathered for up to
/// [`COALESCE_WINDOW`].
pub(crate) fn direct_settings(
    client_queue: usize,
    write_timeout: Duration,
    drain: Arc<Drain>,
) -> Arc<DirectSettings> {
    Arc::new(DirectSettings {
        client_queue,
        write_timeout,
        drain,
        batched_sends: true,
        coalescing: Coalescing::new(COALESCE_WINDOW),
        conflation: None,
    })
}

/// `settings` with one `send` per offer, never gathered.
pub(crate) fn one_by_one(settings: Arc<DirectSettings>) -> Arc<DirectSettings> {
    Arc::new(DirectSettings {
        client_queue: settings.client_queue,
        write_timeout: settings.write_timeout,
        drain: settings.drain.clone(),
        batched_sends: false,
        coalescing: settings.coalescing.clone(),
        conflation: settings.conflation.clone(),
    })
}

/// `settings`, batched or [`one_by_one`].
pub(crate) fn sending(batched: bool, settings: Arc<DirectSettings>) -> Arc<DirectSettings> {
    if batched {
        settings
    } else {
        one_by_one(settings)
    }
}

pub(crate) struct Harness {
    pub(crate) hub: TopicHub,
    pub(crate) metrics: GatewayMetrics,
    pub(crate) settings: Arc<TopicSettings>,
    pub(crate) feed: TestFeed,
}

impl Harness {
    pub(crate) fn new(settings: TopicSettings) -> Self {
        Self::with_limits(settings, HubLimits::default())
    }

    pub(crate) fn with_limits(settings: TopicSettings, limits: HubLimits) -> Self {
        let metrics = GatewayMetrics::new(100).unwrap();
        let hub = TopicHub::new(limits, metrics.clone(), tokio::runtime::Handle::current());
        Self {
            hub,
            metrics,
            settings: Arc::new(settings),
            feed: TestFeed::default(),
        }
    }

    pub(crate) fn request<'a>(&'a self, last_event_id: Option<&'a str>) -> SubscribeRequest<'a> {
        SubscribeRequest {
            route: "r",
            topic: "t",
            settings: &self.settings,
            last_event_id,
            may_open: None,
        }
    }

    /// Subscribes a direct sink to topic `t` (not attached yet: it holds).
    pub(crate) fn subscribe(
        &self,
        last_event_id: Option<&str>,
        settings: Arc<DirectSettings>,
    ) -> (Membership, Arc<DirectSink>) {
        let sink = DirectSink::new(settings);
        let membership = self
            .hub
            .subscribe(self.request(last_event_id), sink.clone(), self.feed.open())
            .unwrap();
        (membership, sink)
    }

    /// Subscribes a session-path queue (keeps the topic open, fills the ring).
    pub(crate) fn subscribe_queue(&self) -> (Membership, Arc<ClientQueue>) {
        let queue = Arc::new(ClientQueue::new(64 << 20));
        let membership = self
            .hub
            .subscribe(self.request(None), queue.clone(), self.feed.open())
            .unwrap();
        (membership, queue)
    }

    pub(crate) fn metric(&self, series: &str) -> Option<f64> {
        metric(&self.metrics, series)
    }

    pub(crate) fn subscribers(&self) -> usize {
        self.hub
            .topics()
            .iter()
            .find(|t| t.route == "r" && t.topic == "t")
            .map_or(0, |t| t.subscribers)
    }
}

/// The value of one series in the metrics' text exposition.
pub(crate) fn metric(metrics: &GatewayMetrics, series: &str) -> Option<f64> {
    metrics.encode_text().lines().find_map(|line| {
        line.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

// ---------------------------------------------------------------------------
// Sockets and the served stream.

/// A loopback connection: (server side, client side). With `small`, the
/// listener's SO_SNDBUF (inherited by the accepted socket) and the client's
/// SO_RCVBUF are set small before the connection exists.
pub(crate) async fn socket_pair(small: bool) -> (TcpStream, TcpStream) {
    let listener = TcpSocket::new_v4().unwrap();
    let client = TcpSocket::new_v4().unwrap();
    if small {
        listener.set_send_buffer_size(SMALL_BUFFER).unwrap();
        client.set_recv_buffer_size(SMALL_BUFFER).unwrap();
    }
    listener.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = listener.listen(8).unwrap();
    let addr = listener.local_addr().unwrap();
    let (accepted, connected) = tokio::time::timeout(DEADLINE, async {
        tokio::join!(listener.accept(), client.connect(addr))
    })
    .await
    .expect("loopback connection in time");
    let (server, _) = accepted.unwrap();
    (server, connected.unwrap())
}

/// A running `serve` task.
pub(crate) struct Served {
    pub(crate) task: JoinHandle<DirectOutcome>,
}

impl Served {
    pub(crate) async fn outcome(self) -> DirectOutcome {
        tokio::time::timeout(DEADLINE, self.task)
            .await
            .expect("serve ended in time")
            .unwrap()
    }
}

/// Connects a client, attaches the server side to `sink` and spawns `serve`.
pub(crate) async fn connect(
    sink: &Arc<DirectSink>,
    membership: &Membership,
    small: bool,
) -> (ChunkReader<TcpStream>, Served) {
    connect_expiring(sink, membership, small, None).await
}

/// [`connect`], with credentials that expire at `expiry`.
pub(crate) async fn connect_expiring(
    sink: &Arc<DirectSink>,
    membership: &Membership,
    small: bool,
    expiry: Option<Expiry>,
) -> (ChunkReader<TcpStream>, Served) {
    let (server, client) = socket_pair(small).await;
    sink.attach(server, membership.recorder());
    let task = tokio::spawn(serve(sink.clone(), expiry));
    (ChunkReader::new(client), Served { task })
}

/// Publishes `count` frames (ids from `first`) with padding that varies
/// between `pad` and `pad + 2000` bytes; returns their bytes.
pub(crate) fn publish(
    publisher: &TopicPublisher,
    first: u64,
    count: u64,
    pad: usize,
) -> Vec<Bytes> {
    (first..first + count)
        .map(|id| {
            let frame = frame(id, pad + (id as usize * 37) % 2001);
            let bytes = frame.bytes().clone();
            publisher.publish(frame, Instant::now());
            bytes
        })
        .collect()
}

// ---------------------------------------------------------------------------
// The client: a strict HTTP/1.1 chunked-body decoder.

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Chunk {
    Data(Vec<u8>),
    /// `0\r\n\r\n`.
    Last,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum WireError {
    /// The connection ended; `clean` when at a chunk boundary.
    Eof { clean: bool },
    /// Nothing arrived within [`DEADLINE`].
    Timeout,
    /// The read failed (e.g. reset).
    Io(String),
    /// The bytes are not a well-formed chunked body.
    Malformed(String),
}

pub(crate) struct ChunkReader<R> {
    pub(crate) io: R,
    pub(crate) buf: Vec<u8>,
    pub(crate) pos: usize,
}

impl<R: AsyncRead + Unpin> ChunkReader<R> {
    pub(crate) fn new(io: R) -> Self {
        Self {
            io,
            buf: Vec::new(),
            pos: 0,
        }
    }

    pub(crate) fn available(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// Reads more; `Ok(0)` at EOF.
    pub(crate) async fn fill(&mut self) -> Result<usize, WireError> {
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
        self.buf.reserve(16 * 1024);
        tokio::time::timeout(DEADLINE, self.io.read_buf(&mut self.buf))
            .await
            .map_err(|_| WireError::Timeout)?
            .map_err(|e| WireError::Io(e.to_string()))
    }

    pub(crate) async fn need(&mut self, n: usize) -> Result<(), WireError> {
        while self.available().len() < n {
            if self.fill().await? == 0 {
                return Err(WireError::Eof { clean: false });
            }
        }
        Ok(())
    }

    /// The next chunk, strictly parsed.
    pub(crate) async fn next(&mut self) -> Result<Chunk, WireError> {
        let line_end = loop {
            if let Some(at) = self.available().windows(2).position(|w| w == b"\r\n") {
                break at;
            }
            if self.available().len() > 17 {
                return Err(WireError::Malformed("size line too long".into()));
            }
            let had = self.available().len();
            if self.fill().await? == 0 {
                return Err(WireError::Eof { clean: had == 0 });
            }
        };
        let digits = &self.available()[..line_end];
        let valid = !digits.is_empty()
            && digits.len() <= 16
            && digits.iter().all(|b| b"0123456789abcdef".contains(b))
            && !(digits.len() > 1 && digits[0] == b'0');
        if !valid {
            return Err(WireError::Malformed(format!(
                "bad size line {:?}",
                String::from_utf8_lossy(digits)
            )));
        }
        let size =
            usize::from_str_radix(std::str::from_utf8(digits).unwrap(), 16).expect("hex digits");
        self.pos += line_end + 2;
        self.need(size + 2).await?;
        let chunk = &self.available()[..size + 2];
        if &chunk[size..] != b"\r\n" {
            return Err(WireError::Malformed(format!(
                "a chunk of {size} bytes not followed by CRLF"
            )));
        }
        let payload = chunk[..size].to_vec();
        self.pos += size + 2;
        Ok(if size == 0 {
            Chunk::Last
        } else {
            Chunk::Data(payload)
        })
    }

    /// The next chunk, which must carry data.
    pub(crate) async fn data(&mut self) -> Vec<u8> {
        match self.next().await {
            Ok(Chunk::Data(payload)) => payload,
            other => panic!("expected a data chunk, got {other:?}"),
        }
    }

    /// Checks that the peer closed right after what was read.
    pub(crate) async fn expect_eof(&mut self) -> Result<(), WireError> {
        if !self.available().is_empty() {
            return Err(WireError::Malformed("bytes after the last chunk".into()));
        }
        match self.fill().await? {
            0 => Ok(()),
            _ => Err(WireError::Malformed("bytes after the last chunk".into())),
        }
    }

    /// Data chunks up to a well-formed end: the last chunk, then EOF.
    pub(crate) async fn complete_body(&mut self) -> Vec<Vec<u8>> {
        let mut chunks = Vec::new();
        loop {
            match self.next().await {
                Ok(Chunk::Data(payload)) => chunks.push(payload),
                Ok(Chunk::Last) => break,
                Err(e) => panic!("body ended after {} chunks: {e:?}", chunks.len()),
            }
        }
        self.expect_eof()
            .await
            .expect("EOF right after the last chunk");
        chunks
    }

    /// Data chunks up to a cut-off: the connection ends (EOF or reset)
    /// without the last chunk.
    pub(crate) async fn cut_body(&mut self) -> Vec<Vec<u8>> {
        let mut chunks = Vec::new();
        loop {
            match self.next().await {
                Ok(Chunk::Data(payload)) => chunks.push(payload),
                Ok(Chunk::Last) => panic!("a cut-off stream must not end with the last chunk"),
                Err(WireError::Eof { .. } | WireError::Io(_)) => return chunks,
                Err(e) => panic!("after {} chunks: {e:?}", chunks.len()),
            }
        }
    }
}

/// Asserts `events` are exactly `sent`, in order.
pub(crate) fn assert_frames(events: &[Vec<u8>], sent: &[Bytes]) {
    assert_eq!(events.len(), sent.len(), "event count");
    for (i, (got, want)) in events.iter().zip(sent).enumerate() {
        assert_eq!(
            got.as_slice(),
            &want[..],
            "chunk {i}: ids {} vs {}",
            id_of(got),
            id_of(want)
        );
    }
}

pub(crate) fn payload_bytes(sent: &[Bytes]) -> u64 {
    sent.iter().map(|b| b.len() as u64).sum()
}
