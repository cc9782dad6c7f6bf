//! Topic patterns from a token's topics claim.
//!
//! The claim is a JSON array of strings, or one string of patterns
//! separated by spaces (the OAuth `scope` style). A pattern is an exact
//! topic name, or contains `*`, which matches any run of characters
//! (including none, and including `/`): `prices/*` grants `prices/AAPL` and
//! `prices/eu/SAP`, `*` grants every topic. There is no escape: a topic
//! whose name contains `*` can only be granted by a pattern.
//!
//! Matching is `O(pattern × topic)` at worst; patterns and their number are
//! bounded ([`MAX_PATTERNS`], [`MAX_PATTERN_LEN`]) so a hostile token cannot
//! make it expensive.

use serde_json::Value;

/// A claim listing more patterns than this grants nothing.
pub const MAX_PATTERNS: usize = 256;

/// A pattern longer than this (in bytes) is ignored.
pub const MAX_PATTERN_LEN: usize = 512;

/// True when the claim `value` grants `topic`. A claim of another JSON
/// type, or with too many patterns, grants nothing.
pub fn claim_grants(value: &Value, topic: &str) -> bool {
    match value {
        Value::String(list) => {
            let patterns: Vec<&str> = list
                .split_ascii_whitespace()
                .take(MAX_PATTERNS + 1)
                .collect();
            patterns.len() <= MAX_PATTERNS && patterns.iter().any(|p| pattern_grants(p, topic))
        }
        Value::Array(items) => {
            items.len() <= MAX_PATTERNS
                && items
                    .iter()
                    .filter_map(Value::as_str)
                    .any(|p| pattern_grants(p, topic))
        }
        _ => false,
    }
}

/// True when one pattern grants `topic`.
pub fn pattern_grants(pattern: &str, topic: &str) -> bool {
    !pattern.is_empty()
        && pattern.len() <= MAX_PATTERN_LEN
        && glob(pattern.as_bytes(), topic.as_bytes())
}

/// `*`-only glob, iterative with one backtrack point (the last `*`).
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn pattern_table() {
        let cases = [
            ("prices/AAPL", "prices/AAPL", true),
            ("prices/AAPL", "prices/AAPLX", false),
            ("prices/AAPL", "prices/aapl", false),
            ("prices/*", "prices/AAPL", true),
            ("prices/*", "prices/", true),
            ("prices/*", "prices/eu/SAP", true),
            ("prices/*", "prices", false),
            ("prices/*", "news/AAPL", false),
            ("*", "anything/at/all", true),
            ("*/AAPL", "prices/AAPL", true),
            ("*/AAPL", "prices/MSFT", false),
            ("p*s/*L", "prices/AAPL", true),
            ("p*s/*L", "prices/AAPM", false),
            (
                "a*a*a*a*b",
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                false,
            ),
            ("", "", false),
        ];
        for (pattern, topic, want) in cases {
            assert_eq!(pattern_grants(pattern, topic), want, "{pattern} vs {topic}");
        }
    }

    #[test]
    fn claim_shapes() {
        assert!(claim_grants(
            &json!(["news/*", "prices/AAPL"]),
            "prices/AAPL"
        ));
        assert!(!claim_grants(
            &json!(["news/*", "prices/AAPL"]),
            "prices/MSFT"
        ));
        assert!(claim_grants(&json!("news/* prices/AAPL"), "prices/AAPL"));
        assert!(!claim_grants(&json!("prices/AAPL"), "prices/AAP"));
        assert!(!claim_grants(&json!([1, null, {"a": "*"}]), "x"));
        assert!(!claim_grants(&json!(42), "x"));
        assert!(!claim_grants(&json!({"topics": "*"}), "x"));
        assert!(!claim_grants(&json!([]), "x"));
        assert!(!claim_grants(&json!(""), "x"));
    }

    #[test]
    fn hostile_claims_are_bounded() {
        let many: Vec<String> = (0..=MAX_PATTERNS).map(|i| format!("t{i}")).collect();
        assert!(
            !claim_grants(&json!(many), "t0"),
            "too many patterns grant nothing"
        );
        let long = format!("{}*", "a".repeat(MAX_PATTERN_LEN));
        assert!(!pattern_grants(&long, &"a".repeat(2 * MAX_PATTERN_LEN)));
        // Worst-case backtracking stays fast on a long topic.
        let pattern = "*a".repeat(MAX_PATTERN_LEN / 2);
        let topic = "a".repeat(10_000) + "b";
        assert!(!pattern_grants(&pattern, &topic));
    }
}
