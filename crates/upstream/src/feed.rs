//! The feed loop: connect, stream, back off, reconnect; see `LIFECYCLE.md`.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use pingora::connectors::http::Connector;
use sse_gateway_hub::{TopicPublisher, UpstreamState};

use crate::request::Target;
use crate::session::{self, Answer, StreamEnd};
use crate::{Backoff, UpstreamError, UpstreamSettings};

/// One pingora client connector for every feed of the process. Building one
/// loads the platform's root certificates and sizes a connection pool (about
/// 0.5 MiB); the per-route TLS choices (`ca_file`, `insecure_skip_verify`,
/// SNI) travel with each peer, not with the connector.
fn shared_connector() -> &'static Connector {
    static CONNECTOR: OnceLock<Connector> = OnceLock::new();
    CONNECTOR.get_or_init(|| Connector::new(None))
}

/// A stream that stayed up at least this long resets the backoff: an
/// upstream that answers, sends an event and closes at once is reconnected
/// with growing delays (not several times a second), while one whose
/// streams last a few seconds is reconnected promptly each time.
pub(crate) const STABLE_STREAM: Duration = Duration::from_secs(2);

/// Runs until the topic closes, the upstream answers 204, or it refuses the
/// topic (401, 403, 404, 410, not an event stream).
pub(crate) async fn run(settings: Arc<UpstreamSettings>, publisher: TopicPublisher) {
    let connector = shared_connector();
    let mut backoff = match Backoff::try_new(settings.backoff_initial, settings.backoff_max) {
        Ok(backoff) => backoff,
        Err(error) => {
            tracing::warn!(topic = publisher.topic(), %error, "invalid backoff; using defaults");
            Backoff::default()
        }
    };
    let target = Target::from_url(&settings.url);
    // The upstream's last `retry:` (at most `backoff_max`): no reconnect
    // comes sooner.
    let mut retry_floor = Duration::ZERO;
    loop {
        if publisher.is_closed() {
            return;
        }
        publisher.set_state(UpstreamState::Connecting);
        let attempt =
            connect_and_stream(connector, &target, &settings, &publisher, &mut retry_floor);
        let end = tokio::select! {
            biased;
            () = publisher.closed() => {
                tracing::info!(route = publisher.route(), topic = publisher.topic(), "upstream closed: topic closed");
                return;
            }
            end = Box::pin(attempt) => end,
        };
        let (StreamEnd { error, up_for }, sent_id) = match end {
            Attempt::Stopped => {
                tracing::info!(
                    topic = publisher.topic(),
                    "upstream answered 204: topic stopped"
                );
                publisher.stop();
                return;
            }
            Attempt::Failed { end, sent_id } => (end, sent_id),
        };
        publisher.route_metrics().upstream_error(error.kind());
        if sent_id && error.is_request_refused() {
            // The stored id may be what it refuses (an id from before an
            // upstream restart, or one it never issued): ask again without.
            tracing::warn!(
                route = publisher.route(),
                topic = publisher.topic(),
                url = %settings.url,
                %error,
                "upstream refused the request with Last-Event-ID; retrying without it"
            );
            publisher.forget_last_event_id();
            publisher.metrics().upstream_reconnected();
            continue;
        }
        if let Some(status) = error.refusal_status() {
            tracing::warn!(
                route = publisher.route(),
                topic = publisher.topic(),
                url = %settings.url,
                %error,
                status,
                "upstream refused the topic: its clients are answered {status}"
            );
            publisher.refuse(status);
            return;
        }
        if up_for >= STABLE_STREAM {
            backoff.reset();
        }
        if !error.is_retryable() {
            backoff.saturate();
        }
        publisher.metrics().upstream_reconnected();
        publisher.set_state(UpstreamState::Backoff);
        let delay = backoff.next_delay_at_least(retry_floor);
        tracing::warn!(
            route = publisher.route(),
            topic = publisher.topic(),
            url = %settings.url,
            %error,
            delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            "upstream feed interrupted; reconnecting"
        );
        tokio::select! {
            biased;
            () = publisher.closed() => return,
            () = tokio::time::sleep(delay) => {}
        }
    }
}

/// How one attempt ended.
enum Attempt {
    /// The upstream answered 204.
    Stopped,
    /// The connection failed, the upstream refused, or the stream ended.
    Failed {
        end: StreamEnd,
        /// The request carried a `Last-Event-ID`.
        sent_id: bool,
    },
}

async fn connect_and_stream(
    connector: &Connector,
    target: &Result<Target, UpstreamError>,
    settings: &UpstreamSettings,
    publisher: &TopicPublisher,
    retry_floor: &mut Duration,
) -> Attempt {
    let last_event_id = publisher.last_event_id();
    let sent_id = last_event_id.is_some();
    let failed = |error| Attempt::Failed {
        end: StreamEnd {
            error,
            up_for: Duration::ZERO,
        },
        sent_id,
    };
    let target = match target {
        Ok(target) => target,
        Err(error) => return failed(error.clone()),
    };
    match session::open(connector, target, settings, last_event_id.as_deref()).await {
        Ok(Answer::Stop) => Attempt::Stopped,
        Ok(Answer::Stream(http)) => {
            tracing::info!(
                route = publisher.route(),
                topic = publisher.topic(),
                url = %settings.url,
                last_event_id = last_event_id.as_deref().unwrap_or(""),
                "upstream connected"
            );
            Attempt::Failed {
                end: session::stream(http, settings, publisher, retry_floor).await,
                sent_id,
            }
        }
        Err(error) => failed(error),
    }
}
