//! A seconds-long smoke run of the benchmark harness, so that it keeps
//! working: `origin` → the real gateway → `loadgen`, all on loopback. It
//! checks what the harness reports (everyone connected, deliveries, no gaps,
//! duplicates, errors, unparsable or corrupt events, the gateway's CPU, RSS
//! and PSS read), never a timing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sse_gateway_tests::ports::free_addr;
use sse_gateway_tests::GatewayProcess;

/// Kills the child when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origin_gateway_and_loadgen_run_end_to_end() {
    let origin_addr = free_addr().unwrap();
    let _origin = Killed(
        Command::new(env!("CARGO_BIN_EXE_origin"))
            .args([
                "--listen",
                &origin_addr.to_string(),
                "--rate",
                "100",
                "--size",
                "64",
            ])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let end = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(origin_addr).is_err() {
        assert!(Instant::now() < end, "origin did not listen");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let yaml = format!(
        r#"
threads: 2
routes:
  - name: bench
    path: /bench/{{topic}}
    upstream:
      url: "http://{origin_addr}/stream/{{topic}}"
"#
    );
    let gateway = GatewayProcess::start(&yaml).await.unwrap();
    let output = tokio::task::spawn_blocking({
        let target = gateway.addr().to_string();
        let pid = gateway.pid().to_string();
        move || {
            Command::new(env!("CARGO_BIN_EXE_loadgen"))
                .args([
                    "--target",
                    &target,
                    "--path",
                    "/bench/{topic}",
                    "--subscribers",
                    "20",
                    "--topics",
                    "2",
                    "--rate",
                    "100",
                    "--warmup",
                    "1",
                    "--duration",
                    "2",
                    "--sources",
                    "4",
                    "--server-pids",
                    &pid,
                ])
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "loadgen failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let line = stdout.lines().last().expect("a JSON summary line");
    let summary: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(summary["connected"], 20, "{summary}");
    assert_eq!(summary["gaps"], 0, "{summary}");
    assert_eq!(summary["duplicates"], 0, "{summary}");
    assert_eq!(summary["errors"], 0, "{summary}");
    assert!(
        summary["deliveries_per_sec"].as_f64().unwrap() > 0.0,
        "{summary}"
    );
    assert!(summary["server_cpu_s"].as_f64().is_some(), "{summary}");
    assert!(
        summary["server_rss_kib"].as_f64().unwrap() > 0.0,
        "{summary}"
    );
    // PSS is read too, and one process's PSS is at most its RSS.
    let pss = summary["server_pss_kib"].as_f64().unwrap();
    assert!(
        pss > 0.0 && pss <= summary["server_rss_kib"].as_f64().unwrap(),
        "{summary}"
    );
    // Every payload was checked and intact.
    assert_eq!(summary["unparsable"], 0, "{summary}");
    assert_eq!(summary["corrupt"], 0, "{summary}");
}
