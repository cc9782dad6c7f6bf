//! Frames the gateway makes itself: `retry:` advice, heartbeats, `gap` events.
//! None of them carries an `id`, which would move the client's Last-Event-ID.

use std::time::Duration;

use bytes::Bytes;
use sse_gateway_codec::{encode_event, encode_retry, OutgoingEvent};

/// The heartbeat: the shortest comment.
pub(crate) const HEARTBEAT: Bytes = Bytes::from_static(b":\n");

/// `base` with ±20% jitter, in whole milliseconds: every `retry` the
/// gateway advises (join advice, the drain's final frame, refusals) is
/// spread this way, so that reconnects after an outage do not arrive as one
/// herd.
pub fn jittered(base: Duration) -> Duration {
    let ms = u64::try_from(base.as_millis()).unwrap_or(u64::MAX / 2);
    let spread = ms / 5;
    Duration::from_millis(ms - spread + fastrand::u64(0..=spread.saturating_mul(2)))
}

/// `retry:` advice of [`jittered`] `base`.
pub fn jittered_retry(base: Duration) -> Bytes {
    encode_retry(u64::try_from(jittered(base).as_millis()).unwrap_or(u64::MAX))
}

/// A `gap` event telling the client its Last-Event-ID is no longer held.
pub(crate) fn gap_event(event_type: &str, requested: &str, oldest: Option<&str>) -> Option<Bytes> {
    let json = |s: &str| {
        let mut out = String::with_capacity(s.len() + 2);
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
                c => out.push(c),
            }
        }
        out.push('"');
        out
    };
    let oldest = oldest.map_or_else(|| "null".to_owned(), json);
    let data = format!(
        "{{\"requested\":{},\"oldest\":{}}}",
        json(requested),
        oldest
    );
    let event = OutgoingEvent {
        event_type: Some(event_type),
        data: &data,
        ..OutgoingEvent::default()
    };
    encode_event(&event).ok().map(|frame| frame.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_jitter_stays_within_twenty_percent() {
        for _ in 0..1000 {
            let bytes = jittered_retry(Duration::from_millis(3000));
            let text = std::str::from_utf8(&bytes).unwrap();
            let ms: u64 = text
                .trim_start_matches("retry: ")
                .trim_end()
                .parse()
                .unwrap();
            assert!((2400..=3600).contains(&ms), "{ms}");
        }
    }

    #[test]
    fn gap_event_is_json_without_id() {
        let bytes = gap_event("gap", "a\"b", Some("7")).unwrap();
        assert_eq!(
            &bytes[..],
            b"event: gap\ndata: {\"requested\":\"a\\\"b\",\"oldest\":\"7\"}\n\n"
        );
        let bytes = gap_event("gap", "1", None).unwrap();
        assert!(std::str::from_utf8(&bytes)
            .unwrap()
            .contains("\"oldest\":null"));
    }
}
