//! Publishing the origin's events to Nchan's and Pushpin's publish endpoints.
//!
//! Each topic is assigned to one of a few worker tasks, each POSTing its
//! events one after another over keep-alive connections, so that a topic's
//! events arrive in order.

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use tokio::sync::mpsc;

/// One POST: where, what, and its content type.
struct Job {
    uri: http::Uri,
    body: Bytes,
    content_type: &'static str,
}

/// Sends every published event to the configured endpoints; cheap to clone.
#[derive(Clone, Default)]
pub struct Publisher {
    nchan: Option<String>,
    pushpin: Option<String>,
    workers: Vec<mpsc::UnboundedSender<Job>>,
}

impl Publisher {
    /// Starts `connections` workers when any endpoint is given (must run in a
    /// tokio runtime). `nchan` is a URL in which `{topic}` is replaced;
    /// `pushpin` is the publish API's URL (`http://HOST:5561/publish/`).
    pub fn start(nchan: Option<String>, pushpin: Option<String>, connections: usize) -> Self {
        if nchan.is_none() && pushpin.is_none() {
            return Self::default();
        }
        let workers = (0..connections.max(1))
            .map(|_| {
                let (sender, receiver) = mpsc::unbounded_channel();
                tokio::spawn(worker(receiver));
                sender
            })
            .collect();
        Self {
            nchan,
            pushpin,
            workers,
        }
    }

    /// Publishes event `seq` of `topic` with payload `data` to every endpoint.
    pub fn publish(&self, topic: &str, seq: u64, data: &str) {
        if self.workers.is_empty() {
            return;
        }
        let index = topic_index(topic) % self.workers.len();
        let Some(worker) = self.workers.get(index) else {
            return;
        };
        if let Some(url) = &self.nchan {
            if let Ok(uri) = url.replace("{topic}", topic).parse() {
                let _ = worker.send(Job {
                    uri,
                    body: Bytes::from(data.to_owned()),
                    content_type: "text/plain",
                });
            }
        }
        if let Some(url) = &self.pushpin {
            if let Ok(uri) = url.parse() {
                let _ = worker.send(Job {
                    uri,
                    body: pushpin_item(topic, seq, data),
                    content_type: "application/json",
                });
            }
        }
    }
}

/// A Pushpin publish request with one `http-stream` item carrying the SSE event.
pub fn pushpin_item(topic: &str, seq: u64, data: &str) -> Bytes {
    let item = serde_json::json!({
        "items": [{
            "channel": topic,
            "formats": {"http-stream": {"content": format!("id: {seq}\ndata: {data}\n\n")}},
        }]
    });
    Bytes::from(item.to_string())
}

/// Spreads topics over workers: a number's value, or a hash of the name.
fn topic_index(topic: &str) -> usize {
    topic.parse::<usize>().unwrap_or_else(|_| {
        topic.bytes().fold(0usize, |h, b| {
            h.wrapping_mul(31).wrapping_add(usize::from(b))
        })
    })
}

/// POSTs jobs in order. A failed POST is dropped: the load generator sees it
/// as a gap.
async fn worker(mut jobs: mpsc::UnboundedReceiver<Job>) {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build(connector);
    while let Some(job) = jobs.recv().await {
        let Ok(request) = http::Request::post(job.uri)
            .header("content-type", job.content_type)
            .body(Full::new(job.body))
        else {
            continue;
        };
        if let Ok(response) = client.request(request).await {
            // Read the body to the end so that the connection is reused.
            let _ = http_body_util::BodyExt::collect(response.into_body()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pushpin_item_carries_the_sse_event() {
        let body = pushpin_item("7", 3, "{\"seq\":3}");
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(value["items"][0]["channel"], "7");
        assert_eq!(
            value["items"][0]["formats"]["http-stream"]["content"],
            "id: 3\ndata: {\"seq\":3}\n\n"
        );
    }

    #[test]
    fn numbered_topics_spread_by_number() {
        assert_eq!(topic_index("5"), 5);
        assert_eq!(topic_index("abc"), topic_index("abc"));
    }
}
