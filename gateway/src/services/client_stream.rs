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
//! **Drain.** Once [`start_drain`] was called (the hub service does it when
//! pingora says shut down), each stream ends with its own final `retry:`,
//! jittered per client (±20% around the drain retry), so that reconnects
//! spread out instead of arriving as one herd. The hub's per-topic `retry:`
//! advice offered at drain is left out, so a client sees one final value.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use sse_gateway_config::TopicSettingsConfig;
use sse_gateway_direct::{DirectSettings, DrainAdvice};
use sse_gateway_hub::{ClientQueue, CloseReason, Delivery, Membership};
use tokio::sync::watch;

use crate::services::access::{self, Admitted};
use crate::services::access_log::{AccessLog, StreamEnd};
use crate::services::responses;

/// A client that does not take a write for this long is cut off.
pub(crate) const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Written when nothing is queued at start, so the header leaves at once
/// (a comment: clients ignore it).
const OPENING_COMMENT: Bytes = Bytes::from_static(b":\n");

/// The drain's base `retry`, set once when the drain starts.
static DRAIN_RETRY: OnceLock<Duration> = OnceLock::new();

/// Starts the drain: from now on every stream ends with a final jittered
/// `retry:` around `retry`. Only the first call counts.
pub(crate) fn start_drain(retry: Duration) {
    let _ = DRAIN_RETRY.set(retry);
}

fn drain_retry() -> Option<Duration> {
    DRAIN_RETRY.get().copied()
}

/// The drain as the direct path sees it: the same flag and final frame.
struct GatewayDrain;

impl DrainAdvice for GatewayDrain {
    fn draining(&self) -> bool {
        drain_retry().is_some()
    }

    fn final_frame(&self) -> Option<Bytes> {
        drain_retry().map(final_retry)
    }
}

/// A drained stream's last frame: `retry:` jittered per client.
fn final_retry(retry: Duration) -> Bytes {
    Bytes::from(format!("retry: {}\n\n", responses::jittered_ms(retry)))
}

/// The direct path's settings for a route: the same queue bound, write
/// timeout and drain as the session path.
pub(crate) fn direct_settings(settings: &TopicSettingsConfig) -> Arc<DirectSettings> {
    Arc::new(DirectSettings {
        client_queue: usize::try_from(settings.client_queue).unwrap_or(usize::MAX),
        write_timeout: WRITE_TIMEOUT,
        drain: Arc::new(GatewayDrain),
        batched_sends: batched_sends_wanted(),
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
    shutdown: watch::Receiver<bool>,
    admitted: Admitted,
) {
    let mut log = AccessLog::new(&membership, session);
    let end = stream(session, &membership, &queue, shutdown, &admitted, &mut log).await;
    if end == StreamEnd::Shutdown {
        if let Some(retry) = drain_retry() {
            let _ = session
                .write_response_body(Some(final_retry(retry)), false)
                .await;
        }
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
    mut shutdown: watch::Receiver<bool>,
    admitted: &Admitted,
    log: &mut AccessLog,
) -> StreamEnd {
    session.set_write_timeout(Some(WRITE_TIMEOUT));
    let Ok(mut header) = stream_header() else {
        return StreamEnd::WriteFailed;
    };
    access::apply(&mut header, &admitted.cors);
    if session.write_response_header(header, false).await.is_err() {
        return StreamEnd::WriteFailed;
    }
    let mut batch = Vec::new();
    // Whatever the hub queued at join (retry advice, replay) goes out with
    // the header; otherwise a comment flushes the header.
    let opened = tokio::time::timeout(Duration::ZERO, queue.next_batch(&mut batch)).await;
    match opened {
        Ok(Ok(())) => {
            if !write_batch(session, membership, &mut batch, log).await {
                return StreamEnd::WriteFailed;
            }
        }
        Ok(Err(reason)) => return ended_by(reason),
        Err(_empty) => {
            if session
                .write_response_body(Some(OPENING_COMMENT), false)
                .await
                .is_err()
            {
                return StreamEnd::WriteFailed;
            }
        }
    }
    if *shutdown.borrow() {
        return StreamEnd::Shutdown;
    }
    let expiry = access::expiry(admitted.deadline);
    tokio::pin!(expiry);
    loop {
        let next = tokio::select! {
            biased;
            next = queue.next_batch(&mut batch) => next,
            _gone = session.read_body_or_idle(true) => return StreamEnd::ClientClosed,
            _signal = shutdown.changed() => return StreamEnd::Shutdown,
            () = &mut expiry => return StreamEnd::CredentialsExpired,
        };
        if let Err(reason) = next {
            return ended_by(reason);
        }
        if !write_batch(session, membership, &mut batch, log).await {
            return StreamEnd::WriteFailed;
        }
    }
}

fn ended_by(reason: CloseReason) -> StreamEnd {
    match reason {
        CloseReason::SlowClient => StreamEnd::SlowClient,
        CloseReason::UpstreamStopped => StreamEnd::UpstreamStopped,
        CloseReason::UpstreamRefused => StreamEnd::UpstreamRefused,
        CloseReason::Shutdown => StreamEnd::Shutdown,
        CloseReason::ClientClosed => StreamEnd::ClientClosed,
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
    if drain_retry().is_some() {
        // The stream writes its own final, per-client jittered retry.
        batch.retain(|d| !d.is_retry_advice());
    }
    let (bytes, events) = join(batch);
    let len = bytes.len() as u64;
    let ok = bytes.is_empty()
        || session
            .write_response_body(Some(bytes), false)
            .await
            .is_ok();
    if ok {
        membership.record_written(batch.iter());
        log.events += events;
        log.bytes += len;
    }
    batch.clear();
    ok
}

/// The batch as one `Bytes` (the shared one itself when there is a single
/// delivery) and how many of its deliveries are events.
fn join(batch: &[Delivery]) -> (Bytes, u64) {
    let events = batch.iter().map(Delivery::events).sum();
    let bytes = match batch {
        [] => Bytes::new(),
        [one] => one.bytes.clone(),
        many => {
            let total = many.iter().map(|d| d.bytes.len()).sum();
            let mut out = BytesMut::with_capacity(total);
            for delivery in many {
                out.extend_from_slice(&delivery.bytes);
            }
            out.freeze()
        }
    };
    (bytes, events)
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use sse_gateway_hub::DeliveryKind;

    use super::*;

    fn delivery(bytes: &'static [u8], kind: DeliveryKind) -> Delivery {
        Delivery::new(Bytes::from_static(bytes), kind, Instant::now())
    }

    #[test]
    fn one_delivery_is_written_as_is() {
        let shared = Bytes::from_static(b"data: x\n\n");
        let batch = vec![Delivery::new(
            shared.clone(),
            DeliveryKind::Event,
            Instant::now(),
        )];
        let (bytes, events) = join(&batch);
        assert_eq!(
            bytes.as_ptr(),
            shared.as_ptr(),
            "no copy for a single delivery"
        );
        assert_eq!(events, 1);
    }

    #[test]
    fn several_are_concatenated_and_only_events_count() {
        let batch = vec![
            delivery(b"retry: 3000\n\n", DeliveryKind::Advice),
            delivery(b"id: 1\ndata: a\n\n", DeliveryKind::Replay),
            delivery(b":\n", DeliveryKind::Heartbeat),
            delivery(b"id: 2\ndata: b\n\n", DeliveryKind::Event),
        ];
        let (bytes, events) = join(&batch);
        assert_eq!(
            &bytes[..],
            b"retry: 3000\n\nid: 1\ndata: a\n\n:\nid: 2\ndata: b\n\n"
        );
        assert_eq!(events, 2);
        assert_eq!(join(&[]), (Bytes::new(), 0));
    }

    #[test]
    fn only_retry_advice_is_dropped_at_drain() {
        assert!(delivery(b"retry: 3000\n\n", DeliveryKind::Advice).is_retry_advice());
        assert!(!delivery(b"event: gap\ndata: {}\n\n", DeliveryKind::Advice).is_retry_advice());
        assert!(!delivery(b"retry: 1\n\n", DeliveryKind::Event).is_retry_advice());
    }

    #[test]
    fn close_reasons_map_to_log_reasons() {
        assert_eq!(ended_by(CloseReason::SlowClient).as_str(), "slow_client");
        assert_eq!(ended_by(CloseReason::Shutdown).as_str(), "shutdown");
        assert_eq!(
            ended_by(CloseReason::UpstreamStopped).as_str(),
            "upstream_stopped"
        );
        assert_eq!(
            ended_by(CloseReason::ClientClosed).as_str(),
            "client_closed"
        );
    }

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
