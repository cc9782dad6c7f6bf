//! CORS origin patterns: `*`, an exact origin `scheme://host[:port]`, or a
//! wildcard subdomain `scheme://*.domain[:port]`.
//!
//! Origins are normalised the way browsers send them: scheme and host in
//! lower case, and the default port (80 for http, 443 for https) dropped.

use std::fmt;

/// One entry of `cors.origins`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginPattern {
    /// `*`: any origin.
    Any,
    /// Exactly this origin, normalised (`https://app.example.com`).
    Exact(String),
    /// `scheme://*.domain[:port]`: any strict subdomain of `domain` (at any
    /// depth), with this scheme and port; `domain` itself does not match.
    Subdomains {
        /// `http`, `https`, ...
        scheme: String,
        /// The parent domain, without the leading `*.`.
        domain: String,
        /// The explicit non-default port, if any.
        port: Option<u16>,
    },
}

/// Why an origin pattern did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OriginError {
    /// No `scheme://`.
    #[error("`{0}` is not an origin: write scheme://host[:port], e.g. https://app.example.com")]
    NoScheme(String),
    /// A path, query or fragment after the host.
    #[error("an origin has no path, query or fragment: drop `{0}`")]
    HasPath(String),
    /// `user@` before the host.
    #[error("an origin has no user info")]
    UserInfo,
    /// The host is empty or has invalid characters.
    #[error("invalid host `{0}` in origin")]
    BadHost(String),
    /// The port is not a number from 1 to 65535.
    #[error("invalid port `{0}` in origin")]
    BadPort(String),
    /// `*` somewhere other than a leading `*.` label of the host.
    #[error("`*` is only allowed alone or as a leading `*.` label, as in https://*.example.com")]
    MisplacedWildcard,
}

// === impl OriginPattern ===

impl OriginPattern {
    /// Parses one pattern.
    pub fn parse(text: &str) -> Result<Self, OriginError> {
        if text == "*" {
            return Ok(Self::Any);
        }
        let (scheme, rest) = text
            .split_once("://")
            .filter(|(s, _)| is_scheme(s))
            .ok_or_else(|| OriginError::NoScheme(text.to_owned()))?;
        let scheme = scheme.to_ascii_lowercase();
        if let Some(at) = rest.find(['/', '?', '#']) {
            return Err(OriginError::HasPath(rest[at..].to_owned()));
        }
        if rest.contains('@') {
            return Err(OriginError::UserInfo);
        }
        let (host, port) = split_port(rest)?;
        let port = port.filter(|p| Some(*p) != default_port(&scheme));
        let host = host.to_ascii_lowercase();
        if let Some(domain) = host.strip_prefix("*.") {
            check_host(domain)?;
            return Ok(Self::Subdomains {
                scheme,
                domain: domain.to_owned(),
                port,
            });
        }
        check_host(&host)?;
        Ok(Self::Exact(format_origin(&scheme, &host, port)))
    }

    /// True when the request's `Origin` header value is allowed by this
    /// pattern. The header is compared after the same normalisation.
    pub fn matches(&self, origin: &str) -> bool {
        let Ok(parsed) = Self::parse(origin) else {
            return false;
        };
        match (self, parsed) {
            (Self::Any, _) => true,
            (Self::Exact(want), Self::Exact(got)) => *want == got,
            (
                Self::Subdomains {
                    scheme,
                    domain,
                    port,
                },
                Self::Exact(got),
            ) => {
                let prefix = format!("{scheme}://");
                let Some(rest) = got.strip_prefix(&prefix) else {
                    return false;
                };
                let Ok((host, got_port)) = split_port(rest) else {
                    return false;
                };
                let got_port = got_port.filter(|p| Some(*p) != default_port(scheme));
                got_port == *port
                    && host
                        .strip_suffix(domain.as_str())
                        .and_then(|label| label.strip_suffix('.'))
                        .is_some_and(|label| !label.is_empty())
            }
            _ => false,
        }
    }
}

impl fmt::Display for OriginPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("*"),
            Self::Exact(origin) => f.write_str(origin),
            Self::Subdomains {
                scheme,
                domain,
                port,
            } => f.write_str(&format_origin(scheme, &format!("*.{domain}"), *port)),
        }
    }
}

fn format_origin(scheme: &str, host: &str, port: Option<u16>) -> String {
    match port {
        Some(port) => format!("{scheme}://{host}:{port}"),
        None => format!("{scheme}://{host}"),
    }
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        _ => None,
    }
}

/// RFC 3986 scheme: a letter, then letters, digits, `+`, `-`, `.`.
fn is_scheme(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
}

/// Splits `host[:port]` (the host may be an IPv6 literal in brackets).
fn split_port(authority: &str) -> Result<(&str, Option<u16>), OriginError> {
    let colon = if authority.starts_with('[') {
        authority
            .find(']')
            .map(|end| end + 1)
            .filter(|&i| i < authority.len())
    } else {
        authority.rfind(':')
    };
    let Some(colon) = colon else {
        return Ok((authority, None));
    };
    let (host, port) = (&authority[..colon], &authority[colon + 1..]);
    if authority.starts_with('[') && !authority[colon..].starts_with(':') {
        return Err(OriginError::BadHost(authority.to_owned()));
    }
    let bad_port = || OriginError::BadPort(port.to_owned());
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad_port());
    }
    match port.parse::<u16>() {
        Ok(0) | Err(_) => Err(bad_port()),
        Ok(p) => Ok((host, Some(p))),
    }
}

/// A DNS name or IP literal: labels of letters, digits and `-`.
fn check_host(host: &str) -> Result<(), OriginError> {
    if host.contains('*') {
        return Err(OriginError::MisplacedWildcard);
    }
    let ok = if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        inner.parse::<std::net::Ipv6Addr>().is_ok()
    } else {
        !host.is_empty()
            && host.split('.').all(|label| {
                !label.is_empty()
                    && !label.starts_with('-')
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            })
    };
    if ok {
        Ok(())
    } else {
        Err(OriginError::BadHost(host.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use OriginError as E;

    fn sub(scheme: &str, domain: &str, port: Option<u16>) -> OriginPattern {
        OriginPattern::Subdomains {
            scheme: scheme.into(),
            domain: domain.into(),
            port,
        }
    }

    fn exact(s: &str) -> OriginPattern {
        OriginPattern::Exact(s.into())
    }

    #[test]
    fn parse_table() {
        let cases: Vec<(&str, Result<OriginPattern, OriginError>)> = vec![
            ("*", Ok(OriginPattern::Any)),
            (
                "https://app.example.com",
                Ok(exact("https://app.example.com")),
            ),
            (
                "HTTPS://App.Example.COM",
                Ok(exact("https://app.example.com")),
            ),
            (
                "https://app.example.com:443",
                Ok(exact("https://app.example.com")),
            ),
            ("http://localhost:3000", Ok(exact("http://localhost:3000"))),
            ("http://127.0.0.1:8080", Ok(exact("http://127.0.0.1:8080"))),
            ("http://[::1]:8080", Ok(exact("http://[::1]:8080"))),
            ("http://[::1]", Ok(exact("http://[::1]"))),
            (
                "https://*.example.com",
                Ok(sub("https", "example.com", None)),
            ),
            (
                "http://*.example.com:8080",
                Ok(sub("http", "example.com", Some(8080))),
            ),
            (
                "app.example.com",
                Err(E::NoScheme("app.example.com".into())),
            ),
            ("://x", Err(E::NoScheme("://x".into()))),
            ("https://app.example.com/", Err(E::HasPath("/".into()))),
            ("https://a.com/x?y", Err(E::HasPath("/x?y".into()))),
            ("https://u@a.com", Err(E::UserInfo)),
            ("https://", Err(E::BadHost(String::new()))),
            ("https://a..com", Err(E::BadHost("a..com".into()))),
            ("https://a_b.com", Err(E::BadHost("a_b.com".into()))),
            ("https://a.com:0", Err(E::BadPort("0".into()))),
            ("https://a.com:99999", Err(E::BadPort("99999".into()))),
            ("https://a.com:", Err(E::BadPort(String::new()))),
            ("https://a.com:x", Err(E::BadPort("x".into()))),
            ("https://a.*.com", Err(E::MisplacedWildcard)),
            ("https://*", Err(E::MisplacedWildcard)),
            ("https://*.*.com", Err(E::MisplacedWildcard)),
        ];
        for (input, want) in cases {
            assert_eq!(OriginPattern::parse(input), want, "input {input:?}");
        }
    }

    #[test]
    fn match_table() {
        let cases: &[(&str, &str, bool)] = &[
            ("*", "https://anything.test", true),
            ("*", "null", false),
            ("https://app.example.com", "https://app.example.com", true),
            (
                "https://app.example.com",
                "https://APP.example.com:443",
                true,
            ),
            ("https://app.example.com", "http://app.example.com", false),
            (
                "https://app.example.com",
                "https://app.example.com:8443",
                false,
            ),
            (
                "https://app.example.com",
                "https://app.example.com.evil.test",
                false,
            ),
            ("https://*.example.com", "https://a.example.com", true),
            ("https://*.example.com", "https://a.b.example.com", true),
            ("https://*.example.com", "https://example.com", false),
            ("https://*.example.com", "https://evilexample.com", false),
            ("https://*.example.com", "https://a.example.com:444", false),
            ("https://*.example.com", "http://a.example.com", false),
            (
                "http://*.example.com:8080",
                "http://a.example.com:8080",
                true,
            ),
            ("http://*.example.com:8080", "http://a.example.com", false),
        ];
        for (pattern, origin, want) in cases {
            let p = OriginPattern::parse(pattern).unwrap();
            assert_eq!(p.matches(origin), *want, "{pattern} vs {origin}");
        }
    }

    #[test]
    fn display_round_trips() {
        for s in ["*", "https://a.com", "http://*.a.com:81"] {
            assert_eq!(OriginPattern::parse(s).unwrap().to_string(), s);
        }
    }
}
