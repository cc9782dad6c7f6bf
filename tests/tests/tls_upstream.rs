//! `https://` upstreams: verified against `upstream.ca_file` (a CA made by the test
//! with the `openssl` command), with SNI from the URL's host; refused when the
//! certificate does not verify (the system roots do not know the test CA); accepted
//! unverified only with `insecure_skip_verify`, which logs a warning.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sse_gateway_tests::{
    deadline, poll_until, GatewayConfig, GatewayProcess, Route, Settings, SseClient,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

const WAIT: Duration = Duration::from_secs(20);

/// A CA and a `localhost` leaf signed by it, made with `openssl`.
struct TestPki {
    dir: PathBuf,
}

impl TestPki {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("sse-gw-pki-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let ext = dir.join("leaf.ext");
        std::fs::write(
            &ext,
            "basicConstraints=CA:FALSE\nsubjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        let run = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(&dir)
                .stdin(Stdio::null())
                .output()
                .expect("the openssl command");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        run(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "ca-key.pem",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=sse-gateway test CA",
        ]);
        run(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "leaf-key.pem",
            "-out",
            "leaf.csr",
            "-subj",
            "/CN=localhost",
        ]);
        run(&[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca-key.pem",
            "-CAcreateserial",
            "-out",
            "leaf.pem",
            "-days",
            "2",
            "-extfile",
            "leaf.ext",
        ]);
        Self { dir }
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }
}

impl Drop for TestPki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// An https SSE origin: every request gets `id: N / data: N` every 20 ms.
struct TlsOrigin {
    port: u16,
    handshakes: Arc<AtomicUsize>,
    accepted: Arc<AtomicUsize>,
    sni: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TlsOrigin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn tls_origin(cert: &Path, key: &Path) -> TlsOrigin {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .unwrap()
        .map(|c| c.unwrap())
        .collect();
    let key = PrivateKeyDer::from_pem_file(key).unwrap();
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (handshakes, accepted, sni) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(Mutex::new(Vec::new())),
    );
    let (h, a, s) = (handshakes.clone(), accepted.clone(), sni.clone());
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            a.fetch_add(1, Ordering::SeqCst);
            let (acceptor, h, s) = (acceptor.clone(), h.clone(), s.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                h.fetch_add(1, Ordering::SeqCst);
                s.lock()
                    .push(tls.get_ref().1.server_name().unwrap_or_default().to_owned());
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16384 {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let header = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
                              transfer-encoding: chunked\r\n\r\n";
                if tls.write_all(header.as_bytes()).await.is_err() {
                    return;
                }
                for n in 1u64..=100_000 {
                    let event = format!("id: {n}\ndata: {n}\n\n");
                    let chunk = format!("{:x}\r\n{event}\r\n", event.len());
                    if tls.write_all(chunk.as_bytes()).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            });
        }
    });
    TlsOrigin {
        port,
        handshakes,
        accepted,
        sni,
        task,
    }
}

/// A gateway on `route` (see [`secure`]) with fast upstream reconnects.
async fn gateway(route: Route) -> GatewayProcess {
    let config = GatewayConfig::quiet()
        .threads(2)
        .upstream_backoff("50ms", "200ms")
        .route(route);
    GatewayProcess::start(&config.to_yaml()).await.unwrap()
}

/// The route `secure` on `/s/{name}` to the origin, by the name `localhost`.
fn secure(origin: &TlsOrigin) -> Route {
    let url = format!("https://localhost:{}/stream/{{name}}", origin.port);
    Route::fan_out("secure", "/s/{name}", &url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_upstream_verified_by_the_ca_file_streams_with_sni() {
    let pki = TestPki::new("ca");
    let origin = tls_origin(&pki.path("leaf.pem"), &pki.path("leaf-key.pem")).await;
    let gateway = gateway(secure(&origin).ca_file(pki.path("ca.pem").display())).await;
    let mut client = SseClient::get(gateway.addr(), "/s/a").await.unwrap();
    assert_eq!(client.status(), 200);
    let events = client.events_until(10, deadline(WAIT)).await.unwrap();
    let first = events[0].id_num().unwrap();
    for (i, event) in events.iter().enumerate() {
        assert_eq!(event.id_num(), Some(first + i as u64));
    }
    assert_eq!(
        origin.sni.lock().first().map(String::as_str),
        Some("localhost")
    );
    assert!(!gateway.log().contains("NOT verified"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_upstream_with_an_unknown_ca_is_refused() {
    let pki = TestPki::new("roots");
    let origin = tls_origin(&pki.path("leaf.pem"), &pki.path("leaf-key.pem")).await;
    // System roots only: the test CA is unknown.
    let gateway = gateway(secure(&origin)).await;
    let mut client = SseClient::get(gateway.addr(), "/s/a").await.unwrap();
    assert_eq!(client.status(), 200);
    let accepted = origin.accepted.clone();
    let tried = poll_until(WAIT, || {
        let accepted = accepted.clone();
        async move { accepted.load(Ordering::SeqCst) >= 3 }
    })
    .await;
    assert!(tried, "the gateway keeps trying");
    assert_eq!(
        origin.handshakes.load(Ordering::SeqCst),
        0,
        "no handshake completes against an unverified certificate"
    );
    let none = client
        .events_until(1, deadline(Duration::from_millis(500)))
        .await;
    assert!(none.is_err() || none.unwrap().is_empty(), "no events");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insecure_skip_verify_streams_and_warns() {
    let pki = TestPki::new("insecure");
    let origin = tls_origin(&pki.path("leaf.pem"), &pki.path("leaf-key.pem")).await;
    let gateway = gateway(secure(&origin).insecure_skip_verify(true)).await;
    let mut client = SseClient::get(gateway.addr(), "/s/a").await.unwrap();
    let events = client.events_until(5, deadline(WAIT)).await.unwrap();
    assert_eq!(events.len(), 5);
    let log = gateway.log();
    assert!(log.contains("insecure_skip_verify is on"), "{log}");
    assert!(log.contains("NOT verified"), "{log}");
}
