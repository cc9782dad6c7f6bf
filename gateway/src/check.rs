//! `sse-gateway check`: validate a configuration file and report.

use std::io::Write;
use std::path::Path;

use sse_gateway_config::{ConfigErrors, GatewayConfig};

use crate::services::access::RouteAccess;

/// What `check` prints, and whether the file passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Report {
    /// `ok`, or one `FILE:LINE:COL: key.path: message` line per error.
    pub(crate) stdout: String,
    /// One `FILE:LINE:COL: key.path: warning: message` line per warning,
    /// whether or not the file has errors.
    pub(crate) stderr: String,
    /// True when there is no error (warnings never fail `check`).
    pub(crate) ok: bool,
}

/// The report for a load result.
pub(crate) fn report(result: &Result<GatewayConfig, ConfigErrors>) -> Report {
    let (warnings, errors) = match result {
        Ok(config) => {
            let setup = setup_errors(config);
            let lines: Vec<String> = setup.iter().map(|e| format!("error: {e}\n")).collect();
            (&config.warnings[..], lines.concat())
        }
        Err(errors) => (errors.warnings(), format!("{errors}\n")),
    };
    let stderr = warnings.iter().map(|w| format!("{w}\n")).collect();
    let ok = errors.is_empty();
    Report {
        stdout: if ok { "ok\n".to_owned() } else { errors },
        stderr,
        ok,
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

/// Loads `path`, prints the report (warnings to stderr, the rest to
/// stdout) and returns the exit status (0 when valid, 1 otherwise).
pub(crate) fn run(path: &Path) -> u8 {
    let report = report(&sse_gateway_config::load(path));
    // A closed stdout or stderr leaves the exit status as the only answer.
    let mut stderr = std::io::stderr().lock();
    let _ = stderr
        .write_all(report.stderr.as_bytes())
        .and_then(|()| stderr.flush());
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_all(report.stdout.as_bytes())
        .and_then(|()| stdout.flush());
    if report.ok {
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
        let report = report(&result);
        assert_eq!((report.stdout.as_str(), report.ok), ("ok\n", true));
        assert_eq!(report.stderr, "");
    }

    #[test]
    fn warnings_go_to_stderr_and_do_not_fail() {
        let yaml = "routes:\n  - name: r\n    path: /s/{t}\n    upstream:\n      url: \"https://127.0.0.1:9/{t}\"\n      insecure_skip_verify: true\n";
        let report = report(&sse_gateway_config::from_str("w.yaml", yaml, &ProcessEnv));
        assert!(report.ok, "{report:?}");
        assert_eq!(report.stdout, "ok\n");
        let lines: Vec<&str> = report.stderr.lines().collect();
        assert_eq!(lines.len(), 2, "{report:?}");
        assert!(
            lines[0].starts_with("w.yaml:3:11: routes[0].path: warning: capture `{t}`"),
            "{lines:?}"
        );
        assert!(
            lines[1].starts_with(
                "w.yaml:6:29: routes[0].upstream.insecure_skip_verify: warning: the upstream's TLS"
            ),
            "{lines:?}"
        );
    }

    #[test]
    fn warnings_are_printed_beside_errors() {
        let yaml = "threads: 0\nroutes:\n  - {name: r, path: /s, proxy: \"http://h\", auth: {cookie: c}}\n";
        let report = report(&sse_gateway_config::from_str("e.yaml", yaml, &ProcessEnv));
        assert!(!report.ok);
        assert_eq!(
            report.stdout,
            "e.yaml:1:10: threads: must be greater than 0\n"
        );
        assert!(
            report
                .stderr
                .starts_with("e.yaml:3:59: routes[0].auth.cookie: warning: "),
            "{report:?}"
        );
    }

    #[test]
    fn a_bad_file_prints_every_error_with_file_line_and_key() {
        let rel = "configs/invalid/unknown-keys.yaml";
        let text = std::fs::read_to_string(workspace_file(rel)).unwrap();
        let expected =
            std::fs::read_to_string(workspace_file("configs/invalid/unknown-keys.expected"))
                .unwrap();
        let report = report(&sse_gateway_config::from_str(rel, &text, &ProcessEnv));
        assert!(!report.ok);
        assert_eq!(report.stdout.trim_end(), expected.trim_end());
        assert!(report.stdout.lines().count() >= 2, "{report:?}");
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
        let report = report(&sse_gateway_config::from_str("k.yaml", &yaml, &ProcessEnv));
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(!report.ok, "{report:?}");
        assert!(
            report.stdout.starts_with("error: route `r`: auth.jwt:"),
            "{report:?}"
        );
    }

    #[test]
    fn an_unreadable_file_is_an_error_naming_it() {
        let report = report(&sse_gateway_config::load(Path::new("/nonexistent/gw.yaml")));
        assert!(!report.ok);
        assert!(
            report.stdout.starts_with("/nonexistent/gw.yaml:"),
            "{report:?}"
        );
    }
}
