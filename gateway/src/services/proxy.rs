//! The one pingora proxy service on the public listeners.
//!
//! `request_filter` routes every request:
//!
//! * the demo page at `/` (the `demo` command only);
//! * no route → 404, counted as `not_found` under the unmatched route label;
//! * a fan-out route with another method → 405 with `Allow`, counted as `method`;
//! * a fan-out route → [`fanout::handle`] writes the whole answer (`Ok(true)`);
//! * a proxy route → [`access::admit`] first (CORS preflights are answered
//!   here and never forwarded; refusals never reach the upstream), then
//!   `Ok(false)`: pingora proxies it to the route's base URL
//!   ([`ProxyHttp::upstream_peer`]), streaming, with the path and query
//!   passed through (after the base URL's own path, if it has one); the
//!   route's CORS headers replace the upstream's ([`ProxyHttp::response_filter`]).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::proxy::{ProxyHttp, Session};
use pingora::upstreams::peer::HttpPeer;
use pingora::{Error, ErrorType, OrErr, Result};
use sse_gateway_metrics::RejectReason;
use sse_gateway_routes::{RouteMatch, Target};

use crate::services::access::{self, Admission};
use crate::services::{fanout, multi, responses};
use crate::state::AppState;

/// The proxy service's logic.
pub(crate) struct GatewayProxy {
    state: Arc<AppState>,
}

/// Where a proxy-route request goes (set by `request_filter`).
#[derive(Debug, Clone)]
pub(crate) struct ProxyTarget {
    host: String,
    port: u16,
    tls: bool,
    /// The base URL's path without its trailing `/` (empty for `/`).
    path_prefix: String,
    connect_timeout: Duration,
    /// CORS headers for the response (from the route's policy).
    cors: sse_gateway_access::CorsHeaders,
}

// === impl GatewayProxy ===

impl GatewayProxy {
    /// The proxy over the shared state.
    pub(crate) fn new(state: Arc<AppState>) -> Self {
        Self { state }
    }
}

#[async_trait]
impl ProxyHttp for GatewayProxy {
    type CTX = Option<ProxyTarget>;

    fn new_ctx(&self) -> Self::CTX {
        None
    }

    async fn early_request_filter(
        &self,
        session: &mut Session,
        _ctx: &mut Self::CTX,
    ) -> Result<()> {
        // The header is in: no header deadline while the request is served.
        self.state.connections.request_started(connection(session));
        Ok(())
    }

    async fn logging(&self, session: &mut Session, _e: Option<&Error>, _ctx: &mut Self::CTX) {
        // Answered: the connection's next header (if any) is due again.
        self.state.connections.request_ended(connection(session));
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut Self::CTX) -> Result<bool> {
        let method = session.req_header().method.clone();
        let path = session.req_header().uri.path().to_owned();
        let state = &*self.state;
        if state.demo_page.is_some() && path == crate::demo::STATS_PATH {
            let headers = [
                ("content-type", "application/json"),
                ("cache-control", "no-store"),
            ];
            let body = Bytes::from(crate::demo::stats_json(state));
            responses::send(session, 200, &headers, body).await;
            return Ok(true);
        }
        if let Some(page) = state.demo_page.as_ref().filter(|_| path == "/") {
            if matches!(method, http::Method::GET | http::Method::HEAD) {
                let headers = [
                    ("content-type", "text/html; charset=utf-8"),
                    ("cache-control", "no-cache"),
                ];
                responses::send(session, 200, &headers, page.clone()).await;
                return Ok(true);
            }
        }
        if let Some(multi) = state.multi.as_ref().filter(|m| m.path == path) {
            multi::handle(state, session, multi).await;
            return Ok(true);
        }
        match state.routes.match_request(&method, &path) {
            RouteMatch::NotFound => {
                state.unmatched.rejected(RejectReason::NotFound);
                responses::text(session, 404, &[], "not found\n").await;
                Ok(true)
            }
            RouteMatch::MethodNotAllowed { plan, allow, .. } => {
                plan.metrics.rejected(RejectReason::Method);
                responses::text(session, 405, &[("allow", allow)], "method not allowed\n").await;
                Ok(true)
            }
            RouteMatch::Matched(matched) => match &matched.target {
                Target::FanOut {
                    route,
                    topic,
                    upstream_url,
                } => {
                    fanout::handle(state, session, &matched, route, topic, upstream_url).await;
                    Ok(true)
                }
                Target::Proxy { route, base_url } => {
                    let plan = matched.plan;
                    let admission =
                        access::admit(session, &plan.access, &plan.metrics, None, None).await;
                    let Admission::Admitted(admitted) = admission else {
                        return Ok(true);
                    };
                    match ProxyTarget::from_url(base_url, route.connect_timeout) {
                        Some(mut target) => {
                            target.cors = admitted.cors;
                            *ctx = Some(target);
                            Ok(false)
                        }
                        None => {
                            responses::text(session, 502, &[], "bad proxy URL\n").await;
                            Ok(true)
                        }
                    }
                }
            },
        }
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut Self::CTX,
    ) -> Result<Box<HttpPeer>> {
        let Some(target) = ctx.as_ref() else {
            return Error::e_explain(ErrorType::InternalError, "no proxy target for this request");
        };
        // Resolve here, without blocking: HttpPeer::new would resolve with
        // blocking std DNS and panic on failure.
        let Some(addr) = tokio::net::lookup_host((target.host.as_str(), target.port))
            .await
            .or_err(ErrorType::ConnectNoRoute, "resolving the proxy target")?
            .next()
        else {
            return Error::e_explain(ErrorType::ConnectNoRoute, "the proxy target has no address");
        };
        let mut peer = HttpPeer::new(addr, target.tls, target.host.clone());
        peer.options.connection_timeout = Some(target.connect_timeout);
        peer.options.total_connection_timeout = Some(target.connect_timeout * 2);
        Ok(Box::new(peer))
    }

    async fn response_filter(
        &self,
        _session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut Self::CTX,
    ) -> Result<()> {
        if let Some(target) = ctx.as_ref() {
            access::apply(upstream_response, &target.cors);
        }
        Ok(())
    }

    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut Self::CTX,
    ) -> Result<()> {
        let Some(target) = ctx.as_ref() else {
            return Ok(());
        };
        upstream_request.insert_header("host", target.host_header())?;
        if !target.path_prefix.is_empty() {
            let rest = upstream_request
                .uri
                .path_and_query()
                .map_or("/", |pq| pq.as_str());
            let uri = format!("{}{rest}", target.path_prefix)
                .parse::<http::Uri>()
                .or_err(ErrorType::InternalError, "building the upstream URI")?;
            upstream_request.set_uri(uri);
        }
        Ok(())
    }
}

/// The connection of a request, as the connection gate knows it.
pub(crate) fn connection(
    session: &Session,
) -> Option<(std::net::SocketAddr, std::net::SocketAddr)> {
    crate::services::connections::conn_key(session.client_addr(), session.server_addr())
}

// === impl ProxyTarget ===

impl ProxyTarget {
    /// The target of a route's `proxy` base URL; `None` for a URL without a
    /// host or with a scheme other than http(s).
    pub(crate) fn from_url(url: &url::Url, connect_timeout: Duration) -> Option<Self> {
        let tls = match url.scheme() {
            "http" => false,
            "https" => true,
            _ => return None,
        };
        let host = match url.host()? {
            url::Host::Ipv6(ip) => ip.to_string(),
            other => other.to_string(),
        };
        Some(Self {
            host,
            port: url.port_or_known_default()?,
            tls,
            path_prefix: url.path().trim_end_matches('/').to_owned(),
            connect_timeout,
            cors: Default::default(),
        })
    }

    fn host_header(&self) -> String {
        let default_port = if self.tls { 443 } else { 80 };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == default_port {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(url: &str) -> Option<ProxyTarget> {
        ProxyTarget::from_url(&url::Url::parse(url).unwrap(), Duration::from_secs(5))
    }

    #[test]
    fn targets_from_base_urls() {
        let t = target("http://127.0.0.1:9000").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.tls, t.path_prefix.as_str()),
            ("127.0.0.1", 9000, false, "")
        );
        assert_eq!(t.host_header(), "127.0.0.1:9000");
        let t = target("https://api.example.com/v1/").unwrap();
        assert_eq!((t.port, t.tls, t.path_prefix.as_str()), (443, true, "/v1"));
        assert_eq!(t.host_header(), "api.example.com");
        let t = target("http://[::1]:8000/").unwrap();
        assert_eq!(t.host, "::1");
        assert_eq!(t.host_header(), "[::1]:8000");
        assert!(target("ftp://example.com/").is_none());
    }
}
