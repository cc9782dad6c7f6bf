//! One subscriber's response: the `text/event-stream` header, flushed at
//! once, then whatever the hub queues for it, until the client leaves, the
//! queue closes (slow client, upstream stop, drain) or the gateway shuts down.
//!
//! The stream owns its [`Membership`]: whichever way this future ends
//! (returned, or dropped by pingora at shutdown), the membership is dropped
//! with it and the subscriber gauges stay right.
//!
//! **Access log.** Every stream writes exactly one line when it ends (target
//! `sse_gateway::access`, level info): route, topic, client address,
//! duration, events and bytes written, and why it closed. The line comes from
//! a guard's `Drop`, so a stream dropped by pingora is logged too.
//!
//! **Drain.** Once the [`Drain`] starts (the hub service starts it when
//! pingora says shut down), each stream ends with its own final `retry:`,
//! jittered per client (±20% around the drain retry), so that reconnects
//! spread out instead of arriving as one herd.

use std::sync::Arc;
use std::time::Duration;

use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use sse_gateway_config::TopicSettingsConfig;
use sse_gateway_hub::{CloseReason, Delivery, Membership};
use sse_gateway_metrics::StreamPath;
use sse_gateway_sinks::{
    ClientQueue, Coalescing, DirectSettings, Drain, OPENING_COMMENT, WRITE_TIMEOUT,
};
use tokio::sync::watch;

use crate::services::access::{self, Admitted};
use crate::services::access_log::AccessLog;

/// The direct path's settings for a route: the same queue bound, write
/// timeout and drain as the session path.
pub(crate) fn direct_settings(
    settings: &TopicSettingsConfig,
    drain: &Arc<Drain>,
) -> Arc<DirectSettings> {
    Arc::new(DirectSettings {
        client_queue: usize::try_from(settings.client_queue).unwrap_or(usize::MAX),
        write_timeout: WRITE_TIMEOUT,
        drain: drain.clone(),
        batched_sends: batched_sends_wanted(),
        coalescing: Coalescing::new(settings.coalesce_window),
        conflation: crate::settings::conflation(settings),
    })
}

/// The environment variable that turns batched direct sends off: `off`
/// (for a host whose policy forbids io_uring, or to compare).
pub(crate) const IO_URING_ENV: &str = "SSE_GATEWAY_IO_URING";

/// Whether direct sends are batched (io_uring, where the kernel gives
/// one): unless [`IO_URING_ENV`] is `off`.
pub(crate) fn batched_sends_wanted() -> bool {
    std::env::var_os(IO_URING_ENV).is_none_or(|v| v != "off")
}

/// Serves the stream. Never fails: a client that went away just ends it.
pub(crate) async fn serve(
    session: &mut Session,
    membership: Membership,
    queue: Arc<ClientQueue>,
    drain: &Drain,
    admitted: Admitted,
) {
    let mut log = AccessLog::new(&membership, session);
    let end = stream(
        session,
        &membership,
        &queue,
        drain.signal(),
        &admitted,
        &mut log,
    )
    .await;
    let last_frame = match end {
        CloseReason::Shutdown => drain.final_frame(),
        CloseReason::CredentialsExpired => admitted.expiry.as_ref().map(|e| e.notice().clone()),
        _ => None,
    };
    if let Some(frame) = last_frame {
        let _ = session.write_response_body(Some(frame), false).await;
    }
    log.end = end;
    drop(membership);
}

/// Answers HEAD with the stream's header alone, without joining the topic
/// (so a HEAD never opens an upstream connection).
pub(crate) async fn head(session: &mut Session, admitted: &Admitted) {
    let Ok(mut header) = stream_header() else {
        return;
    };
    access::apply(&mut header, &admitted.cors);
    let _ = session.write_response_header(header, true).await;
}

/// The stream proper; returns why it ended.
async fn stream(
    session: &mut Session,
    membership: &Membership,
    queue: &ClientQueue,
    mut drained: watch::Receiver<bool>,
    admitted: &Admitted,
    log: &mut AccessLog,
) -> CloseReason {
    session.set_write_timeout(Some(WRITE_TIMEOUT));
    let Ok(mut header) = stream_header() else {
        return CloseReason::WriteFailed;
    };
    access::apply(&mut header, &admitted.cors);
    if session.write_response_header(header, false).await.is_err() {
        return CloseReason::WriteFailed;
    }
    let mut batch = Vec::new();
    // Whatever the hub queued at join (retry advice, replay) goes out with
    // the header; otherwise a comment flushes the header.
    let opened = tokio::time::timeout(Duration::ZERO, queue.next_batch(&mut batch)).await;
    match opened {
        Ok(Ok(())) => {
            if !write_batch(session, membership, &mut batch, log).await {
                return CloseReason::WriteFailed;
            }
        }
        Ok(Err(reason)) => return reason,
        Err(_empty) => {
            if session
                .write_response_body(Some(OPENING_COMMENT), false)
                .await
                .is_err()
            {
                return CloseReason::WriteFailed;
            }
        }
    }
    if *drained.borrow() {
        return CloseReason::Shutdown;
    }
    let expiry = access::expiry(admitted.expiry.as_ref());
    tokio::pin!(expiry);
    loop {
        let next = tokio::select! {
            biased;
            next = queue.next_batch(&mut batch) => next,
            _gone = session.read_body_or_idle(true) => return CloseReason::ClientClosed,
            _signal = drained.changed() => return CloseReason::Shutdown,
            () = &mut expiry => return CloseReason::CredentialsExpired,
        };
        if let Err(reason) = next {
            return reason;
        }
        if !write_batch(session, membership, &mut batch, log).await {
            return CloseReason::WriteFailed;
        }
    }
}

/// The 200 `text/event-stream` header (chunked on HTTP/1.1; pingora drops
/// `Transfer-Encoding` on HTTP/2).
pub(crate) fn stream_header() -> pingora::Result<Box<ResponseHeader>> {
    let mut header = ResponseHeader::build(200, Some(4))?;
    header.insert_header("content-type", "text/event-stream")?;
    header.insert_header("cache-control", "no-cache")?;
    header.insert_header("x-accel-buffering", "no")?;
    header.insert_header("transfer-encoding", "chunked")?;
    Ok(Box::new(header))
}

/// Writes every pending delivery in one write and records it. False when the
/// client is gone.
async fn write_batch(
    session: &mut Session,
    membership: &Membership,
    batch: &mut Vec<Delivery>,
    log: &mut AccessLog,
) -> bool {
    let (bytes, events) = sse_gateway_sinks::joined(batch);
    let len = bytes.len() as u64;
    let ok = bytes.is_empty()
        || session
            .write_response_body(Some(bytes), false)
            .await
            .is_ok();
    if ok {
        membership.record_written(batch.iter());
        membership.record_sends(StreamPath::Session, u64::from(len > 0));
        log.events += events;
        log.bytes += len;
    }
    batch.clear();
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_is_an_event_stream() {
        let header = stream_header().unwrap();
        assert_eq!(header.status.as_u16(), 200);
        assert_eq!(
            header.headers.get("content-type").unwrap(),
            "text/event-stream"
        );
        assert_eq!(header.headers.get("cache-control").unwrap(), "no-cache");
        assert_eq!(header.headers.get("x-accel-buffering").unwrap(), "no");
        assert!(header.headers.get("content-length").is_none());
    }
}
