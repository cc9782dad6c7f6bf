//! [`Decoder`]: the incremental event-stream parser.
//!
//! Bytes are read in whatever chunks the network delivers. A block (the lines
//! of one event, up to and including its empty line) that lies entirely in
//! one chunk is sliced out of it without a copy; a block that spans chunks is
//! gathered in `partial`, each byte copied once. Each chunk is validated as
//! UTF-8 in one pass when it arrives (see [`valid_span`]); a block inside the
//! valid part is not checked again, and the bytes gathered in `partial` carry
//! that knowledge with them (only the seam of a character split between
//! chunks is checked again). Lines are found with `memchr2` (short ones in a
//! register) and interpreted as soon as they are complete, the usual LF-ended
//! field lines in a tight loop; nothing is scanned twice except when a
//! non-canonical frame must be rebuilt.

use std::ops::Range;

use bytes::{Bytes, BytesMut};

use crate::event::{EventData, LastEventId};
use crate::field::{parse_line, Line, BOM};
use crate::text::{is_utf8, valid_prefix, valid_span, validated, Prefix, Span};
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
    /// The part of `input` validated as UTF-8 when it was pushed (see
    /// [`valid_span`]): a block or line within it needs no other check.
    valid: Range<usize>,
    /// Where the current block starts in `input`, while it lies there.
    block_start: usize,
    /// The current block's bytes, once it has spanned a chunk boundary.
    partial: BytesMut,
    accumulating: bool,
    /// `partial[..partial_valid]` is known to be valid UTF-8 (ending on a
    /// character boundary), or `None`: it has an invalid sequence.
    partial_valid: Option<usize>,
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
            valid: 0..0,
            block_start: 0,
            partial: BytesMut::new(),
            accumulating: false,
            partial_valid: Some(0),
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
        // One pass over the whole chunk, instead of one per block: blocks that
        // lie in the valid span are not validated again.
        self.valid = valid_span(&self.input);
    }

    /// Appends `input[range]` to `partial`, keeping track of how much of
    /// `partial` is known to be valid UTF-8. `range` starts on a character
    /// boundary: at a line start or at the chunk's first byte.
    #[inline]
    fn extend_partial(&mut self, range: Range<usize>) {
        let old = self.partial.len();
        self.partial.extend_from_slice(&self.input[range.clone()]);
        let Some(known) = self.partial_valid else {
            return;
        };
        if known == old && self.valid.start <= range.start && range.end <= self.valid.end {
            // The common case: valid so far, and the new bytes were validated
            // with their chunk.
            self.partial_valid = Some(self.partial.len());
            return;
        }
        self.validate_partial(range, old, known);
    }

    /// The rare case of [`Self::extend_partial`].
    #[cold]
    fn validate_partial(&mut self, range: Range<usize>, old: usize, known: usize) {
        // A sequence split across chunks, or bytes outside the valid span:
        // validate from the last known character boundary. When the new bytes
        // were validated with their chunk from `valid.start`, only the seam
        // before it needs a check.
        let seam_end = old + self.valid.start.saturating_sub(range.start);
        let interior_end = old + self.valid.end.min(range.end).saturating_sub(range.start);
        let mut known = known;
        if range.start <= self.valid.end
            && seam_end < interior_end
            && valid_prefix(&self.partial[known..seam_end]) == Prefix::Whole
        {
            known = interior_end;
        }
        self.partial_valid = match valid_prefix(&self.partial[known..]) {
            Prefix::Whole => Some(self.partial.len()),
            Prefix::Incomplete(n) => Some(known + n),
            Prefix::Invalid(_) => None,
        };
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
                        self.extend_partial(self.pos - 1..self.pos);
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
            // Where the line at `pos` ends, when already known.
            let mut known = None;
            if !self.accumulating {
                // The common case in a tight loop: LF-ended field lines of a
                // block that starts in this chunk. A line that needs more (CR,
                // comment, `retry`, BOM, a limit) goes on to the general code
                // below, with its end when it was found.
                loop {
                    let rest = &self.input[self.pos..];
                    let Some(&first) = rest.first() else {
                        return self.input_exhausted();
                    };
                    if first == b'\n' {
                        self.pos += 1;
                        match self.end_of_block(true) {
                            Some(item) => return Some(item),
                            None => continue,
                        }
                    }
                    if matches!(first, b':' | 0xEF) {
                        break;
                    }
                    let Some(i) = find_line_end(rest) else {
                        return self.input_exhausted();
                    };
                    let end = self.pos + i;
                    if rest[i] != b'\n'
                        || i > self.limits.max_line_len
                        || end + 1 - self.block_start > self.limits.max_event_size
                    {
                        known = Some(i);
                        break;
                    }
                    let offset = self.pos - self.block_start;
                    let shift = |r: Range<usize>| Span::new(r.start + offset..r.end + offset);
                    match parse_line(&rest[..i]) {
                        Line::Data(value) => self.block.fields.data.push(shift(value)),
                        Line::Event(value) => self.block.fields.event_type = Some(shift(value)),
                        Line::Id(value) => self.block.fields.id = Some(shift(value)),
                        Line::Ignored => {}
                        Line::Comment(_) | Line::Retry(_) => {
                            known = Some(i);
                            break;
                        }
                    }
                    self.block.has_lines = true;
                    self.pos = end + 1;
                }
            }
            let rest = &self.input[self.pos..];
            // An empty line right after a line end is the common case: skip the search.
            let found = if known.is_some() {
                known
            } else if matches!(rest[0], b'\n' | b'\r') {
                Some(0)
            } else {
                find_line_end(rest)
            };
            let Some(i) = found else {
                return self.input_exhausted();
            };
            let terminator = rest[i];
            let end = self.pos + i;
            let line = if self.accumulating {
                self.extend_partial(self.pos..end + 1);
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
                self.extend_partial(self.pos..self.input.len());
            } else {
                // Size the buffer for an event like the last one that spanned
                // reads, so that a large event is copied once, not regrown.
                let tail = self.input.len() - self.block_start;
                let hint = self.spanning_size_hint.min(self.limits.max_event_size);
                self.partial.reserve(tail.max(hint));
                self.extend_partial(self.block_start..self.input.len());
                self.line_start = self.pos - self.block_start;
                self.accumulating = true;
            }
        }
        self.input = Bytes::new();
        self.pos = 0;
        self.block_start = 0;
        self.valid = 0..0;
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
            self.partial_valid = Some(0);
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
        self.partial_valid = Some(0);
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
        let (bytes, utf8) = if self.accumulating {
            self.spanning_size_hint = self.partial.len() + 1;
            let utf8 = self.partial_valid == Some(self.partial.len());
            (self.partial.split().freeze(), utf8)
        } else {
            let block = self.block_start..self.pos;
            let utf8 = (self.valid.start <= block.start && block.end <= self.valid.end)
                || is_utf8(&self.input[block.clone()]);
            (self.input.slice(block), utf8)
        };
        let canonical = self.block.canonical && lf && utf8;
        debug_assert!(!canonical || std::str::from_utf8(&bytes).is_ok());
        let item = if canonical {
            dispatch(
                bytes,
                &self.block.fields,
                &mut self.last_event_id,
                &mut self.shared_last_event_id,
            )
        } else {
            let rebuilt = rebuild_frame(&bytes);
            let fields = scan_fields(&rebuilt);
            dispatch(
                rebuilt,
                &fields,
                &mut self.last_event_id,
                &mut self.shared_last_event_id,
            )
        };
        self.reset_block();
        item
    }
}

/// WHATWG "dispatch the event" for a complete block: `bytes` is its
/// canonical frame (valid UTF-8) and `fields` are ranges of it.
fn dispatch(
    bytes: Bytes,
    fields: &Fields,
    last_event_id: &mut String,
    shared_last_event_id: &mut Option<Bytes>,
) -> Option<Item> {
    if let Some(id) = fields.id {
        last_event_id.clear();
        last_event_id.push_str(validated(&bytes, id.range()));
        *shared_last_event_id = None;
    }
    if fields.data.is_empty() {
        return fields
            .id
            .map(|id| Item::IdUpdate(Frame::with_id_span(bytes, Some(id))));
    }
    let data = match fields.data.as_slice() {
        [only] => EventData::InFrame(*only),
        parts => EventData::Joined(join_lines(&bytes, parts)),
    };
    let last_event_id = if fields.id.is_some() {
        LastEventId::FromFrame
    } else {
        LastEventId::Earlier(
            shared_last_event_id
                .get_or_insert_with(|| Bytes::copy_from_slice(last_event_id.as_bytes()))
                .clone(),
        )
    };
    Some(Item::Event(Event {
        data,
        last_event_id,
        frame: Frame::event(bytes, fields.id, fields.event_type.unwrap_or_default()),
    }))
}

/// The first CR or LF in `bytes`.
///
/// Most field lines other than `data` are short: their first 16 bytes are
/// searched eight at a time in a register (no call, no SIMD set-up), the
/// rest with `memchr2`.
#[inline]
fn find_line_end(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    const LF: u64 = u64::from_ne_bytes([b'\n'; 8]);
    const CR: u64 = u64::from_ne_bytes([b'\r'; 8]);
    if bytes.starts_with(b"data:") {
        // Data lines are the long ones.
        return memchr::memchr2(b'\n', b'\r', bytes);
    }
    let mut searched = 0;
    for word in bytes.chunks_exact(8).take(2) {
        let Ok(word) = <[u8; 8]>::try_from(word) else {
            break;
        };
        let word = u64::from_le_bytes(word);
        // A byte of `lf` (`cr`) is zero where `word` has LF (CR). The classic
        // test sets the high bit of the first zero byte; bits above it may be
        // spurious, so only the lowest one is used.
        let (lf, cr) = (word ^ LF, word ^ CR);
        let found = (lf.wrapping_sub(ONES) & !lf | cr.wrapping_sub(ONES) & !cr) & HIGH;
        if found != 0 {
            return Some(searched + found.trailing_zeros() as usize / 8);
        }
        searched += 8;
    }
    memchr::memchr2(b'\n', b'\r', &bytes[searched..]).map(|i| i + searched)
}

/// Data values joined with LF, from valid UTF-8 `bytes`.
fn join_lines(bytes: &[u8], parts: &[Span]) -> String {
    // Exactly the joined length: n values and n - 1 LFs.
    let len = parts
        .iter()
        .map(|r| r.range().len() + 1)
        .sum::<usize>()
        .saturating_sub(1);
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
