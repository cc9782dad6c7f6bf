//! Multi-topic streams (`multi:`): one connection for several topics of fan-out routes.
//!
//! * Three topics at different rates through one stream; the client is killed mid-stream
//!   and comes back with the composite `Last-Event-ID`: every member resumes from its own
//!   replay ring, with zero loss and zero duplicates, and each upstream was opened once.
//! * A member that matches no route, one the credential does not grant, and one whose
//!   upstream refuses the topic are each reported in-band (`topic_refused`,
//!   `topic_end`) while the others go on.
//! * Bad requests: no topic, a repeated one, more than `max_topics`; nothing admitted.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{json, Value};
use sse_gateway_tests::browser::{es256_public_key_path, mint_es256, unix_now};
use sse_gateway_tests::client::http_get;
use sse_gateway_tests::{
    deadline, Auth, Cors, GatewayConfig, GatewayProcess, Response, Route, Settings, SseClient,
    SseEvent, Upstream, UpstreamServer,
};

const WAIT: Duration = Duration::from_secs(20);

async fn live(rate: u32, name: &str) -> Upstream {
    UpstreamServer::new()
        .default_response(Response::live(rate).named(name))
        .run()
        .await
        .unwrap()
}

/// A fan-out route `/{name}/{n}` with topic `{name}/{n}` to `upstream`.
fn route(name: &str, upstream: &Upstream) -> Route {
    Route::fan_out(name, &format!("/{name}/{{n}}"), &upstream.url("/live/{n}"))
        .topic(&format!("{name}/{{n}}"))
}

/// Checks that `events` continue, per event type, from `last` (the id each type was
/// at, 0 before any) one by one; updates `last`.
fn continue_per_member(events: &[SseEvent], last: &mut HashMap<String, u64>) {
    for event in events {
        let id: u64 = event.data.parse().unwrap();
        let before = last.entry(event.event.clone()).or_insert(0);
        assert_eq!(id, *before + 1, "member {}: after {before}", event.event);
        *before = id;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_topics_resume_from_the_composite_id_without_loss_or_duplicates() {
    let (a, b, c) = (live(50, "a").await, live(20, "b").await, live(5, "c").await);
    let config = GatewayConfig::quiet()
        .linger("30s")
        .multi("/multi", 3)
        .route(route("a", &a))
        .route(route("b", &b))
        .route(route("c", &c));
    let gateway = GatewayProcess::start(&config.to_yaml()).await.unwrap();
    let path = "/multi?topic=/a/x&topic=b/x&topic=/c/x";

    let mut client = SseClient::get(gateway.addr(), path).await.unwrap();
    assert_eq!(client.status(), 200);
    assert_eq!(client.header("content-type"), Some("text/event-stream"));
    let events = client.events_until(60, deadline(WAIT)).await.unwrap();
    let mut last = HashMap::new();
    continue_per_member(&events, &mut last);
    for member in ["a", "b", "c"] {
        assert!(last.contains_key(member), "no event of {member}: {last:?}");
    }
    let composite = events.last().unwrap().last_event_id.clone();
    assert!(
        composite.starts_with("m1.") && composite.split('.').count() == 4,
        "{composite}"
    );
    assert!(
        events
            .iter()
            .all(|e| e.id.as_deref() == Some(e.last_event_id.as_str())),
        "every event carries the composite id"
    );
    // The client is killed mid-stream; the members go on without it meanwhile.
    drop(client);
    tokio::time::sleep(Duration::from_millis(600)).await;

    let mut client = SseClient::resume(gateway.addr(), path, &composite)
        .await
        .unwrap();
    assert_eq!(client.status(), 200);
    let events = client.events_until(80, deadline(WAIT)).await.unwrap();
    continue_per_member(&events, &mut last);
    // The gap came from the rings: one upstream connection per topic, all along.
    for (name, upstream) in [("a", &a), ("b", &b), ("c", &c)] {
        assert_eq!(upstream.connections(), 1, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_and_ended_members_are_reported_in_band_while_the_others_go_on() {
    let a = live(50, "a").await;
    let secret = live(50, "s").await;
    let gone = UpstreamServer::new()
        .default_response(Response::status(404))
        .run()
        .await
        .unwrap();
    let jwt = Auth::cookie("session")
        .jwt("ES256", es256_public_key_path().display())
        .topics_claim("subscribe");
    let config = GatewayConfig::quiet()
        .multi("/multi", 8)
        .route(route("a", &a))
        .route(route("s", &secret).auth(jwt))
        .route(route("gone", &gone));
    let gateway = GatewayProcess::start(&config.to_yaml()).await.unwrap();
    let token = mint_es256(&json!({ "exp": unix_now() + 600, "subscribe": ["s/open"] }));
    let bearer = format!("Bearer {token}");
    let path = "/multi?topic=/a/x&topic=/nope/1&topic=/s/open&topic=/s/closed&topic=/gone/x";
    let mut client = SseClient::request(gateway.addr(), "GET", path, &[("Authorization", &bearer)])
        .await
        .unwrap();
    assert_eq!(client.status(), 200);

    let mut notes: Vec<(String, Value)> = Vec::new();
    let mut counts: HashMap<String, usize> = HashMap::new();
    let end = deadline(WAIT);
    while counts.get("a").copied().unwrap_or(0) < 40 || notes.len() < 3 {
        let event = client
            .next_event(end)
            .await
            .unwrap()
            .expect("the stream goes on");
        match event.event.as_str() {
            "topic_refused" | "topic_end" => {
                notes.push((
                    event.event.clone(),
                    serde_json::from_str(&event.data).unwrap(),
                ));
            }
            other => *counts.entry(other.to_owned()).or_insert(0) += 1,
        }
    }
    let refused = |topic: &str| {
        notes
            .iter()
            .find(|(_, data)| data["topic"] == topic)
            .unwrap_or_else(|| panic!("no note for {topic}: {notes:?}"))
    };
    assert_eq!(refused("/nope/1").0, "topic_refused");
    assert_eq!(refused("/nope/1").1["reason"], "not_found");
    assert_eq!(refused("/nope/1").1["status"], 404);
    assert_eq!(refused("/s/closed").0, "topic_refused");
    assert_eq!(refused("/s/closed").1["reason"], "auth");
    assert_eq!(refused("/s/closed").1["status"], 403);
    assert_eq!(refused("/gone/x").0, "topic_end");
    assert_eq!(refused("/gone/x").1["reason"], "upstream_refused");
    // The granted member and the open one flow.
    assert!(counts.get("s").copied().unwrap_or(0) > 0, "{counts:?}");
    assert_eq!(secret.connections(), 1, "only the granted topic was opened");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_and_nothing_admitted() {
    let a = live(10, "a").await;
    let config = GatewayConfig::quiet()
        .multi("/multi", 2)
        .route(route("a", &a));
    let gateway = GatewayProcess::start(&config.to_yaml()).await.unwrap();
    for (path, status) in [
        ("/multi", 400),
        ("/multi?topic=", 400),
        ("/multi?topic=/a/1&topic=/a/1", 400),
        ("/multi?topic=/a/1&topic=/a/2&topic=/a/3", 400),
        ("/multi?topic=/nope", 404),
    ] {
        let response = http_get(gateway.addr(), path, &[]).await.unwrap();
        assert_eq!(response.status, status, "{path}: {}", response.text());
    }
    // HEAD answers the header without subscribing.
    let head = SseClient::request(gateway.addr(), "HEAD", "/multi?topic=/a/1", &[])
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.header("content-type"), Some("text/event-stream"));
    assert_eq!(a.connections(), 0, "nothing was subscribed");
}

/// The drain ends a multi-topic stream as any other: its jittered `retry:` last, and no
/// `topic_end` note per member.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_drain_ends_the_stream_with_a_retry_not_member_notes() {
    let (a, b) = (live(20, "a").await, live(20, "b").await);
    let config = GatewayConfig::quiet()
        .shutdown_grace("2s")
        .multi("/multi", 4)
        .route(route("a", &a))
        .route(route("b", &b));
    let gateway = GatewayProcess::start(&config.to_yaml()).await.unwrap();
    let mut client = SseClient::get(gateway.addr(), "/multi?topic=/a/x&topic=/b/x")
        .await
        .unwrap();
    client.events_until(5, deadline(WAIT)).await.unwrap();
    let retries_before = client.parser().retries_seen();
    let status = std::process::Command::new("kill")
        .args(["-s", "TERM", &gateway.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    client.read_to_end(deadline(WAIT)).await.unwrap();
    assert!(client.ended());
    assert!(
        client.parser().retries_seen() > retries_before,
        "a final retry:"
    );
    while let Some(event) = client.next_event(deadline(Duration::ZERO)).await.unwrap() {
        assert_ne!(event.event, "topic_end", "{event:?}");
    }
}

/// The stream has one set of CORS headers: a member whose route would answer the page's
/// `Origin` otherwise (no `cors:` at all, or no credentials) is refused as `cors`, so one
/// route's policy never lets a page read another route's events. Without an `Origin`
/// (same-origin, or no browser) every member is admitted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_cors_answer_covers_only_members_whose_routes_give_it() {
    let (open, private, plain) = (
        live(20, "o").await,
        live(20, "p").await,
        live(20, "n").await,
    );
    let origin = "https://app.example.com";
    let config = GatewayConfig::quiet()
        .multi("/multi", 4)
        .route(route("o", &open).cors(Cors::origins(&[origin]).credentials()))
        .route(route("p", &private))
        .route(route("n", &plain).cors(Cors::origins(&[origin])));
    let gateway = GatewayProcess::start(&config.to_yaml()).await.unwrap();
    let path = "/multi?topic=/o/x&topic=/p/x&topic=/n/x";

    let mut client = SseClient::request(gateway.addr(), "GET", path, &[("Origin", origin)])
        .await
        .unwrap();
    assert_eq!(client.status(), 200);
    assert_eq!(client.header("access-control-allow-origin"), Some(origin));
    assert_eq!(
        client.header("access-control-allow-credentials"),
        Some("true")
    );
    let mut refused = Vec::new();
    let mut counts: HashMap<String, usize> = HashMap::new();
    let end = deadline(WAIT);
    while counts.get("o").copied().unwrap_or(0) < 20 {
        let event = client
            .next_event(end)
            .await
            .unwrap()
            .expect("the stream goes on");
        if event.event == "topic_refused" {
            let data: Value = serde_json::from_str(&event.data).unwrap();
            assert_eq!(
                (&data["reason"], &data["status"]),
                (&json!("cors"), &json!(403))
            );
            refused.push(data["topic"].as_str().unwrap().to_owned());
        } else {
            *counts.entry(event.event.clone()).or_insert(0) += 1;
        }
    }
    refused.sort();
    assert_eq!(refused, ["/n/x", "/p/x"]);
    assert_eq!(
        counts.len(),
        1,
        "only the admitted member flows: {counts:?}"
    );
    assert_eq!(private.connections(), 0, "the refused topic was not opened");
    drop(client);

    // Same-origin: no Origin, no CORS headers, every member.
    let mut client = SseClient::get(gateway.addr(), path).await.unwrap();
    assert_eq!(client.status(), 200);
    assert_eq!(client.header("access-control-allow-origin"), None);
    let mut seen: HashMap<String, usize> = HashMap::new();
    let end = deadline(WAIT);
    while seen.len() < 3 {
        let event = client
            .next_event(end)
            .await
            .unwrap()
            .expect("the stream goes on");
        assert_ne!(event.event, "topic_refused", "{}", event.data);
        *seen.entry(event.event.clone()).or_insert(0) += 1;
    }
}

/// Members compare by route and topic, however spelled; a `Last-Event-ID` that carries
/// ids longer than a composite may is not looked into (the stream starts live), and the
/// composite of a member with such ids stays short.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spellings_of_one_topic_and_oversized_ids_are_bounded() {
    let a = live(20, "a").await;
    let config = GatewayConfig::quiet()
        .multi("/multi", 8)
        .route(route("a", &a));
    let gateway = GatewayProcess::start(&config.to_yaml()).await.unwrap();
    for path in [
        "/multi?topic=/a/x&topic=a/x",
        "/multi?topic=/a/x&topic=/a/%78",
    ] {
        let response = http_get(gateway.addr(), path, &[]).await.unwrap();
        assert_eq!(response.status, 400, "{path}: {}", response.text());
    }
    assert_eq!(a.connections(), 0, "nothing was subscribed");

    // A forged composite whose member id is 100 KB long.
    let forged = format!("m1.{}", "QUFB".repeat(33_000));
    let mut client = SseClient::request(
        gateway.addr(),
        "GET",
        "/multi?topic=/a/x",
        &[("Last-Event-ID", &forged)],
    )
    .await
    .unwrap();
    assert_eq!(client.status(), 200);
    let events = client.events_until(5, deadline(WAIT)).await.unwrap();
    for event in &events {
        assert!(
            event.last_event_id.starts_with("m1.") && event.last_event_id.len() < 64,
            "a short composite: {}",
            event.last_event_id
        );
    }
}
