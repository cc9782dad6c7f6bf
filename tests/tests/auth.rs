//! Credentials at the edge, over raw sockets: refusals are 401/403 with a fixed body,
//! no upstream connection and `reason="auth"`; bearer tokens work; a stream ends at its
//! token's `exp` with the `auth_expired` event last, on both write paths; cookie-presence
//! routes and proxy routes are checked too; a broken key file stops the gateway at
//! start-up.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use serde_json::json;
use sse_gateway_tests::browser::{es256_public_key_path, mint_es256, unix_now};
use sse_gateway_tests::{
    deadline, Auth, GatewayConfig, GatewayProcess, Response, Route, Settings, SseClient,
    UpstreamServer,
};

async fn start(upstream_base: &str) -> GatewayProcess {
    let key = es256_public_key_path();
    let jwt = || Auth::cookie("session").jwt("ES256", key.display());
    let config = GatewayConfig::quiet()
        .route(
            Route::fan_out(
                "prices",
                "/prices/{symbol}",
                &format!("{upstream_base}/stream/{{symbol}}"),
            )
            .topic("prices/{symbol}")
            .auth(jwt().topics_claim("subscribe")),
        )
        .route(
            Route::fan_out(
                "quotes",
                "/quotes/{symbol}",
                &format!("{upstream_base}/stream/{{symbol}}"),
            )
            .topic("prices/{symbol}-session")
            .direct_write(false)
            .auth(jwt().topics_claim("subscribe")),
        )
        .route(
            Route::fan_out(
                "members",
                "/members/{name}",
                &format!("{upstream_base}/stream/{{name}}"),
            )
            .auth(Auth::cookie("member")),
        )
        .route(Route::proxy("api", "/api/{*rest}", upstream_base).auth(jwt()));
    GatewayProcess::start(&config.to_yaml()).await.unwrap()
}

fn token(exp_in: u64, topics: &[&str]) -> String {
    mint_es256(&json!({ "sub": "u1", "exp": unix_now() + exp_in, "subscribe": topics }))
}

async fn read_all(gateway: &GatewayProcess, path: &str, headers: &[(&str, &str)]) -> SseClient {
    let mut client = SseClient::request(gateway.addr(), "GET", path, headers)
        .await
        .unwrap();
    client
        .read_to_end(deadline(Duration::from_secs(5)))
        .await
        .unwrap();
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_401_or_403_without_upstream_or_leaks() {
    let upstream = UpstreamServer::new()
        .default_response(Response::sse().chunk("id: 1\ndata: secret-data\n\n"))
        .run()
        .await
        .unwrap();
    let gateway = start(&upstream.url("")).await;
    let news = format!("session={}", token(600, &["news/*"]));
    let expired = format!("session={}", token(0, &["prices/*"]));
    let garbage = "session=not.a.jwt".to_owned();
    let cases: Vec<(Vec<(&str, &str)>, u16)> = vec![
        (vec![], 401),
        (vec![("Cookie", "other=1")], 401),
        (vec![("Cookie", garbage.as_str())], 401),
        (vec![("Cookie", expired.as_str())], 401),
        (vec![("Authorization", "Bearer x.y.z")], 401),
        (vec![("Cookie", news.as_str())], 403),
    ];
    for (headers, status) in &cases {
        let resp = read_all(&gateway, "/prices/SECRETCO", headers).await;
        assert_eq!(resp.status(), *status, "{headers:?}");
        let body = String::from_utf8_lossy(resp.raw_body()).into_owned();
        assert!(
            !body.contains("SECRETCO") && !body.contains("secret"),
            "{body}"
        );
        if *status == 401 {
            assert_eq!(resp.header("www-authenticate"), Some("Bearer"));
            assert_eq!(body, "unauthorized\n");
        } else {
            assert_eq!(body, "forbidden\n");
        }
    }
    // HEAD is checked as well.
    let mut head = SseClient::request(gateway.addr(), "HEAD", "/prices/SECRETCO", &[])
        .await
        .unwrap();
    head.read_to_end(deadline(Duration::from_secs(5)))
        .await
        .unwrap();
    assert_eq!(head.status(), 401);
    let count = gateway
        .metric(
            "sse_gateway_rejected_requests_total",
            &[("route", "prices"), ("reason", "auth")],
        )
        .await
        .unwrap();
    assert_eq!(count, cases.len() as f64 + 1.0);
    assert_eq!(upstream.connections(), 0);
    assert!(!gateway.topics().await.unwrap().contains("SECRETCO"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookie_and_bearer_tokens_are_accepted_and_the_stream_ends_at_exp() {
    let upstream = UpstreamServer::new()
        .default_response(Response::sse().chunk("id: 1\ndata: hello\n\n"))
        .run()
        .await
        .unwrap();
    let gateway = start(&upstream.url("")).await;
    let long = token(600, &["prices/A*"]);
    let cookie = format!("theme=dark; session=\"{long}\"");
    let mut by_cookie = SseClient::request(
        gateway.addr(),
        "GET",
        "/prices/AAPL",
        &[("Cookie", "a=1"), ("Cookie", &cookie)],
    )
    .await
    .unwrap();
    assert_eq!(by_cookie.status(), 200);
    let first = by_cookie
        .next_event(deadline(Duration::from_secs(5)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.data, "hello");

    // exp is whole seconds: 2 s from now is between 1 and 2 s away. The direct path
    // (/prices) and the session path (/quotes) both end with the notice.
    for path in ["/prices/AMZN", "/quotes/AMZN"] {
        let bearer = format!("Bearer {}", token(2, &["prices/*"]));
        let started = Instant::now();
        let mut by_bearer =
            SseClient::request(gateway.addr(), "GET", path, &[("Authorization", &bearer)])
                .await
                .unwrap();
        assert_eq!(by_bearer.status(), 200, "{path}");
        by_bearer
            .read_to_end(deadline(Duration::from_secs(6)))
            .await
            .unwrap();
        assert!(by_bearer.ended(), "{path}: closed at exp");
        let lived = started.elapsed();
        assert!(lived >= Duration::from_millis(900), "{path}: {lived:?}");
        let mut events = Vec::new();
        while let Some(event) = by_bearer
            .next_event(deadline(Duration::ZERO))
            .await
            .unwrap()
        {
            events.push(event);
        }
        let types: Vec<&str> = events.iter().map(|e| e.event.as_str()).collect();
        assert_eq!(types, ["message", "auth_expired"], "{path}");
        let notice = &events[1];
        assert_eq!(notice.data, r#"{"reason":"credentials_expired"}"#);
        assert_eq!(
            notice.id, None,
            "{path}: the notice leaves the last event id alone"
        );
        assert_eq!(notice.last_event_id, "1", "{path}");
    }
    // The long-lived one is still open.
    assert!(!by_cookie.ended());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookie_presence_and_proxy_routes() {
    let upstream = UpstreamServer::new()
        .default_response(Response::sse().chunk("data: fine\n\n"))
        .run()
        .await
        .unwrap();
    let gateway = start(&upstream.url("")).await;
    let missing = read_all(&gateway, "/members/x", &[("Cookie", "session=1")]).await;
    assert_eq!(missing.status(), 401);
    let mut present = SseClient::request(
        gateway.addr(),
        "GET",
        "/members/x",
        &[("Cookie", "member=anything")],
    )
    .await
    .unwrap();
    assert_eq!(present.status(), 200);
    present
        .next_event(deadline(Duration::from_secs(5)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(upstream.connections(), 1);

    let refused = read_all(&gateway, "/api/thing", &[]).await;
    assert_eq!(refused.status(), 401);
    assert_eq!(
        upstream.requests().len(),
        1,
        "a refused request is not proxied"
    );
    let cookie = format!("session={}", token(600, &[]));
    let mut proxied =
        SseClient::request(gateway.addr(), "GET", "/api/thing", &[("Cookie", &cookie)])
            .await
            .unwrap();
    assert_eq!(
        proxied.status(),
        200,
        "no topic on proxy routes: the claim is not consulted"
    );
    proxied
        .next_event(deadline(Duration::from_secs(5)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(upstream.requests().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_file_that_is_not_a_key_stops_the_start() {
    let dir = std::env::temp_dir().join(format!("sse-gateway-badkey-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("not-a-key.pem");
    std::fs::write(
        &key,
        "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n",
    )
    .unwrap();
    let config = GatewayConfig::new().route(
        Route::fan_out(
            "prices",
            "/prices/{symbol}",
            "http://127.0.0.1:9/stream/{symbol}",
        )
        .auth(Auth::cookie("session").jwt("RS256", key.display())),
    );
    let err = GatewayProcess::start(&config.to_yaml()).await.unwrap_err();
    let text = format!("{err:#}");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(text.contains("auth.jwt"), "{text}");
}
