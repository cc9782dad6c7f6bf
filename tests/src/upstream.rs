//! A scripted upstream SSE server over a tokio `TcpListener` on `127.0.0.1:0`, speaking a
//! minimal hand-written HTTP/1.1.
//!
//! Each accepted connection reads one request head, records it ([`RecordedRequest`]: method,
//! path, headers such as `Last-Event-ID`) and answers with the next queued [`Response`], or
//! the default one when the queue is empty. A response is a status and content type plus a
//! body: scripted SSE chunks (each with an optional delay before it), a live stream of
//! numbered events `id: N\ndata: N\n\n` that resumes at `Last-Event-ID + 1`, or nothing
//! (204, 500). SSE bodies are sent with `Transfer-Encoding: chunked`; after a scripted
//! body the connection stays open (until the peer closes) or is closed.
//!
//! ```no_run
//! # async fn f() -> anyhow::Result<()> {
//! use sse_gateway_tests::{Response, UpstreamServer};
//! let upstream = UpstreamServer::new()
//!     .respond(Response::status(500))
//!     .default_response(Response::live(1000))
//!     .run()
//!     .await?;
//! let url = upstream.url("/stream/{name}");
//! # Ok(()) }
//! ```
//!
//! [`Upstream::kill`] closes the listener and every connection; [`Upstream::restart`]
//! listens again on the same port.

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinHandle;

/// One piece of a scripted SSE body.
#[derive(Debug, Clone)]
pub struct Chunk {
    /// Waited before this chunk is written.
    pub delay: Duration,
    /// The bytes written (as one HTTP chunk).
    pub bytes: Bytes,
    /// Before this chunk, wait for the n-th [`Upstream::release`] (n counting the gates of
    /// this response so far).
    pub gate: bool,
}

/// What happens after a scripted body has been written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    /// Keep the connection open until the peer closes it (or the server is killed).
    KeepOpen,
    /// End the chunked body and close the connection.
    Close,
}

/// A live stream of numbered events.
#[derive(Debug, Clone)]
pub struct Live {
    /// Events per second.
    pub rate: u32,
    /// Bytes of padding (`x`) appended to each event's data after `N `.
    pub padding: usize,
    /// The last id sent; after it the stream stays open and idle.
    pub until_id: Option<u64>,
    /// Ids follow the server's clock, shared by every connection (see
    /// [`Response::clocked`]).
    pub clocked: bool,
    /// Event types `k0`..`k{types-1}` in turn (by id); 0: untyped (`message`).
    pub types: u64,
    /// Every event of this type (over `types`).
    pub named: Option<String>,
}

/// The body of a [`Response`].
#[derive(Debug, Clone)]
pub enum Body {
    /// No body (204, 500 …), then the connection is closed.
    Empty,
    /// Scripted chunks, then [`After`].
    Chunks(Vec<Chunk>, After),
    /// Numbered events at a rate, resuming after the request's `Last-Event-ID`.
    Live(Live),
}

/// The answer to one upstream connection.
#[derive(Debug, Clone)]
pub struct Response {
    status: u16,
    content_type: String,
    /// Extra header lines of a streamed answer (`Name: value`).
    headers: Vec<String>,
    body: Body,
}

impl Response {
    /// A 200 `text/event-stream` with no chunks yet that stays open; add chunks with
    /// [`Response::chunk`].
    pub fn sse() -> Self {
        Self {
            status: 200,
            content_type: "text/event-stream".into(),
            headers: Vec::new(),
            body: Body::Chunks(Vec::new(), After::KeepOpen),
        }
    }

    /// A bodyless answer with this status, then close (204, 500, …).
    pub fn status(status: u16) -> Self {
        Self {
            status,
            content_type: "text/plain".into(),
            headers: Vec::new(),
            body: Body::Empty,
        }
    }

    /// A 200 `text/event-stream` emitting `id: N\ndata: N\n\n` at `rate` events/s, from
    /// `Last-Event-ID + 1` (or 1).
    pub fn live(rate: u32) -> Self {
        Self {
            status: 200,
            content_type: "text/event-stream".into(),
            headers: Vec::new(),
            body: Body::Live(Live {
                rate: rate.max(1),
                padding: 0,
                until_id: None,
                clocked: false,
                types: 0,
                named: None,
            }),
        }
    }

    /// Like a real origin, one sequence for every connection: id N is due `N / rate`
    /// seconds after the server started, on every connection at once. A request with
    /// `Last-Event-ID: L` gets L+1 and on (caught up at once); one without gets the
    /// events due from then on.
    pub fn clocked(rate: u32) -> Self {
        let mut response = Self::live(rate);
        if let Body::Live(live) = &mut response.body {
            live.clocked = true;
        }
        response
    }

    /// Appends a scripted chunk written at once (turns the body into a scripted one).
    pub fn chunk(self, bytes: impl Into<Bytes>) -> Self {
        self.chunk_after(Duration::ZERO, bytes)
    }

    /// Appends a scripted chunk written after `delay`.
    pub fn chunk_after(self, delay: Duration, bytes: impl Into<Bytes>) -> Self {
        self.push(Chunk {
            delay,
            bytes: bytes.into(),
            gate: false,
        })
    }

    /// Appends a gate: the following chunks wait for [`Upstream::release`] (the n-th gate
    /// of a response waits until `release` was called n times since the server started).
    pub fn wait_release(self) -> Self {
        self.push(Chunk {
            delay: Duration::ZERO,
            bytes: Bytes::new(),
            gate: true,
        })
    }

    fn push(mut self, chunk: Chunk) -> Self {
        match &mut self.body {
            Body::Chunks(chunks, _) => chunks.push(chunk),
            _ => self.body = Body::Chunks(vec![chunk], After::KeepOpen),
        }
        self
    }

    /// Closes the connection after the scripted chunks.
    pub fn then_close(mut self) -> Self {
        if let Body::Chunks(_, after) = &mut self.body {
            *after = After::Close;
        }
        self
    }

    /// Adds a header to a streamed answer (for example a CORS header or a
    /// `Content-Encoding` the body does not have).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push(format!("{name}: {value}"));
        self
    }

    /// Overrides the `Content-Type` header.
    pub fn content_type(mut self, content_type: &str) -> Self {
        content_type.clone_into(&mut self.content_type);
        self
    }

    /// Live mode: pads each event's data with `bytes` `x` characters (`data: N xxx…`).
    pub fn padding(mut self, bytes: usize) -> Self {
        if let Body::Live(live) = &mut self.body {
            live.padding = bytes;
        }
        self
    }

    /// Live mode: events of `types` types, `k{id % types}` (`event: k2`).
    pub fn types(mut self, types: u64) -> Self {
        if let Body::Live(live) = &mut self.body {
            live.types = types;
        }
        self
    }

    /// Live mode: every event of type `name` (`event: name`).
    pub fn named(mut self, name: &str) -> Self {
        if let Body::Live(live) = &mut self.body {
            live.named = Some(name.to_owned());
        }
        self
    }

    /// Live mode: stop emitting after this id (the connection stays open).
    pub fn until_id(mut self, id: u64) -> Self {
        if let Body::Live(live) = &mut self.body {
            live.until_id = Some(id);
        }
        self
    }
}

/// The head of one request the upstream received.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// The connection number (0-based, in accept order).
    pub connection: usize,
    /// The request method.
    pub method: String,
    /// The request target (path and query).
    pub path: String,
    /// Header names (lower-cased) and values, in order.
    pub headers: Vec<(String, String)>,
}

impl RecordedRequest {
    /// The first value of a header (name compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The `Last-Event-ID` header.
    pub fn last_event_id(&self) -> Option<&str> {
        self.header("last-event-id")
    }
}

/// Builds an upstream server.
#[derive(Debug)]
pub struct UpstreamServer {
    queue: VecDeque<Response>,
    default: Response,
}

impl Default for UpstreamServer {
    fn default() -> Self {
        Self::new()
    }
}

impl UpstreamServer {
    /// A server answering every connection with [`Response::live`] at 10 events/s.
    pub fn new() -> Self {
        Self {
            queue: VecDeque::new(),
            default: Response::live(10),
        }
    }

    /// Queues a response for the next connection not yet scripted.
    pub fn respond(mut self, response: Response) -> Self {
        self.queue.push_back(response);
        self
    }

    /// The response for connections once the queue is empty.
    pub fn default_response(mut self, response: Response) -> Self {
        self.default = response;
        self
    }

    /// Binds `127.0.0.1:0` and starts serving on the current tokio runtime.
    pub async fn run(self) -> anyhow::Result<Upstream> {
        let listener = bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            script: Mutex::new(Script {
                queue: self.queue,
                default: self.default,
            }),
            requests: Mutex::new(Vec::new()),
            sent: Mutex::new(Vec::new()),
            accepted: AtomicUsize::new(0),
            started: Instant::now(),
            open: AtomicUsize::new(0),
            tasks: Mutex::new(Vec::new()),
            released: tokio::sync::watch::channel(0).0,
        });
        let accept = tokio::spawn(accept_loop(listener, shared.clone()));
        Ok(Upstream {
            addr,
            shared,
            accept: Mutex::new(Some(accept)),
        })
    }
}

struct Script {
    queue: VecDeque<Response>,
    default: Response,
}

struct Shared {
    script: Mutex<Script>,
    requests: Mutex<Vec<RecordedRequest>>,
    /// SSE body bytes written, per connection (without the chunked framing).
    sent: Mutex<Vec<Vec<u8>>>,
    accepted: AtomicUsize,
    /// When the server started (the clock of [`Response::clocked`]).
    started: Instant,
    open: AtomicUsize,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// How many times [`Upstream::release`] was called.
    released: tokio::sync::watch::Sender<u64>,
}

/// A running upstream server.
pub struct Upstream {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Upstream {
    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` followed by `path` (a gateway URL template may be passed).
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Connections accepted since the start (across restarts).
    pub fn connections(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Connections currently open (the peer has not closed them and the server was not
    /// killed).
    pub fn open_connections(&self) -> usize {
        self.shared.open.load(Ordering::SeqCst)
    }

    /// Every request head received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests.lock().clone()
    }

    /// The SSE body bytes written on connection `n` (0-based), without chunk framing.
    pub fn sent(&self, connection: usize) -> Vec<u8> {
        self.shared
            .sent
            .lock()
            .get(connection)
            .cloned()
            .unwrap_or_default()
    }

    /// Opens the next gate of scripted responses (see [`Response::wait_release`]).
    pub fn release(&self) {
        self.shared.released.send_modify(|n| *n += 1);
    }

    /// Queues a response for the next connection.
    pub fn push_response(&self, response: Response) {
        self.shared.script.lock().queue.push_back(response);
    }

    /// Replaces the default response (and drops any queued ones).
    pub fn set_default(&self, response: Response) {
        let mut script = self.shared.script.lock();
        script.queue.clear();
        script.default = response;
    }

    /// Stops listening and closes every connection; returns once the sockets are closed.
    pub async fn kill(&self) {
        let accept = self.accept.lock().take();
        if let Some(accept) = accept {
            accept.abort();
            let _ = accept.await;
        }
        let tasks: Vec<_> = std::mem::take(&mut *self.shared.tasks.lock());
        for task in &tasks {
            task.abort();
        }
        for task in tasks {
            let _ = task.await;
        }
    }

    /// Listens again on the same port (after [`Upstream::kill`]); retries the bind for up
    /// to 5 s.
    pub async fn restart(&self) -> anyhow::Result<()> {
        self.kill().await;
        let end = Instant::now() + Duration::from_secs(5);
        let listener = loop {
            match bind(self.addr) {
                Ok(listener) => break listener,
                Err(e) if Instant::now() < end => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => return Err(e.context(format!("rebinding {}", self.addr))),
            }
        };
        *self.accept.lock() = Some(tokio::spawn(accept_loop(listener, self.shared.clone())));
        Ok(())
    }

    /// Waits until at least `n` connections were accepted; false on timeout.
    pub async fn wait_connections(&self, n: usize, timeout: Duration) -> bool {
        crate::poll_until(timeout, || async { self.connections() >= n }).await
    }

    /// Waits until exactly `n` connections are open; false on timeout.
    pub async fn wait_open(&self, n: usize, timeout: Duration) -> bool {
        crate::poll_until(timeout, || async { self.open_connections() == n }).await
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        if let Some(accept) = self.accept.lock().take() {
            accept.abort();
        }
        for task in self.shared.tasks.lock().drain(..) {
            task.abort();
        }
    }
}

fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    Ok(socket.listen(1024)?)
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let connection = shared.accepted.fetch_add(1, Ordering::SeqCst);
        shared.open.fetch_add(1, Ordering::SeqCst);
        shared.sent.lock().push(Vec::new());
        let task = tokio::spawn(serve(stream, shared.clone(), connection));
        let mut tasks = shared.tasks.lock();
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
    }
}

/// Decrements the open-connection count when the connection's task ends or is aborted.
struct OpenGuard(Arc<Shared>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn serve(mut stream: TcpStream, shared: Arc<Shared>, connection: usize) {
    let _guard = OpenGuard(shared.clone());
    let _ = stream.set_nodelay(true);
    let Some(request) = read_head(&mut stream, connection).await else {
        return;
    };
    let last_id = request
        .last_event_id()
        .and_then(|v| v.trim().parse::<u64>().ok());
    shared.requests.lock().push(request);
    let response = {
        let mut script = shared.script.lock();
        script
            .queue
            .pop_front()
            .unwrap_or_else(|| script.default.clone())
    };
    let (mut reader, mut writer) = stream.into_split();
    if let Body::Empty = response.body {
        let head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            response.status,
            reason(response.status),
            response.content_type
        );
        let head = if response.status == 204 || response.status == 304 {
            format!(
                "HTTP/1.1 {} {}\r\nConnection: close\r\n\r\n",
                response.status,
                reason(response.status)
            )
        } else {
            head
        };
        let _ = writer.write_all(head.as_bytes()).await;
        let _ = writer.shutdown().await;
        return;
    }
    let extra: String = response
        .headers
        .iter()
        .map(|h| format!("{h}\r\n"))
        .collect();
    let head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nCache-Control: no-cache\r\n{extra}Transfer-Encoding: chunked\r\n\r\n",
        response.status,
        reason(response.status),
        response.content_type
    );
    if writer.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    let body = async {
        let mut out = ChunkWriter {
            writer: &mut writer,
            shared: &shared,
            connection,
        };
        match response.body {
            Body::Empty => Ok(()),
            Body::Chunks(chunks, after) => {
                let mut released = shared.released.subscribe();
                let mut gates = 0;
                for chunk in chunks {
                    if chunk.gate {
                        gates += 1;
                        if released.wait_for(|n| *n >= gates).await.is_err() {
                            return Ok(());
                        }
                    }
                    if !chunk.delay.is_zero() {
                        tokio::time::sleep(chunk.delay).await;
                    }
                    out.write(&chunk.bytes).await?;
                }
                if after == After::Close {
                    out.writer.write_all(b"0\r\n\r\n").await?;
                    out.writer.shutdown().await?;
                    return Ok(());
                }
                std::future::pending::<()>().await;
                Ok(())
            }
            Body::Live(live) if live.clocked => {
                run_clocked(&mut out, &live, shared.started, last_id).await
            }
            Body::Live(live) => run_live(&mut out, live, last_id.map_or(1, |id| id + 1)).await,
        }
    };
    // Whichever ends first: the body (closed or failed), or the peer closing its side.
    let peer_closed = async {
        let mut buf = [0u8; 1024];
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    };
    tokio::select! {
        _ = body => {}
        () = peer_closed => {}
    }
}

struct ChunkWriter<'a> {
    writer: &'a mut tokio::net::tcp::OwnedWriteHalf,
    shared: &'a Shared,
    connection: usize,
}

impl ChunkWriter<'_> {
    async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        let mut framed = format!("{:x}\r\n", bytes.len()).into_bytes();
        framed.extend_from_slice(bytes);
        framed.extend_from_slice(b"\r\n");
        self.writer.write_all(&framed).await?;
        if let Some(sent) = self.shared.sent.lock().get_mut(self.connection) {
            sent.extend_from_slice(bytes);
        }
        Ok(())
    }
}

async fn run_live(out: &mut ChunkWriter<'_>, live: Live, first: u64) -> std::io::Result<()> {
    let tick = Duration::from_secs_f64((1.0 / f64::from(live.rate)).clamp(0.001, 0.05));
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let start = Instant::now();
    let mut next = first;
    let mut sent: u64 = 0;
    let padding = "x".repeat(live.padding);
    loop {
        interval.tick().await;
        let due = (start.elapsed().as_secs_f64() * f64::from(live.rate)) as u64 + 1;
        let mut batch = Vec::new();
        while sent < due && live.until_id.is_none_or(|last| next <= last) {
            if let Some(name) = &live.named {
                batch.extend_from_slice(format!("event: {name}\n").as_bytes());
            } else if live.types > 0 {
                batch.extend_from_slice(format!("event: k{}\n", next % live.types).as_bytes());
            }
            if padding.is_empty() {
                batch.extend_from_slice(format!("id: {next}\ndata: {next}\n\n").as_bytes());
            } else {
                batch.extend_from_slice(
                    format!("id: {next}\ndata: {next} {padding}\n\n").as_bytes(),
                );
            }
            next += 1;
            sent += 1;
        }
        out.write(&batch).await?;
    }
}

async fn run_clocked(
    out: &mut ChunkWriter<'_>,
    live: &Live,
    started: Instant,
    last_id: Option<u64>,
) -> std::io::Result<()> {
    let tick = Duration::from_secs_f64((1.0 / f64::from(live.rate)).clamp(0.001, 0.05));
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let due = || (started.elapsed().as_secs_f64() * f64::from(live.rate)) as u64;
    let mut next = last_id.map_or_else(|| due() + 1, |id| id + 1);
    loop {
        interval.tick().await;
        let mut batch = Vec::new();
        let now_due = due();
        while next <= now_due && live.until_id.is_none_or(|last| next <= last) {
            batch.extend_from_slice(format!("id: {next}\ndata: {next}\n\n").as_bytes());
            next += 1;
        }
        out.write(&batch).await?;
    }
}

async fn read_head(stream: &mut TcpStream, connection: usize) -> Option<RecordedRequest> {
    let mut buf = Vec::with_capacity(1024);
    let mut tmp = [0u8; 1024];
    let end = Instant::now() + Duration::from_secs(10);
    let head_len = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        if buf.len() > 64 * 1024 {
            return None;
        }
        let read = tokio::time::timeout_at(end.into(), stream.read(&mut tmp))
            .await
            .ok()?
            .ok()?;
        if read == 0 {
            return None;
        }
        buf.extend_from_slice(&tmp[..read]);
    };
    let head = String::from_utf8_lossy(&buf[..head_len]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_owned();
    let path = request_line.next()?.to_owned();
    let headers = lines
        .filter_map(|line| {
            let (name, value) = line.split_once(':')?;
            Some((name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        })
        .collect();
    Some(RecordedRequest {
        connection,
        method,
        path,
        headers,
    })
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        404 => "Not Found",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}
