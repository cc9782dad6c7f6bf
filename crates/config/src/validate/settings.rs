//! Topic settings: `defaults:` over the built-in defaults, then each route's
//! own keys over `defaults:`. Each value is checked where it is written; the
//! cross-field rules are checked on the merged result and reported at a
//! value that the layer being applied (defaults or route) set.

use super::check::{
    duration, has_control, optional_duration, positive_count, positive_duration, positive_size,
};
use crate::model::TopicSettingsConfig;
use crate::raw::{RawSettings, Text};
use crate::read::Diag;

/// Applies one layer of settings over `base` and checks the result.
pub(crate) fn apply(
    diag: &mut Diag,
    base: &TopicSettingsConfig,
    raw: &RawSettings,
) -> TopicSettingsConfig {
    let mut s = base.clone();
    set(&mut s.heartbeat, &raw.heartbeat, |t| {
        optional_duration(diag, t)
    });
    set(&mut s.client_retry, &raw.client_retry, |t| {
        optional_duration(diag, t)
    });
    if let Some(events) = &raw.replay_events {
        match usize::try_from(events.value) {
            Ok(n) => s.replay.events = n,
            Err(_) => diag.at(events, "number too large"),
        }
    }
    set(&mut s.replay.max_age, &raw.replay_max_age, |t| {
        positive_duration(diag, t)
    });
    set(&mut s.replay.max_bytes, &raw.replay_max_bytes, |t| {
        positive_size(diag, t)
    });
    let queue_set = set(&mut s.client_queue, &raw.client_queue, |t| {
        positive_size(diag, t)
    });
    let event_set = set(&mut s.max_event_size, &raw.max_event_size, |t| {
        positive_size(diag, t)
    });
    set(&mut s.linger, &raw.linger, |t| duration(diag, t));
    let initial_set = set(&mut s.upstream_backoff.initial, &raw.backoff_initial, |t| {
        duration(diag, t)
    });
    let max_set = set(&mut s.upstream_backoff.max, &raw.backoff_max, |t| {
        positive_duration(diag, t)
    });
    set(
        &mut s.upstream_idle_timeout,
        &raw.upstream_idle_timeout,
        |t| optional_duration(diag, t),
    );
    set(&mut s.stop_holdoff, &raw.stop_holdoff, |t| {
        duration(diag, t)
    });
    set(&mut s.gap_event, &raw.gap_event, |t| gap_event(diag, t));
    set(&mut s.write_window, &raw.write_window, |t| {
        duration(diag, t)
    });
    set(
        &mut s.upstream_connect_timeout,
        &raw.upstream_connect_timeout,
        |t| positive_duration(diag, t),
    );
    if let Some(direct) = &raw.direct_write {
        s.direct_write = direct.value;
    }
    if let Some(n) = &raw.max_topics {
        if let Some(max) = positive_count(diag, n) {
            s.max_topics = Some(max);
        }
    }
    set(
        &mut s.upstream_answer_timeout,
        &raw.upstream_answer_timeout,
        |t| duration(diag, t),
    );
    if let Some(resume) = &raw.resume_from_client {
        s.resume_from_client = resume.value;
    }
    // Cross-field rules, reported at a value this layer set (and that was valid).
    let backoff_at = max_set.or(initial_set);
    let backoff = s.upstream_backoff;
    if let Some(at) = backoff_at.filter(|_| backoff.initial > backoff.max) {
        let message = format!(
            "upstream_backoff.initial ({}) must not be larger than upstream_backoff.max ({})",
            show(backoff.initial),
            show(backoff.max)
        );
        diag.at(at, message);
    }
    if let Some(at) = queue_set
        .or(event_set)
        .filter(|_| s.client_queue < s.max_event_size)
    {
        let message = format!(
            "client_queue ({}B) must be at least max_event_size ({}B), or every large event disconnects its clients",
            s.client_queue, s.max_event_size
        );
        diag.at(at, message);
    }
    s
}

/// Overrides `slot` with the parsed raw value when it is present and valid;
/// returns that raw value when it was applied.
fn set<'r, T>(
    slot: &mut T,
    raw: &'r Option<Text>,
    parse: impl FnOnce(&Text) -> Option<T>,
) -> Option<&'r Text> {
    let text = raw.as_ref()?;
    *slot = parse(text)?;
    Some(text)
}

/// `gap_event`: an SSE event type (not empty, no control characters).
fn gap_event(diag: &mut Diag, text: &Text) -> Option<Option<String>> {
    if text.value.is_empty() || has_control(&text.value) {
        diag.at(
            text,
            "an event type must be non-empty and have no control characters",
        );
        return None;
    }
    Some(Some(text.value.clone()))
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
