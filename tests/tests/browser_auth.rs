//! Headless Chromium: refused credentials. With `withCredentials: true` from origin A,
//! a missing, expired or badly signed session cookie, and a token that does not grant
//! the topic, each make the `EventSource` error out for good, and the upstream never
//! sees a connection for them. A valid cookie on another topic proves the setup works.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use serde_json::json;
use sse_gateway_tests::browser::{
    browser_route, es256_public_key_path, mint_es256, mint_hs256, unix_now, Chromium, PageServer,
};
use sse_gateway_tests::{
    deadline, GatewayConfig, GatewayProcess, Response, Settings, UpstreamServer,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_expired_forged_and_unauthorized_cookies_error_without_upstream() {
    let upstream = UpstreamServer::new()
        .default_response(Response::sse().chunk("id: 1\ndata: hello\n\n"))
        .run()
        .await
        .unwrap();
    let pages = PageServer::start().await.unwrap();
    let config = GatewayConfig::new()
        .heartbeat("0s")
        .client_retry("500ms")
        .route(browser_route(
            "prices",
            &upstream.url("/stream/{sym}"),
            &[&pages.origin()],
        ));
    let gateway = GatewayProcess::start(&config.to_yaml()).await.unwrap();

    let now = unix_now();
    let claims = |exp: u64, topics: &[&str]| json!({ "sub": "u", "exp": exp, "subscribe": topics });
    let valid = mint_es256(&claims(now + 600, &["prices/*"]));
    let expired = mint_es256(&claims(now - 60, &["prices/*"]));
    // A valid signature over other claims: the payload swapped for one granting `*`.
    let other_payload = mint_es256(&claims(now + 600, &["*"]));
    let parts: Vec<&str> = valid.split('.').collect();
    let swapped = format!(
        "{}.{}.{}",
        parts[0],
        other_payload.split('.').nth(1).unwrap(),
        parts[2]
    );
    // Algorithm confusion: HS256 keyed with the server's public key.
    let public_pem = std::fs::read(es256_public_key_path()).unwrap();
    let confused = mint_hs256(&public_pem, &claims(now + 600, &["*"]));
    let news_only = mint_es256(&claims(now + 600, &["news/*"]));

    let cases = json!([
        { "name": "missing", "cookie": null, "symbol": "AAPL" },
        { "name": "expired", "cookie": expired, "symbol": "AAPL" },
        { "name": "swapped-payload", "cookie": swapped, "symbol": "AAPL" },
        { "name": "alg-confusion", "cookie": confused, "symbol": "AAPL" },
        { "name": "topic-not-granted", "cookie": news_only, "symbol": "AAPL" },
        { "name": "control", "cookie": valid, "symbol": "GOOD" },
    ]);
    let base = format!("http://{}/prices/", gateway.addr());
    let page = pages.page(
        "/auth.html",
        &format!(
            r#"
const cases = {cases};
const one = (c) => new Promise((resolve) => {{
  if (c.cookie === null) document.cookie = "session=; path=/; max-age=0";
  else document.cookie = "session=" + c.cookie + "; path=/; SameSite=Lax";
  const es = new EventSource("{base}" + c.symbol, {{ withCredentials: true }});
  let opened = false;
  es.onopen = () => {{ opened = true; }};
  es.onmessage = (e) => {{ es.close(); resolve({{ name: c.name, opened, data: e.data }}); }};
  es.onerror = () => {{
    const readyState = es.readyState;
    es.close();
    resolve({{ name: c.name, opened, error: true, readyState }});
  }};
}});
(async () => {{
  const results = [];
  for (const c of cases) results.push(await one(c));
  report({{ done: true, results }});
}})();
"#
        ),
    );
    let _browser = Chromium::open(&page).unwrap();
    let report = pages
        .wait_report(deadline(Duration::from_secs(15)))
        .await
        .unwrap_or_else(|e| panic!("{e}\ngateway log:\n{}", gateway.log()));
    let results = report["results"].as_array().unwrap();
    assert_eq!(results.len(), 6, "{report}");
    for result in &results[..5] {
        assert_eq!(result["error"], json!(true), "{result}");
        assert_eq!(result["opened"], json!(false), "{result}");
        assert_eq!(result["readyState"], json!(2), "gave up for good: {result}");
    }
    let control = &results[5];
    assert_eq!(control["data"], json!("hello"), "{control}");

    let (rejected, ok) = gateway
        .wait_metric(
            "sse_gateway_rejected_requests_total",
            &[("route", "prices"), ("reason", "auth")],
            Duration::from_secs(5),
            |v| v >= 5.0,
        )
        .await;
    assert!(ok, "auth rejections: {rejected}");
    // Only the control topic ever reached the upstream.
    let requests = upstream.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].path, "/stream/GOOD");
}
