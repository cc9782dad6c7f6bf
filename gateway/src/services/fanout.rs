//! A request on a fan-out route: preflight, subscribe, then either the
//! stream or the refusal a client should get.
//!
//! | outcome | answer |
//! | --- | --- |
//! | CORS preflight, disallowed origin, missing or bad credentials | answered by [`access::admit`] before anything else |
//! | OPTIONS | 204 with `Allow` |
//! | a bad `?event=` filter (route with `event_filter`) | 400 |
//! | hub not started yet | 503 + `Retry-After` |
//! | subscribed to a new topic | the response waits (at most the route's `upstream_answer_timeout`) for the upstream's first answer |
//! | subscribed, and the upstream streams, is retrying (5xx, reset, timeout) or is slow to answer | 200 `text/event-stream` ([`client_stream`]) |
//! | topic stopped by its upstream (204) | 204: browsers stop reconnecting |
//! | topic refused by its upstream (401, 403, 404, 410; not an event stream) | that status (502 for the latter), as a plain proxy would: an `EventSource` stops; counted as `upstream` |
//! | over a limit, or draining | 200 `text/event-stream` with a jittered `retry:` then end, for clients that accept event streams (any other status makes `EventSource` give up); 503 + `Retry-After` otherwise; counted as `limit` |
//!
//! Every answer after admission carries the route's CORS headers, so a
//! cross-origin client can read it (an `EventSource` that met a CORS failure
//! instead of the `retry:` answer would give up for good).

use std::sync::Arc;

use bytes::Bytes;
use pingora::proxy::Session;
use sse_gateway_access::CorsHeaders;
use sse_gateway_config::{FanOutRoute, IpCidr};
use sse_gateway_hub::{
    Membership, Refusal, SubscribeRequest, SubscriberSink, UpstreamAnswer, OPEN_REFUSED,
};
use sse_gateway_metrics::{RejectReason, StreamPath};
use sse_gateway_routes::{Matched, FAN_OUT_ALLOW};
use sse_gateway_sinks::{ClientQueue, DirectSink, FilteredSink};

use crate::services::access::{self, Admission};
use crate::services::address_limits::AddressKey;
use crate::services::{
    client_addr, client_stream, direct_stream, event_filter, proxy, responses, takeover,
};
use crate::settings;
use crate::state::{AppState, RoutePlan};

/// The query parameter that stands in for `Last-Event-ID` (for clients that
/// cannot set headers).
const LAST_EVENT_ID_PARAM: &str = "lastEventId";

/// Answers a request matched to a fan-out route.
pub(crate) async fn handle(
    state: &AppState,
    session: &mut Session,
    matched: &Matched<'_, RoutePlan>,
    route: &FanOutRoute,
    topic: &str,
    upstream_url: &str,
) {
    let plan = matched.plan;
    let admission = access::admit(
        session,
        &plan.access,
        &plan.metrics,
        Some(topic),
        Some(FAN_OUT_ALLOW),
    );
    let Admission::Admitted(admitted) = admission.await else {
        return;
    };
    if matched.method == http::Method::HEAD {
        return client_stream::head(session, &admitted).await;
    }
    // On a route without `event_filter` the parameter is ignored.
    let query = session
        .req_header()
        .uri
        .query()
        .filter(|_| plan.event_filter);
    let filter = match event_filter::requested(query) {
        Ok(filter) => filter,
        Err(e) => {
            let body = event_filter::refusal_body(&e);
            return responses::text_with_cors(session, 400, &[], &admitted.cors, body).await;
        }
    };
    let (Some(hub), Some(topic_settings)) = (state.hub(), plan.topic_settings.as_ref()) else {
        let retry = [("retry-after", "1")];
        return responses::text_with_cors(session, 503, &retry, &admitted.cors, "starting\n").await;
    };
    let url = match url::Url::parse(upstream_url) {
        Ok(url) => url,
        Err(e) => {
            tracing::error!(route = %matched.route.name, %upstream_url, "bad upstream URL: {e}");
            return responses::text_with_cors(
                session,
                502,
                &[],
                &admitted.cors,
                "bad upstream URL\n",
            )
            .await;
        }
    };
    let upstream = settings::upstream_settings(&route.settings, &route.upstream, url);
    let address = client_address(session, &state.trusted_proxies);
    // Held for the stream's whole life: its place in its address's count.
    let address_slot = match address {
        Some(key) => match state.address_streams.try_open(key) {
            Some(slot) => Some(slot),
            None => {
                let limit = "limits.max_streams_per_address";
                state.note_refusal(&matched.route.name, limit, Some(key));
                return refuse_for_now(session, plan, &admitted.cors).await;
            }
        },
        None => None,
    };
    let last_event_id = last_event_id(session);
    let writer = writer(session, plan, topic_settings.client_queue);
    let may_open = || match (&state.new_topics, address) {
        (Some(rate), Some(key)) => rate.allow(key),
        _ => true,
    };
    let request = SubscribeRequest {
        route: &matched.route.name,
        topic,
        settings: topic_settings,
        last_event_id: last_event_id.as_deref(),
        may_open: Some(&may_open),
    };
    let sink = match filter {
        Some(filter) => {
            let keepalive = Some(topic_settings.heartbeat).filter(|h| !h.is_zero());
            Arc::new(FilteredSink::new(writer.sink(), filter, keepalive))
        }
        None => writer.sink(),
    };
    let subscribed = hub.subscribe(request, sink, move |publisher| {
        sse_gateway_upstream::feed(upstream, publisher)
    });
    let subscribed = match subscribed {
        Ok(membership) => first_answer(membership, plan).await,
        Err(refusal) => Err(refusal),
    };
    let membership = match subscribed {
        Ok(membership) => membership,
        Err(refusal) => {
            if let Refusal::Limit(limit) = refusal {
                let per_address = limit == OPEN_REFUSED;
                state.note_refusal(&matched.route.name, limit, address.filter(|_| per_address));
            }
            return refused(session, plan, &admitted.cors, refusal).await;
        }
    };
    plan.metrics.client_stream_opened(writer.path());
    match writer {
        // The drain reaches it through the hub (every topic closes).
        Writer::Direct(sink) => {
            // The socket leaves pingora: the stream takes its connection's
            // permit along, so it counts until the stream ends.
            let permit = state.connections.hand_off(proxy::connection(session));
            let held = (address_slot, permit);
            direct_stream::start(session, membership, sink, admitted, held).await;
        }
        Writer::Session(queue) => {
            client_stream::serve(session, membership, queue, &state.drain, admitted).await;
            drop(address_slot);
        }
    }
}

/// The direct path when the route allows it and the connection can leave
/// pingora; the session path otherwise.
fn writer(session: &Session, plan: &RoutePlan, client_queue: usize) -> Writer {
    match &plan.direct {
        Some(settings) if takeover::eligible(session) => {
            Writer::Direct(DirectSink::new(settings.clone()))
        }
        _ => Writer::Session(Arc::new(ClientQueue::with_conflation(
            client_queue,
            plan.conflation.clone(),
        ))),
    }
}

/// The client's address as the per-address limits count it.
pub(crate) fn client_address(session: &Session, trusted: &[IpCidr]) -> Option<AddressKey> {
    let peer = session.client_addr()?.as_inet()?.ip();
    let ip = client_addr::client_ip(peer, &session.req_header().headers, trusted);
    Some(AddressKey::of(ip))
}

/// Answers a subscription the hub or the upstream refused.
async fn refused(session: &mut Session, plan: &RoutePlan, cors: &CorsHeaders, refusal: Refusal) {
    match refusal {
        Refusal::Stopped => {
            responses::send_with_cors(session, 204, &[], cors, Bytes::new()).await;
        }
        Refusal::Upstream { status } => {
            plan.metrics.rejected(RejectReason::Upstream);
            let body = refused_body(status);
            responses::text_with_cors(session, status, &[], cors, body).await;
        }
        Refusal::Limit(_) | Refusal::ShuttingDown => refuse_for_now(session, plan, cors).await,
    }
}

/// Waits for the upstream's first answer when the topic has none yet (its
/// first subscribers), at most the route's `upstream_answer_timeout`: a
/// topic the upstream refuses or stops is answered with that status rather
/// than a 200 that then ends. Streaming, retrying (5xx, resets, timeouts)
/// or still no answer: the subscriber goes on.
async fn first_answer(membership: Membership, plan: &RoutePlan) -> Result<Membership, Refusal> {
    match membership.upstream_answer(plan.answer_timeout).await {
        UpstreamAnswer::Refused { status } => Err(Refusal::Upstream { status }),
        UpstreamAnswer::Stopped => Err(Refusal::Stopped),
        UpstreamAnswer::Pending | UpstreamAnswer::Streaming | UpstreamAnswer::Retrying => {
            Ok(membership)
        }
    }
}

/// The body of an answer the upstream's refusal decided (nothing of the
/// upstream's own body is passed on).
fn refused_body(status: u16) -> &'static str {
    match status {
        401 => "unauthorized (by the upstream)\n",
        403 => "forbidden (by the upstream)\n",
        404 => "not found (at the upstream)\n",
        410 => "gone (at the upstream)\n",
        502 => "bad gateway: the upstream did not answer with an event stream\n",
        _ => "refused by the upstream\n",
    }
}

/// Who writes the subscriber's stream.
enum Writer {
    /// The topic, straight to the socket taken out of pingora.
    Direct(Arc<DirectSink>),
    /// The subscriber's own task, through its pingora session.
    Session(Arc<ClientQueue>),
}

impl Writer {
    /// The sink the topic offers to.
    fn sink(&self) -> Arc<dyn SubscriberSink> {
        match self {
            Self::Direct(sink) => sink.clone(),
            Self::Session(queue) => queue.clone(),
        }
    }

    /// The `path` label of the stream's metric.
    fn path(&self) -> StreamPath {
        match self {
            Self::Direct(_) => StreamPath::Direct,
            Self::Session(_) => StreamPath::Session,
        }
    }
}

/// Over a limit or draining: tell the client to come back later, in a way
/// that does not make a browser give up.
pub(crate) async fn refuse_for_now(session: &mut Session, plan: &RoutePlan, cors: &CorsHeaders) {
    plan.metrics.rejected(RejectReason::Limit);
    if accepts_event_stream(session) {
        let body = sse_gateway_hub::jittered_retry(plan.refusal_retry);
        let headers = [
            ("content-type", "text/event-stream"),
            ("cache-control", "no-cache"),
        ];
        responses::send_with_cors(session, 200, &headers, cors, body).await;
    } else {
        let secs = responses::retry_after_secs(plan.refusal_retry).to_string();
        let headers = [
            ("retry-after", secs.as_str()),
            ("content-type", "text/plain; charset=utf-8"),
        ];
        let body = Bytes::from_static(b"over capacity, retry later\n");
        responses::send_with_cors(session, 503, &headers, cors, body).await;
    }
}

fn accepts_event_stream(session: &Session) -> bool {
    session
        .req_header()
        .headers
        .get_all(http::header::ACCEPT)
        .iter()
        .any(|v| {
            v.as_bytes()
                .windows(17)
                .any(|w| w.eq_ignore_ascii_case(b"text/event-stream"))
        })
}

/// The client's `Last-Event-ID` header, else its `lastEventId` query parameter.
pub(crate) fn last_event_id(session: &Session) -> Option<String> {
    let req = session.req_header();
    if let Some(value) = req.headers.get("last-event-id") {
        return value.to_str().ok().map(str::to_owned);
    }
    query_last_event_id(req.uri.query())
}

fn query_last_event_id(query: Option<&str>) -> Option<String> {
    url::form_urlencoded::parse(query?.as_bytes())
        .find(|(name, _)| name == LAST_EVENT_ID_PARAM)
        .map(|(_, value)| value.into_owned())
        .filter(|id| !id.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_event_id_from_the_query() {
        assert_eq!(
            query_last_event_id(Some("lastEventId=42")),
            Some("42".into())
        );
        assert_eq!(
            query_last_event_id(Some("a=1&lastEventId=a%20b")),
            Some("a b".into())
        );
        assert_eq!(query_last_event_id(Some("lasteventid=42")), None);
        assert_eq!(query_last_event_id(Some("lastEventId=a%0Ab")), None);
        assert_eq!(query_last_event_id(None), None);
    }
}
