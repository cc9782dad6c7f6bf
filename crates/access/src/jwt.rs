//! JWT verification with the `jsonwebtoken` crate (no cryptography here).
//!
//! * Exactly one algorithm is accepted, the configured one: a token whose
//!   header names another (`none`, or `HS256` signed with an RSA/EC public
//!   key when RS256/ES256 is configured: "algorithm confusion") is refused
//!   before any signature check.
//! * The key comes from the configuration: an HMAC secret (`secret_env`,
//!   already read) or a PEM public key whose bytes the caller read at
//!   start-up (`key_file`; this crate does no IO).
//! * `exp` is required and must be in the future; `nbf`, when present, may
//!   be at most [`NBF_LEEWAY`] ahead; both must be JSON numbers. `aud` and
//!   `iss` are checked when configured. Times are checked against the `now`
//!   the caller passes, so the gateway and the tests share one clock.
//! * Tokens longer than [`MAX_TOKEN_LEN`] are refused unparsed.

use std::time::{Duration, SystemTime};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use sse_gateway_config::{JwtAlgorithm, JwtConfig, JwtKey};

use crate::decision::DenyReason;

/// Tokens longer than this (bytes) are refused without being decoded.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// How far in the future `nbf` may be (clock skew between the issuer and
/// the gateway). `exp` gets no leeway: the stream is closed at `exp`.
pub const NBF_LEEWAY: Duration = Duration::from_secs(30);

/// Why a verifier could not be built.
#[derive(Debug, thiserror::Error)]
pub enum AuthSetupError {
    /// `key_file` is configured but its contents were not passed in.
    #[error("the JWT key file was not read")]
    KeyNotLoaded,
    /// The key file is not a PEM key of the algorithm's family.
    #[error("the JWT key file is not a PEM {family} public key: {detail}")]
    BadKey {
        /// `RSA`, `EC` or `Ed25519`.
        family: &'static str,
        /// What the JWT library said.
        detail: String,
    },
    /// The algorithm and the kind of key do not go together.
    #[error("algorithm {0} does not go with this kind of key")]
    KeyMismatch(&'static str),
}

/// Verifies tokens for one route.
#[derive(Clone)]
pub struct JwtVerifier {
    key: DecodingKey,
    validation: Validation,
}

/// A verified token's claims.
#[derive(Debug, Clone)]
pub struct VerifiedToken {
    claims: Map<String, Value>,
    expires_at: SystemTime,
}

// === impl JwtVerifier ===

impl JwtVerifier {
    /// A verifier for `config`. `key_pem` is the content of `key_file`
    /// (ignored for HMAC secrets).
    pub fn new(config: &JwtConfig, key_pem: Option<&[u8]>) -> Result<Self, AuthSetupError> {
        let algorithm = algorithm(config.algorithm);
        let name = config.algorithm.as_str();
        let key = match (&config.key, config.algorithm.is_hmac()) {
            (JwtKey::Secret { secret, .. }, true) => {
                DecodingKey::from_secret(secret.expose().as_bytes())
            }
            (JwtKey::KeyFile(_), false) => {
                let pem = key_pem.ok_or(AuthSetupError::KeyNotLoaded)?;
                public_key(config.algorithm, pem)?
            }
            _ => return Err(AuthSetupError::KeyMismatch(name)),
        };
        let mut validation = Validation::new(algorithm);
        validation.leeway = 0;
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.required_spec_claims.clear();
        validation.validate_aud = !config.audience.is_empty();
        if !config.audience.is_empty() {
            validation.set_audience(&config.audience);
            validation.required_spec_claims.insert("aud".to_owned());
        }
        if let Some(issuer) = &config.issuer {
            validation.set_issuer(&[issuer]);
            validation.required_spec_claims.insert("iss".to_owned());
        }
        Ok(Self { key, validation })
    }

    /// Verifies `token` at `now`.
    pub fn verify(&self, token: &str, now: SystemTime) -> Result<VerifiedToken, DenyReason> {
        if !looks_like_jwt(token) {
            return Err(DenyReason::MalformedToken);
        }
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &self.key, &self.validation)
            .map_err(|e| deny_reason(e.kind()))?;
        let claims = data.claims;
        let expires_at = claims
            .get("exp")
            .and_then(numeric_date)
            .ok_or(DenyReason::MalformedToken)?;
        if now >= expires_at {
            return Err(DenyReason::Expired);
        }
        if let Some(nbf) = claims.get("nbf") {
            let not_before = numeric_date(nbf).ok_or(DenyReason::MalformedToken)?;
            if not_before > now + NBF_LEEWAY {
                return Err(DenyReason::NotYetValid);
            }
        }
        Ok(VerifiedToken { claims, expires_at })
    }
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("algorithms", &self.validation.algorithms)
            .finish_non_exhaustive()
    }
}

// === impl VerifiedToken ===

impl VerifiedToken {
    /// When the token expires (`exp`).
    pub fn expires_at(&self) -> SystemTime {
        self.expires_at
    }

    /// A claim by name.
    pub fn claim(&self, name: &str) -> Option<&Value> {
        self.claims.get(name)
    }
}

fn algorithm(alg: JwtAlgorithm) -> Algorithm {
    match alg {
        JwtAlgorithm::HS256 => Algorithm::HS256,
        JwtAlgorithm::HS384 => Algorithm::HS384,
        JwtAlgorithm::HS512 => Algorithm::HS512,
        JwtAlgorithm::RS256 => Algorithm::RS256,
        JwtAlgorithm::RS384 => Algorithm::RS384,
        JwtAlgorithm::RS512 => Algorithm::RS512,
        JwtAlgorithm::PS256 => Algorithm::PS256,
        JwtAlgorithm::PS384 => Algorithm::PS384,
        JwtAlgorithm::PS512 => Algorithm::PS512,
        JwtAlgorithm::ES256 => Algorithm::ES256,
        JwtAlgorithm::ES384 => Algorithm::ES384,
        JwtAlgorithm::EdDSA => Algorithm::EdDSA,
    }
}

fn public_key(alg: JwtAlgorithm, pem: &[u8]) -> Result<DecodingKey, AuthSetupError> {
    use JwtAlgorithm as A;
    let (family, key) = match alg {
        A::RS256 | A::RS384 | A::RS512 | A::PS256 | A::PS384 | A::PS512 => {
            ("RSA", DecodingKey::from_rsa_pem(pem))
        }
        A::ES256 | A::ES384 => ("EC", DecodingKey::from_ec_pem(pem)),
        A::EdDSA => ("Ed25519", DecodingKey::from_ed_pem(pem)),
        A::HS256 | A::HS384 | A::HS512 => return Err(AuthSetupError::KeyMismatch(alg.as_str())),
    };
    key.map_err(|e| AuthSetupError::BadKey {
        family,
        detail: e.to_string(),
    })
}

/// Three non-empty base64url parts, within the size limit.
fn looks_like_jwt(token: &str) -> bool {
    token.len() <= MAX_TOKEN_LEN
        && token.split('.').count() == 3
        && token.split('.').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// A JSON number of seconds since the epoch (RFC 7519 NumericDate).
fn numeric_date(value: &Value) -> Option<SystemTime> {
    let secs = value.as_f64().filter(|s| s.is_finite() && *s >= 0.0)?;
    // Beyond this, SystemTime arithmetic could overflow; such dates are bogus.
    if secs > 1e11 {
        return None;
    }
    SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs_f64(secs))
}

fn deny_reason(kind: &ErrorKind) -> DenyReason {
    match kind {
        ErrorKind::InvalidSignature
        | ErrorKind::InvalidEcdsaKey
        | ErrorKind::InvalidEddsaKey
        | ErrorKind::InvalidRsaKey(_) => DenyReason::BadSignature,
        ErrorKind::InvalidAudience => DenyReason::WrongAudience,
        ErrorKind::InvalidIssuer => DenyReason::WrongIssuer,
        ErrorKind::MissingRequiredClaim(claim) if claim == "aud" => DenyReason::WrongAudience,
        ErrorKind::MissingRequiredClaim(claim) if claim == "iss" => DenyReason::WrongIssuer,
        ErrorKind::ExpiredSignature => DenyReason::Expired,
        ErrorKind::ImmatureSignature => DenyReason::NotYetValid,
        _ => DenyReason::MalformedToken,
    }
}
