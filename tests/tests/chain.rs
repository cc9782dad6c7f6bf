//! Scale-out by chaining: a gateway is a valid upstream of another. Three real processes,
//! origin → core gateway → edge gateway → client, and ids are kept end to end:
//!
//! * through the chain the client sees the origin's ids and data, without gap or
//!   duplicate;
//! * an edge restart: the client comes back with `Last-Event-ID`, the new edge opens the
//!   core with it, and the core replays from its ring (the origin is not asked again);
//! * a core restart: the edge keeps its client connected, reconnects to the new core
//!   with its own last id, and the new core resumes the origin from it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use sse_gateway_tests::browser::PinnedGateway;
use sse_gateway_tests::{
    deadline, GatewayConfig, Response, Route, Settings, SseClient, Upstream, UpstreamServer,
};

const WAIT: Duration = Duration::from_secs(20);

/// A gateway of the chain: `name` route at `/{name}/{topic}` to `upstream_url`, resuming
/// a new topic from its first client's id (what a restarted link needs), retrying its
/// upstream quickly.
fn link(name: &str, upstream_url: &str) -> String {
    GatewayConfig::quiet()
        .linger("30s")
        .replay(10_000, "5m")
        .resume_from_client(true)
        .route(
            Route::fan_out(name, &format!("/{name}/{{topic}}"), upstream_url)
                .upstream_backoff("50ms", "200ms"),
        )
        .to_yaml()
}

/// Reads `n` events and checks that they continue `last` (the id before them) one by
/// one, with the origin's data; returns the last id.
async fn read_on(client: &mut SseClient, last: u64, n: usize, what: &str) -> u64 {
    let events = client
        .events_until(n, deadline(WAIT))
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    for (i, event) in events.iter().enumerate() {
        let want = last + 1 + i as u64;
        assert_eq!(event.id_num(), Some(want), "{what}: event #{i}");
        assert_eq!(event.data, want.to_string(), "{what}: event #{i}");
    }
    last + n as u64
}

async fn origin() -> Upstream {
    UpstreamServer::new()
        .default_response(Response::live(40))
        .run()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edge_restart_resumes_from_the_core_ring() {
    let origin = origin().await;
    let core = PinnedGateway::start(&link("core", &origin.url("/live/{topic}")), &[])
        .await
        .unwrap();
    let core_url = format!("http://{}/core/{{topic}}", core.addr());
    let mut edge = PinnedGateway::start(&link("edge", &core_url), &[])
        .await
        .unwrap();

    let mut client = SseClient::get(edge.addr(), "/edge/t").await.unwrap();
    assert_eq!(client.status(), 200);
    let last = read_on(&mut client, 0, 20, "through the chain").await;

    edge.kill().await;
    // Events keep coming into the core's ring meanwhile.
    tokio::time::sleep(Duration::from_millis(300)).await;
    edge.restart().await.unwrap();
    let mut client = SseClient::resume(edge.addr(), "/edge/t", &last.to_string())
        .await
        .unwrap_or_else(|e| panic!("{e}\nedge log:\n{}", edge.log()));
    assert_eq!(client.status(), 200);
    read_on(&mut client, last, 40, "after the edge restart").await;
    // The core served the gap from its ring: the origin was opened once.
    assert_eq!(origin.connections(), 1, "{:?}", origin.requests());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_core_restart_resumes_from_the_origin_while_the_client_stays() {
    let origin = origin().await;
    let mut core = PinnedGateway::start(&link("core", &origin.url("/live/{topic}")), &[])
        .await
        .unwrap();
    let core_url = format!("http://{}/core/{{topic}}", core.addr());
    let edge = PinnedGateway::start(&link("edge", &core_url), &[])
        .await
        .unwrap();

    let mut client = SseClient::get(edge.addr(), "/edge/t").await.unwrap();
    let last = read_on(&mut client, 0, 20, "through the chain").await;

    core.kill().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    core.restart().await.unwrap();
    // The same client connection: the edge reconnected upstream by itself.
    read_on(&mut client, last, 40, "across the core restart").await;
    assert!(!client.ended());
    let requests = origin.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!(requests[0].last_event_id(), None);
    let resumed: u64 = requests[1].last_event_id().unwrap().parse().unwrap();
    assert!(
        resumed >= last,
        "the new core resumed the origin from {resumed}"
    );
    drop(edge);
}
