//! Access control at the edge: CORS and credentials, decided before a
//! client joins a topic.
//!
//! One upstream connection is shared by every subscriber of a topic, so
//! the upstream cannot tell users apart: the gateway must decide who may
//! subscribe, and it must do so before subscribing (no upstream is opened
//! for a refused request, and nothing of the topic is answered).
//!
//! Pure: request headers and the validated configuration in, decisions and
//! headers to add out. No IO (the gateway reads JWT key files at start-up
//! and passes their bytes in), no clock (callers pass `now`), no tokio, no
//! pingora, no metrics.
//!
//! * [`cors`]: [`CorsPolicy`] for actual requests and preflights.
//! * [`auth`]: [`AuthPolicy`]: cookie presence, or a JWT from the cookie or
//!   `Authorization: Bearer`, verified by [`JwtVerifier`], with per-topic
//!   grants from a claim ([`topics`]).
//! * [`decision`]: [`Denied`] and the one table from [`DenyReason`] to the
//!   HTTP status (401/403) and the metric reason (`cors`/`auth`).
//!
//! The order the gateway applies them in: CORS (a preflight is answered
//! here and goes no further), then auth, then subscribe.

pub mod auth;
pub mod cookie;
pub mod cors;
pub mod decision;
pub mod jwt;
pub mod topics;

pub use auth::{AuthPolicy, Grant};
pub use cookie::find_cookie;
pub use cors::{CorsHeaders, CorsPolicy, ALLOWED_REQUEST_HEADERS};
pub use decision::{DenialKind, Denied, DenyReason};
pub use jwt::{AuthSetupError, JwtVerifier, VerifiedToken};
