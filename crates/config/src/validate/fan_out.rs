//! A fan-out route: its topic template and its `upstream:` (URL template,
//! headers, CA file), and its topic settings over `defaults:`.

use super::check::{expand, has_control};
use super::route::RouteCtx;
use super::settings::{self, Mode};
use super::topic::{default_topic, template, topic_covers_url, topic_names_one_set_of_values};
use super::urls::upstream_url;
use super::{tls, warnings};
use crate::diag::Diag;
use crate::model::{FanOutRoute, UpstreamConfig};
use crate::read::{MapReader, Text};
use crate::values::env::EnvSource;
use crate::values::path_pattern::PathPattern;
use crate::values::template::Template;
use crate::yaml::Node;

/// What `upstream:` is checked against: the route's path, its topic (as
/// written, and parsed when valid) and the rest of the file.
pub(super) struct UpstreamCheck<'a> {
    path: Option<&'a PathPattern>,
    topic: Option<(&'a Text, &'a Template)>,
    ctx: &'a RouteCtx<'a>,
}

/// The route's topic, `upstream:` (a mapping) and settings.
pub(super) fn fan_out(
    diag: &mut Diag,
    map: &mut MapReader<'_>,
    (upstream, key_path): (&Node, String),
    topic_text: Option<&Text>,
    path: Option<&PathPattern>,
    ctx: &RouteCtx<'_>,
) -> Option<FanOutRoute> {
    let topic = match topic_text {
        Some(text) if text.value.is_empty() => {
            diag.at(text, "a topic template must not be empty");
            None
        }
        Some(text) => template(diag, text, &text.value, path),
        None => path.map(default_topic),
    };
    let check = UpstreamCheck {
        path,
        topic: topic_text.zip(topic.as_ref()),
        ctx,
    };
    let upstream = MapReader::read(diag, upstream, &key_path, |diag, up| {
        self::upstream(diag, up, Some(&check))
    });
    let settings = settings::apply(diag, ctx.defaults, map, Mode::FanOut);
    Some(FanOutRoute {
        topic: topic?,
        upstream: upstream.flatten()?,
        settings,
    })
}

/// `upstream:`. Without `check` (the route's kind is in error) only the
/// YAML types are checked.
pub(super) fn upstream(
    diag: &mut Diag,
    up: &mut MapReader<'_>,
    check: Option<&UpstreamCheck<'_>>,
) -> Option<UpstreamConfig> {
    let url = up.require::<String>(diag, "url");
    let headers_text = up.string_map(diag, "headers");
    let ca_file = up.take::<String>(diag, "ca_file");
    let skip_verify = up.take::<bool>(diag, "insecure_skip_verify");
    if let Some(flag) = skip_verify.as_ref().filter(|flag| flag.value) {
        warnings::skip_verify(diag, flag);
    }
    let check = check?;
    let url = url
        .as_ref()
        .and_then(|text| upstream_url(diag, text, check.path, check.ctx.env));
    let headers = headers(diag, &headers_text, check.ctx.env);
    let ca_file = match &ca_file {
        Some(text) => tls::ca_file(diag, text, check.ctx.base_dir).map(Some),
        None => Some(None),
    };
    if let (Some((text, topic)), Some(url)) = (check.topic, &url) {
        topic_covers_url(diag, text, topic, url);
        if let Some(path) = check.path {
            topic_names_one_set_of_values(diag, text, topic, url, path);
        }
    }
    Some(UpstreamConfig {
        url: url?,
        headers: headers?,
        ca_file: ca_file?,
        insecure_skip_verify: skip_verify.is_some_and(|flag| flag.value),
    })
}

/// `upstream.headers`: valid names, `${VAR}` expanded, no control characters.
fn headers(
    diag: &mut Diag,
    written: &[(Text, Text)],
    env: &dyn EnvSource,
) -> Option<Vec<(String, String)>> {
    let mut out = Vec::with_capacity(written.len());
    let mut ok = true;
    for (name, value) in written {
        let valid_name = !name.value.is_empty()
            && name
                .value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c));
        if !valid_name {
            diag.at(name, format!("`{}` is not a valid header name", name.value));
            ok = false;
        }
        match expand(diag, value, env) {
            Some(v) if has_control(&v) => {
                diag.at(
                    value,
                    "a header value must not contain control characters (CR, LF, NUL)",
                );
                ok = false;
            }
            Some(v) => out.push((name.value.clone(), v)),
            None => ok = false,
        }
    }
    ok.then_some(out)
}
