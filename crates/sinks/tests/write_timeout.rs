//! The write timeout: a socket that takes nothing is cut off, one that keeps taking
//! bytes while behind is not.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sse_gateway_hub::CloseReason;

use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_that_takes_nothing_for_the_write_timeout_is_cut_off() {
    let h = Harness::new(quiet());
    let write_timeout = Duration::from_millis(300);
    let client_queue = 8 << 20;
    let (membership, sink) = h.subscribe(
        None,
        direct_settings(client_queue, write_timeout, TestDrain::idle()),
    );
    let (mut client, served) = connect(&sink, &membership, true).await;
    let publisher = h.feed.publisher();
    let start = Instant::now();
    let mut sent = Vec::new();
    while sink.written().0 == sent.len() as u64 {
        assert!(sent.len() < 2000, "the socket never fell behind");
        sent.extend(publish(&publisher, sent.len() as u64 + 1, 1, 1000));
    }
    sent.extend(publish(&publisher, sent.len() as u64 + 1, 10, 1000));
    assert!(
        payload_bytes(&sent) < client_queue as u64,
        "not a slow-client cut"
    );

    let outcome = served.outcome().await;
    assert_eq!(outcome.end, CloseReason::WriteFailed);
    assert!(
        start.elapsed() >= write_timeout,
        "not before the write timeout"
    );
    assert!(outcome.events < sent.len() as u64);
    assert_eq!(h.metric(SLOW_SERIES), Some(0.0));
    let chunks = client.cut_body().await;
    assert_eq!(chunks[0], b":\n");
    assert_frames(&chunks[1..], &sent[..chunks.len() - 1]);
    drop(membership);
}

/// `write_timeout` is documented as "a subscriber whose socket takes nothing
/// for this long while it has pending bytes is cut off" (and LIFECYCLE.md:
/// "nothing taken for write_timeout"). A client that keeps reading, only more
/// slowly than the topic publishes, takes bytes all the time and stays within
/// `client_queue`: it must not be cut off by the write timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_keeps_reading_while_behind_is_not_timed_out() {
    let h = Harness::new(quiet());
    let write_timeout = Duration::from_millis(500);
    let (membership, sink) = h.subscribe(
        None,
        direct_settings(64 << 20, write_timeout, TestDrain::idle()),
    );
    let (client, served) = connect(&sink, &membership, true).await;
    let client = Arc::new(tokio::sync::Mutex::new(client));
    let reading = Arc::new(AtomicBool::new(true));
    // The client reads a chunk every 5 ms: it takes bytes all the time.
    let slow_reader = {
        let (client, reading) = (client.clone(), reading.clone());
        tokio::spawn(async move {
            let mut chunks = Vec::new();
            while reading.load(Ordering::SeqCst) {
                match client.lock().await.next().await {
                    Ok(Chunk::Data(payload)) => chunks.push(payload),
                    other => return (chunks, Some(other)),
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            (chunks, None)
        })
    };
    // The topic publishes about 4 frames (of ~1.5 KiB) per 5 ms, for 4 write
    // timeouts: the sink stays behind the whole time.
    let publisher = h.feed.publisher();
    let mut sent = Vec::new();
    let start = Instant::now();
    while start.elapsed() < write_timeout * 4 {
        sent.extend(publish(&publisher, sent.len() as u64 + 1, 4, 500));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let behind = sink.written().0 < sent.len() as u64;
    let finished = served.task.is_finished();
    reading.store(false, Ordering::SeqCst);
    let (mut chunks, ended) = tokio::time::timeout(DEADLINE, slow_reader)
        .await
        .expect("reader stopped")
        .unwrap();
    if finished {
        panic!(
            "cut off while taking bytes ({} chunks read, then {ended:?}): {:?}",
            chunks.len(),
            served.outcome().await
        );
    }
    assert_eq!(ended, None, "the stream went on");
    assert!(behind, "the sink stayed behind while publishing");
    assert!(
        chunks.len() > 20,
        "the client took bytes all along ({} chunks)",
        chunks.len()
    );
    publisher.stop();
    chunks.extend(client.lock().await.complete_body().await);
    assert_eq!(chunks[0], b":\n");
    assert_frames(&chunks[1..], &sent);
    assert_eq!(served.outcome().await.end, CloseReason::UpstreamStopped);
    drop(membership);
}
