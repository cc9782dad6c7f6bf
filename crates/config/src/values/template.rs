//! Templates for topic names and upstream URLs: literal text with `{name}`
//! references to path captures, as in `prices/{symbol}` or
//! `http://127.0.0.1:9000/stream/{symbol}`.
//!
//! `{` and `}` always delimit a reference; there is no escape for them.

use std::fmt;

/// A parsed template: literal parts and `{name}` references, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    parts: Vec<TemplatePart>,
}

/// One piece of a [`Template`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplatePart {
    /// Text copied as it is.
    Literal(String),
    /// `{name}`: replaced by the value of the capture `name`.
    Ref(String),
}

/// Why a template did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// `{` without a matching `}`.
    #[error("unclosed `{{` in `{0}`")]
    Unclosed(String),
    /// `}` without an opening `{`.
    #[error("unmatched `}}` in `{0}`")]
    Unmatched(String),
    /// `{}` or a name that is not an identifier.
    #[error("invalid reference `{{{0}}}`: use a capture name such as {{symbol}}")]
    BadName(String),
}

// === impl Template ===

impl Template {
    /// Parses literal text with `{name}` references.
    pub fn parse(source: &str) -> Result<Self, TemplateError> {
        let mut parts = Vec::new();
        let mut rest = source;
        while !rest.is_empty() {
            let open = rest.find('{');
            let close = rest.find('}');
            match (open, close) {
                (_, Some(c)) if open.is_none_or(|o| c < o) => {
                    return Err(TemplateError::Unmatched(source.to_owned()))
                }
                (Some(o), _) => {
                    if o > 0 {
                        parts.push(TemplatePart::Literal(rest[..o].to_owned()));
                    }
                    let body = &rest[o + 1..];
                    let end = body
                        .find('}')
                        .ok_or_else(|| TemplateError::Unclosed(source.to_owned()))?;
                    let name = &body[..end];
                    if name.contains('{') {
                        return Err(TemplateError::Unclosed(source.to_owned()));
                    }
                    if !crate::values::env::is_var_name(name) {
                        return Err(TemplateError::BadName(name.to_owned()));
                    }
                    parts.push(TemplatePart::Ref(name.to_owned()));
                    rest = &body[end + 1..];
                }
                (None, _) => {
                    parts.push(TemplatePart::Literal(rest.to_owned()));
                    rest = "";
                }
            }
        }
        Ok(Self {
            source: source.to_owned(),
            parts,
        })
    }

    /// Builds a template from already-parsed parts (used for the default
    /// topic, which mirrors the route path).
    pub(crate) fn from_parts(parts: Vec<TemplatePart>) -> Self {
        let source = parts
            .iter()
            .map(|p| match p {
                TemplatePart::Literal(text) => text.clone(),
                TemplatePart::Ref(name) => format!("{{{name}}}"),
            })
            .collect();
        Self { source, parts }
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The parts, in order.
    pub fn parts(&self) -> &[TemplatePart] {
        &self.parts
    }

    /// The names referenced, in order (with repeats).
    pub fn references(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            TemplatePart::Ref(name) => Some(name.as_str()),
            TemplatePart::Literal(_) => None,
        })
    }

    /// Fills the template: each reference is replaced by what `value` returns
    /// for its name (nothing when it returns `None`).
    pub fn render<'a>(&self, mut value: impl FnMut(&str) -> Option<&'a str>) -> String {
        let mut out = String::with_capacity(self.source.len());
        for part in &self.parts {
            match part {
                TemplatePart::Literal(text) => out.push_str(text),
                TemplatePart::Ref(name) => out.push_str(value(name).unwrap_or_default()),
            }
        }
        out
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TemplateError as E;
    use TemplatePart::{Literal, Ref};

    #[test]
    fn table() {
        let l = |s: &str| Literal(s.into());
        let r = |s: &str| Ref(s.into());
        let cases: Vec<(&str, Result<Vec<TemplatePart>, TemplateError>)> = vec![
            ("", Ok(vec![])),
            ("plain", Ok(vec![l("plain")])),
            ("prices/{symbol}", Ok(vec![l("prices/"), r("symbol")])),
            ("{a}{b}", Ok(vec![r("a"), r("b")])),
            (
                "http://h:1/s/{x}?q={y}",
                Ok(vec![l("http://h:1/s/"), r("x"), l("?q="), r("y")]),
            ),
            ("{a", Err(E::Unclosed("{a".into()))),
            ("x{a{b}", Err(E::Unclosed("x{a{b}".into()))),
            ("a}", Err(E::Unmatched("a}".into()))),
            ("}{a}", Err(E::Unmatched("}{a}".into()))),
            ("{}", Err(E::BadName(String::new()))),
            ("{a-b}", Err(E::BadName("a-b".into()))),
            ("{*rest}", Err(E::BadName("*rest".into()))),
        ];
        for (input, want) in cases {
            let got = Template::parse(input).map(|t| t.parts().to_vec());
            assert_eq!(got, want, "input {input:?}");
        }
    }

    #[test]
    fn render_and_references() {
        let t = Template::parse("a/{x}/{y}/{x}").unwrap();
        assert_eq!(t.references().collect::<Vec<_>>(), ["x", "y", "x"]);
        let got = t.render(|name| match name {
            "x" => Some("1"),
            _ => None,
        });
        assert_eq!(got, "a/1//1");
        let rebuilt = Template::from_parts(t.parts().to_vec());
        assert_eq!(rebuilt, t);
    }
}
