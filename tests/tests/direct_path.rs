//! The direct write path: which requests take it, the exact bytes it writes, and how its
//! streams end. The take-over of a connection out of pingora leans on pingora 0.9.1's
//! behaviour (see gateway/src/services/takeover.rs): these tests fail if an upgrade of
//! pingora breaks it (the streams would not open, or would be counted on the session path).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sse_gateway_tests::{
    deadline, GatewayConfig, GatewayProcess, Response, Route, Settings, SseClient, Upstream,
    UpstreamServer, WritePath,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(20);

fn events(count: usize) -> Vec<String> {
    (1..=count)
        .map(|i| {
            format!(
                "id: {i}\nevent: tick\ndata: {{\"n\":{i},\"pad\":\"{}\"}}\n\n",
                "x".repeat(i % 50)
            )
        })
        .collect()
}

async fn gateway_with(upstream: &str) -> GatewayProcess {
    gateway_with_env(upstream, &[]).await
}

async fn gateway_with_env(upstream: &str, env: &[(&str, &str)]) -> GatewayProcess {
    let config = with_both_routes(GatewayConfig::quiet().linger("30s"), upstream);
    GatewayProcess::start_with_env(&config.to_yaml(), env)
        .await
        .unwrap()
}

/// A live upstream at `rate` events/s and a gateway with both routes to it on `config`.
async fn live_gateway(rate: u32, config: GatewayConfig) -> (Upstream, GatewayProcess) {
    let upstream = UpstreamServer::new()
        .default_response(Response::live(rate))
        .run()
        .await
        .unwrap();
    let config = with_both_routes(config, &upstream.url("/stream/{name}"));
    let gateway = GatewayProcess::start(&config.to_yaml()).await.unwrap();
    (upstream, gateway)
}

/// `config` on two threads with the routes `direct` (`/direct/{name}`, the default path)
/// and `session` (`/session/{name}`, `direct_write: false`), both to `upstream`.
fn with_both_routes(config: GatewayConfig, upstream: &str) -> GatewayConfig {
    config
        .threads(2)
        .route(Route::fan_out("direct", "/direct/{name}", upstream))
        .route(Route::fan_out("session", "/session/{name}", upstream).direct_write(false))
}

/// Sends a raw request and returns the socket and the bytes after the response head.
async fn raw_request(addr: SocketAddr, request: &str) -> (TcpStream, String, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let end = deadline(Duration::from_secs(10));
    let mut wire = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(at) = wire.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&wire[..at]).into_owned();
            let rest = wire[at + 4..].to_vec();
            return (stream, head, rest);
        }
        let n = tokio::time::timeout_at(end.into(), stream.read(&mut buf))
            .await
            .expect("response head in time")
            .unwrap();
        assert!(n > 0, "closed before the response head");
        wire.extend_from_slice(&buf[..n]);
    }
}

/// Reads strictly framed chunks until `enough` holds for those read (or the last chunk
/// or EOF); returns each chunk's payload.
async fn read_chunks_until(
    stream: &mut TcpStream,
    mut wire: Vec<u8>,
    enough: impl Fn(&[String]) -> bool,
) -> Vec<String> {
    let end = deadline(WAIT);
    let mut chunks = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    while !enough(&chunks) {
        // Parse as many whole chunks as the buffer holds.
        while let Some(line_end) = wire.windows(2).position(|w| w == b"\r\n") {
            let size_line = std::str::from_utf8(&wire[..line_end]).unwrap();
            assert!(
                !size_line.is_empty() && size_line.bytes().all(|b| b.is_ascii_hexdigit()),
                "bad chunk size line {size_line:?}"
            );
            let size = usize::from_str_radix(size_line, 16).unwrap();
            let total = line_end + 2 + size + 2;
            if wire.len() < total {
                break;
            }
            assert_eq!(&wire[total - 2..total], b"\r\n", "chunk not ended by CRLF");
            let payload =
                String::from_utf8(wire[line_end + 2..line_end + 2 + size].to_vec()).unwrap();
            wire.drain(..total);
            if size == 0 {
                return chunks;
            }
            chunks.push(payload);
            if enough(&chunks) {
                return chunks;
            }
        }
        let n = tokio::time::timeout_at(end.into(), stream.read(&mut buf))
            .await
            .expect("chunks in time")
            .unwrap();
        if n == 0 {
            return chunks;
        }
        wire.extend_from_slice(&buf[..n]);
    }
    chunks
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http11_subscribers_take_the_direct_path_in_chunks_of_whole_frames() {
    // Batched through io_uring where this kernel gives it, one by one otherwise.
    whole_frames_per_chunk(&[], "direct sends: ").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_io_uring_off_the_direct_path_sends_one_by_one_and_the_same() {
    whole_frames_per_chunk(
        &[("SSE_GATEWAY_IO_URING", "off")],
        "direct sends: one send each (SSE_GATEWAY_IO_URING is off)",
    )
    .await;
}

/// 200 frames through the direct path, with `env` for the gateway, whose
/// start-up log must contain `says`.
async fn whole_frames_per_chunk(env: &[(&str, &str)], says: &str) {
    let frames = events(200);
    let mut script = Response::sse().wait_release();
    for frame in &frames {
        script = script.chunk(frame.clone());
    }
    let upstream = UpstreamServer::new()
        .default_response(script)
        .run()
        .await
        .unwrap();
    let gateway = gateway_with_env(&upstream.url("/stream/{name}"), env).await;
    assert!(gateway.log().contains(says), "{}", gateway.log());

    let request = format!(
        "GET /direct/A HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n\r\n",
        gateway.addr()
    );
    let (mut stream, head, rest) = raw_request(gateway.addr(), &request).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let lower = head.to_ascii_lowercase();
    assert!(lower.contains("transfer-encoding: chunked"), "{head}");
    assert!(lower.contains("content-type: text/event-stream"), "{head}");
    let (subscribers, ok) = gateway
        .wait_metric(
            "sse_gateway_subscribers",
            &[("route", "direct")],
            WAIT,
            |v| v >= 1.0,
        )
        .await;
    assert!(ok, "subscribers = {subscribers}");
    upstream.release();

    // The opening comment, then every upstream frame, byte for byte, in chunks of whole
    // frames (those the gateway found waiting together go out in one chunk).
    let total: usize = frames.iter().map(String::len).sum();
    let chunks = read_chunks_until(&mut stream, rest, |chunks| {
        chunks.iter().skip(1).map(String::len).sum::<usize>() >= total
    })
    .await;
    assert_eq!(chunks.first().map(String::as_str), Some(":\n"));
    assert_eq!(chunks[1..].concat(), frames.concat());
    let mut next = 0;
    for chunk in &chunks[1..] {
        let first = next;
        let mut rest = chunk.as_str();
        while !rest.is_empty() {
            rest = rest
                .strip_prefix(frames[next].as_str())
                .unwrap_or_else(|| panic!("chunk {chunk:?} splits frame {}", next + 1));
            next += 1;
        }
        // The feed publishes at most 64 upstream chunks (here: frames) together.
        assert!(next - first <= 64, "{} frames in one chunk", next - first);
    }
    assert_eq!(next, frames.len());
    WritePath::Direct.assert_used(&gateway.metrics().await.unwrap(), "direct");
    let delivered = gateway
        .metric("sse_gateway_delivered_events_total", &[("route", "direct")])
        .await
        .unwrap();
    assert_eq!(delivered, frames.len() as f64);

    // The client leaves: the topic lets go of it and the access log says so.
    drop(stream);
    let (left, ok) = gateway
        .wait_metric(
            "sse_gateway_subscribers",
            &[("route", "direct")],
            WAIT,
            |v| v == 0.0,
        )
        .await;
    assert!(ok, "subscribers after the client left = {left}");
    let end = Instant::now() + WAIT;
    loop {
        let log = gateway.log();
        let line = log
            .lines()
            .find(|l| l.contains("sse_gateway::access") && l.contains("route=direct"));
        if let Some(line) = line {
            assert!(line.contains("reason=client_closed"), "{line}");
            assert!(line.contains(&format!("events={}", frames.len())), "{line}");
            break;
        }
        assert!(Instant::now() < end, "no access line:\n{log}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_paths_write_the_same_stream() {
    let upstream = UpstreamServer::new()
        .default_response(Response::live(200))
        .run()
        .await
        .unwrap();
    let gateway = gateway_with(&upstream.url("/stream/{name}")).await;
    let mut direct = SseClient::resume(gateway.addr(), "/direct/B", "0")
        .await
        .unwrap();
    let mut session = SseClient::resume(gateway.addr(), "/session/B", "0")
        .await
        .unwrap();
    let a = direct.events_until(100, deadline(WAIT)).await.unwrap();
    let b = session.events_until(100, deadline(WAIT)).await.unwrap();
    let raw = |events: &[sse_gateway_tests::SseEvent]| {
        events.iter().map(|e| e.raw.clone()).collect::<Vec<_>>()
    };
    assert_eq!(raw(&a), raw(&b), "the two paths wrote different events");
    let metrics = gateway.metrics().await.unwrap();
    WritePath::Direct.assert_used(&metrics, "direct");
    WritePath::Session.assert_used(&metrics, "session");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http10_and_requests_with_a_body_stay_on_the_session_path() {
    let upstream = UpstreamServer::new()
        .default_response(Response::live(50))
        .run()
        .await
        .unwrap();
    let gateway = gateway_with(&upstream.url("/stream/{name}")).await;

    let http10 = "GET /direct/C HTTP/1.0\r\nAccept: text/event-stream\r\n\r\n";
    let (mut stream, head, mut rest) = raw_request(gateway.addr(), http10).await;
    assert!(head.contains(" 200 "), "{head}");
    let end = deadline(WAIT);
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&rest).contains("data:") {
        let n = tokio::time::timeout_at(end.into(), stream.read(&mut buf))
            .await
            .expect("an event in time")
            .unwrap();
        assert!(n > 0, "HTTP/1.0 stream closed without an event");
        rest.extend_from_slice(&buf[..n]);
    }

    let with_body = format!(
        "GET /direct/C HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\nContent-Length: 2\r\n\r\n{{}}",
        gateway.addr()
    );
    let (_stream2, head, _) = raw_request(gateway.addr(), &with_body).await;
    assert!(head.contains(" 200 "), "{head}");

    only_on_path(
        &gateway,
        "sse_gateway_client_streams_total",
        "direct",
        "session",
        2.0,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_window_loses_and_repeats_nothing_on_both_paths() {
    let (_upstream, gateway) = live_gateway(500, GatewayConfig::quiet().write_window("50ms")).await;
    for route in ["direct", "session"] {
        let mut client = SseClient::resume(gateway.addr(), &format!("/{route}/W"), "0")
            .await
            .unwrap();
        let events = client.events_until(1000, deadline(WAIT)).await.unwrap();
        let ids: Vec<u64> = events.iter().map(|e| e.id_num().unwrap()).collect();
        assert_eq!(ids, (1..=1000).collect::<Vec<_>>(), "route {route}");
    }
    let metrics = gateway.metrics().await.unwrap();
    WritePath::Direct.assert_used(&metrics, "direct");
    WritePath::Session.assert_used(&metrics, "session");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_pauses_gets_events_in_fewer_sends_and_none_lost() {
    let (_upstream, gateway) =
        live_gateway(500, GatewayConfig::quiet().coalesce_window("50ms")).await;
    let request = format!(
        "GET /direct/P HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n\r\n",
        gateway.addr()
    );
    let (mut stream, head, rest) = raw_request(gateway.addr(), &request).await;
    assert!(head.contains(" 200 "), "{head}");
    // The client reads nothing for a while: the events that arrive meanwhile are
    // gathered (for up to coalesce_window) instead of sent one by one.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let events = |chunks: &[String]| {
        chunks
            .iter()
            .flat_map(|chunk| chunk.lines())
            .filter(|line| line.starts_with("id: "))
            .count()
    };
    let chunks = read_chunks_until(&mut stream, rest, |chunks| events(chunks) >= 400).await;
    // A chunk holds one delivery: one event, or the events of one upstream read.
    let ids: Vec<u64> = chunks
        .iter()
        .flat_map(|chunk| chunk.lines())
        .filter_map(|line| line.strip_prefix("id: "))
        .map(|id| id.parse().unwrap())
        .collect();
    assert!(ids.len() >= 300, "{} events", ids.len());
    let first = ids[0];
    assert_eq!(
        ids,
        (first..first + ids.len() as u64).collect::<Vec<_>>(),
        "in order, none lost or repeated"
    );
    drop(stream);

    let metrics = gateway.metrics().await.unwrap();
    let labels = [("route", "direct")];
    let delivered = sse_gateway_tests::gateway::metric_sum(
        &metrics,
        "sse_gateway_delivered_events_total",
        &labels,
    );
    let sends = sse_gateway_tests::gateway::metric_sum(
        &metrics,
        "sse_gateway_sends_total",
        &[("route", "direct"), ("path", "direct")],
    );
    assert!(delivered >= 300.0, "delivered {delivered}");
    assert!(
        sends >= 1.0 && sends <= delivered * 0.75,
        "{sends} sends for {delivered} deliveries to a client that paused"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_writes_are_counted_as_sends() {
    let upstream = UpstreamServer::new()
        .default_response(Response::live(50))
        .run()
        .await
        .unwrap();
    let gateway = gateway_with(&upstream.url("/stream/{name}")).await;
    let mut client = SseClient::get(gateway.addr(), "/session/S").await.unwrap();
    let events = client.events_until(10, deadline(WAIT)).await.unwrap();
    assert_eq!(events.len(), 10);
    only_on_path(
        &gateway,
        "sse_gateway_sends_total",
        "session",
        "session",
        10.0,
    )
    .await;
}

/// Waits until `name{route, path}` reaches `at_least`, and checks that the same series
/// on the other path stayed at zero.
async fn only_on_path(
    gateway: &GatewayProcess,
    name: &str,
    route: &str,
    path: &str,
    at_least: f64,
) {
    let other = if path == "direct" {
        "session"
    } else {
        "direct"
    };
    let (value, ok) = gateway
        .wait_metric(name, &[("route", route), ("path", path)], WAIT, |v| {
            v >= at_least
        })
        .await;
    assert!(ok, "{name}{{route={route},path={path}}} = {value}");
    let on_other = gateway
        .metric(name, &[("route", route), ("path", other)])
        .await
        .unwrap();
    assert_eq!(on_other, 0.0, "{name} on the {other} path");
}
