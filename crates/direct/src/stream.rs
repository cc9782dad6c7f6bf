//! [`serve`]: the one small task a direct subscriber keeps. It sleeps until
//! something other than a delivery happens: the client leaves (`EPOLLRDHUP`,
//! EOF, an error, or bytes it should not send), the socket falls behind and
//! must be flushed on write-readiness, the topic closes the stream, the
//! gateway drains, or the client's credentials expire. Deliveries never wake
//! it.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};
use sse_gateway_hub::CloseReason;
use tokio::io::{Interest, Ready};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::chunk::{ChunkHeader, CRLF, LAST_CHUNK};
use crate::sink::DirectSink;

/// Why a direct stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirectEnd {
    /// The client closed its connection (or sent bytes after its request).
    ClientClosed,
    /// The client fell more than `client_queue` bytes behind.
    SlowClient,
    /// The upstream stopped the topic (HTTP 204).
    UpstreamStopped,
    /// The gateway drained it.
    Shutdown,
    /// A write failed, or the socket took nothing for the write timeout.
    WriteFailed,
    /// The client's credentials reached their expiry.
    CredentialsExpired,
}

/// How a direct stream ended and what it wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirectOutcome {
    /// Why it ended.
    pub end: DirectEnd,
    /// Events written (live and replayed).
    pub events: u64,
    /// Payload bytes written (chunk framing excluded).
    pub bytes: u64,
}

/// Runs a direct subscriber until its stream ends, then ends the HTTP
/// response: pending bytes, the drain's final frame and the last chunk when
/// the gateway or the upstream ended it; nothing more when the client left,
/// failed or was too slow. The socket closes when this returns.
///
/// `expiry` completes when the client's credentials expire (pass
/// `std::future::pending()` when they never do).
pub async fn serve(
    sink: Arc<DirectSink>,
    mut shutdown: watch::Receiver<bool>,
    expiry: impl Future<Output = ()>,
) -> DirectOutcome {
    let end = match sink.stream() {
        Some(stream) => {
            let end = watch_stream(&sink, &stream, &mut shutdown, expiry).await;
            sink.end(close_reason(end));
            if matches!(
                end,
                DirectEnd::Shutdown | DirectEnd::UpstreamStopped | DirectEnd::CredentialsExpired
            ) {
                finish_response(&sink, &stream, end).await;
            }
            end
        }
        None => DirectEnd::WriteFailed,
    };
    let (events, bytes) = sink.detach();
    DirectOutcome { end, events, bytes }
}

async fn watch_stream(
    sink: &DirectSink,
    stream: &TcpStream,
    shutdown: &mut watch::Receiver<bool>,
    expiry: impl Future<Output = ()>,
) -> DirectEnd {
    tokio::pin!(expiry);
    let write_timeout = sink.settings.write_timeout;
    let mut shutdown_open = true;
    loop {
        let status = sink.status();
        if status.failed {
            return DirectEnd::WriteFailed;
        }
        if let Some(reason) = status.closed {
            return ended_by(reason);
        }
        if shutdown_open && *shutdown.borrow_and_update() {
            return DirectEnd::Shutdown;
        }
        let deadline = status.behind_since.map(|since| since + write_timeout);
        let far = Instant::now() + Duration::from_secs(3600);
        tokio::select! {
            biased;
            () = sink.wake.notified() => {}
            ready = stream.ready(Interest::READABLE) => {
                if client_left(stream, ready) {
                    return DirectEnd::ClientClosed;
                }
            }
            writable = stream.writable(), if deadline.is_some() => {
                if writable.is_err() || sink.flush().is_err() {
                    return DirectEnd::WriteFailed;
                }
            }
            () = tokio::time::sleep_until(deadline.unwrap_or(far).into()), if deadline.is_some() => {
                return DirectEnd::WriteFailed;
            }
            changed = shutdown.changed(), if shutdown_open => {
                if changed.is_err() {
                    shutdown_open = false;
                }
            }
            () = &mut expiry => return DirectEnd::CredentialsExpired,
        }
    }
}

/// Whether read readiness means the client is gone. An SSE client sends
/// nothing after its request: EOF, an error or unexpected bytes all end the
/// stream, as on the session path.
fn client_left(stream: &TcpStream, ready: io::Result<Ready>) -> bool {
    let ready = match ready {
        Ok(ready) => ready,
        Err(_) => return true,
    };
    if ready.is_read_closed() || ready.is_error() {
        return true;
    }
    let mut buf = [0u8; 64];
    match stream.try_read(&mut buf) {
        Ok(_) => true,
        Err(e) => e.kind() != io::ErrorKind::WouldBlock,
    }
}

/// Ends the response: flushes what is pending, then the drain's final frame
/// (when draining) and the last chunk; gives up when the socket takes nothing
/// for the write timeout.
async fn finish_response(sink: &DirectSink, stream: &TcpStream, end: DirectEnd) {
    let timeout = sink.settings.write_timeout;
    loop {
        match sink.flush() {
            Ok(true) => break,
            Ok(false) => {}
            Err(_) => return,
        }
        let since = sink.status().behind_since.unwrap_or_else(Instant::now);
        let deadline = tokio::time::Instant::from_std(since + timeout);
        match tokio::time::timeout_at(deadline, stream.writable()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) | Err(_) => return,
        }
    }
    let mut tail = BytesMut::new();
    if end == DirectEnd::Shutdown {
        if let Some(frame) = sink.settings.drain.final_frame() {
            tail.put_slice(ChunkHeader::new(frame.len()).as_bytes());
            tail.put_slice(&frame);
            tail.put_slice(CRLF);
        }
    }
    tail.put_slice(LAST_CHUNK);
    let mut written = 0;
    let mut deadline = tokio::time::Instant::now() + timeout;
    while written < tail.len() {
        match stream.try_write(&tail[written..]) {
            Ok(0) => return,
            Ok(n) => {
                written += n;
                deadline = tokio::time::Instant::now() + timeout;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                match tokio::time::timeout_at(deadline, stream.writable()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) | Err(_) => return,
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

fn ended_by(reason: CloseReason) -> DirectEnd {
    match reason {
        CloseReason::SlowClient => DirectEnd::SlowClient,
        CloseReason::UpstreamStopped => DirectEnd::UpstreamStopped,
        CloseReason::Shutdown => DirectEnd::Shutdown,
        CloseReason::ClientClosed => DirectEnd::ClientClosed,
    }
}

fn close_reason(end: DirectEnd) -> CloseReason {
    match end {
        DirectEnd::SlowClient => CloseReason::SlowClient,
        DirectEnd::UpstreamStopped => CloseReason::UpstreamStopped,
        DirectEnd::Shutdown => CloseReason::Shutdown,
        DirectEnd::ClientClosed | DirectEnd::WriteFailed | DirectEnd::CredentialsExpired => {
            CloseReason::ClientClosed
        }
    }
}
