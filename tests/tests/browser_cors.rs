//! Headless Chromium against a real gateway and a real upstream: a page on origin A opens
//! `EventSource(url, { withCredentials: true })` on the gateway (origin B) with a cookie;
//! a disallowed origin errors without an upstream connection; a fetch-based SSE client
//! with custom headers passes the preflight.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use serde_json::json;
use sse_gateway_tests::browser::{browser_route, mint_es256, unix_now, Chromium, PageServer};
use sse_gateway_tests::{
    deadline, Cors, GatewayConfig, GatewayProcess, Response, Settings, UpstreamServer,
};

/// The route `prices` for pages on `origins` (preflights cached for a minute).
fn config(upstream_url: &str, origins: &[&str]) -> String {
    let route = browser_route("prices", upstream_url, origins);
    GatewayConfig::new()
        .heartbeat("0s")
        .client_retry("500ms")
        .route(route.cors(Cors::origins(origins).credentials().max_age("1m")))
        .to_yaml()
}

fn valid_token() -> String {
    mint_es256(&json!({
        "sub": "browser-user",
        "exp": unix_now() + 600,
        "subscribe": ["prices/*"],
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_credentials_across_origins_receives_events_and_last_event_id() {
    let upstream = UpstreamServer::new()
        .default_response(
            Response::sse()
                .chunk("id: 1\ndata: one\n\n")
                .chunk("id: 2\nevent: message\ndata: two\n\n")
                .chunk("id: 3\ndata: three\n\n"),
        )
        .run()
        .await
        .unwrap();
    let pages = PageServer::start().await.unwrap();
    let gateway =
        GatewayProcess::start(&config(&upstream.url("/stream/{sym}"), &[&pages.origin()]))
            .await
            .unwrap();
    let url = format!("http://{}/prices/AAPL", gateway.addr());
    let page = pages.page(
        "/credentials.html",
        &format!(
            r#"
document.cookie = "session={token}; path=/; SameSite=Lax";
const es = new EventSource("{url}", {{ withCredentials: true }});
const got = [];
es.onmessage = (e) => {{
  got.push({{ data: e.data, lastEventId: e.lastEventId, origin: e.origin }});
  if (got.length === 3) {{
    es.close();
    report({{ done: true, got, withCredentials: es.withCredentials }});
  }}
}};
es.onerror = () => {{
  if (es.readyState === EventSource.CLOSED) report({{ done: true, error: true, got }});
}};
"#,
            token = valid_token(),
        ),
    );
    let _browser = Chromium::open(&page).unwrap();
    let report = pages
        .wait_report(deadline(Duration::from_secs(15)))
        .await
        .unwrap_or_else(|e| panic!("{e}\ngateway log:\n{}", gateway.log()));
    assert_eq!(report["error"], json!(null), "{report}");
    assert_eq!(report["withCredentials"], json!(true));
    let got = report["got"].as_array().unwrap();
    let data: Vec<&str> = got.iter().map(|e| e["data"].as_str().unwrap()).collect();
    assert_eq!(data, ["one", "two", "three"]);
    let ids: Vec<&str> = got
        .iter()
        .map(|e| e["lastEventId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["1", "2", "3"]);
    assert_eq!(
        got[0]["origin"].as_str().unwrap(),
        format!("http://{}", gateway.addr())
    );
    // The cookie reached the gateway, not the upstream: one upstream connection, and the
    // gateway's own request carries no cookie.
    assert_eq!(upstream.connections(), 1);
    let requests = upstream.requests();
    assert!(requests[0].header("cookie").is_none(), "{:?}", requests[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disallowed_origin_errors_and_opens_no_upstream() {
    let upstream = UpstreamServer::new()
        .default_response(Response::sse().chunk("id: 1\ndata: secret\n\n"))
        .run()
        .await
        .unwrap();
    let pages = PageServer::start().await.unwrap();
    let gateway = GatewayProcess::start(&config(
        &upstream.url("/stream/{sym}"),
        &["https://app.example.com", "http://*.example.com"],
    ))
    .await
    .unwrap();
    let url = format!("http://{}/prices/AAPL", gateway.addr());
    let page = pages.page(
        "/disallowed.html",
        &format!(
            r#"
document.cookie = "session={token}; path=/; SameSite=Lax";
const es = new EventSource("{url}", {{ withCredentials: true }});
let messages = 0;
es.onmessage = () => {{ messages += 1; }};
es.onerror = () => {{
  report({{ done: true, error: true, readyState: es.readyState, messages }});
  es.close();
}};
"#,
            token = valid_token(),
        ),
    );
    let _browser = Chromium::open(&page).unwrap();
    let report = pages
        .wait_report(deadline(Duration::from_secs(15)))
        .await
        .unwrap();
    assert_eq!(report["error"], json!(true), "{report}");
    assert_eq!(
        report["readyState"],
        json!(2),
        "EventSource gave up: {report}"
    );
    assert_eq!(report["messages"], json!(0));
    let labels = [("route", "prices"), ("reason", "cors")];
    let (rejected, ok) = gateway
        .wait_metric(
            "sse_gateway_rejected_requests_total",
            &labels,
            Duration::from_secs(5),
            |v| v >= 1.0,
        )
        .await;
    assert!(ok, "cors rejections: {rejected}");
    assert_eq!(
        upstream.connections(),
        0,
        "no upstream for a refused origin"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_based_sse_client_with_custom_headers_passes_the_preflight() {
    let upstream = UpstreamServer::new()
        .default_response(
            Response::sse()
                .chunk("id: 1\ndata: one\n\n")
                .chunk("id: 2\ndata: two\n\n")
                .chunk("id: 3\ndata: three\n\n"),
        )
        .run()
        .await
        .unwrap();
    let pages = PageServer::start().await.unwrap();
    let gateway =
        GatewayProcess::start(&config(&upstream.url("/stream/{sym}"), &[&pages.origin()]))
            .await
            .unwrap();
    // Open the topic first so the replay ring holds events 1..3.
    let mut warm = sse_gateway_tests::SseClient::request(
        gateway.addr(),
        "GET",
        "/prices/MSFT",
        &[("Authorization", &format!("Bearer {}", valid_token()))],
    )
    .await
    .unwrap();
    assert_eq!(warm.status(), 200);
    warm.events_until(3, deadline(Duration::from_secs(10)))
        .await
        .unwrap();
    let url = format!("http://{}/prices/MSFT", gateway.addr());
    // Authorization and Last-Event-ID are not CORS-safelisted: the browser preflights.
    let page = pages.page(
        "/fetch.html",
        &format!(
            r#"
(async () => {{
  const resp = await fetch("{url}", {{
    headers: {{
      "Authorization": "Bearer {token}",
      "Last-Event-ID": "1",
      "Accept": "text/event-stream",
    }},
  }});
  const reader = resp.body.getReader();
  const decoder = new TextDecoder();
  let text = "";
  while (!text.includes("data: three")) {{
    const {{ value, done }} = await reader.read();
    if (done) break;
    text += decoder.decode(value, {{ stream: true }});
  }}
  reader.cancel();
  report({{ done: true, status: resp.status, contentType: resp.headers.get("content-type"), text }});
}})().catch((e) => report({{ done: true, fetchError: String(e) }}));
"#,
            token = valid_token(),
        ),
    );
    let _browser = Chromium::open(&page).unwrap();
    let report = pages
        .wait_report(deadline(Duration::from_secs(15)))
        .await
        .unwrap();
    assert_eq!(report["fetchError"], json!(null), "{report}");
    assert_eq!(report["status"], json!(200), "{report}");
    assert_eq!(report["contentType"], json!("text/event-stream"));
    let text = report["text"].as_str().unwrap();
    assert!(!text.contains("data: one"), "resumed after id 1: {text}");
    assert!(text.contains("id: 2\ndata: two\n\n"), "{text}");
    assert!(text.contains("id: 3\ndata: three\n\n"), "{text}");
    // One upstream connection for the topic, opened by the warm-up client.
    assert_eq!(upstream.connections(), 1);
}
