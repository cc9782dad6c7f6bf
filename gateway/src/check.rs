//! `sse-gateway check`: validate a configuration file and report.

use std::io::Write;
use std::path::Path;

use sse_gateway_config::{ConfigErrors, GatewayConfig};

use crate::services::access::RouteAccess;

/// What `check` prints for a load result, and whether it passed: `ok`, or
/// one `FILE:LINE:COL: key.path: message` line per error.
///
/// A valid file that turns off a safety check gets a `warning:` line per
/// such place before `ok` (it still passes).
pub(crate) fn report(result: &Result<GatewayConfig, ConfigErrors>) -> (String, bool) {
    match result {
        Ok(config) => {
            let setup = setup_errors(config);
            if !setup.is_empty() {
                let lines: Vec<String> = setup.iter().map(|e| format!("error: {e}")).collect();
                return (lines.join("\n") + "\n", false);
            }
            let mut out = String::new();
            for warning in warnings(config) {
                out.push_str("warning: ");
                out.push_str(&warning);
                out.push('\n');
            }
            out.push_str("ok\n");
            (out, true)
        }
        Err(errors) => (format!("{errors}\n"), false),
    }
}

/// What `run` would refuse at start although the file is valid: each
/// route's access policy is built as at start, so a JWT key file that is
/// not a usable PEM key (or does not fit the algorithm) fails `check` too.
fn setup_errors(config: &GatewayConfig) -> Vec<String> {
    config
        .routes
        .iter()
        .filter_map(|route| RouteAccess::new(route).err())
        .map(|e| format!("{e:#}"))
        .collect()
}

/// Settings that are valid but unsafe, one sentence each.
fn warnings(config: &GatewayConfig) -> Vec<String> {
    config
        .routes
        .iter()
        .filter_map(|route| {
            let fan_out = route.fan_out()?;
            fan_out.upstream.insecure_skip_verify.then(|| {
                format!(
                    "routes `{}`: upstream.insecure_skip_verify is on: the upstream's TLS \
                     certificate is NOT verified, so anyone on the path can impersonate it",
                    route.name
                )
            })
        })
        .collect()
}

/// Loads `path`, prints the report to stdout and returns the exit status
/// (0 when valid, 1 otherwise).
pub(crate) fn run(path: &Path) -> u8 {
    let (text, ok) = report(&sse_gateway_config::load(path));
    let mut stdout = std::io::stdout().lock();
    // A closed stdout leaves the exit status as the only answer.
    let _ = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush());
    if ok {
        0
    } else {
        1
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use sse_gateway_config::ProcessEnv;

    use super::*;

    fn workspace_file(rel: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
    }

    #[test]
    fn a_good_file_prints_ok() {
        let result = sse_gateway_config::load(&workspace_file("configs/gateway.yaml"));
        assert_eq!(report(&result), ("ok\n".to_owned(), true));
    }

    #[test]
    fn skipping_upstream_verification_is_warned_about() {
        let yaml = "routes:\n  - name: r\n    path: /s/{t}\n    upstream:\n      url: \"https://127.0.0.1:9/{t}\"\n      insecure_skip_verify: true\n";
        let (out, ok) = report(&sse_gateway_config::from_str("w.yaml", yaml, &ProcessEnv));
        assert!(ok, "{out}");
        assert!(
            out.starts_with("warning: routes `r`: upstream.insecure_skip_verify is on"),
            "{out}"
        );
        assert!(out.ends_with("ok\n"), "{out}");
    }

    #[test]
    fn a_bad_file_prints_every_error_with_file_line_and_key() {
        let rel = "configs/invalid/unknown-keys.yaml";
        let text = std::fs::read_to_string(workspace_file(rel)).unwrap();
        let expected =
            std::fs::read_to_string(workspace_file("configs/invalid/unknown-keys.expected"))
                .unwrap();
        let (out, ok) = report(&sse_gateway_config::from_str(rel, &text, &ProcessEnv));
        assert!(!ok);
        assert_eq!(out.trim_end(), expected.trim_end());
        assert!(out.lines().count() >= 2, "{out}");
    }

    #[test]
    fn a_jwt_key_that_is_not_a_key_fails_check() {
        let dir = std::env::temp_dir().join(format!("sse-gw-check-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = dir.join("not-a-key.pem");
        std::fs::write(
            &key,
            "-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n",
        )
        .unwrap();
        let yaml = format!(
            "routes:\n  - name: r\n    path: /s/{{t}}\n    upstream:\n      url: \"http://127.0.0.1:9/{{t}}\"\n    auth:\n      cookie: session\n      jwt:\n        algorithm: ES256\n        key_file: {}\n",
            key.display()
        );
        let (out, ok) = report(&sse_gateway_config::from_str("k.yaml", &yaml, &ProcessEnv));
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(!ok, "{out}");
        assert!(out.starts_with("error: route `r`: auth.jwt:"), "{out}");
    }

    #[test]
    fn an_unreadable_file_is_an_error_naming_it() {
        let (out, ok) = report(&sse_gateway_config::load(Path::new("/nonexistent/gw.yaml")));
        assert!(!ok);
        assert!(out.starts_with("/nonexistent/gw.yaml:"), "{out}");
    }
}
