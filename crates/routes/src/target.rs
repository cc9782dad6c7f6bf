//! Filling a fan-out route's topic and upstream URL templates from the
//! decoded captures.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sse_gateway_config::{Template, TemplatePart};

use crate::table::Captures;

/// Everything but RFC 3986 `unreserved` (`A-Z a-z 0-9 - . _ ~`) is encoded,
/// so a capture can never add a path separator, query or fragment.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The topic: each `{name}` replaced by the decoded capture text.
pub(crate) fn fill_topic(template: &Template, captures: &Captures<'_>) -> String {
    template.render(|name| captures.get(name))
}

/// The upstream URL: each `{name}` replaced by the capture percent-encoded
/// as a path segment; a catch-all's segments are encoded one by one and
/// joined with `/`.
pub(crate) fn fill_url(template: &Template, captures: &Captures<'_>) -> String {
    let mut out = String::with_capacity(template.as_str().len() + 16);
    for part in template.parts() {
        match part {
            TemplatePart::Literal(text) => out.push_str(text),
            TemplatePart::Ref(name) => {
                let value = captures.get(name).unwrap_or_default();
                for (i, segment) in value.split('/').enumerate() {
                    if i > 0 {
                        out.push('/');
                    }
                    out.extend(utf8_percent_encode(segment, SEGMENT));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_table() {
        let template = Template::parse("http://h/s/{v}?q={v}").unwrap();
        let cases: &[(&str, &str)] = &[
            ("AAPL", "http://h/s/AAPL?q=AAPL"),
            ("a b", "http://h/s/a%20b?q=a%20b"),
            (
                "a?b#c&d=e",
                "http://h/s/a%3Fb%23c%26d%3De?q=a%3Fb%23c%26d%3De",
            ),
            ("café", "http://h/s/caf%C3%A9?q=caf%C3%A9"),
            ("x/y", "http://h/s/x/y?q=x/y"),
            ("%41", "http://h/s/%2541?q=%2541"),
            ("-._~", "http://h/s/-._~?q=-._~"),
        ];
        for (value, want) in cases {
            let captures = Captures::new(vec![("v", (*value).to_owned())]);
            assert_eq!(fill_url(&template, &captures), *want, "value {value:?}");
            assert_eq!(fill_topic(&template, &captures).matches(value).count(), 2);
        }
    }
}
