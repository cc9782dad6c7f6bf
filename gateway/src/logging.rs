//! Logs: `tracing` with an env-filter (`RUST_LOG`, else the config's
//! `log.level`), one line per event on stderr, as `key=value` text or JSON
//! objects. The format is the config's `log.format`, overridden by the
//! environment variable [`FORMAT_ENV`] (`text` or `json`). Pingora's own
//! `log` records are bridged into the same subscriber. In text, a field's
//! value is quoted and escaped whenever it could be misread ([`logfmt`]):
//! values carry request data, which must not forge fields or lines.
//!
//! What is logged, at info: the start-up summary (listeners, admin, each
//! route), upstream connects and interruptions with their reasons, one
//! access line per client stream when it closes (target
//! `sse_gateway::access`: route, topic, client, duration_ms, events, bytes,
//! reason), and the drain at shutdown.

mod logfmt;

use sse_gateway_config::{LogConfig, LogFormat};
use tracing_subscriber::EnvFilter;

use self::logfmt::Logfmt;

/// The environment variable that overrides `log.format`.
pub(crate) const FORMAT_ENV: &str = "SSE_GATEWAY_LOG_FORMAT";

/// Installs the global subscriber. Calling it twice keeps the first one.
pub(crate) fn init(config: &LogConfig) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let format =
        format_override(std::env::var(FORMAT_ENV).ok().as_deref()).unwrap_or(config.format);
    // An error means a subscriber is already installed (tests, demo restart).
    let _ = match format {
        LogFormat::Text => builder.with_ansi(false).fmt_fields(Logfmt).try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// The format named by the override variable, if it names one.
fn format_override(value: Option<&str>) -> Option<LogFormat> {
    match value?.trim().to_ascii_lowercase().as_str() {
        "text" => Some(LogFormat::Text),
        "json" => Some(LogFormat::Json),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_override_names_a_format_or_nothing() {
        assert!(matches!(
            format_override(Some("json")),
            Some(LogFormat::Json)
        ));
        assert!(matches!(
            format_override(Some(" Text ")),
            Some(LogFormat::Text)
        ));
        assert!(format_override(Some("yaml")).is_none());
        assert!(format_override(None).is_none());
    }
}
