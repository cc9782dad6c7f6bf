//! A seconds-long smoke of the chaos pieces (`benches/run-chaos` runs them for
//! minutes): `chaos-origin` continues its sequence and replays after a kill and
//! a restart, answers a status and stalls when told, and `loadgen --chaos`
//! through the real gateway counts no loss, duplicate or corrupt event across
//! an origin kill, with the oversize events left out.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sse_gateway_benches::check_payload;
use sse_gateway_tests::client::http_get;
use sse_gateway_tests::ports::free_addr;
use sse_gateway_tests::{deadline, GatewayProcess, SseClient};

/// Kills the child when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const RATE: &str = "20";

fn now_ms() -> u64 {
    sse_gateway_benches::unix_micros() / 1000
}

/// Starts `chaos-origin` on `addr` and waits until it accepts.
async fn origin(addr: SocketAddr, start_ms: u64, schedule: &str) -> Killed {
    let child = Command::new(env!("CARGO_BIN_EXE_chaos-origin"))
        .args([
            "--listen",
            &addr.to_string(),
            "--start-ms",
            &start_ms.to_string(),
        ])
        .args(["--rate", RATE, "--size", "100", "--schedule", schedule])
        .args(["--oversize-every", "4", "--oversize-size", "6000"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let end = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < end, "origin did not listen");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Killed(child)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origin_continues_and_replays_after_a_restart_and_misbehaves_when_told() {
    let addr = free_addr().unwrap();
    let start = now_ms();
    // Events 20..=40 (every 4th oversize) fall due between 1 s and 2 s.
    let schedule = "oversize:1-2";
    let first = origin(addr, start, schedule).await;
    let mut client = SseClient::get(addr, "/stream/a").await.unwrap();
    let before = client
        .events_until(6, deadline(Duration::from_secs(5)))
        .await
        .unwrap();
    drop(first); // SIGKILL
    drop(client);
    let _second = origin(addr, start, schedule).await;

    // Resume from the second of those: the restarted origin replays the same events.
    let resume_from = before[1].id.clone().unwrap();
    let mut client = SseClient::resume(addr, "/stream/a", &resume_from)
        .await
        .unwrap();
    let after = client
        .events_until(40, deadline(Duration::from_secs(5)))
        .await
        .unwrap();
    assert_eq!(
        after[0].id, before[2].id,
        "the event after Last-Event-ID comes first"
    );
    for (old, new) in before[2..].iter().zip(&after) {
        assert_eq!(
            (&old.id, &old.data),
            (&new.id, &new.data),
            "same event after the restart"
        );
    }
    for pair in after.windows(2) {
        let (a, b): (u64, u64) = (
            pair[0].id.as_ref().unwrap().parse().unwrap(),
            pair[1].id.as_ref().unwrap().parse().unwrap(),
        );
        assert_eq!(b, a + 1, "no gap, no repeat");
    }
    for event in &after {
        let seq: u64 = event.id.as_ref().unwrap().parse().unwrap();
        let checked = check_payload("a", &event.data).unwrap();
        assert!(checked.intact && checked.seq == seq, "{event:?}");
        let oversize = (20..40).contains(&seq) && seq.is_multiple_of(4);
        assert_eq!(event.data.len() == 6000, oversize, "event {seq}");
    }

    // A status window from now: new requests get it, then streams come back.
    let posted = SseClient::request(addr, "POST", "/chaos/404?seconds=1", &[])
        .await
        .unwrap();
    assert_eq!(posted.status(), 200);
    let refused = http_get(addr, "/stream/a", &[]).await.unwrap();
    assert_eq!(refused.status, 404);
    let shown = http_get(addr, "/chaos", &[]).await.unwrap().text();
    assert!(shown.contains("404:"), "{shown}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut client = SseClient::get(addr, "/stream/a").await.unwrap();
    assert_eq!(client.status(), 200);
    client
        .events_until(1, deadline(Duration::from_secs(3)))
        .await
        .unwrap();

    // A stall: half an event, then nothing, then the stream ends with the window.
    let posted = SseClient::request(addr, "POST", "/chaos/stall?seconds=1", &[])
        .await
        .unwrap();
    assert_eq!(posted.status(), 200);
    let mut stalled = SseClient::get(addr, "/stream/b").await.unwrap();
    let next = stalled
        .next_event(deadline(Duration::from_secs(3)))
        .await
        .unwrap();
    assert!(
        next.is_none(),
        "a stalled stream dispatches nothing: {next:?}"
    );
    assert!(!stalled.raw_body().is_empty(), "half an event was written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loadgen_chaos_counts_nothing_lost_across_an_origin_kill() {
    let origin_addr = free_addr().unwrap();
    let start = now_ms();
    let schedule = "oversize:0-30";
    let mut origin_proc = origin(origin_addr, start, schedule).await;
    let yaml = format!(
        r#"
threads: 2
defaults:
  heartbeat: 1s
  client_retry: 500ms
  max_event_size: 4KiB
  upstream_idle_timeout: 2s
  upstream_backoff: {{ initial: 100ms, max: 500ms }}
routes:
  - name: chaos
    path: /chaos/{{topic}}
    upstream:
      url: "http://{origin_addr}/stream/{{topic}}"
"#
    );
    let gateway = GatewayProcess::start(&yaml).await.unwrap();
    let details = std::env::temp_dir().join(format!("chaos-smoke-{}.jsonl", std::process::id()));
    let loadgen = {
        let args: Vec<String> = [
            "--chaos",
            "--target",
            &gateway.addr().to_string(),
            "--path",
            "/chaos/{topic}",
            "--subscribers",
            "20",
            "--topics",
            "2",
            "--sources",
            "4",
            "--rate",
            RATE,
            "--start-ms",
            &start.to_string(),
            "--schedule",
            schedule,
            "--oversize-every",
            "4",
            "--duration",
            "7",
            "--details",
            details.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_loadgen"))
                .args(args)
                .output()
                .unwrap()
        })
    };
    // Mid-run, kill the origin and start it again a second later.
    tokio::time::sleep(Duration::from_secs(3)).await;
    drop(origin_proc);
    tokio::time::sleep(Duration::from_secs(1)).await;
    origin_proc = origin(origin_addr, start, schedule).await;
    let output = loadgen.await.unwrap();
    drop(origin_proc);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "loadgen failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: serde_json::Value =
        serde_json::from_str(stdout.lines().last().expect("a JSON line")).unwrap();
    let lines = std::fs::read_to_string(&details).unwrap_or_default();
    let _ = std::fs::remove_file(&details);
    assert_eq!(summary["reported"], 20, "{summary}");
    assert_eq!(summary["subscribers_without_events"], 0, "{summary}");
    assert_eq!(summary["lost"], 0, "{summary}\n{lines}");
    assert_eq!(summary["duplicates"], 0, "{summary}\n{lines}");
    assert_eq!(summary["errors"], 0, "{summary}");
    assert_eq!(summary["oversize_delivered"], 0, "{summary}");
    assert_eq!(summary["subscribers_behind_10s"], 0, "{summary}");
    // 7 s at 20 events/s, less the oversize quarter: well over 50 ids each.
    assert!(summary["received"].as_u64().unwrap() > 20 * 50, "{summary}");
    assert_eq!(lines.lines().count(), 20);
}

/// What subscribers do once the gateway passes an upstream 404 on (the lead's
/// `upstream_answer_timeout`): here they read the origin itself, which ends
/// their streams and answers 404 for a while; they record the refusals, try
/// again, and resume with `Last-Event-ID` without losing anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loadgen_chaos_retries_through_a_404_and_resumes() {
    let origin_addr = free_addr().unwrap();
    let start = now_ms();
    let schedule = "404:2-3.5";
    let _origin = origin(origin_addr, start, schedule).await;
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_loadgen"))
            .args(["--chaos", "--target", &origin_addr.to_string()])
            .args([
                "--path",
                "/stream/{topic}",
                "--subscribers",
                "10",
                "--topics",
                "2",
            ])
            .args([
                "--sources",
                "2",
                "--rate",
                RATE,
                "--start-ms",
                &start.to_string(),
            ])
            .args(["--schedule", schedule, "--duration", "6"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "loadgen failed: {stdout}");
    let summary: serde_json::Value =
        serde_json::from_str(stdout.lines().last().expect("a JSON line")).unwrap();
    assert!(
        summary["statuses"]["404"].as_u64().unwrap_or(0) >= 10,
        "{summary}"
    );
    assert!(summary["reconnects"].as_u64().unwrap() >= 20, "{summary}");
    assert_eq!(summary["lost"], 0, "{summary}");
    assert_eq!(summary["duplicates"], 0, "{summary}");
    assert_eq!(summary["errors"], 0, "{summary}");
    assert_eq!(summary["subscribers_behind_10s"], 0, "{summary}");
}
