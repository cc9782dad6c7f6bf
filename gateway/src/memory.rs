//! Giving freed heap memory back to the operating system.
//!
//! Every new client passes through a pingora session (tens of KiB for the
//! request phase) before its socket moves to the direct path, where it costs
//! about 1 KiB. glibc's allocator keeps the freed session memory in holes
//! between long-lived allocations and does not return it by itself: measured
//! with 10,000 idle direct subscribers, RSS stayed at 6–8 KiB per subscriber
//! until `malloc_trim(0)` brought it to 0.95 KiB (benches/README.md). The
//! gateway therefore trims every [`TRIM_INTERVAL`].

use std::time::{Duration, Instant};

/// How often the heap is trimmed.
pub(crate) const TRIM_INTERVAL: Duration = Duration::from_secs(10);

/// Returns free heap pages to the OS; returns how long it took.
pub(crate) fn trim() -> Duration {
    let started = Instant::now();
    release_free_pages();
    started.elapsed()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn release_free_pages() {
    // SAFETY: `malloc_trim` is glibc's documented, thread-safe call to
    // release free memory at the top of the heap and in free pages inside
    // every arena (glibc ≥ 2.8); it takes no pointers and has no
    // preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release_free_pages() {}

/// Trims every [`TRIM_INTERVAL`] until the task is dropped.
pub(crate) async fn trim_periodically() {
    let mut ticks = tokio::time::interval(TRIM_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let took = tokio::task::spawn_blocking(trim).await.unwrap_or_default();
        tracing::debug!(took_us = took.as_micros() as u64, "heap trimmed");
    }
}
