//! [`probe`]: what `sse-gateway doctor URL` runs. It connects to an upstream
//! exactly as a topic's feed would (the same request, connector, TLS and
//! codec), listens for a while, reconnects with the last id it saw, and
//! reports in plain words what would break behind the gateway.
//!
//! | check | a problem ([`Verdict::Fail`]) when | a warning when |
//! | --- | --- | --- |
//! | answer | not 200 `text/event-stream` (204 stops a topic; 401/403/404/410 are passed to clients; others are retried) | |
//! | encoding | the body is compressed (the gateway parses it as is) | |
//! | events | | none arrived while listening (nothing else could be checked) |
//! | buffering | | the first event took long, or events come in bursts after silence |
//! | ids | | events without `id` (clients cannot resume); an id seen twice; numeric ids going back |
//! | `Last-Event-ID` | a reconnect with the last id starts over, repeats events, or skips ahead | |
//! | `retry:` and heartbeats | | (reported as seen) |
//! | CORS | | the upstream sets CORS headers (the gateway answers clients itself) |

use std::fmt;
use std::time::{Duration, Instant};

use pingora::connectors::http::Connector;
use pingora::protocols::http::client::HttpSession;
use sse_gateway_codec::{Decoder, Item};

use crate::request::Target;
use crate::session::{open, Answer};
use crate::{UpstreamError, UpstreamSettings};

/// What to probe and for how long.
#[derive(Debug, Clone)]
pub struct ProbeSettings {
    /// The upstream, as a route would configure it.
    pub upstream: UpstreamSettings,
    /// How long to listen on the first connection at most.
    pub listen: Duration,
    /// Events after which the first connection is closed early.
    pub events: usize,
}

/// How one check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Fine behind the gateway.
    Ok,
    /// Works, but worth knowing.
    Warn,
    /// Something breaks behind the gateway.
    Fail,
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// How it came out.
    pub verdict: Verdict,
    /// What was checked (`answer`, `ids`, …).
    pub check: &'static str,
    /// What was seen and what it means, in plain words.
    pub detail: String,
}

/// Everything [`probe`] found, in the order it was checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProbeReport {
    /// The findings.
    pub findings: Vec<Finding>,
}

/// What one connection showed.
#[derive(Debug, Default)]
struct Listened {
    /// Each event's id (`None`: the block set none) and when it arrived.
    events: Vec<(Option<String>, Duration)>,
    comments: usize,
    retry: Option<u64>,
    /// The longest silence followed by several events in one read.
    burst: Option<(Duration, usize)>,
    dropped: usize,
    end: Option<UpstreamError>,
}

// === impl ProbeReport ===

impl ProbeReport {
    /// Whether a check failed (the doctor's exit status is then non-zero).
    pub fn failed(&self) -> bool {
        self.findings.iter().any(|f| f.verdict == Verdict::Fail)
    }

    fn push(&mut self, verdict: Verdict, check: &'static str, detail: impl Into<String>) {
        self.findings.push(Finding {
            verdict,
            check,
            detail: detail.into(),
        });
    }
}

impl fmt::Display for ProbeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for finding in &self.findings {
            let verdict = match finding.verdict {
                Verdict::Ok => "ok  ",
                Verdict::Warn => "warn",
                Verdict::Fail => "FAIL",
            };
            writeln!(f, "{verdict}  {:<14} {}", finding.check, finding.detail)?;
        }
        let count = |v| self.findings.iter().filter(|f| f.verdict == v).count();
        let (fails, warns) = (count(Verdict::Fail), count(Verdict::Warn));
        match fails {
            0 => writeln!(f, "no problem found ({warns} warning(s))"),
            n => writeln!(f, "{n} problem(s), {warns} warning(s)"),
        }
    }
}

/// Probes the upstream. Never panics on anything the network sends; every
/// wait is bounded: each answer by the connect and idle timeouts, each
/// listening by `settings.listen`.
pub async fn probe(settings: &ProbeSettings) -> ProbeReport {
    let mut report = ProbeReport::default();
    let upstream = &settings.upstream;
    let target = match Target::from_url(&upstream.url) {
        Ok(target) => target,
        Err(e) => {
            report.push(Verdict::Fail, "url", e.to_string());
            return report;
        }
    };
    let connector = Connector::new(None);
    let started = Instant::now();
    let Some(session) = answer(&mut report, &connector, &target, upstream, None).await else {
        return report;
    };
    let head_after = started.elapsed();
    headers(&mut report, &session, head_after);
    let first = listen(session, upstream, settings.listen, settings.events).await;
    events(&mut report, &first, settings.listen);
    let Some(last_id) = first.events.iter().rev().find_map(|(id, _)| id.clone()) else {
        if !first.events.is_empty() {
            report.push(
                Verdict::Warn,
                "Last-Event-ID",
                "not checked: no event carried an id",
            );
        }
        return report;
    };
    let again = answer(&mut report, &connector, &target, upstream, Some(&last_id)).await;
    let Some(session) = again else {
        return report;
    };
    let resumed = listen(session, upstream, settings.listen, 1).await;
    resume(&mut report, &first, &last_id, &resumed);
    report
}

/// Opens a connection; reports the answer when it is not a stream.
async fn answer(
    report: &mut ProbeReport,
    connector: &Connector,
    target: &Target,
    upstream: &UpstreamSettings,
    last_event_id: Option<&str>,
) -> Option<Box<HttpSession>> {
    let again = last_event_id.map_or(String::new(), |id| format!(" (with Last-Event-ID {id:?})"));
    // The head's reads each wait up to the idle timeout: bound the whole answer.
    let bound = upstream.connect_timeout + upstream.idle_timeout.unwrap_or(Duration::from_secs(30));
    let opened = tokio::time::timeout(bound, open(connector, target, upstream, last_event_id))
        .await
        .unwrap_or_else(|_| {
            Err(UpstreamError::Timeout(format!(
                "no answer within {}",
                show(bound)
            )))
        });
    match opened {
        Ok(Answer::Stream(session)) => Some(session),
        Ok(Answer::Stop) => {
            report.push(
                Verdict::Fail,
                "answer",
                format!("204 No Content{again}: the gateway stops the topic and its clients stop reconnecting"),
            );
            None
        }
        Err(UpstreamError::Status(status)) => {
            let what = match status {
                401 | 403 | 404 | 410 => {
                    "the gateway passes it to the topic's clients, and EventSource gives up"
                }
                _ => "the gateway retries it with backoff while its clients wait",
            };
            report.push(
                Verdict::Fail,
                "answer",
                format!("HTTP {status}{again}: {what}"),
            );
            None
        }
        Err(UpstreamError::ContentType(content_type)) => {
            report.push(
                Verdict::Fail,
                "answer",
                format!("200 with Content-Type {content_type:?}, not text/event-stream: the gateway answers its clients 502"),
            );
            None
        }
        Err(e) => {
            report.push(Verdict::Fail, "answer", format!("{e}{again}"));
            None
        }
    }
}

/// The response head of the first connection.
fn headers(report: &mut ProbeReport, session: &HttpSession, after: Duration) {
    let Some(head) = session.response_header() else {
        return;
    };
    report.push(
        Verdict::Ok,
        "answer",
        format!("200 text/event-stream after {}", show(after)),
    );
    let encoding = head
        .headers
        .get("content-encoding")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .filter(|v| !v.eq_ignore_ascii_case("identity"));
    if let Some(encoding) = encoding {
        report.push(
            Verdict::Fail,
            "encoding",
            format!("the body is {encoding}-encoded although no encoding was asked for: the gateway parses it as is and finds no events"),
        );
    }
    let cors: Vec<&str> = head
        .headers
        .keys()
        .map(|name| name.as_str())
        .filter(|name| name.starts_with("access-control-"))
        .collect();
    if !cors.is_empty() {
        report.push(
            Verdict::Warn,
            "cors",
            format!("the upstream sets {}: the gateway does not pass them on; configure `cors` on the route", cors.join(", ")),
        );
    }
}

/// Reads the stream for at most `listen`, or until `events` events came.
async fn listen(
    mut session: Box<HttpSession>,
    upstream: &UpstreamSettings,
    listen: Duration,
    events: usize,
) -> Listened {
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + listen;
    let mut decoder = Decoder::new(upstream.limits);
    let mut seen = Listened::default();
    let mut last_read = Duration::ZERO;
    while seen.events.len() < events {
        let chunk = match tokio::time::timeout_at(deadline, session.read_response_body()).await {
            Err(_elapsed) => break,
            Ok(Ok(Some(chunk))) => chunk,
            Ok(Ok(None)) => {
                seen.end = Some(UpstreamError::Closed(
                    "the upstream ended the stream".into(),
                ));
                break;
            }
            Ok(Err(e)) => {
                seen.end = Some(UpstreamError::Closed(e.to_string()));
                break;
            }
        };
        let at = started.elapsed();
        let before = seen.events.len();
        for item in decoder.decode(chunk) {
            match item {
                Item::Event(event) => seen.events.push((event.id().map(str::to_owned), at)),
                Item::IdUpdate(_) => {}
                Item::Comment(_) => seen.comments += 1,
                Item::Retry(ms) => seen.retry = Some(ms),
                Item::Error(_) => seen.dropped += 1,
            }
        }
        let came = seen.events.len() - before;
        let silence = at.saturating_sub(last_read);
        if came >= 3
            && silence >= Duration::from_secs(1)
            && seen.burst.is_none_or(|(s, _)| s < silence)
        {
            seen.burst = Some((silence, came));
        }
        last_read = at;
    }
    seen
}

/// What the first connection showed.
fn events(report: &mut ProbeReport, seen: &Listened, listen: Duration) {
    let Some((_, first_at)) = seen.events.first() else {
        let end = seen
            .end
            .as_ref()
            .map_or(String::new(), |e| format!(" ({e})"));
        report.push(
            Verdict::Warn,
            "events",
            format!(
                "no event in {}{end}: ids, Last-Event-ID and buffering were not checked",
                show(listen)
            ),
        );
        return;
    };
    report.push(
        Verdict::Ok,
        "events",
        format!(
            "{} event(s), the first after {}",
            seen.events.len(),
            show(*first_at)
        ),
    );
    if *first_at >= Duration::from_secs(3) {
        report.push(
            Verdict::Warn,
            "buffering",
            format!("the first event came {} after the answer: if the source had one sooner, something on the way buffers the stream (nginx: `X-Accel-Buffering: no`; no compression)", show(*first_at)),
        );
    }
    if let Some((silence, count)) = seen.burst {
        report.push(
            Verdict::Warn,
            "buffering",
            format!("{count} events arrived together after {} of silence: the stream looks buffered on the way", show(silence)),
        );
    }
    if seen.dropped > 0 {
        report.push(
            Verdict::Warn,
            "size",
            format!(
                "{} event(s) over the size limit were dropped (the route's max_event_size)",
                seen.dropped
            ),
        );
    }
    let ids: Vec<&str> = seen
        .events
        .iter()
        .filter_map(|(id, _)| id.as_deref())
        .collect();
    let without = seen.events.len() - ids.len();
    if without > 0 {
        report.push(
            Verdict::Warn,
            "ids",
            format!("{without} of {} event(s) carry no `id`: a client that reconnects cannot resume, and neither can the gateway", seen.events.len()),
        );
    }
    let repeated = ids
        .iter()
        .enumerate()
        .find(|(i, id)| ids[..*i].contains(id));
    if let Some((_, id)) = repeated {
        report.push(
            Verdict::Warn,
            "ids",
            format!("id {id:?} came twice: a client resuming from it may miss or repeat events"),
        );
    }
    let numbers: Option<Vec<u64>> = ids.iter().map(|id| id.parse().ok()).collect();
    match numbers {
        Some(numbers) if numbers.windows(2).any(|w| w[1] < w[0]) => report.push(
            Verdict::Warn,
            "ids",
            "numeric ids go back: replay works by exact id, but check the source's order",
        ),
        _ if without == 0 && repeated.is_none() => {
            report.push(Verdict::Ok, "ids", "every event has an id, none repeated");
        }
        _ => {}
    }
    match seen.retry {
        Some(ms) => report.push(
            Verdict::Ok,
            "retry",
            format!("advises retry: {ms} ms (passed on to clients; the gateway's own reconnects wait at least that, up to its backoff maximum)"),
        ),
        None => report.push(Verdict::Ok, "retry", "no retry: advice (the route's client_retry is sent)"),
    }
    match seen.comments {
        0 => report.push(
            Verdict::Ok,
            "heartbeats",
            "no comment seen; the gateway reconnects an upstream silent for upstream_idle_timeout (45 s by default), so a quiet source should send a comment more often",
        ),
        n => report.push(Verdict::Ok, "heartbeats", format!("{n} comment(s) seen (they keep the gateway's idle timer quiet)")),
    }
}

/// The reconnect with `Last-Event-ID: last_id`.
fn resume(report: &mut ProbeReport, first: &Listened, last_id: &str, resumed: &Listened) {
    let Some((next, _)) = resumed.events.first() else {
        report.push(
            Verdict::Warn,
            "Last-Event-ID",
            format!("reconnected with {last_id:?}, but no event came to check"),
        );
        return;
    };
    let Some(next) = next.as_deref() else {
        report.push(
            Verdict::Warn,
            "Last-Event-ID",
            format!("reconnected with {last_id:?}; the next event has no id"),
        );
        return;
    };
    let seen: Vec<&str> = first
        .events
        .iter()
        .filter_map(|(id, _)| id.as_deref())
        .collect();
    let first_id = seen.first().copied().unwrap_or_default();
    let numbers = (last_id.parse::<u64>(), next.parse::<u64>());
    let consecutive = seen
        .iter()
        .map(|id| id.parse::<u64>())
        .collect::<Result<Vec<_>, _>>()
        .is_ok_and(|n| n.len() >= 2 && n.windows(2).all(|w| w[0].checked_add(1) == Some(w[1])));
    let (verdict, detail) = match numbers {
        _ if next == first_id && seen.len() > 1 => (
            Verdict::Fail,
            format!("reconnected with {last_id:?} and the stream started over at {next:?}: the upstream ignores Last-Event-ID, so each of the gateway's reconnects repeats events"),
        ),
        _ if seen.contains(&next) => (
            Verdict::Fail,
            format!("reconnected with {last_id:?} and got {next:?} again: events are repeated after a reconnect"),
        ),
        (Ok(last), Ok(n)) if n <= last => (
            Verdict::Fail,
            format!("reconnected with {last_id:?} and got the older id {next:?}: events are repeated after a reconnect"),
        ),
        (Ok(last), Ok(n)) if consecutive && n > last + 1 => (
            Verdict::Fail,
            format!("reconnected with {last_id:?} and the next id was {next:?}: the events between were lost (the upstream does not replay from Last-Event-ID)"),
        ),
        (Ok(_), Ok(_)) => (
            Verdict::Ok,
            format!("reconnected with {last_id:?}; the stream went on at {next:?}"),
        ),
        _ => (
            Verdict::Ok,
            format!("reconnected with {last_id:?}; the next id, {next:?}, is a new one (order not checked: ids are not numbers)"),
        ),
    };
    report.push(verdict, "Last-Event-ID", detail);
}

/// A duration for people: `850 ms`, `2.4 s`.
fn show(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}
