//! Headless Chromium for the browser tests: real `EventSource`, real CORS, real cookies.
//!
//! The method is deliberately simple and needs no DevTools protocol:
//!
//! 1. A [`PageServer`] on its own loopback port serves the test page (origin A,
//!    `http://127.0.0.1:PORT_A`) and collects what the page reports: the page `POST`s JSON
//!    to `/report` on its own origin (same-origin, so no CORS is involved in reporting).
//! 2. [`Chromium::open`] starts `chromium --headless` on that page with a fresh profile
//!    directory; the page talks to the gateway on origin B (`http://127.0.0.1:PORT_B`: same
//!    host, other port, so cross-origin but same-site, and cookies set by the page on
//!    origin A are sent to B with `withCredentials`).
//! 3. The test waits for a report with a deadline ([`PageServer::wait_report`]), then drops
//!    the browser, which kills its whole process group.
//!
//! Also here: [`mint_es256`] (test tokens, verified by the gateway with
//! [`es256_public_key_path`]) and [`PinnedGateway`], a gateway that can be
//! stopped and started again on the *same* ports (a browser reconnects to the URL it
//! had).
//!
//! `chromium` must be installed (Debian package `chromium`; `.ci/run` installs it). The
//! binary is `$CHROMIUM` if set, else `chromium` on the `PATH`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

use crate::client::http_get;
use crate::config::{Auth, Cors, Route};
use crate::gateway::{gateway_binary, workspace_root};
use crate::ports::free_addr;

/// The script every page gets before its own: `report(obj)` posts JSON to the page
/// server; uncaught errors are reported as `{done: true, pageError: ...}`.
const PRELUDE: &str = r#"
const report = (obj) => fetch('/report', { method: 'POST', body: JSON.stringify(obj) });
window.addEventListener('error', (e) => report({ done: true, pageError: String(e.message) }));
window.addEventListener('unhandledrejection', (e) => report({ done: true, pageError: String(e.reason) }));
"#;

/// Serves test pages on origin A and collects the pages' reports.
#[derive(Debug)]
pub struct PageServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Debug, Default)]
struct Shared {
    pages: Mutex<HashMap<String, String>>,
    reports: Mutex<VecDeque<serde_json::Value>>,
    arrived: Notify,
}

impl PageServer {
    /// Starts the server on a free loopback port.
    pub async fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let serving = shared.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let shared = serving.clone();
                tokio::spawn(async move {
                    let _ =
                        tokio::time::timeout(Duration::from_secs(10), serve(stream, &shared)).await;
                });
            }
        });
        Ok(Self { addr, shared, task })
    }

    /// This server's origin, `http://127.0.0.1:PORT`.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Serves `script` (after the prelude that defines `report`) as the page at `path`;
    /// returns the page's URL.
    pub fn page(&self, path: &str, script: &str) -> String {
        let html = format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>test</title></head>\
             <body><script>{PRELUDE}\n{script}</script></body></html>"
        );
        self.shared.pages.lock().insert(path.to_owned(), html);
        format!("{}{path}", self.origin())
    }

    /// Serves `html` as it is at `path`; returns the page's URL.
    pub fn raw_page(&self, path: &str, html: &str) -> String {
        self.shared
            .pages
            .lock()
            .insert(path.to_owned(), html.to_owned());
        format!("{}{path}", self.origin())
    }

    /// The next report the page posted, waiting until `deadline`.
    pub async fn next_report(&self, deadline: Instant) -> anyhow::Result<serde_json::Value> {
        loop {
            let notified = self.shared.arrived.notified();
            if let Some(report) = self.shared.reports.lock().pop_front() {
                return Ok(report);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            anyhow::ensure!(!left.is_zero(), "no report from the page in time");
            let _ = tokio::time::timeout(left, notified).await;
        }
    }

    /// The first report with `"done": true` (earlier reports are discarded), waiting until
    /// `deadline`. A `pageError` in it fails.
    pub async fn wait_report(&self, deadline: Instant) -> anyhow::Result<serde_json::Value> {
        loop {
            let report = self.next_report(deadline).await?;
            if let Some(error) = report.get("pageError") {
                anyhow::bail!("the page failed: {error}");
            }
            if report.get("done") == Some(&serde_json::Value::Bool(true)) {
                return Ok(report);
            }
        }
    }
}

impl Drop for PageServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One HTTP/1.1 exchange (`Connection: close`).
async fn serve(mut stream: TcpStream, shared: &Shared) -> anyhow::Result<()> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        anyhow::ensure!(buf.len() < 64 * 1024, "request head too large");
        let n = stream.read(&mut tmp).await?;
        anyhow::ensure!(n > 0, "closed before the request head");
        buf.extend_from_slice(&tmp[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.lines();
    let request_line = lines.next().unwrap_or_default().to_owned();
    let mut parts = request_line.split(' ');
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
    let length: usize = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(n, _)| n.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    anyhow::ensure!(length <= 1 << 20, "request body too large");
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut tmp).await?;
        anyhow::ensure!(n > 0, "closed in the request body");
        body.extend_from_slice(&tmp[..n]);
    }
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let (status, content_type, out) = match (method, path) {
        // Answered after `?ms=` milliseconds (at most 30 s): an image on a page that
        // holds the page's load event, so that a screenshot waits for it.
        ("GET", "/slow") => {
            let ms: u64 = query
                .strip_prefix("ms=")
                .and_then(|ms| ms.parse().ok())
                .unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(ms.min(30_000))).await;
            ("204 No Content", "text/plain", String::new())
        }
        ("POST", "/report") => {
            let value = serde_json::from_slice(&body).unwrap_or_else(
                |_| serde_json::json!({ "unparsed": String::from_utf8_lossy(&body) }),
            );
            shared.reports.lock().push_back(value);
            shared.arrived.notify_waiters();
            ("204 No Content", "text/plain", String::new())
        }
        ("GET", path) => match shared.pages.lock().get(path) {
            Some(html) => ("200 OK", "text/html; charset=utf-8", html.clone()),
            None => ("404 Not Found", "text/plain", "not found\n".to_owned()),
        },
        _ => ("405 Method Not Allowed", "text/plain", String::new()),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncache-control: no-store\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{out}",
        out.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await?;
    Ok(())
}

/// A headless Chromium showing one page; killed (with its whole process group) on drop.
#[derive(Debug)]
pub struct Chromium {
    child: Child,
    profile: PathBuf,
}

impl Chromium {
    /// Opens `url` in a fresh headless browser.
    pub fn open(url: &str) -> anyhow::Result<Self> {
        Self::launch(url, &["--mute-audio".to_owned()])
    }

    /// Opens `url` in a fresh headless browser with these flags besides the usual ones
    /// (each browser has its own profile; its whole process group goes on drop).
    pub fn launch(url: &str, extra: &[String]) -> anyhow::Result<Self> {
        static N: AtomicUsize = AtomicUsize::new(0);
        let profile = std::env::temp_dir().join(format!(
            "sse-gateway-chromium-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&profile);
        std::fs::create_dir_all(&profile)?;
        let binary = std::env::var_os("CHROMIUM").unwrap_or_else(|| "chromium".into());
        let child = Command::new(&binary)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--disable-dev-shm-usage",
            ])
            .args(extra)
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot start {binary:?} ({e}): install Debian's `chromium` package \
                     (or set CHROMIUM to its path)"
                )
            })?;
        Ok(Self { child, profile })
    }

    /// Loads `url` in a fresh headless browser of `width`×`height` and writes a PNG
    /// screenshot of it to `png` once the page's load event has fired (a page holds it
    /// back with a slow image, see `PageServer`'s `/slow`); waits at most 60 s.
    pub fn screenshot(
        url: &str,
        png: &std::path::Path,
        width: u32,
        height: u32,
    ) -> anyhow::Result<()> {
        let extra = [
            "--hide-scrollbars".to_owned(),
            format!("--window-size={width},{height}"),
            format!("--screenshot={}", png.display()),
        ];
        let mut browser = Self::launch(url, &extra)?;
        let end = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = browser.child.try_wait()? {
                break status;
            }
            anyhow::ensure!(Instant::now() < end, "no screenshot within 60 s");
            std::thread::sleep(Duration::from_millis(50));
        };
        anyhow::ensure!(png.exists(), "chromium wrote no screenshot ({status})");
        Ok(())
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        // The whole group: the browser and its zygote, GPU and renderer children.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The test EC P-256 public key (PEM), for `auth.jwt.key_file` with `algorithm: ES256`.
pub fn es256_public_key_path() -> PathBuf {
    test_keys_dir().join("ec_public.pem")
}

/// An ES256 JWT over `claims`, signed with the test key matching
/// [`es256_public_key_path`].
pub fn mint_es256(claims: &serde_json::Value) -> String {
    let pem = std::fs::read(test_keys_dir().join("ec_private.pem")).expect("the test EC key");
    let key = jsonwebtoken::EncodingKey::from_ec_pem(&pem).expect("a PEM EC private key");
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    jsonwebtoken::encode(&header, claims, &key).expect("signing a test token")
}

/// An HS256 JWT over `claims`, signed with `secret` (for forgeries and wrong keys).
pub fn mint_hs256(secret: &[u8], claims: &serde_json::Value) -> String {
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    let key = jsonwebtoken::EncodingKey::from_secret(secret);
    jsonwebtoken::encode(&header, claims, &key).expect("signing a test token")
}

/// A fan-out route `name` on `/{name}/{sym}` (topic `{name}/{sym}`) that pages on
/// `origins` subscribe to with `withCredentials`: CORS with credentials, and a
/// `session` cookie holding an ES256 JWT (verified with [`es256_public_key_path`]) whose
/// `subscribe` claim lists the topics it may read.
pub fn browser_route(name: &str, upstream_url: &str, origins: &[&str]) -> Route {
    Route::fan_out(name, &format!("/{name}/{{sym}}"), upstream_url)
        .topic(&format!("{name}/{{sym}}"))
        .cors(Cors::origins(origins).credentials())
        .auth(
            Auth::cookie("session")
                .jwt("ES256", es256_public_key_path().display())
                .topics_claim("subscribe"),
        )
}

/// The throwaway key pairs of `crates/access/tests/keys`.
fn test_keys_dir() -> PathBuf {
    workspace_root().join("crates/access/tests/keys")
}

/// A gateway on ports chosen once, that can be killed and started again on the same
/// ports (unlike [`crate::GatewayProcess`], which picks fresh ports each start).
#[derive(Debug)]
pub struct PinnedGateway {
    listen: SocketAddr,
    admin: SocketAddr,
    dir: PathBuf,
    envs: Vec<(String, String)>,
    child: Option<Child>,
}

impl PinnedGateway {
    /// Writes the config (`yaml` without `listen`/`admin`), starts the gateway with these
    /// extra environment variables and waits for `/readyz`.
    pub async fn start(yaml: &str, envs: &[(&str, &str)]) -> anyhow::Result<Self> {
        static N: AtomicUsize = AtomicUsize::new(0);
        let (listen, admin) = (free_addr()?, free_addr()?);
        let dir = workspace_root().join("target").join("e2e").join(format!(
            "pinned-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(
            dir.join("gateway.yaml"),
            format!("listen: [\"{listen}\"]\nadmin: \"{admin}\"\n{yaml}"),
        )?;
        let mut gateway = Self {
            listen,
            admin,
            dir,
            envs: envs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            child: None,
        };
        gateway.restart().await?;
        Ok(gateway)
    }

    /// The public listener.
    pub fn addr(&self) -> SocketAddr {
        self.listen
    }

    /// The admin listener.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
    }

    /// Kills the process (SIGKILL: streams are cut without a final frame) and waits
    /// until the public port refuses connections.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let end = Instant::now() + Duration::from_secs(5);
        while Instant::now() < end && TcpStream::connect(self.listen).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Starts the gateway (again) on the same ports and waits for `/readyz` (20 s).
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.kill().await;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("gateway.log"))?;
        let child = Command::new(gateway_binary()?)
            .arg("run")
            .arg("--config")
            .arg(self.dir.join("gateway.yaml"))
            .envs(self.envs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        self.child = Some(child);
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    anyhow::bail!("gateway exited at start with {status}:\n{}", self.log());
                }
            }
            if let Ok(Ok(resp)) =
                tokio::time::timeout(Duration::from_secs(2), http_get(self.admin, "/readyz", &[]))
                    .await
            {
                if resp.status == 200 {
                    return Ok(());
                }
            }
            anyhow::ensure!(Instant::now() < end, "gateway not ready:\n{}", self.log());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The gateway's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("gateway.log")).unwrap_or_default()
    }
}

impl Drop for PinnedGateway {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
