//! An independent SSE parser, used as the oracle for what the gateway sends.
//!
//! It follows the WHATWG "Server-sent events" interpretation rules step by step and
//! shares no code with `sse-gateway-codec`:
//!
//! - a UTF-8 BOM at the very start of the stream is skipped;
//! - lines end with CRLF, LF or CR;
//! - an empty line dispatches the event: if the data buffer is empty, nothing is
//!   dispatched and the data and event-type buffers are reset; otherwise one trailing LF is
//!   removed from the data and an event is produced (type `message` unless set);
//! - a line starting with `:` is a comment (kept here, since heartbeats are comments);
//! - otherwise `field:value` (one leading space of the value is dropped; a line without
//!   `:` is a field with an empty value): `event` sets the type, `data` appends the value
//!   and a LF, `id` sets the last event id unless the value contains NUL, `retry` sets the
//!   reconnection time if the value is all ASCII digits; other fields are ignored.
//!
//! Besides the interpreted event, each [`SseEvent`] keeps the raw bytes of its block (every
//! field line since the previous blank line, line endings as received, plus the blank
//! line; comment lines such as heartbeats are left out, since they belong to no event),
//! so tests can compare what the gateway wrote byte for byte with what the upstream sent.

use std::collections::VecDeque;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The event type (`message` unless an `event:` field set it).
    pub event: String,
    /// The data, lines joined with LF.
    pub data: String,
    /// The value of an `id:` field inside this event's block, if there was one.
    pub id: Option<String>,
    /// The stream's last event id when this event was dispatched (what a browser's
    /// `MessageEvent.lastEventId` would be).
    pub last_event_id: String,
    /// The raw bytes of the block, from its first line to the blank line included,
    /// without comment lines.
    pub raw: Vec<u8>,
}

impl SseEvent {
    /// The `id:` field parsed as a number, if present and numeric.
    pub fn id_num(&self) -> Option<u64> {
        self.id.as_deref().and_then(|s| s.trim().parse().ok())
    }
}

/// The incremental oracle parser: feed it body bytes in pieces of any size.
#[derive(Debug, Default)]
pub struct SseParser {
    buf: Vec<u8>,
    started: bool,
    data: String,
    event_type: String,
    block_id: Option<String>,
    last_event_id: String,
    block_raw: Vec<u8>,
    events: VecDeque<SseEvent>,
    comments: Vec<String>,
    retry: Option<u64>,
    retries_seen: usize,
}

impl SseParser {
    /// A parser at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds body bytes; complete lines are interpreted at once.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        if !self.started {
            if self.buf.len() < 3 && b"\xEF\xBB\xBF".starts_with(&self.buf) {
                return;
            }
            self.started = true;
            if self.buf.starts_with(b"\xEF\xBB\xBF") {
                self.buf.drain(..3);
            }
        }
        let mut start = 0;
        let mut i = 0;
        while i < self.buf.len() {
            let b = self.buf[i];
            if b == b'\r' && i + 1 == self.buf.len() {
                // CR or CRLF? Decided by the next byte (or by `finish`).
                break;
            }
            if b == b'\n' || b == b'\r' {
                let end = if b == b'\r' && self.buf[i + 1] == b'\n' {
                    i + 1
                } else {
                    i
                };
                let line = self.buf[start..i].to_vec();
                if !line.starts_with(b":") {
                    self.block_raw.extend_from_slice(&self.buf[start..=end]);
                }
                self.line(&line);
                i = end + 1;
                start = i;
            } else {
                i += 1;
            }
        }
        self.buf.drain(..start);
    }

    /// The stream ended: a final CR still waiting for a possible LF ends its line.
    pub fn finish(&mut self) {
        if self.buf.last() == Some(&b'\r') {
            let line = self.buf[..self.buf.len() - 1].to_vec();
            if line.starts_with(b":") {
                self.buf.clear();
            } else {
                self.block_raw.append(&mut self.buf);
            }
            self.line(&line);
        }
    }

    fn line(&mut self, line: &[u8]) {
        let line = String::from_utf8_lossy(line);
        if line.is_empty() {
            self.dispatch();
            return;
        }
        if let Some(comment) = line.strip_prefix(':') {
            self.comments.push(comment.to_owned());
            return;
        }
        let (field, value) = match line.find(':') {
            Some(at) => {
                let value = &line[at + 1..];
                (&line[..at], value.strip_prefix(' ').unwrap_or(value))
            }
            None => (&line[..], ""),
        };
        match field {
            "event" => value.clone_into(&mut self.event_type),
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
            }
            "id" if !value.contains('\0') => {
                value.clone_into(&mut self.last_event_id);
                self.block_id = Some(value.to_owned());
            }
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                self.retry = value.parse().ok();
                self.retries_seen += 1;
            }
            _ => {}
        }
    }

    fn dispatch(&mut self) {
        let raw = std::mem::take(&mut self.block_raw);
        let block_id = self.block_id.take();
        let event_type = std::mem::take(&mut self.event_type);
        if self.data.is_empty() {
            return;
        }
        let mut data = std::mem::take(&mut self.data);
        if data.ends_with('\n') {
            data.pop();
        }
        self.events.push_back(SseEvent {
            event: if event_type.is_empty() {
                "message".to_owned()
            } else {
                event_type
            },
            data,
            id: block_id,
            last_event_id: self.last_event_id.clone(),
            raw,
        });
    }

    /// The next dispatched event not yet taken.
    pub fn pop_event(&mut self) -> Option<SseEvent> {
        self.events.pop_front()
    }

    /// How many dispatched events wait to be taken.
    pub fn pending_events(&self) -> usize {
        self.events.len()
    }

    /// Every comment line seen so far (without the leading `:`).
    pub fn comments(&self) -> &[String] {
        &self.comments
    }

    /// The last valid `retry:` value seen, in milliseconds.
    pub fn retry(&self) -> Option<u64> {
        self.retry
    }

    /// How many valid `retry:` fields were seen.
    pub fn retries_seen(&self) -> usize {
        self.retries_seen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(chunks: &[&[u8]]) -> SseParser {
        let mut p = SseParser::new();
        for c in chunks {
            p.feed(c);
        }
        p
    }

    #[test]
    fn spec_example_with_ids_and_types() {
        let mut p = parse_all(&[
            b"\xEF\xBB\xBFdata: a\nid: 7\nevent: x\n\n: hi\ndata:b\r\ndata\r\n\r\nretry: 1500\n\n",
        ]);
        let e1 = p.pop_event().unwrap();
        assert_eq!(
            (e1.event.as_str(), e1.data.as_str(), e1.id.as_deref()),
            ("x", "a", Some("7"))
        );
        assert_eq!(e1.raw, b"data: a\nid: 7\nevent: x\n\n");
        let e2 = p.pop_event().unwrap();
        assert_eq!(
            (e2.event.as_str(), e2.data.as_str(), e2.id),
            ("message", "b\n", None)
        );
        assert_eq!(e2.last_event_id, "7");
        assert_eq!(
            e2.raw, b"data:b\r\ndata\r\n\r\n",
            "comment lines are not part of the block"
        );
        assert_eq!(p.comments(), [" hi".to_owned()]);
        assert_eq!(p.retry(), Some(1500));
        assert!(p.pop_event().is_none());
    }

    #[test]
    fn byte_by_byte_with_cr_split() {
        let input = b"id: 1\r\ndata: one\r\r\nid: 2\ndata: two\n\n";
        let mut p = SseParser::new();
        for b in input.iter() {
            p.feed(std::slice::from_ref(b));
        }
        let e1 = p.pop_event().unwrap();
        assert_eq!(e1.data, "one");
        assert_eq!(e1.raw, b"id: 1\r\ndata: one\r\r\n");
        let e2 = p.pop_event().unwrap();
        assert_eq!((e2.data.as_str(), e2.id_num()), ("two", Some(2)));
        assert_eq!(e2.raw, b"id: 2\ndata: two\n\n");
    }

    #[test]
    fn empty_data_block_is_not_dispatched() {
        let mut p = parse_all(&[b"event: x\n\ndata: y\n\n"]);
        let e = p.pop_event().unwrap();
        assert_eq!((e.event.as_str(), e.data.as_str()), ("message", "y"));
    }
}
