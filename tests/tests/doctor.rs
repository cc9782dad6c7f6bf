//! `sse-gateway doctor URL` against upstreams this test starts: a good one passes (exit
//! 0), and each bad one is named in plain words, with exit status 1 for a problem: an
//! upstream that ignores `Last-Event-ID`, a wrong content type, a 404, a compressed
//! body; warnings (events without ids, a stream that looks buffered, CORS headers the
//! gateway will not pass on) keep exit status 0.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use sse_gateway_tests::gateway::{run_binary, workspace_root};
use sse_gateway_tests::{Response, UpstreamServer};

/// Runs the doctor on `response` served at `/s`; returns its exit status and stdout.
async fn doctor(response: Response, extra: &[&str]) -> (i32, String) {
    let upstream = UpstreamServer::new()
        .default_response(response)
        .run()
        .await
        .unwrap();
    let url = upstream.url("/s");
    let mut args = vec!["doctor".to_owned(), url, "--listen".into(), "5s".into()];
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    let output = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_binary(&args, &workspace_root())
    })
    .await
    .unwrap()
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let code = output.status.code().unwrap_or(-1);
    assert!(stderr.is_empty() || code != 0, "stderr: {stderr}");
    (code, stdout)
}

/// The report's line for `check` with this verdict (`ok`, `warn`, `FAIL`).
fn line<'a>(stdout: &'a str, verdict: &str, check: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.starts_with(verdict) && l[4..].trim_start().starts_with(check))
        .unwrap_or_else(|| panic!("no `{verdict} {check}` line in:\n{stdout}"))
}

fn events(ids: std::ops::RangeInclusive<u64>) -> String {
    ids.map(|n| format!("id: {n}\ndata: {n}\n\n")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_upstream_passes() {
    let (code, out) = doctor(Response::live(20), &[]).await;
    assert_eq!(code, 0, "{out}");
    line(&out, "ok", "answer");
    line(&out, "ok", "ids");
    let resumed = line(&out, "ok", "Last-Event-ID");
    assert!(resumed.contains("reconnected with \"5\""), "{resumed}");
    assert!(out.contains("no problem found"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_that_ignores_last_event_id_is_a_problem() {
    // Every connection starts at id 1, whatever Last-Event-ID says.
    let (code, out) = doctor(Response::sse().chunk(events(1..=5)), &[]).await;
    assert_eq!(code, 1, "{out}");
    let fail = line(&out, "FAIL", "Last-Event-ID");
    assert!(fail.contains("ignores Last-Event-ID"), "{fail}");
    assert!(out.contains("1 problem(s)"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_content_type_or_a_404_is_a_problem() {
    let wrong = Response::sse()
        .content_type("text/plain")
        .chunk(events(1..=2));
    let (code, out) = doctor(wrong, &[]).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        line(&out, "FAIL", "answer").contains("\"text/plain\""),
        "{out}"
    );

    let (code, out) = doctor(Response::status(404), &[]).await;
    assert_eq!(code, 1, "{out}");
    let fail = line(&out, "FAIL", "answer");
    assert!(
        fail.contains("HTTP 404") && fail.contains("gives up"),
        "{fail}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warnings_name_missing_ids_and_a_buffered_stream_without_failing() {
    let no_ids = Response::sse().chunk("retry: 2000\n: hello\n\ndata: a\n\ndata: b\n\n");
    let (code, out) = doctor(no_ids, &["--events", "2"]).await;
    assert_eq!(code, 0, "{out}");
    assert!(line(&out, "warn", "ids").contains("2 of 2 event(s) carry no `id`"));
    assert!(line(&out, "ok", "retry").contains("2000 ms"), "{out}");
    assert!(
        line(&out, "ok", "heartbeats").contains("1 comment(s)"),
        "{out}"
    );
    line(&out, "warn", "Last-Event-ID");

    // Nothing for 3.2 s, then five events at once.
    let buffered = Response::sse().chunk_after(Duration::from_millis(3200), events(1..=5));
    let (_, out) = doctor(buffered, &[]).await;
    assert!(
        line(&out, "warn", "buffering").contains("after the answer"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_cors_headers_and_a_compressed_body_are_named() {
    let cors = Response::live(20).header("Access-Control-Allow-Origin", "*");
    let (code, out) = doctor(cors, &[]).await;
    assert_eq!(code, 0, "{out}");
    let warn = line(&out, "warn", "cors");
    assert!(warn.contains("access-control-allow-origin"), "{warn}");

    let gzip = Response::sse()
        .header("Content-Encoding", "gzip")
        .chunk(events(1..=2));
    let (code, out) = doctor(gzip, &[]).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        line(&out, "FAIL", "encoding").contains("gzip-encoded"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_arguments_are_usage_errors() {
    let output =
        tokio::task::spawn_blocking(|| run_binary(&["doctor", "not a url"], &workspace_root()))
            .await
            .unwrap()
            .unwrap();
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("bad URL"), "{stderr}");
}
