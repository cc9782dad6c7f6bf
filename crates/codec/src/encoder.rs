//! Canonical encoding: events, comments and `retry` advice as wire bytes.

use bytes::{BufMut, Bytes, BytesMut};

use crate::text::Span;
use crate::{EncodeError, Frame};

/// An event to write. `data` may contain line breaks (LF, CR or CRLF): each
/// line becomes its own `data` field, which a client joins back with LF.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutgoingEvent<'a> {
    /// The event type; `None` (or empty) means `message`.
    pub event_type: Option<&'a str>,
    /// The id; `Some("")` resets the client's last event ID.
    pub id: Option<&'a str>,
    /// The data.
    pub data: &'a str,
    /// Reconnection advice in milliseconds.
    pub retry: Option<u64>,
}

/// Encodes an event canonically: LF line ends, fields in the order `event`,
/// `id`, `retry`, `data`, then the empty line. The id and the event type are
/// refused when they contain CR, LF or NUL (never a panic).
pub fn encode_event(event: &OutgoingEvent<'_>) -> Result<Frame, EncodeError> {
    let bad = |s: &str| s.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0));
    if event.event_type.is_some_and(bad) {
        return Err(EncodeError::InvalidEventType);
    }
    if event.id.is_some_and(bad) {
        return Err(EncodeError::InvalidId);
    }
    let mut out = BytesMut::with_capacity(event.data.len() + 32);
    let mut type_span = Span::EMPTY;
    if let Some(event_type) = event.event_type.filter(|t| !t.is_empty()) {
        type_span = Span::new(7..7 + event_type.len());
        put_field(&mut out, b"event", event_type.as_bytes());
    }
    let mut id_span = None;
    if let Some(id) = event.id {
        let start = out.len() + if id.is_empty() { 2 } else { 4 };
        put_field(&mut out, b"id", id.as_bytes());
        id_span = Some(Span::new(start..start + id.len()));
    }
    if let Some(ms) = event.retry {
        put_field(&mut out, b"retry", ms.to_string().as_bytes());
    }
    for line in split_lines(event.data) {
        put_field(&mut out, b"data", line.as_bytes());
    }
    out.put_u8(b'\n');
    Ok(Frame::event(out.freeze(), id_span, type_span))
}

/// Encodes a comment; text with line breaks becomes several comment lines.
/// An empty text gives the shortest heartbeat, `":\n"`.
pub fn encode_comment(text: &str) -> Bytes {
    let mut out = BytesMut::with_capacity(text.len() + 2);
    for line in split_lines(text) {
        out.put_u8(b':');
        out.extend_from_slice(line.as_bytes());
        out.put_u8(b'\n');
    }
    out.freeze()
}

/// Encodes `retry` advice as a block of its own (`"retry: N\n\n"`), which
/// dispatches nothing and leaves the client's last event ID unchanged.
pub fn encode_retry(ms: u64) -> Bytes {
    Bytes::from(format!("retry: {ms}\n\n"))
}

fn put_field(out: &mut BytesMut, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    if !value.is_empty() {
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
    }
    out.put_u8(b'\n');
}

/// Splits on CRLF, CR and LF; always yields at least one (maybe empty) line.
fn split_lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let current = rest?;
        match current.find(['\r', '\n']) {
            Some(i) => {
                let skip = if current[i..].starts_with("\r\n") {
                    2
                } else {
                    1
                };
                rest = Some(&current[i + skip..]);
                Some(&current[..i])
            }
            None => {
                rest = None;
                Some(current)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(ev: OutgoingEvent<'_>) -> Vec<u8> {
        encode_event(&ev).unwrap().bytes().to_vec()
    }

    #[test]
    fn canonical_forms() {
        let cases: &[(OutgoingEvent<'_>, &[u8])] = &[
            (
                OutgoingEvent {
                    data: "x",
                    ..Default::default()
                },
                b"data: x\n\n",
            ),
            (
                OutgoingEvent {
                    data: "",
                    ..Default::default()
                },
                b"data\n\n",
            ),
            (
                OutgoingEvent {
                    data: "a\nb",
                    ..Default::default()
                },
                b"data: a\ndata: b\n\n",
            ),
            (
                OutgoingEvent {
                    data: "a\r\nb\rc\n",
                    ..Default::default()
                },
                b"data: a\ndata: b\ndata: c\ndata\n\n",
            ),
            (
                OutgoingEvent {
                    data: " x",
                    ..Default::default()
                },
                b"data:  x\n\n",
            ),
            (
                OutgoingEvent {
                    event_type: Some("tick"),
                    id: Some("7"),
                    data: "x",
                    retry: Some(10),
                },
                b"event: tick\nid: 7\nretry: 10\ndata: x\n\n",
            ),
            (
                OutgoingEvent {
                    id: Some(""),
                    data: "x",
                    ..Default::default()
                },
                b"id\ndata: x\n\n",
            ),
            (
                OutgoingEvent {
                    event_type: Some(""),
                    data: "x",
                    ..Default::default()
                },
                b"data: x\n\n",
            ),
        ];
        for (ev, want) in cases {
            assert_eq!(enc(*ev), *want, "{ev:?}");
        }
    }

    #[test]
    fn frame_knows_its_id() {
        for id in ["", "7", "é"] {
            let frame = encode_event(&OutgoingEvent {
                id: Some(id),
                data: "x",
                ..Default::default()
            })
            .unwrap();
            assert_eq!(frame.id(), Some(id));
        }
        assert_eq!(encode_event(&OutgoingEvent::default()).unwrap().id(), None);
    }

    #[test]
    fn refuses_line_breaks_and_nul_in_id_and_type() {
        for bad in ["a\nb", "a\rb", "a\0b"] {
            let ev = OutgoingEvent {
                id: Some(bad),
                ..Default::default()
            };
            assert_eq!(encode_event(&ev), Err(EncodeError::InvalidId));
            let ev = OutgoingEvent {
                event_type: Some(bad),
                ..Default::default()
            };
            assert_eq!(encode_event(&ev), Err(EncodeError::InvalidEventType));
        }
    }

    #[test]
    fn comments_and_retry() {
        assert_eq!(&encode_comment("")[..], b":\n");
        assert_eq!(&encode_comment("a\nb")[..], b":a\n:b\n");
        assert_eq!(&encode_retry(1500)[..], b"retry: 1500\n\n");
    }
}
