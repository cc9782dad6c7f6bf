//! One client must not be able to take the gateway from everyone else: connection and
//! stream limits, the request-header deadline, and the limits on opening topics. Each
//! test fails on a gateway without the limit it checks.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use sse_gateway_tests::{
    deadline, on_both_paths, GatewayConfig, GatewayProcess, Response, Route, Settings, SseClient,
    Upstream, UpstreamServer, WritePath,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(20);

/// The base of every gateway here: `retry: 1s` advice, no heartbeats.
fn base() -> GatewayConfig {
    GatewayConfig::new()
        .threads(2)
        .client_retry("1s")
        .heartbeat("0s")
}

/// A route `name` on `/name/{name}` (lowercase letters and digits) to `upstream`.
fn route(name: &str, upstream: &Upstream) -> Route {
    Route::fan_out(
        name,
        &format!("/{name}/{{name}}"),
        &upstream.url("/stream/{name}"),
    )
    .params(&[("name", "[a-z0-9]+")])
}

/// [`base`] with routes `up` and `other`, and the limits (and defaults) `more` sets.
async fn gateway(
    upstream: &Upstream,
    more: impl FnOnce(GatewayConfig) -> GatewayConfig,
) -> GatewayProcess {
    let config = more(base())
        .route(route("up", upstream))
        .route(route("other", upstream));
    GatewayProcess::start(&config.to_yaml()).await.unwrap()
}

async fn live_upstream() -> Upstream {
    UpstreamServer::new()
        .default_response(Response::live(20))
        .run()
        .await
        .unwrap()
}

/// Reads until the peer closes (true) or `within` passes (false); data is discarded.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let end = Instant::now() + within;
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(end.into(), stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

/// A subscriber that was told to come back later: `200` with a `retry:` and no event.
fn assert_told_to_retry(client: &SseClient) {
    assert_eq!(client.status(), 200);
    assert!(client.ended(), "the refusal ends at once");
    let body = String::from_utf8_lossy(client.raw_body()).into_owned();
    assert!(body.starts_with("retry: "), "{body}");
    assert!(!body.contains("data:"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_header_trickled_byte_by_byte_is_cut_at_the_deadline() {
    let upstream = live_upstream().await;
    let gateway = gateway(&upstream, |c| c.limit("request_header_timeout", "1s")).await;
    let mut slow = TcpStream::connect(gateway.addr()).await.unwrap();
    let started = Instant::now();
    slow.write_all(b"GET /up/a HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // One header byte every 200 ms: each read is far inside pingora's 60 s read
    // timeout, but the whole header never arrives.
    let mut closed = false;
    for _ in 0..40 {
        if slow.write_all(b"X").await.is_err() {
            closed = true;
            break;
        }
        let mut buf = [0u8; 64];
        let read = tokio::time::timeout(Duration::from_millis(200), slow.read(&mut buf)).await;
        if let Ok(Ok(0) | Err(_)) = read {
            closed = true;
            break;
        }
    }
    assert!(closed, "the trickling connection was never closed");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(4),
        "closed after {took:?}"
    );
    let dropped = gateway
        .metric(
            "sse_gateway_dropped_connections_total",
            &[("reason", "header_timeout")],
        )
        .await
        .unwrap();
    assert_eq!(dropped, 1.0);
}

on_both_paths!(streams_outlive_the_header_deadline);

async fn streams_outlive_the_header_deadline(path: WritePath) {
    let upstream = live_upstream().await;
    let gateway = gateway(&upstream, |c| {
        c.limit("request_header_timeout", "1s").write_path(path)
    })
    .await;
    let mut client = SseClient::get(gateway.addr(), "/up/a").await.unwrap();
    assert_eq!(client.status(), 200);
    path.assert_used(&gateway.metrics().await.unwrap(), "up");
    // 20 events/s for 2.5 s: well past the 1 s header deadline.
    let events = client.events_until(50, deadline(WAIT)).await.unwrap();
    assert_eq!(events.len(), 50);
    assert!(!client.ended(), "{path:?}: the stream was cut");
    let open = gateway
        .metric("sse_gateway_open_connections", &[])
        .await
        .unwrap();
    assert_eq!(open, 1.0, "{path:?}: the stream's connection counts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_max_connections_new_connections_are_closed_at_once() {
    let upstream = live_upstream().await;
    let gateway = gateway(&upstream, |c| {
        c.limit("max_connections", "3")
            .limit("request_header_timeout", "30s")
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(gateway.addr()).await.unwrap());
    }
    let open = gateway
        .wait_metric("sse_gateway_open_connections", &[], WAIT, |v| v == 3.0)
        .await;
    assert!(open.1, "open connections: {}", open.0);
    let mut fourth = TcpStream::connect(gateway.addr()).await.unwrap();
    assert!(
        closed_within(&mut fourth, Duration::from_secs(3)).await,
        "the fourth connection was served"
    );
    let dropped = gateway
        .metric(
            "sse_gateway_dropped_connections_total",
            &[("reason", "max_connections")],
        )
        .await
        .unwrap();
    assert!(dropped >= 1.0);
    assert!(gateway.log().contains("limits.max_connections reached"));
    // A freed place serves again.
    drop(held.pop());
    let mut again = None;
    for _ in 0..50 {
        if let Ok(client) = SseClient::get(gateway.addr(), "/up/a").await {
            again = Some(client);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(again.expect("served after a place was freed").status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_take_every_stream() {
    let upstream = live_upstream().await;
    let gateway = gateway(&upstream, |c| c.limit("max_streams_per_address", "2")).await;
    let local = Ipv4Addr::new(127, 0, 0, 1);
    let mut first = SseClient::get_from(local, gateway.addr(), "/up/a")
        .await
        .unwrap();
    let _second = SseClient::get_from(local, gateway.addr(), "/up/b")
        .await
        .unwrap();
    first.events_until(1, deadline(WAIT)).await.unwrap();
    let third = SseClient::get_from(local, gateway.addr(), "/up/a")
        .await
        .unwrap();
    assert_told_to_retry(&third);
    let refused = gateway
        .metric(
            "sse_gateway_rejected_requests_total",
            &[("route", "up"), ("reason", "limit")],
        )
        .await
        .unwrap();
    assert_eq!(refused, 1.0);
    assert!(gateway.log().contains("limits.max_streams_per_address"));
    // Another address is served.
    let other = Ipv4Addr::new(127, 0, 0, 2);
    let mut elsewhere = SseClient::get_from(other, gateway.addr(), "/up/a")
        .await
        .unwrap();
    assert_eq!(elsewhere.status(), 200);
    elsewhere.events_until(1, deadline(WAIT)).await.unwrap();
    // A stream that ends gives its place back.
    drop(first);
    let mut back = None;
    for _ in 0..50 {
        let client = SseClient::get_from(local, gateway.addr(), "/up/a")
            .await
            .unwrap();
        if !client.ended() {
            back = Some(client);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    back.expect("a place came back")
        .events_until(1, deadline(WAIT))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_topics_are_limited_per_address_and_per_route() {
    let upstream = live_upstream().await;
    let gateway = gateway(&upstream, |c| {
        c.limit("new_topics_per_address", "{ max: 3, per: 1m }")
            .max_topics(2)
    })
    .await;
    let local = Ipv4Addr::new(127, 0, 0, 1);
    let _a = SseClient::get_from(local, gateway.addr(), "/up/a")
        .await
        .unwrap();
    let _b = SseClient::get_from(local, gateway.addr(), "/up/b")
        .await
        .unwrap();
    // The route's own bound: two topics.
    assert_told_to_retry(
        &SseClient::get_from(local, gateway.addr(), "/up/c")
            .await
            .unwrap(),
    );
    // Joining an open topic is never limited.
    let mut join = SseClient::get_from(local, gateway.addr(), "/up/a")
        .await
        .unwrap();
    join.events_until(1, deadline(WAIT)).await.unwrap();
    // The third new topic of this address (the refused one was not counted)...
    let mut third = SseClient::get_from(local, gateway.addr(), "/other/x")
        .await
        .unwrap();
    third.events_until(1, deadline(WAIT)).await.unwrap();
    // ...and the fourth is over the address's rate.
    assert_told_to_retry(
        &SseClient::get_from(local, gateway.addr(), "/other/y")
            .await
            .unwrap(),
    );
    let other = Ipv4Addr::new(127, 0, 0, 3);
    let mut fresh = SseClient::get_from(other, gateway.addr(), "/other/y")
        .await
        .unwrap();
    fresh.events_until(1, deadline(WAIT)).await.unwrap();
    // The operator is told which limit refused (at most every 10 s).
    let log = gateway.log();
    assert!(log.contains("route max_topics"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_clients_are_told_apart_by_x_forwarded_for() {
    let upstream = live_upstream().await;
    let config = base()
        .trusted_proxies(&["127.0.0.1"])
        .limit("max_streams_per_address", "1")
        .route(route("up", &upstream));
    let gateway = GatewayProcess::start(&config.to_yaml()).await.unwrap();
    let via = |client: &'static str| [("Accept", "text/event-stream"), ("X-Forwarded-For", client)];
    let get = |headers: [(&'static str, &'static str); 2]| {
        let addr = gateway.addr();
        async move {
            SseClient::request(addr, "GET", "/up/a", &headers)
                .await
                .unwrap()
        }
    };
    let mut first = get(via("198.51.100.1")).await;
    first.events_until(1, deadline(WAIT)).await.unwrap();
    // Another client behind the same proxy: its own allowance.
    let mut second = get(via("198.51.100.2")).await;
    second.events_until(1, deadline(WAIT)).await.unwrap();
    // The first client again: over its one stream. What it claims to the left of
    // the proxy's own entry is not believed.
    assert_told_to_retry(&get(via("198.51.100.1")).await);
    assert_told_to_retry(&get(via("203.0.113.9, 198.51.100.1")).await);
    let log = gateway.log();
    assert!(
        log.contains("198.51.100.1"),
        "the warning names the client: {log}"
    );
}
