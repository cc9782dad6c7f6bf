//! One route: its path pattern, params, topic and upstream templates, or its
//! proxy URL; the topic settings come from [`super::settings`], CORS and auth
//! from [`super::access`].

use std::collections::BTreeMap;
use std::path::Path;

use super::check::{expand, has_control, positive_duration, section};
use super::urls::{check_url, upstream_url};
use super::{access, settings, tls, warnings};
use crate::model::{
    FanOutRoute, ParamRegex, ProxyRoute, RouteConfig, RouteKind, TopicSettingsConfig,
    UpstreamConfig,
};
use crate::raw::{RawRoute, RawUpstream, Text};
use crate::read::Diag;
use crate::values::env::EnvSource;
use crate::values::path_pattern::{PathPattern, Segment};
use crate::values::template::{Template, TemplatePart};

/// What every route needs from the rest of the file.
pub(crate) struct RouteCtx<'a> {
    pub(crate) env: &'a dyn EnvSource,
    pub(crate) base_dir: &'a Path,
    pub(crate) defaults: &'a TopicSettingsConfig,
}

/// Validates one route; `None` after recording its errors.
pub(crate) fn route(diag: &mut Diag, raw: &RawRoute, ctx: &RouteCtx<'_>) -> Option<RouteConfig> {
    let name = raw.name.as_ref().and_then(|name| {
        if name.value.is_empty() || has_control(&name.value) {
            diag.at(
                name,
                "a route name must be non-empty and have no control characters",
            );
            return None;
        }
        Some(name.value.clone())
    });
    let path = raw.path.as_ref().and_then(|text| {
        PathPattern::parse(&text.value)
            .map_err(|e| diag.at(text, e.to_string()))
            .ok()
    });
    let params = params(diag, raw, path.as_ref());
    let kind = kind(diag, raw, path.as_ref(), ctx);
    warnings::route(diag, raw, path.as_ref(), kind.as_ref());
    let cors = raw.cors.as_ref().map(|cors| access::cors(diag, cors));
    let auth = raw.auth.as_ref().map(|auth| access::auth(diag, auth, ctx));
    Some(RouteConfig {
        name: name?,
        path: path?,
        params: params?,
        kind: kind?,
        cors: section(cors)?,
        auth: section(auth)?,
        lenient_captures: raw.lenient_captures.as_ref().is_some_and(|b| b.value),
    })
}

/// `params:`: each name must be a capture; each regex compiles.
fn params(
    diag: &mut Diag,
    raw: &RawRoute,
    path: Option<&PathPattern>,
) -> Option<BTreeMap<String, ParamRegex>> {
    let mut out = BTreeMap::new();
    let mut ok = true;
    for (name, regex) in &raw.params {
        if let Some(path) = path.filter(|p| !p.has_capture(&name.value)) {
            diag.at(
                name,
                format!("`{}` is not a capture of the path `{path}`", name.value),
            );
            ok = false;
        }
        match ParamRegex::new(&regex.value) {
            Ok(compiled) => {
                out.insert(name.value.clone(), compiled);
            }
            Err(e) => {
                diag.at(regex, format!("invalid regex: {}", regex_reason(&e)));
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

/// The one-line reason from a regex error (its display spans several lines).
fn regex_reason(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .rev()
        .find_map(|line| line.strip_prefix("error: "))
        .unwrap_or_else(|| text.lines().last().unwrap_or_default())
        .trim()
        .to_owned()
}

/// `upstream:` (fan-out) or `proxy:` (pass-through), exactly one.
fn kind(
    diag: &mut Diag,
    raw: &RawRoute,
    path: Option<&PathPattern>,
    ctx: &RouteCtx<'_>,
) -> Option<RouteKind> {
    match (&raw.upstream, &raw.proxy) {
        (Some(_), Some(proxy)) => {
            diag.at(
                proxy,
                "a route has either `upstream` (fan-out) or `proxy` (pass-through), never both",
            );
            None
        }
        (None, None) if raw.upstream_or_proxy_written => None, // its error is reported already
        (None, None) => {
            let message = "a route needs `upstream` (fan-out) or `proxy` (pass-through)";
            diag.push(raw.pos, &raw.path_key, message);
            None
        }
        (Some(upstream), None) => fan_out(diag, raw, upstream, path, ctx).map(RouteKind::FanOut),
        (None, Some(proxy)) => proxy_route(diag, raw, proxy, ctx).map(RouteKind::Proxy),
    }
}

fn fan_out(
    diag: &mut Diag,
    raw: &RawRoute,
    upstream: &RawUpstream,
    path: Option<&PathPattern>,
    ctx: &RouteCtx<'_>,
) -> Option<FanOutRoute> {
    let topic = match &raw.topic {
        Some(text) if text.value.is_empty() => {
            diag.at(text, "a topic template must not be empty");
            None
        }
        Some(text) => template(diag, text, &text.value, path),
        None => path.map(default_topic),
    };
    let url = upstream
        .url
        .as_ref()
        .and_then(|text| upstream_url(diag, text, path, ctx.env));
    let headers = headers(diag, &upstream.headers, ctx.env);
    let ca_file = match &upstream.ca_file {
        Some(text) => tls::ca_file(diag, text, ctx.base_dir).map(Some),
        None => Some(None),
    };
    let insecure_skip_verify = upstream
        .insecure_skip_verify
        .as_ref()
        .is_some_and(|b| b.value);
    if let (Some(text), Some(topic), Some(url)) = (&raw.topic, &topic, &url) {
        topic_covers_url(diag, text, topic, url);
        if let Some(path) = path {
            topic_names_one_set_of_values(diag, text, topic, url, path);
        }
    }
    let settings = settings::apply(diag, ctx.defaults, &raw.settings);
    Some(FanOutRoute {
        topic: topic?,
        upstream: UpstreamConfig {
            url: url?,
            headers: headers?,
            ca_file: ca_file?,
            insecure_skip_verify,
        },
        settings,
    })
}

/// Parses a template whose references must be captures of `path`.
pub(super) fn template(
    diag: &mut Diag,
    at: &Text,
    source: &str,
    path: Option<&PathPattern>,
) -> Option<Template> {
    let template = Template::parse(source)
        .map_err(|e| diag.at(at, e.to_string()))
        .ok()?;
    let Some(path) = path else {
        return Some(template); // the path's own error is reported already
    };
    let unknown: Vec<&str> = template
        .references()
        .filter(|r| !path.has_capture(r))
        .collect();
    if let Some(name) = unknown.first() {
        diag.at(
            at,
            format!("`{{{name}}}` is not a capture of the path `{path}`"),
        );
        return None;
    }
    Some(template)
}

/// A topic template must use every capture that the upstream URL uses:
/// otherwise two requests that need different upstream URLs would share one
/// topic, and so the stream of whichever came first. (The default topic, the
/// request path, uses every capture.) Reported at `topic`.
fn topic_covers_url(diag: &mut Diag, at: &Text, topic: &Template, url: &Template) {
    let mut names: Vec<String> = Vec::new();
    for name in url.references() {
        let named = format!("`{{{name}}}`");
        if !topic.references().any(|r| r == name) && !names.contains(&named) {
            names.push(named);
        }
    }
    if names.is_empty() {
        return;
    }
    let names = match names.as_slice() {
        [rest @ .., last] if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => names.join(""),
    };
    diag.at(
        at,
        format!(
            "the topic leaves out {names}, which upstream.url uses: requests with different \
             upstream URLs would share one topic"
        ),
    );
}

/// Two requests whose captures differ must not get the same topic when the
/// upstream URL differs between them: a topic such as `{a}-{b}` gives
/// `x-y-z` for both `a=x-y, b=z` and `a=x, b=y-z`. Captures never hold `/`
/// (a catch-all holds it between its segments), so the topic names one set
/// of values when every two references in it are separated by text with a
/// `/` and a catch-all comes last. Checked when the URL uses two captures
/// or more (with one, or none, the topic cannot mix two URLs up).
/// Reported at `topic`.
fn topic_names_one_set_of_values(
    diag: &mut Diag,
    at: &Text,
    topic: &Template,
    url: &Template,
    path: &PathPattern,
) {
    let mut url_refs: Vec<&str> = url.references().collect();
    url_refs.sort_unstable();
    url_refs.dedup();
    if url_refs.len() < 2 {
        return;
    }
    let is_catch_all = |name: &str| {
        path.segments()
            .iter()
            .any(|s| matches!(s, Segment::CatchAll(n) if n == name))
    };
    let mut previous: Option<&str> = None;
    let mut separated = true;
    for part in topic.parts() {
        match part {
            TemplatePart::Literal(text) => separated |= text.contains('/'),
            TemplatePart::Ref(name) => {
                if let Some(before) = previous {
                    let problem = if is_catch_all(before) {
                        Some(format!(
                            "`{{*{before}}}` may hold `/`, so it must be the topic's last reference"
                        ))
                    } else if !separated {
                        Some(format!(
                            "put a `/` between `{{{before}}}` and `{{{name}}}`: without one, different \
                             values of the two can make the same topic (`a-b` + `c` and `a` + `b-c`), \
                             and such requests would share one upstream's stream"
                        ))
                    } else {
                        None
                    };
                    if let Some(problem) = problem {
                        diag.at(at, problem);
                        return;
                    }
                }
                previous = Some(name);
                separated = false;
            }
        }
    }
}

/// The default topic: the request path, as a template over the captures.
pub(crate) fn default_topic(path: &PathPattern) -> Template {
    let mut parts: Vec<TemplatePart> = Vec::new();
    let mut literal = String::new();
    for segment in path.segments() {
        literal.push('/');
        match segment {
            Segment::Literal(text) => literal.push_str(text),
            Segment::Capture(name) | Segment::CatchAll(name) => {
                parts.push(TemplatePart::Literal(std::mem::take(&mut literal)));
                parts.push(TemplatePart::Ref(name.clone()));
            }
        }
    }
    if !literal.is_empty() || parts.is_empty() {
        if literal.is_empty() {
            literal.push('/');
        }
        parts.push(TemplatePart::Literal(literal));
    }
    Template::from_parts(parts)
}

/// `upstream.headers`: valid names, `${VAR}` expanded, no control characters.
fn headers(
    diag: &mut Diag,
    raw: &[(Text, Text)],
    env: &dyn EnvSource,
) -> Option<Vec<(String, String)>> {
    let mut out = Vec::with_capacity(raw.len());
    let mut ok = true;
    for (name, value) in raw {
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

/// `proxy:`: a base URL; fan-out-only keys are errors on this route.
fn proxy_route(
    diag: &mut Diag,
    raw: &RawRoute,
    proxy: &Text,
    ctx: &RouteCtx<'_>,
) -> Option<ProxyRoute> {
    let only_fan_out = "applies only to fan-out routes (routes with `upstream`)";
    for (pos, path) in raw.settings.fan_out_only() {
        diag.push(pos, path, only_fan_out);
    }
    if let Some(topic) = &raw.topic {
        diag.at(topic, only_fan_out);
    }
    if let Some(lenient) = &raw.lenient_captures {
        diag.at(lenient, only_fan_out);
    }
    let connect_timeout = match &raw.settings.upstream_connect_timeout {
        Some(text) => positive_duration(diag, text),
        None => Some(ctx.defaults.upstream_connect_timeout),
    };
    let expanded = expand(diag, proxy, ctx.env)?;
    if expanded.contains(['{', '}']) {
        diag.at(proxy, "a proxy URL cannot use `{name}` references");
        return None;
    }
    let url = check_url(diag, proxy, &expanded)?;
    if url.query().is_some() {
        diag.at(proxy, "a proxy URL must not have a query");
        return None;
    }
    Some(ProxyRoute {
        url,
        connect_timeout: connect_timeout?,
    })
}
