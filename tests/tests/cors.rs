//! CORS at the edge, over raw sockets: preflights answered by the gateway (never
//! forwarded, never opening an upstream), disallowed origins refused with 403 and
//! counted, wildcard subdomains that do not match look-alikes, and proxy routes getting
//! the gateway's CORS headers instead of the upstream's.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use sse_gateway_tests::{
    deadline, Cors, GatewayConfig, GatewayProcess, Response, Route, SseClient, UpstreamServer,
};

/// A complete exchange: status, headers and body read to the end.
async fn exchange(
    gateway: &GatewayProcess,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> SseClient {
    let mut client = SseClient::request(gateway.addr(), method, path, headers)
        .await
        .unwrap();
    if client.status() != 200 {
        client
            .read_to_end(deadline(Duration::from_secs(5)))
            .await
            .unwrap();
    }
    client
}

async fn start(upstream_base: &str) -> GatewayProcess {
    let upstream = format!("{upstream_base}/stream/{{name}}");
    let config = GatewayConfig::quiet()
        .route(
            Route::fan_out("fan", "/fan/{name}", &upstream).cors(
                Cors::origins(&[
                    "https://app.example.com",
                    "https://*.example.com",
                    "http://localhost:3000",
                ])
                .credentials()
                .max_age("10m"),
            ),
        )
        .route(Route::fan_out("open", "/open/{name}", &upstream).cors(Cors::origins(&["*"])))
        .route(
            Route::proxy("api", "/api/{*rest}", upstream_base)
                .cors(Cors::origins(&["https://app.example.com"])),
        );
    GatewayProcess::start(&config.to_yaml()).await.unwrap()
}

async fn rejected(gateway: &GatewayProcess, route: &str) -> f64 {
    gateway
        .metric(
            "sse_gateway_rejected_requests_total",
            &[("route", route), ("reason", "cors")],
        )
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflights_are_answered_by_the_gateway() {
    let upstream = UpstreamServer::new()
        .default_response(Response::sse().chunk("data: x\n\n"))
        .run()
        .await
        .unwrap();
    let gateway = start(&upstream.url("")).await;
    let preflight = exchange(
        &gateway,
        "OPTIONS",
        "/fan/a",
        &[
            ("Origin", "http://localhost:3000"),
            ("Access-Control-Request-Method", "GET"),
            (
                "Access-Control-Request-Headers",
                "last-event-id,authorization,cache-control",
            ),
        ],
    )
    .await;
    assert_eq!(preflight.status(), 204);
    let h = |name| preflight.header(name).unwrap_or_default().to_owned();
    assert_eq!(h("access-control-allow-origin"), "http://localhost:3000");
    assert_eq!(h("access-control-allow-credentials"), "true");
    assert_eq!(h("access-control-allow-methods"), "GET, HEAD");
    let allow_headers = h("access-control-allow-headers").to_ascii_lowercase();
    for name in [
        "last-event-id",
        "authorization",
        "cache-control",
        "content-type",
    ] {
        assert!(allow_headers.contains(name), "{allow_headers}");
    }
    assert_eq!(h("access-control-max-age"), "600");
    assert!(h("vary").contains("Origin"));

    // A preflight on a proxy route is answered too, not forwarded.
    let proxied = exchange(
        &gateway,
        "OPTIONS",
        "/api/orders",
        &[
            ("Origin", "https://app.example.com"),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "content-type"),
        ],
    )
    .await;
    assert_eq!(proxied.status(), 204);
    assert_eq!(
        proxied.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert!(proxied
        .header("access-control-allow-methods")
        .unwrap()
        .contains("POST"));

    // Refused preflights: wrong origin, a header not allowed, a method not answered.
    let refused = [
        ("https://evil.test", "GET", "last-event-id"),
        ("http://localhost:3000", "GET", "x-evil"),
        ("http://localhost:3000", "DELETE", "accept"),
    ];
    for (origin, method, headers) in refused {
        let resp = exchange(
            &gateway,
            "OPTIONS",
            "/fan/a",
            &[
                ("Origin", origin),
                ("Access-Control-Request-Method", method),
                ("Access-Control-Request-Headers", headers),
            ],
        )
        .await;
        assert_eq!(resp.status(), 403, "{origin} {method} {headers}");
        assert!(resp.header("access-control-allow-origin").is_none());
    }
    assert_eq!(rejected(&gateway, "fan").await, 3.0);
    assert_eq!(
        upstream.connections(),
        0,
        "no preflight reaches an upstream"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origins_are_matched_by_scheme_host_and_port() {
    let upstream = UpstreamServer::new()
        .default_response(Response::sse().chunk("id: 1\ndata: x\n\n"))
        .run()
        .await
        .unwrap();
    let gateway = start(&upstream.url("")).await;
    let refused = [
        "https://evil-example.com",
        "https://example.com.evil.net",
        "https://example.com",
        "http://app.example.com",
        "https://app.example.com:8443",
        "http://localhost:3001",
        "null",
    ];
    for origin in refused {
        let resp = exchange(
            &gateway,
            "GET",
            "/fan/a",
            &[("Origin", origin), ("Accept", "text/event-stream")],
        )
        .await;
        assert_eq!(resp.status(), 403, "{origin}");
        assert_eq!(
            String::from_utf8_lossy(resp.raw_body()),
            "forbidden\n",
            "nothing of the topic leaks"
        );
    }
    assert_eq!(rejected(&gateway, "fan").await, refused.len() as f64);
    assert_eq!(upstream.connections(), 0);

    for (i, origin) in ["https://App.Example.com", "https://a.b.example.com"]
        .into_iter()
        .enumerate()
    {
        let mut ok = SseClient::request(
            gateway.addr(),
            "GET",
            &format!("/fan/ok{i}"),
            &[("Origin", origin), ("Accept", "text/event-stream")],
        )
        .await
        .unwrap();
        assert_eq!(ok.status(), 200, "{origin}");
        assert_eq!(ok.header("access-control-allow-origin"), Some(origin));
        assert_eq!(ok.header("access-control-allow-credentials"), Some("true"));
        assert_eq!(ok.header("vary"), Some("Origin"));
        let event = ok
            .next_event(deadline(Duration::from_secs(5)))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(event.data, "x");
    }
    // Same-origin (no Origin header) passes, without CORS headers.
    let same = SseClient::get(gateway.addr(), "/fan/a").await.unwrap();
    assert_eq!(same.status(), 200);
    assert!(same.header("access-control-allow-origin").is_none());
    // `*` without credentials answers `*`.
    let open = SseClient::request(
        gateway.addr(),
        "GET",
        "/open/b",
        &[("Origin", "https://anyone.test")],
    )
    .await
    .unwrap();
    assert_eq!(open.status(), 200);
    assert_eq!(open.header("access-control-allow-origin"), Some("*"));
    assert!(open.header("access-control-allow-credentials").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_routes_get_the_gateways_cors_headers() {
    let upstream = UpstreamServer::new()
        .default_response(Response::sse().chunk("data: proxied\n\n"))
        .run()
        .await
        .unwrap();
    let gateway = start(&upstream.url("")).await;
    let refused = exchange(
        &gateway,
        "GET",
        "/api/stream",
        &[("Origin", "https://evil.test")],
    )
    .await;
    assert_eq!(refused.status(), 403);
    assert_eq!(rejected(&gateway, "api").await, 1.0);
    assert!(
        upstream.requests().is_empty(),
        "a refused request is not proxied"
    );

    let mut ok = SseClient::request(
        gateway.addr(),
        "GET",
        "/api/stream",
        &[("Origin", "https://app.example.com")],
    )
    .await
    .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(
        ok.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    let event = ok
        .next_event(deadline(Duration::from_secs(5)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(event.data, "proxied");
    assert_eq!(upstream.requests().len(), 1);
}
