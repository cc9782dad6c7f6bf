//! Access control on the public listener: a route's CORS policy and
//! credential check ([`sse_gateway_access`]) applied to a pingora session.
//!
//! [`admit`] runs for every matched request, before anything else happens
//! for it (no topic is subscribed, no upstream opened, no proxying):
//!
//! | request | answer |
//! | --- | --- |
//! | `Origin` not allowed by `cors` (also on a preflight) | 403, counted `reason="cors"` |
//! | CORS preflight (`OPTIONS` + `Origin` + `Access-Control-Request-Method`), route with `cors` | 204 with the CORS preflight headers; never forwarded, never authenticated (browsers send no credentials on preflights) |
//! | other `OPTIONS` on a fan-out route | 204 with `Allow` (and CORS headers) |
//! | no or bad credentials (`auth`) | 401 + `WWW-Authenticate: Bearer`, counted `reason="auth"` |
//! | valid credentials, topic not granted | 403, counted `reason="auth"` |
//! | admitted | the caller goes on, with the CORS headers to add and the token's expiry (a stream ends then, with the `auth.jwt.expired_event` notice) |
//!
//! Refusals carry the CORS headers when the origin itself was allowed (so a
//! `fetch` client can read the status) and a fixed body: nothing of the
//! topic, the origin or the token is echoed.

use std::time::{Instant, SystemTime};

use bytes::Bytes;
use http::header::HeaderName;
use http::Method;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use sse_gateway_access::{AuthPolicy, CorsHeaders, CorsPolicy, DenialKind, Denied};
use sse_gateway_config::{RouteConfig, RouteKind, DEFAULT_EXPIRED_EVENT};
use sse_gateway_metrics::{RejectReason, RouteMetrics};
use sse_gateway_sinks::Expiry;

use crate::services::responses;

/// The methods a preflight may ask for on a fan-out route.
const FAN_OUT_METHODS: &[Method] = &[Method::GET, Method::HEAD];

/// The methods a preflight may ask for on a proxy route.
const PROXY_METHODS: &[Method] = &[
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
];

/// One route's access policies, built once at start-up.
#[derive(Debug, Clone, Default)]
pub(crate) struct RouteAccess {
    cors: Option<CorsPolicy>,
    auth: Option<AuthPolicy>,
    /// The frame a stream gets when its token expires
    /// (`auth.jwt.expired_event`).
    expired_notice: Bytes,
}

/// What an admitted request carries on.
#[derive(Debug, Clone, Default)]
pub(crate) struct Admitted {
    /// CORS headers to add to the response.
    pub(crate) cors: CorsHeaders,
    /// When the credential expires, and the notice a stream ends with then.
    pub(crate) expiry: Option<Expiry>,
}

/// The outcome of [`admit`].
pub(crate) enum Admission {
    /// Go on with the request.
    Admitted(Admitted),
    /// A response was written (preflight or refusal); the request is done.
    Answered,
}

// === impl RouteAccess ===

impl RouteAccess {
    /// The policies of `route`, reading its JWT key file if it has one.
    pub(crate) fn new(route: &RouteConfig) -> anyhow::Result<Self> {
        let methods = match route.kind {
            RouteKind::FanOut(_) => FAN_OUT_METHODS,
            RouteKind::Proxy(_) => PROXY_METHODS,
        };
        let cors = route
            .cors
            .as_ref()
            .map(|c| CorsPolicy::new(c, methods).allow_null_origin(c.allow_null));
        let auth = match &route.auth {
            Some(config) => {
                let pem = match AuthPolicy::key_file(config) {
                    Some(path) => Some(std::fs::read(path).map_err(|e| {
                        anyhow::anyhow!(
                            "route `{}`: cannot read auth.jwt.key_file {}: {e}",
                            route.name,
                            path.display()
                        )
                    })?),
                    None => None,
                };
                let policy = AuthPolicy::new(config, pem.as_deref())
                    .map_err(|e| anyhow::anyhow!("route `{}`: auth.jwt: {e}", route.name))?;
                Some(policy)
            }
            None => None,
        };
        let expired_event = route
            .auth
            .as_ref()
            .and_then(|a| a.jwt.as_ref())
            .map_or(DEFAULT_EXPIRED_EVENT, |jwt| jwt.expired_event.as_str());
        let expired_notice = Expiry::notice_frame(expired_event)
            .map_err(|e| anyhow::anyhow!("route `{}`: auth.jwt.expired_event: {e}", route.name))?;
        Ok(Self {
            cors,
            auth,
            expired_notice,
        })
    }
}

/// Applies `access` to the request in `session`. `topic` is the fan-out
/// topic (`None` on proxy routes); `allow` is the `Allow` value for a
/// plain `OPTIONS` on a fan-out route (`None`: proxy routes forward it).
pub(crate) async fn admit(
    session: &mut Session,
    access: &RouteAccess,
    metrics: &RouteMetrics,
    topic: Option<&str>,
    allow: Option<&'static str>,
) -> Admission {
    let method = session.req_header().method.clone();
    let mut admitted = Admitted::default();
    if let Some(cors) = &access.cors {
        let headers = &session.req_header().headers;
        let decided = if CorsPolicy::is_preflight(&method, headers) {
            match cors.preflight(headers) {
                Ok(out) => {
                    send(session, 204, &out, &[], "").await;
                    return Admission::Answered;
                }
                Err(denied) => Err(denied),
            }
        } else {
            cors.check(headers)
        };
        match decided {
            Ok(out) => admitted.cors = out,
            Err(denied) => {
                refuse(session, metrics, denied, &CorsHeaders::default()).await;
                return Admission::Answered;
            }
        }
    }
    if method == Method::OPTIONS {
        if let Some(allow) = allow {
            send(session, 204, &admitted.cors, &[("allow", allow)], "").await;
            return Admission::Answered;
        }
    }
    if let Some(auth) = &access.auth {
        match auth.check(&session.req_header().headers, topic, SystemTime::now()) {
            Ok(grant) => {
                admitted.expiry = grant
                    .expires_at
                    .map(|at| Expiry::new(instant_of(at), access.expired_notice.clone()));
            }
            Err(denied) => {
                refuse(session, metrics, denied, &admitted.cors).await;
                return Admission::Answered;
            }
        }
    }
    Admission::Admitted(admitted)
}

/// The checks of [`admit`] for one member of a multi-topic stream, without
/// answering: the member's route's CORS policy (no preflight: an
/// `EventSource` sends none) and its credential check for `topic`.
pub(crate) fn check_member(
    headers: &http::HeaderMap,
    access: &RouteAccess,
    topic: &str,
) -> Result<Admitted, Denied> {
    let mut admitted = Admitted::default();
    if let Some(cors) = &access.cors {
        admitted.cors = cors.check(headers)?;
    }
    if let Some(auth) = &access.auth {
        let grant = auth.check(headers, Some(topic), SystemTime::now())?;
        admitted.expiry = grant
            .expires_at
            .map(|at| Expiry::new(instant_of(at), access.expired_notice.clone()));
    }
    Ok(admitted)
}

/// Adds `cors` to a response header: CORS headers replace any the upstream
/// sent (the gateway owns CORS on routes that configure it), `Vary` is
/// appended to.
pub(crate) fn apply(header: &mut ResponseHeader, cors: &CorsHeaders) {
    if cors.is_empty() {
        return;
    }
    let upstream_cors: Vec<HeaderName> = header
        .headers
        .keys()
        .filter(|name| name.as_str().starts_with("access-control-"))
        .cloned()
        .collect();
    for name in upstream_cors {
        header.remove_header(&name);
    }
    for (name, value) in cors.iter() {
        let result = if name == http::header::VARY {
            header
                .append_header(name.clone(), value.clone())
                .map(|_| ())
        } else {
            header.insert_header(name.clone(), value.clone())
        };
        if let Err(e) = result {
            tracing::debug!("cannot add {name}: {e}");
        }
    }
}

/// Sleeps until `expiry` (forever without one): a `select!` branch that
/// ends a stream when its credential expires.
pub(crate) async fn expiry(expiry: Option<&Expiry>) {
    match expiry {
        Some(expiry) => tokio::time::sleep_until(expiry.at().into()).await,
        None => std::future::pending().await,
    }
}

/// The `Instant` of a wall-clock time (now, if it has passed).
fn instant_of(at: SystemTime) -> Instant {
    let now = Instant::now();
    match at.duration_since(SystemTime::now()) {
        Ok(left) => now.checked_add(left).unwrap_or(now),
        Err(_) => now,
    }
}

async fn refuse(session: &mut Session, metrics: &RouteMetrics, denied: Denied, cors: &CorsHeaders) {
    metrics.rejected(match denied.kind() {
        DenialKind::Cors => RejectReason::Cors,
        DenialKind::Auth => RejectReason::Auth,
    });
    tracing::debug!(
        path = session.req_header().uri.path(),
        "refused: {}",
        denied.reason
    );
    let challenge: &[(&'static str, &str)] = if denied.status() == 401 {
        &[("www-authenticate", "Bearer")]
    } else {
        &[]
    };
    send(session, denied.status(), cors, challenge, denied.body()).await;
}

/// Writes a complete response with `cors` and `extra` headers (a
/// non-empty body is plain text, never cached). Errors mean the client is
/// gone and are ignored.
async fn send(
    session: &mut Session,
    status: u16,
    cors: &CorsHeaders,
    extra: &[(&'static str, &str)],
    body: &'static str,
) {
    let mut headers = extra.to_vec();
    if !body.is_empty() {
        headers.push(("content-type", "text/plain; charset=utf-8"));
        headers.push(("cache-control", "no-store"));
    }
    let body = Bytes::from_static(body.as_bytes());
    responses::send_with_cors(session, status, &headers, cors, body).await;
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use http::HeaderValue;

    use super::*;

    #[test]
    fn wall_clock_expiry_becomes_an_instant() {
        let before = Instant::now();
        let at = instant_of(SystemTime::now() + Duration::from_secs(60));
        assert!(at >= before + Duration::from_secs(59));
        assert!(at <= Instant::now() + Duration::from_secs(61));
        let past = instant_of(SystemTime::now() - Duration::from_secs(60));
        assert!(past <= Instant::now());
    }

    #[test]
    fn apply_replaces_upstream_cors_and_appends_vary() {
        let config = sse_gateway_config::CorsConfig {
            origins: vec![sse_gateway_config::OriginPattern::parse("https://a.test").unwrap()],
            credentials: true,
            allow_null: false,
            max_age: None,
        };
        let policy = CorsPolicy::new(&config, PROXY_METHODS);
        let mut req = http::HeaderMap::new();
        req.insert("origin", HeaderValue::from_static("https://a.test"));
        let cors = policy.check(&req).unwrap();
        let mut header = ResponseHeader::build(200, None).unwrap();
        header
            .insert_header("access-control-allow-origin", "*")
            .unwrap();
        header
            .insert_header("access-control-expose-headers", "X-Secret")
            .unwrap();
        header.insert_header("vary", "Accept-Encoding").unwrap();
        apply(&mut header, &cors);
        let h = &header.headers;
        assert_eq!(
            h.get("access-control-allow-origin").unwrap(),
            "https://a.test"
        );
        assert_eq!(h.get("access-control-allow-credentials").unwrap(), "true");
        assert!(h.get("access-control-expose-headers").is_none());
        let vary: Vec<_> = h.get_all("vary").iter().collect();
        assert_eq!(vary, ["Accept-Encoding", "Origin"]);
    }
}
