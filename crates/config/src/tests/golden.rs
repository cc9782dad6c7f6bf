//! Golden files: every `configs/invalid/NAME.yaml` must fail with exactly the
//! lines in `configs/invalid/NAME.expected`.
//!
//! The file is named `configs/invalid/NAME.yaml`, as `sse-gateway check`
//! shows it when run from the repository root, and `${VAR}` values come from
//! an empty environment. To see the actual output of a new fixture, run
//! `cargo test -p sse-gateway-config golden -- --nocapture`.

use std::path::{Path, PathBuf};

use crate::from_str;

fn invalid_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../configs/invalid")
}

/// The actual error lines for one fixture.
fn actual(yaml: &Path) -> String {
    let text = std::fs::read_to_string(yaml).unwrap();
    let name = yaml.file_name().unwrap().to_string_lossy();
    let empty: &[(&str, &str)] = &[];
    match from_str(&format!("configs/invalid/{name}"), &text, &empty) {
        Ok(_) => panic!("{name} loaded without errors"),
        Err(errors) => errors.to_string(),
    }
}

#[test]
fn invalid_configs_match_their_expected_errors() {
    let mut fixtures: Vec<PathBuf> = std::fs::read_dir(invalid_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    fixtures.sort();
    let mut failures = Vec::new();
    let mut checked = 0;
    for path in &fixtures {
        match path.extension().and_then(|e| e.to_str()) {
            Some("yaml") => {}
            Some("expected") => {
                assert!(
                    path.with_extension("yaml").exists(),
                    "{} has no .yaml",
                    path.display()
                );
                continue;
            }
            _ => panic!("unexpected file {} in configs/invalid", path.display()),
        }
        let got = actual(path);
        let expected_path = path.with_extension("expected");
        let want = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if got != want.trim_end_matches('\n') {
            failures.push(format!(
                "{}:\n--- want\n{}\n--- got\n{got}\n",
                expected_path.display(),
                want.trim_end()
            ));
        }
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} fixtures found");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
