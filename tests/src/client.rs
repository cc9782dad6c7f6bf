//! HTTP/1.1 clients over raw tokio `TcpStream`s.
//!
//! [`SseClient`] sends one request (`Connection: close`), parses the status line and
//! headers, de-chunks a `Transfer-Encoding: chunked` body (or reads a `Content-Length` or
//! close-delimited one), keeps the raw body bytes and feeds them to the oracle
//! [`SseParser`]. Every read takes a deadline. [`StalledClient`] sends a request and never
//! reads. [`http_get`] is a one-shot GET that returns a whole [`HttpResponse`].

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::sse::{SseEvent, SseParser};

/// How the response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// `Content-Length` bytes still to read.
    Length(usize),
    /// Until the connection closes.
    UntilClose,
    /// No body (HEAD, 204, 304).
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// Reading a chunk-size line.
    Size,
    /// Reading this many data bytes.
    Data(usize),
    /// Reading the CRLF after a chunk's data.
    DataEnd,
    /// Reading trailer lines after the last chunk.
    Trailers,
    Done,
}

/// A complete (non-streaming) HTTP response.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// Header names (lower-cased) and values.
    pub headers: Vec<(String, String)>,
    /// The de-chunked body.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first value of a header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// The body as (lossy) UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    let name = name.to_ascii_lowercase();
    headers
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.as_str())
}

/// An HTTP/1.1 client reading an SSE (or any) response incrementally.
#[derive(Debug)]
pub struct SseClient {
    stream: TcpStream,
    status: u16,
    headers: Vec<(String, String)>,
    framing: Framing,
    chunk: ChunkState,
    /// Received bytes not yet de-framed.
    wire: Vec<u8>,
    raw: Vec<u8>,
    parser: SseParser,
    ended: bool,
}

impl SseClient {
    /// `GET path` with `Accept: text/event-stream`; waits (up to 10 s) for the response
    /// head.
    pub async fn get(addr: SocketAddr, path: &str) -> anyhow::Result<Self> {
        Self::request(addr, "GET", path, &[("Accept", "text/event-stream")]).await
    }

    /// `GET path` with `Accept: text/event-stream` on a socket whose receive buffer is
    /// `recv_buffer` bytes: a client that stops reading holds little in the kernel.
    pub async fn get_with_recv_buffer(
        addr: SocketAddr,
        path: &str,
        recv_buffer: u32,
    ) -> anyhow::Result<Self> {
        let socket = TcpSocket::new_v4()?;
        socket.set_recv_buffer_size(recv_buffer)?;
        let stream = socket.connect(addr).await?;
        let headers = [("Accept", "text/event-stream")];
        Self::request_on(stream, addr, "GET", path, &headers).await
    }

    /// `GET path` with `Accept: text/event-stream` and a `Last-Event-ID` header.
    pub async fn resume(addr: SocketAddr, path: &str, last_event_id: &str) -> anyhow::Result<Self> {
        Self::request(
            addr,
            "GET",
            path,
            &[
                ("Accept", "text/event-stream"),
                ("Last-Event-ID", last_event_id),
            ],
        )
        .await
    }

    /// Sends `method path` with these extra headers (plus `Host` and `Connection: close`)
    /// and waits (up to 10 s) for the response head.
    pub async fn request(
        addr: SocketAddr,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        Self::request_on(stream, addr, method, path, headers).await
    }

    /// `GET path` with `Accept: text/event-stream` from the loopback address `source`
    /// (any of 127.0.0.0/8), for tests of per-address limits.
    pub async fn get_from(
        source: std::net::Ipv4Addr,
        addr: SocketAddr,
        path: &str,
    ) -> anyhow::Result<Self> {
        anyhow::ensure!(source.is_loopback(), "loopback sources only");
        let socket = TcpSocket::new_v4()?;
        socket.bind(SocketAddr::from((source, 0)))?;
        let stream = socket.connect(addr).await?;
        let headers = [("Accept", "text/event-stream")];
        Self::request_on(stream, addr, "GET", path, &headers).await
    }

    async fn request_on(
        mut stream: TcpStream,
        addr: SocketAddr,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        stream.set_nodelay(true)?;
        stream
            .write_all(request_bytes(addr, method, path, headers).as_bytes())
            .await?;
        let end = Instant::now() + Duration::from_secs(10);
        let mut wire = Vec::new();
        let mut tmp = vec![0u8; 16 * 1024];
        let head_len = loop {
            if let Some(at) = wire.windows(4).position(|w| w == b"\r\n\r\n") {
                break at;
            }
            anyhow::ensure!(wire.len() < 64 * 1024, "response head over 64 KiB");
            let read = tokio::time::timeout_at(end.into(), stream.read(&mut tmp))
                .await
                .map_err(|_| {
                    anyhow::anyhow!("no response head from {addr} for {method} {path} within 10 s")
                })??;
            anyhow::ensure!(
                read > 0,
                "connection closed before the response head ({method} {path})"
            );
            wire.extend_from_slice(&tmp[..read]);
        };
        let head = String::from_utf8_lossy(&wire[..head_len]).into_owned();
        wire.drain(..head_len + 4);
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| anyhow::anyhow!("bad status line `{status_line}`"))?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|line| {
                let (name, value) = line.split_once(':')?;
                Some((name.trim().to_ascii_lowercase(), value.trim().to_owned()))
            })
            .collect();
        let chunked = find_header(&headers, "transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
        let length = find_header(&headers, "content-length").and_then(|v| v.parse().ok());
        let framing =
            if method == "HEAD" || status == 204 || status == 304 || (100..200).contains(&status) {
                Framing::None
            } else if chunked {
                Framing::Chunked
            } else if let Some(length) = length {
                Framing::Length(length)
            } else {
                Framing::UntilClose
            };
        let mut client = Self {
            stream,
            status,
            headers,
            framing,
            chunk: ChunkState::Size,
            wire: Vec::new(),
            raw: Vec::new(),
            parser: SseParser::new(),
            ended: matches!(framing, Framing::None | Framing::Length(0)),
        };
        client.absorb(&wire);
        Ok(client)
    }

    /// The response status.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The first value of a response header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// Every response header (names lower-cased).
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// The de-chunked body bytes received so far.
    pub fn raw_body(&self) -> &[u8] {
        &self.raw
    }

    /// The oracle parser's state (comments, `retry:`).
    pub fn parser(&self) -> &SseParser {
        &self.parser
    }

    /// Comment lines received so far (heartbeats), without the leading `:`.
    pub fn comments(&self) -> &[String] {
        self.parser.comments()
    }

    /// True once the body has ended (last chunk, full length, or connection closed).
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// The next event; `Ok(None)` when the body ended first; an error on timeout or I/O
    /// failure.
    pub async fn next_event(&mut self, deadline: Instant) -> anyhow::Result<Option<SseEvent>> {
        loop {
            if let Some(event) = self.parser.pop_event() {
                return Ok(Some(event));
            }
            if self.ended {
                return Ok(None);
            }
            if !self.read_some(deadline).await? {
                anyhow::bail!(
                    "no event before the deadline ({} body bytes so far)",
                    self.raw.len()
                );
            }
        }
    }

    /// Exactly `n` events, or an error saying how many arrived.
    pub async fn events_until(
        &mut self,
        n: usize,
        deadline: Instant,
    ) -> anyhow::Result<Vec<SseEvent>> {
        let mut events = Vec::with_capacity(n);
        while events.len() < n {
            match self.next_event(deadline).await {
                Ok(Some(event)) => events.push(event),
                Ok(None) => anyhow::bail!("stream ended after {} of {n} events", events.len()),
                Err(e) => anyhow::bail!("{} of {n} events: {e}", events.len()),
            }
        }
        Ok(events)
    }

    /// Reads until `done(self)` holds; an error if the deadline passes or the body ends
    /// first.
    pub async fn read_until(
        &mut self,
        deadline: Instant,
        mut done: impl FnMut(&Self) -> bool,
    ) -> anyhow::Result<()> {
        loop {
            if done(self) {
                return Ok(());
            }
            anyhow::ensure!(!self.ended, "the body ended first");
            anyhow::ensure!(
                self.read_some(deadline).await?,
                "deadline passed ({} body bytes so far)",
                self.raw.len()
            );
        }
    }

    /// Reads until the body ends; an error if the deadline passes first.
    pub async fn read_to_end(&mut self, deadline: Instant) -> anyhow::Result<()> {
        while !self.ended {
            anyhow::ensure!(
                self.read_some(deadline).await?,
                "body still open at the deadline ({} bytes so far)",
                self.raw.len()
            );
        }
        Ok(())
    }

    /// One socket read; false if the deadline passed first. A reset counts as the end.
    async fn read_some(&mut self, deadline: Instant) -> anyhow::Result<bool> {
        let mut tmp = vec![0u8; 16 * 1024];
        let read = match tokio::time::timeout_at(deadline.into(), self.stream.read(&mut tmp)).await
        {
            Err(_) => return Ok(false),
            Ok(Ok(read)) => read,
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => 0,
            Ok(Err(e)) => return Err(e.into()),
        };
        if read == 0 {
            self.ended = true;
            self.parser.finish();
            return Ok(true);
        }
        self.absorb(&tmp[..read]);
        Ok(true)
    }

    /// De-frames received bytes into the body and the parser.
    fn absorb(&mut self, bytes: &[u8]) {
        match self.framing {
            Framing::None => {}
            Framing::UntilClose => self.body(bytes),
            Framing::Length(left) => {
                let take = left.min(bytes.len());
                self.body(&bytes[..take]);
                self.framing = Framing::Length(left - take);
                if left == take {
                    self.ended = true;
                }
            }
            Framing::Chunked => {
                self.wire.extend_from_slice(bytes);
                self.dechunk();
            }
        }
    }

    fn body(&mut self, bytes: &[u8]) {
        self.raw.extend_from_slice(bytes);
        self.parser.feed(bytes);
    }

    fn dechunk(&mut self) {
        let mut at = 0;
        loop {
            match self.chunk {
                ChunkState::Size | ChunkState::Trailers | ChunkState::DataEnd => {
                    let Some(nl) = self.wire[at..].windows(2).position(|w| w == b"\r\n") else {
                        break;
                    };
                    let line = String::from_utf8_lossy(&self.wire[at..at + nl]).into_owned();
                    at += nl + 2;
                    self.chunk = match self.chunk {
                        ChunkState::Size => {
                            let size = line.split(';').next().unwrap_or_default().trim();
                            match usize::from_str_radix(size, 16) {
                                Ok(0) => ChunkState::Trailers,
                                Ok(n) => ChunkState::Data(n),
                                // A framing error: treat as the end of the body.
                                Err(_) => ChunkState::Done,
                            }
                        }
                        ChunkState::Trailers if line.is_empty() => ChunkState::Done,
                        ChunkState::Trailers => ChunkState::Trailers,
                        _ => ChunkState::Size,
                    };
                }
                ChunkState::Data(left) => {
                    let take = left.min(self.wire.len() - at);
                    if take == 0 {
                        break;
                    }
                    let data = self.wire[at..at + take].to_vec();
                    self.body(&data);
                    at += take;
                    self.chunk = if take == left {
                        ChunkState::DataEnd
                    } else {
                        ChunkState::Data(left - take)
                    };
                }
                ChunkState::Done => {
                    self.ended = true;
                    self.parser.finish();
                    break;
                }
            }
        }
        self.wire.drain(..at);
    }
}

fn request_bytes(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> String {
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request
}

/// `GET path` with these headers, read to the end (deadline 10 s).
pub async fn http_get(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> anyhow::Result<HttpResponse> {
    let mut client = SseClient::request(addr, "GET", path, headers).await?;
    client
        .read_to_end(Instant::now() + Duration::from_secs(10))
        .await?;
    Ok(HttpResponse {
        status: client.status,
        headers: client.headers,
        body: client.raw,
    })
}

/// A client that sends a request and then never reads: the gateway must treat it as slow.
#[derive(Debug)]
pub struct StalledClient {
    stream: TcpStream,
}

impl StalledClient {
    /// Connects with a small receive buffer (`recv_buffer` bytes, so the kernel holds
    /// little for it) and sends `GET path` with `Accept: text/event-stream`.
    pub async fn connect(addr: SocketAddr, path: &str, recv_buffer: u32) -> anyhow::Result<Self> {
        let socket = TcpSocket::new_v4()?;
        socket.set_recv_buffer_size(recv_buffer)?;
        let mut stream = socket.connect(addr).await?;
        stream
            .write_all(
                request_bytes(addr, "GET", path, &[("Accept", "text/event-stream")]).as_bytes(),
            )
            .await?;
        Ok(Self { stream })
    }

    /// Starts reading at last: drains everything until the peer closes or resets the
    /// connection; the number of bytes read, or an error if the deadline passes first.
    pub async fn drain_until_closed(&mut self, deadline: Instant) -> anyhow::Result<usize> {
        let mut total = 0;
        let mut tmp = vec![0u8; 256 * 1024];
        loop {
            match tokio::time::timeout_at(deadline.into(), self.stream.read(&mut tmp)).await {
                Err(_) => anyhow::bail!("still open at the deadline after {total} bytes"),
                Ok(Ok(0)) | Ok(Err(_)) => return Ok(total),
                Ok(Ok(n)) => total += n,
            }
        }
    }
}
