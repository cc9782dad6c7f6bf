//! Answers that are not a stream: 404, 405 with `Allow`, and the over-limit answer
//! (200 + `retry:` + close for EventSource, 503 + `Retry-After` for other clients); and
//! the headers of a stream that is served. Refusals carry the route's CORS headers.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use sse_gateway_tests::client::http_get;
use sse_gateway_tests::{
    deadline, Cors, GatewayConfig, GatewayProcess, Response, Route, Settings, SseClient,
    UpstreamServer,
};

const WAIT: Duration = Duration::from_secs(15);

/// The page origin the route's CORS policy allows.
const ORIGIN: &str = "https://app.example.com";

async fn gateway(max_clients: u32) -> (sse_gateway_tests::Upstream, GatewayProcess) {
    let upstream = UpstreamServer::new()
        .default_response(Response::live(20))
        .run()
        .await
        .unwrap();
    let config = GatewayConfig::new()
        .threads(2)
        .heartbeat("0s")
        .client_retry("2s")
        .linger("30s")
        .limit("max_clients", max_clients.to_string())
        .route(
            Route::fan_out("feed", "/feed/{name}", &upstream.url("/stream/{name}"))
                .params(&[("name", "[a-z]+")])
                .cors(Cors::origins(&[ORIGIN]).credentials()),
        );
    let gateway = GatewayProcess::start(&config.to_yaml()).await.unwrap();
    (upstream, gateway)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_response_headers() {
    let (_upstream, gateway) = gateway(100).await;
    let mut client = SseClient::get(gateway.addr(), "/feed/abc").await.unwrap();
    assert_eq!(client.status(), 200);
    assert_eq!(
        client
            .header("content-type")
            .map(|v| v.split(';').next().unwrap().trim()),
        Some("text/event-stream")
    );
    assert_eq!(client.header("cache-control"), Some("no-cache"));
    assert_eq!(client.header("x-accel-buffering"), Some("no"));
    assert_eq!(client.header("content-length"), None);
    let event = client.next_event(deadline(WAIT)).await.unwrap().unwrap();
    assert!(event.id_num().is_some());
    let retry = client
        .parser()
        .retry()
        .expect("client_retry: 2s sends a retry: line");
    assert!(
        (1600..=2400).contains(&retry),
        "retry {retry} ms is 2 s ± 20%"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_paths_and_bad_captures_are_404() {
    let (upstream, gateway) = gateway(100).await;
    for path in [
        "/nope",
        "/feed",
        "/feed/abc/def",
        "/feed/ABC",
        "/feed/%2E%2E",
        "/feed/a%2Fb",
    ] {
        let resp = http_get(gateway.addr(), path, &[("Accept", "text/event-stream")])
            .await
            .unwrap();
        assert_eq!(resp.status, 404, "GET {path}");
    }
    assert_eq!(
        upstream.connections(),
        0,
        "refused requests open no upstream"
    );
    let (value, ok) = gateway
        .wait_metric(
            "sse_gateway_rejected_requests_total",
            &[("reason", "not_found")],
            WAIT,
            |v| v >= 1.0,
        )
        .await;
    assert!(ok, "rejected_requests_total{{reason=not_found}} = {value}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_answers_the_stream_header_without_opening_the_upstream() {
    let (upstream, gateway) = gateway(100).await;
    let resp = SseClient::request(gateway.addr(), "HEAD", "/feed/abc", &[])
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.header("content-type")
            .map(|v| v.split(';').next().unwrap().trim()),
        Some("text/event-stream")
    );
    // Subscribing would have opened the topic (and kept it for `linger`).
    assert_eq!(
        gateway.topics().await.unwrap().trim(),
        "[]",
        "HEAD opened no topic"
    );
    // A GET afterwards does open it: the count below can move.
    let mut get = SseClient::get(gateway.addr(), "/feed/abc").await.unwrap();
    get.next_event(deadline(WAIT)).await.unwrap().unwrap();
    assert_eq!(
        upstream.connections(),
        1,
        "only the GET opened the upstream"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_method_is_405_with_allow() {
    let (upstream, gateway) = gateway(100).await;
    for method in ["POST", "PUT", "DELETE"] {
        let mut resp = SseClient::request(
            gateway.addr(),
            method,
            "/feed/abc",
            &[("Content-Length", "0")],
        )
        .await
        .unwrap();
        assert_eq!(resp.status(), 405, "{method} on a fan-out route");
        let allow = resp
            .header("allow")
            .expect("405 carries Allow")
            .to_ascii_uppercase();
        assert!(
            allow.contains("GET") && allow.contains("HEAD"),
            "Allow: {allow}"
        );
        resp.read_to_end(deadline(WAIT)).await.unwrap();
    }
    assert_eq!(upstream.connections(), 0);
    let (value, ok) = gateway
        .wait_metric(
            "sse_gateway_rejected_requests_total",
            &[("route", "feed"), ("reason", "method")],
            WAIT,
            |v| v >= 3.0,
        )
        .await;
    assert!(ok, "rejected_requests_total{{reason=method}} = {value}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_max_clients_eventsource_gets_retry_and_close_others_get_503() {
    let (_upstream, gateway) = gateway(1).await;
    let mut first = SseClient::get(gateway.addr(), "/feed/abc").await.unwrap();
    assert_eq!(first.status(), 200);
    first.next_event(deadline(WAIT)).await.unwrap().unwrap();

    // An EventSource: any status but 200 text/event-stream would make it give up for good,
    // and so would a CORS failure on a cross-origin one: the answer carries the CORS headers.
    let mut es = SseClient::request(
        gateway.addr(),
        "GET",
        "/feed/abc",
        &[("Accept", "text/event-stream"), ("Origin", ORIGIN)],
    )
    .await
    .unwrap();
    assert_eq!(es.status(), 200);
    assert_eq!(es.header("access-control-allow-origin"), Some(ORIGIN));
    assert_eq!(es.header("access-control-allow-credentials"), Some("true"));
    assert!(es
        .header("content-type")
        .is_some_and(|v| v.starts_with("text/event-stream")));
    es.read_to_end(deadline(WAIT)).await.unwrap();
    assert!(
        es.parser().retry().is_some_and(|ms| ms > 0),
        "body {:?} has a retry: line",
        es.raw_body()
    );
    assert_eq!(
        es.parser().pending_events(),
        0,
        "no event for a refused client"
    );

    for accept in ["application/json", "text/html"] {
        let resp = http_get(
            gateway.addr(),
            "/feed/abc",
            &[("Accept", accept), ("Origin", ORIGIN)],
        )
        .await
        .unwrap();
        assert_eq!(resp.status, 503, "Accept: {accept}");
        assert_eq!(resp.header("access-control-allow-origin"), Some(ORIGIN));
        let after = resp.header("retry-after").expect("503 carries Retry-After");
        assert!(after.parse::<u64>().is_ok(), "Retry-After: {after}");
    }
    let (value, ok) = gateway
        .wait_metric(
            "sse_gateway_rejected_requests_total",
            &[("reason", "limit")],
            WAIT,
            |v| v >= 3.0,
        )
        .await;
    assert!(ok, "rejected_requests_total{{reason=limit}} = {value}");
    // The admitted client is unaffected.
    first.next_event(deadline(WAIT)).await.unwrap().unwrap();
}
