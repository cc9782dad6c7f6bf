//! Route path patterns: `/prices/{symbol}`, `/feeds/{*rest}`, `/status`.
//!
//! A pattern starts with `/` and is split on `/` into segments. Each segment
//! is either a literal (path characters, no `{`, `}` or `%`), a capture
//! `{name}` that matches exactly one segment, or a catch-all `{*name}` that
//! matches the rest of the path and may only be the last segment. A capture
//! is always a whole segment. Names are `[A-Za-z_][A-Za-z0-9_]*` and unique.
//! Empty segments (`//`, or a trailing `/`) are not allowed, except that the
//! pattern `/` on its own matches the root.

use std::fmt;

/// A parsed route path pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPattern {
    source: String,
    segments: Vec<Segment>,
}

/// One `/`-separated segment of a [`PathPattern`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// Matches exactly this text (compared with the raw request segment).
    Literal(String),
    /// `{name}`: matches one non-empty segment.
    Capture(String),
    /// `{*name}`: matches the rest of the path (one or more segments); always last.
    CatchAll(String),
}

/// Why a path pattern did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathPatternError {
    /// The pattern does not start with `/`.
    #[error("a path must start with `/`")]
    NoLeadingSlash,
    /// `//` or a trailing `/`.
    #[error("empty path segment (`//` or a trailing `/`) in `{0}`")]
    EmptySegment(String),
    /// `{` or `}` somewhere other than around a whole segment.
    #[error(
        "`{{` and `}}` must enclose a whole path segment, as in /prices/{{symbol}}; found `{0}`"
    )]
    MisplacedBrace(String),
    /// A capture name that is not an identifier.
    #[error("invalid capture name `{0}`: use letters, digits and `_`, not starting with a digit")]
    BadName(String),
    /// Two captures with the same name.
    #[error("capture `{0}` appears twice")]
    DuplicateName(String),
    /// `{*name}` that is not the last segment.
    #[error("catch-all `{{*{0}}}` must be the last segment")]
    CatchAllNotLast(String),
    /// A literal with a character that is not allowed unencoded in a path.
    #[error("invalid character {0:?} in path segment `{1}`")]
    BadChar(char, String),
}

// === impl PathPattern ===

impl PathPattern {
    /// Parses a pattern (see the module docs for the rules).
    pub fn parse(source: &str) -> Result<Self, PathPatternError> {
        let rest = source
            .strip_prefix('/')
            .ok_or(PathPatternError::NoLeadingSlash)?;
        let mut segments = Vec::new();
        if !rest.is_empty() {
            let parts: Vec<&str> = rest.split('/').collect();
            for (i, part) in parts.iter().enumerate() {
                let segment = parse_segment(part, source)?;
                if let Segment::CatchAll(name) = &segment {
                    if i + 1 != parts.len() {
                        return Err(PathPatternError::CatchAllNotLast(name.clone()));
                    }
                }
                if let Some(name) = segment.capture_name() {
                    if segments
                        .iter()
                        .any(|s: &Segment| s.capture_name() == Some(name))
                    {
                        return Err(PathPatternError::DuplicateName(name.to_owned()));
                    }
                }
                segments.push(segment);
            }
        }
        Ok(Self {
            source: source.to_owned(),
            segments,
        })
    }

    /// The pattern as written in the file.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The segments after the leading `/` (empty for the root pattern `/`).
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The names of all captures and the catch-all, in path order.
    pub fn capture_names(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(Segment::capture_name)
    }

    /// True when the pattern has a capture or catch-all called `name`.
    pub fn has_capture(&self, name: &str) -> bool {
        self.capture_names().any(|n| n == name)
    }

    /// True when the last segment is a catch-all.
    pub fn has_catch_all(&self) -> bool {
        matches!(self.segments.last(), Some(Segment::CatchAll(_)))
    }
}

impl fmt::Display for PathPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

// === impl Segment ===

impl Segment {
    /// The capture name, for captures and the catch-all.
    pub fn capture_name(&self) -> Option<&str> {
        match self {
            Segment::Literal(_) => None,
            Segment::Capture(name) | Segment::CatchAll(name) => Some(name),
        }
    }
}

fn parse_segment(part: &str, source: &str) -> Result<Segment, PathPatternError> {
    if part.is_empty() {
        return Err(PathPatternError::EmptySegment(source.to_owned()));
    }
    if let Some(inner) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
        let (name, catch_all) = match inner.strip_prefix('*') {
            Some(name) => (name, true),
            None => (inner, false),
        };
        if name.contains(['{', '}']) {
            return Err(PathPatternError::MisplacedBrace(part.to_owned()));
        }
        if !crate::values::env::is_var_name(name) {
            return Err(PathPatternError::BadName(name.to_owned()));
        }
        return Ok(if catch_all {
            Segment::CatchAll(name.to_owned())
        } else {
            Segment::Capture(name.to_owned())
        });
    }
    if part.contains(['{', '}']) {
        return Err(PathPatternError::MisplacedBrace(part.to_owned()));
    }
    if let Some(c) = part.chars().find(|c| !is_path_char(*c)) {
        return Err(PathPatternError::BadChar(c, part.to_owned()));
    }
    Ok(Segment::Literal(part.to_owned()))
}

/// RFC 3986 `pchar` without `%` (literals are matched unencoded).
fn is_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=:@".contains(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use PathPatternError as E;
    use Segment::{Capture, CatchAll, Literal};

    fn lit(s: &str) -> Segment {
        Literal(s.into())
    }

    #[test]
    fn table() {
        let cases: Vec<(&str, Result<Vec<Segment>, PathPatternError>)> = vec![
            ("/", Ok(vec![])),
            ("/status", Ok(vec![lit("status")])),
            (
                "/prices/{symbol}",
                Ok(vec![lit("prices"), Capture("symbol".into())]),
            ),
            (
                "/feeds/{*rest}",
                Ok(vec![lit("feeds"), CatchAll("rest".into())]),
            ),
            (
                "/a/{x}/b/{y}",
                Ok(vec![
                    lit("a"),
                    Capture("x".into()),
                    lit("b"),
                    Capture("y".into()),
                ]),
            ),
            ("/{*all}", Ok(vec![CatchAll("all".into())])),
            ("/v1.0/~me", Ok(vec![lit("v1.0"), lit("~me")])),
            ("prices", Err(E::NoLeadingSlash)),
            ("", Err(E::NoLeadingSlash)),
            ("/prices/", Err(E::EmptySegment("/prices/".into()))),
            ("//x", Err(E::EmptySegment("//x".into()))),
            ("/p-{id}", Err(E::MisplacedBrace("p-{id}".into()))),
            ("/{id}x", Err(E::MisplacedBrace("{id}x".into()))),
            ("/{a{b}", Err(E::MisplacedBrace("{a{b}".into()))),
            ("/x}", Err(E::MisplacedBrace("x}".into()))),
            ("/{}", Err(E::BadName(String::new()))),
            ("/{1a}", Err(E::BadName("1a".into()))),
            ("/{*}", Err(E::BadName(String::new()))),
            ("/{a}/{a}", Err(E::DuplicateName("a".into()))),
            ("/{a}/{*a}", Err(E::DuplicateName("a".into()))),
            ("/{*rest}/x", Err(E::CatchAllNotLast("rest".into()))),
            ("/a b", Err(E::BadChar(' ', "a b".into()))),
            ("/a%20b", Err(E::BadChar('%', "a%20b".into()))),
            ("/a?b", Err(E::BadChar('?', "a?b".into()))),
        ];
        for (input, want) in cases {
            let got = PathPattern::parse(input).map(|p| p.segments().to_vec());
            assert_eq!(got, want, "input {input:?}");
        }
    }

    #[test]
    fn accessors() {
        let p = PathPattern::parse("/a/{x}/{*rest}").unwrap();
        assert_eq!(p.as_str(), "/a/{x}/{*rest}");
        assert_eq!(p.capture_names().collect::<Vec<_>>(), ["x", "rest"]);
        assert!(p.has_capture("rest"));
        assert!(!p.has_capture("a"));
        assert!(p.has_catch_all());
        assert_eq!(p.to_string(), "/a/{x}/{*rest}");
    }
}
