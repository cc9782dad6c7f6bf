//! A misbehaving SSE origin for chaos runs (`benches/run-chaos`).
//!
//! `GET /stream/{topic}` streams topic `{topic}`: event `n` (ids from 1) is
//! due at `start + n / rate`, and its data is a pure function of the topic,
//! `n` and that time (see `sse_gateway_benches::chaos::Plan`). So an origin
//! killed and started again with the same `--start-ms` continues the same
//! sequence, and honours `Last-Event-ID` by generating the events after it
//! again (at most the last 10,000 ids); without one a stream starts at the
//! next event due. A comment goes out after a second without an event.
//!
//! Misbehaviours come from windows of time since the start, given with
//! `--schedule` (the same on every restart) or added at run time:
//!
//! * an HTTP status (`404`, `500`, …): requests get that status, and open
//!   streams end at their next event;
//! * `stall`: every stream writes the first half of its next event, then
//!   nothing until the window is over, when it ends the stream;
//! * `oversize`: every `--oversize-every`-th event is `--oversize-size` bytes
//!   (command line only, so that the checker, given the same arguments, knows
//!   which ids the gateway drops by design).
//!
//! Admin: `POST /chaos/{status|stall}?seconds=N` adds a window from now,
//! `GET /chaos` shows the schedule. Prints `listening on ADDR` when ready.
#![allow(
    clippy::print_stdout,
    reason = "a command-line tool reporting its address"
)]

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
use sse_gateway_benches::chaos::{Kind, Plan, Schedule, Window, HISTORY};
use sse_gateway_benches::unix_micros;

#[derive(Parser, Debug)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9000")]
    listen: SocketAddr,
    /// The run's start, milliseconds since the Unix epoch (default: now).
    /// Give the same value to a restarted origin.
    #[arg(long)]
    start_ms: Option<u64>,
    /// Events per second per topic.
    #[arg(long, default_value_t = 10.0)]
    rate: f64,
    /// Data bytes per event.
    #[arg(long, default_value_t = 256)]
    size: usize,
    /// Misbehaviour windows, `KIND:FROM-UNTIL,...` in seconds from the start
    /// (KIND: an HTTP status, `stall` or `oversize`).
    #[arg(long, default_value = "")]
    schedule: Schedule,
    /// Inside an oversize window, every k-th event is oversize (0 = none).
    #[arg(long, default_value_t = 5)]
    oversize_every: u64,
    /// Data bytes of an oversize event.
    #[arg(long, default_value_t = 8192)]
    oversize_size: usize,
}

/// The plan, with the windows added at run time.
struct Origin {
    plan: Plan,
    added: Mutex<Vec<Window>>,
}

type Body = BoxBody<Bytes, Infallible>;

/// How long a stream may be silent before the origin sends a comment.
const KEEPALIVE: Duration = Duration::from_secs(1);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let start_micros = args.start_ms.map_or_else(unix_micros, |ms| ms * 1000);
    let origin = Arc::new(Origin {
        plan: Plan {
            start_micros,
            rate: args.rate.max(0.001),
            size: args.size,
            oversize_size: args.oversize_size,
            oversize_every: args.oversize_every,
            schedule: args.schedule,
        },
        added: Mutex::default(),
    });
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    println!("listening on {}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let origin = origin.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| serve(request, origin.clone()));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

impl Origin {
    /// Milliseconds since the start.
    fn now_ms(&self) -> u64 {
        self.plan.offset_ms(unix_micros())
    }

    /// Every window in force: the command line's and those added since.
    fn schedule(&self) -> Schedule {
        let mut schedule = self.plan.schedule.clone();
        schedule.windows.extend(self.added.lock().iter().copied());
        schedule
    }

    fn status_at(&self, at_ms: u64) -> Option<u16> {
        self.plan.schedule.status_at(at_ms).or_else(|| {
            Schedule {
                windows: self.added.lock().clone(),
            }
            .status_at(at_ms)
        })
    }

    fn stall_until(&self, at_ms: u64) -> Option<u64> {
        let added = Schedule {
            windows: self.added.lock().clone(),
        };
        self.plan
            .schedule
            .stall_until(at_ms)
            .max(added.stall_until(at_ms))
    }
}

fn plain(status: http::StatusCode, text: &'static str) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())).boxed());
    *response.status_mut() = status;
    response
}

async fn serve(
    request: Request<hyper::body::Incoming>,
    origin: Arc<Origin>,
) -> Result<Response<Body>, Infallible> {
    let path = request.uri().path().to_owned();
    if path == "/chaos" || path.starts_with("/chaos/") {
        return Ok(admin(&request, &path, &origin));
    }
    let Some(topic) = path.strip_prefix("/stream/").map(str::to_owned) else {
        return Ok(plain(http::StatusCode::NOT_FOUND, "not found"));
    };
    if let Some(code) = origin.status_at(origin.now_ms()) {
        let status =
            http::StatusCode::from_u16(code).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
        return Ok(plain(status, "chaos"));
    }
    let last: Option<u64> = request
        .headers()
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok());
    let newest = origin.plan.last_due(unix_micros());
    let first = match last {
        Some(last) => (last + 1).max(newest.saturating_sub(HISTORY) + 1),
        None => newest + 1,
    };
    let (sender, body) = Channel::<Bytes, Infallible>::new(64);
    tokio::spawn(stream(origin, topic, first, sender));
    let mut response = Response::new(body.boxed());
    let headers = response.headers_mut();
    headers.insert(
        "content-type",
        http::HeaderValue::from_static("text/event-stream"),
    );
    headers.insert("cache-control", http::HeaderValue::from_static("no-cache"));
    Ok(response)
}

/// Writes events `first..` of `topic` as they fall due, until the client
/// goes away or a misbehaviour ends the stream.
async fn stream(
    origin: Arc<Origin>,
    topic: String,
    first: u64,
    mut sender: http_body_util::channel::Sender<Bytes, Infallible>,
) {
    let mut n = first;
    loop {
        let due = origin.plan.due_micros(n);
        let now = unix_micros();
        if due > now {
            let wait = Duration::from_micros(due - now);
            if wait > KEEPALIVE {
                tokio::time::sleep(KEEPALIVE).await;
                if sender
                    .send(Frame::data(Bytes::from_static(b":\n\n")))
                    .await
                    .is_err()
                {
                    return;
                }
                continue;
            }
            tokio::time::sleep(wait).await;
        }
        let now_ms = origin.now_ms();
        if origin.status_at(now_ms).is_some() {
            return; // the stream ends; the next request gets the status
        }
        let frame = origin.plan.frame(&topic, n);
        if let Some(until_ms) = origin.stall_until(now_ms) {
            let half = Bytes::copy_from_slice(&frame.as_bytes()[..frame.len() / 2]);
            if sender.send(Frame::data(half)).await.is_err() {
                return;
            }
            // Nothing more until the window is over (the gateway gives up
            // before, after its `upstream_idle_timeout`); then the stream ends.
            tokio::time::sleep(Duration::from_millis(until_ms.saturating_sub(now_ms))).await;
            return;
        }
        if sender.send(Frame::data(Bytes::from(frame))).await.is_err() {
            return;
        }
        n += 1;
    }
}

/// `GET /chaos`: the schedule; `POST /chaos/{status|stall}?seconds=N`: a
/// window from now.
fn admin(request: &Request<hyper::body::Incoming>, path: &str, origin: &Origin) -> Response<Body> {
    if request.method() == http::Method::GET && path == "/chaos" {
        let text = format!(
            "{{\"now_s\":{},\"schedule\":\"{}\"}}\n",
            origin.now_ms() as f64 / 1000.0,
            origin.schedule()
        );
        let mut response = Response::new(Full::new(Bytes::from(text)).boxed());
        response.headers_mut().insert(
            "content-type",
            http::HeaderValue::from_static("application/json"),
        );
        return response;
    }
    if request.method() != http::Method::POST {
        return plain(http::StatusCode::METHOD_NOT_ALLOWED, "GET or POST\n");
    }
    let Some(kind) = path
        .strip_prefix("/chaos/")
        .and_then(|k| k.parse::<Kind>().ok())
    else {
        return plain(
            http::StatusCode::NOT_FOUND,
            "POST /chaos/{status|stall}?seconds=N\n",
        );
    };
    if kind == Kind::Oversize {
        return plain(
            http::StatusCode::BAD_REQUEST,
            "oversize windows come from --schedule only (the checker must know them)\n",
        );
    }
    let seconds = request
        .uri()
        .query()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("seconds=")))
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|s| (0.0..86_400.0).contains(s));
    let Some(seconds) = seconds else {
        return plain(
            http::StatusCode::BAD_REQUEST,
            "seconds=N (0 to 86400) is required\n",
        );
    };
    let from_ms = origin.now_ms();
    origin.added.lock().push(Window {
        kind,
        from_ms,
        until_ms: from_ms + (seconds * 1000.0) as u64,
    });
    plain(http::StatusCode::OK, "ok\n")
}
