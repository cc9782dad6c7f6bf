//! A benchmark origin: an SSE server emitting numbered, timestamped events.
//!
//! `GET /stream/{topic}` streams topic `{topic}`: `rate` events per second of
//! about `size` bytes of data, ids counting from 1, honouring `Last-Event-ID`
//! from a history of the last 10,000 events. With `--spread`, topics tick at
//! evenly spread phases of the period; otherwise all topics emit on one tick.
//! Prints `listening on ADDR` when ready.
//!
//! `GET /grip/{topic}` answers as a GRIP handler behind Pushpin: an SSE
//! response with `Grip-Hold: stream` and `Grip-Channel: {topic}`, so that
//! Pushpin holds the connection and takes the events from its publish API.
//!
//! With `--publish-nchan URL` (`{topic}` is replaced by the topic name) every
//! event is also POSTed to Nchan's publisher location; with
//! `--publish-pushpin URL` to Pushpin's publish API (`http-stream` items).
//! `--topics N` creates topics `0..N` at start, so that they emit (and
//! publish) without a subscriber on the origin.
#![allow(
    clippy::print_stdout,
    reason = "a command-line tool reporting its address"
)]

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use clap::Parser;
use http_body_util::{channel::Channel, combinators::BoxBody, BodyExt, Full};
use hyper::{body::Frame, server::conn::http1, service::service_fn, Request, Response};
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use sse_gateway_benches::publish::Publisher;
use sse_gateway_benches::{payload, unix_micros};
use tokio::sync::broadcast;

const HISTORY: usize = 10_000;

#[derive(Parser, Debug)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9000")]
    listen: SocketAddr,
    /// Events per second per topic.
    #[arg(long, default_value_t = 50.0)]
    rate: f64,
    /// Data bytes per event.
    #[arg(long, default_value_t = 256)]
    size: usize,
    /// Spread topics over the period instead of emitting all on one tick.
    #[arg(long)]
    spread: bool,
    /// Topics `0..N` created at start (they emit without subscribers).
    #[arg(long, default_value_t = 0)]
    topics: u64,
    /// POST every event to this Nchan publisher URL (`{topic}` replaced).
    #[arg(long)]
    publish_nchan: Option<String>,
    /// POST every event to this Pushpin publish URL (e.g. `http://127.0.0.1:5561/publish/`).
    #[arg(long)]
    publish_pushpin: Option<String>,
    /// Publishing connections (topics are assigned to one each, keeping order).
    #[arg(long, default_value_t = 8)]
    publish_connections: usize,
}

struct Topic {
    name: String,
    live: broadcast::Sender<(u64, Bytes)>,
    history: Mutex<VecDeque<(u64, Bytes)>>,
    seq: Mutex<u64>,
}

type Topics = Arc<Mutex<HashMap<String, Arc<Topic>>>>;
type Body = BoxBody<Bytes, Infallible>;

impl Topic {
    fn emit(&self, size: usize, publisher: &Publisher) {
        let seq = {
            let mut seq = self.seq.lock();
            *seq += 1;
            *seq
        };
        let data = payload(&self.name, seq, unix_micros(), size);
        publisher.publish(&self.name, seq, &data);
        let frame = Bytes::from(format!("id: {seq}\ndata: {data}\n\n"));
        {
            let mut history = self.history.lock();
            if history.len() == HISTORY {
                history.pop_front();
            }
            history.push_back((seq, frame.clone()));
        }
        let _ = self.live.send((seq, frame));
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let topics: Topics = Arc::default();
    for i in 0..args.topics {
        topic(&topics, i.to_string());
    }
    let publisher = Publisher::start(
        args.publish_nchan.clone(),
        args.publish_pushpin.clone(),
        args.publish_connections,
    );
    let period = Duration::from_secs_f64(1.0 / args.rate.max(0.001));
    tokio::spawn(tick(
        topics.clone(),
        period,
        args.size,
        args.spread,
        publisher,
    ));
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    println!("listening on {}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let topics = topics.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| serve(request, topics.clone()));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Emits every topic's events: all on one tick, or spread over the period.
async fn tick(topics: Topics, period: Duration, size: usize, spread: bool, publisher: Publisher) {
    // Ticks stay on the schedule `start + n × period` (tokio's default,
    // `Burst`): a late tick is caught up at once. (`Delay` restarted the
    // period from each late tick; with the timer's 1 ms granularity a 5 ms
    // period drifted to ≈ 5.2 ms, and scenario C's origin sent ≈ 97% of its
    // nominal rate, which every system was then measured against.)
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    loop {
        interval.tick().await;
        let all: Vec<Arc<Topic>> = topics.lock().values().cloned().collect();
        if !spread || all.len() < 2 {
            all.iter().for_each(|t| t.emit(size, &publisher));
            continue;
        }
        // Deadlines from the tick, not a sleep per topic: timers have a
        // 1 ms granularity, and sleeping `step` each would stretch the period.
        let step = period / u32::try_from(all.len()).unwrap_or(u32::MAX);
        let start = tokio::time::Instant::now();
        for (i, topic) in all.iter().enumerate() {
            tokio::time::sleep_until(start + step * u32::try_from(i).unwrap_or(u32::MAX)).await;
            topic.emit(size, &publisher);
        }
    }
}

async fn serve(
    request: Request<hyper::body::Incoming>,
    topics: Topics,
) -> Result<Response<Body>, Infallible> {
    let path = request.uri().path();
    if let Some(name) = path.strip_prefix("/grip/") {
        return Ok(grip_hold(name));
    }
    let Some(name) = path.strip_prefix("/stream/").map(str::to_owned) else {
        let mut response = Response::new(Full::new(Bytes::from_static(b"not found")).boxed());
        *response.status_mut() = http::StatusCode::NOT_FOUND;
        return Ok(response);
    };
    let topic = topic(&topics, name);
    let last: Option<u64> = request
        .headers()
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    // Subscribe before reading the history, then skip what the history covered.
    let mut live = topic.live.subscribe();
    let replay: Vec<(u64, Bytes)> = match last {
        Some(last) => topic
            .history
            .lock()
            .iter()
            .filter(|(seq, _)| *seq > last)
            .cloned()
            .collect(),
        None => Vec::new(),
    };
    let (mut sender, body) = Channel::<Bytes, Infallible>::new(64);
    tokio::spawn(async move {
        let mut sent = last.unwrap_or(0);
        for (seq, frame) in replay {
            sent = seq;
            if sender.send(Frame::data(frame)).await.is_err() {
                return;
            }
        }
        while let Ok((seq, frame)) = live.recv().await {
            if seq <= sent && last.is_some() {
                continue;
            }
            if sender.send(Frame::data(frame)).await.is_err() {
                return;
            }
        }
    });
    let mut response = Response::new(body.boxed());
    let headers = response.headers_mut();
    headers.insert(
        "content-type",
        http::HeaderValue::from_static("text/event-stream"),
    );
    headers.insert("cache-control", http::HeaderValue::from_static("no-cache"));
    Ok(response)
}

/// The topic named `name`, created when new.
fn topic(topics: &Topics, name: String) -> Arc<Topic> {
    topics
        .lock()
        .entry(name.clone())
        .or_insert_with(|| {
            Arc::new(Topic {
                name,
                live: broadcast::channel(4096).0,
                history: Mutex::default(),
                seq: Mutex::new(0),
            })
        })
        .clone()
}

/// The GRIP answer for Pushpin: hold the connection as a stream on channel `name`.
fn grip_hold(name: &str) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::new()).boxed());
    let headers = response.headers_mut();
    headers.insert(
        "content-type",
        http::HeaderValue::from_static("text/event-stream"),
    );
    headers.insert("cache-control", http::HeaderValue::from_static("no-cache"));
    headers.insert("grip-hold", http::HeaderValue::from_static("stream"));
    if let Ok(channel) = http::HeaderValue::from_str(name) {
        headers.insert("grip-channel", channel);
    }
    response
}
