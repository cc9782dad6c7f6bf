//! A bad TLS certificate or key is refused before anything listens: `check`
//! names the file, and `run` exits with an error naming it, instead of a
//! listener panicking in its service thread while `/healthz` says ok.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use sse_gateway_tests::gateway::{run_binary, workspace_root};
use sse_gateway_tests::ports::free_addr;
use sse_gateway_tests::{poll_until, GatewayProcess};

const ROUTE: &str =
    "routes:\n  - name: r\n    path: /p/{s}\n    upstream: {url: \"http://127.0.0.1:9/{s}\"}\n";

fn dev(file: &str) -> String {
    workspace_root()
        .join("configs/dev")
        .join(file)
        .canonicalize()
        .unwrap()
        .display()
        .to_string()
}

fn tls_yaml(cert: &str, key: &str) -> String {
    let tls = free_addr().unwrap();
    format!("tls: {{listen: [\"{tls}\"], cert: \"{cert}\", key: \"{key}\"}}\n{ROUTE}")
}

fn scratch(name: &str) -> std::path::PathBuf {
    let dir =
        std::env::temp_dir().join(format!("sse-gw-tls-startup-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn check_names_a_certificate_that_is_not_pem() {
    let dir = scratch("check");
    let cert = dir.join("cert.pem");
    std::fs::write(&cert, "this is not a certificate\n").unwrap();
    let config = dir.join("gateway.yaml");
    std::fs::write(
        &config,
        tls_yaml(&cert.display().to_string(), &dev("localhost-key.pem")),
    )
    .unwrap();
    let out = run_binary(&["check", "--config", &config.display().to_string()], &dir).unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "tls.cert: invalid certificate file `{}`: no PEM `CERTIFICATE` block found",
            cert.display()
        )),
        "{stdout}"
    );
}

#[test]
fn check_names_a_missing_key() {
    let dir = scratch("missing");
    let key = dir.join("no-such-key.pem");
    let config = dir.join("gateway.yaml");
    std::fs::write(
        &config,
        tls_yaml(&dev("localhost-cert.pem"), &key.display().to_string()),
    )
    .unwrap();
    let out = run_binary(&["check", "--config", &config.display().to_string()], &dir).unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "tls.key: cannot read key file `{}`: no such file",
            key.display()
        )),
        "{stdout}"
    );
}

/// A key that parses but does not belong to the certificate passes `check`
/// (it is well-formed PEM) but `run` refuses to start, naming both files.
#[tokio::test]
async fn run_refuses_a_key_that_does_not_match_the_certificate() {
    let (cert, key) = (dev("localhost-cert.pem"), dev("jwt-es256-private.pem"));
    let err = GatewayProcess::start(&tls_yaml(&cert, &key))
        .await
        .expect_err("the gateway must not start");
    let text = format!("{err:#}");
    assert!(text.contains("exited during start-up"), "{text}");
    assert!(text.contains("cannot start"), "{text}");
    assert!(text.contains(&key), "{text}");
    assert!(text.contains(&cert), "{text}");
}

/// A good pair starts, and the TLS listener answers a TLS handshake.
#[tokio::test]
async fn run_starts_with_the_dev_certificate() {
    let tls = free_addr().unwrap();
    let yaml = format!(
        "tls: {{listen: [\"{tls}\"], cert: \"{}\", key: \"{}\"}}\n{ROUTE}",
        dev("localhost-cert.pem"),
        dev("localhost-key.pem")
    );
    let mut gateway = GatewayProcess::start(&yaml).await.unwrap();
    let listening = poll_until(Duration::from_secs(10), || async move {
        tokio::net::TcpStream::connect(tls).await.is_ok()
    })
    .await;
    assert!(listening, "TLS listener on {tls}; log:\n{}", gateway.log());
    assert!(gateway.is_running());
}
