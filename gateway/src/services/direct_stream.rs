//! One subscriber on the direct path: the `text/event-stream` header written
//! by pingora, then the socket taken out of pingora
//! ([`takeover`](crate::services::takeover)) and handed to its
//! [`DirectSink`], which the topic writes to itself. What is left here is a
//! small task per subscriber ([`sse_gateway_sinks::serve`]) that waits for
//! the stream to end and writes the access-log line.
//!
//! The sink joined the topic before the header (so a refusal can still get
//! its own status); what the topic offered meanwhile (advice, replay, live
//! frames) is held and written right after the header.

use std::sync::Arc;

use pingora::proxy::Session;
use sse_gateway_hub::{CloseReason, Membership};
use sse_gateway_sinks::DirectSink;

use crate::services::access::{self, Admitted};
use crate::services::access_log::AccessLog;
use crate::services::{client_stream, takeover};

/// Writes the header, takes the socket and starts the subscriber's task.
/// Returns at once; pingora then finishes the (dummy) session.
///
/// `held` lives as long as the stream (its address slot and its
/// connection's permit).
pub(crate) async fn start(
    session: &mut Session,
    membership: Membership,
    sink: Arc<DirectSink>,
    admitted: Admitted,
    held: impl Send + 'static,
) {
    let mut log = AccessLog::new(&membership, session);
    let Ok(mut header) = client_stream::stream_header() else {
        log.end = CloseReason::WriteFailed;
        return;
    };
    access::apply(&mut header, &admitted.cors);
    session.set_write_timeout(Some(sse_gateway_sinks::WRITE_TIMEOUT));
    if session.write_response_header(header, false).await.is_err() {
        log.end = CloseReason::WriteFailed;
        return;
    }
    let stream = match takeover::take(session) {
        Ok(stream) => stream,
        Err(e) => {
            tracing::error!(
                route = %membership.route(),
                "direct path: could not take the connection out of pingora: {e}"
            );
            log.end = CloseReason::WriteFailed;
            return;
        }
    };
    sink.attach(stream, membership.recorder());
    let expiry = admitted.expiry;
    tokio::spawn(async move {
        let outcome = sse_gateway_sinks::serve(sink, expiry).await;
        log.events = outcome.events;
        log.bytes = outcome.bytes;
        log.end = outcome.end;
        drop(membership);
        drop(log);
        drop(held);
    });
}
