//! Matching one request path against one route's pattern, with the capture
//! checks that keep hostile input away from topics and upstream URLs.

use icu_properties::props::GeneralCategory;
use icu_properties::CodePointMapData;
use percent_encoding::percent_decode_str;
use sse_gateway_config::{RouteConfig, Segment};

use crate::table::Captures;

/// Request paths longer than this (in bytes, query excluded) match no route.
pub const MAX_PATH_LEN: usize = 8 * 1024;

/// Which decoded characters a capture may hold beyond the checks every
/// route makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CaptureRules {
    /// Fan-out routes: no Unicode White_Space and no format character
    /// (general category Cf) either.
    Strict,
    /// Proxy routes, and fan-out routes with `lenient_captures`.
    Lenient,
}

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
    let rules = CaptureRules::for_route(route);
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
                let value = decode_segment(segments.get(i)?, rules)?;
                captures.push((name.as_str(), value));
            }
            Segment::CatchAll(name) => {
                let rest = segments.get(i..).filter(|rest| !rest.is_empty())?;
                let decoded: Option<Vec<String>> =
                    rest.iter().map(|s| decode_segment(s, rules)).collect();
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
/// no `/`, no `..`, not `.`, and no control character (CR, LF, NUL, ...);
/// under [`CaptureRules::Strict`] no whitespace or format character either.
pub(crate) fn decode_segment(raw: &str, rules: CaptureRules) -> Option<String> {
    if raw.is_empty() || !escapes_well_formed(raw) {
        return None;
    }
    let decoded = percent_decode_str(raw).decode_utf8().ok()?;
    let refused = |c: char| {
        c.is_control() || (rules == CaptureRules::Strict && (c.is_whitespace() || is_format(c)))
    };
    let safe = !decoded.is_empty()
        && decoded != "."
        && !decoded.contains('/')
        && !decoded.contains("..")
        && !decoded.chars().any(refused);
    safe.then(|| decoded.into_owned())
}

/// Unicode general category Cf (format): invisible characters that change
/// how text around them is shown or joined (U+200B ZERO WIDTH SPACE, U+202E
/// RIGHT-TO-LEFT OVERRIDE, U+FEFF, tag characters, ...). Read from ICU4X's
/// compiled Unicode data, which `url` already links for IDNA.
fn is_format(c: char) -> bool {
    // Plain ASCII has no format character; skip the table lookup for it.
    !c.is_ascii() && CodePointMapData::<GeneralCategory>::new().get(c) == GeneralCategory::Format
}

// === impl CaptureRules ===

impl CaptureRules {
    /// Strict for fan-out routes unless they set `lenient_captures`.
    pub(crate) fn for_route(route: &RouteConfig) -> Self {
        if route.fan_out().is_some() && !route.lenient_captures {
            Self::Strict
        } else {
            Self::Lenient
        }
    }
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
