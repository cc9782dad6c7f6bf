//! Logs: one line per event, JSON or text by config, levels by filter directive; the
//! start-up summary, upstream connects, and exactly one access line per client stream.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use sse_gateway_tests::{
    deadline, poll_until, GatewayConfig, GatewayProcess, Response, Route, SseClient, UpstreamServer,
};

const WAIT: Duration = Duration::from_secs(20);

fn five_events() -> String {
    (1..=5).map(|n| format!("id: {n}\ndata: {n}\n\n")).collect()
}

/// A gateway logging in this `format` at this `level`, with one route, `lg`.
async fn gateway(format: &str, level: &str) -> (sse_gateway_tests::Upstream, GatewayProcess) {
    gateway_with(format, level, |route| route).await
}

/// [`gateway`] with the keys `more` sets on its one route.
async fn gateway_with(
    format: &str,
    level: &str,
    more: impl FnOnce(Route) -> Route,
) -> (sse_gateway_tests::Upstream, GatewayProcess) {
    let upstream = UpstreamServer::new()
        .default_response(Response::sse().chunk(five_events()))
        .run()
        .await
        .unwrap();
    let config = GatewayConfig::quiet()
        .log_format(format)
        .log_level(level)
        .route(more(Route::fan_out(
            "lg",
            "/l/{name}",
            &upstream.url("/stream/{name}"),
        )));
    (
        upstream,
        GatewayProcess::start(&config.to_yaml()).await.unwrap(),
    )
}

/// Reads the five events, then leaves; the bytes of their blocks.
async fn read_five_and_leave(gateway: &GatewayProcess) -> usize {
    let mut client = SseClient::get(gateway.addr(), "/l/X").await.unwrap();
    let events = client.events_until(5, deadline(WAIT)).await.unwrap();
    events.iter().map(|e| e.raw.len()).sum()
}

async fn wait_log(gateway: &GatewayProcess, what: impl Fn(&str) -> bool) -> String {
    let found = poll_until(WAIT, || async { gateway.log().lines().any(&what) }).await;
    let log = gateway.log();
    assert!(found, "no such log line:\n{log}");
    log
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_lines_with_summary_upstream_and_one_access_line_per_stream() {
    let (_upstream, gateway) = gateway("json", "info").await;
    let bytes = read_five_and_leave(&gateway).await;

    let is_access = |l: &str| l.contains(r#""target":"sse_gateway::access""#);
    let log = wait_log(&gateway, is_access).await;
    let ours: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(r#""target":"sse_gateway"#))
        .collect();
    assert!(!ours.is_empty());
    for line in &ours {
        assert!(
            line.starts_with('{') && line.ends_with('}'),
            "one JSON object per line: {line}"
        );
    }
    assert!(
        ours.iter()
            .any(|l| l.contains(r#""route":"lg""#) && l.contains(r#""kind":"fan-out""#)),
        "start-up summary names the route:\n{log}"
    );
    assert!(
        log.lines().any(|l| l.contains("upstream connected")
            && l.contains(r#""route":"lg""#)
            && l.contains(r#""topic":"/l/X""#)),
        "upstream connect logged:\n{log}"
    );
    let access: Vec<&str> = log.lines().filter(|l| is_access(l)).collect();
    assert_eq!(access.len(), 1, "one line per stream:\n{log}");
    let line = access[0];
    for field in [
        r#""route":"lg""#.to_owned(),
        r#""topic":"/l/X""#.to_owned(),
        r#""client":"127.0.0.1:"#.to_owned(),
        r#""events":5"#.to_owned(),
        format!(r#""bytes":{bytes}"#),
        r#""reason":"client_closed""#.to_owned(),
        r#""duration_ms":"#.to_owned(),
    ] {
        assert!(line.contains(&field), "access line lacks {field}: {line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_lines_follow_the_level_filter() {
    let (_upstream, gateway) = gateway("text", "warn,sse_gateway::access=info").await;
    let bytes = read_five_and_leave(&gateway).await;
    let log = wait_log(&gateway, |l| l.contains("sse_gateway::access")).await;
    let line = log
        .lines()
        .find(|l| l.contains("sse_gateway::access"))
        .unwrap();
    for field in [
        "route=lg".to_owned(),
        "topic=/l/X".to_owned(),
        "events=5".to_owned(),
        format!("bytes={bytes}"),
        "reason=client_closed".to_owned(),
    ] {
        assert!(line.contains(&field), "access line lacks {field}: {line}");
    }
    assert!(
        !log.contains("upstream connected") && !log.contains("listening on"),
        "info lines outside the access target are filtered out:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_values_from_requests_are_quoted_so_they_cannot_forge_fields() {
    let (_upstream, gateway) =
        gateway_with("text", "info", |route| route.lenient_captures(true)).await;
    // A capture with a space, `=`, a quote and U+202E (right-to-left override).
    let path = "/l/a%20reason=shutdown%22%E2%80%AE";
    let mut client = SseClient::get(gateway.addr(), path).await.unwrap();
    client.events_until(5, deadline(WAIT)).await.unwrap();
    drop(client);
    let log = wait_log(&gateway, |l| l.contains("sse_gateway::access")).await;
    let line = log
        .lines()
        .find(|l| l.contains("sse_gateway::access"))
        .unwrap();
    assert!(
        line.contains(r#"topic="/l/a reason=shutdown\"\u{202e}""#),
        "the topic is quoted and escaped: {line}"
    );
    assert!(line.contains("reason=client_closed"), "{line}");
    assert_eq!(line.matches("reason=").count(), 2, "{line}");
}
