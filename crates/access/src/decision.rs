//! The outcome of an access check, and the one table that turns a refusal
//! into an HTTP status and a metric reason.
//!
//! | [`DenyReason`] | status | `reason` label |
//! | --- | --- | --- |
//! | `OriginNotAllowed`, `NullOrigin`, `MalformedOrigin` | 403 | `cors` |
//! | `PreflightMethod`, `PreflightHeaders` | 403 | `cors` |
//! | `MissingCredentials` | 401 | `auth` |
//! | `MalformedToken`, `BadSignature`, `Expired`, `NotYetValid`, `WrongAudience`, `WrongIssuer` | 401 | `auth` |
//! | `TopicNotAllowed` | 403 | `auth` |
//!
//! 401 means "come back with (other) credentials"; 403 means "these
//! credentials, or this origin, will never be let in here".

use std::fmt;

/// Why a request was refused. The variants are coarse on purpose: none of
/// them carries the topic or anything read from the token, so a refusal can
/// be logged and answered without leaking what the client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DenyReason {
    /// CORS: the `Origin` is not in `cors.origins`.
    OriginNotAllowed,
    /// CORS: `Origin: null` (sandboxed frames, `file:` pages, some
    /// redirects); refused unless the policy allows it.
    NullOrigin,
    /// CORS: several `Origin` headers, or one that is not valid text.
    MalformedOrigin,
    /// CORS preflight: `Access-Control-Request-Method` is missing or not
    /// one the route answers.
    PreflightMethod,
    /// CORS preflight: `Access-Control-Request-Headers` names a header the
    /// gateway does not allow.
    PreflightHeaders,
    /// Auth: neither the cookie nor an `Authorization: Bearer` token.
    MissingCredentials,
    /// Auth: the token is not a well-formed JWT (or is oversized), or its
    /// header names another algorithm than the configured one.
    MalformedToken,
    /// Auth: the signature does not verify with the configured key.
    BadSignature,
    /// Auth: `exp` has passed (a missing or non-numeric `exp` is
    /// [`DenyReason::MalformedToken`]).
    Expired,
    /// Auth: `nbf` is in the future.
    NotYetValid,
    /// Auth: `aud` does not name one of the configured audiences.
    WrongAudience,
    /// Auth: `iss` is not the configured issuer.
    WrongIssuer,
    /// Auth: the token is valid but its topics claim does not grant this
    /// topic (or the claim is missing or malformed).
    TopicNotAllowed,
}

/// Which policy refused: the value of the `reason` label of
/// `sse_gateway_rejected_requests_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DenialKind {
    /// `reason="cors"`.
    Cors,
    /// `reason="auth"`.
    Auth,
}

/// A refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Denied {
    /// Why.
    pub reason: DenyReason,
}

// === impl DenyReason ===

impl DenyReason {
    /// The HTTP status to answer with (401 or 403).
    pub fn status(self) -> u16 {
        self.row().0
    }

    /// Which policy refused, for the metric label.
    pub fn kind(self) -> DenialKind {
        self.row().1
    }

    /// A short, fixed description for logs (never includes request data).
    pub fn as_str(self) -> &'static str {
        self.row().2
    }

    /// The table.
    fn row(self) -> (u16, DenialKind, &'static str) {
        use DenialKind::{Auth, Cors};
        match self {
            Self::OriginNotAllowed => (403, Cors, "origin not allowed"),
            Self::NullOrigin => (403, Cors, "null origin"),
            Self::MalformedOrigin => (403, Cors, "malformed origin"),
            Self::PreflightMethod => (403, Cors, "preflight method not allowed"),
            Self::PreflightHeaders => (403, Cors, "preflight header not allowed"),
            Self::MissingCredentials => (401, Auth, "no credentials"),
            Self::MalformedToken => (401, Auth, "malformed token"),
            Self::BadSignature => (401, Auth, "bad signature"),
            Self::Expired => (401, Auth, "token expired"),
            Self::NotYetValid => (401, Auth, "token not yet valid"),
            Self::WrongAudience => (401, Auth, "wrong audience"),
            Self::WrongIssuer => (401, Auth, "wrong issuer"),
            Self::TopicNotAllowed => (403, Auth, "topic not allowed"),
        }
    }
}

impl fmt::Display for DenyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// === impl DenialKind ===

impl DenialKind {
    /// The label value: `cors` or `auth`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cors => "cors",
            Self::Auth => "auth",
        }
    }
}

// === impl Denied ===

impl Denied {
    /// A refusal for `reason`.
    pub fn new(reason: DenyReason) -> Self {
        Self { reason }
    }

    /// The HTTP status to answer with.
    pub fn status(self) -> u16 {
        self.reason.status()
    }

    /// Which policy refused.
    pub fn kind(self) -> DenialKind {
        self.reason.kind()
    }

    /// The fixed response body: names no topic, origin or claim.
    pub fn body(self) -> &'static str {
        match self.status() {
            401 => "unauthorized\n",
            _ => "forbidden\n",
        }
    }
}

impl From<DenyReason> for Denied {
    fn from(reason: DenyReason) -> Self {
        Self::new(reason)
    }
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.reason, self.status())
    }
}

impl std::error::Error for Denied {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cors_refusals_are_403_cors_and_auth_ones_401_or_403_auth() {
        use DenyReason as R;
        let table = [
            (R::OriginNotAllowed, 403, "cors"),
            (R::NullOrigin, 403, "cors"),
            (R::MalformedOrigin, 403, "cors"),
            (R::PreflightMethod, 403, "cors"),
            (R::PreflightHeaders, 403, "cors"),
            (R::MissingCredentials, 401, "auth"),
            (R::MalformedToken, 401, "auth"),
            (R::BadSignature, 401, "auth"),
            (R::Expired, 401, "auth"),
            (R::NotYetValid, 401, "auth"),
            (R::WrongAudience, 401, "auth"),
            (R::WrongIssuer, 401, "auth"),
            (R::TopicNotAllowed, 403, "auth"),
        ];
        for (reason, status, label) in table {
            let denied = Denied::from(reason);
            assert_eq!(denied.status(), status, "{reason:?}");
            assert_eq!(denied.kind().as_str(), label, "{reason:?}");
            let body = if status == 401 {
                "unauthorized\n"
            } else {
                "forbidden\n"
            };
            assert_eq!(denied.body(), body);
        }
    }
}
