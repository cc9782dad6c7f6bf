//! The admin listener: `/metrics`, `/healthz`, `/readyz`, `/topics`. Never
//! on the public port.

use std::sync::Arc;

use async_trait::async_trait;
use http::{Response, StatusCode};
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use sse_gateway_hub::TopicInfo;

use crate::state::AppState;

/// The admin app.
pub(crate) struct Admin {
    state: Arc<AppState>,
}

// === impl Admin ===

impl Admin {
    /// The admin app over the shared state.
    pub(crate) fn new(state: Arc<AppState>) -> Self {
        Self { state }
    }

    /// The answer for `path`: status, content type, body.
    fn answer(&self, path: &str) -> (StatusCode, &'static str, Vec<u8>) {
        const TEXT: &str = "text/plain; charset=utf-8";
        match path {
            "/metrics" => (
                StatusCode::OK,
                sse_gateway_metrics::TEXT_CONTENT_TYPE,
                self.state.metrics.encode_text().into_bytes(),
            ),
            "/healthz" => (StatusCode::OK, TEXT, b"ok\n".to_vec()),
            "/readyz" if self.state.is_ready() => (StatusCode::OK, TEXT, b"ready\n".to_vec()),
            "/readyz" if self.state.is_draining() => (
                StatusCode::SERVICE_UNAVAILABLE,
                TEXT,
                b"draining\n".to_vec(),
            ),
            "/readyz" => (
                StatusCode::SERVICE_UNAVAILABLE,
                TEXT,
                b"starting\n".to_vec(),
            ),
            "/topics" => {
                let topics = self.state.hub().map(|hub| hub.topics()).unwrap_or_default();
                (
                    StatusCode::OK,
                    "application/json",
                    topics_json(&topics).into_bytes(),
                )
            }
            _ => (StatusCode::NOT_FOUND, TEXT, b"not found\n".to_vec()),
        }
    }
}

#[async_trait]
impl ServeHttp for Admin {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let (status, content_type, body) = self.answer(session.req_header().uri.path());
        let len = body.len();
        let mut response = Response::new(body);
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static(content_type),
        );
        headers.insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(len));
        headers.insert(
            http::header::CACHE_CONTROL,
            http::HeaderValue::from_static("no-store"),
        );
        response
    }
}

/// `/topics`: a JSON array, one object per open topic.
fn topics_json(topics: &[TopicInfo]) -> String {
    let items: Vec<serde_json::Value> = topics
        .iter()
        .map(|t| {
            serde_json::json!({
                "route": t.route,
                "topic": t.topic,
                "subscribers": t.subscribers,
                "upstream": t.upstream.as_str(),
                "last_event_id": t.last_event_id,
                "events_received": t.events_received,
                "replay_len": t.replay_len,
                "replay_capacity": t.replay_capacity,
            })
        })
        .collect();
    serde_json::Value::Array(items).to_string()
}

#[cfg(test)]
mod tests {
    use sse_gateway_config::ProcessEnv;

    use super::*;

    fn admin() -> Admin {
        let yaml = "routes:\n  - name: p\n    path: /p/{s}\n    upstream: { url: \"http://127.0.0.1:1/{s}\" }\n";
        let config = sse_gateway_config::from_str("t.yaml", yaml, &ProcessEnv).unwrap();
        Admin::new(Arc::new(AppState::new(&config, None).unwrap()))
    }

    #[test]
    fn endpoints_answer() {
        let admin = admin();
        assert_eq!(admin.answer("/healthz").0, StatusCode::OK);
        let (status, content_type, body) = admin.answer("/metrics");
        assert_eq!(status, StatusCode::OK);
        assert_eq!(content_type, sse_gateway_metrics::TEXT_CONTENT_TYPE);
        assert!(String::from_utf8(body).unwrap().contains("sse_gateway_"));
        assert_eq!(
            admin.answer("/topics"),
            (StatusCode::OK, "application/json", b"[]".to_vec())
        );
        assert_eq!(admin.answer("/nope").0, StatusCode::NOT_FOUND);
    }

    #[test]
    fn readiness_follows_the_hub_and_the_drain() {
        let admin = admin();
        assert_eq!(
            admin.answer("/readyz").0,
            StatusCode::SERVICE_UNAVAILABLE,
            "no hub yet"
        );
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let hub = sse_gateway_hub::TopicHub::new(
            admin.state.limits,
            admin.state.metrics.clone(),
            runtime.handle().clone(),
        );
        admin.state.set_hub(hub);
        assert_eq!(admin.answer("/readyz").0, StatusCode::OK);
        admin.state.begin_drain();
        let (status, _, body) = admin.answer("/readyz");
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body, b"draining\n");
    }
}
