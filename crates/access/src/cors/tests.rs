use std::time::Duration;

use http::{HeaderMap, HeaderValue, Method};
use sse_gateway_config::{CorsConfig, OriginPattern};

use super::*;

fn policy(origins: &[&str], credentials: bool) -> CorsPolicy {
    let config = CorsConfig {
        origins: origins
            .iter()
            .map(|o| OriginPattern::parse(o).unwrap())
            .collect(),
        credentials,
        allow_null: false,
        max_age: Some(Duration::from_secs(600)),
    };
    CorsPolicy::new(&config, &[Method::GET, Method::HEAD])
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}

fn origin(o: &str) -> HeaderMap {
    headers(&[("origin", o)])
}

fn reason<T: std::fmt::Debug>(r: Result<T, Denied>) -> DenyReason {
    r.unwrap_err().reason
}

#[test]
fn origin_matching_table() {
    let p = policy(
        &[
            "https://app.example.com",
            "https://*.example.com",
            "http://localhost:3000",
        ],
        false,
    );
    let cases = [
        ("https://app.example.com", true),
        ("https://APP.Example.COM", true),
        ("https://app.example.com:443", true),
        ("https://a.b.example.com", true),
        ("http://localhost:3000", true),
        ("http://LOCALHOST:3000", true),
        // Wildcards match strict subdomains only, with the same scheme and port.
        ("https://example.com", false),
        ("https://evil-example.com", false),
        ("https://evilexample.com", false),
        ("https://example.com.evil.net", false),
        ("https://app.example.com.evil.net", false),
        ("http://app.example.com", false),
        ("https://app.example.com:8443", false),
        ("http://localhost:3001", false),
        ("http://localhost", false),
        // Not origins at all.
        ("https://app.example.com/", false),
        ("https://app.example.com/path", false),
        ("https://user@app.example.com", false),
        ("app.example.com", false),
        ("", false),
    ];
    for (o, allowed) in cases {
        let got = p.check(&origin(o));
        assert_eq!(got.is_ok(), allowed, "{o:?}: {got:?}");
        if !allowed {
            assert_eq!(reason(got), DenyReason::OriginNotAllowed, "{o:?}");
        }
    }
}

#[test]
fn no_origin_passes_without_cors_headers_but_with_vary() {
    let p = policy(&["https://app.example.com"], true);
    let out = p.check(&HeaderMap::new()).unwrap();
    assert!(out.get("access-control-allow-origin").is_none());
    assert_eq!(out.get("vary").unwrap(), "Origin");
}

#[test]
fn credentials_echo_the_origin_with_vary() {
    let p = policy(&["https://*.example.com"], true);
    let out = p.check(&origin("https://App.example.com")).unwrap();
    assert_eq!(
        out.get("access-control-allow-origin").unwrap(),
        "https://App.example.com"
    );
    assert_eq!(out.get("access-control-allow-credentials").unwrap(), "true");
    assert_eq!(out.get("vary").unwrap(), "Origin");
}

#[test]
fn star_without_credentials_answers_star() {
    let p = policy(&["*"], false);
    let out = p.check(&origin("https://anyone.test")).unwrap();
    assert_eq!(out.get("access-control-allow-origin").unwrap(), "*");
    assert!(out.get("access-control-allow-credentials").is_none());
    assert!(out.get("vary").is_none());
}

#[test]
fn star_with_credentials_never_answers_star() {
    // The config refuses this combination; the policy still never sends `*`.
    let config = CorsConfig {
        origins: vec![OriginPattern::Any],
        credentials: true,
        allow_null: false,
        max_age: None,
    };
    let p = CorsPolicy::new(&config, &[Method::GET]);
    let got = p.check(&origin("https://anyone.test"));
    if let Ok(out) = got {
        assert_ne!(out.get("access-control-allow-origin").unwrap(), "*");
    }
}

#[test]
fn null_origin_is_refused_unless_allowed() {
    let p = policy(&["*"], false);
    assert_eq!(reason(p.check(&origin("null"))), DenyReason::NullOrigin);
    let p = policy(&["https://app.example.com"], true).allow_null_origin(true);
    let out = p.check(&origin("null")).unwrap();
    assert_eq!(out.get("access-control-allow-origin").unwrap(), "null");
}

#[test]
fn several_or_oversized_or_binary_origins_are_malformed() {
    let p = policy(&["https://app.example.com"], false);
    let two = headers(&[
        ("origin", "https://app.example.com"),
        ("origin", "https://app.example.com"),
    ]);
    assert_eq!(reason(p.check(&two)), DenyReason::MalformedOrigin);
    let long = format!("https://{}.example.com", "a".repeat(100_000));
    assert_eq!(reason(p.check(&origin(&long))), DenyReason::MalformedOrigin);
    let mut binary = HeaderMap::new();
    binary.insert(
        "origin",
        HeaderValue::from_bytes(b"https://\xffapp.example.com").unwrap(),
    );
    assert_eq!(reason(p.check(&binary)), DenyReason::MalformedOrigin);
}

#[test]
fn preflight_lists_methods_headers_and_max_age() {
    let p = policy(&["http://localhost:3000"], true);
    let req = headers(&[
        ("origin", "http://localhost:3000"),
        ("access-control-request-method", "GET"),
        (
            "access-control-request-headers",
            "authorization,last-event-id",
        ),
    ]);
    assert!(CorsPolicy::is_preflight(&Method::OPTIONS, &req));
    assert!(!CorsPolicy::is_preflight(&Method::GET, &req));
    let out = p.preflight(&req).unwrap();
    assert_eq!(
        out.get("access-control-allow-origin").unwrap(),
        "http://localhost:3000"
    );
    assert_eq!(out.get("access-control-allow-credentials").unwrap(), "true");
    assert_eq!(
        out.get("access-control-allow-methods").unwrap(),
        "GET, HEAD"
    );
    let allow = out
        .get("access-control-allow-headers")
        .unwrap()
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    for h in [
        "last-event-id",
        "authorization",
        "cache-control",
        "content-type",
    ] {
        assert!(allow.contains(h), "{h} in {allow}");
    }
    assert_eq!(out.get("access-control-max-age").unwrap(), "600");
}

#[test]
fn preflight_refusals() {
    let p = policy(&["http://localhost:3000"], false);
    let base = |extra: &[(&str, &str)]| {
        let mut pairs = vec![("access-control-request-method", "GET")];
        pairs.extend_from_slice(extra);
        headers(&pairs)
    };
    assert_eq!(
        reason(p.preflight(&base(&[]))),
        DenyReason::OriginNotAllowed,
        "no origin"
    );
    assert_eq!(
        reason(p.preflight(&base(&[("origin", "http://localhost:3001")]))),
        DenyReason::OriginNotAllowed
    );
    let post = headers(&[
        ("origin", "http://localhost:3000"),
        ("access-control-request-method", "POST"),
    ]);
    assert_eq!(reason(p.preflight(&post)), DenyReason::PreflightMethod);
    let custom = base(&[
        ("origin", "http://localhost:3000"),
        ("access-control-request-headers", "last-event-id, x-evil"),
    ]);
    assert_eq!(reason(p.preflight(&custom)), DenyReason::PreflightHeaders);
    let many = vec!["accept"; 100].join(",");
    let many = base(&[
        ("origin", "http://localhost:3000"),
        ("access-control-request-headers", &many),
    ]);
    assert_eq!(reason(p.preflight(&many)), DenyReason::PreflightHeaders);
}

#[test]
fn preflight_without_max_age_has_no_max_age_header() {
    let config = CorsConfig {
        origins: vec![OriginPattern::parse("https://a.test").unwrap()],
        credentials: false,
        allow_null: false,
        max_age: None,
    };
    let p = CorsPolicy::new(&config, &[Method::GET, Method::POST]);
    let out = p
        .preflight(&headers(&[
            ("origin", "https://a.test"),
            ("access-control-request-method", "POST"),
            ("access-control-request-headers", "Content-Type"),
        ]))
        .unwrap();
    assert!(out.get("access-control-max-age").is_none());
    assert_eq!(
        out.get("access-control-allow-methods").unwrap(),
        "GET, POST"
    );
    assert!(out.get("access-control-allow-credentials").is_none());
}
