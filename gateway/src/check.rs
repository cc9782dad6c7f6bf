//! `sse-gateway check`: validate a configuration file and report.

use std::io::Write;
use std::path::Path;

use sse_gateway_config::{ConfigErrors, GatewayConfig};

/// What `check` prints for a load result, and whether it passed: `ok`, or
/// one `FILE:LINE:COL: key.path: message` line per error.
///
/// A valid file that turns off a safety check gets a `warning:` line per
/// such place before `ok` (it still passes).
pub(crate) fn report(result: &Result<GatewayConfig, ConfigErrors>) -> (String, bool) {
    match result {
        Ok(config) => {
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
    fn an_unreadable_file_is_an_error_naming_it() {
        let (out, ok) = report(&sse_gateway_config::load(Path::new("/nonexistent/gw.yaml")));
        assert!(!ok);
        assert!(out.starts_with("/nonexistent/gw.yaml:"), "{out}");
    }
}
