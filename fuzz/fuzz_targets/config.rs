//! Fuzz target for the configuration reader: `sse_gateway_config::from_str`.
//!
//! Input: arbitrary bytes, read as text with invalid UTF-8 replaced (as an
//! editor would show it), loaded as `fuzz.yaml` with a fixed in-memory
//! environment ([`FixedEnv`]), so that no run reads the process environment.
//! Relative file paths resolve against the working directory (`fuzz/`), so
//! seeds can name `../configs/dev/*.pem`.
//!
//! Checked, for every input:
//!
//! 1. nothing panics (the YAML parser, the typed reader, every validation);
//! 2. a refused file has at least one error;
//! 3. every error and warning displays as one line that starts with
//!    `fuzz.yaml:LINE:COL: ` with LINE and COL at least 1.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sse_gateway_config::{from_str, EnvSource};

/// The variables the seeds use, with fixed values.
struct FixedEnv;

impl EnvSource for FixedEnv {
    fn var(&self, name: &str) -> Option<String> {
        let value = match name {
            "PRICES_TOKEN" => "t0ken",
            "HOST" => "127.0.0.1",
            "SESSION_SECRET" => "0123456789abcdef0123456789abcdef0123456789abcdef",
            "SHORT_SECRET" => "s3cret",
            "EMPTY" => "",
            _ => return None,
        };
        Some(value.to_owned())
    }
}

/// `FILE:LINE:COL: ...` on one line, LINE and COL >= 1.
fn check_line(line: &str) {
    assert!(!line.contains(['\n', '\r']), "not one line: {line:?}");
    let rest = line
        .strip_prefix("fuzz.yaml:")
        .unwrap_or_else(|| panic!("no file name: {line:?}"));
    let mut fields = rest.splitn(3, ':');
    for what in ["line", "column"] {
        let n: usize = fields
            .next()
            .and_then(|f| f.parse().ok())
            .unwrap_or_else(|| panic!("no {what}: {line:?}"));
        assert!(n >= 1, "{what} 0: {line:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match from_str("fuzz.yaml", &text, &FixedEnv) {
        Ok(config) => {
            for warning in &config.warnings {
                check_line(&warning.to_string());
            }
        }
        Err(errors) => {
            assert!(!errors.is_empty(), "refused without an error");
            for error in &errors {
                check_line(&error.to_string());
            }
            for warning in errors.warnings() {
                check_line(&warning.to_string());
            }
        }
    }
});
