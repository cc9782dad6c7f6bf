//! Test support for crates that drive a [`TopicHub`](crate::TopicHub)
//! (the `testing` feature; not part of the gateway's build).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use sse_gateway_codec::{encode_event, Frame, OutgoingEvent};

use crate::{FeedFuture, TopicPublisher, TopicSettings};

/// Topic settings that offer nothing of their own: no heartbeats, no
/// `retry:` advice, no linger (a test sees only the frames it publishes).
pub fn quiet() -> TopicSettings {
    TopicSettings {
        heartbeat: Duration::ZERO,
        client_retry: Duration::ZERO,
        linger: Duration::ZERO,
        ..TopicSettings::default()
    }
}

/// An event frame with id `id` and data `event {id}` followed by `pad`
/// bytes of padding (none when `pad` is 0).
#[allow(clippy::panic)] // test support: a frame that cannot be made is a broken test
pub fn frame(id: u64, pad: usize) -> Frame {
    let data = if pad == 0 {
        format!("event {id}")
    } else {
        format!("event {id} {}", "x".repeat(pad))
    };
    let event = OutgoingEvent {
        id: Some(&id.to_string()),
        data: &data,
        ..Default::default()
    };
    // Nothing in it can fail to encode (no line breaks in the id).
    match encode_event(&event) {
        Ok(frame) => frame,
        Err(e) => panic!("test frame {id}: {e}"),
    }
}

/// A feed for [`TopicHub::subscribe`](crate::TopicHub::subscribe) that hands
/// its publisher to the test, counts how often it was opened, and runs until
/// the topic closes it. Clones share their state.
#[derive(Clone, Default)]
pub struct TestFeed {
    opened: Arc<AtomicUsize>,
    publishers: Arc<Mutex<Vec<Arc<TopicPublisher>>>>,
}

// === impl TestFeed ===

impl TestFeed {
    /// The feed to pass to `subscribe`.
    pub fn open(&self) -> impl FnOnce(TopicPublisher) -> FeedFuture + Send + 'static {
        let this = self.clone();
        move |publisher| {
            this.opened.fetch_add(1, Ordering::SeqCst);
            let publisher = Arc::new(publisher);
            this.publishers.lock().push(publisher.clone());
            Box::pin(async move { publisher.closed().await })
        }
    }

    /// How many times a topic opened this feed.
    pub fn opened(&self) -> usize {
        self.opened.load(Ordering::SeqCst)
    }

    /// The publisher of the `n`th opening (from 0).
    pub fn publisher_at(&self, n: usize) -> Option<Arc<TopicPublisher>> {
        self.publishers.lock().get(n).cloned()
    }

    /// The publisher of the last opening.
    ///
    /// # Panics
    ///
    /// When no topic opened the feed yet (the test is broken).
    #[allow(clippy::expect_used, reason = "test support: a broken test panics")]
    pub fn publisher(&self) -> Arc<TopicPublisher> {
        self.publishers
            .lock()
            .last()
            .cloned()
            .expect("a feed was opened")
    }
}
