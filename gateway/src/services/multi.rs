//! `GET {multi.path}?topic=/prices/AAPL&topic=/news/tech`: one stream for
//! several topics, so a page needs one connection instead of one per topic
//! (browsers allow six per origin on HTTP/1.1).
//!
//! Each `topic` is the path of a fan-out route (the leading `/` may be
//! left out), resolved as a request to it would be; each member is checked
//! against its own route's CORS policy and credentials (`topics_claim`
//! included), subscribed to its own topic (one upstream per topic, shared
//! with every other subscriber, counted in every limit), and resumed from
//! its own replay ring. Every event goes out with the composite id of all
//! members' positions ([`MemberIds`]), so a reconnect with that
//! `Last-Event-ID` resumes each member exactly where it was.
//!
//! | request | answer |
//! | --- | --- |
//! | not `GET`/`HEAD` | 405 |
//! | no `topic`, a repeated one (also spelled another way: members compare by route and topic), more than `multi.max_topics` | 400 |
//! | no member admitted and subscribed | the first refusal's status (401/403 with the credential check's answer, 404 for a path that is no fan-out route); over a limit or draining, what a single-topic stream gets (a `retry:` for event-stream clients, else 503) |
//! | otherwise | 200 `text/event-stream`; each refused member first as `event: topic_refused`, `data: {"topic", "reason", "status"}` |
//!
//! **One CORS answer for the stream.** The response carries the CORS
//! headers of the first admitted member; another member whose route would
//! answer the request's `Origin` differently (another
//! `Access-Control-Allow-Origin` or `-Credentials`, or none because its
//! route has no `cors:`) is refused as `cors`, so one route's CORS policy
//! never lets a page read another route's events.
//!
//! A member whose topic ends (its upstream stopped or refused it) is
//! reported as `event: topic_end`, `data: {"topic", "reason"}`, and the
//! others go on; the stream ends when every member has. Credentials expire
//! for the stream at the earliest member's expiry (the route's
//! `auth_expired` notice is written first). The session path writes these
//! streams (one task per stream; each event is re-encoded with its
//! composite id, so unlike single-topic streams the bytes are per client).

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use http::Method;
use pingora::proxy::Session;
use sse_gateway_access::CorsHeaders;
use sse_gateway_config::MultiConfig;
use sse_gateway_hub::{CloseReason, Membership, Refusal, SubscribeRequest};
use sse_gateway_metrics::StreamPath;
use sse_gateway_routes::{RouteMatch, Target};
use sse_gateway_sinks::{Expiry, MemberIds, MultiItem, MultiQueue, WRITE_TIMEOUT};
use tokio::sync::watch;

use crate::services::access::{self, Admitted};
use crate::services::{client_stream, fanout, responses};
use crate::settings;
use crate::state::AppState;

/// The query parameter naming a member.
const TOPIC_PARAM: &str = "topic";

/// About how many bytes a multi-topic stream writes at once.
const PIECE: usize = 64 * 1024;

/// One requested member, once resolved.
struct Member {
    /// As requested (reported back in-band).
    path: String,
    outcome: Outcome,
}

enum Outcome {
    /// Admitted: subscribed below.
    Admitted {
        route: Arc<str>,
        topic: String,
        admitted: Admitted,
        client_queue: usize,
        upstream: Arc<sse_gateway_upstream::UpstreamSettings>,
        settings: Arc<sse_gateway_hub::TopicSettings>,
    },
    /// Refused before subscribing: why, and the status a lone member gets.
    Refused { reason: &'static str, status: u16 },
}

/// Answers a request for the multi-topic endpoint.
pub(crate) async fn handle(state: &AppState, session: &mut Session, multi: &MultiConfig) {
    let method = session.req_header().method.clone();
    if method != Method::GET && method != Method::HEAD {
        let allow = [("allow", "GET, HEAD")];
        return responses::text(session, 405, &allow, "method not allowed\n").await;
    }
    let paths = match requested(session.req_header().uri.query(), multi.max_topics) {
        Ok(paths) => paths,
        Err(body) => return responses::text(session, 400, &[], body).await,
    };
    let Some(hub) = state.hub() else {
        return responses::text(session, 503, &[("retry-after", "1")], "starting\n").await;
    };
    let headers = session.req_header().headers.clone();
    let mut members: Vec<Member> = paths
        .into_iter()
        .map(|path| resolve(state, &headers, path))
        .collect();
    if named_twice(&members) {
        return responses::text(session, 400, &[], "a topic is named twice\n").await;
    }
    one_cors_answer(&mut members);
    if method == Method::HEAD {
        // The header alone, without subscribing (a HEAD opens no upstream).
        let admitted = members.iter().find_map(|m| match &m.outcome {
            Outcome::Admitted { admitted, .. } => Some(admitted.cors.clone()),
            Outcome::Refused { .. } => None,
        });
        let Some(cors) = admitted else {
            let status = members.iter().find_map(|m| match m.outcome {
                Outcome::Refused { status, .. } => Some(status),
                Outcome::Admitted { .. } => None,
            });
            return none_subscribed(session, status.unwrap_or(404)).await;
        };
        let Ok(mut header) = client_stream::stream_header() else {
            return;
        };
        access::apply(&mut header, &cors);
        let _ = session.write_response_header(header, true).await;
        return;
    }
    let mut ids = fanout::last_event_id(session)
        .and_then(|id| MemberIds::parse(&id, members.len()))
        .unwrap_or_else(|| MemberIds::new(members.len()));
    let limit = members
        .iter()
        .map(|m| match &m.outcome {
            Outcome::Admitted { client_queue, .. } => *client_queue,
            Outcome::Refused { .. } => 0,
        })
        .sum();
    let queue = MultiQueue::new(limit);
    let address = fanout::client_address(session, &state.trusted_proxies);
    // Held for the stream's whole life: one stream in its address's count.
    let _address_slot = match address {
        Some(key) => match state.address_streams.try_open(key) {
            Some(slot) => Some(slot),
            None => {
                let first = members.iter().find_map(|m| match &m.outcome {
                    Outcome::Admitted { admitted, .. } => {
                        plan_of(state, m).map(|plan| (plan, admitted.cors.clone()))
                    }
                    Outcome::Refused { .. } => None,
                });
                let limit = "limits.max_streams_per_address";
                return match first {
                    Some((plan, cors)) => {
                        state.note_refusal("multi", limit, Some(key));
                        fanout::refuse_for_now(session, plan, &cors).await
                    }
                    None => responses::text(session, 404, &[], "not found\n").await,
                };
            }
        },
        None => None,
    };
    let may_open = || match (&state.new_topics, address) {
        (Some(rate), Some(key)) => rate.allow(key),
        _ => true,
    };
    // Subscribe every admitted member; what is refused now is reported.
    let mut memberships: Vec<Option<Membership>> = Vec::with_capacity(members.len());
    let mut refused: Vec<(usize, &'static str, u16)> = Vec::new();
    // The first member refused for now (a limit, the drain), with its CORS
    // headers: answered as a single-topic stream would be if none subscribes.
    let mut busy: Option<(usize, CorsHeaders)> = None;
    let mut cors: Option<CorsHeaders> = None;
    let mut expiry: Option<Expiry> = None;
    for (i, member) in members.iter().enumerate() {
        let Outcome::Admitted {
            route,
            topic,
            admitted,
            upstream,
            settings,
            ..
        } = &member.outcome
        else {
            if let Outcome::Refused { reason, status } = member.outcome {
                refused.push((i, reason, status));
            }
            memberships.push(None);
            continue;
        };
        let request = SubscribeRequest {
            route,
            topic,
            settings,
            last_event_id: ids.get(i),
            may_open: Some(&may_open),
        };
        let upstream = upstream.clone();
        let subscribed = hub.subscribe(request, queue.member(i), move |publisher| {
            sse_gateway_upstream::feed(upstream, publisher)
        });
        match subscribed {
            Ok(membership) => {
                cors.get_or_insert_with(|| admitted.cors.clone());
                if let Some(at) = &admitted.expiry {
                    if expiry.as_ref().is_none_or(|e| at.at() < e.at()) {
                        expiry = Some(at.clone());
                    }
                }
                memberships.push(Some(membership));
            }
            Err(refusal) => {
                if matches!(refusal, Refusal::Limit(_) | Refusal::ShuttingDown) && busy.is_none() {
                    busy = Some((i, admitted.cors.clone()));
                }
                let (reason, status) = match refusal {
                    Refusal::Limit(_) | Refusal::ShuttingDown => ("limit", 503),
                    Refusal::Stopped => ("stopped", 204),
                    Refusal::Upstream { status } => ("upstream", status),
                };
                refused.push((i, reason, status));
                memberships.push(None);
            }
        }
    }
    let live = memberships.iter().filter(|m| m.is_some()).count();
    if live == 0 {
        let status = refused.first().map_or(404, |(_, _, status)| *status);
        if status == 503 {
            if let Some((plan, cors)) =
                busy.and_then(|(i, cors)| plan_of(state, &members[i]).map(|plan| (plan, cors)))
            {
                // As a single-topic stream: a `retry:` the browser follows
                // rather than a 503 it would give up on.
                return fanout::refuse_for_now(session, plan, &cors).await;
            }
        }
        return none_subscribed(session, status).await;
    }
    let cors = cors.unwrap_or_default();
    for (i, membership) in memberships.iter().enumerate() {
        if let (Some(_), Some(plan)) = (membership, plan_of(state, &members[i])) {
            plan.metrics.client_stream_opened(StreamPath::Session);
        }
    }
    let mut opening = BytesMut::new();
    for (i, reason, status) in &refused {
        let data =
            serde_json::json!({ "topic": members[*i].path, "reason": reason, "status": status });
        put_event(&mut opening, "topic_refused", &data.to_string());
    }
    let stream = Stream {
        queue: &queue,
        memberships: &memberships,
        members: &members,
        live,
        drained: false,
    };
    let end = stream
        .serve(
            session,
            &cors,
            opening,
            &mut ids,
            state.drain.signal(),
            expiry.as_ref(),
        )
        .await;
    let last = match end {
        CloseReason::Shutdown => state.drain.final_frame(),
        CloseReason::CredentialsExpired => expiry.map(|e| e.notice().clone()),
        _ => None,
    };
    if let Some(frame) = last {
        let _ = session.write_response_body(Some(frame), false).await;
    }
    tracing::debug!(
        members = members.len(),
        reason = end.as_str(),
        "multi-topic stream ended"
    );
    drop(memberships);
}

/// Answers a stream no member could subscribe to, with the first
/// refusal's status.
async fn none_subscribed(session: &mut Session, status: u16) {
    let body = match status {
        401 => "unauthorized\n",
        403 => "forbidden\n",
        404 => "not found\n",
        503 => "over a limit; try again later\n",
        _ => "no topic could be subscribed\n",
    };
    let headers: &[(&'static str, &str)] = match status {
        401 => &[("www-authenticate", "Bearer")],
        503 => &[("retry-after", "1")],
        _ => &[],
    };
    if status == 204 {
        // The upstream said stop: no body, as on a single-topic stream.
        return responses::send(session, 204, &[], Bytes::new()).await;
    }
    responses::text(session, status, headers, body).await
}

/// Whether two admitted members are the same topic of the same route
/// (however their paths were spelled: `/p/A`, `p/A`, `/p/%41`).
fn named_twice(members: &[Member]) -> bool {
    let keys: Vec<(&str, &str)> = members
        .iter()
        .filter_map(|m| match &m.outcome {
            Outcome::Admitted { route, topic, .. } => Some((&**route, topic.as_str())),
            Outcome::Refused { .. } => None,
        })
        .collect();
    keys.iter().enumerate().any(|(i, k)| keys[..i].contains(k))
}

/// Refuses (as `cors`, 403) every admitted member whose route answers the
/// request's `Origin` otherwise than the first admitted member's does: the
/// stream has one set of CORS headers, and it must not let a page read a
/// member whose own route would not.
fn one_cors_answer(members: &mut [Member]) {
    let answer = |cors: &CorsHeaders| {
        (
            cors.get("access-control-allow-origin").cloned(),
            cors.get("access-control-allow-credentials").cloned(),
        )
    };
    let mut first = None;
    for member in members {
        let Outcome::Admitted { admitted, .. } = &member.outcome else {
            continue;
        };
        let this = answer(&admitted.cors);
        match &first {
            None => first = Some(this),
            Some(first) if *first == this => {}
            Some(_) => {
                member.outcome = Outcome::Refused {
                    reason: "cors",
                    status: 403,
                };
            }
        }
    }
}

/// The members a query names: every `topic` value, at most `max`, none
/// twice. Err: the 400's body.
fn requested(query: Option<&str>, max: usize) -> Result<Vec<String>, &'static str> {
    let paths: Vec<String> = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .filter(|(name, _)| name == TOPIC_PARAM)
        .map(|(_, value)| value.into_owned())
        .take(max.saturating_add(1))
        .collect();
    if paths.is_empty() || paths.iter().any(String::is_empty) {
        return Err("name the topics: ?topic=/route/path&topic=...\n");
    }
    if paths.len() > max {
        return Err("too many topics for one stream (multi.max_topics)\n");
    }
    if paths
        .iter()
        .enumerate()
        .any(|(i, p)| paths[..i].contains(p))
    {
        return Err("a topic is named twice\n");
    }
    Ok(paths)
}

/// Resolves one member: its fan-out route, topic and access.
fn resolve(state: &AppState, headers: &http::HeaderMap, path: String) -> Member {
    let refused = |reason, status| Outcome::Refused { reason, status };
    let full = if path.starts_with('/') {
        path.clone()
    } else {
        format!("/{path}")
    };
    let outcome = match state.routes.match_request(&Method::GET, &full) {
        RouteMatch::Matched(matched) => match &matched.target {
            Target::FanOut {
                route,
                topic,
                upstream_url,
            } => {
                let plan = matched.plan;
                match (
                    access::check_member(headers, &plan.access, topic),
                    url::Url::parse(upstream_url),
                    plan.topic_settings.as_ref(),
                ) {
                    (Err(denied), _, _) => {
                        let reason = match denied.kind() {
                            sse_gateway_access::DenialKind::Cors => "cors",
                            sse_gateway_access::DenialKind::Auth => "auth",
                        };
                        refused(reason, denied.status())
                    }
                    (Ok(admitted), Ok(url), Some(settings)) => Outcome::Admitted {
                        route: Arc::from(matched.route.name.as_str()),
                        topic: topic.clone(),
                        admitted,
                        client_queue: settings.client_queue,
                        upstream: settings::upstream_settings(
                            &route.settings,
                            &route.upstream,
                            url,
                        ),
                        settings: settings.clone(),
                    },
                    _ => refused("upstream", 502),
                }
            }
            Target::Proxy { .. } => refused("not_found", 404),
        },
        RouteMatch::NotFound | RouteMatch::MethodNotAllowed { .. } => refused("not_found", 404),
    };
    Member { path, outcome }
}

/// The plan of an admitted member's route.
fn plan_of<'a>(state: &'a AppState, member: &Member) -> Option<&'a crate::state::RoutePlan> {
    let full = if member.path.starts_with('/') {
        member.path.clone()
    } else {
        format!("/{}", member.path)
    };
    match state.routes.match_request(&Method::GET, &full) {
        RouteMatch::Matched(matched) => Some(matched.plan),
        _ => None,
    }
}

/// A gateway-made event (no id).
fn put_event(out: &mut BytesMut, event_type: &str, data: &str) {
    out.put_slice(format!("event: {event_type}\ndata: {data}\n\n").as_bytes());
}

/// The running stream.
struct Stream<'a> {
    queue: &'a MultiQueue,
    memberships: &'a [Option<Membership>],
    members: &'a [Member],
    /// Members still subscribed.
    live: usize,
    /// A member was closed by the drain (the stream ends as drained).
    drained: bool,
}

impl Stream<'_> {
    /// Writes the header and then what the members deliver until the
    /// stream ends; returns why.
    async fn serve(
        mut self,
        session: &mut Session,
        cors: &CorsHeaders,
        opening: BytesMut,
        ids: &mut MemberIds,
        mut drained: watch::Receiver<bool>,
        expiry: Option<&Expiry>,
    ) -> CloseReason {
        session.set_write_timeout(Some(WRITE_TIMEOUT));
        let Ok(mut header) = client_stream::stream_header() else {
            return CloseReason::WriteFailed;
        };
        access::apply(&mut header, cors);
        if session.write_response_header(header, false).await.is_err() {
            return CloseReason::WriteFailed;
        }
        let mut first = opening;
        if first.is_empty() {
            first.put_slice(b":\n");
        }
        if session
            .write_response_body(Some(first.freeze()), false)
            .await
            .is_err()
        {
            return CloseReason::WriteFailed;
        }
        if *drained.borrow() {
            return CloseReason::Shutdown;
        }
        let expires = access::expiry(expiry);
        tokio::pin!(expires);
        let mut batch = Vec::new();
        loop {
            let next = tokio::select! {
                biased;
                next = self.queue.next_batch(&mut batch) => next,
                _gone = session.read_body_or_idle(true) => return CloseReason::ClientClosed,
                _signal = drained.changed() => return CloseReason::Shutdown,
                () = &mut expires => return CloseReason::CredentialsExpired,
            };
            if let Err(reason) = next {
                return reason;
            }
            // Written in pieces of about `PIECE` bytes: every event grows by
            // its composite id, so a whole batch could be far larger than
            // the bytes the queue bounds.
            let mut at = 0;
            while at < batch.len() {
                let (out, taken) = self.render(&batch[at..], ids);
                if !out.is_empty() && session.write_response_body(Some(out), false).await.is_err() {
                    return CloseReason::WriteFailed;
                }
                self.record(&batch[at..at + taken]);
                at += taken;
            }
            batch.clear();
            if self.drained {
                return CloseReason::Shutdown;
            }
            if self.live == 0 {
                return CloseReason::UpstreamStopped;
            }
        }
    }

    /// The bytes of the first items of `batch`, up to about [`PIECE`]
    /// bytes (at least one item), and how many items they are.
    fn render(&mut self, batch: &[MultiItem], ids: &mut MemberIds) -> (Bytes, usize) {
        let mut out = BytesMut::new();
        let mut taken = 0;
        for item in batch {
            if out.len() >= PIECE {
                break;
            }
            taken += 1;
            match *item {
                MultiItem::Delivery {
                    member,
                    ref delivery,
                } => ids.rewrite(member, delivery, &mut out),
                MultiItem::Ended { member, reason } => {
                    self.live = self.live.saturating_sub(1);
                    if reason == CloseReason::Shutdown {
                        // The gateway drains: the stream ends with its
                        // jittered retry, not a note per member.
                        self.drained = true;
                        continue;
                    }
                    let topic = self.members.get(member).map_or("", |m| m.path.as_str());
                    let data = serde_json::json!({ "topic": topic, "reason": reason.as_str() });
                    put_event(&mut out, "topic_end", &data.to_string());
                }
            }
        }
        (out.freeze(), taken)
    }

    /// Records the deliveries of `written` in their members' metrics.
    fn record(&self, written: &[MultiItem]) {
        for item in written {
            if let MultiItem::Delivery { member, delivery } = item {
                if let Some(Some(membership)) = self.memberships.get(*member) {
                    membership.record_written(std::iter::once(delivery));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_from_the_query() {
        assert_eq!(
            requested(Some("topic=/a/1&x=2&topic=b%2F2"), 8),
            Ok(vec!["/a/1".to_owned(), "b/2".to_owned()])
        );
        assert!(requested(None, 8).is_err());
        assert!(requested(Some("topic="), 8).is_err());
        assert!(requested(Some("topic=/a&topic=/a"), 8).is_err());
        assert!(requested(Some("topic=/a&topic=/b&topic=/c"), 2).is_err());
    }
}
