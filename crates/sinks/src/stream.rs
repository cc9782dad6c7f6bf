//! [`serve`]: the one small task a direct subscriber keeps. It sleeps until
//! something other than a delivery happens: the client leaves (`EPOLLRDHUP`,
//! EOF, an error, or bytes it should not send), the socket falls behind and
//! must be flushed on write-readiness, the topic closes the stream (its
//! upstream stopped, the gateway drains, the client was too slow), or the
//! client's credentials expire. Deliveries never wake it.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::{BufMut, BytesMut};
use socket2::SockRef;
use sse_gateway_hub::CloseReason;
use tokio::net::TcpStream;
use tokio::time::Sleep;

use crate::chunk::{ChunkHeader, CRLF, LAST_CHUNK};
use crate::expiry::Expiry;
use crate::sink::DirectSink;

/// How a direct stream ended and what it wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirectOutcome {
    /// Why it ended.
    pub end: CloseReason,
    /// Events written (live and replayed).
    pub events: u64,
    /// Payload bytes written (chunk framing excluded).
    pub bytes: u64,
}

/// Runs a direct subscriber until its stream ends, then ends the HTTP
/// response: pending bytes, the drain's final frame and the last chunk when
/// the gateway or the upstream ended it; nothing more when the client left,
/// failed or was too slow. The connection is shut down when this returns
/// (its descriptor is closed with the sink).
///
/// `expiry` is when the client's credentials expire, if they do; the stream
/// then ends with its notice before the last chunk. The drain
/// reaches the stream through its topic (`TopicHub::shutdown` closes every
/// sink with [`CloseReason::Shutdown`]).
///
/// This future is held by every direct subscriber, so it is small: while
/// waiting it is a [`Watch`] (a few pointers, polling the socket's readiness
/// directly); the finishing writes are boxed, made only at the end.
pub async fn serve(sink: Arc<DirectSink>, expiry: Option<Expiry>) -> DirectOutcome {
    let end = match sink.stream() {
        Some(stream) => {
            let end = Watch {
                sink: &sink,
                stream,
                expiry: expiry
                    .as_ref()
                    .map(|e| Box::pin(tokio::time::sleep_until(e.at().into()))),
                timeout: None,
            }
            .await;
            sink.end(end);
            // A send an offer round gathered may still be in flight: it
            // lands within one batch's system call, and wakes the task.
            std::future::poll_fn(|cx| {
                if sink.landed(cx.waker()) {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            })
            .await;
            if end.ends_response() {
                Box::pin(finish_response(&sink, stream, end, expiry.as_ref())).await;
            }
            // The connection ends now (FIN after whatever the kernel still
            // holds); the descriptor itself goes with the sink.
            let _ = SockRef::from(stream).shutdown(std::net::Shutdown::Both);
            end
        }
        None => CloseReason::WriteFailed,
    };
    let (events, bytes) = sink.detach();
    DirectOutcome { end, events, bytes }
}

/// Waits for the end of a direct stream, flushing on write-readiness while
/// the socket is behind.
struct Watch<'a> {
    sink: &'a DirectSink,
    stream: &'a TcpStream,
    expiry: Option<Pin<Box<Sleep>>>,
    /// The write timeout; made only while behind.
    timeout: Option<Pin<Box<Sleep>>>,
}

/// Most passes of [`Watch::poll`] before it yields (each pass either ends
/// or consumes a readiness event, so this only guards against a busy loop).
const MAX_PASSES: usize = 32;

impl Future for Watch<'_> {
    type Output = CloseReason;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<CloseReason> {
        let this = &mut *self;
        let write_timeout = this.sink.settings.write_timeout;
        for _ in 0..MAX_PASSES {
            let status = this.sink.status(cx.waker());
            if let Some(reason) = status.end {
                return Poll::Ready(reason);
            }
            match this.stream.poll_read_ready(cx) {
                Poll::Ready(Ok(())) => {
                    if client_left(this.stream) {
                        return Poll::Ready(CloseReason::ClientClosed);
                    }
                    // A spurious wake-up; `try_read` cleared the readiness.
                    continue;
                }
                Poll::Ready(Err(_)) => return Poll::Ready(CloseReason::ClientClosed),
                Poll::Pending => {}
            }
            if let Some(expiry) = &mut this.expiry {
                if expiry.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(CloseReason::CredentialsExpired);
                }
            }
            let Some(since) = status.behind_since else {
                this.timeout = None;
                return Poll::Pending;
            };
            match this.stream.poll_write_ready(cx) {
                Poll::Ready(Ok(())) => {
                    if this.sink.flush().is_err() {
                        return Poll::Ready(CloseReason::WriteFailed);
                    }
                    continue;
                }
                Poll::Ready(Err(_)) => return Poll::Ready(CloseReason::WriteFailed),
                Poll::Pending => {}
            }
            let deadline = tokio::time::Instant::from_std(since + write_timeout);
            let timeout = this
                .timeout
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
            if timeout.deadline() != deadline {
                timeout.as_mut().reset(deadline);
            }
            if timeout.as_mut().poll(cx).is_ready() {
                return Poll::Ready(CloseReason::WriteFailed);
            }
            return Poll::Pending;
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// Whether read readiness means the client is gone. An SSE client sends
/// nothing after its request: EOF, an error or unexpected bytes all end the
/// stream, as on the session path.
fn client_left(stream: &TcpStream) -> bool {
    let mut buf = [0u8; 64];
    match stream.try_read(&mut buf) {
        Ok(_) => true,
        Err(e) => e.kind() != io::ErrorKind::WouldBlock,
    }
}

/// Ends the response: flushes what is pending, then the drain's final frame
/// (when draining) or the expiry notice (when the credentials expired) and
/// the last chunk; gives up when the socket takes nothing for the write
/// timeout.
async fn finish_response(
    sink: &DirectSink,
    stream: &TcpStream,
    end: CloseReason,
    expiry: Option<&Expiry>,
) {
    let timeout = sink.settings.write_timeout;
    loop {
        match sink.flush() {
            Ok(true) => break,
            Ok(false) => {}
            Err(_) => return,
        }
        let since = sink.behind_since().unwrap_or_else(Instant::now);
        let deadline = tokio::time::Instant::from_std(since + timeout);
        match tokio::time::timeout_at(deadline, stream.writable()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) | Err(_) => return,
        }
    }
    let mut tail = BytesMut::new();
    let last_frame = match end {
        CloseReason::Shutdown => sink.settings.drain.final_frame(),
        CloseReason::CredentialsExpired => expiry.map(|e| e.notice().clone()),
        _ => None,
    };
    if let Some(frame) = last_frame {
        tail.put_slice(ChunkHeader::new(frame.len()).as_bytes());
        tail.put_slice(&frame);
        tail.put_slice(CRLF);
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
