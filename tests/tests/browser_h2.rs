//! The reason for HTTP/2: a real browser (headless Chromium) on one page opens 12
//! `EventSource`s to 12 topics on the gateway's origin. Over https (h2 by ALPN) all 12
//! receive events, and the page's Resource Timing says `h2`; the same page over the
//! plain HTTP/1.1 listener gets at most 6 (the browser's per-host connection limit).
//!
//! The page is served through the gateway itself (a `proxy:` route to the test's page
//! server), so it is same-origin with the streams and Resource Timing shows the
//! protocol. The self-signed dev certificate is trusted for this browser only, with
//! `--ignore-certificate-errors-spki-list=<its SPKI hash>`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Stdio};
use std::time::Duration;

use sse_gateway_tests::browser::{Chromium, PageServer};
use sse_gateway_tests::gateway::workspace_root;
use sse_gateway_tests::ports::free_addr;
use sse_gateway_tests::{
    deadline, GatewayConfig, GatewayProcess, Response, Route, Tls, UpstreamServer,
};

const TOPICS: usize = 12;

fn dev(file: &str) -> String {
    workspace_root()
        .join("configs/dev")
        .join(file)
        .canonicalize()
        .unwrap()
        .display()
        .to_string()
}

/// base64(SHA-256(SubjectPublicKeyInfo)) of the dev certificate, by `openssl`.
fn spki_hash() -> String {
    let script = format!(
        "openssl x509 -pubkey -noout -in '{}' | openssl pkey -pubin -outform der \
         | openssl dgst -sha256 -binary | base64",
        dev("localhost-cert.pem")
    );
    let out = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hash = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert_eq!(hash.len(), 44, "a base64 SHA-256: {hash}");
    hash
}

/// Headless Chromium trusting the dev certificate's key.
fn open_trusting(url: &str, spki: &str) -> Chromium {
    let extra = [
        "--mute-audio".to_owned(),
        format!("--ignore-certificate-errors-spki-list={spki}"),
    ];
    Chromium::launch(url, &extra).unwrap()
}

/// The page: 12 EventSources; after all 12 delivered an event (or 6 s), one probe
/// fetch on the same origin (h2 only: over HTTP/1.1 every connection is taken), then a
/// report to the page server's own origin (never queued behind the streams).
fn script(reports: &str, probe: bool) -> String {
    format!(
        r#"
const N = {TOPICS};
const opened = new Set(), got = new Set();
for (let i = 0; i < N; i++) {{
  const es = new EventSource('/t/topic' + i);
  es.onopen = () => opened.add(i);
  es.onmessage = () => got.add(i);
}}
const send = (obj) => fetch('{reports}/report', {{ method: 'POST', mode: 'no-cors', body: JSON.stringify(obj) }});
const t0 = Date.now();
const tick = async () => {{
  if (got.size < N && Date.now() - t0 < 6000) {{ setTimeout(tick, 100); return; }}
  let probe = null;
  if ({probe}) {{
    const r = await fetch('/page/probe.txt', {{ cache: 'no-store' }});
    await r.text();
    probe = performance.getEntriesByType('resource')
      .filter((e) => e.name.includes('/page/probe.txt'))
      .map((e) => e.nextHopProtocol);
  }}
  const nav = performance.getEntriesByType('navigation')[0].nextHopProtocol;
  send({{ done: true, opened: opened.size, got: got.size, nav, probe }});
}};
tick();
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twelve_event_sources_share_h2_but_http1_stops_at_six() {
    let upstream = UpstreamServer::new()
        .default_response(Response::live(20))
        .run()
        .await
        .unwrap();
    let pages = PageServer::start().await.unwrap();
    let tls = free_addr().unwrap();
    let config = GatewayConfig::quiet()
        .threads(2)
        .tls(Tls::new(
            tls,
            dev("localhost-cert.pem"),
            dev("localhost-key.pem"),
        ))
        .route(Route::fan_out(
            "topics",
            "/t/{name}",
            &upstream.url("/stream/{name}"),
        ))
        .route(Route::proxy("page", "/page/{*rest}", &pages.origin()));
    let gateway = GatewayProcess::start(&config.to_yaml()).await.unwrap();
    let spki = spki_hash();
    pages.page("/page/probe.txt", "");
    let origin = pages.origin();

    // HTTPS: HTTP/2, all twelve.
    pages.page("/page/h2.html", &script(&origin, true));
    let browser = open_trusting(
        &format!("https://127.0.0.1:{}/page/h2.html", tls.port()),
        &spki,
    );
    let report = pages
        .wait_report(deadline(Duration::from_secs(40)))
        .await
        .unwrap_or_else(|e| panic!("{e}; gateway log:\n{}", gateway.log()));
    drop(browser);
    assert_eq!(report["nav"], "h2", "{report}");
    assert_eq!(report["probe"], serde_json::json!(["h2"]), "{report}");
    assert_eq!(report["opened"], TOPICS, "{report}");
    assert_eq!(
        report["got"], TOPICS,
        "all 12 streams receive events over h2: {report}"
    );

    // Plain HTTP/1.1: the same page is stuck at six.
    pages.page("/page/h1.html", &script(&origin, false));
    let browser = open_trusting(
        &format!("http://127.0.0.1:{}/page/h1.html", gateway.addr().port()),
        &spki,
    );
    let report = pages
        .wait_report(deadline(Duration::from_secs(40)))
        .await
        .unwrap_or_else(|e| panic!("{e}; gateway log:\n{}", gateway.log()));
    drop(browser);
    assert_eq!(report["nav"], "http/1.1", "{report}");
    let got = report["got"].as_u64().unwrap();
    let opened = report["opened"].as_u64().unwrap();
    assert!(
        (1..=6).contains(&got),
        "HTTP/1.1 delivers to at most 6: {report}"
    );
    assert!(
        opened <= 6,
        "at most 6 EventSources open over HTTP/1.1: {report}"
    );
}
