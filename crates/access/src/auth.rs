//! [`AuthPolicy`]: one route's `auth:` as a decision over request headers.
//!
//! Where the credential comes from:
//!
//! 1. `Authorization: Bearer <token>` (fetch-based and non-browser
//!    clients), only when `auth.jwt` is set: without a JWT check there is
//!    nothing to verify a bearer token against.
//! 2. Otherwise the cookie named `auth.cookie` ([`find_cookie`]).
//!
//! A `?token=` query parameter is **not** accepted. Tokens in URLs end up
//! in access logs (the gateway's, proxies', the upstream's), in browser
//! history and in `Referer` headers, and they cannot be marked `HttpOnly`.
//! `EventSource` sends cookies (`withCredentials: true` across origins) and
//! fetch-based clients can send `Authorization`, so browsers do not need it.
//!
//! Without `auth.jwt`, a non-empty cookie is enough. With it, the value must
//! verify ([`JwtVerifier`]); with `topics_claim`, that claim must grant the
//! requested topic ([`claim_grants`]); proxy routes have no topic, so the
//! claim is not consulted there. The [`Grant`] carries the token's `exp` so
//! the gateway can close the stream then.
//!
//! `auth.forward` (a sub-request to an auth service, as nginx
//! `auth_request` does) is not offered: it would need IO in the request
//! path and a cache keyed by credentials; a JWT carries the same decision
//! without a round trip.

use std::path::Path;
use std::time::SystemTime;

use http::header::AUTHORIZATION;
use http::HeaderMap;
use sse_gateway_config::{AuthConfig, JwtKey};

use crate::cookie::find_cookie;
use crate::decision::{Denied, DenyReason};
use crate::jwt::{AuthSetupError, JwtVerifier};
use crate::topics::claim_grants;

/// One route's credential check.
#[derive(Debug, Clone)]
pub struct AuthPolicy {
    cookie: String,
    jwt: Option<JwtVerifier>,
    topics_claim: Option<String>,
}

/// What an accepted request was granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    /// The token's `exp`: close the stream then. `None` for cookie-presence
    /// checks (no expiry known).
    pub expires_at: Option<SystemTime>,
}

// === impl AuthPolicy ===

impl AuthPolicy {
    /// The key file `config` needs read at start-up, if any: pass its
    /// contents to [`AuthPolicy::new`].
    pub fn key_file(config: &AuthConfig) -> Option<&Path> {
        match config.jwt.as_ref().map(|jwt| &jwt.key) {
            Some(JwtKey::KeyFile(path)) => Some(path),
            _ => None,
        }
    }

    /// The policy of `config`; `key_pem` is the content of the JWT
    /// `key_file`, when there is one.
    pub fn new(config: &AuthConfig, key_pem: Option<&[u8]>) -> Result<Self, AuthSetupError> {
        let jwt = config
            .jwt
            .as_ref()
            .map(|jwt| JwtVerifier::new(jwt, key_pem))
            .transpose()?;
        Ok(Self {
            cookie: config.cookie.clone(),
            topics_claim: config.jwt.as_ref().and_then(|j| j.topics_claim.clone()),
            jwt,
        })
    }

    /// Decides a request for `topic` (`None` on proxy routes) at `now`.
    pub fn check(
        &self,
        headers: &HeaderMap,
        topic: Option<&str>,
        now: SystemTime,
    ) -> Result<Grant, Denied> {
        let Some(jwt) = &self.jwt else {
            return match find_cookie(headers, &self.cookie) {
                Some(_) => Ok(Grant { expires_at: None }),
                None => Err(DenyReason::MissingCredentials.into()),
            };
        };
        let token = bearer(headers)?
            .or_else(|| find_cookie(headers, &self.cookie))
            .ok_or(DenyReason::MissingCredentials)?;
        let verified = jwt.verify(token, now)?;
        if let (Some(claim), Some(topic)) = (&self.topics_claim, topic) {
            let granted = verified
                .claim(claim)
                .is_some_and(|value| claim_grants(value, topic));
            if !granted {
                return Err(DenyReason::TopicNotAllowed.into());
            }
        }
        Ok(Grant {
            expires_at: Some(verified.expires_at()),
        })
    }
}

/// The token of an `Authorization: Bearer` header. Another scheme is
/// ignored (`None`); several `Authorization` headers are refused.
fn bearer(headers: &HeaderMap) -> Result<Option<&str>, DenyReason> {
    let mut all = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = all.next() else {
        return Ok(None);
    };
    if all.next().is_some() {
        return Err(DenyReason::MalformedToken);
    }
    let Ok(text) = value.to_str() else {
        return Err(DenyReason::MalformedToken);
    };
    let Some((scheme, token)) = text.trim().split_once(' ') else {
        return Ok(None);
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Ok(None);
    }
    Ok(Some(token.trim()))
}
