//! How a feed ends: 204 from the upstream, or the topic closing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod support;

use std::time::{Duration, Instant};

use sse_gateway_hub::CloseReason;
use support::{eventually, settings, Client, Reply, Upstream, PATIENCE};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_204_stops_the_topic_and_nothing_reconnects() {
    let upstream = Upstream::start(|_, _| Reply::status(204)).await;
    let mut client = Client::subscribe(settings(upstream.url("/s")), None);

    let deadline = Instant::now() + PATIENCE;
    let end = loop {
        match client.next(deadline).await {
            Some(Ok(_)) => {}
            Some(Err(reason)) => break reason,
            None => panic!("the stream did not end"),
        }
    };
    assert_eq!(end, CloseReason::UpstreamStopped);
    // With 10 ms backoff a reconnect would show well within this window.
    let window = Instant::now() + Duration::from_millis(300);
    while Instant::now() < window {
        assert_eq!(upstream.connections(), 1, "reconnected after 204");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(client.upstream_errors("status"), 0);
    assert_eq!(
        client.metric("sse_gateway_upstream_reconnects_total", &[]),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_topic_closes_the_upstream_connection() {
    let upstream = Upstream::start(|_, _| Reply::sse(&["data: a\n\n"]).hold()).await;
    let mut client = Client::subscribe(settings(upstream.url("/s")), None);
    client.events(1).await;
    assert!(!upstream.conn(0).eof);

    drop(client.membership.take()); // linger 0: the topic closes
    assert!(
        eventually(|| upstream.conn(0).eof).await,
        "the upstream never saw EOF"
    );
    assert!(eventually(|| client.hub.topic_count() == 0).await);
    assert_eq!(upstream.connections(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_topic_during_backoff_ends_the_feed() {
    let upstream = Upstream::start(|_, _| Reply::status(503)).await;
    let mut upstream_settings = settings(upstream.url("/s"));
    upstream_settings.backoff_initial = Duration::from_millis(200);
    upstream_settings.backoff_max = Duration::from_millis(200);
    let mut client = Client::subscribe(upstream_settings, None);
    assert!(eventually(|| upstream.connections() >= 1).await);
    drop(client.membership.take());
    assert!(eventually(|| client.hub.topic_count() == 0).await);
    let seen = upstream.connections();
    let window = Instant::now() + Duration::from_millis(500);
    while Instant::now() < window {
        assert_eq!(upstream.connections(), seen, "the feed kept reconnecting");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
