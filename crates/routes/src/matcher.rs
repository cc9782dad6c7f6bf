//! Matching one request path against one route's pattern, with the capture
//! checks that keep hostile input away from topics and upstream URLs.

use percent_encoding::percent_decode_str;
use sse_gateway_config::{RouteConfig, Segment};

use crate::table::Captures;

/// Request paths longer than this (in bytes, query excluded) match no route.
pub const MAX_PATH_LEN: usize = 8 * 1024;

/// The request path split into raw segments, or `None` when it cannot match
/// any route (no leading `/`, or too long). The query and fragment are
/// dropped first.
pub(crate) fn split_path(path: &str) -> Option<Vec<&str>> {
    let end = path.find(['?', '#']).unwrap_or(path.len());
    let path = &path[..end];
    if path.len() > MAX_PATH_LEN {
        return None;
    }
    let rest = path.strip_prefix('/')?;
    if rest.is_empty() {
        return Some(Vec::new());
    }
    Some(rest.split('/').collect())
}

/// Matches the raw `segments` against `route`'s path and params; returns
/// the decoded captures in path order.
pub(crate) fn match_route<'r>(route: &'r RouteConfig, segments: &[&str]) -> Option<Captures<'r>> {
    let pattern = route.path.segments();
    let mut captures = Vec::new();
    for (i, part) in pattern.iter().enumerate() {
        match part {
            Segment::Literal(literal) => {
                if segments.get(i) != Some(&literal.as_str()) {
                    return None;
                }
            }
            Segment::Capture(name) => {
                let value = decode_segment(segments.get(i)?)?;
                captures.push((name.as_str(), value));
            }
            Segment::CatchAll(name) => {
                let rest = segments.get(i..).filter(|rest| !rest.is_empty())?;
                let decoded: Option<Vec<String>> = rest.iter().map(|s| decode_segment(s)).collect();
                captures.push((name.as_str(), decoded?.join("/")));
                return check_params(route, captures);
            }
        }
    }
    if segments.len() != pattern.len() {
        return None;
    }
    check_params(route, captures)
}

/// Every capture with a `params` regex must match it as a whole.
fn check_params<'r>(
    route: &'r RouteConfig,
    captures: Vec<(&'r str, String)>,
) -> Option<Captures<'r>> {
    let ok = captures.iter().all(|(name, value)| {
        route
            .params
            .get(*name)
            .is_none_or(|regex| regex.is_match(value))
    });
    ok.then(|| Captures::new(captures))
}

/// Percent-decodes one raw path segment and checks it is safe to use as a
/// capture: not empty, well-formed `%XX` escapes, UTF-8, and after decoding
/// no `/`, no `..`, not `.`, and no control character (CR, LF, NUL, ...).
pub(crate) fn decode_segment(raw: &str) -> Option<String> {
    if raw.is_empty() || !escapes_well_formed(raw) {
        return None;
    }
    let decoded = percent_decode_str(raw).decode_utf8().ok()?;
    let safe = !decoded.is_empty()
        && decoded != "."
        && !decoded.contains('/')
        && !decoded.contains("..")
        && !decoded.chars().any(char::is_control);
    safe.then(|| decoded.into_owned())
}

/// Every `%` starts a `%XX` escape with two hex digits.
fn escapes_well_formed(raw: &str) -> bool {
    let bytes = raw.as_bytes();
    bytes.iter().enumerate().all(|(i, b)| {
        *b != b'%'
            || (bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let cases: &[(&str, Option<&str>)] = &[
            ("AAPL", Some("AAPL")),
            ("a%20b", Some("a b")),
            ("caf%C3%A9", Some("café")),
            ("café", Some("café")),
            ("%41", Some("A")),
            ("a.b", Some("a.b")),
            ("...x", None),
            ("", None),
            ("%2F", None),
            ("a%2fb", None),
            ("..", None),
            ("%2e%2e", None),
            ("%2E%2E", None),
            (".", None),
            ("%2e", None),
            ("a..b", None),
            ("%00", None),
            ("a%0d%0ab", None),
            ("%0A", None),
            ("%09", None),
            ("%7F", None),
            ("%", None),
            ("%4", None),
            ("%zz", None),
            ("a%g1", None),
            ("%C3", None),
            ("%FF%FE", None),
        ];
        for (raw, want) in cases {
            assert_eq!(decode_segment(raw).as_deref(), *want, "segment {raw:?}");
        }
    }
}
