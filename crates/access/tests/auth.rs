//! AuthPolicy end to end over real tokens: HS256, RS256 and ES256 signed with
//! the throwaway keys in `tests/keys`, expiry, audience, issuer, topic grants,
//! bearer tokens, and hostile inputs (malformed tokens, algorithm confusion).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderValue};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use sse_gateway_access::{AuthPolicy, AuthSetupError, DenyReason};
use sse_gateway_config::{AuthConfig, JwtAlgorithm, JwtConfig, JwtKey, Secret};

const SECRET: &str = "a-test-secret-of-reasonable-length";
const NOW: u64 = 1_800_000_000;

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW)
}

fn key(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/keys")
        .join(name);
    std::fs::read(path).unwrap()
}

fn jwt_config(algorithm: JwtAlgorithm) -> JwtConfig {
    let key = if algorithm.is_hmac() {
        JwtKey::Secret {
            env_var: "SESSION_SECRET".into(),
            secret: Secret::new(SECRET),
        }
    } else {
        JwtKey::KeyFile("unused.pem".into())
    };
    JwtConfig {
        algorithm,
        key,
        topics_claim: Some("subscribe".into()),
        audience: Vec::new(),
        issuer: None,
        expired_event: "auth_expired".into(),
    }
}

fn policy_with(jwt: JwtConfig, pem: Option<&[u8]>) -> AuthPolicy {
    let config = AuthConfig {
        cookie: "session".into(),
        jwt: Some(jwt),
    };
    AuthPolicy::new(&config, pem).unwrap()
}

fn hs256() -> AuthPolicy {
    policy_with(jwt_config(JwtAlgorithm::HS256), None)
}

fn claims(extra: Value) -> Value {
    let mut base = json!({
        "sub": "user-1",
        "exp": NOW + 3600,
        "subscribe": ["prices/*", "news/today"],
    });
    if let (Some(base), Some(extra)) = (base.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            if v.is_null() {
                base.remove(k);
            } else {
                base.insert(k.clone(), v.clone());
            }
        }
    }
    base
}

fn sign_hs(claims: &Value, secret: &[u8]) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret),
    )
    .unwrap()
}

fn sign_rs(claims: &Value) -> String {
    let key = EncodingKey::from_rsa_pem(&key("rsa_private.pem")).unwrap();
    encode(&Header::new(Algorithm::RS256), claims, &key).unwrap()
}

fn sign_es(claims: &Value) -> String {
    let key = EncodingKey::from_ec_pem(&key("ec_private.pem")).unwrap();
    encode(&Header::new(Algorithm::ES256), claims, &key).unwrap()
}

fn cookie(token: &str) -> HeaderMap {
    let mut map = HeaderMap::new();
    map.insert(
        "cookie",
        HeaderValue::from_str(&format!("theme=dark; session={token}; lang=en")).unwrap(),
    );
    map
}

fn denied(policy: &AuthPolicy, headers: &HeaderMap, topic: &str) -> DenyReason {
    policy
        .check(headers, Some(topic), now())
        .expect_err("should be refused")
        .reason
}

#[test]
fn a_valid_cookie_token_is_granted_with_its_expiry() {
    let policy = hs256();
    let token = sign_hs(&claims(json!({})), SECRET.as_bytes());
    let grant = policy
        .check(&cookie(&token), Some("prices/AAPL"), now())
        .unwrap();
    assert_eq!(
        grant.expires_at,
        Some(UNIX_EPOCH + Duration::from_secs(NOW + 3600))
    );
    assert!(policy
        .check(&cookie(&token), Some("news/today"), now())
        .is_ok());
}

#[test]
fn topics_outside_the_claim_are_forbidden() {
    let policy = hs256();
    let token = sign_hs(&claims(json!({})), SECRET.as_bytes());
    for topic in ["news/tomorrow", "prices", "pricesX/AAPL", "admin"] {
        assert_eq!(
            denied(&policy, &cookie(&token), topic),
            DenyReason::TopicNotAllowed,
            "{topic}"
        );
    }
    let no_claim = sign_hs(&claims(json!({"subscribe": null})), SECRET.as_bytes());
    assert_eq!(
        denied(&policy, &cookie(&no_claim), "prices/AAPL"),
        DenyReason::TopicNotAllowed
    );
    let wrong_type = sign_hs(&claims(json!({"subscribe": 7})), SECRET.as_bytes());
    assert_eq!(
        denied(&policy, &cookie(&wrong_type), "prices/AAPL"),
        DenyReason::TopicNotAllowed
    );
    // Proxy routes have no topic: the claim is not consulted.
    assert!(policy.check(&cookie(&no_claim), None, now()).is_ok());
}

#[test]
fn time_claims() {
    let policy = hs256();
    let cases = [
        (json!({"exp": NOW - 1}), Some(DenyReason::Expired)),
        (json!({"exp": NOW}), Some(DenyReason::Expired)),
        (json!({"exp": null}), Some(DenyReason::MalformedToken)),
        (
            json!({"exp": (NOW + 10).to_string()}),
            Some(DenyReason::MalformedToken),
        ),
        (json!({"exp": -5}), Some(DenyReason::MalformedToken)),
        (json!({"exp": 1e300}), Some(DenyReason::MalformedToken)),
        (json!({"exp": (NOW + 10) as f64 + 0.5}), None),
        (json!({"nbf": NOW + 3000}), Some(DenyReason::NotYetValid)),
        (json!({"nbf": NOW + 10}), None),
        (json!({"nbf": "soon"}), Some(DenyReason::MalformedToken)),
    ];
    for (extra, want) in cases {
        let token = sign_hs(&claims(extra.clone()), SECRET.as_bytes());
        let got = policy.check(&cookie(&token), Some("prices/A"), now());
        assert_eq!(got.err().map(|d| d.reason), want, "{extra}");
    }
}

#[test]
fn signatures_must_verify() {
    let policy = hs256();
    let other = sign_hs(&claims(json!({})), b"another-secret");
    assert_eq!(
        denied(&policy, &cookie(&other), "prices/A"),
        DenyReason::BadSignature
    );
    // A payload swapped under a valid signature.
    let good = sign_hs(&claims(json!({})), SECRET.as_bytes());
    let forged = sign_hs(&claims(json!({"subscribe": ["*"]})), b"x");
    let parts: Vec<&str> = good.split('.').collect();
    let forged_payload = forged.split('.').nth(1).unwrap();
    let tampered = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
    assert_eq!(
        denied(&policy, &cookie(&tampered), "admin"),
        DenyReason::BadSignature
    );
}

#[test]
fn malformed_tokens_are_401() {
    let policy = hs256();
    let b64 = |s: &str| {
        // base64url without padding, written out for the few inputs used here.
        use std::fmt::Write;
        const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let bytes = s.as_bytes();
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n =
                chunk.iter().fold(0u32, |acc, &b| (acc << 8) | b as u32) << (8 * (3 - chunk.len()));
            for i in 0..=chunk.len() {
                let idx = (n >> (18 - 6 * i)) & 63;
                out.write_char(T[idx as usize] as char).unwrap();
            }
        }
        out
    };
    let huge = format!("{}.{}.{}", "a".repeat(5000), "b".repeat(5000), "c");
    let alg_none = format!(
        "{}.{}.",
        b64(r#"{"alg":"none","typ":"JWT"}"#),
        b64(&claims(json!({})).to_string())
    );
    let alg_none_sig = format!("{alg_none}c2ln");
    let not_json = format!("{}.{}.c2ln", b64("not json"), b64("{}"));
    let array_claims = format!(
        "{}.{}.c2ln",
        b64(r#"{"alg":"HS256","typ":"JWT"}"#),
        b64("[1,2]")
    );
    let mut empty = HeaderMap::new();
    empty.insert("authorization", HeaderValue::from_static("Bearer "));
    assert_eq!(
        denied(&policy, &empty, "prices/A"),
        DenyReason::MissingCredentials
    );
    let inputs = [
        "abc".to_owned(),
        "a.b".to_owned(),
        "a.b.c.d".to_owned(),
        "..".to_owned(),
        "a..c".to_owned(),
        "a.b.c".to_owned(),
        "a+b.c/d.e=".to_owned(),
        "\u{fffd}.\u{fffd}.\u{fffd}".to_owned(),
        huge,
        alg_none,
        alg_none_sig,
        not_json,
        array_claims,
    ];
    for token in inputs {
        let mut headers = HeaderMap::new();
        headers.insert(
            "authorization",
            HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
        );
        let reason = denied(&policy, &headers, "prices/A");
        assert_eq!(reason.status(), 401, "{token:.40}: {reason:?}");
        assert!(
            matches!(
                reason,
                DenyReason::MalformedToken | DenyReason::BadSignature
            ),
            "{token:.40}: {reason:?}"
        );
    }
}

#[test]
fn rs256_and_es256_verify_with_their_public_keys() {
    let rs = policy_with(
        jwt_config(JwtAlgorithm::RS256),
        Some(&key("rsa_public.pem")),
    );
    let token = sign_rs(&claims(json!({})));
    assert!(rs.check(&cookie(&token), Some("prices/A"), now()).is_ok());
    let es = policy_with(jwt_config(JwtAlgorithm::ES256), Some(&key("ec_public.pem")));
    let token = sign_es(&claims(json!({})));
    assert!(es.check(&cookie(&token), Some("prices/A"), now()).is_ok());
    // Cross-family tokens are refused.
    assert_eq!(
        denied(&rs, &cookie(&token), "prices/A"),
        DenyReason::MalformedToken
    );
}

#[test]
fn algorithm_confusion_with_the_public_key_is_refused() {
    // The classic attack: HS256 "signed" with the server's public key bytes.
    for (alg, public) in [
        (JwtAlgorithm::RS256, "rsa_public.pem"),
        (JwtAlgorithm::ES256, "ec_public.pem"),
    ] {
        let pem = key(public);
        let policy = policy_with(jwt_config(alg), Some(&pem));
        let forged = sign_hs(&claims(json!({"subscribe": ["*"]})), &pem);
        let reason = denied(&policy, &cookie(&forged), "anything");
        assert_eq!(reason, DenyReason::MalformedToken, "{alg:?}");
        assert_eq!(reason.status(), 401);
    }
    // And the other way round: an HS256 policy refuses RS256 tokens.
    let token = sign_rs(&claims(json!({})));
    assert_eq!(
        denied(&hs256(), &cookie(&token), "prices/A"),
        DenyReason::MalformedToken
    );
}

#[test]
fn audience_and_issuer() {
    let mut config = jwt_config(JwtAlgorithm::HS256);
    config.audience = vec!["sse".into(), "web".into()];
    config.issuer = Some("https://auth.test".into());
    let policy = policy_with(config, None);
    let ok = claims(json!({"aud": "web", "iss": "https://auth.test"}));
    let token = sign_hs(&ok, SECRET.as_bytes());
    assert!(policy
        .check(&cookie(&token), Some("prices/A"), now())
        .is_ok());
    let cases = [
        (
            json!({"aud": "other", "iss": "https://auth.test"}),
            DenyReason::WrongAudience,
        ),
        (
            json!({"iss": "https://auth.test"}),
            DenyReason::WrongAudience,
        ),
        (
            json!({"aud": ["x", "sse"], "iss": "https://evil.test"}),
            DenyReason::WrongIssuer,
        ),
        (json!({"aud": "sse"}), DenyReason::WrongIssuer),
    ];
    for (extra, want) in cases {
        let token = sign_hs(&claims(extra.clone()), SECRET.as_bytes());
        assert_eq!(
            denied(&policy, &cookie(&token), "prices/A"),
            want,
            "{extra}"
        );
    }
}

#[test]
fn bearer_tokens_and_missing_credentials() {
    let policy = hs256();
    let token = sign_hs(&claims(json!({})), SECRET.as_bytes());
    let mut bearer = HeaderMap::new();
    bearer.insert(
        "authorization",
        HeaderValue::from_str(&format!("bearer  {token}")).unwrap(),
    );
    assert!(policy.check(&bearer, Some("prices/A"), now()).is_ok());
    // An explicit bearer token wins over the cookie.
    let mut both = cookie(&token);
    both.insert("authorization", HeaderValue::from_static("Bearer x.y.z"));
    assert_eq!(
        denied(&policy, &both, "prices/A"),
        DenyReason::MalformedToken
    );
    // Another scheme is ignored; the cookie is used.
    let mut basic = cookie(&token);
    basic.insert("authorization", HeaderValue::from_static("Basic dTpw"));
    assert!(policy.check(&basic, Some("prices/A"), now()).is_ok());
    // Two Authorization headers are refused.
    let mut two = HeaderMap::new();
    let value = HeaderValue::from_str(&format!("Bearer {token}")).unwrap();
    two.append("authorization", value.clone());
    two.append("authorization", value);
    assert_eq!(
        denied(&policy, &two, "prices/A"),
        DenyReason::MalformedToken
    );
    // Nothing at all, or only other cookies.
    assert_eq!(
        denied(&policy, &HeaderMap::new(), "prices/A"),
        DenyReason::MissingCredentials
    );
    let mut other = HeaderMap::new();
    other.insert("cookie", HeaderValue::from_static("sessionx=1; theme=dark"));
    assert_eq!(
        denied(&policy, &other, "prices/A"),
        DenyReason::MissingCredentials
    );
}

#[test]
fn many_cookies_and_long_headers() {
    let policy = hs256();
    let token = sign_hs(&claims(json!({})), SECRET.as_bytes());
    let mut headers = HeaderMap::new();
    for i in 0..500 {
        headers.append(
            "cookie",
            HeaderValue::from_str(&format!("c{i}={}", "v".repeat(100))).unwrap(),
        );
    }
    headers.append(
        "cookie",
        HeaderValue::from_str(&format!("session=\"{token}\"")).unwrap(),
    );
    assert!(policy.check(&headers, Some("prices/A"), now()).is_ok());
    let mut long = HeaderMap::new();
    long.insert(
        "cookie",
        HeaderValue::from_str(&format!("session={}", "A".repeat(1 << 20))).unwrap(),
    );
    assert_eq!(
        denied(&policy, &long, "prices/A"),
        DenyReason::MalformedToken
    );
}

#[test]
fn cookie_presence_policy() {
    let config = AuthConfig {
        cookie: "session".into(),
        jwt: None,
    };
    let policy = AuthPolicy::new(&config, None).unwrap();
    let grant = policy.check(&cookie("anything"), Some("t"), now()).unwrap();
    assert_eq!(grant.expires_at, None);
    let mut bearer_only = HeaderMap::new();
    bearer_only.insert("authorization", HeaderValue::from_static("Bearer a.b.c"));
    assert_eq!(
        denied(&policy, &bearer_only, "t"),
        DenyReason::MissingCredentials
    );
}

#[test]
fn setup_errors() {
    let config = |jwt| AuthConfig {
        cookie: "session".into(),
        jwt: Some(jwt),
    };
    let rs = config(jwt_config(JwtAlgorithm::RS256));
    assert_eq!(
        AuthPolicy::key_file(&rs),
        Some(std::path::Path::new("unused.pem"))
    );
    assert!(matches!(
        AuthPolicy::new(&rs, None),
        Err(AuthSetupError::KeyNotLoaded)
    ));
    assert!(matches!(
        AuthPolicy::new(&rs, Some(b"not a pem")),
        Err(AuthSetupError::BadKey { .. })
    ));
    let es = config(jwt_config(JwtAlgorithm::ES256));
    assert!(AuthPolicy::new(&es, Some(&key("rsa_public.pem"))).is_err());
    let hs = config(jwt_config(JwtAlgorithm::HS256));
    assert_eq!(AuthPolicy::key_file(&hs), None);
}
