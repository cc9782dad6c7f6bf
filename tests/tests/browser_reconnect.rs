//! Headless Chromium: the stream goes away and the browser comes back by itself, with
//! `Last-Event-ID`, through CORS with credentials, and misses nothing.
//!
//! * The gateway is killed and started again on the same port: the new process has an
//!   empty replay ring, so it resumes the upstream from the browser's `Last-Event-ID`.
//! * The gateway closes the stream at the token's `exp`, right after an `auth_expired`
//!   event: the page sets a fresh cookie when it gets it (and only then); the browser
//!   reconnects and gets the events it missed from the ring.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use serde_json::{json, Value};
use sse_gateway_tests::browser::{
    browser_route, mint_es256, unix_now, Chromium, PageServer, PinnedGateway,
};
use sse_gateway_tests::{deadline, GatewayConfig, Response, Settings, Upstream, UpstreamServer};

fn config(upstream_url: &str, origin: &str) -> String {
    GatewayConfig::new()
        .heartbeat("0s")
        .client_retry("300ms")
        .linger("30s")
        // A restarted gateway opens the topic from the browser's Last-Event-ID.
        .resume_from_client(true)
        .route(browser_route("ticks", upstream_url, &[origin]))
        .to_yaml()
}

/// An upstream answering every connection with `response`, the page server, and a
/// gateway in front of the upstream that serves the pages' origin.
async fn setup(response: Response) -> (Upstream, PageServer, PinnedGateway) {
    let upstream = UpstreamServer::new()
        .default_response(response)
        .run()
        .await
        .unwrap();
    let pages = PageServer::start().await.unwrap();
    let gateway = PinnedGateway::start(&config(&upstream.url("/live/{sym}"), &pages.origin()), &[])
        .await
        .unwrap();
    (upstream, pages, gateway)
}

/// The page: an EventSource that reports every event, and a final report once `want`
/// events arrived. `refresh` (a token) is set as the cookie when the gateway says the
/// credentials expired (the `auth_expired` event).
fn page_script(url: &str, token: &str, refresh: Option<&str>, want: usize) -> String {
    let refresh = refresh.map_or("null".to_owned(), |t| format!("\"{t}\""));
    format!(
        r#"
document.cookie = "session={token}; path=/; SameSite=Lax";
const refresh = {refresh};
const es = new EventSource("{url}", {{ withCredentials: true }});
const ids = [];
const expired = [];
let opens = 0, errors = 0;
es.onopen = () => {{ opens += 1; }};
es.onerror = () => {{
  errors += 1;
  if (es.readyState === EventSource.CLOSED) report({{ done: true, gaveUp: true, ids, opens, errors, expired }});
}};
es.addEventListener("auth_expired", (e) => {{
  expired.push({{ data: JSON.parse(e.data), lastEventId: e.lastEventId, after: ids.length }});
  if (refresh) document.cookie = "session=" + refresh + "; path=/; SameSite=Lax";
}});
es.onmessage = (e) => {{
  ids.push(Number(e.lastEventId));
  report({{ id: Number(e.lastEventId) }});
  if (ids.length === {want}) {{
    es.close();
    report({{ done: true, ids, opens, errors, expired }});
  }}
}};
"#
    )
}

/// Waits for a progress report with an id of at least `id`.
async fn wait_for_id(pages: &PageServer, id: u64) {
    let end = deadline(Duration::from_secs(10));
    loop {
        let report = pages.next_report(end).await.unwrap();
        assert!(report.get("pageError").is_none(), "{report}");
        assert!(report.get("done").is_none(), "finished early: {report}");
        if report["id"].as_u64().is_some_and(|n| n >= id) {
            return;
        }
    }
}

fn assert_contiguous(report: &Value, want: usize) {
    assert_eq!(report.get("gaveUp"), None, "{report}");
    let ids: Vec<u64> = report["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    let expected: Vec<u64> = (1..=want as u64).collect();
    assert_eq!(ids, expected, "no gap, no duplicate across the reconnect");
    assert!(report["opens"].as_u64().unwrap() >= 2, "{report}");
    assert!(report["errors"].as_u64().unwrap() >= 1, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_gateway_restart_the_browser_resumes_with_last_event_id() {
    let (upstream, pages, mut gateway) = setup(Response::live(20)).await;
    let token = mint_es256(&json!({ "exp": unix_now() + 600, "subscribe": ["ticks/*"] }));
    let url = format!("http://{}/ticks/a", gateway.addr());
    let page = pages.page("/restart.html", &page_script(&url, &token, None, 30));
    let _browser = Chromium::open(&page).unwrap();

    wait_for_id(&pages, 5).await;
    gateway.kill().await;
    gateway.restart().await.unwrap();

    let report = pages
        .wait_report(deadline(Duration::from_secs(15)))
        .await
        .unwrap_or_else(|e| panic!("{e}\ngateway log:\n{}", gateway.log()));
    assert_contiguous(&report, 30);
    // The second gateway opened the upstream from the browser's Last-Event-ID.
    let requests = upstream.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!(requests[0].last_event_id(), None);
    let resumed: u64 = requests[1].last_event_id().unwrap().parse().unwrap();
    assert!(resumed >= 5, "resumed from {resumed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_closed_at_token_expiry_resumes_with_fresh_credentials_from_the_ring() {
    let (upstream, pages, gateway) = setup(Response::live(20)).await;
    // The token must outlive Chromium's start on a loaded CI machine (seconds),
    // and expire while the page is still reading: 8 s of a 20/s stream is ~160
    // events, so ask for 220 to have the expiry fall inside.
    let short = mint_es256(&json!({ "exp": unix_now() + 8, "subscribe": ["ticks/*"] }));
    let fresh = mint_es256(&json!({ "exp": unix_now() + 600, "subscribe": ["ticks/*"] }));
    let url = format!("http://{}/ticks/b", gateway.addr());
    let page = pages.page(
        "/expiry.html",
        &page_script(&url, &short, Some(&fresh), 220),
    );
    let _browser = Chromium::open(&page).unwrap();

    let report = pages
        .wait_report(deadline(Duration::from_secs(40)))
        .await
        .unwrap_or_else(|e| panic!("{e}\ngateway log:\n{}", gateway.log()));
    assert_contiguous(&report, 220);
    // The page was told, once, before the close, with the last id it had.
    let expired = report["expired"].as_array().unwrap();
    assert_eq!(expired.len(), 1, "{report}");
    assert_eq!(
        expired[0]["data"],
        json!({ "reason": "credentials_expired" })
    );
    let after = expired[0]["after"].as_u64().unwrap();
    assert!(after > 0 && after < 220, "{report}");
    assert_eq!(
        expired[0]["lastEventId"],
        json!(after.to_string()),
        "{report}"
    );
    // One upstream connection all along: the missed events came from the replay ring.
    assert_eq!(upstream.connections(), 1);
}

/// An upstream that refuses the topic (404) makes the browser's `EventSource` give up,
/// as it would against the upstream itself, instead of holding it on a 200 with
/// heartbeats and reconnecting forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_404_makes_the_browser_give_up() {
    let (upstream, pages, gateway) = setup(Response::status(404)).await;
    let token = mint_es256(&json!({ "exp": unix_now() + 600, "subscribe": ["ticks/*"] }));
    let url = format!("http://{}/ticks/missing", gateway.addr());
    let page = pages.page("/gone.html", &page_script(&url, &token, None, 1));
    let _browser = Chromium::open(&page).unwrap();
    let report = pages
        .wait_report(deadline(Duration::from_secs(15)))
        .await
        .unwrap_or_else(|e| panic!("{e}\ngateway log:\n{}", gateway.log()));
    assert_eq!(report["gaveUp"], json!(true), "{report}");
    assert_eq!(report["opens"], json!(0), "{report}");
    assert_eq!(report["ids"], json!([]), "{report}");
    // It does not come back (client_retry is 300 ms here).
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(upstream.requests().len(), 1, "{:?}", upstream.requests());
}
