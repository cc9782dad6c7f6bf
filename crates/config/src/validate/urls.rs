//! Upstream and proxy URLs: http(s), with a host, and for fan-out routes a
//! template whose `{name}` references can never reach the scheme, the host
//! or the port.

use super::check::expand;
use super::topic::template;
use crate::diag::Diag;
use crate::read::Text;
use crate::values::env::EnvSource;
use crate::values::path_pattern::PathPattern;
use crate::values::template::{Template, TemplatePart};

/// Two capture values that differ in every way a URL parser could care
/// about (length, a `-`, a digit), both unreserved so that they are
/// inserted as they are.
const SAMPLES: [&str; 2] = ["a", "b-1"];

const AUTHORITY_WRITTEN_OUT: &str = "the URL's scheme, host and port must be written out: \
     `{name}` references may only appear in its path or query";

/// `upstream.url`: `${VAR}` expanded, then a template over the captures that
/// must be an http(s) URL whose scheme, host and port no capture can change.
///
/// Two checks, so that neither a parser quirk nor a reading of the text can
/// let a capture into the authority:
///
/// 1. The literal text before the first reference holds `://` and then a
///    complete, non-empty authority ended by `/` or `?`. This refuses
///    `{s}://h/`, `http:/{h}/x` (which the URL parser would read as
///    `http://…`), `http://h:{p}/`, `http://{u}@h/` and `http://{h}.example/`.
/// 2. The template rendered with two different sample values parses to the
///    same scheme, host and port both times (this refuses `http:///{h}`,
///    whose empty authority the parser skips).
pub(super) fn upstream_url(
    diag: &mut Diag,
    text: &Text,
    path: Option<&PathPattern>,
    env: &dyn EnvSource,
) -> Option<Template> {
    let expanded = expand(diag, text, env)?;
    let template = template(diag, text, &expanded, path)?;
    let has_refs = template.references().next().is_some();
    if has_refs && !authority_before_first_ref(&template) {
        diag.at(text, AUTHORITY_WRITTEN_OUT);
        return None;
    }
    let [first, second] = SAMPLES.map(|sample| template.render(|_| Some(sample)));
    let url = check_url(diag, text, &first)?;
    if has_refs {
        let same_origin = url::Url::parse(&second).is_ok_and(|other| {
            other.scheme() == url.scheme()
                && other.host() == url.host()
                && other.port_or_known_default() == url.port_or_known_default()
        });
        if !same_origin {
            diag.at(text, AUTHORITY_WRITTEN_OUT);
            return None;
        }
    }
    Some(template)
}

/// True when the literal text before the first reference is
/// `SCHEME://AUTHORITY` followed by `/` or `?`, with a non-empty authority.
fn authority_before_first_ref(template: &Template) -> bool {
    let mut prefix = String::new();
    for part in template.parts() {
        match part {
            TemplatePart::Literal(text) => prefix.push_str(text),
            TemplatePart::Ref(_) => break,
        }
    }
    let Some((scheme, rest)) = prefix.split_once("://") else {
        return false;
    };
    let scheme_ok = !scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    scheme_ok && rest.find(['/', '?']).is_some_and(|end| end > 0)
}

/// An http(s) URL with a host and no fragment.
pub(super) fn check_url(diag: &mut Diag, at: &Text, text: &str) -> Option<url::Url> {
    let url = match url::Url::parse(text) {
        Ok(url) => url,
        Err(e) => {
            diag.at(at, format!("invalid URL `{text}`: {e}"));
            return None;
        }
    };
    let problem = if !matches!(url.scheme(), "http" | "https") {
        Some(format!(
            "URL scheme must be http or https, not `{}`",
            url.scheme()
        ))
    } else if url.host_str().is_none_or(str::is_empty) {
        Some("URL has no host".to_owned())
    } else if url.fragment().is_some() {
        Some("URL must not have a #fragment".to_owned())
    } else {
        None
    };
    match problem {
        Some(message) => {
            diag.at(at, message);
            None
        }
        None => Some(url),
    }
}
