//! Warnings: settings that are valid but leave a door open. They are
//! recorded beside the errors and never fail the load.

use crate::diag::Diag;
use crate::read::{Spanned, Text};
use crate::values::path_pattern::{PathPattern, Segment};
use crate::values::template::Template;

/// A fan-out route without `auth`: each capture the topic uses and no
/// `params` regex bounds lets any client open topics at will. Reported at
/// `path`.
pub(super) fn open_captures(
    diag: &mut Diag,
    at: &Text,
    path: &PathPattern,
    topic: &Template,
    params: &[(Text, Text)],
) {
    for segment in path.segments() {
        let (name, shown) = match segment {
            Segment::Capture(name) => (name, format!("{{{name}}}")),
            Segment::CatchAll(name) => (name, format!("{{*{name}}}")),
            Segment::Literal(_) => continue,
        };
        let has_regex = params.iter().any(|(key, _)| key.value == *name);
        // A capture the topic does not use cannot open more topics.
        let opens_topics = topic.references().any(|r| r == name);
        if !has_regex && opens_topics {
            diag.warn_at(
                at,
                format!(
                    "capture `{shown}` has no `params` regex and the route has no `auth`: \
                     any client can open a topic, and an upstream connection, per distinct \
                     value; add a `params` regex or `auth`, and consider `max_topics`"
                ),
            );
        }
    }
}

/// `auth.cookie` without `auth.jwt`: the cookie is only looked for.
pub(super) fn unverified_cookie(diag: &mut Diag, cookie: &Text) {
    diag.warn_at(
        cookie,
        format!(
            "the cookie's value is not verified (no auth.jwt): any request carrying a \
             `{}` cookie is admitted",
            cookie.value
        ),
    );
}

/// `upstream.insecure_skip_verify: true`.
pub(super) fn skip_verify(diag: &mut Diag, flag: &Spanned<bool>) {
    diag.warn_at(
        flag,
        "the upstream's TLS certificate and host name are NOT verified: anyone on the \
         network path can impersonate the upstream and read or forge its stream; use \
         `ca_file` for a private CA",
    );
}
