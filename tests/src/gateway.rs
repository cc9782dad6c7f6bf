//! The real `sse-gateway` binary as a child process.
//!
//! [`GatewayProcess::start`] takes a YAML config *without* `listen` and `admin` (the
//! harness adds both, on free loopback ports), writes it to a fresh directory under
//! `<target>/e2e/`, runs `sse-gateway run --config FILE` with its output in `gateway.log`
//! beside it, and polls `GET /readyz` on the admin port until it answers 200 (deadline
//! 20 s). If the process exits first because a port was taken meanwhile, it starts again
//! on fresh ports (3 attempts). Drop kills the process; the directory is removed unless
//! the test is panicking (then the log stays for reading).
//!
//! The binary: `$SSE_GATEWAY_BIN` if set; otherwise `cargo build -p sse-gateway` runs
//! once per test process (cheap when up to date, and never a stale binary) and the
//! binary is taken from `$CARGO_TARGET_DIR/debug/` or the workspace `target/debug/`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::client::{http_get, HttpResponse};
use crate::ports::free_addr;

/// The workspace root (the directory holding `configs/`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                workspace_root().join(dir)
            }
        }
        None => workspace_root().join("target"),
    }
}

/// The path of the `sse-gateway` binary, building it first (once per process).
pub fn gateway_binary() -> anyhow::Result<PathBuf> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            if let Some(bin) = std::env::var_os("SSE_GATEWAY_BIN") {
                return Ok(PathBuf::from(bin));
            }
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let out = Command::new(cargo)
                .args(["build", "-p", "sse-gateway"])
                .current_dir(workspace_root())
                .stdin(Stdio::null())
                .output()
                .map_err(|e| format!("running cargo build: {e}"))?;
            let bin = target_dir().join("debug").join("sse-gateway");
            if !out.status.success() {
                return Err(format!(
                    "cargo build -p sse-gateway failed:\n{}",
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
            if !bin.exists() {
                return Err(format!("built, but {} does not exist", bin.display()));
            }
            Ok(bin)
        })
        .clone()
        .map_err(anyhow::Error::msg)
}

/// Runs the binary with these arguments in `dir` to completion (for `check`).
pub fn run_binary(args: &[&str], dir: &Path) -> anyhow::Result<Output> {
    Ok(Command::new(gateway_binary()?)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()?)
}

fn scratch_dir() -> anyhow::Result<PathBuf> {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = target_dir().join("e2e").join(format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// A running gateway process.
#[derive(Debug)]
pub struct GatewayProcess {
    child: Child,
    listen: SocketAddr,
    admin: SocketAddr,
    dir: PathBuf,
}

impl GatewayProcess {
    /// Starts `sse-gateway run` with `yaml` plus `listen`/`admin` on free ports, and
    /// waits until `/readyz` answers 200.
    pub async fn start(yaml: &str) -> anyhow::Result<Self> {
        Self::launch(Some(yaml), &[]).await
    }

    /// [`start`](Self::start), with `env` added to the process's environment.
    pub async fn start_with_env(yaml: &str, env: &[(&str, &str)]) -> anyhow::Result<Self> {
        Self::launch(Some(yaml), env).await
    }

    /// Starts `sse-gateway demo --listen A --admin B` on free ports and waits until the
    /// demo page `/` answers 200 on the public listener.
    pub async fn start_demo() -> anyhow::Result<Self> {
        Self::launch(None, &[]).await
    }

    async fn launch(yaml: Option<&str>, env: &[(&str, &str)]) -> anyhow::Result<Self> {
        let bin = gateway_binary()?;
        let mut last_error = None;
        for _attempt in 0..3 {
            let listen = free_addr()?;
            let admin = free_addr()?;
            let dir = scratch_dir()?;
            let mut command = Command::new(&bin);
            match yaml {
                Some(yaml) => {
                    let config = dir.join("gateway.yaml");
                    std::fs::write(
                        &config,
                        format!("listen: [\"{listen}\"]\nadmin: \"{admin}\"\n{yaml}"),
                    )?;
                    command.arg("run").arg("--config").arg(&config);
                }
                None => {
                    command
                        .arg("demo")
                        .arg("--listen")
                        .arg(listen.to_string())
                        .arg("--admin")
                        .arg(admin.to_string());
                }
            }
            let log = std::fs::File::create(dir.join("gateway.log"))?;
            let child = command
                .envs(env.iter().copied())
                .current_dir(&dir)
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()?;
            let mut gateway = Self {
                child,
                listen,
                admin,
                dir,
            };
            let (ready_on, ready_path) = if yaml.is_some() {
                (admin, "/readyz")
            } else {
                (listen, "/")
            };
            match gateway
                .wait_ready(ready_on, ready_path, Duration::from_secs(20))
                .await
            {
                Ok(()) => return Ok(gateway),
                Err(e) => {
                    let log = gateway.log();
                    let retry = log.contains("in use") || log.contains("AddrInUse");
                    last_error = Some(e.context(format!("gateway log:\n{log}")));
                    if !retry {
                        break;
                    }
                }
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("gateway did not start")))
    }

    async fn wait_ready(
        &mut self,
        addr: SocketAddr,
        path: &str,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let end = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                anyhow::bail!("sse-gateway exited during start-up with {status}");
            }
            if let Ok(Ok(resp)) =
                tokio::time::timeout(Duration::from_secs(2), http_get(addr, path, &[])).await
            {
                if resp.status == 200 {
                    return Ok(());
                }
            }
            anyhow::ensure!(
                Instant::now() < end,
                "{path} did not answer 200 within {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The public listener.
    pub fn addr(&self) -> SocketAddr {
        self.listen
    }

    /// The admin listener.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
    }

    /// The process's output so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("gateway.log")).unwrap_or_default()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// `GET path` on the admin listener.
    pub async fn admin_get(&self, path: &str) -> anyhow::Result<HttpResponse> {
        http_get(self.admin, path, &[]).await
    }

    /// The `/metrics` text.
    pub async fn metrics(&self) -> anyhow::Result<String> {
        let resp = self.admin_get("/metrics").await?;
        anyhow::ensure!(resp.status == 200, "/metrics answered {}", resp.status);
        Ok(resp.text())
    }

    /// The `/topics` body.
    pub async fn topics(&self) -> anyhow::Result<String> {
        let resp = self.admin_get("/topics").await?;
        anyhow::ensure!(resp.status == 200, "/topics answered {}", resp.status);
        Ok(resp.text())
    }

    /// The sum of the samples of metric `name` whose labels include all of `labels`
    /// (0 when there is none).
    pub async fn metric(&self, name: &str, labels: &[(&str, &str)]) -> anyhow::Result<f64> {
        Ok(metric_sum(&self.metrics().await?, name, labels))
    }

    /// Polls `/metrics` until `pred(value)` holds for [`GatewayProcess::metric`]; returns
    /// the last value and whether it held.
    pub async fn wait_metric(
        &self,
        name: &str,
        labels: &[(&str, &str)],
        timeout: Duration,
        pred: impl Fn(f64) -> bool,
    ) -> (f64, bool) {
        let end = Instant::now() + timeout;
        loop {
            let value = self.metric(name, labels).await.unwrap_or(f64::NAN);
            if pred(value) {
                return (value, true);
            }
            if Instant::now() >= end {
                return (value, false);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Sums the samples of `name` (exact metric name, not `_bucket`/`_sum` variants unless
/// named) whose label set contains every `key="value"` of `labels`.
pub fn metric_sum(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?;
            let (label_set, value) = if let Some(rest) = rest.strip_prefix('{') {
                let (set, value) = rest.split_once('}')?;
                (set, value)
            } else if rest.starts_with(' ') {
                ("", rest)
            } else {
                return None;
            };
            let all = labels.iter().all(|(k, v)| {
                label_set
                    .split(',')
                    .any(|kv| kv.trim() == format!("{k}=\"{v}\""))
            });
            if !all {
                return None;
            }
            value.split_whitespace().next()?.parse::<f64>().ok()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::metric_sum;

    #[test]
    fn sums_matching_samples() {
        let text = "# HELP x\nsse_gateway_subscribers{route=\"a\",topic=\"t\"} 3\n\
                    sse_gateway_subscribers{route=\"b\",topic=\"u\"} 4\nsse_gateway_subscribers_x 9\nother 1\n";
        assert_eq!(metric_sum(text, "sse_gateway_subscribers", &[]), 7.0);
        assert_eq!(
            metric_sum(text, "sse_gateway_subscribers", &[("route", "b")]),
            4.0
        );
        assert_eq!(
            metric_sum(text, "sse_gateway_subscribers", &[("route", "c")]),
            0.0
        );
        assert_eq!(metric_sum("up 1\n", "up", &[]), 1.0);
    }
}
