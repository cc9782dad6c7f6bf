//! One path segment at a time: splitting the request path, and the
//! decoding and character checks of a capture under each rule set.

use crate::matcher::{decode_segment, split_path, CaptureRules, MAX_PATH_LEN};

#[test]
fn split_table() {
    let cases: &[(&str, Option<&[&str]>)] = &[
        ("/", Some(&[])),
        ("/a", Some(&["a"])),
        ("/a/b", Some(&["a", "b"])),
        ("/a/", Some(&["a", ""])),
        ("//a", Some(&["", "a"])),
        ("/a?x=/b", Some(&["a"])),
        ("/a#frag", Some(&["a"])),
        ("/?", Some(&[])),
        ("", None),
        ("a/b", None),
        ("*", None),
        ("http://h/a", None),
    ];
    for (path, want) in cases {
        assert_eq!(split_path(path).as_deref(), *want, "path {path:?}");
    }
    assert_eq!(split_path(&format!("/{}", "a".repeat(MAX_PATH_LEN))), None);
    let long_query = format!("/a?{}", "q".repeat(MAX_PATH_LEN * 2));
    assert_eq!(split_path(&long_query).as_deref(), Some(&["a"][..]));
}

#[test]
fn decode_table() {
    // (raw, strict, lenient)
    let cases: &[(&str, Option<&str>, Option<&str>)] = &[
        ("AAPL", Some("AAPL"), Some("AAPL")),
        ("caf%C3%A9", Some("café"), Some("café")),
        ("café", Some("café"), Some("café")),
        ("%41", Some("A"), Some("A")),
        ("a.b", Some("a.b"), Some("a.b")),
        ("...x", None, None),
        ("", None, None),
        ("%2F", None, None),
        ("a%2fb", None, None),
        ("..", None, None),
        ("%2e%2e", None, None),
        ("%2E%2E", None, None),
        (".", None, None),
        ("%2e", None, None),
        ("a..b", None, None),
        ("%00", None, None),
        ("a%0d%0ab", None, None),
        ("%0A", None, None),
        ("%09", None, None),
        ("%7F", None, None),
        ("%", None, None),
        ("%4", None, None),
        ("%zz", None, None),
        ("a%g1", None, None),
        ("%C3", None, None),
        ("%FF%FE", None, None),
        // Whitespace (Unicode White_Space): refused unless lenient.
        ("a%20b", None, Some("a b")),
        ("a b", None, Some("a b")),
        ("a%C2%A0b", None, Some("a\u{a0}b")),
        ("%E1%9A%80", None, Some("\u{1680}")),
        ("a%E2%80%80", None, Some("a\u{2000}")),
        ("a%E2%80%8A", None, Some("a\u{200a}")),
        ("%E2%80%A8", None, Some("\u{2028}")),
        ("%E2%80%A9", None, Some("\u{2029}")),
        ("%E2%80%AF", None, Some("\u{202f}")),
        ("%E2%81%9F", None, Some("\u{205f}")),
        ("a%E3%80%80", None, Some("a\u{3000}")),
        // Format characters (general category Cf): refused unless lenient.
        ("%E2%80%AE", None, Some("\u{202e}")),
        ("evil\u{202e}gpj.exe", None, Some("evil\u{202e}gpj.exe")),
        ("a%E2%80%8Bb", None, Some("a\u{200b}b")),
        ("a\u{200b}b", None, Some("a\u{200b}b")),
        ("%C2%AD", None, Some("\u{ad}")),
        ("%D8%80", None, Some("\u{600}")),
        ("%D8%9C", None, Some("\u{61c}")),
        ("%E2%80%8E", None, Some("\u{200e}")),
        ("%E2%81%A0", None, Some("\u{2060}")),
        ("%E2%81%A6", None, Some("\u{2066}")),
        ("%EF%BB%BF", None, Some("\u{feff}")),
        ("%EF%BF%B9", None, Some("\u{fff9}")),
        ("%F0%91%82%BD", None, Some("\u{110bd}")),
        ("%F0%9D%85%B3", None, Some("\u{1d173}")),
        ("%F3%A0%80%81", None, Some("\u{e0001}")),
        ("%F3%A0%81%BF", None, Some("\u{e007f}")),
        // Neither: visible non-ASCII letters and symbols stay accepted.
        ("%E2%80%90", Some("\u{2010}"), Some("\u{2010}")),
        ("%E2%9C%93", Some("\u{2713}"), Some("\u{2713}")),
        ("日本", Some("日本"), Some("日本")),
    ];
    let mut failures = Vec::new();
    for (raw, strict, lenient) in cases {
        let got = (
            decode_segment(raw, CaptureRules::Strict),
            decode_segment(raw, CaptureRules::Lenient),
        );
        let want = (strict.map(str::to_owned), lenient.map(str::to_owned));
        if got != want {
            failures.push(format!("{raw:?}: want {want:?}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every character in the ranges the hardening issue lists is refused
/// by the strict rules.
#[test]
fn listed_whitespace_and_format_ranges_are_refused() {
    let ranges: &[(u32, u32)] = &[
        (0x20, 0x20),
        (0xA0, 0xA0),
        (0x1680, 0x1680),
        (0x2000, 0x200A),
        (0x2028, 0x2029),
        (0x202F, 0x202F),
        (0x205F, 0x205F),
        (0x3000, 0x3000),
        (0xAD, 0xAD),
        (0x600, 0x605),
        (0x61C, 0x61C),
        (0x6DD, 0x6DD),
        (0x70F, 0x70F),
        (0x180E, 0x180E),
        (0x200B, 0x200F),
        (0x202A, 0x202E),
        (0x2060, 0x2064),
        (0x2066, 0x206F),
        (0xFEFF, 0xFEFF),
        (0xFFF9, 0xFFFB),
        (0x110BD, 0x110BD),
        (0x1BCA0, 0x1BCA3),
        (0x1D173, 0x1D17A),
        (0xE0001, 0xE0001),
        (0xE0020, 0xE007F),
    ];
    for &(first, last) in ranges {
        for c in (first..=last).filter_map(char::from_u32) {
            let raw = format!("a{c}b");
            assert_eq!(
                decode_segment(&raw, CaptureRules::Strict),
                None,
                "U+{:04X}",
                u32::from(c)
            );
            assert!(decode_segment(&raw, CaptureRules::Lenient).is_some());
        }
    }
}
