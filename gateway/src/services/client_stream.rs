//! One subscriber's response: the `text/event-stream` header, flushed at
//! once, then whatever the hub queues for it, until the client leaves, the
//! queue closes (slow client, upstream stop, drain) or the gateway shuts down.
//!
//! The stream owns its [`Membership`]: whichever way this future ends
//! (returned, or dropped by pingora at shutdown), the membership is dropped
//! with it and the subscriber gauges stay right.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use sse_gateway_hub::{ClientQueue, Delivery, DeliveryKind, Membership};
use tokio::sync::watch;

/// A client that does not take a write for this long is cut off.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Written when nothing is queued at start, so the header leaves at once
/// (a comment: clients ignore it).
const OPENING_COMMENT: Bytes = Bytes::from_static(b":\n");

/// Serves the stream. Never fails: a client that went away just ends it.
pub(crate) async fn serve(
    session: &mut Session,
    membership: Membership,
    queue: Arc<ClientQueue>,
    head_only: bool,
    mut shutdown: watch::Receiver<bool>,
) {
    session.set_write_timeout(Some(WRITE_TIMEOUT));
    let Ok(header) = stream_header() else {
        return;
    };
    if session
        .write_response_header(header, head_only)
        .await
        .is_err()
        || head_only
    {
        return;
    }
    let mut batch = Vec::new();
    // Whatever the hub queued at join (retry advice, replay) goes out with
    // the header; otherwise a comment flushes the header.
    let opened = tokio::time::timeout(Duration::ZERO, queue.next_batch(&mut batch)).await;
    match opened {
        Ok(Ok(())) => {
            if !write_batch(session, &membership, &mut batch).await {
                return;
            }
        }
        Ok(Err(_closed)) => return,
        Err(_empty) => {
            if session
                .write_response_body(Some(OPENING_COMMENT), false)
                .await
                .is_err()
            {
                return;
            }
        }
    }
    if *shutdown.borrow() {
        return;
    }
    loop {
        let next = tokio::select! {
            biased;
            next = queue.next_batch(&mut batch) => next,
            _gone = session.read_body_or_idle(true) => break,
            _signal = shutdown.changed() => break,
        };
        if let Err(reason) = next {
            tracing::debug!(route = membership.route(), topic = membership.topic(), %reason, "client stream closed");
            break;
        }
        if !write_batch(session, &membership, &mut batch).await {
            break;
        }
    }
    drop(membership);
}

/// The 200 `text/event-stream` header (chunked on HTTP/1.1; pingora drops
/// `Transfer-Encoding` on HTTP/2).
fn stream_header() -> pingora::Result<Box<ResponseHeader>> {
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
) -> bool {
    let (bytes, events) = join(batch);
    let len = bytes.len() as u64;
    let ok = bytes.is_empty()
        || session
            .write_response_body(Some(bytes), false)
            .await
            .is_ok();
    if ok {
        membership.record_delivered(events, len);
        for delivery in batch.iter().filter(|d| d.kind == DeliveryKind::Event) {
            membership.observe_fanout_delay(delivery.received.elapsed());
        }
    }
    batch.clear();
    ok
}

/// The batch as one `Bytes` (the shared one itself when there is a single
/// delivery) and how many of its deliveries are events.
fn join(batch: &[Delivery]) -> (Bytes, u64) {
    let events = batch
        .iter()
        .filter(|d| matches!(d.kind, DeliveryKind::Event | DeliveryKind::Replay))
        .count() as u64;
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

    use super::*;

    fn delivery(bytes: &'static [u8], kind: DeliveryKind) -> Delivery {
        Delivery {
            bytes: Bytes::from_static(bytes),
            kind,
            received: Instant::now(),
        }
    }

    #[test]
    fn one_delivery_is_written_as_is() {
        let shared = Bytes::from_static(b"data: x\n\n");
        let batch = vec![Delivery {
            bytes: shared.clone(),
            kind: DeliveryKind::Event,
            received: Instant::now(),
        }];
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
