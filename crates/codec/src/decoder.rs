//! [`Decoder`]: the incremental event-stream parser.
//!
//! Bytes are read in whatever chunks the network delivers. A block (the lines
//! of one event, up to and including its empty line) that lies entirely in
//! one chunk is sliced out of it without a copy; a block that spans chunks is
//! gathered in `partial`, each byte copied once. Lines are found with
//! `memchr2` and interpreted as soon as they are complete; nothing is scanned
//! twice except when a non-canonical frame must be rebuilt.

use std::ops::Range;

use bytes::{Bytes, BytesMut};

use crate::event::{EventData, LastEventId};
use crate::field::{parse_line, Line, BOM};
use crate::text::{is_utf8, validated, Span};
use crate::{CodecLimits, DecodeError, Event, Frame};

/// What the decoder yields, in stream order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A dispatched event.
    Event(Event),
    /// A block ended by an empty line that set or reset the last event ID but
    /// had no `data` field, so no event was dispatched. The frame carries the
    /// id change to clients.
    IdUpdate(Frame),
    /// A comment line's text after the colon (raw bytes, not validated).
    Comment(Bytes),
    /// A valid `retry` field: the reconnection time in milliseconds. Yielded
    /// when the line is read, as the standard applies it at once.
    Retry(u64),
    /// A limit was exceeded; the current event was discarded and the decoder
    /// skips to the next empty line.
    Error(DecodeError),
}

/// An incremental, WHATWG-exact event-stream parser. See the crate docs.
#[derive(Debug)]
pub struct Decoder {
    limits: CodecLimits,
    /// The chunk being processed and the read position in it.
    input: Bytes,
    pos: usize,
    /// Where the current block starts in `input`, while it lies there.
    block_start: usize,
    /// The current block's bytes, once it has spanned a chunk boundary.
    partial: BytesMut,
    accumulating: bool,
    /// Size of the last event that spanned reads: the next one's likely size.
    spanning_size_hint: usize,
    /// Start of the incomplete line, relative to the block, while accumulating.
    line_start: usize,
    /// The previous line ended with CR: drop one LF at the next position.
    skip_lf: bool,
    /// Bytes of a possible BOM matched at the start of the stream, until decided.
    bom: BomState,
    /// Skipping an over-limit event up to the next empty line.
    skipping: Option<Skip>,
    block: BlockState,
    /// The stream's last event ID string, committed at each empty line.
    last_event_id: String,
    /// `last_event_id` as shared bytes, made when an event without an id of
    /// its own needs it and kept until the id changes.
    shared_last_event_id: Option<Bytes>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BomState {
    Matching(usize),
    Done,
}

#[derive(Debug, Clone, Copy)]
struct Skip {
    at_line_start: bool,
}

/// Fields of the block being read, as ranges relative to the block's start.
#[derive(Debug, Default)]
struct BlockState {
    /// A non-comment line has been seen.
    has_lines: bool,
    /// LF line ends only, no comment and no BOM-led line so far.
    canonical: bool,
    fields: Fields,
}

/// Where a block's fields are, relative to its first byte.
#[derive(Debug, Default)]
struct Fields {
    data: Vec<Span>,
    event_type: Option<Span>,
    id: Option<Span>,
}

/// Iterator over the items of the bytes given to [`Decoder::decode`].
///
/// Dropping it early is fine: unread input stays in the decoder and is
/// processed by the next call.
#[derive(Debug)]
pub struct Decoded<'a> {
    decoder: &'a mut Decoder,
}

// === impl Decoded ===

impl Iterator for Decoded<'_> {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        self.decoder.next_item()
    }
}

// === impl Decoder ===

impl Default for Decoder {
    fn default() -> Self {
        Self::new(CodecLimits::default())
    }
}

impl Decoder {
    /// A decoder for a new stream, with the given limits.
    pub fn new(limits: CodecLimits) -> Self {
        Self {
            limits,
            input: Bytes::new(),
            pos: 0,
            block_start: 0,
            partial: BytesMut::new(),
            accumulating: false,
            spanning_size_hint: 0,
            line_start: 0,
            skip_lf: false,
            bom: BomState::Matching(0),
            skipping: None,
            block: BlockState {
                canonical: true,
                ..BlockState::default()
            },
            last_event_id: String::new(),
            shared_last_event_id: None,
        }
    }

    /// The stream's last event ID string, as of the last empty line.
    pub fn last_event_id(&self) -> &str {
        &self.last_event_id
    }

    /// The limits this decoder enforces.
    pub fn limits(&self) -> CodecLimits {
        self.limits
    }

    /// Feeds the next chunk of the stream and iterates over what it completes.
    pub fn decode(&mut self, chunk: Bytes) -> Decoded<'_> {
        self.push(chunk);
        Decoded { decoder: self }
    }

    /// Number of bytes held for an incomplete event (bounded by the limits).
    pub fn buffered_len(&self) -> usize {
        self.partial.len() + (self.input.len() - self.pos)
    }

    fn push(&mut self, chunk: Bytes) {
        let chunk = match self.strip_bom(chunk) {
            Some(chunk) => chunk,
            None => return,
        };
        if self.pos < self.input.len() {
            // The previous iterator was dropped early: keep its unread bytes
            // (and the current block's start, when it lies in them).
            let base = if self.accumulating {
                self.pos
            } else {
                self.block_start
            };
            let mut joined = BytesMut::with_capacity(self.input.len() - base + chunk.len());
            joined.extend_from_slice(&self.input[base..]);
            joined.extend_from_slice(&chunk);
            self.input = joined.freeze();
            self.pos -= base;
            self.block_start = 0;
        } else {
            self.input = chunk;
            self.pos = 0;
            self.block_start = 0;
        }
    }

    /// Removes a byte order mark at the very start of the stream. Returns
    /// `None` while the chunk is all a prefix of the BOM (wait for more).
    fn strip_bom(&mut self, chunk: Bytes) -> Option<Bytes> {
        let BomState::Matching(before) = self.bom else {
            return Some(chunk);
        };
        let mut matched = before;
        let mut i = 0;
        while matched < BOM.len() && i < chunk.len() && chunk[i] == BOM[matched] {
            matched += 1;
            i += 1;
        }
        if matched == BOM.len() {
            self.bom = BomState::Done;
            return Some(chunk.slice(i..));
        }
        if i == chunk.len() {
            self.bom = BomState::Matching(matched);
            return None;
        }
        self.bom = BomState::Done;
        if before == 0 {
            return Some(chunk);
        }
        // Bytes held from earlier chunks were not a BOM after all.
        let mut joined = BytesMut::with_capacity(before + chunk.len());
        joined.extend_from_slice(&BOM[..before]);
        joined.extend_from_slice(&chunk);
        Some(joined.freeze())
    }

    fn next_item(&mut self) -> Option<Item> {
        loop {
            if self.pos >= self.input.len() {
                return self.input_exhausted();
            }
            if self.skip_lf {
                self.skip_lf = false;
                if self.input[self.pos] == b'\n' {
                    self.pos += 1;
                    if self.accumulating {
                        // Keep the block's bytes exactly as received, so its
                        // size does not depend on where the reads split it.
                        self.partial.extend_from_slice(b"\n");
                        self.line_start = self.partial.len();
                    }
                    if !self.accumulating && !self.block.has_lines {
                        self.block_start = self.pos;
                    }
                    continue;
                }
            }
            if self.skipping.is_some() {
                self.skip_step();
                continue;
            }
            let rest = &self.input[self.pos..];
            // An empty line right after a line end is the common case: skip the search.
            let found = if matches!(rest[0], b'\n' | b'\r') {
                Some(0)
            } else {
                memchr::memchr2(b'\n', b'\r', rest)
            };
            let Some(i) = found else {
                return self.input_exhausted();
            };
            let terminator = rest[i];
            let end = self.pos + i;
            let line = if self.accumulating {
                self.partial.extend_from_slice(&self.input[self.pos..=end]);
                let start = self.line_start;
                self.line_start = self.partial.len();
                start..self.partial.len() - 1
            } else {
                self.pos - self.block_start..end - self.block_start
            };
            self.pos = end + 1;
            self.skip_lf = terminator == b'\r';
            if let Some(item) = self.process_line(line, terminator == b'\n') {
                return Some(item);
            }
        }
    }

    /// The chunk is used up: keep the incomplete block's bytes and check limits.
    fn input_exhausted(&mut self) -> Option<Item> {
        if self.skipping.is_some() {
            self.input = Bytes::new();
            self.pos = 0;
            return None;
        }
        if self.pos < self.input.len() || (!self.accumulating && self.block_start < self.pos) {
            if self.accumulating {
                self.partial.extend_from_slice(&self.input[self.pos..]);
            } else {
                // Size the buffer for an event like the last one that spanned
                // reads, so that a large event is copied once, not regrown.
                let tail = &self.input[self.block_start..];
                let hint = self.spanning_size_hint.min(self.limits.max_event_size);
                self.partial.reserve(tail.len().max(hint));
                self.partial.extend_from_slice(tail);
                self.line_start = self.pos - self.block_start;
                self.accumulating = true;
            }
        }
        self.input = Bytes::new();
        self.pos = 0;
        self.block_start = 0;
        if !self.accumulating {
            return None;
        }
        let line_len = self.partial.len() - self.line_start;
        if line_len > self.limits.max_line_len {
            return Some(self.fail(
                DecodeError::LineTooLong {
                    limit: self.limits.max_line_len,
                },
                false,
            ));
        }
        // Complete lines were checked as they ended; an incomplete one will
        // end past the whole buffer, so the event is already too large.
        if line_len > 0 && self.partial.len() > self.limits.max_event_size {
            return Some(self.fail(
                DecodeError::EventTooLarge {
                    limit: self.limits.max_event_size,
                },
                false,
            ));
        }
        None
    }

    /// Discards the current block and skips to the next empty line.
    fn fail(&mut self, error: DecodeError, at_line_start: bool) -> Item {
        self.reset_block();
        self.skipping = Some(Skip { at_line_start });
        Item::Error(error)
    }

    fn skip_step(&mut self) {
        let rest = &self.input[self.pos..];
        let Some(skip) = self.skipping.as_mut() else {
            return;
        };
        match memchr::memchr2(b'\n', b'\r', rest) {
            None => {
                skip.at_line_start = false;
                self.pos = self.input.len();
            }
            Some(i) => {
                let empty_line = i == 0 && skip.at_line_start;
                skip.at_line_start = true;
                self.skip_lf = rest[i] == b'\r';
                self.pos += i + 1;
                if empty_line {
                    self.skipping = None;
                    self.block_start = self.pos;
                }
            }
        }
    }

    /// The bytes of the current block read so far.
    fn block_bytes(&self) -> &[u8] {
        if self.accumulating {
            &self.partial
        } else {
            &self.input[self.block_start..]
        }
    }

    fn process_line(&mut self, line: Range<usize>, lf: bool) -> Option<Item> {
        if line.is_empty() {
            return self.end_of_block(lf);
        }
        if line.len() > self.limits.max_line_len {
            let limit = self.limits.max_line_len;
            return Some(self.fail(DecodeError::LineTooLong { limit }, true));
        }
        if line.end + 1 > self.limits.max_event_size {
            let limit = self.limits.max_event_size;
            return Some(self.fail(DecodeError::EventTooLarge { limit }, true));
        }
        let bytes = &self.block_bytes()[line.clone()];
        let bom_led = bytes.starts_with(BOM);
        let offset = line.start;
        let shift = |r: Range<usize>| Span::new(r.start + offset..r.end + offset);
        match parse_line(bytes) {
            Line::Comment(text) => {
                let text = text.start + offset..text.end + offset;
                let item = Item::Comment(if self.accumulating {
                    Bytes::copy_from_slice(&self.partial[text])
                } else {
                    self.input
                        .slice(self.block_start + text.start..self.block_start + text.end)
                });
                if self.block.has_lines {
                    self.block.canonical = false;
                } else {
                    self.drop_block_prefix();
                }
                return Some(item);
            }
            Line::Data(value) => self.block.fields.data.push(shift(value)),
            Line::Event(value) => self.block.fields.event_type = Some(shift(value)),
            Line::Id(value) => self.block.fields.id = Some(shift(value)),
            Line::Retry(ms) => {
                self.note_line(lf, bom_led);
                return Some(Item::Retry(ms));
            }
            Line::Ignored => {}
        }
        self.note_line(lf, bom_led);
        None
    }

    fn note_line(&mut self, lf: bool, bom_led: bool) {
        self.block.has_lines = true;
        if !lf || bom_led {
            self.block.canonical = false;
        }
    }

    /// Forgets the lines read so far (only comments) so the block starts here.
    fn drop_block_prefix(&mut self) {
        if self.accumulating {
            self.partial.clear();
            self.accumulating = false;
            self.line_start = 0;
        }
        self.block_start = self.pos;
    }

    fn reset_block(&mut self) {
        self.block.has_lines = false;
        self.block.canonical = true;
        self.block.fields.data.clear();
        self.block.fields.event_type = None;
        self.block.fields.id = None;
        self.partial.clear();
        self.accumulating = false;
        self.line_start = 0;
        self.block_start = self.pos;
    }

    /// An empty line: dispatch the event (WHATWG "dispatch the event").
    fn end_of_block(&mut self, lf: bool) -> Option<Item> {
        if !self.block.has_lines {
            self.drop_block_prefix();
            return None;
        }
        let bytes = if self.accumulating {
            self.spanning_size_hint = self.partial.len() + 1;
            self.partial.split().freeze()
        } else {
            self.input.slice(self.block_start..self.pos)
        };
        let canonical = self.block.canonical && lf && is_utf8(&bytes);
        let fields = Fields {
            data: std::mem::take(&mut self.block.fields.data),
            event_type: self.block.fields.event_type.take(),
            id: self.block.fields.id.take(),
        };
        self.reset_block();
        let (bytes, fields) = if canonical {
            (bytes, fields)
        } else {
            let rebuilt = rebuild_frame(&bytes);
            let rebuilt_fields = scan_fields(&rebuilt);
            self.recycle(fields);
            (rebuilt, rebuilt_fields)
        };

        if let Some(id) = fields.id {
            self.last_event_id.clear();
            self.last_event_id.push_str(validated(&bytes, id.range()));
            self.shared_last_event_id = None;
        }
        let item = if fields.data.is_empty() {
            fields
                .id
                .map(|id| Item::IdUpdate(Frame::with_id_span(bytes, Some(id))))
        } else {
            let data = match fields.data.as_slice() {
                [only] => EventData::InFrame(*only),
                parts => EventData::Joined(join_lines(&bytes, parts)),
            };
            let last_event_id = if fields.id.is_some() {
                LastEventId::FromFrame
            } else {
                let id = &self.last_event_id;
                LastEventId::Earlier(
                    self.shared_last_event_id
                        .get_or_insert_with(|| Bytes::copy_from_slice(id.as_bytes()))
                        .clone(),
                )
            };
            Some(Item::Event(Event {
                event_type: fields.event_type.unwrap_or_default(),
                data,
                last_event_id,
                frame: Frame::with_id_span(bytes, fields.id),
            }))
        };
        self.recycle(fields);
        item
    }

    /// Keeps the data range buffer's capacity for the next block.
    fn recycle(&mut self, fields: Fields) {
        if fields.data.capacity() > self.block.fields.data.capacity() {
            let mut data = fields.data;
            data.clear();
            self.block.fields.data = data;
        }
    }
}

/// Data values joined with LF, from valid UTF-8 `bytes`.
fn join_lines(bytes: &[u8], parts: &[Span]) -> String {
    let len = parts.iter().map(|r| r.range().len() + 1).sum::<usize>();
    let mut out = String::with_capacity(len);
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(validated(bytes, part.range()));
    }
    out
}

/// The fields of a rebuilt (LF-only, valid UTF-8, comment-free) block.
fn scan_fields(block: &[u8]) -> Fields {
    let mut fields = Fields::default();
    let mut start = 0;
    while let Some(i) = memchr::memchr(b'\n', &block[start..]) {
        let line = start..start + i;
        start += i + 1;
        if line.is_empty() {
            continue;
        }
        let shift = |r: Range<usize>| Span::new(r.start + line.start..r.end + line.start);
        match parse_line(&block[line.clone()]) {
            Line::Data(value) => fields.data.push(shift(value)),
            Line::Event(value) => fields.event_type = Some(shift(value)),
            Line::Id(value) => fields.id = Some(shift(value)),
            Line::Comment(_) | Line::Retry(_) | Line::Ignored => {}
        }
    }
    fields
}

/// Rebuilds a block canonically: LF line ends, invalid UTF-8 replaced,
/// comments and BOM-led lines dropped; every other line kept in order.
fn rebuild_frame(block: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(block.len() + 1);
    let mut rest = block;
    while !rest.is_empty() {
        let (line, next) = match memchr::memchr2(b'\n', b'\r', rest) {
            Some(i) => {
                let skip = if rest[i] == b'\r' && rest.get(i + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
                (&rest[..i], &rest[i + skip..])
            }
            None => (rest, &rest[rest.len()..]),
        };
        rest = next;
        if line.is_empty() || line[0] == b':' || line.starts_with(BOM) {
            continue;
        }
        out.extend_from_slice(String::from_utf8_lossy(line).as_bytes());
        out.extend_from_slice(b"\n");
    }
    out.extend_from_slice(b"\n");
    out.freeze()
}
