//! Subscribers that behave like a browser's `EventSource` which the app
//! re-creates when it fails: on a stream end they reconnect after the advised
//! `retry:` (capped) with `Last-Event-ID` = the last id received; on a
//! non-200 answer they record the status and try again after a delay. Each
//! keeps the set of ids it received, and at the end [`run`] reports what was
//! lost (ids missing between the first and the last received, leaving out
//! the oversize events the gateway drops by design), duplicated, corrupt or
//! unparsable, how often each reconnected and which statuses it saw.
//!
//! Every wait is bounded: a connection and its response head by
//! `connect_timeout`, a silent stream by `stale_after`, a pause before
//! reconnecting by `retry_cap`, the whole run by `duration`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use sse_gateway_codec::{Decoder, Item};
use tokio::time::{sleep_until, timeout_at, Instant};

use super::ids::{count, Insert};
use super::{IdSet, Plan};
use crate::{check_payload, connect_from};

/// How the subscribers run.
#[derive(Debug, Clone)]
pub struct Config {
    /// The gateway.
    pub target: SocketAddr,
    /// Request path; `{topic}` is replaced by the topic number.
    pub path: String,
    /// Subscribers in all; subscriber `i` reads topic `i % topics`.
    pub subscribers: u64,
    /// Topics.
    pub topics: u64,
    /// Distinct 127.x.y.z source addresses to spread connections over.
    pub sources: u64,
    /// How long to run.
    pub duration: Duration,
    /// The origin's plan (event times, oversize events).
    pub plan: Plan,
    /// The longest pause before reconnecting, whatever was advised.
    pub retry_cap: Duration,
    /// The pause before reconnecting when nothing was advised, and after a
    /// refusal or a failed connection (jittered by up to +50%).
    pub default_retry: Duration,
    /// Bound on connecting and on waiting for the response head.
    pub connect_timeout: Duration,
    /// A stream that sends nothing (not even a heartbeat) this long is
    /// abandoned and reconnected.
    pub stale_after: Duration,
    /// Keep at most this many missing or duplicate ranges per subscriber for
    /// the details.
    pub detail_ranges: usize,
}

/// What one subscriber saw.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    /// Subscriber number.
    pub index: u64,
    /// Its topic.
    pub topic: String,
    /// Ids received.
    pub ids: IdSet,
    /// The `Last-Event-ID` to resume from (the last id received).
    pub last_id: String,
    /// The last `retry:` advised, in milliseconds.
    pub retry_ms: Option<u64>,
    /// Events received (all, duplicates included).
    pub events: u64,
    /// Events received that had been received before.
    pub duplicates: u64,
    /// Duplicate ids, as ranges, up to `detail_ranges`.
    pub duplicate_ranges: Vec<(u64, u64)>,
    /// Events whose checksum, topic or id did not match their payload.
    pub corrupt: u64,
    /// Events whose data is not a payload at all, and decoder errors.
    pub unparsable: u64,
    /// Events of the gateway's `gap` type (it knows it could not replay).
    pub gap_events: u64,
    /// Oversize events that arrived (the gateway should have dropped them).
    pub oversize_delivered: u64,
    /// Ids too far from the others to track.
    pub wild: u64,
    /// Connection attempts after the first.
    pub reconnects: u64,
    /// Response statuses, by code.
    pub statuses: BTreeMap<u16, u64>,
    /// Connections that failed before a response head (refused, reset).
    pub connect_errors: u64,
    /// Connections or response heads that took longer than `connect_timeout`.
    pub timeouts: u64,
    /// Streams abandoned after `stale_after` of silence.
    pub stale: u64,
    /// 200 streams that ended without a single event.
    pub empty_streams: u64,
}

/// How one connection ended.
enum Outcome {
    /// A 200 stream ended (or broke, or went stale).
    Ended,
    /// A non-200 answer; its `Retry-After` in seconds, if any.
    Refused(Option<u64>),
    /// No answer (connect error or timeout).
    Failed,
    /// The run is over.
    Deadline,
}

/// Runs `config.subscribers` subscribers until `config.duration` has passed
/// and returns each one's tally, in subscriber order.
pub async fn run(config: Config) -> Vec<Tally> {
    let config = Arc::new(config);
    let deadline = Instant::now() + config.duration;
    let mut tasks = Vec::new();
    for i in 0..config.subscribers {
        tasks.push(tokio::spawn(subscriber(i, config.clone(), deadline)));
        if i % 100 == 99 {
            tokio::task::yield_now().await;
        }
    }
    let mut tallies = Vec::with_capacity(tasks.len());
    for task in tasks {
        // Each task stops at the deadline by itself; the bound is a guard.
        if let Ok(Ok(tally)) = timeout_at(deadline + Duration::from_secs(10), task).await {
            tallies.push(tally);
        }
    }
    tallies
}

/// A small xorshift generator for jitter (no need for a real one here).
struct Jitter(u64);

impl Jitter {
    /// A delay in `[base, 1.5 × base]`.
    fn spread(&mut self, base: Duration) -> Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        base + base.mul_f64((self.0 % 1000) as f64 / 2000.0)
    }
}

async fn subscriber(i: u64, config: Arc<Config>, deadline: Instant) -> Tally {
    let mut tally = Tally {
        index: i,
        topic: (i % config.topics.max(1)).to_string(),
        ..Tally::default()
    };
    let mut jitter = Jitter(0x9e37_79b9_7f4a_7c15 ^ (i + 1).wrapping_mul(0x2545_f491_4f6c_dd1d));
    let mut attempts = 0u64;
    while Instant::now() < deadline {
        if attempts > 0 {
            tally.reconnects += 1;
        }
        attempts += 1;
        let pause = match connection(i, &config, &mut tally, deadline).await {
            Outcome::Deadline => break,
            Outcome::Ended => tally
                .retry_ms
                .map_or(config.default_retry, Duration::from_millis),
            Outcome::Refused(Some(seconds)) => Duration::from_secs(seconds),
            Outcome::Refused(None) | Outcome::Failed => jitter.spread(config.default_retry),
        };
        let pause = pause.min(config.retry_cap);
        sleep_until((Instant::now() + pause).min(deadline)).await;
    }
    tally
}

/// One connection: request, answer, and the stream until it ends.
async fn connection(i: u64, config: &Config, tally: &mut Tally, deadline: Instant) -> Outcome {
    let head_by = (Instant::now() + config.connect_timeout).min(deadline);
    let opened = timeout_at(head_by, async {
        let stream = connect_from(i, config.sources, config.target).await?;
        let (sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        anyhow::Ok((sender, connection))
    })
    .await;
    let (mut sender, connection) = match opened {
        Ok(Ok(pair)) => pair,
        Ok(Err(_)) => {
            tally.connect_errors += 1;
            return Outcome::Failed;
        }
        Err(_) if Instant::now() >= deadline => return Outcome::Deadline,
        Err(_) => {
            tally.timeouts += 1;
            return Outcome::Failed;
        }
    };
    let mut connection = std::pin::pin!(connection);
    let path = config.path.replace("{topic}", &tally.topic);
    let mut request = http::Request::get(path)
        .header("host", config.target.to_string())
        .header("accept", "text/event-stream")
        .header("cache-control", "no-cache");
    if !tally.last_id.is_empty() {
        request = request.header("last-event-id", tally.last_id.as_str());
    }
    let Ok(request) = request.body(Empty::<Bytes>::new()) else {
        tally.connect_errors += 1;
        return Outcome::Failed;
    };
    let answer = timeout_at(head_by, async {
        tokio::select! {
            biased;
            _ = &mut connection => None,
            response = sender.send_request(request) => response.ok(),
        }
    })
    .await;
    let response = match answer {
        Ok(Some(response)) => response,
        Ok(None) => {
            tally.connect_errors += 1;
            return Outcome::Failed;
        }
        Err(_) if Instant::now() >= deadline => return Outcome::Deadline,
        Err(_) => {
            tally.timeouts += 1;
            return Outcome::Failed;
        }
    };
    let status = response.status().as_u16();
    *tally.statuses.entry(status).or_default() += 1;
    if status != 200 {
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        return Outcome::Refused(retry_after);
    }
    let events_before = tally.events;
    let mut body = response.into_body();
    let mut decoder = Decoder::default();
    let outcome = loop {
        // One timer per read: the stale bound, or the end of the run.
        let stale_by = Instant::now() + config.stale_after;
        let frame = tokio::select! {
            biased;
            _ = &mut connection => break Outcome::Ended,
            frame = timeout_at(stale_by.min(deadline), body.frame()) => frame,
        };
        let data = match frame {
            Err(_) if Instant::now() >= deadline => break Outcome::Deadline,
            Err(_) => {
                tally.stale += 1;
                break Outcome::Ended;
            }
            Ok(None | Some(Err(_))) => break Outcome::Ended,
            Ok(Some(Ok(frame))) => match frame.into_data() {
                Ok(data) => data,
                Err(_) => continue,
            },
        };
        for item in decoder.decode(data) {
            match item {
                Item::Event(event) => {
                    // As a browser keeps its last event ID across
                    // reconnects: only a block with an `id` field moves it
                    // (this connection's decoder starts empty; a `gap` event
                    // first would otherwise forget the id).
                    if let Some(id) = event.id() {
                        set_last_id(&mut tally.last_id, id);
                    }
                    tally.events += 1;
                    if event.event_type() == "gap" {
                        tally.gap_events += 1;
                        continue;
                    }
                    check_event(config, tally, &event);
                }
                Item::IdUpdate(frame) => {
                    set_last_id(&mut tally.last_id, frame.id().unwrap_or_default());
                }
                Item::Retry(ms) => tally.retry_ms = Some(ms),
                Item::Comment(_) => {}
                Item::Error(_) => tally.unparsable += 1,
            }
        }
    };
    if tally.events == events_before && !matches!(outcome, Outcome::Deadline) {
        tally.empty_streams += 1;
    }
    outcome
}

fn set_last_id(last: &mut String, id: &str) {
    if last != id {
        last.clear();
        last.push_str(id);
    }
}

/// Verifies one event and records its id.
fn check_event(config: &Config, tally: &mut Tally, event: &sse_gateway_codec::Event) {
    let Some(checked) = check_payload(&tally.topic, event.data()) else {
        tally.unparsable += 1;
        return;
    };
    let id_matches = event
        .id()
        .and_then(|id| id.parse::<u64>().ok())
        .is_some_and(|id| id == checked.seq);
    if !checked.intact || !id_matches {
        tally.corrupt += 1;
        return;
    }
    let seq = checked.seq;
    if config.plan.is_oversize(seq) {
        tally.oversize_delivered += 1;
    }
    match tally.ids.insert(seq) {
        Insert::New => {}
        Insert::Duplicate => {
            tally.duplicates += 1;
            if tally.duplicate_ranges.len() < config.detail_ranges
                || tally
                    .duplicate_ranges
                    .last()
                    .is_some_and(|r| r.1 + 1 == seq)
            {
                match tally.duplicate_ranges.last_mut() {
                    Some(range) if range.1 + 1 == seq => range.1 = seq,
                    _ => tally.duplicate_ranges.push((seq, seq)),
                }
            }
        }
        Insert::Wild => tally.wild += 1,
    }
}

/// One subscriber's result, for the details file.
pub fn detail(config: &Config, tally: &Tally, now_micros: u64) -> serde_json::Value {
    let missing = tally.ids.missing(|n| config.plan.is_oversize(n));
    let at = |n: u64| config.plan.offset_ms(config.plan.due_micros(n)) as f64 / 1000.0;
    let ranges = |r: &[(u64, u64)]| -> Vec<serde_json::Value> {
        r.iter()
            .take(config.detail_ranges)
            .map(|&(a, b)| serde_json::json!({"from": a, "to": b, "due_s": [at(a), at(b)]}))
            .collect()
    };
    serde_json::json!({
        "subscriber": tally.index,
        "topic": tally.topic,
        "received": tally.ids.len(),
        "span": tally.ids.span(),
        "lost": count(&missing),
        "lost_ranges": ranges(&missing),
        "duplicates": tally.duplicates,
        "duplicate_ranges": ranges(&tally.duplicate_ranges),
        "behind_at_end": behind(config, tally, now_micros),
        "reconnects": tally.reconnects,
        "statuses": tally.statuses,
    })
}

/// How many events due by `now_micros` (allowing a second for delivery)
/// the subscriber had not reached at the end.
fn behind(config: &Config, tally: &Tally, now_micros: u64) -> u64 {
    let due = config.plan.last_due(now_micros.saturating_sub(1_000_000));
    let last = tally.ids.span().map_or(0, |(_, max)| max);
    due.saturating_sub(last)
}

/// The run's summary: totals, and per subscriber the maximum and how many
/// were affected.
pub fn summary(config: &Config, tallies: &[Tally], now_micros: u64) -> serde_json::Value {
    let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
    let mut lost_by_topic: BTreeMap<String, BTreeMap<(u64, u64), u64>> = BTreeMap::new();
    let (mut lost, mut lost_max, mut lost_subs) = (0u64, 0u64, 0u64);
    let (mut dups, mut dups_max, mut dup_subs) = (0u64, 0u64, 0u64);
    let (mut reconnects, mut reconnects_max) = (0u64, 0u64);
    let (mut behind_max, mut stuck, mut silent) = (0u64, 0u64, 0u64);
    let sum = |f: fn(&Tally) -> u64| tallies.iter().map(f).sum::<u64>();
    let corrupt = sum(|t| t.corrupt);
    let unparsable = sum(|t| t.unparsable);
    let gap_events = sum(|t| t.gap_events);
    let oversize_delivered = sum(|t| t.oversize_delivered);
    let wild = sum(|t| t.wild);
    let events = sum(|t| t.events);
    let received = sum(|t| t.ids.len());
    let connect_errors = sum(|t| t.connect_errors);
    let timeouts = sum(|t| t.timeouts);
    let stale = sum(|t| t.stale);
    let empty_streams = sum(|t| t.empty_streams);
    let stuck_after = (config.plan.rate * 10.0) as u64;
    for tally in tallies {
        for (code, n) in &tally.statuses {
            *statuses.entry(*code).or_default() += n;
        }
        let missing = tally.ids.missing(|n| config.plan.is_oversize(n));
        let missed = count(&missing);
        lost += missed;
        lost_max = lost_max.max(missed);
        lost_subs += u64::from(missed > 0);
        let ranges = lost_by_topic.entry(tally.topic.clone()).or_default();
        for range in missing {
            *ranges.entry(range).or_default() += 1;
        }
        dups += tally.duplicates;
        dups_max = dups_max.max(tally.duplicates);
        dup_subs += u64::from(tally.duplicates > 0);
        reconnects += tally.reconnects;
        reconnects_max = reconnects_max.max(tally.reconnects);
        let behind = behind(config, tally, now_micros);
        behind_max = behind_max.max(behind);
        stuck += u64::from(behind > stuck_after);
        silent += u64::from(tally.ids.is_empty());
    }
    let n = tallies.len().max(1) as f64;
    let at = |id: u64| config.plan.offset_ms(config.plan.due_micros(id)) as f64 / 1000.0;
    // The most common lost ranges, with when they fell due.
    let mut common: Vec<(u64, String, (u64, u64))> = lost_by_topic
        .into_iter()
        .flat_map(|(topic, ranges)| {
            ranges
                .into_iter()
                .map(move |(range, subs)| (subs, topic.clone(), range))
        })
        .collect();
    common.sort_by(|a, b| b.0.cmp(&a.0).then(a.2.cmp(&b.2)));
    let lost_ranges: Vec<serde_json::Value> = common
        .iter()
        .take(12)
        .map(|(subs, topic, (a, b))| {
            serde_json::json!({"topic": topic, "from": a, "to": b,
                "due_s": [at(*a), at(*b)], "subscribers": subs})
        })
        .collect();
    let refusals: u64 = statuses
        .iter()
        .filter(|(code, _)| **code != 200)
        .map(|(_, n)| n)
        .sum();
    serde_json::json!({
        "mode": "chaos",
        "subscribers": config.subscribers,
        "reported": tallies.len(),
        "topics": config.topics,
        "seconds": config.duration.as_secs_f64(),
        "events": events,
        "received": received,
        "lost": lost,
        "lost_max_per_subscriber": lost_max,
        "subscribers_with_loss": lost_subs,
        "duplicates": dups,
        "duplicates_max_per_subscriber": dups_max,
        "subscribers_with_duplicates": dup_subs,
        "reconnects": reconnects,
        "reconnects_per_subscriber": reconnects as f64 / n,
        "reconnects_max_per_subscriber": reconnects_max,
        "statuses": statuses.iter().map(|(c, n)| (c.to_string(), *n)).collect::<BTreeMap<_, _>>(),
        "refusals": refusals,
        "connect_errors": connect_errors,
        "timeouts": timeouts,
        "stale_streams": stale,
        "empty_streams": empty_streams,
        "corrupt": corrupt,
        "unparsable": unparsable,
        "errors": corrupt + unparsable + wild,
        "gap_events": gap_events,
        "oversize_delivered": oversize_delivered,
        "behind_at_end_max": behind_max,
        "subscribers_behind_10s": stuck,
        "subscribers_without_events": silent,
        "lost_ranges": lost_ranges,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config {
            target: SocketAddr::from(([127, 0, 0, 1], 1)),
            path: "/{topic}".into(),
            subscribers: 2,
            topics: 1,
            sources: 1,
            duration: Duration::from_secs(1),
            plan: Plan {
                start_micros: 0,
                rate: 1.0,
                size: 0,
                oversize_size: 0,
                oversize_every: 10,
                schedule: "oversize:0-1000".parse().unwrap(),
            },
            retry_cap: Duration::from_secs(1),
            default_retry: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(1),
            stale_after: Duration::from_secs(1),
            detail_ranges: 20,
        }
    }

    #[test]
    fn the_summary_counts_a_planted_gap_and_duplicate_but_not_oversize_ids() {
        let config = config();
        let mut clean = Tally::default();
        let mut damaged = Tally {
            index: 1,
            ..Tally::default()
        };
        for id in 1..=100u64 {
            if !id.is_multiple_of(10) {
                clean.ids.insert(id);
                if !(41..=43).contains(&id) {
                    damaged.ids.insert(id);
                }
            }
        }
        damaged.duplicates = 1;
        damaged.statuses.insert(404, 2);
        damaged.statuses.insert(200, 3);
        // Event 99 was due at 99 s; "now" is 100.5 s (a second allowed for
        // delivery), and event 100, due at 100 s, is not due yet.
        let summary = summary(&config, &[clean, damaged], 100_500_000);
        assert_eq!(summary["lost"], 3, "{summary}");
        assert_eq!(summary["subscribers_with_loss"], 1);
        assert_eq!(summary["duplicates"], 1);
        assert_eq!(summary["refusals"], 2);
        assert_eq!(summary["statuses"]["200"], 3);
        assert_eq!(summary["behind_at_end_max"], 0, "{summary}");
        assert_eq!(summary["lost_ranges"][0]["from"], 41);
        assert_eq!(summary["lost_ranges"][0]["to"], 43);
    }
}
