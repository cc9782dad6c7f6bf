//! The demo upstream: a tiny HTTP/1.1 SSE server (plain tokio) serving
//! `GET /stream/{symbol}` from the [`Market`], honouring `Last-Event-ID`.
//! It runs as a pingora background service on a listener bound in `main`,
//! so its port is known before the gateway's configuration is built.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::Mutex;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::broadcast::error::RecvError;

use super::market::Market;

/// Largest request head the demo upstream reads.
const MAX_HEAD: usize = 8 * 1024;
/// Time allowed to send the request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// The demo upstream service.
pub(crate) struct DemoUpstream {
    listener: Mutex<Option<std::net::TcpListener>>,
    addr: SocketAddr,
}

/// What the demo upstream understood of a request.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct StreamRequest {
    /// The symbol from `/stream/{symbol}`.
    pub(crate) symbol: String,
    /// `Last-Event-ID`, when numeric.
    pub(crate) last_id: Option<u64>,
}

// === impl DemoUpstream ===

impl DemoUpstream {
    /// Binds `127.0.0.1` on an OS-assigned port.
    pub(crate) fn bind() -> std::io::Result<Self> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        Ok(Self {
            listener: Mutex::new(Some(listener)),
            addr,
        })
    }

    /// Where it listens.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }
}

#[async_trait]
impl BackgroundService for DemoUpstream {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let Some(listener) = self.listener.lock().take() else {
            return;
        };
        let listener = match listener
            .set_nonblocking(true)
            .and_then(|()| tokio::net::TcpListener::from_std(listener))
        {
            Ok(listener) => listener,
            Err(e) => {
                tracing::error!("demo upstream cannot listen: {e}");
                return;
            }
        };
        let market = Arc::new(Market::default());
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        tokio::spawn(serve_connection(stream, market.clone()));
                    }
                    Err(e) => tracing::debug!("demo upstream accept: {e}"),
                },
                _ = shutdown.changed() => return,
            }
        }
    }
}

async fn serve_connection(mut stream: TcpStream, market: Arc<Market>) {
    let head = match tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut stream)).await {
        Ok(Some(head)) => head,
        _ => return,
    };
    let symbol = parse_request(&head).and_then(|req| Some((market.symbol(&req.symbol)?, req)));
    let Some((symbol, request)) = symbol else {
        let _ = stream
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .await;
        return;
    };
    let mut ticks = symbol.subscribe(request.last_id);
    let header =
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\
                  Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    if stream.write_all(header.as_bytes()).await.is_err() {
        return;
    }
    let mut last_sent = request.last_id.unwrap_or(0);
    for (id, event) in std::mem::take(&mut ticks.replay) {
        if write_chunk(&mut stream, &event).await.is_err() {
            return;
        }
        last_sent = id;
    }
    loop {
        match ticks.live.recv().await {
            Ok((id, event)) if id > last_sent => {
                if write_chunk(&mut stream, &event).await.is_err() {
                    return;
                }
                last_sent = id;
            }
            Ok(_) => {}
            // Fell behind or the ticker is gone: close; the client resumes.
            Err(RecvError::Lagged(_) | RecvError::Closed) => return,
        }
    }
}

async fn write_chunk(stream: &mut TcpStream, data: &Bytes) -> std::io::Result<()> {
    let mut chunk = Vec::with_capacity(data.len() + 12);
    chunk.extend_from_slice(format!("{:X}\r\n", data.len()).as_bytes());
    chunk.extend_from_slice(data);
    chunk.extend_from_slice(b"\r\n");
    stream.write_all(&chunk).await
}

/// Reads up to the end of the request head (bounded); `None` on EOF, error
/// or an oversized head.
async fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while head.len() < MAX_HEAD {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        head.extend_from_slice(&buf[..n]);
        if head.windows(4).any(|w| w == b"\r\n\r\n") {
            return String::from_utf8(head).ok();
        }
    }
    None
}

/// Parses `GET /stream/{symbol}` and the `Last-Event-ID` header.
pub(crate) fn parse_request(head: &str) -> Option<StreamRequest> {
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    if request_line.next()? != "GET" {
        return None;
    }
    let target = request_line.next()?;
    let path = target.split('?').next()?;
    let symbol = path.strip_prefix("/stream/")?.to_owned();
    let last_id = lines
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("last-event-id"))
        .and_then(|(_, value)| value.trim().parse().ok());
    Some(StreamRequest { symbol, last_id })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_parsed() {
        let head = "GET /stream/AAPL HTTP/1.1\r\nHost: x\r\nlast-event-id: 41\r\n\r\n";
        assert_eq!(
            parse_request(head),
            Some(StreamRequest {
                symbol: "AAPL".into(),
                last_id: Some(41)
            })
        );
        let head = "GET /stream/MSFT?x=1 HTTP/1.1\r\nLast-Event-ID: nope\r\n\r\n";
        assert_eq!(
            parse_request(head),
            Some(StreamRequest {
                symbol: "MSFT".into(),
                last_id: None
            })
        );
        assert_eq!(parse_request("POST /stream/A HTTP/1.1\r\n\r\n"), None);
        assert_eq!(parse_request("GET /other HTTP/1.1\r\n\r\n"), None);
    }

    #[tokio::test]
    async fn serves_a_stream_with_resume() {
        let upstream = DemoUpstream::bind().unwrap();
        let addr = upstream.addr();
        let (_tx, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move { upstream.start(rx).await });
        let mut client = TcpStream::connect(addr).await.unwrap();
        client
            .write_all(b"GET /stream/TEST HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let text = read_until(&mut client, "data: ").await;
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(text.contains("text/event-stream"));
        assert!(text.contains("id: 1\n"), "{text}");

        // A resume after id 1 gets id 2 next (from the history or live).
        let mut again = TcpStream::connect(addr).await.unwrap();
        again
            .write_all(b"GET /stream/TEST HTTP/1.1\r\nLast-Event-ID: 1\r\n\r\n")
            .await
            .unwrap();
        let text = read_until(&mut again, "id: 2\n").await;
        assert!(!text.contains("id: 1\n"), "{text}");
    }

    async fn read_until(stream: &mut TcpStream, needle: &str) -> String {
        let mut out = Vec::new();
        let mut buf = [0u8; 1024];
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !String::from_utf8_lossy(&out).contains(needle) {
            let n = tokio::time::timeout_at(deadline, stream.read(&mut buf))
                .await
                .unwrap()
                .unwrap();
            assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&out));
            out.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}
