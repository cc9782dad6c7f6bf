//! The fan-out load generator: N subscribers over K topics through a gateway.
//!
//! Each subscriber is a real HTTP/1.1 client (hyper) whose source address is
//! spread over 127.0.0.0/8, parsing the stream with sse-gateway-codec. Events
//! carry their sequence number and send time (see the `origin` binary), so
//! it measures latency (HDR histogram), gaps and duplicates per connection.
//! After a warm-up it measures for `duration` seconds, reading the CPU time
//! and RSS of `--server-pid` (all of its threads) from /proc around the
//! window, and prints one JSON line.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a command-line tool printing its summary and first errors"
)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use sse_gateway_benches::{parse_payload, unix_micros};
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
    /// Process whose CPU and RSS to report (the system under test).
    #[arg(long)]
    server_pid: Option<u32>,
    /// Distinct 127.x.y.z source addresses to spread connections over.
    #[arg(long, default_value_t = 64)]
    sources: u64,
}

#[derive(Default)]
struct Stats {
    measuring: AtomicBool,
    connected: AtomicU64,
    errors: AtomicU64,
    deliveries: AtomicU64,
    gaps: AtomicU64,
    duplicates: AtomicU64,
    latency: Vec<Mutex<Histogram<u64>>>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Arc::new(Args::parse());
    let stats = Arc::new(Stats {
        latency: (0..16)
            .map(|_| Histogram::new(3).map(Mutex::new))
            .collect::<Result<_, _>>()?,
        ..Stats::default()
    });
    for i in 0..args.subscribers {
        tokio::spawn(subscriber(i, args.clone(), stats.clone()));
        if i % 100 == 99 {
            tokio::task::yield_now().await;
        }
    }
    let ramp = Instant::now();
    while stats.connected.load(Ordering::Relaxed) + stats.errors.load(Ordering::Relaxed)
        < args.subscribers
        && ramp.elapsed() < Duration::from_secs(60)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(args.warmup)).await;

    let server_before = args.server_pid.map(proc_cpu_seconds);
    let self_before = proc_cpu_seconds(std::process::id());
    stats.measuring.store(true, Ordering::SeqCst);
    let start = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.duration)).await;
    stats.measuring.store(false, Ordering::SeqCst);
    let elapsed = start.elapsed().as_secs_f64();
    let server_cpu = args
        .server_pid
        .map(proc_cpu_seconds)
        .zip(server_before)
        .map(|(a, b)| a - b);
    let self_cpu = proc_cpu_seconds(std::process::id()) - self_before;

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
        "errors": stats.errors.load(Ordering::SeqCst),
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
        "server_rss_kib": args.server_pid.map(proc_rss_kib),
        "loadgen_cpu_s": self_cpu,
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

async fn run_subscriber(i: u64, args: &Args, stats: &Stats) -> anyhow::Result<()> {
    let n = i % args.sources.max(1);
    let source = Ipv4Addr::new(
        127,
        ((n >> 8) & 0xff) as u8,
        (n & 0xff) as u8,
        1 + ((n >> 16) & 0x7f) as u8,
    );
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(IpAddr::V4(source), 0))?;
    let stream = socket.connect(args.target).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let path = args
        .path
        .replace("{topic}", &(i % args.topics.max(1)).to_string());
    let request = http::Request::get(path)
        .header("host", args.target.to_string())
        .header("accept", "text/event-stream")
        .body(Empty::<Bytes>::new())?;
    let response = sender.send_request(request).await?;
    anyhow::ensure!(response.status() == 200, "status {}", response.status());
    stats.connected.fetch_add(1, Ordering::Relaxed);
    let mut body = response.into_body();
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
            let Item::Event(event) = item else { continue };
            let Some((seq, ts)) = parse_payload(event.data()) else {
                continue;
            };
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

/// utime + stime of every thread of `pid`, in seconds (from /proc/PID/stat).
fn proc_cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of stat; here at indices 11 and 12.
    (ticks(11) + ticks(12)) / clock_ticks_per_second()
}

fn clock_ticks_per_second() -> f64 {
    // Linux's USER_HZ is 100 on every architecture it runs benchmarks on.
    100.0
}

/// Resident set size of `pid` in KiB (VmRSS from /proc/PID/status).
fn proc_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}
