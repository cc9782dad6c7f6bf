//! [`CorsPolicy`]: one route's `cors:` as decisions over request headers.
//!
//! * **Actual requests** ([`CorsPolicy::check`]): no `Origin` (same-origin
//!   or a non-browser client) passes without CORS headers; an allowed
//!   origin passes with `Access-Control-Allow-Origin` (`*` for a `*` policy
//!   without credentials, otherwise the request's origin echoed, with
//!   `Vary: Origin`) and, with `credentials: true`,
//!   `Access-Control-Allow-Credentials: true`; any other origin is refused.
//! * **Preflights** ([`CorsPolicy::preflight`], `OPTIONS` with `Origin` and
//!   `Access-Control-Request-Method`): the same origin rule, then the
//!   requested method must be one the route answers and every requested
//!   header must be in [`ALLOWED_REQUEST_HEADERS`] (or CORS-safelisted). The
//!   answer lists the methods, the allowed headers and, when configured,
//!   `Access-Control-Max-Age`. The gateway answers preflights itself; they
//!   are never forwarded.
//!
//! Origins compare by scheme, host and port, the host case-insensitively,
//! the default port dropped (see [`OriginPattern`]). A wildcard
//! `https://*.example.com` matches strict subdomains only, so neither
//! `https://evil-example.com` nor `https://example.com.evil.net` matches.
//! `Origin: null` is refused unless [`CorsPolicy::allow_null_origin`] was
//! set (the configuration has no key for it yet: `null` is sent by
//! sandboxed frames and `file:` pages, which any site can create, so
//! allowing it is close to allowing every origin).

use std::time::Duration;

use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_HEADERS,
    ACCESS_CONTROL_REQUEST_METHOD, ORIGIN, VARY,
};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use sse_gateway_config::{CorsConfig, OriginPattern};

use crate::decision::{Denied, DenyReason};

/// Request headers a cross-origin client may send (answered in
/// `Access-Control-Allow-Headers`): what `fetch`-based SSE clients set.
pub const ALLOWED_REQUEST_HEADERS: &[&str] = &[
    "last-event-id",
    "authorization",
    "cache-control",
    "content-type",
    "accept",
];

/// `Access-Control-Allow-Headers` as sent.
const ALLOW_HEADERS_VALUE: &str =
    "Last-Event-ID, Authorization, Cache-Control, Content-Type, Accept";

/// Headers a browser may list in a preflight without the server naming them.
const SAFELISTED_REQUEST_HEADERS: &[&str] = &["accept-language", "content-language"];

/// An `Origin` longer than this is refused without parsing (real origins
/// are short: scheme, host of at most 253 bytes, port).
pub const MAX_ORIGIN_LEN: usize = 512;

/// A preflight naming more headers than this is refused.
pub const MAX_REQUESTED_HEADERS: usize = 32;

/// One route's CORS policy.
#[derive(Debug, Clone)]
pub struct CorsPolicy {
    origins: Vec<OriginPattern>,
    any: bool,
    credentials: bool,
    allow_null: bool,
    methods: Vec<Method>,
    allow_methods: HeaderValue,
    max_age: Option<HeaderValue>,
}

/// Headers to add to a response (empty when none are needed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CorsHeaders {
    headers: Vec<(HeaderName, HeaderValue)>,
}

// === impl CorsPolicy ===

impl CorsPolicy {
    /// The policy of `config` for a route answering `methods` (listed in
    /// preflight answers; fan-out routes: GET and HEAD).
    pub fn new(config: &CorsConfig, methods: &[Method]) -> Self {
        let any = config.origins.contains(&OriginPattern::Any);
        let names: Vec<&str> = methods.iter().map(Method::as_str).collect();
        let allow_methods = HeaderValue::from_str(&names.join(", "))
            .unwrap_or_else(|_| HeaderValue::from_static("GET, HEAD"));
        Self {
            origins: config.origins.clone(),
            // `*` with credentials is a configuration error; should one get
            // here anyway, the origin is echoed, never `*`.
            any: any && !config.credentials,
            credentials: config.credentials,
            allow_null: false,
            methods: methods.to_vec(),
            allow_methods,
            max_age: config.max_age.map(max_age_value),
        }
    }

    /// Whether `Origin: null` is allowed (default: refused).
    pub fn allow_null_origin(mut self, allow: bool) -> Self {
        self.allow_null = allow;
        self
    }

    /// True when `method` and `headers` make a CORS preflight: `OPTIONS`
    /// with `Origin` and `Access-Control-Request-Method`.
    pub fn is_preflight(method: &Method, headers: &HeaderMap) -> bool {
        method == Method::OPTIONS
            && headers.contains_key(ORIGIN)
            && headers.contains_key(ACCESS_CONTROL_REQUEST_METHOD)
    }

    /// Decides an actual (non-preflight) request.
    pub fn check(&self, headers: &HeaderMap) -> Result<CorsHeaders, Denied> {
        let mut out = CorsHeaders::default();
        let Some(origin) = self.origin(headers)? else {
            if !self.any {
                out.push(VARY, HeaderValue::from_static("Origin"));
            }
            return Ok(out);
        };
        self.allow_origin(&mut out, origin);
        Ok(out)
    }

    /// Decides a preflight and builds its answer's headers.
    pub fn preflight(&self, headers: &HeaderMap) -> Result<CorsHeaders, Denied> {
        let Some(origin) = self.origin(headers)? else {
            return Err(DenyReason::OriginNotAllowed.into());
        };
        let method_ok = single(headers, &ACCESS_CONTROL_REQUEST_METHOD)
            .and_then(|v| Method::from_bytes(v.as_bytes()).ok())
            .is_some_and(|m| self.methods.contains(&m));
        if !method_ok {
            return Err(DenyReason::PreflightMethod.into());
        }
        check_requested_headers(headers)?;
        let mut out = CorsHeaders::default();
        self.allow_origin(&mut out, origin);
        out.push(ACCESS_CONTROL_ALLOW_METHODS, self.allow_methods.clone());
        out.push(
            ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(ALLOW_HEADERS_VALUE),
        );
        if let Some(max_age) = &self.max_age {
            out.push(ACCESS_CONTROL_MAX_AGE, max_age.clone());
        }
        Ok(out)
    }

    /// The request's one allowed `Origin`, `None` without one.
    fn origin<'h>(&self, headers: &'h HeaderMap) -> Result<Option<&'h HeaderValue>, Denied> {
        let mut all = headers.get_all(ORIGIN).iter();
        let Some(origin) = all.next() else {
            return Ok(None);
        };
        if all.next().is_some() || origin.len() > MAX_ORIGIN_LEN {
            return Err(DenyReason::MalformedOrigin.into());
        }
        let text = origin.to_str().map_err(|_| DenyReason::MalformedOrigin)?;
        if text == "null" {
            return if self.allow_null {
                Ok(Some(origin))
            } else {
                Err(DenyReason::NullOrigin.into())
            };
        }
        if self.origins.iter().any(|p| p.matches(text)) {
            Ok(Some(origin))
        } else {
            Err(DenyReason::OriginNotAllowed.into())
        }
    }

    fn allow_origin(&self, out: &mut CorsHeaders, origin: &HeaderValue) {
        if self.any {
            out.push(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
            return;
        }
        out.push(ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        if self.credentials {
            out.push(
                ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        out.push(VARY, HeaderValue::from_static("Origin"));
    }
}

/// Every header named in `Access-Control-Request-Headers` (there may be
/// several such headers) is allowed or safelisted.
fn check_requested_headers(headers: &HeaderMap) -> Result<(), Denied> {
    let mut count = 0usize;
    for value in headers.get_all(ACCESS_CONTROL_REQUEST_HEADERS) {
        let text = value.to_str().map_err(|_| DenyReason::PreflightHeaders)?;
        for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            count += 1;
            let allowed = ALLOWED_REQUEST_HEADERS
                .iter()
                .chain(SAFELISTED_REQUEST_HEADERS)
                .any(|a| a.eq_ignore_ascii_case(name));
            if !allowed || count > MAX_REQUESTED_HEADERS {
                return Err(DenyReason::PreflightHeaders.into());
            }
        }
    }
    Ok(())
}

/// The header's value when it appears exactly once.
fn single<'h>(headers: &'h HeaderMap, name: &HeaderName) -> Option<&'h HeaderValue> {
    let mut all = headers.get_all(name).iter();
    let first = all.next()?;
    all.next().is_none().then_some(first)
}

fn max_age_value(max_age: Duration) -> HeaderValue {
    HeaderValue::from(max_age.as_secs())
}

// === impl CorsHeaders ===

impl CorsHeaders {
    fn push(&mut self, name: HeaderName, value: HeaderValue) {
        self.headers.push((name, value));
    }

    /// The headers, in the order they should be written.
    pub fn iter(&self) -> impl Iterator<Item = (&HeaderName, &HeaderValue)> {
        self.headers.iter().map(|(n, v)| (n, v))
    }

    /// The value of `name`, if added.
    pub fn get(&self, name: &str) -> Option<&HeaderValue> {
        self.headers
            .iter()
            .find(|(n, _)| n.as_str().eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// True when there is nothing to add.
    pub fn is_empty(&self) -> bool {
        self.headers.is_empty()
    }
}

#[cfg(test)]
mod tests;
