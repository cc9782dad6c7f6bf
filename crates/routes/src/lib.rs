//! Request routing for the gateway: a method and a path in, the configured
//! route, its decoded captures and its filled topic and upstream URL out.
//!
//! Pure: no IO, no tokio, no pingora. It knows the validated
//! [`GatewayConfig`](sse_gateway_config::GatewayConfig), and nothing about
//! CORS, auth, topics or upstream connections.
//!
//! # Matching rules
//!
//! * The query string and fragment are ignored; a path that does not start
//!   with `/`, or is longer than [`MAX_PATH_LEN`] bytes, matches nothing.
//! * The path is split on `/`. A literal segment must be equal byte for byte
//!   (no decoding, case-sensitive). `{name}` matches exactly one non-empty
//!   segment; `{*name}` matches the rest of the path, one or more segments.
//!   A trailing `/` or an empty segment (`//`) is a segment of its own, so
//!   `/prices/AAPL/` does not match `/prices/{symbol}`.
//! * Each capture segment is percent-decoded. It must be well-formed
//!   (`%XX` escapes), UTF-8, not empty, and after decoding contain no `/`
//!   (so `%2F` is refused), no `..`, no control character (CR, LF, NUL, ...),
//!   and not be `.`. On a fan-out route without `lenient_captures`, it must
//!   also have no Unicode White_Space character (space, U+00A0, U+3000, ...)
//!   and no format character (general category Cf: U+200B, U+202E, U+FEFF,
//!   ...), which would let two topics look alike or hide text in logs.
//!   A capture with a `params` regex must match it whole.
//!   A route whose captures fail these checks does not match; the next route
//!   is tried.
//! * The first matching route wins. Fan-out routes answer GET and HEAD, and
//!   OPTIONS as a matched route so that the CORS layer can answer the
//!   preflight; any other method gives [`RouteMatch::MethodNotAllowed`] with
//!   `Allow: GET, HEAD, OPTIONS`. Proxy routes accept every method.
//! * The topic is the topic template filled with the decoded captures. The
//!   upstream URL is the URL template filled with each capture
//!   percent-encoded as a path segment (a catch-all segment by segment), so a
//!   capture can never change the upstream's host, path depth, query or
//!   fragment.

mod matcher;
mod table;
mod target;

pub use matcher::MAX_PATH_LEN;
pub use table::{Captures, Matched, RouteMatch, RouteTable, Target, FAN_OUT_ALLOW};

#[cfg(test)]
mod tests;
