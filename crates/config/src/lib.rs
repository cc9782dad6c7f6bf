//! The gateway's configuration: YAML in, a typed and validated
//! [`GatewayConfig`] out. Nothing else in the product reads YAML or the
//! environment for configuration.
//!
//! # The pipeline
//!
//! ```text
//! file text ──► YAML nodes with positions ──► GatewayConfig
//!            yaml.rs                      validate/ (through read.rs)  model.rs
//! ```
//!
//! 1. **Text → nodes** (`yaml`, private): the text is parsed
//!    by `saphyr-parser` into a small tree where every key and value keeps
//!    its line and column. Syntax errors, duplicate keys, aliases and tags
//!    are reported here.
//! 2. **Nodes → model** (`validate`, private): each mapping is read through
//!    a typed reader (`read`, private): `take::<T>("key")` hands out the
//!    key's value checked for its YAML type (a list where a string belongs
//!    is an error at the value), with its position, and marks the key as
//!    known; when the mapping is done, every key nobody took is reported as
//!    unknown. Each setting is read, parsed and checked in one place:
//!    durations, sizes, addresses, path patterns, templates, regexes,
//!    origins, `${VAR}` references filled from an [`EnvSource`], defaults
//!    filled in, files checked for existence, and the cross-field rules
//!    (upstream xor proxy, unique route names, `*` with credentials,
//!    backoff bounds, ...). There is no list of allowed keys and no
//!    intermediate "raw" struct to keep in step.
//!
//! The reader is our own rather than serde with `serde-saphyr` (which has
//! spans): serde stops at the first error, while [`ConfigErrors`] lists every
//! problem in the file; its messages ("invalid type: sequence, expected a
//! string", "unknown field") and positions differ from ours and the golden
//! files, and getting ours back would take a hand-written `Deserialize` for
//! most types, more lines than the reader (about 300) it would replace.
//!
//! Every step records errors and carries on, so [`ConfigErrors`] holds every
//! problem in the file, each displayed as `FILE:LINE:COL: key.path: message`.
//!
//! Settings that are valid but risky (a capture any client can vary without
//! `params` or `auth`, a cookie whose value is not verified, an upstream
//! whose certificate is not verified) are recorded as [`ConfigWarning`]s,
//! displayed as `FILE:LINE:COL: key.path: warning: message`. They never fail
//! the load: they are in [`GatewayConfig::warnings`] (or, when the file has
//! errors too, in [`ConfigErrors::warnings`]).
//!
//! # Precedence
//!
//! Built-in defaults, then `defaults:`, then a route's own keys (per leaf:
//! a route setting `replay: {events: 10}` keeps the default `max_age`).
//! Relative file paths (`tls.cert`, `tls.key`, `upstream.ca_file`,
//! `auth.jwt.key_file`, `runtime_dir`) are resolved against the directory of
//! the configuration file.
//!
//! `configs/reference.yaml` documents every key with its default, unit and
//! an example.

mod diag;
mod error;
mod model;
mod read;
mod validate;
pub mod values;
mod yaml;

use std::path::Path;

pub use error::{ConfigError, ConfigErrors, ConfigWarning, ROOT_KEY_PATH};
pub use model::{
    AuthConfig, BackoffConfig, CoalesceKey, CorsConfig, FanOutRoute, GatewayConfig, JwtAlgorithm,
    JwtConfig, JwtKey, Limits, LogConfig, LogFormat, MetricsConfig, MultiConfig, ParamRegex,
    ProxyRoute, ReplayConfig, RouteConfig, RouteKind, Secret, SlowClientPolicy, TlsConfig,
    TopicOpenRate, TopicSettingsConfig, UpstreamConfig, DEFAULT_EXPIRED_EVENT,
};
pub use values::cidr::IpCidr;
pub use values::duration::parse_duration;
pub use values::env::{EnvSource, ProcessEnv};
pub use values::origin::OriginPattern;
pub use values::path_pattern::{PathPattern, Segment};
pub use values::size::parse_size;
pub use values::template::{Template, TemplatePart};

use diag::Diag;

/// Reads and validates the configuration file at `path`, taking `${VAR}`
/// values from the process environment.
///
/// Errors name the file as `path` is displayed.
///
/// The file must be a regular file (checked before it is opened, so that a
/// FIFO or a device such as `/dev/zero` is an error rather than a hang).
pub fn load(path: &Path) -> Result<GatewayConfig, ConfigErrors> {
    let file_name = path.display().to_string();
    let read = match std::fs::metadata(path) {
        Ok(meta) => match validate::not_regular(&meta) {
            Some(reason) => Err(reason),
            None => std::fs::read_to_string(path).map_err(|e| e.to_string()),
        },
        Err(e) => Err(e.to_string()),
    };
    match read {
        Ok(text) => from_str(&file_name, &text, &ProcessEnv),
        Err(reason) => {
            let mut diag = Diag::new(&file_name);
            diag.push(
                Default::default(),
                "",
                format!("cannot read the configuration file: {reason}"),
            );
            Err(ConfigErrors::from_vec(diag.into_errors()))
        }
    }
}

/// Validates configuration `text`, taking `${VAR}` values from `env`.
///
/// `file_name` is used in error messages, and its directory is the base for
/// relative file paths in the configuration.
pub fn from_str(
    file_name: &str,
    text: &str,
    env: &dyn EnvSource,
) -> Result<GatewayConfig, ConfigErrors> {
    let mut diag = Diag::new(file_name);
    let root = match yaml::parse(text) {
        Ok(root) => root,
        Err(errors) => {
            for e in errors {
                diag.push(e.pos, &e.key_path, e.message);
            }
            return Err(ConfigErrors::from_vec(diag.into_errors()));
        }
    };
    let Some(root) = root.filter(|node| !node.is_null()) else {
        diag.push(
            Default::default(),
            "",
            "the file is empty: at least `routes` is needed",
        );
        return Err(ConfigErrors::from_vec(diag.into_errors()));
    };
    let base_dir = Path::new(file_name).parent().unwrap_or(Path::new(""));
    let config = validate::validate(&mut diag, &root, env, base_dir);
    let (errors, warnings) = diag.into_parts();
    match config {
        Some(mut config) if errors.is_empty() => {
            config.warnings = warnings;
            Ok(config)
        }
        _ => Err(ConfigErrors::from_vec(errors).with_warnings(warnings)),
    }
}

#[cfg(test)]
mod tests;
