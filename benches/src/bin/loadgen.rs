//! The fan-out load generator: N subscribers over K topics through a gateway.
//!
//! Each subscriber is a real HTTP/1.1 client (hyper) whose source address is
//! spread over 127.0.0.0/8, parsing the stream with sse-gateway-codec. Events
//! carry their sequence number and send time (see the `origin` binary), so
//! it measures latency (HDR histogram), gaps and duplicates per connection.
//! After a warm-up it measures for `duration` seconds, reading the CPU time
//! and RSS of the system under test (`--server-pids`: every listed process,
//! its threads and all of its descendants, so nginx's and Pushpin's workers
//! count) from /proc around the window, and prints one JSON line.
//!
//! Every event's payload is verified (`sse_gateway_benches::check_payload`):
//! data that is not a payload counts as `unparsable`, a checksum, topic or
//! id that does not match as `corrupt`; both are errors. RSS is reported
//! beside PSS (shared pages counted once over the process tree).
//!
//! With `--idle` it only connects the subscribers, waits `warmup` seconds for
//! the system to settle and reports its RSS and PSS growth per subscriber.
//!
//! With `--chaos` the subscribers behave like browsers' `EventSource`s in
//! front of a misbehaving origin (`chaos-origin`): they reconnect with
//! `Last-Event-ID` for `duration` seconds, and it reports what each lost,
//! received twice, and how often it reconnected (see
//! `sse_gateway_benches::chaos::subscriber`).
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a command-line tool printing its summary and first errors"
)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use sse_gateway_benches::chaos::{subscriber as chaos, Plan, Schedule};
use sse_gateway_benches::proc::{cpu_between, cpu_seconds, tree_cpu, tree_pss_kib, tree_rss_kib};
use sse_gateway_benches::{check_payload, connect_from, unix_micros};
use sse_gateway_codec::{Decoder, Item};

#[derive(Parser, Debug)]
struct Args {
    /// Gateway address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    target: SocketAddr,
    /// Request path; `{topic}` is replaced by the topic number.
    #[arg(long, default_value = "/bench/{topic}")]
    path: String,
    /// Subscribers in all.
    #[arg(long, default_value_t = 100)]
    subscribers: u64,
    /// Topics; subscriber i reads topic i % topics.
    #[arg(long, default_value_t = 1)]
    topics: u64,
    /// Events per second per topic that the origin emits (for the expected rate).
    #[arg(long, default_value_t = 50.0)]
    rate: f64,
    /// Seconds to wait after every subscriber connected.
    #[arg(long, default_value_t = 3)]
    warmup: u64,
    /// Seconds to measure.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Processes whose CPU and RSS to report, with all their descendants
    /// (the system under test); comma-separated or repeated.
    #[arg(long, alias = "server-pid", value_delimiter = ',')]
    server_pids: Vec<u32>,
    /// Scenario A: connect, settle for `warmup` seconds, report RSS per subscriber.
    #[arg(long)]
    idle: bool,
    /// Speak HTTP/2 with prior knowledge (h2c), this many subscriber streams per
    /// connection; 0 = HTTP/1.1, one connection per subscriber.
    #[arg(long, default_value_t = 0)]
    h2c_streams: u64,
    /// Distinct 127.x.y.z source addresses to spread connections over.
    #[arg(long, default_value_t = 64)]
    sources: u64,
    /// Chaos run: reconnecting subscribers for `duration` seconds, then a
    /// report of what they lost and received twice (`--rate`, `--start-ms`,
    /// `--schedule` and `--oversize-every` as given to `chaos-origin`).
    #[arg(long)]
    chaos: bool,
    /// Chaos: the origin's start, milliseconds since the Unix epoch.
    #[arg(long, default_value_t = 0)]
    start_ms: u64,
    /// Chaos: the origin's misbehaviour windows (only `oversize` matters here).
    #[arg(long, default_value = "")]
    schedule: Schedule,
    /// Chaos: the origin's `--oversize-every`.
    #[arg(long, default_value_t = 5)]
    oversize_every: u64,
    /// Chaos: the longest pause before reconnecting, in milliseconds.
    #[arg(long, default_value_t = 5000)]
    retry_cap_ms: u64,
    /// Chaos: a stream silent this many seconds is abandoned and reconnected.
    #[arg(long, default_value_t = 20)]
    stale_after: u64,
    /// Chaos: write one JSON line per subscriber (lost and duplicate ranges) here.
    #[arg(long)]
    details: Option<std::path::PathBuf>,
}

#[derive(Default)]
struct Stats {
    measuring: AtomicBool,
    connected: AtomicU64,
    errors: AtomicU64,
    unparsable: AtomicU64,
    corrupt: AtomicU64,
    deliveries: AtomicU64,
    gaps: AtomicU64,
    duplicates: AtomicU64,
    latency: Vec<Mutex<Histogram<u64>>>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Arc::new(Args::parse());
    if args.chaos {
        return chaos_run(&args).await;
    }
    let stats = Arc::new(Stats {
        latency: (0..16)
            .map(|_| Histogram::new(3).map(Mutex::new))
            .collect::<Result<_, _>>()?,
        ..Stats::default()
    });
    let rss_before = tree_rss_kib(&args.server_pids);
    let pss_before = tree_pss_kib(&args.server_pids);
    if args.h2c_streams > 0 {
        let connections = args.subscribers.div_ceil(args.h2c_streams);
        for c in 0..connections {
            tokio::spawn(h2_connection(c, args.clone(), stats.clone()));
        }
    } else {
        for i in 0..args.subscribers {
            tokio::spawn(subscriber(i, args.clone(), stats.clone()));
            if i % 100 == 99 {
                tokio::task::yield_now().await;
            }
        }
    }
    let ramp = Instant::now();
    while stats.connected.load(Ordering::Relaxed) + stats.errors.load(Ordering::Relaxed)
        < args.subscribers
        && ramp.elapsed() < Duration::from_secs(60)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ramp_seconds = ramp.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(args.warmup)).await;
    if args.idle {
        return idle_summary(&args, &stats, (rss_before, pss_before), ramp_seconds);
    }

    let server_before = tree_cpu(&args.server_pids);
    let self_before = cpu_seconds(std::process::id());
    let machine_before = machine_cpu_seconds();
    stats.measuring.store(true, Ordering::SeqCst);
    let start = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.duration)).await;
    stats.measuring.store(false, Ordering::SeqCst);
    let elapsed = start.elapsed().as_secs_f64();
    let server_cpu = (!args.server_pids.is_empty())
        .then(|| cpu_between(&server_before, &tree_cpu(&args.server_pids)));
    let self_cpu = cpu_seconds(std::process::id()) - self_before;
    let machine_cpu = machine_cpu_seconds() - machine_before;
    let other_cpu = machine_cpu - self_cpu - server_cpu.unwrap_or(0.0);

    let mut latency = Histogram::<u64>::new(3)?;
    for shard in &stats.latency {
        latency.add(&*shard.lock())?;
    }
    let deliveries = stats.deliveries.load(Ordering::SeqCst);
    let expected = args.subscribers as f64 * args.rate;
    let summary = serde_json::json!({
        "subscribers": args.subscribers,
        "topics": args.topics,
        "connected": stats.connected.load(Ordering::SeqCst),
        "errors": stats.errors(),
        "unparsable": stats.unparsable.load(Ordering::SeqCst),
        "corrupt": stats.corrupt.load(Ordering::SeqCst),
        "seconds": elapsed,
        "deliveries_per_sec": deliveries as f64 / elapsed,
        "expected_per_sec": expected,
        "gaps": stats.gaps.load(Ordering::SeqCst),
        "duplicates": stats.duplicates.load(Ordering::SeqCst),
        "latency_us": {
            "p50": latency.value_at_quantile(0.5),
            "p90": latency.value_at_quantile(0.9),
            "p99": latency.value_at_quantile(0.99),
            "max": latency.max(),
        },
        "server_cpu_s": server_cpu,
        "server_cpu_s_per_million": server_cpu.map(|cpu| cpu / (deliveries as f64 / 1e6)),
        "server_rss_kib": tree_rss_kib(&args.server_pids),
        "server_pss_kib": tree_pss_kib(&args.server_pids),
        "server_processes": sse_gateway_benches::proc::process_tree(&args.server_pids).len(),
        "loadgen_cpu_s": self_cpu,
        "other_cpu_s": other_cpu,
    });
    println!("{summary}");
    Ok(())
}

/// One subscriber: connects, then reads until the process ends.
async fn subscriber(i: u64, args: Arc<Args>, stats: Arc<Stats>) {
    if let Err(error) = run_subscriber(i, &args, &stats).await {
        stats.errors.fetch_add(1, Ordering::Relaxed);
        if i < 3 {
            eprintln!("subscriber {i}: {error:#}");
        }
    }
}

/// A TCP connection from the source address of subscriber (or connection) `n`.
async fn connect(n: u64, args: &Args) -> anyhow::Result<tokio::net::TcpStream> {
    connect_from(n, args.sources, args.target).await
}

fn request_for(i: u64, args: &Args, absolute: bool) -> anyhow::Result<http::Request<Empty<Bytes>>> {
    let path = args
        .path
        .replace("{topic}", &(i % args.topics.max(1)).to_string());
    let uri = if absolute {
        format!("http://{}{path}", args.target)
    } else {
        path
    };
    Ok(http::Request::get(uri)
        .header("host", args.target.to_string())
        .header("accept", "text/event-stream")
        .body(Empty::<Bytes>::new())?)
}

/// One HTTP/2 (h2c) connection carrying `h2c_streams` subscribers.
async fn h2_connection(c: u64, args: Arc<Args>, stats: Arc<Stats>) {
    let first = c * args.h2c_streams;
    let last = (first + args.h2c_streams).min(args.subscribers);
    let sender = async {
        let stream = connect(c, &args).await?;
        let (sender, connection) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            TokioIo::new(stream),
        )
        .await?;
        tokio::spawn(connection);
        anyhow::Ok(sender)
    }
    .await;
    let sender = match sender {
        Ok(sender) => sender,
        Err(error) => {
            stats.errors.fetch_add(last - first, Ordering::Relaxed);
            if c < 3 {
                eprintln!("connection {c}: {error:#}");
            }
            return;
        }
    };
    for i in first..last {
        let (mut sender, args, stats) = (sender.clone(), args.clone(), stats.clone());
        tokio::spawn(async move {
            let result = async {
                let response = sender.send_request(request_for(i, &args, true)?).await?;
                anyhow::ensure!(response.status() == 200, "status {}", response.status());
                stats.connected.fetch_add(1, Ordering::Relaxed);
                read_events(i, &args, response.into_body(), &stats).await
            }
            .await;
            if let Err(error) = result {
                stats.errors.fetch_add(1, Ordering::Relaxed);
                if i < 3 {
                    eprintln!("subscriber {i}: {error:#}");
                }
            }
        });
    }
}

/// One HTTP/1.1 subscriber. The connection (hyper's reader of the socket)
/// and the body reader run in this one task, so a chunk read off the socket
/// does not wake a second task: the load generator's cost per delivery stays
/// low enough to keep up with the 200k deliveries/s of scenario C on the
/// 2 cores it shares with the system under test.
async fn run_subscriber(i: u64, args: &Args, stats: &Stats) -> anyhow::Result<()> {
    let stream = connect(i, args).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    let mut connection = std::pin::pin!(connection);
    let response = tokio::select! {
        biased;
        ended = &mut connection => anyhow::bail!("connection ended before the response: {ended:?}"),
        response = sender.send_request(request_for(i, args, false)?) => response?,
    };
    anyhow::ensure!(response.status() == 200, "status {}", response.status());
    stats.connected.fetch_add(1, Ordering::Relaxed);
    tokio::select! {
        biased;
        ended = &mut connection => anyhow::bail!("connection ended: {ended:?}"),
        read = read_events(i, args, response.into_body(), stats) => read,
    }
}

/// Reads one subscriber's stream, counting deliveries, gaps, duplicates and
/// latency, and checking every payload.
async fn read_events(
    i: u64,
    args: &Args,
    mut body: hyper::body::Incoming,
    stats: &Stats,
) -> anyhow::Result<()> {
    let topic = (i % args.topics.max(1)).to_string();
    let mut decoder = Decoder::default();
    let mut last_seq: Option<u64> = None;
    let shard = &stats.latency[(i % 16) as usize];
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        let now = unix_micros();
        let measuring = stats.measuring.load(Ordering::Relaxed);
        let mut latencies = Vec::new();
        for item in decoder.decode(data) {
            let event = match item {
                Item::Event(event) => event,
                Item::Error(_) => {
                    stats.unparsable.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                _ => continue,
            };
            let Some(checked) = check_payload(&topic, event.data()) else {
                stats.unparsable.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            if !checked.intact {
                stats.corrupt.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let (seq, ts) = (checked.seq, checked.ts);
            if let Some(last) = last_seq {
                if seq <= last {
                    stats.duplicates.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                if measuring && seq > last + 1 {
                    stats.gaps.fetch_add(seq - last - 1, Ordering::Relaxed);
                }
            }
            last_seq = Some(seq);
            if measuring {
                stats.deliveries.fetch_add(1, Ordering::Relaxed);
                latencies.push(now.saturating_sub(ts));
            }
        }
        if !latencies.is_empty() {
            let mut histogram = shard.lock();
            for latency in latencies {
                let _ = histogram.record(latency);
            }
        }
    }
    anyhow::bail!("stream ended")
}

/// The idle scenario's summary: RSS and PSS of the system before and after.
fn idle_summary(
    args: &Args,
    stats: &Stats,
    (rss_before, pss_before): (u64, u64),
    ramp_seconds: f64,
) -> anyhow::Result<()> {
    let rss_after = tree_rss_kib(&args.server_pids);
    let pss_after = tree_pss_kib(&args.server_pids);
    let connected = stats.connected.load(Ordering::SeqCst);
    let per_subscriber = rss_after.saturating_sub(rss_before) as f64 / connected.max(1) as f64;
    let pss_per_subscriber = pss_after.saturating_sub(pss_before) as f64 / connected.max(1) as f64;
    let summary = serde_json::json!({
        "mode": "idle",
        "subscribers": args.subscribers,
        "topics": args.topics,
        "connected": connected,
        "errors": stats.errors(),
        "unparsable": stats.unparsable.load(Ordering::SeqCst),
        "corrupt": stats.corrupt.load(Ordering::SeqCst),
        "connect_seconds": ramp_seconds,
        "server_rss_before_kib": rss_before,
        "server_rss_kib": rss_after,
        "server_pss_before_kib": pss_before,
        "server_pss_kib": pss_after,
        "server_processes": sse_gateway_benches::proc::process_tree(&args.server_pids).len(),
        "rss_kib_per_subscriber": per_subscriber,
        "pss_kib_per_subscriber": pss_per_subscriber,
        "projected_gib_per_million": per_subscriber * 1e6 / 1024.0 / 1024.0,
    });
    println!("{summary}");
    Ok(())
}

impl Stats {
    /// Failed subscribers, unparsable events and corrupt events.
    fn errors(&self) -> u64 {
        self.errors.load(Ordering::SeqCst)
            + self.unparsable.load(Ordering::SeqCst)
            + self.corrupt.load(Ordering::SeqCst)
    }
}

/// `--chaos`: reconnecting subscribers, then the report (one JSON line) and,
/// with `--details`, one line per subscriber.
async fn chaos_run(args: &Args) -> anyhow::Result<()> {
    use std::io::Write as _;
    anyhow::ensure!(args.start_ms > 0, "--chaos needs the origin's --start-ms");
    let config = chaos::Config {
        target: args.target,
        path: args.path.clone(),
        subscribers: args.subscribers,
        topics: args.topics.max(1),
        sources: args.sources,
        duration: Duration::from_secs(args.duration),
        plan: Plan {
            start_micros: args.start_ms.saturating_mul(1000),
            rate: args.rate.max(0.001),
            size: 0,
            oversize_size: 0,
            oversize_every: args.oversize_every,
            schedule: args.schedule.clone(),
        },
        retry_cap: Duration::from_millis(args.retry_cap_ms),
        default_retry: Duration::from_secs(1),
        connect_timeout: Duration::from_secs(5),
        stale_after: Duration::from_secs(args.stale_after.max(1)),
        detail_ranges: 20,
    };
    let tallies = chaos::run(config.clone()).await;
    let now = unix_micros();
    if let Some(path) = &args.details {
        let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
        for tally in &tallies {
            writeln!(out, "{}", chaos::detail(&config, tally, now))?;
        }
        out.flush()?;
    }
    println!("{}", chaos::summary(&config, &tallies, now));
    Ok(())
}

/// CPU-seconds the whole machine spent (all cores, not idle) from /proc/stat.
fn machine_cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else {
        return 0.0;
    };
    let Some(line) = stat.lines().next() else {
        return 0.0;
    };
    let values: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest is inside user).
    let busy: f64 = [0, 1, 2, 5, 6, 7]
        .iter()
        .filter_map(|&i| values.get(i))
        .sum();
    busy / 100.0
}
