//! The demo page in headless Chromium, screenshotted: a live line chart per symbol (its
//! blue line is in the screenshot, in each card), the gateway's own numbers (subscribers,
//! one upstream connection per topic, events delivered, from `/demo/stats`) and the
//! multi-topic card, whose one EventSource subscribes to every symbol.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use serde_json::Value;
use sse_gateway_tests::browser::{Chromium, PageServer};
use sse_gateway_tests::client::http_get;
use sse_gateway_tests::gateway::workspace_root;
use sse_gateway_tests::{deadline, png, GatewayProcess};

/// The chart line's colour in the page (`#1565c0`).
const LINE: [u8; 3] = [0x15, 0x65, 0xc0];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_page_draws_charts_and_shows_the_gateway_numbers() {
    let demo = GatewayProcess::start_demo().await.unwrap();
    let pages = PageServer::start().await.unwrap();
    // The demo in a frame, and an image that holds the load event (when the screenshot
    // is taken) for 6 s while the page streams: about 24 ticks per symbol.
    let html = format!(
        "<!doctype html><body style=\"margin:0\"><iframe src=\"http://{}/\" width=\"1200\" \
         height=\"900\" style=\"border:0\"></iframe><img src=\"/slow?ms=6000\" width=\"1\" \
         height=\"1\"></body>",
        demo.addr()
    );
    let url = pages.raw_page("/frame.html", &html);
    let png_path = workspace_root()
        .join("target/e2e")
        .join(format!("demo-{}.png", std::process::id()));
    let _ = std::fs::remove_file(&png_path);
    let shot = {
        let png_path = png_path.clone();
        tokio::task::spawn_blocking(move || Chromium::screenshot(&url, &png_path, 1200, 900))
    };

    // While the page runs: 3 cards and the multi card's 3 members subscribe, to 3
    // topics, each with one upstream connection.
    let end = deadline(Duration::from_secs(30));
    let stats = loop {
        let stats = http_get(demo.addr(), "/demo/stats", &[]).await.unwrap();
        assert_eq!(stats.status, 200);
        let stats: Value = serde_json::from_str(&stats.text()).unwrap();
        if stats["subscribers"] == 6 && stats["events_delivered"].as_u64().unwrap() > 20 {
            break stats;
        }
        assert!(std::time::Instant::now() < end, "{stats}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(stats["topics"], 3, "{stats}");
    assert_eq!(stats["upstream_connections"], 3, "one per topic: {stats}");

    shot.await.unwrap().unwrap();
    let image = png::decode(&std::fs::read(&png_path).unwrap()).unwrap();
    assert_eq!((image.width, image.height), (1200, 900));
    // Each of the three symbol cards (the first three columns) has a drawn line.
    for (i, x0) in [0usize, 300, 590].into_iter().enumerate() {
        let drawn = image.count_near(LINE, 40, Some((x0, 150, x0 + 290, 650)));
        assert!(
            drawn > 100,
            "card {i}: {drawn} chart pixels in {}",
            png_path.display()
        );
    }
    // The multi-topic card (fourth column) shows prices and a composite id: text, no chart.
    let multi = image.count_near([0x22, 0x22, 0x22], 60, Some((890, 230, 1200, 450)));
    assert!(multi > 200, "the multi-topic card has content: {multi}");
}
