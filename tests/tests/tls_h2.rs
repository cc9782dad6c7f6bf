//! HTTP/2 to clients: over TLS (ALPN h2) and cleartext h2c, with a real h2 client
//! (the `h2` crate over tokio-rustls, trusting `configs/dev/localhost-cert.pem`).
//! Fan-out, `Last-Event-ID` replay and heartbeats work on streams that share one
//! connection; a reset stream leaves its siblings streaming; the concurrent-stream
//! limit comes from `tls.h2_max_concurrent_streams`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use h2::client::SendRequest;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, ServerName};
use sse_gateway_tests::gateway::workspace_root;
use sse_gateway_tests::ports::free_addr;
use sse_gateway_tests::{
    deadline, poll_until, GatewayConfig, GatewayProcess, Response, Route, Settings, SseClient,
    SseEvent, SseParser, Tls, Upstream, UpstreamServer,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::{
    verify_tls12_signature, verify_tls13_signature, CryptoProvider,
};
use tokio_rustls::rustls::pki_types::UnixTime;
use tokio_rustls::rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio_rustls::TlsConnector;

const WAIT: Duration = Duration::from_secs(20);

fn dev(file: &str) -> String {
    workspace_root()
        .join("configs/dev")
        .join(file)
        .canonicalize()
        .unwrap()
        .display()
        .to_string()
}

/// A TLS listener on `listen` with the dev certificate.
fn dev_tls(listen: SocketAddr) -> Tls {
    Tls::new(listen, dev("localhost-cert.pem"), dev("localhost-key.pem"))
}

/// A gateway with a TLS listener (and h2c on the plain one) in front of a live
/// upstream (`/live/{name}`, 200 events/s) and a silent one (`/quiet/{name}`,
/// heartbeats every 200 ms).
struct Setup {
    _live: Upstream,
    _quiet: Upstream,
    gateway: GatewayProcess,
    tls: SocketAddr,
}

async fn setup(max_streams: u32) -> Setup {
    let live = UpstreamServer::new()
        .default_response(Response::live(200))
        .run()
        .await
        .unwrap();
    let quiet = UpstreamServer::new()
        .default_response(Response::sse())
        .run()
        .await
        .unwrap();
    let tls = free_addr().unwrap();
    let config = GatewayConfig::quiet()
        .threads(2)
        .h2c(true)
        .tls(dev_tls(tls).h2_max_concurrent_streams(max_streams.into()))
        .linger("30s")
        .upstream_idle_timeout("0s")
        .replay(10000, "5m")
        // Short, so that the tests show h2 streams outlive the header deadline.
        .limit("request_header_timeout", "1s")
        .route(Route::fan_out(
            "live",
            "/live/{name}",
            &live.url("/stream/{name}"),
        ))
        .route(
            Route::fan_out("quiet", "/quiet/{name}", &quiet.url("/stream/{name}"))
                .heartbeat("200ms"),
        );
    let gateway = GatewayProcess::start(&config.to_yaml()).await.unwrap();
    Setup {
        _live: live,
        _quiet: quiet,
        gateway,
        tls,
    }
}

/// Trusts exactly the dev certificate (it is self-signed with `CA:TRUE`, which
/// webpki refuses as an end entity), still checking the handshake signatures.
#[derive(Debug)]
struct Pinned {
    cert: CertificateDer<'static>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, tokio_rustls::rustls::Error> {
        if end_entity.as_ref() == self.cert.as_ref() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(tokio_rustls::rustls::Error::General(
                "not the dev certificate".into(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, tokio_rustls::rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, tokio_rustls::rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// An h2 connection over TLS; returns it and the ALPN protocol negotiated.
async fn connect_tls(addr: SocketAddr) -> (SendRequest<Bytes>, Vec<u8>) {
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let pinned = Pinned {
        cert: CertificateDer::from_pem_file(dev("localhost-cert.pem")).unwrap(),
        provider: provider.clone(),
    };
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(pinned))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let tcp = connect(addr).await;
    let name = ServerName::try_from("localhost").unwrap();
    let tls = TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap();
    let alpn = tls.get_ref().1.alpn_protocol().unwrap_or_default().to_vec();
    // A large connection window: a stalled stream must not starve its siblings
    // at the client's own connection-level flow control.
    let (send, connection) = h2::client::Builder::new()
        .initial_connection_window_size(16 << 20)
        .handshake(tls)
        .await
        .unwrap();
    tokio::spawn(async move {
        let _ = connection.await;
    });
    (send, alpn)
}

/// A TCP connection to `addr`, retried for a few seconds: the TLS listener
/// belongs to the proxy service, which may bind it a moment after the admin
/// listener answers `/readyz`.
async fn connect(addr: SocketAddr) -> tokio::net::TcpStream {
    let end = deadline(Duration::from_secs(5));
    loop {
        match tokio::net::TcpStream::connect(addr).await {
            Ok(tcp) => return tcp,
            Err(_) if Instant::now() < end => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("connecting to {addr}: {e}"),
        }
    }
}

/// An h2c (prior knowledge) connection.
async fn connect_h2c(addr: SocketAddr) -> SendRequest<Bytes> {
    let tcp = connect(addr).await;
    let (send, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(async move {
        let _ = connection.await;
    });
    send
}

/// One SSE stream on an h2 connection. A task drains its body all the time
/// (the h2 client sends GOAWAY ENHANCE_YOUR_CALM when too many small DATA
/// frames sit unread); dropping the stream aborts the task, which resets it.
struct H2Stream {
    events: mpsc::UnboundedReceiver<SseEvent>,
    comments: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Drop for H2Stream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl H2Stream {
    async fn open(
        send: &SendRequest<Bytes>,
        scheme: &str,
        path: &str,
        last_id: Option<u64>,
    ) -> Self {
        let mut request = http::Request::get(format!("{scheme}://localhost{path}"))
            .header("accept", "text/event-stream");
        if let Some(id) = last_id {
            request = request.header("last-event-id", id.to_string());
        }
        let mut send = send.clone().ready().await.unwrap();
        let (response, _stream) = send.send_request(request.body(()).unwrap(), true).unwrap();
        let response = tokio::time::timeout(WAIT, response).await.unwrap().unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers().get("content-type").unwrap(),
            "text/event-stream"
        );
        let mut body = response.into_body();
        let (tx, events) = mpsc::unbounded_channel();
        let comments = Arc::new(AtomicUsize::new(0));
        let seen = comments.clone();
        let task = tokio::spawn(async move {
            let mut parser = SseParser::new();
            while let Some(Ok(chunk)) = body.data().await {
                let _ = body.flow_control().release_capacity(chunk.len());
                parser.feed(&chunk);
                seen.store(parser.comments().len(), Ordering::SeqCst);
                while let Some(event) = parser.pop_event() {
                    if tx.send(event).is_err() {
                        return;
                    }
                }
            }
        });
        Self {
            events,
            comments,
            task,
        }
    }

    /// The next `n` events (panics at the deadline).
    async fn events(&mut self, n: usize) -> Vec<SseEvent> {
        let end = deadline(WAIT);
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let left = end.saturating_duration_since(Instant::now());
            let event = tokio::time::timeout(left, self.events.recv())
                .await
                .expect("events before the deadline")
                .expect("the stream is open");
            out.push(event);
        }
        out
    }
}

fn assert_consecutive(events: &[SseEvent]) -> u64 {
    let first = events[0].id_num().unwrap();
    for (i, event) in events.iter().enumerate() {
        assert_eq!(event.id_num(), Some(first + i as u64), "event #{i}");
        let number = event.data.split(' ').next().unwrap_or_default();
        assert_eq!(number, (first + i as u64).to_string());
    }
    first + events.len() as u64 - 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_h2_fan_out_replay_and_heartbeats_share_one_connection() {
    let s = setup(100).await;
    let (send, alpn) = connect_tls(s.tls).await;
    assert_eq!(alpn, b"h2", "ALPN picks HTTP/2");

    // Two subscribers of one topic on one connection see the same events.
    let mut a = H2Stream::open(&send, "https", "/live/x", None).await;
    let mut b = H2Stream::open(&send, "https", "/live/x", None).await;
    let last_a = assert_consecutive(&a.events(100).await);
    let events_b = b.events(100).await;
    assert_consecutive(&events_b);

    // A resume on a third stream starts exactly after the id it names.
    let mut resumed = H2Stream::open(&send, "https", "/live/x", Some(last_a)).await;
    let events = resumed.events(50).await;
    assert_eq!(
        events[0].id_num(),
        Some(last_a + 1),
        "replay has no gap or duplicate"
    );
    assert_consecutive(&events);

    // Every stream outlives the 1 s header deadline: the connection serves
    // requests, and counts once.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_consecutive(&a.events(20).await);
    assert_consecutive(&resumed.events(20).await);
    let open = s
        .gateway
        .metric("sse_gateway_open_connections", &[])
        .await
        .unwrap();
    assert_eq!(open, 1.0, "one h2 connection");

    // A silent topic gets heartbeat comments over h2.
    let mut quiet = H2Stream::open(&send, "https", "/quiet/q", None).await;
    let comments = quiet.comments.clone();
    let beating = poll_until(WAIT, || {
        let comments = comments.clone();
        async move { comments.load(Ordering::SeqCst) >= 3 }
    })
    .await;
    assert!(beating, "heartbeat comments on an h2 stream");
    assert!(
        quiet.events.try_recv().is_err(),
        "heartbeats are not events"
    );

    // The gateway counts four subscribers, all of them on this one connection.
    let (n, ok) = s
        .gateway
        .wait_metric("sse_gateway_subscribers", &[], WAIT, |v| v >= 4.0)
        .await;
    assert!(ok, "subscribers = {n}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_stream_leaves_its_siblings_streaming() {
    let s = setup(100).await;
    let (send, _) = connect_tls(s.tls).await;
    let mut keep1 = H2Stream::open(&send, "https", "/live/r", None).await;
    let mut keep2 = H2Stream::open(&send, "https", "/live/s", None).await;
    let mut gone = H2Stream::open(&send, "https", "/live/r", None).await;
    gone.events(10).await;
    let (n, ok) = s
        .gateway
        .wait_metric("sse_gateway_subscribers", &[], WAIT, |v| v >= 3.0)
        .await;
    assert!(ok, "subscribers = {n}");

    // Dropping the receiving half resets the stream (RST_STREAM CANCEL).
    drop(gone);
    let (n, ok) = s
        .gateway
        .wait_metric("sse_gateway_subscribers", &[], WAIT, |v| v <= 2.0)
        .await;
    assert!(ok, "the reset stream is unsubscribed: subscribers = {n}");

    // The siblings keep streaming without a gap.
    assert_consecutive(&keep1.events(200).await);
    assert_consecutive(&keep2.events(200).await);
    // And the connection still takes new streams.
    let mut again = H2Stream::open(&send, "https", "/live/r", None).await;
    assert_consecutive(&again.events(20).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_and_http1_share_the_plain_port() {
    let s = setup(100).await;
    let send = connect_h2c(s.gateway.addr()).await;
    let mut h2 = H2Stream::open(&send, "http", "/live/c", None).await;
    let last = assert_consecutive(&h2.events(50).await);

    let mut h1 = SseClient::resume(s.gateway.addr(), "/live/c", &last.to_string())
        .await
        .unwrap();
    assert_eq!(h1.status(), 200);
    let events = h1.events_until(20, deadline(WAIT)).await.unwrap();
    assert_eq!(
        events[0].id_num(),
        Some(last + 1),
        "HTTP/1.1 resume on the same port"
    );
}

/// With `h2_max_concurrent_streams: 2` a third stream waits until one of the
/// first two ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_concurrent_stream_limit_is_configured() {
    let s = setup(2).await;
    let (send, _) = connect_tls(s.tls).await;
    let mut first = H2Stream::open(&send, "https", "/live/m1", None).await;
    let mut second = H2Stream::open(&send, "https", "/live/m2", None).await;
    first.events(5).await;
    second.events(5).await;

    let third = {
        let send = send.clone();
        tokio::spawn(async move {
            let mut stream = H2Stream::open(&send, "https", "/live/m3", None).await;
            stream.events(5).await.len()
        })
    };
    // Bounded wait: while two streams are open the third gets no response.
    let held = tokio::time::timeout(Duration::from_millis(1500), async {
        let (_, ok) = s
            .gateway
            .wait_metric(
                "sse_gateway_subscribers",
                &[],
                Duration::from_millis(1500),
                |v| v >= 3.0,
            )
            .await;
        ok
    })
    .await
    .unwrap_or(false);
    assert!(
        !held,
        "a third concurrent stream was admitted despite the limit of 2"
    );

    drop(first);
    let got = tokio::time::timeout(WAIT, third).await.unwrap().unwrap();
    assert_eq!(got, 5, "the third stream runs once a slot is free");
    second.events(5).await;
}

/// A stream whose client stops reading: the flow-control window fills, the
/// gateway's write waits, and the write timeout (30 s) cuts the stream, not the
/// slow-client queue (64 MiB here, far from full). Its sibling on the same
/// connection keeps streaming.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_h2_stream_is_cut_by_the_write_timeout() {
    let live = UpstreamServer::new()
        .default_response(Response::live(100).padding(1000))
        .run()
        .await
        .unwrap();
    let tls = free_addr().unwrap();
    let config = GatewayConfig::quiet()
        .threads(2)
        .tls(dev_tls(tls))
        .linger("30s")
        .client_queue("64MiB")
        .route(Route::fan_out(
            "live",
            "/live/{name}",
            &live.url("/stream/{name}"),
        ));
    let gateway = GatewayProcess::start(&config.to_yaml()).await.unwrap();
    let (send, _) = connect_tls(tls).await;
    let mut sibling = H2Stream::open(&send, "https", "/live/moving", None).await;

    let mut stalled_send = send.clone().ready().await.unwrap();
    let request = http::Request::get("https://localhost/live/stalled")
        .body(())
        .unwrap();
    let (response, _req) = stalled_send.send_request(request, true).unwrap();
    let response = tokio::time::timeout(WAIT, response).await.unwrap().unwrap();
    assert_eq!(response.status(), 200);
    let _held_unread = response.into_body();

    let topic = [("route", "live"), ("topic", "/live/stalled")];
    let (n, ok) = gateway
        .wait_metric("sse_gateway_subscribers", &topic, WAIT, |v| v >= 1.0)
        .await;
    assert!(ok, "the stalled stream subscribed: {n}");
    let started = Instant::now();
    let (n, ok) = gateway
        .wait_metric(
            "sse_gateway_subscribers",
            &topic,
            Duration::from_secs(60),
            |v| v < 1.0,
        )
        .await;
    assert!(ok, "the stalled stream was never cut: subscribers = {n}");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(20),
        "cut after {took:?}: not by the 30 s write timeout"
    );
    let slow = gateway
        .metric("sse_gateway_slow_client_disconnects_total", &topic)
        .await
        .unwrap();
    assert_eq!(slow, 0.0, "cut by the write timeout, not the queue");

    // The sibling kept streaming all along and still does.
    let mut drained = 0;
    while sibling.events.try_recv().is_ok() {
        drained += 1;
    }
    assert!(
        drained >= 1000,
        "the sibling received {drained} events meanwhile"
    );
    assert_consecutive(&sibling.events(50).await);
}
