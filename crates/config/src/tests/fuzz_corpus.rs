//! The committed inputs of the `config` fuzz target (`fuzz/corpus/config/`:
//! seeds, and small fuzzer-found inputs) replayed in the ordinary test run,
//! with the target's own checks: no panic, a refused file has errors, every
//! error and warning is one `FILE:LINE:COL: ` line.

use std::path::PathBuf;

use super::support::ENV;
use crate::from_str;

fn check_line(line: &str) {
    assert!(!line.contains(['\n', '\r']), "not one line: {line:?}");
    let mut fields = line.splitn(4, ':');
    assert_eq!(fields.next(), Some("fuzz.yaml"), "{line:?}");
    for _ in 0..2 {
        let n: usize = fields.next().and_then(|f| f.parse().ok()).unwrap_or(0);
        assert!(n >= 1, "{line:?}");
    }
}

#[test]
fn fuzz_corpus_inputs_load_or_fail_cleanly() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/config");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        match from_str("fuzz.yaml", &text, &ENV) {
            Ok(config) => config
                .warnings
                .iter()
                .for_each(|w| check_line(&w.to_string())),
            Err(errors) => {
                assert!(!errors.is_empty(), "{}", path.display());
                errors.iter().for_each(|e| check_line(&e.to_string()));
                errors
                    .warnings()
                    .iter()
                    .for_each(|w| check_line(&w.to_string()));
            }
        }
        count += 1;
    }
    assert!(count >= 20, "only {count} inputs in {}", dir.display());
}
