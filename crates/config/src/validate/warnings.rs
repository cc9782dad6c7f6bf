//! Warnings: settings that are valid but leave a door open. They are
//! recorded beside the errors and never fail the load.

use crate::model::RouteKind;
use crate::raw::RawRoute;
use crate::read::Diag;
use crate::values::path_pattern::{PathPattern, Segment};

/// The warnings of one route, from what could be validated of it.
pub(super) fn route(
    diag: &mut Diag,
    raw: &RawRoute,
    path: Option<&PathPattern>,
    kind: Option<&RouteKind>,
) {
    if let (Some(text), Some(path), Some(RouteKind::FanOut(fan_out)), None) =
        (&raw.path, path, kind, &raw.auth)
    {
        for segment in path.segments() {
            let (name, shown) = match segment {
                Segment::Capture(name) => (name, format!("{{{name}}}")),
                Segment::CatchAll(name) => (name, format!("{{*{name}}}")),
                Segment::Literal(_) => continue,
            };
            let has_regex = raw.params.iter().any(|(key, _)| key.value == *name);
            // A capture the topic does not use cannot open more topics.
            let opens_topics = fan_out.topic.references().any(|r| r == name);
            if !has_regex && opens_topics {
                diag.warn_at(
                    text,
                    format!(
                        "capture `{shown}` has no `params` regex and the route has no `auth`: \
                         any client can open a topic, and an upstream connection, per distinct \
                         value; add a `params` regex or `auth`, and consider `max_topics`"
                    ),
                );
            }
        }
    }
    if let Some(auth) = &raw.auth {
        if let (Some(cookie), None) = (&auth.cookie, &auth.jwt) {
            diag.warn_at(
                cookie,
                format!(
                    "the cookie's value is not verified (no auth.jwt): any request carrying a \
                     `{}` cookie is admitted",
                    cookie.value
                ),
            );
        }
    }
    let skip_verify = raw
        .upstream
        .as_ref()
        .and_then(|upstream| upstream.insecure_skip_verify.as_ref());
    if let Some(flag) = skip_verify.filter(|flag| flag.value) {
        diag.warn_at(
            flag,
            "the upstream's TLS certificate and host name are NOT verified: anyone on the \
             network path can impersonate the upstream and read or forge its stream; use \
             `ca_file` for a private CA",
        );
    }
}
