//! Per-client event filters (`?event=a,b`, route key `event_filter`), over real sockets
//! on both write paths: each client gets exactly the events of its types, in order and
//! with their ids, whether the frames came one per upstream read or several in one read
//! (a batch the filter keeps all, some or none of); frames that dispatch nothing (an id
//! update) still reach every client; a client that resumes is replayed only its types;
//! a bad filter is a 400; a route without `event_filter` ignores the parameter; a client
//! whose types never come still gets a heartbeat comment once per `heartbeat`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use sse_gateway_tests::client::http_get;
use sse_gateway_tests::{
    deadline, on_both_paths, GatewayConfig, GatewayProcess, Response, Route, Settings, SseClient,
    SseEvent, UpstreamServer, WritePath,
};

const WAIT: Duration = Duration::from_secs(10);

/// One event: `event: {kind}` (none for `message`), `id`, `data: {kind}-{id}`.
fn event(kind: &str, id: u64) -> String {
    let field = match kind {
        "message" => String::new(),
        kind => format!("event: {kind}\n"),
    };
    format!("{field}id: {id}\ndata: {kind}-{id}\n\n")
}

fn batch(events: &[(&str, u64)]) -> String {
    events.iter().map(|(kind, id)| event(kind, *id)).collect()
}

/// The upstream's script, after one release: a batch of mixed types, single events,
/// a batch of `c` only, a batch of `a` only, an id update, an event without an id.
fn script() -> Response {
    let gap = Duration::from_millis(30);
    Response::sse()
        .wait_release()
        .chunk(batch(&[
            ("a", 1),
            ("b", 2),
            ("c", 3),
            ("message", 4),
            ("a", 5),
        ]))
        .chunk_after(gap, event("c", 6))
        .chunk_after(gap, event("a", 7))
        .chunk_after(gap, event("message", 8))
        .chunk_after(gap, event("b", 9))
        .chunk_after(gap, batch(&[("c", 10), ("c", 11)]))
        .chunk_after(gap, batch(&[("a", 12), ("a", 13)]))
        .chunk_after(gap, event("b", 14))
        .chunk_after(gap, "id: 15\n\n")
        .chunk_after(gap, "event: b\ndata: b-late\n\n")
}

/// What a client read: `(data, last event id)` of each event.
fn seen(events: &[SseEvent]) -> Vec<(String, String)> {
    events
        .iter()
        .map(|e| (e.data.clone(), e.last_event_id.clone()))
        .collect()
}

fn expect(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(data, id)| ((*data).to_owned(), (*id).to_owned()))
        .collect()
}

async fn filtered_clients_get_only_their_types_live_and_replayed(path: WritePath) {
    let upstream = UpstreamServer::new()
        .default_response(script())
        .run()
        .await
        .unwrap();
    let url = upstream.url("/stream/{name}");
    let config = GatewayConfig::quiet()
        .write_path(path)
        .linger("30s")
        .route(Route::fan_out("filtered", "/f/{name}", &url).event_filter(true))
        .route(Route::fan_out("plain", "/p/{name}", &url));
    let gateway = GatewayProcess::start(&config.to_yaml()).await.unwrap();
    let addr = gateway.addr();

    let mut all = SseClient::get(addr, "/f/x").await.unwrap();
    let mut ab = SseClient::get(addr, "/f/x?event=a,b").await.unwrap();
    let mut message = SseClient::get(addr, "/f/x?event=message").await.unwrap();
    let mut none = SseClient::get(addr, "/f/x?event=zzz&event=yyy")
        .await
        .unwrap();
    for client in [&all, &ab, &message, &none] {
        assert_eq!(client.status(), 200);
    }
    upstream.release();

    let everything = all.events_until(15, deadline(WAIT)).await.unwrap();
    let ids: Vec<&str> = everything
        .iter()
        .map(|e| e.last_event_id.as_str())
        .collect();
    let want: Vec<String> = (1..=14).map(|n| n.to_string()).collect();
    assert_eq!(ids[..14], want[..], "the unfiltered client gets everything");
    assert_eq!(everything[14].data, "b-late");
    assert_eq!(everything[14].last_event_id, "15");

    let got = ab.events_until(9, deadline(WAIT)).await.unwrap();
    assert_eq!(
        seen(&got),
        expect(&[
            ("a-1", "1"),
            ("b-2", "2"),
            ("a-5", "5"),
            ("a-7", "7"),
            ("b-9", "9"),
            ("a-12", "12"),
            ("a-13", "13"),
            ("b-14", "14"),
            // The id update passed: the late event carries it.
            ("b-late", "15"),
        ])
    );
    assert!(got.iter().all(|e| e.event == "a" || e.event == "b"));
    let got = message.events_until(2, deadline(WAIT)).await.unwrap();
    assert_eq!(
        seen(&got),
        expect(&[("message-4", "4"), ("message-8", "8")])
    );

    // Nothing more arrives for any filtered client (the script is over).
    tokio::time::sleep(Duration::from_millis(300)).await;
    for client in [&mut ab, &mut message, &mut none] {
        let more = client
            .next_event(deadline(Duration::from_millis(200)))
            .await;
        assert!(more.is_err(), "no further event: {more:?}");
    }

    // Replay honours the filter: resuming from id 2 gives the later `a` events only.
    let mut resumed = SseClient::resume(addr, "/f/x?event=a", "2").await.unwrap();
    let got = resumed.events_until(4, deadline(WAIT)).await.unwrap();
    assert_eq!(
        seen(&got),
        expect(&[("a-5", "5"), ("a-7", "7"), ("a-12", "12"), ("a-13", "13")])
    );

    // A bad filter is refused before anything is subscribed.
    for bad in ["/f/y?event=", "/f/y?event=a,,b", "/f/y?event=a%0Ab"] {
        let response = http_get(addr, bad, &[]).await.unwrap();
        assert_eq!(response.status, 400, "{bad}");
        assert!(response.text().starts_with("bad event filter: "), "{bad}");
    }
    // One upstream connection (/f/x): the refused requests opened none.
    assert_eq!(upstream.connections(), 1);

    // A route without `event_filter` ignores the parameter.
    let mut plain = SseClient::get(addr, "/p/x?event=a").await.unwrap();
    let got = plain.events_until(15, deadline(WAIT)).await.unwrap();
    assert!(got.iter().any(|e| e.event == "c"), "unfiltered: {got:?}");
    drop((all, plain));
}

async fn a_client_whose_types_never_come_gets_heartbeats(path: WritePath) {
    let upstream = UpstreamServer::new()
        .default_response(Response::live(100))
        .run()
        .await
        .unwrap();
    let config = GatewayConfig::quiet().write_path(path).route(
        Route::fan_out("filtered", "/f/{name}", &upstream.url("/stream/{name}"))
            .heartbeat("250ms")
            .event_filter(true),
    );
    let gateway = GatewayProcess::start(&config.to_yaml()).await.unwrap();
    let mut busy = SseClient::get(gateway.addr(), "/f/x").await.unwrap();
    let mut quiet = SseClient::get(gateway.addr(), "/f/x?event=rare")
        .await
        .unwrap();
    busy.events_until(5, deadline(WAIT)).await.unwrap();
    // The topic is never idle for 250 ms, so its own heartbeat never runs; the
    // filtered client gets one in place of a skipped event, once per period.
    let end = deadline(Duration::from_millis(1600));
    let idle = quiet.next_event(end).await;
    assert!(idle.is_err(), "no event of type `rare`: {idle:?}");
    let comments = quiet.comments().len();
    assert!(
        (3..=10).contains(&comments),
        "the opening comment and a heartbeat about every 250 ms: {:?}",
        quiet.comments()
    );
    let busy_events = busy.events_until(50, deadline(WAIT)).await.unwrap();
    assert!(busy_events.iter().all(|e| e.event == "message"));
}

on_both_paths!(
    filtered_clients_get_only_their_types_live_and_replayed,
    a_client_whose_types_never_come_gets_heartbeats,
);
