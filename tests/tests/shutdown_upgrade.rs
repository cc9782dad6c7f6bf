//! Graceful shutdown (SIGTERM, SIGINT) and zero-downtime upgrade (`run --upgrade`, then
//! SIGQUIT to the old process) with real processes, real clients and an upstream that
//! honours `Last-Event-ID`.
//!
//! These tests start the binary themselves (the harness's `GatewayProcess` hides the
//! child), send signals with `kill(1)`, and wait by polling with deadlines.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sse_gateway_tests::client::http_get;
use sse_gateway_tests::gateway::{gateway_binary, workspace_root};
use sse_gateway_tests::ports::free_addr;
use sse_gateway_tests::{
    deadline, poll_until, GatewayConfig, Response, Route, Settings, SseClient, UpstreamServer,
    WritePath,
};

const WAIT: Duration = Duration::from_secs(20);

/// A gateway process started by this test.
struct Proc {
    child: Child,
    log: PathBuf,
}

/// A config file with `listen` and `admin` on free ports.
struct Setup {
    dir: PathBuf,
    config: PathBuf,
    listen: SocketAddr,
    admin: SocketAddr,
}

impl Setup {
    fn new(yaml: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = workspace_root().join("target").join("e2e").join(format!(
            "shutdown-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let (listen, admin) = (free_addr().unwrap(), free_addr().unwrap());
        let config = dir.join("gateway.yaml");
        std::fs::write(
            &config,
            format!("listen: [\"{listen}\"]\nadmin: \"{admin}\"\nruntime_dir: run\n{yaml}"),
        )
        .unwrap();
        Self {
            dir,
            config,
            listen,
            admin,
        }
    }

    fn spawn(&self, name: &str, upgrade: bool) -> Proc {
        let log = self.dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let mut command = Command::new(gateway_binary().unwrap());
        command.arg("run").arg("--config").arg(&self.config);
        if upgrade {
            command.arg("--upgrade");
        }
        let child = command
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap();
        Proc { child, log }
    }

    /// The gateway's `/metrics` text.
    async fn metrics(&self) -> String {
        let resp = http_get(self.admin, "/metrics", &[]).await.unwrap();
        resp.text()
    }

    /// The upgrade socket the gateway derives from its admin port, in its
    /// private `runtime_dir` (see settings.rs and runtime_dir.rs).
    fn upgrade_sock(&self) -> PathBuf {
        self.dir
            .join("run")
            .join(format!("sse-gateway-{}.upgrade.sock", self.admin.port()))
    }

    async fn wait_ready(&self, proc: &mut Proc) {
        let ready = poll_until(WAIT, || async {
            matches!(
                tokio::time::timeout(Duration::from_secs(2), http_get(self.admin, "/readyz", &[])).await,
                Ok(Ok(resp)) if resp.status == 200
            )
        })
        .await;
        assert!(ready, "not ready:\n{}", proc.log());
        assert!(proc.is_running());
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl Proc {
    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args(["-s", signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -s {signal}");
    }

    fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for the process to exit; its exit code.
    async fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let end = deadline(timeout);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            if Instant::now() >= end {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `N` of the final `retry: N` line a stream ended with.
fn final_retry(body: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(body).ok()?;
    let last = text.trim_end().rsplit("\n\n").next()?;
    last.strip_prefix("retry: ")?.trim().parse().ok()
}

fn yaml(upstream: &str, path: WritePath) -> String {
    GatewayConfig::new()
        .threads(2)
        .shutdown_grace("1s")
        .write_path(path)
        .heartbeat("0s")
        .client_retry("1s")
        .linger("30s")
        .replay(1000, "5m")
        .resume_from_client(true)
        .route(Route::fan_out("s", "/s/{name}", upstream))
        .to_yaml()
}

/// SIGTERM or SIGINT: every client ends with its own jittered final `retry:`, the
/// upstreams close, and the process exits 0 within the grace period (plus pingora's one
/// second for runtimes).
async fn drains_on(signal: &str, path: WritePath) {
    let upstream = UpstreamServer::new()
        .default_response(Response::live(20))
        .run()
        .await
        .unwrap();
    let setup = Setup::new(&yaml(&upstream.url("/stream/{name}"), path));
    let mut gateway = setup.spawn("gateway", false);
    setup.wait_ready(&mut gateway).await;

    let mut clients = Vec::new();
    for i in 0..8 {
        let path = if i % 2 == 0 { "/s/A" } else { "/s/B" };
        let mut client = SseClient::get(setup.listen, path).await.unwrap();
        client.events_until(1, deadline(WAIT)).await.unwrap();
        clients.push(client);
    }
    assert_eq!(upstream.open_connections(), 2);
    path.assert_used(&setup.metrics().await, "s");

    let signalled = Instant::now();
    gateway.signal(signal);
    let mut finals = Vec::new();
    for client in &mut clients {
        client.read_to_end(deadline(WAIT)).await.unwrap();
        let retry = final_retry(client.raw_body());
        let tail = String::from_utf8_lossy(client.raw_body());
        let tail = &tail[tail.len().saturating_sub(40)..];
        let retry = retry.unwrap_or_else(|| panic!("no final retry; body ends {tail:?}"));
        assert!((800..=1200).contains(&retry), "retry {retry} is 1s ± 20%");
        assert_eq!(
            client.parser().retries_seen(),
            2,
            "one retry at join, one at the drain"
        );
        finals.push(retry);
    }
    finals.sort_unstable();
    finals.dedup();
    assert!(
        finals.len() >= 3,
        "final retries are spread out, got {finals:?}"
    );
    assert!(
        upstream.wait_open(0, WAIT).await,
        "upstream connections are closed"
    );

    let code = gateway.wait_exit(Duration::from_secs(10)).await;
    let took = signalled.elapsed();
    assert_eq!(code, Some(0), "clean exit:\n{}", gateway.log());
    assert!(
        took < Duration::from_millis(3500),
        "exited {took:?} after {signal}; grace is 1s"
    );
    let log = gateway.log();
    assert!(log.contains("draining client streams"), "{log}");
    let access = log
        .lines()
        .filter(|l| l.contains("sse_gateway::access") && l.contains("reason=shutdown"))
        .count();
    assert_eq!(access, 8, "one access line per drained stream:\n{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_every_client_with_a_jittered_retry_and_exits_in_grace() {
    drains_on("TERM", WritePath::Direct).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_drains_like_sigterm_on_the_session_path() {
    drains_on("INT", WritePath::Session).await;
}

/// A client that behaves like `EventSource`: on stream end it waits the advised retry and
/// reconnects with the last id it saw.
struct Browser {
    addr: SocketAddr,
    path: String,
    client: SseClient,
    ids: Vec<u64>,
    reconnects: usize,
}

impl Browser {
    async fn open(addr: SocketAddr, path: &str) -> Self {
        let client = SseClient::get(addr, path).await.unwrap();
        assert_eq!(client.status(), 200);
        Self {
            addr,
            path: path.to_owned(),
            client,
            ids: Vec::new(),
            reconnects: 0,
        }
    }

    /// Reads (reconnecting as needed) until an event with id ≥ `id` arrived.
    async fn read_past(&mut self, id: u64, end: Instant) {
        for _ in 0..100_000 {
            if self.ids.last().is_some_and(|&last| last >= id) {
                return;
            }
            assert!(
                Instant::now() < end,
                "{}: stuck at {:?}",
                self.path,
                self.ids.last()
            );
            match self.client.next_event(end).await {
                Ok(Some(event)) => self.ids.push(event.id_num().unwrap()),
                Ok(None) => self.reconnect(end).await,
                Err(e) => panic!("{}: {e}", self.path),
            }
        }
        panic!("{}: too many reads", self.path);
    }

    async fn reconnect(&mut self, end: Instant) {
        let retry = Duration::from_millis(self.client.parser().retry().unwrap_or(3000));
        for _ in 0..50 {
            assert!(Instant::now() < end, "{}: could not reconnect", self.path);
            tokio::time::sleep(retry).await;
            let last = self.ids.last().map(u64::to_string);
            let attempt = match &last {
                Some(last) => SseClient::resume(self.addr, &self.path, last).await,
                None => SseClient::get(self.addr, &self.path).await,
            };
            if let Ok(client) = attempt {
                self.client = client;
                self.reconnects += 1;
                return;
            }
        }
        panic!("{}: could not reconnect", self.path);
    }

    fn assert_exactly_once(&self) {
        let first = self.ids[0];
        for (i, id) in self.ids.iter().enumerate() {
            assert_eq!(
                *id,
                first + i as u64,
                "{}: an event missed or doubled around #{i}",
                self.path
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_hands_clients_to_the_new_process_with_every_event_exactly_once() {
    let upstream = UpstreamServer::new()
        .default_response(Response::live(40))
        .run()
        .await
        .unwrap();
    let setup = Setup::new(
        &yaml(&upstream.url("/stream/{name}"), WritePath::Direct)
            .replace("1s\n  linger", "500ms\n  linger"),
    );
    let mut old = setup.spawn("old", false);
    setup.wait_ready(&mut old).await;

    let end = deadline(Duration::from_secs(60));
    let mut browsers = Vec::new();
    // Two clients on A and on B: after the hand-over the first one's Last-Event-ID
    // opens the topic in the new process, the second must be replayed from its ring.
    for name in ["A", "A", "B", "B", "C", "D"] {
        let mut browser = Browser::open(setup.listen, &format!("/s/{name}")).await;
        browser.read_past(5, end).await;
        browsers.push(browser);
    }

    // The new process waits on the upgrade socket for the old one's listeners.
    let sock = setup.upgrade_sock();
    let _ = std::fs::remove_file(&sock);
    let mut new = setup.spawn("new", true);
    let listening = poll_until(WAIT, || async { sock.exists() }).await;
    assert!(listening, "no upgrade socket:\n{}", new.log());
    // Only this user can reach the socket: its directory is private.
    let mode = {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(sock.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
    };
    assert_eq!(mode & 0o777, 0o700, "the runtime directory is not private");
    old.signal("QUIT");

    // Keep every client reading while the old process hands over, drains and exits.
    let mut exited = None;
    for _ in 0..10_000 {
        for browser in &mut browsers {
            let next = browser.ids.last().copied().unwrap_or(0) + 1;
            browser.read_past(next, end).await;
        }
        if let Ok(Some(status)) = old.child.try_wait() {
            exited = Some(status);
            break;
        }
        assert!(Instant::now() < end, "the old process never exited");
    }
    let status = exited.expect("old process exited");
    assert!(status.success(), "old exit {status:?}:\n{}", old.log());
    assert!(new.is_running(), "new process died:\n{}", new.log());

    // After the old process is gone, every client still streams: from the new one.
    for browser in &mut browsers {
        let now = *browser.ids.last().unwrap();
        browser.read_past(now + 40, end).await;
        assert!(
            browser.reconnects >= 1,
            "{} reconnected to the new process",
            browser.path
        );
        browser.assert_exactly_once();
    }
    let metrics = http_get(setup.admin, "/metrics", &[]).await.unwrap().text();
    let subscribers = sse_gateway_tests::gateway::metric_sum(
        &metrics,
        "sse_gateway_subscribers",
        &[("route", "s")],
    );
    assert_eq!(subscribers, 6.0, "the new process serves all six");
    let old_log = old.log();
    assert!(old_log.contains("SIGQUIT"), "{old_log}");
    let resumed = upstream
        .requests()
        .iter()
        .filter(|r| r.last_event_id().is_some())
        .count();
    assert!(
        resumed >= 4,
        "the new process resumed each topic upstream with Last-Event-ID"
    );
}
