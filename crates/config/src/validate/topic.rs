//! Topic templates: references must be captures of the path; a topic must
//! use every capture the upstream URL uses and name one set of values; the
//! default topic is the request path.

use crate::diag::Diag;
use crate::read::Text;
use crate::values::path_pattern::{PathPattern, Segment};
use crate::values::template::{Template, TemplatePart};

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
pub(super) fn topic_covers_url(diag: &mut Diag, at: &Text, topic: &Template, url: &Template) {
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
pub(super) fn topic_names_one_set_of_values(
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
pub(super) fn default_topic(path: &PathPattern) -> Template {
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
