//! Helpers shared by the pipeline tests.

use crate::{from_str, ConfigErrors, GatewayConfig};

/// The environment the tests use.
pub(super) const ENV: &[(&str, &str)] = &[
    ("PRICES_TOKEN", "t0ken"),
    ("SESSION_SECRET", SESSION_SECRET),
    ("SHORT_SECRET", "s3cret"),
    ("HOST", "127.0.0.1"),
];

/// A secret long enough for HS256 and HS384 (48 bytes), not for HS512.
pub(super) const SESSION_SECRET: &str = "0123456789abcdef0123456789abcdef0123456789abcdef";

/// Loads `text` as `test.yaml`.
pub(super) fn load(text: &str) -> Result<GatewayConfig, ConfigErrors> {
    from_str("test.yaml", text, &ENV)
}

/// The error lines for `text`, or a panic if it loads.
pub(super) fn errors(text: &str) -> Vec<String> {
    match load(text) {
        Ok(_) => panic!("expected errors for:\n{text}"),
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    }
}

/// A minimal valid route list to append to top-level test snippets.
pub(super) const ROUTE: &str =
    "routes:\n  - name: r\n    path: /p/{s}\n    upstream: {url: \"http://127.0.0.1:9000/{s}\"}\n";
