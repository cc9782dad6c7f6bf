//! One upstream connection: open it, check the answer, stream its body
//! through the decoder into the topic.

use std::time::{Duration, Instant};

use pingora::connectors::http::Connector;
use pingora::protocols::http::client::HttpSession;
use pingora::{Error as PingoraError, ErrorType};
use sse_gateway_codec::{Decoder, Item};
use sse_gateway_hub::{TopicPublisher, UpstreamState};
use sse_gateway_metrics::UpstreamErrorKind;

use crate::request::Target;
use crate::{UpstreamError, UpstreamSettings};

/// How long to wait for the response head when no `idle_timeout` is set.
const DEFAULT_HEAD_TIMEOUT: Duration = Duration::from_secs(30);

/// What the upstream answered.
pub(crate) enum Answer {
    /// 200 `text/event-stream`: the body is the stream.
    Stream(Box<HttpSession>),
    /// 204: the topic is over.
    Stop,
}

/// How a live stream ended.
#[derive(Debug)]
pub(crate) struct StreamEnd {
    pub(crate) error: UpstreamError,
    /// How long the stream stayed up (zero when it never came up).
    pub(crate) up_for: Duration,
}

/// Connects, sends the request and reads the response head.
pub(crate) async fn open(
    connector: &Connector,
    target: &Target,
    settings: &UpstreamSettings,
    last_event_id: Option<&str>,
) -> Result<Answer, UpstreamError> {
    let request = target.request(settings, last_event_id)?;
    let addr = tokio::time::timeout(settings.connect_timeout, target.resolve())
        .await
        .map_err(|_| UpstreamError::Timeout("resolving the upstream host".into()))??;
    let peer = target.peer(addr, settings.connect_timeout, &settings.tls)?;
    let (mut session, _reused) = connector
        .get_http_session(&peer)
        .await
        .map_err(|e| classify(&e, Phase::Connect))?;
    session.set_write_timeout(Some(settings.connect_timeout));
    session
        .write_request_header(request)
        .await
        .map_err(|e| classify(&e, Phase::Connect))?;
    session
        .finish_request_body()
        .await
        .map_err(|e| classify(&e, Phase::Connect))?;
    session.set_read_timeout(Some(settings.idle_timeout.unwrap_or(DEFAULT_HEAD_TIMEOUT)));
    session
        .read_response_header()
        .await
        .map_err(|e| classify(&e, Phase::Head))?;
    let Some(head) = session.response_header() else {
        return Err(UpstreamError::Protocol("no response header".into()));
    };
    match head.status.as_u16() {
        200 => {}
        204 => return Ok(Answer::Stop),
        status => return Err(UpstreamError::Status(status)),
    }
    let content_type = head
        .headers
        .get("content-type")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    if !is_event_stream(&content_type) {
        return Err(UpstreamError::ContentType(content_type));
    }
    session.set_read_timeout(settings.idle_timeout);
    Ok(Answer::Stream(Box::new(session)))
}

/// Most body chunks read for one publication: the first (waited for) and
/// those already there after it (see [`stream`]).
const MAX_READS_PER_PUBLISH: usize = 64;

/// Most body bytes read for one publication.
const MAX_BYTES_PER_PUBLISH: usize = 256 << 10;

/// Reads the stream into the topic until it ends; returns why.
///
/// Each wait for the body ends with one publication (one write per
/// subscriber) of every frame that is there by then: the chunk that ended
/// the wait, and the chunks already buffered or waiting in the socket
/// behind it, read without waiting (at most [`MAX_READS_PER_PUBLISH`]
/// chunks, [`MAX_BYTES_PER_PUBLISH`] bytes). An upstream that writes one
/// chunk per event thus costs one send per subscriber per event while the
/// gateway keeps up, and one per backlog when it falls behind, never a wait
/// for a frame that has not arrived.
pub(crate) async fn stream(
    mut session: Box<HttpSession>,
    settings: &UpstreamSettings,
    publisher: &TopicPublisher,
    retry_floor: &mut Duration,
) -> StreamEnd {
    publisher.set_state(UpstreamState::Live);
    let started = Instant::now();
    let mut decoder = Decoder::new(settings.limits);
    // Frames of one publication (one write per subscriber).
    let mut frames = Vec::new();
    loop {
        let mut read = session.read_response_body().await;
        let received = Instant::now();
        let mut reads = 0;
        let mut bytes = 0;
        let ended = loop {
            let chunk = match read {
                Ok(Some(chunk)) => chunk,
                Ok(None) => {
                    break Some(UpstreamError::Closed(
                        "the upstream ended the stream".into(),
                    ))
                }
                Err(e) => break Some(classify(&e, Phase::Body)),
            };
            reads += 1;
            bytes += chunk.len();
            decode(
                &mut decoder,
                chunk,
                &mut frames,
                publisher,
                settings,
                retry_floor,
                received,
            );
            if reads >= MAX_READS_PER_PUBLISH || bytes >= MAX_BYTES_PER_PUBLISH {
                break None;
            }
            match ready_now(session.read_response_body()) {
                Some(next) => read = next,
                None => break None,
            }
        };
        // What was read goes out before the stream's end is handled.
        publisher.publish_all(&mut frames, received);
        if let Some(error) = ended {
            return StreamEnd {
                error,
                up_for: started.elapsed(),
            };
        }
    }
}

/// Polls `read` once: its result when it is ready now, `None` when it would
/// wait. pingora's body reads may be dropped while pending (the parser's
/// state is committed before each socket read, and a pending read has
/// taken nothing); the next read resumes where this one stopped.
fn ready_now<F: std::future::Future>(read: F) -> Option<F::Output> {
    let mut read = std::pin::pin!(read);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match read.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(output) => Some(output),
        std::task::Poll::Pending => None,
    }
}

/// Decodes one body chunk into `frames`; a `retry:` publishes the frames
/// before it (in order) and advises clients.
fn decode(
    decoder: &mut Decoder,
    chunk: bytes::Bytes,
    frames: &mut Vec<sse_gateway_codec::Frame>,
    publisher: &TopicPublisher,
    settings: &UpstreamSettings,
    retry_floor: &mut Duration,
    received: Instant,
) {
    for item in decoder.decode(chunk) {
        match item {
            Item::Event(event) => frames.push(event.into_frame()),
            Item::IdUpdate(frame) => frames.push(frame),
            Item::Retry(ms) => {
                // In order: the frames before the retry go out first.
                publisher.publish_all(frames, received);
                publisher.advise_retry(ms);
                // Clients get the upstream's value; the gateway's own
                // reconnects never wait longer than its backoff allows.
                *retry_floor = Duration::from_millis(ms).min(settings.backoff_max);
            }
            // Comments only keep the idle watchdog quiet; heartbeats
            // replace them downstream.
            Item::Comment(_) => {}
            // An event past `max_event_size`, or with a line past the
            // line limit (the same size when the gateway fills it): the
            // decoder dropped it and resynchronises; the stream goes on.
            Item::Error(error) => {
                tracing::debug!(topic = publisher.topic(), %error, "upstream event dropped");
                publisher
                    .route_metrics()
                    .upstream_error(UpstreamErrorKind::EventTooLarge);
            }
        }
    }
}

/// Where a pingora error happened, to name it.
#[derive(Debug, Clone, Copy)]
enum Phase {
    Connect,
    Head,
    Body,
}

fn classify(error: &PingoraError, phase: Phase) -> UpstreamError {
    let what = error.to_string();
    match (error.etype(), phase) {
        (
            ErrorType::ConnectTimedout | ErrorType::TLSHandshakeTimedout | ErrorType::WriteTimedout,
            _,
        )
        | (ErrorType::ReadTimedout, _) => UpstreamError::Timeout(what),
        (_, Phase::Connect) => UpstreamError::Connect(what),
        (ErrorType::InvalidHTTPHeader, _) => UpstreamError::Protocol(what),
        (_, Phase::Head | Phase::Body) => UpstreamError::Closed(what),
    }
}

/// `text/event-stream`, with or without parameters (`; charset=utf-8`).
fn is_event_stream(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("text/event-stream")
}

#[cfg(test)]
mod tests {
    use super::is_event_stream;

    #[test]
    fn event_stream_content_types() {
        assert!(is_event_stream("text/event-stream"));
        assert!(is_event_stream("Text/Event-Stream; charset=utf-8"));
        assert!(is_event_stream(" text/event-stream ;charset=UTF-8"));
        assert!(!is_event_stream("text/plain"));
        assert!(!is_event_stream(""));
        assert!(!is_event_stream("text/event-streams"));
    }
}
