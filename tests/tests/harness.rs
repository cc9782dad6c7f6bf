//! The harness checked against itself: the scripted upstream read directly by the
//! oracle client, without a gateway in between.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use sse_gateway_tests::{deadline, Response, SseClient, UpstreamServer};

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_stream_resumes_after_last_event_id_and_is_recorded() {
    let upstream = UpstreamServer::new()
        .default_response(Response::live(2000))
        .run()
        .await
        .unwrap();
    let mut client = SseClient::get(upstream.addr(), "/stream/a").await.unwrap();
    assert_eq!(client.status(), 200);
    assert_eq!(client.header("content-type"), Some("text/event-stream"));
    let events = client.events_until(50, deadline(WAIT)).await.unwrap();
    let ids: Vec<u64> = events.iter().map(|e| e.id_num().unwrap()).collect();
    assert_eq!(ids, (1..=50).collect::<Vec<_>>());
    assert_eq!(events[0].raw, b"id: 1\ndata: 1\n\n");

    let mut resumed = SseClient::resume(upstream.addr(), "/stream/a", "41")
        .await
        .unwrap();
    let first = resumed.next_event(deadline(WAIT)).await.unwrap().unwrap();
    assert_eq!(first.id_num(), Some(42));
    let requests = upstream.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1].path, "/stream/a");
    assert_eq!(requests[1].last_event_id(), Some("41"));
    assert_eq!(upstream.connections(), 2);
    assert!(upstream.sent(0).starts_with(b"id: 1\ndata: 1\n\nid: 2\n"));

    drop(client);
    assert!(
        upstream.wait_open(1, WAIT).await,
        "closing a client closes its connection"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripted_statuses_and_kill_restart() {
    let upstream = UpstreamServer::new()
        .respond(Response::status(204))
        .respond(Response::status(500))
        .respond(
            Response::sse()
                .chunk("data: a\n\n")
                .chunk_after(Duration::from_millis(10), "data: b\n\n")
                .then_close(),
        )
        .default_response(Response::sse().chunk(": idle\n\n"))
        .run()
        .await
        .unwrap();
    let mut c204 = SseClient::get(upstream.addr(), "/x").await.unwrap();
    assert_eq!(c204.status(), 204);
    c204.read_to_end(deadline(WAIT)).await.unwrap();
    assert_eq!(
        SseClient::get(upstream.addr(), "/x")
            .await
            .unwrap()
            .status(),
        500
    );
    let mut scripted = SseClient::get(upstream.addr(), "/x").await.unwrap();
    scripted.read_to_end(deadline(WAIT)).await.unwrap();
    assert_eq!(scripted.raw_body(), b"data: a\n\ndata: b\n\n");
    let mut idle = SseClient::get(upstream.addr(), "/x").await.unwrap();
    idle.read_until(deadline(WAIT), |c| !c.comments().is_empty())
        .await
        .unwrap();

    upstream.kill().await;
    idle.read_to_end(deadline(WAIT)).await.unwrap();
    assert!(
        SseClient::get(upstream.addr(), "/x").await.is_err(),
        "killed server refuses connections"
    );
    upstream.restart().await.unwrap();
    let again = SseClient::get(upstream.addr(), "/x").await.unwrap();
    assert_eq!(again.status(), 200);
    assert_eq!(upstream.connections(), 5);
}

/// The config builder writes YAML that the real binary accepts, with every key the
/// builder offers set once, and that `check` refuses when a key is set twice.
#[test]
fn the_config_builder_writes_what_check_accepts() {
    use sse_gateway_tests::gateway::{run_binary, workspace_root};
    use sse_gateway_tests::{Auth, Cors, GatewayConfig, Route, Settings, Tls, WritePath};

    let dev = |file: &str| {
        workspace_root()
            .join("configs/dev")
            .join(file)
            .display()
            .to_string()
    };
    let full = GatewayConfig::quiet()
        .threads(2)
        .h2c(true)
        .shutdown_grace("1s")
        .trusted_proxies(&["127.0.0.1", "10.0.0.0/8"])
        .tls(
            Tls::new(
                "127.0.0.1:3",
                dev("localhost-cert.pem"),
                dev("localhost-key.pem"),
            )
            .h2_max_concurrent_streams(4),
        )
        .log_format("text")
        .log_level("warn,sse_gateway::access=info")
        .linger("30s")
        .replay(100, "5m")
        .client_queue("64KiB")
        .max_event_size("16KiB")
        .upstream_backoff("50ms", "300ms")
        .upstream_idle_timeout("0s")
        .stop_holdoff("30s")
        .write_window("0ms")
        .write_path(WritePath::Direct)
        .max_topics(5)
        .resume_from_client(true)
        .limit("max_clients", "10")
        .limit("new_topics_per_address", "{ max: 3, per: 1m }")
        .max_topic_series(1)
        .route(
            Route::fan_out(
                "prices",
                "/prices/{sym}",
                "https://127.0.0.1:9/stream/{sym}",
            )
            .topic("prices/{sym}")
            .params(&[("sym", "[A-Z]+")])
            .heartbeat("200ms")
            .gap_event("gap")
            .lenient_captures(true)
            .direct_write(false)
            .ca_file(dev("localhost-cert.pem"))
            .cors(
                Cors::origins(&["https://app.example.com"])
                    .credentials()
                    .max_age("1m"),
            )
            .auth(
                Auth::cookie("session")
                    .jwt("ES256", dev("jwt-es256-public.pem"))
                    .topics_claim("subscribe"),
            ),
        )
        .route(
            Route::fan_out("plain", "/plain/{n}", "https://127.0.0.1:9/{n}")
                .params(&[("n", "[a-z]+")])
                .insecure_skip_verify(true)
                .auth(Auth::cookie("member")),
        )
        .route(
            Route::proxy("api", "/api/{*rest}", "http://127.0.0.1:9").cors(Cors::origins(&["*"])),
        );
    let dir = std::env::temp_dir().join(format!("sse-gw-builder-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let check = |name: &str, yaml: &str| {
        let file = dir.join(name);
        std::fs::write(
            &file,
            format!("listen: [\"127.0.0.1:1\"]\nadmin: \"127.0.0.1:2\"\n{yaml}"),
        )
        .unwrap();
        let out = run_binary(&["check", "--config", &file.display().to_string()], &dir).unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let yaml = full.to_yaml();
    assert_eq!(
        check("full.yaml", &yaml),
        (Some(0), "ok\n".to_owned()),
        "{yaml}"
    );
    let twice = full.linger("1s").to_yaml();
    let (code, stdout) = check("twice.yaml", &twice);
    assert_eq!(code, Some(1), "a key set twice is refused: {stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}
