//! Finding one cookie in a request's `Cookie` headers (RFC 6265 §5.4 as
//! browsers send it, read leniently):
//!
//! * every `Cookie` header counts (HTTP/2 clients send one per cookie);
//! * pairs are separated by `;`, spaces and tabs around names and values
//!   are ignored, a pair without `=` is skipped;
//! * names compare exactly (cookie names are case-sensitive);
//! * a value in double quotes is unquoted;
//! * the first non-empty match wins (browsers send the most specific path
//!   first);
//! * a header that is not UTF-8 is skipped.
//!
//! Work is linear in the headers' size and nothing is allocated.

use http::header::COOKIE;
use http::HeaderMap;

/// The value of the first non-empty cookie called `name`, if any.
pub fn find_cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| std::str::from_utf8(value.as_bytes()).ok())
        .find_map(|line| find_in_line(line, name))
}

/// The value of `name` in one `Cookie` header line.
fn find_in_line<'l>(line: &'l str, name: &str) -> Option<&'l str> {
    line.split(';').find_map(|pair| {
        let (n, v) = pair.split_once('=')?;
        if trim(n) != name {
            return None;
        }
        let v = trim(v);
        let v = v
            .strip_prefix('"')
            .and_then(|inner| inner.strip_suffix('"'))
            .unwrap_or(v);
        (!v.is_empty()).then_some(v)
    })
}

fn trim(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn with(lines: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for line in lines {
            map.append(COOKIE, HeaderValue::from_str(line).unwrap());
        }
        map
    }

    #[test]
    fn parsing_table() {
        let cases: &[(&[&str], Option<&str>)] = &[
            (&["session=abc"], Some("abc")),
            (&["a=1; session=abc; b=2"], Some("abc")),
            (&["a=1;session=abc;b=2"], Some("abc")),
            (&["  session  =  abc  ; b=2"], Some("abc")),
            (&["a=1;\tsession=abc"], Some("abc")),
            (&["session=\"quoted value\""], Some("quoted value")),
            (&["session=\"\""], None),
            (&["session=\"unterminated"], Some("\"unterminated")),
            (&["session=a=b=c"], Some("a=b=c")),
            (&["a=1", "session=second-header"], Some("second-header")),
            (&["session=first", "session=second"], Some("first")),
            (&["session=; session=later"], Some("later")),
            (&["Session=abc"], None),
            (&["xsession=abc; sessionx=def"], None),
            (&["session"], None),
            (&[";;;"], None),
            (&[""], None),
            (&[], None),
        ];
        for (lines, want) in cases {
            assert_eq!(find_cookie(&with(lines), "session"), *want, "{lines:?}");
        }
    }

    #[test]
    fn non_utf8_headers_are_skipped() {
        let mut map = HeaderMap::new();
        map.append(
            COOKIE,
            HeaderValue::from_bytes(b"session=\xff\xfe").unwrap(),
        );
        map.append(COOKIE, HeaderValue::from_static("session=ok"));
        assert_eq!(find_cookie(&map, "session"), Some("ok"));
    }

    #[test]
    fn hostile_sizes_stay_linear() {
        // 20,000 cookies in one header, the wanted one last.
        let mut line: String = (0..20_000).map(|i| format!("c{i}=v{i}; ")).collect();
        line.push_str("session=found");
        let map = with(&[&line]);
        assert_eq!(find_cookie(&map, "session"), Some("found"));
        // 1,000 headers, none of them the cookie.
        let lines: Vec<String> = (0..1_000).map(|i| format!("c{i}=v")).collect();
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        assert_eq!(find_cookie(&with(&refs), "session"), None);
        // One very long value.
        let long = format!("session={}", "x".repeat(1 << 20));
        assert_eq!(
            find_cookie(&with(&[&long]), "session").map(str::len),
            Some(1 << 20)
        );
    }
}
