//! The `auth:` part of a route's model: the cookie, the JWT check and its
//! key (whose secret is never printed).

use std::fmt;
use std::path::PathBuf;

/// `auth:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    /// `auth.cookie`: the cookie that must be present.
    pub cookie: String,
    /// `auth.jwt`: verify the cookie's value as a JWT, if set.
    pub jwt: Option<JwtConfig>,
}

/// `auth.jwt:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtConfig {
    /// `algorithm`: the only algorithm accepted.
    pub algorithm: JwtAlgorithm,
    /// `secret_env` or `key_file`: the verification key (which one matches
    /// the algorithm's family).
    pub key: JwtKey,
    /// `topics_claim`: a claim listing topic patterns this user may read.
    pub topics_claim: Option<String>,
    /// `audience`: accepted `aud` values (empty: not checked).
    pub audience: Vec<String>,
    /// `issuer`: the required `iss`, if set.
    pub issuer: Option<String>,
    /// `expired_event`: the type of the event a stream gets, just before the
    /// gateway closes it, when its token's `exp` passes (default
    /// [`DEFAULT_EXPIRED_EVENT`]).
    pub expired_event: String,
}

/// The default `auth.jwt.expired_event`.
pub const DEFAULT_EXPIRED_EVENT: &str = "auth_expired";

/// JWT signature algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(clippy::upper_case_acronyms)]
pub enum JwtAlgorithm {
    /// HMAC with SHA-256 (shared secret).
    HS256,
    /// HMAC with SHA-384 (shared secret).
    HS384,
    /// HMAC with SHA-512 (shared secret).
    HS512,
    /// RSASSA-PKCS1-v1_5 with SHA-256 (RSA public key).
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384 (RSA public key).
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512 (RSA public key).
    RS512,
    /// RSASSA-PSS with SHA-256 (RSA public key).
    PS256,
    /// RSASSA-PSS with SHA-384 (RSA public key).
    PS384,
    /// RSASSA-PSS with SHA-512 (RSA public key).
    PS512,
    /// ECDSA P-256 with SHA-256 (EC public key).
    ES256,
    /// ECDSA P-384 with SHA-384 (EC public key).
    ES384,
    /// Ed25519 (Ed25519 public key).
    EdDSA,
}

/// Where the JWT verification key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwtKey {
    /// `secret_env`: an HMAC secret read from this environment variable at
    /// load time; at least [`JwtAlgorithm::min_secret_len`] bytes.
    Secret {
        /// The variable's name.
        env_var: String,
        /// Its value.
        secret: Secret,
    },
    /// `key_file`: a PEM public key (RSA, EC or Ed25519). Relative paths are
    /// resolved against the configuration file's directory; the file existed
    /// when loaded.
    KeyFile(PathBuf),
}

/// A secret string whose `Debug` output is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

// === impl JwtAlgorithm ===

impl JwtAlgorithm {
    /// Every algorithm, with its name in the file.
    pub const ALL: [(&'static str, JwtAlgorithm); 12] = [
        ("HS256", Self::HS256),
        ("HS384", Self::HS384),
        ("HS512", Self::HS512),
        ("RS256", Self::RS256),
        ("RS384", Self::RS384),
        ("RS512", Self::RS512),
        ("PS256", Self::PS256),
        ("PS384", Self::PS384),
        ("PS512", Self::PS512),
        ("ES256", Self::ES256),
        ("ES384", Self::ES384),
        ("EdDSA", Self::EdDSA),
    ];

    /// True for the HMAC algorithms (HS*), which use a shared secret; the
    /// others use a public key file.
    pub fn is_hmac(self) -> bool {
        matches!(self, Self::HS256 | Self::HS384 | Self::HS512)
    }

    /// For the HMAC algorithms, the shortest secret accepted, in bytes: the
    /// size of the hash output (RFC 7518, section 3.2). `None` for the
    /// public-key algorithms.
    pub fn min_secret_len(self) -> Option<usize> {
        match self {
            Self::HS256 => Some(32),
            Self::HS384 => Some(48),
            Self::HS512 => Some(64),
            _ => None,
        }
    }

    /// The name as written in the file (`HS256`).
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, a)| *a == self)
            .map_or("", |(name, _)| name)
    }
}

// === impl Secret ===

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}
