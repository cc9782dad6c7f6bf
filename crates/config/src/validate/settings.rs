//! Topic settings: `defaults:` over the built-in defaults, then each route's
//! own keys over `defaults:`. Each setting is read, checked and applied in
//! one line of [`apply`]; the cross-field rules are checked on the merged
//! result and reported at a value that the layer being applied (defaults or
//! route) set.

use super::check::{
    duration, has_control, optional_duration, positive_count, positive_duration, positive_size,
};
use crate::diag::Diag;
use crate::model::{CoalesceKey, SlowClientPolicy, TopicSettingsConfig};
use crate::read::{FromNode, MapReader, Spanned, Text};

/// How one layer of settings is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// `defaults:` or a fan-out route: each value is checked and applied.
    FanOut,
    /// A proxy route: only `upstream_connect_timeout` applies, and every
    /// other setting is an error.
    Proxy,
    /// A route whose kind is in error: only the YAML types are checked.
    TypesOnly,
}

/// The message for a fan-out setting on a proxy route.
pub(crate) const ONLY_FAN_OUT: &str = "applies only to fan-out routes (routes with `upstream`)";

/// Applies the settings of `map` (the `defaults:` mapping, or a route) over
/// `base` and checks the result.
pub(crate) fn apply(
    diag: &mut Diag,
    base: &TopicSettingsConfig,
    map: &mut MapReader<'_>,
    mode: Mode,
) -> TopicSettingsConfig {
    let mut s = base.clone();
    let m = mode;
    set(
        diag,
        map,
        m,
        "heartbeat",
        &mut s.heartbeat,
        optional_duration,
    );
    set(
        diag,
        map,
        m,
        "client_retry",
        &mut s.client_retry,
        optional_duration,
    );
    let replay = &mut s.replay;
    map.map(diag, "replay", |diag, map| {
        set(
            diag,
            map,
            m,
            "events",
            &mut replay.events,
            |diag, n: &Spanned<u64>| {
                usize::try_from(n.value)
                    .map_err(|_| diag.at(n, "number too large"))
                    .ok()
            },
        );
        set(
            diag,
            map,
            m,
            "max_age",
            &mut replay.max_age,
            positive_duration,
        );
        set(
            diag,
            map,
            m,
            "max_bytes",
            &mut replay.max_bytes,
            positive_size,
        );
    });
    let queue_set = set(
        diag,
        map,
        m,
        "client_queue",
        &mut s.client_queue,
        positive_size,
    );
    let event_set = set(
        diag,
        map,
        m,
        "max_event_size",
        &mut s.max_event_size,
        positive_size,
    );
    set(diag, map, m, "linger", &mut s.linger, duration);
    let backoff = &mut s.upstream_backoff;
    let backoff_at = map.map(diag, "upstream_backoff", |diag, map| {
        let initial_set = set(diag, map, m, "initial", &mut backoff.initial, duration);
        let max_set = set(diag, map, m, "max", &mut backoff.max, positive_duration);
        max_set.or(initial_set)
    });
    let idle = &mut s.upstream_idle_timeout;
    set(
        diag,
        map,
        m,
        "upstream_idle_timeout",
        idle,
        optional_duration,
    );
    set(diag, map, m, "stop_holdoff", &mut s.stop_holdoff, duration);
    set(diag, map, m, "gap_event", &mut s.gap_event, gap_event);
    set(diag, map, m, "write_window", &mut s.write_window, duration);
    let coalesce = &mut s.coalesce_window;
    set(diag, map, m, "coalesce_window", coalesce, duration);
    let connect = &mut s.upstream_connect_timeout;
    let proxy_too = if m == Mode::Proxy { Mode::FanOut } else { m };
    set(
        diag,
        map,
        proxy_too,
        "upstream_connect_timeout",
        connect,
        positive_duration,
    );
    set(diag, map, m, "direct_write", &mut s.direct_write, flag);
    set(
        diag,
        map,
        m,
        "max_topics",
        &mut s.max_topics,
        |diag, n: &Spanned<u64>| positive_count(diag, n).map(Some),
    );
    let answer = &mut s.upstream_answer_timeout;
    set(diag, map, m, "upstream_answer_timeout", answer, duration);
    set(
        diag,
        map,
        m,
        "resume_from_client",
        &mut s.resume_from_client,
        flag,
    );
    set(diag, map, m, "event_filter", &mut s.event_filter, flag);
    set(diag, map, m, "slow_client", &mut s.slow_client, slow_client);
    set(diag, map, m, "coalesce_by", &mut s.coalesce_by, coalesce_by);
    // Cross-field rules, reported at a value this layer set (and that was valid).
    let backoff = s.upstream_backoff;
    if let Some(at) = backoff_at
        .flatten()
        .filter(|_| backoff.initial > backoff.max)
    {
        let message = format!(
            "upstream_backoff.initial ({}) must not be larger than upstream_backoff.max ({})",
            show(backoff.initial),
            show(backoff.max)
        );
        diag.at(&at, message);
    }
    if let Some(at) = queue_set
        .or(event_set)
        .filter(|_| s.client_queue < s.max_event_size)
    {
        let message = format!(
            "client_queue ({}B) must be at least max_event_size ({}B), or every large event disconnects its clients",
            s.client_queue, s.max_event_size
        );
        diag.at(&at, message);
    }
    s
}

/// Reads `key` as a `V` and, by `mode`, parses it into `slot`, reports it
/// as applying only to fan-out routes, or leaves it. Returns the value when
/// it was applied.
fn set<V: FromNode, T>(
    diag: &mut Diag,
    map: &mut MapReader<'_>,
    mode: Mode,
    key: &'static str,
    slot: &mut T,
    parse: impl FnOnce(&mut Diag, &Spanned<V>) -> Option<T>,
) -> Option<Spanned<V>> {
    let value = map.take::<V>(diag, key)?;
    match mode {
        Mode::FanOut => {
            *slot = parse(diag, &value)?;
            Some(value)
        }
        Mode::Proxy => {
            diag.at(&value, ONLY_FAN_OUT);
            None
        }
        Mode::TypesOnly => None,
    }
}

/// A boolean, as written.
fn flag(_: &mut Diag, value: &Spanned<bool>) -> Option<bool> {
    Some(value.value)
}

/// `slow_client`: `disconnect` or `coalesce`.
fn slow_client(diag: &mut Diag, text: &Text) -> Option<SlowClientPolicy> {
    match text.value.as_str() {
        "disconnect" => Some(SlowClientPolicy::Disconnect),
        "coalesce" => Some(SlowClientPolicy::Coalesce),
        other => {
            diag.at(
                text,
                format!("unknown policy `{other}`; expected `disconnect` or `coalesce`"),
            );
            None
        }
    }
}

/// `coalesce_by`: `event`, or `data.FIELD` (a top-level JSON field).
fn coalesce_by(diag: &mut Diag, text: &Text) -> Option<CoalesceKey> {
    match text.value.as_str() {
        "event" => Some(CoalesceKey::EventType),
        other => match other.strip_prefix("data.") {
            Some(field) if !field.is_empty() && !has_control(field) => {
                Some(CoalesceKey::DataField(field.to_owned()))
            }
            _ => {
                diag.at(
                    text,
                    format!("unknown key `{other}`; expected `event` or `data.FIELD` (a top-level JSON field of the data)"),
                );
                None
            }
        },
    }
}

/// `gap_event`: an SSE event type.
fn gap_event(diag: &mut Diag, text: &Text) -> Option<Option<String>> {
    event_type(diag, text).map(Some)
}

/// An SSE event type (not empty, no control characters).
pub(crate) fn event_type(diag: &mut Diag, text: &Text) -> Option<String> {
    if text.value.is_empty() || has_control(&text.value) {
        diag.at(
            text,
            "an event type must be non-empty and have no control characters",
        );
        return None;
    }
    Some(text.value.clone())
}

/// A duration as a short string (`250ms`, `30s`).
fn show(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}
