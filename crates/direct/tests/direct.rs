//! The direct write path end to end, over real loopback sockets: a hub topic
//! offers frames to a [`DirectSink`] that writes HTTP/1.1 chunks straight to
//! the accepted socket, and the test reads the client side with a strict
//! chunked decoder (`size\r\n` + payload + `\r\n`, lowercase hex without
//! leading zeros or extensions, `0\r\n\r\n` without trailers, then EOF).
//!
//! Covered: order and framing (one chunk per frame) with the outcome's and
//! the metrics' counts; frames held between subscribe and attach (replay
//! included, bounded by `client_queue`, kept through an upstream stop that
//! comes before the attach); back-pressure with small kernel buffers (partial writes, flush
//! on write-readiness) without loss; the slow-client disconnect while another
//! subscriber gets everything; the client closing or sending bytes; the drain
//! (hub shutdown: pending, the final frame, the last
//! chunk; the hub's `retry:` advice left out); the upstream stop; credential
//! expiry; the write timeout (a socket that takes nothing is cut off, one that
//! keeps taking bytes while behind is not); and the decoder itself.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sse_gateway_codec::{encode_event, Frame, OutgoingEvent};
use sse_gateway_direct::{serve, ClientQueue, DirectOutcome, DirectSettings, DirectSink, Drain};
use sse_gateway_hub::testing::TestFeed;
use sse_gateway_hub::{
    CloseReason, Delivery, DeliveryKind, HubLimits, Membership, Offer, OfferRound,
    SubscribeRequest, SubscriberSink, TopicHub, TopicPublisher, TopicSettings, SHARD_MIN,
};
use sse_gateway_metrics::GatewayMetrics;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinHandle;

/// Bound on every wait.
const DEADLINE: Duration = Duration::from_secs(10);

/// Kernel buffer size asked for in the back-pressure tests (the kernel
/// doubles it and applies its minimum): small enough that a few dozen
/// kilobytes fill the path.
const SMALL_BUFFER: u32 = 4096;

const SLOW_SERIES: &str = r#"sse_gateway_slow_client_disconnects_total{route="r",topic="t"}"#;
const EVENTS_SERIES: &str = r#"sse_gateway_delivered_events_total{route="r",topic="t"}"#;
const BYTES_SERIES: &str = r#"sse_gateway_delivered_bytes_total{route="r",topic="t"}"#;
const SUBSCRIBERS_SERIES: &str = r#"sse_gateway_subscribers{route="r",topic="t"}"#;

// ---------------------------------------------------------------------------
// The hub side.

fn quiet() -> TopicSettings {
    TopicSettings {
        heartbeat: Duration::ZERO,
        client_retry: Duration::ZERO,
        linger: Duration::ZERO,
        ..TopicSettings::default()
    }
}

/// An event with id `id` and about `pad` bytes of padding in its data.
fn frame(id: u64, pad: usize) -> Frame {
    encode_event(&OutgoingEvent {
        id: Some(&id.to_string()),
        data: &format!("event {id} {}", "x".repeat(pad)),
        ..Default::default()
    })
    .unwrap()
}

/// The id of an event frame as the client sees it (`id: N\n...`).
fn id_of(payload: &[u8]) -> u64 {
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
struct TestDrain;

impl TestDrain {
    fn idle() -> Arc<Drain> {
        Arc::new(Drain::new(Duration::from_millis(1234)))
    }
}

/// Settings whose offer rounds gather their sends (io_uring where the
/// kernel gives one); [`one_by_one`] turns that off.
fn direct_settings(
    client_queue: usize,
    write_timeout: Duration,
    drain: Arc<Drain>,
) -> Arc<DirectSettings> {
    Arc::new(DirectSettings {
        client_queue,
        write_timeout,
        drain,
        batched_sends: true,
    })
}

/// `settings` with one `send` per offer, never gathered.
fn one_by_one(settings: Arc<DirectSettings>) -> Arc<DirectSettings> {
    Arc::new(DirectSettings {
        client_queue: settings.client_queue,
        write_timeout: settings.write_timeout,
        drain: settings.drain.clone(),
        batched_sends: false,
    })
}

/// `settings`, batched or [`one_by_one`].
fn sending(batched: bool, settings: Arc<DirectSettings>) -> Arc<DirectSettings> {
    if batched {
        settings
    } else {
        one_by_one(settings)
    }
}

struct Harness {
    hub: TopicHub,
    metrics: GatewayMetrics,
    settings: Arc<TopicSettings>,
    feed: TestFeed,
}

impl Harness {
    fn new(settings: TopicSettings) -> Self {
        Self::with_limits(settings, HubLimits::default())
    }

    fn with_limits(settings: TopicSettings, limits: HubLimits) -> Self {
        let metrics = GatewayMetrics::new(100).unwrap();
        let hub = TopicHub::new(limits, metrics.clone(), tokio::runtime::Handle::current());
        Self {
            hub,
            metrics,
            settings: Arc::new(settings),
            feed: TestFeed::default(),
        }
    }

    fn request<'a>(&'a self, last_event_id: Option<&'a str>) -> SubscribeRequest<'a> {
        SubscribeRequest {
            route: "r",
            topic: "t",
            settings: &self.settings,
            last_event_id,
            may_open: None,
        }
    }

    /// Subscribes a direct sink to topic `t` (not attached yet: it holds).
    fn subscribe(
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
    fn subscribe_queue(&self) -> (Membership, Arc<ClientQueue>) {
        let queue = Arc::new(ClientQueue::new(64 << 20));
        let membership = self
            .hub
            .subscribe(self.request(None), queue.clone(), self.feed.open())
            .unwrap();
        (membership, queue)
    }

    fn metric(&self, series: &str) -> Option<f64> {
        metric(&self.metrics, series)
    }

    fn subscribers(&self) -> usize {
        self.hub
            .topics()
            .iter()
            .find(|t| t.route == "r" && t.topic == "t")
            .map_or(0, |t| t.subscribers)
    }
}

/// The value of one series in the metrics' text exposition.
fn metric(metrics: &GatewayMetrics, series: &str) -> Option<f64> {
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
async fn socket_pair(small: bool) -> (TcpStream, TcpStream) {
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
struct Served {
    task: JoinHandle<DirectOutcome>,
}

impl Served {
    async fn outcome(self) -> DirectOutcome {
        tokio::time::timeout(DEADLINE, self.task)
            .await
            .expect("serve ended in time")
            .unwrap()
    }
}

/// Connects a client, attaches the server side to `sink` and spawns `serve`.
async fn connect(
    sink: &Arc<DirectSink>,
    membership: &Membership,
    small: bool,
) -> (ChunkReader<TcpStream>, Served) {
    connect_expiring(sink, membership, small, None).await
}

/// [`connect`], with credentials that expire at `expiry`.
async fn connect_expiring(
    sink: &Arc<DirectSink>,
    membership: &Membership,
    small: bool,
    expiry: Option<Instant>,
) -> (ChunkReader<TcpStream>, Served) {
    let (server, client) = socket_pair(small).await;
    sink.attach(server, membership.recorder());
    let task = tokio::spawn(serve(sink.clone(), expiry));
    (ChunkReader::new(client), Served { task })
}

/// Publishes `count` frames (ids from `first`) with padding that varies
/// between `pad` and `pad + 2000` bytes; returns their bytes.
fn publish(publisher: &TopicPublisher, first: u64, count: u64, pad: usize) -> Vec<Bytes> {
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
enum Chunk {
    Data(Vec<u8>),
    /// `0\r\n\r\n`.
    Last,
}

#[derive(Debug, PartialEq, Eq)]
enum WireError {
    /// The connection ended; `clean` when at a chunk boundary.
    Eof { clean: bool },
    /// Nothing arrived within [`DEADLINE`].
    Timeout,
    /// The read failed (e.g. reset).
    Io(String),
    /// The bytes are not a well-formed chunked body.
    Malformed(String),
}

struct ChunkReader<R> {
    io: R,
    buf: Vec<u8>,
    pos: usize,
}

impl<R: AsyncRead + Unpin> ChunkReader<R> {
    fn new(io: R) -> Self {
        Self {
            io,
            buf: Vec::new(),
            pos: 0,
        }
    }

    fn available(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// Reads more; `Ok(0)` at EOF.
    async fn fill(&mut self) -> Result<usize, WireError> {
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

    async fn need(&mut self, n: usize) -> Result<(), WireError> {
        while self.available().len() < n {
            if self.fill().await? == 0 {
                return Err(WireError::Eof { clean: false });
            }
        }
        Ok(())
    }

    /// The next chunk, strictly parsed.
    async fn next(&mut self) -> Result<Chunk, WireError> {
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
    async fn data(&mut self) -> Vec<u8> {
        match self.next().await {
            Ok(Chunk::Data(payload)) => payload,
            other => panic!("expected a data chunk, got {other:?}"),
        }
    }

    /// Checks that the peer closed right after what was read.
    async fn expect_eof(&mut self) -> Result<(), WireError> {
        if !self.available().is_empty() {
            return Err(WireError::Malformed("bytes after the last chunk".into()));
        }
        match self.fill().await? {
            0 => Ok(()),
            _ => Err(WireError::Malformed("bytes after the last chunk".into())),
        }
    }

    /// Data chunks up to a well-formed end: the last chunk, then EOF.
    async fn complete_body(&mut self) -> Vec<Vec<u8>> {
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
    async fn cut_body(&mut self) -> Vec<Vec<u8>> {
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
fn assert_frames(events: &[Vec<u8>], sent: &[Bytes]) {
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

fn payload_bytes(sent: &[Bytes]) -> u64 {
    sent.iter().map(|b| b.len() as u64).sum()
}

// ---------------------------------------------------------------------------
// The decoder itself.

#[tokio::test]
async fn the_decoder_is_strict() {
    let mut ok =
        ChunkReader::new(&b"2\r\n:\n\r\n1b\r\nid: 1\ndata: xxxxxxxxxxxxx\n\n\r\n0\r\n\r\n"[..]);
    assert_eq!(ok.next().await, Ok(Chunk::Data(b":\n".to_vec())));
    assert_eq!(id_of(&ok.data().await), 1);
    assert_eq!(ok.next().await, Ok(Chunk::Last));
    assert_eq!(ok.expect_eof().await, Ok(()));

    for bad in [
        &b"2\r\n:\nX\r\n"[..],
        b"02\r\n:\n\r\n",
        b"2;ext\r\n:\n\r\n",
        b"A\r\n0123456789\r\n",
        b"\r\n",
        b"2\n:\n\r\n",
        b"fffffffffffffffff\r\n",
    ] {
        let mut reader = ChunkReader::new(bad);
        assert!(
            matches!(reader.next().await, Err(WireError::Malformed(_))),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    let mut cut = ChunkReader::new(&b"5\r\nab"[..]);
    assert_eq!(cut.next().await, Err(WireError::Eof { clean: false }));
    let mut trailer = ChunkReader::new(&b"0\r\nx: y\r\n\r\n"[..]);
    assert!(matches!(trailer.next().await, Err(WireError::Malformed(_))));
    let mut extra = ChunkReader::new(&b"0\r\n\r\nHTTP"[..]);
    assert_eq!(extra.next().await, Ok(Chunk::Last));
    assert!(extra.expect_eof().await.is_err());
}

// ---------------------------------------------------------------------------
// 1. Order and framing.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_frames_arrive_in_order_one_chunk_each_and_are_counted() {
    let h = Harness::new(quiet());
    let (membership, sink) =
        h.subscribe(None, direct_settings(64 << 20, DEADLINE, TestDrain::idle()));
    let (mut client, served) = connect(&sink, &membership, false).await;
    let reader = tokio::spawn(async move { client.complete_body().await });
    let publisher = h.feed.publisher();
    let sent: Vec<Bytes> = (1..=1000)
        .map(|id| {
            let frame = frame(id, (id as usize * 7) % 97);
            let bytes = frame.bytes().clone();
            publisher.publish(frame, Instant::now());
            bytes
        })
        .collect();
    publisher.stop();

    let chunks = tokio::time::timeout(DEADLINE, reader)
        .await
        .expect("body in time")
        .unwrap();
    assert_eq!(chunks[0], b":\n", "the opening comment comes first");
    assert_frames(&chunks[1..], &sent);

    let outcome = served.outcome().await;
    assert_eq!(outcome.end, CloseReason::UpstreamStopped);
    assert_eq!(outcome.events, 1000);
    assert_eq!(
        outcome.bytes,
        payload_bytes(&sent),
        "the comment is not counted"
    );
    assert_eq!(h.metric(EVENTS_SERIES), Some(1000.0));
    assert_eq!(h.metric(BYTES_SERIES), Some(payload_bytes(&sent) as f64));
    drop(membership);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_round_larger_than_a_ring_reaches_every_subscriber() {
    many_subscribers_get_every_frame(1, &[true], 300).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_of_batched_and_one_by_one_subscribers_get_every_frame() {
    many_subscribers_get_every_frame(2, &[true, false], 2 * SHARD_MIN + 88).await;
}

/// `count` direct subscribers of one topic (their sends gathered or not, by
/// turns from `batched`), offered on `shard_threads`: each gets every frame
/// once, in order, and each is counted once.
async fn many_subscribers_get_every_frame(shard_threads: usize, batched: &[bool], count: usize) {
    let limits = HubLimits {
        shard_threads,
        ..HubLimits::default()
    };
    let h = Harness::with_limits(quiet(), limits);
    let mut streams = Vec::new();
    for index in 0..count {
        let settings = direct_settings(64 << 20, DEADLINE, TestDrain::idle());
        let (membership, sink) =
            h.subscribe(None, sending(batched[index % batched.len()], settings));
        let (mut client, served) = connect(&sink, &membership, false).await;
        let reader = tokio::spawn(async move { client.complete_body().await });
        streams.push((membership, reader, served));
    }
    assert_eq!(h.subscribers(), count);
    let publisher = h.feed.publisher();
    let sent = publish(&publisher, 1, 100, 10);
    publisher.stop();

    for (index, (membership, reader, served)) in streams.into_iter().enumerate() {
        let chunks = tokio::time::timeout(DEADLINE, reader)
            .await
            .expect("body in time")
            .unwrap();
        assert_eq!(chunks[0], b":\n", "subscriber {index}");
        assert_frames(&chunks[1..], &sent);
        let outcome = served.outcome().await;
        assert_eq!(
            outcome.end,
            CloseReason::UpstreamStopped,
            "subscriber {index}"
        );
        assert_eq!(outcome.events, 100, "subscriber {index}");
        drop(membership);
    }
    assert_eq!(h.metric(EVENTS_SERIES), Some((100 * count) as f64));
    assert_eq!(
        h.metric(BYTES_SERIES),
        Some((payload_bytes(&sent) * count as u64) as f64)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_does_not_end_while_its_gathered_send_is_in_flight() {
    if let Err(e) = sse_gateway_direct::batched_sends() {
        eprintln!("no io_uring here ({e}): nothing is gathered, nothing to test");
        return;
    }
    let h = Harness::new(quiet());
    let (membership, sink) =
        h.subscribe(None, direct_settings(64 << 20, DEADLINE, TestDrain::idle()));
    let (mut client, served) = connect(&sink, &membership, false).await;
    assert_eq!(client.next().await, Ok(Chunk::Data(b":\n".to_vec())));
    let route = h.metrics.route("r");
    let delivery = Delivery::new(
        frame(1, 0).bytes().clone(),
        DeliveryKind::Event,
        Instant::now(),
    );

    // A round on this thread gathers the send and has not ended yet.
    let round = {
        let mut round = OfferRound::new(&route);
        assert_eq!(sink.offer(&delivery, &mut round), Offer::Accepted);
        round
    };
    // The client leaves: its task sees it, but must not end the stream (nor
    // let go of the socket) while the send is in flight.
    drop(client);
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        !served.task.is_finished(),
        "the stream ended with a send in flight"
    );
    // The round ends: the send lands, then the stream ends.
    drop(round);
    let outcome = served.outcome().await;
    assert_eq!(outcome.end, CloseReason::ClientClosed);
    drop(membership);
}

// ---------------------------------------------------------------------------
// 2. Held before attach, replay included.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_and_frames_held_before_attach_arrive_in_order_after_it() {
    let settings = TopicSettings {
        client_retry: Duration::from_millis(2000),
        ..quiet()
    };
    let h = Harness::new(settings);
    let (_anchor, _queue) = h.subscribe_queue();
    let publisher = h.feed.publisher();
    let mut sent = publish(&publisher, 1, 10, 0);

    let (membership, sink) = h.subscribe(
        Some("4"),
        direct_settings(64 << 20, DEADLINE, TestDrain::idle()),
    );
    sent.extend(publish(&publisher, 11, 10, 0));
    assert_eq!(sink.written(), (0, 0), "nothing written before attach");

    let (mut client, served) = connect(&sink, &membership, false).await;
    sent.extend(publish(&publisher, 21, 10, 0));
    publisher.stop();

    let chunks = client.complete_body().await;
    let advice = std::str::from_utf8(&chunks[0]).unwrap();
    let ms: u64 = advice
        .strip_prefix("retry: ")
        .unwrap_or_else(|| panic!("the join's advice first, got {advice:?}"))
        .trim_end()
        .parse()
        .unwrap();
    assert!((1600..=2400).contains(&ms), "jittered ±20%: {ms}");
    assert_frames(&chunks[1..], &sent[4..]);
    assert_eq!(
        chunks[1..].iter().map(|c| id_of(c)).collect::<Vec<_>>(),
        (5..=30).collect::<Vec<_>>(),
        "replayed 5..=10, held 11..=20, live 21..=30"
    );

    let outcome = served.outcome().await;
    assert_eq!(outcome.end, CloseReason::UpstreamStopped);
    assert_eq!(outcome.events, 26);
    let bytes = chunks[0].len() as u64 + payload_bytes(&sent[4..]);
    assert_eq!(
        outcome.bytes, bytes,
        "advice bytes count, as on the session path"
    );
    assert_eq!(h.metric(EVENTS_SERIES), Some(26.0));
    assert_eq!(h.metric(BYTES_SERIES), Some(bytes as f64));
    assert_eq!(
        h.metric(r#"sse_gateway_replayed_events_total{route="r",topic="t"}"#),
        Some(6.0)
    );
    drop(membership);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_stopped_before_attach_still_gets_what_it_held_then_the_last_chunk() {
    let h = Harness::new(quiet());
    let (membership, sink) =
        h.subscribe(None, direct_settings(1 << 20, DEADLINE, TestDrain::idle()));
    let publisher = h.feed.publisher();
    let sent = publish(&publisher, 1, 5, 0);
    publisher.stop();
    assert_eq!(h.subscribers(), 0, "the stop closed the subscriber");

    let (mut client, served) = connect(&sink, &membership, false).await;
    let chunks = client.complete_body().await;
    assert_frames(&chunks, &sent);
    let outcome = served.outcome().await;
    assert_eq!(outcome.end, CloseReason::UpstreamStopped);
    assert_eq!(outcome.events, 5);
    drop(membership);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_held_before_attach_are_bounded_by_the_client_queue() {
    let h = Harness::new(quiet());
    let (_anchor, _queue) = h.subscribe_queue();
    let (membership, sink) = h.subscribe(None, direct_settings(1000, DEADLINE, TestDrain::idle()));
    let publisher = h.feed.publisher();
    publish(&publisher, 1, 10, 300);
    assert_eq!(h.subscribers(), 1, "the held sink went over its bound");
    assert_eq!(h.metric(SLOW_SERIES), Some(1.0));

    let (mut client, served) = connect(&sink, &membership, false).await;
    let outcome = served.outcome().await;
    assert_eq!(outcome.end, CloseReason::SlowClient);
    assert_eq!(outcome.events, 0, "what it held was dropped");
    let chunks = client.cut_body().await;
    assert!(
        chunks.iter().all(|c| c.as_slice() == b":\n"),
        "no event reaches a slow client: {chunks:?}"
    );
    drop(membership);
}

// ---------------------------------------------------------------------------
// 3. Back-pressure without loss.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_behind_small_buffers_gets_everything_once_it_reads() {
    let h = Harness::new(quiet());
    let (membership, sink) = h.subscribe(
        None,
        direct_settings(8 << 20, Duration::from_secs(30), TestDrain::idle()),
    );
    let (mut client, served) = connect(&sink, &membership, true).await;
    let publisher = h.feed.publisher();
    // About 700 KiB while the client reads nothing: far past the buffers.
    let mut sent = publish(&publisher, 1, 400, 700);
    let (written, _) = sink.written();
    assert!(
        written < 400,
        "the socket must have fallen behind ({written} written)"
    );

    assert_eq!(client.data().await, b":\n");
    let mut events = Vec::new();
    for _ in 0..400 {
        events.push(client.data().await);
    }
    assert_frames(&events, &sent);
    // Caught up again: the next frame takes the direct write.
    let start = Instant::now();
    while sink.written().0 < 400 {
        assert!(start.elapsed() < DEADLINE, "the flush caught up");
        tokio::task::yield_now().await;
    }
    sent.extend(publish(&publisher, 401, 1, 10));
    assert_eq!(sink.written().0, 401, "written at once when caught up");
    assert_eq!(client.data().await, &sent[400][..]);

    publisher.stop();
    assert!(client.complete_body().await.is_empty());
    let outcome = served.outcome().await;
    assert_eq!(outcome.end, CloseReason::UpstreamStopped);
    assert_eq!(outcome.events, 401);
    assert_eq!(outcome.bytes, payload_bytes(&sent));
    assert_eq!(h.metric(EVENTS_SERIES), Some(401.0));
    drop(membership);
}

// ---------------------------------------------------------------------------
// 4. Slow client.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_client_is_cut_off_and_a_fast_one_gets_every_event() {
    slow_and_fast(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_client_is_cut_off_and_a_fast_one_gets_every_event_one_send_each() {
    slow_and_fast(false).await;
}

async fn slow_and_fast(batched: bool) {
    let h = Harness::new(quiet());
    let (fast_membership, fast_sink) = h.subscribe(
        None,
        sending(
            batched,
            direct_settings(256 << 20, DEADLINE, TestDrain::idle()),
        ),
    );
    let (mut fast_client, fast_served) = connect(&fast_sink, &fast_membership, false).await;
    let fast_reader = tokio::spawn(async move { fast_client.complete_body().await });

    let (slow_membership, slow_sink) = h.subscribe(
        None,
        sending(
            batched,
            direct_settings(64 << 10, DEADLINE, TestDrain::idle()),
        ),
    );
    let (mut slow_client, slow_served) = connect(&slow_sink, &slow_membership, true).await;
    assert_eq!(h.subscribers(), 2);

    let publisher = h.feed.publisher();
    let mut sent = Vec::new();
    let mut next = 1;
    while h.subscribers() == 2 {
        assert!(next <= 5000, "the slow client was never cut off");
        sent.extend(publish(&publisher, next, 1, 1000));
        next += 1;
    }
    // The fast one carries on.
    sent.extend(publish(&publisher, next, 50, 1000));
    publisher.stop();

    let slow = slow_served.outcome().await;
    assert_eq!(slow.end, CloseReason::SlowClient);
    assert_eq!(h.metric(SLOW_SERIES), Some(1.0));
    let slow_chunks = slow_client.cut_body().await;
    assert_eq!(slow_chunks[0], b":\n");
    assert_eq!(
        slow_chunks[1..]
            .iter()
            .map(|c| id_of(c))
            .collect::<Vec<_>>(),
        (1..slow_chunks.len() as u64).collect::<Vec<_>>(),
        "what the slow client got is a prefix without gaps"
    );
    assert!(slow.events < sent.len() as u64);

    let fast_chunks = tokio::time::timeout(DEADLINE, fast_reader)
        .await
        .expect("fast body in time")
        .unwrap();
    assert_eq!(fast_chunks[0], b":\n");
    assert_frames(&fast_chunks[1..], &sent);
    let fast = fast_served.outcome().await;
    assert_eq!(fast.end, CloseReason::UpstreamStopped);
    assert_eq!(fast.events, sent.len() as u64);
    drop((fast_membership, slow_membership));
}

// ---------------------------------------------------------------------------
// 5. The client closes.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_closes_ends_the_stream_and_leaves_the_topic() {
    let settings = TopicSettings {
        linger: Duration::from_secs(60),
        ..quiet()
    };
    let h = Harness::new(settings);
    let (membership, sink) =
        h.subscribe(None, direct_settings(1 << 20, DEADLINE, TestDrain::idle()));
    let (mut client, served) = connect(&sink, &membership, false).await;
    let publisher = h.feed.publisher();
    let sent = publish(&publisher, 1, 3, 0);
    assert_eq!(client.data().await, b":\n");
    for want in &sent {
        assert_eq!(client.data().await, &want[..]);
    }
    drop(client);

    let outcome = served.outcome().await;
    assert_eq!(outcome.end, CloseReason::ClientClosed);
    assert_eq!(outcome.events, 3);
    assert_eq!(h.metric(SUBSCRIBERS_SERIES), Some(1.0), "until it leaves");
    drop(membership);
    assert_eq!(h.metric(SUBSCRIBERS_SERIES), Some(0.0));
    assert_eq!(h.hub.client_count(), 0);
    assert_eq!(h.subscribers(), 0);
    // The sink answers no more offers: publishing goes nowhere.
    publish(&publisher, 4, 1, 0);
    assert_eq!(sink.written().0, 3);
}

// ---------------------------------------------------------------------------
// 6. The client sends bytes.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_sends_bytes_after_its_request_is_closed() {
    let h = Harness::new(quiet());
    let (membership, sink) =
        h.subscribe(None, direct_settings(1 << 20, DEADLINE, TestDrain::idle()));
    let (mut client, served) = connect(&sink, &membership, false).await;
    assert_eq!(client.data().await, b":\n");
    client.io.write_all(b"x").await.unwrap();

    let outcome = served.outcome().await;
    assert_eq!(outcome.end, CloseReason::ClientClosed);
    assert!(
        client.cut_body().await.is_empty(),
        "closed without the last chunk"
    );
    drop(membership);
}

// ---------------------------------------------------------------------------
// 7. The drain.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_shutdown_flushes_then_writes_the_final_frame_and_the_last_chunk() {
    let settings = TopicSettings {
        client_retry: Duration::from_millis(1000),
        ..quiet()
    };
    let h = Harness::new(settings);
    let drain = TestDrain::idle();
    let (membership, sink) = h.subscribe(None, direct_settings(8 << 20, DEADLINE, drain.clone()));
    let (mut client, served) = connect(&sink, &membership, true).await;
    let publisher = h.feed.publisher();
    let sent = publish(&publisher, 1, 300, 700);
    assert!(sink.written().0 < 300, "frames are pending at the drain");

    assert!(drain.start());
    h.hub.shutdown();
    let chunks = client.complete_body().await;

    let first = std::str::from_utf8(&chunks[0]).unwrap();
    let ms: u64 = first
        .strip_prefix("retry: ")
        .unwrap_or_else(|| panic!("the join's advice, got {first:?}"))
        .trim_end()
        .parse()
        .unwrap();
    assert!((800..=1200).contains(&ms), "the join's advice: {ms}");
    assert_frames(&chunks[1..=300], &sent);
    assert_eq!(chunks.len(), 302, "one final frame after the events");
    let last = std::str::from_utf8(&chunks[301]).unwrap();
    let ms: u64 = last
        .strip_prefix("retry: ")
        .and_then(|rest| rest.strip_suffix("\n\n"))
        .unwrap_or_else(|| panic!("the drain's final retry, got {last:?}"))
        .parse()
        .unwrap();
    assert!((987..=1481).contains(&ms), "jittered around 1234 ms: {ms}");

    let outcome = served.outcome().await;
    assert_eq!(outcome.end, CloseReason::Shutdown);
    assert_eq!(outcome.events, 300);
    drop(membership);
}

// ---------------------------------------------------------------------------
// 8. The upstream stops.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_stop_flushes_then_writes_the_last_chunk() {
    let h = Harness::new(quiet());
    let drain = TestDrain::idle();
    let (membership, sink) = h.subscribe(None, direct_settings(8 << 20, DEADLINE, drain));
    let (mut client, served) = connect(&sink, &membership, true).await;
    let publisher = h.feed.publisher();
    let sent = publish(&publisher, 1, 300, 700);
    assert!(sink.written().0 < 300, "frames are pending at the stop");
    publisher.stop();

    let chunks = client.complete_body().await;
    assert_eq!(chunks[0], b":\n");
    assert_frames(&chunks[1..], &sent);
    let outcome = served.outcome().await;
    assert_eq!(outcome.end, CloseReason::UpstreamStopped);
    assert_eq!(outcome.events, 300);
    assert_eq!(outcome.bytes, payload_bytes(&sent));
    drop(membership);
}

// ---------------------------------------------------------------------------
// 9. Credentials expire.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_flushes_then_writes_the_last_chunk() {
    let h = Harness::new(quiet());
    let drain = TestDrain::idle();
    let (membership, sink) = h.subscribe(None, direct_settings(8 << 20, DEADLINE, drain));
    let expiry = Instant::now() + Duration::from_secs(1);
    let (mut client, served) = connect_expiring(&sink, &membership, true, Some(expiry)).await;
    let publisher = h.feed.publisher();
    let sent = publish(&publisher, 1, 300, 700);
    assert!(
        Instant::now() < expiry && sink.written().0 < 300,
        "frames are pending before the expiry"
    );
    // The client reads nothing until the credentials have expired.
    tokio::time::sleep_until(expiry.into()).await;

    let chunks = client.complete_body().await;
    assert_eq!(chunks[0], b":\n");
    assert_frames(&chunks[1..], &sent);
    let outcome = served.outcome().await;
    assert_eq!(outcome.end, CloseReason::CredentialsExpired);
    assert_eq!(outcome.events, 300);
    // The topic carries on and drops the ended sink at its next offer.
    assert_eq!(h.subscribers(), 1);
    publish(&publisher, 301, 1, 0);
    assert_eq!(h.subscribers(), 0);
    drop(membership);
}

// ---------------------------------------------------------------------------
// 10. The write timeout.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_that_takes_nothing_for_the_write_timeout_is_cut_off() {
    let h = Harness::new(quiet());
    let write_timeout = Duration::from_millis(300);
    let client_queue = 8 << 20;
    let (membership, sink) = h.subscribe(
        None,
        direct_settings(client_queue, write_timeout, TestDrain::idle()),
    );
    let (mut client, served) = connect(&sink, &membership, true).await;
    let publisher = h.feed.publisher();
    let start = Instant::now();
    let mut sent = Vec::new();
    while sink.written().0 == sent.len() as u64 {
        assert!(sent.len() < 2000, "the socket never fell behind");
        sent.extend(publish(&publisher, sent.len() as u64 + 1, 1, 1000));
    }
    sent.extend(publish(&publisher, sent.len() as u64 + 1, 10, 1000));
    assert!(
        payload_bytes(&sent) < client_queue as u64,
        "not a slow-client cut"
    );

    let outcome = served.outcome().await;
    assert_eq!(outcome.end, CloseReason::WriteFailed);
    assert!(
        start.elapsed() >= write_timeout,
        "not before the write timeout"
    );
    assert!(outcome.events < sent.len() as u64);
    assert_eq!(h.metric(SLOW_SERIES), Some(0.0));
    let chunks = client.cut_body().await;
    assert_eq!(chunks[0], b":\n");
    assert_frames(&chunks[1..], &sent[..chunks.len() - 1]);
    drop(membership);
}

/// `write_timeout` is documented as "a subscriber whose socket takes nothing
/// for this long while it has pending bytes is cut off" (and LIFECYCLE.md:
/// "nothing taken for write_timeout"). A client that keeps reading, only more
/// slowly than the topic publishes, takes bytes all the time and stays within
/// `client_queue`: it must not be cut off by the write timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_keeps_reading_while_behind_is_not_timed_out() {
    let h = Harness::new(quiet());
    let write_timeout = Duration::from_millis(500);
    let (membership, sink) = h.subscribe(
        None,
        direct_settings(64 << 20, write_timeout, TestDrain::idle()),
    );
    let (client, served) = connect(&sink, &membership, true).await;
    let client = Arc::new(tokio::sync::Mutex::new(client));
    let reading = Arc::new(AtomicBool::new(true));
    // The client reads a chunk every 5 ms: it takes bytes all the time.
    let slow_reader = {
        let (client, reading) = (client.clone(), reading.clone());
        tokio::spawn(async move {
            let mut chunks = Vec::new();
            while reading.load(Ordering::SeqCst) {
                match client.lock().await.next().await {
                    Ok(Chunk::Data(payload)) => chunks.push(payload),
                    other => return (chunks, Some(other)),
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            (chunks, None)
        })
    };
    // The topic publishes about 4 frames (of ~1.5 KiB) per 5 ms, for 4 write
    // timeouts: the sink stays behind the whole time.
    let publisher = h.feed.publisher();
    let mut sent = Vec::new();
    let start = Instant::now();
    while start.elapsed() < write_timeout * 4 {
        sent.extend(publish(&publisher, sent.len() as u64 + 1, 4, 500));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let behind = sink.written().0 < sent.len() as u64;
    let finished = served.task.is_finished();
    reading.store(false, Ordering::SeqCst);
    let (mut chunks, ended) = tokio::time::timeout(DEADLINE, slow_reader)
        .await
        .expect("reader stopped")
        .unwrap();
    if finished {
        panic!(
            "cut off while taking bytes ({} chunks read, then {ended:?}): {:?}",
            chunks.len(),
            served.outcome().await
        );
    }
    assert_eq!(ended, None, "the stream went on");
    assert!(behind, "the sink stayed behind while publishing");
    assert!(
        chunks.len() > 20,
        "the client took bytes all along ({} chunks)",
        chunks.len()
    );
    publisher.stop();
    chunks.extend(client.lock().await.complete_body().await);
    assert_eq!(chunks[0], b":\n");
    assert_frames(&chunks[1..], &sent);
    assert_eq!(served.outcome().await.end, CloseReason::UpstreamStopped);
    drop(membership);
}
