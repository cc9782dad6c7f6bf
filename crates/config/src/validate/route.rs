//! One route: its name, path pattern and params, then `upstream:` (fan-out,
//! see [`super::fan_out`]) or `proxy:` (pass-through, here), exactly one;
//! the topic settings come from [`super::settings`], CORS and auth from
//! [`super::access`].

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use super::check::{expand, has_control, section};
use super::settings::{self, Mode, ONLY_FAN_OUT};
use super::urls::check_url;
use super::{access, fan_out, warnings};
use crate::diag::Diag;
use crate::model::{ParamRegex, ProxyRoute, RouteConfig, RouteKind, TopicSettingsConfig};
use crate::read::{spanned, MapReader, Spanned, Text};
use crate::values::env::EnvSource;
use crate::values::path_pattern::PathPattern;
use crate::yaml::Node;

/// What every route needs from the rest of the file.
pub(crate) struct RouteCtx<'a> {
    pub(crate) env: &'a dyn EnvSource,
    pub(crate) base_dir: &'a Path,
    pub(crate) defaults: &'a TopicSettingsConfig,
    /// The name of each route read so far, with its key path (`routes[0]`).
    pub(crate) names: HashMap<String, String>,
}

/// Reads and validates one route; `None` after recording its errors.
pub(crate) fn route(
    diag: &mut Diag,
    map: &mut MapReader<'_>,
    ctx: &mut RouteCtx<'_>,
) -> Option<RouteConfig> {
    let name = map.require::<String>(diag, "name");
    let path_text = map.require::<String>(diag, "path");
    let params_text = map.string_map(diag, "params");
    let topic = map.take::<String>(diag, "topic");
    let upstream = map.take_node("upstream");
    let proxy_node = map.take_node("proxy");
    let cors = map.take_node("cors");
    let auth = map.take_node("auth");
    let lenient = map.take::<bool>(diag, "lenient_captures");
    let name = name.and_then(|name| route_name(diag, name, map.path(), &mut ctx.names));
    let path = path_text.as_ref().and_then(|text| {
        PathPattern::parse(&text.value)
            .map_err(|e| diag.at(text, e.to_string()))
            .ok()
    });
    let params = params(diag, &params_text, path.as_ref());
    let ctx = &*ctx;
    let fan_out_keys = (topic.as_ref(), lenient.as_ref());
    let kind = kind(
        diag,
        map,
        upstream,
        proxy_node,
        fan_out_keys,
        path.as_ref(),
        ctx,
    );
    let cors =
        cors.and_then(|(node, key_path)| MapReader::read(diag, node, &key_path, access::cors));
    let auth = auth.and_then(|(node, key_path)| {
        MapReader::read(diag, node, &key_path, |diag, auth| {
            access::auth(diag, auth, ctx)
        })
    });
    if let (Some(text), Some(path), Some(RouteKind::FanOut(fan_out)), None) =
        (&path_text, &path, &kind, &auth)
    {
        warnings::open_captures(diag, text, path, &fan_out.topic, &params_text);
    }
    Some(RouteConfig {
        name: name?,
        path: path?,
        params: params?,
        kind: kind?,
        cors: section(cors)?,
        auth: section(auth)?,
        lenient_captures: lenient.is_some_and(|b| b.value),
    })
}

/// `upstream:` (fan-out) or `proxy:` (pass-through), exactly one; the
/// route's settings are read for the kind it has (only their types when it
/// has none).
fn kind<'n>(
    diag: &mut Diag,
    map: &mut MapReader<'n>,
    upstream: Option<(&'n Node, String)>,
    proxy_node: Option<(&'n Node, String)>,
    fan_out_keys: (Option<&Text>, Option<&Spanned<bool>>),
    path: Option<&PathPattern>,
    ctx: &RouteCtx<'_>,
) -> Option<RouteKind> {
    let proxy = proxy_node
        .as_ref()
        .and_then(|(node, key_path)| spanned::<String>(diag, node, key_path));
    match (upstream, proxy) {
        (Some(upstream), None) if upstream.0.is_map() => {
            fan_out::fan_out(diag, map, upstream, fan_out_keys.0, path, ctx).map(RouteKind::FanOut)
        }
        (Some((node, key_path)), Some(proxy)) if node.is_map() => {
            MapReader::read(diag, node, &key_path, |diag, up| {
                fan_out::upstream(diag, up, None)
            });
            settings::apply(diag, ctx.defaults, map, Mode::TypesOnly);
            diag.at(
                &proxy,
                "a route has either `upstream` (fan-out) or `proxy` (pass-through), never both",
            );
            None
        }
        (upstream, proxy) => {
            let written = upstream.is_some() || proxy_node.is_some();
            if let Some((node, key_path)) = upstream {
                // Not a mapping: reading it says so.
                MapReader::read(diag, node, &key_path, |_, _| ());
            }
            match proxy {
                Some(proxy) => {
                    proxy_route(diag, map, &proxy, fan_out_keys, ctx).map(RouteKind::Proxy)
                }
                None => {
                    settings::apply(diag, ctx.defaults, map, Mode::TypesOnly);
                    if !written {
                        let message =
                            "a route needs `upstream` (fan-out) or `proxy` (pass-through)";
                        diag.push(map.pos(), map.path(), message);
                    }
                    None
                }
            }
        }
    }
}

/// `name`: unique, non-empty, no control characters.
fn route_name(
    diag: &mut Diag,
    name: Text,
    route: &str,
    names: &mut HashMap<String, String>,
) -> Option<String> {
    if let Some(first) = names.get(&name.value) {
        let message = format!("route name `{}` is already used by {first}", name.value);
        diag.at(&name, message);
    } else {
        names.insert(name.value.clone(), route.to_owned());
    }
    if name.value.is_empty() || has_control(&name.value) {
        diag.at(
            &name,
            "a route name must be non-empty and have no control characters",
        );
        return None;
    }
    Some(name.value)
}

/// `params:`: each name must be a capture; each regex compiles.
fn params(
    diag: &mut Diag,
    params: &[(Text, Text)],
    path: Option<&PathPattern>,
) -> Option<BTreeMap<String, ParamRegex>> {
    let mut out = BTreeMap::new();
    let mut ok = true;
    for (name, regex) in params {
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

/// `proxy:`: a base URL; fan-out settings are errors on this route.
fn proxy_route(
    diag: &mut Diag,
    map: &mut MapReader<'_>,
    proxy: &Text,
    (topic, lenient): (Option<&Text>, Option<&Spanned<bool>>),
    ctx: &RouteCtx<'_>,
) -> Option<ProxyRoute> {
    let settings = settings::apply(diag, ctx.defaults, map, Mode::Proxy);
    if let Some(topic) = topic {
        diag.at(topic, ONLY_FAN_OUT);
    }
    if let Some(lenient) = lenient {
        diag.at(lenient, ONLY_FAN_OUT);
    }
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
        connect_timeout: settings.upstream_connect_timeout,
    })
}
