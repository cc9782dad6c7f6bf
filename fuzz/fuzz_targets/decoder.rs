//! Fuzz target for `sse_gateway_codec::Decoder`.
//!
//! Input layout: 4 header bytes, then the stream.
//!
//! * byte 0 chooses `max_event_size`, byte 1 `max_line_len` (see [`limit`]);
//! * bytes 2 and 3 choose how the stream is cut into chunks (see [`chunks`]);
//! * the rest is the upstream byte stream.
//!
//! Checked, for every input:
//!
//! 1. nothing panics;
//! 2. after each chunk's items are drained, `buffered_len()` is at most
//!    `max(max_event_size, max_line_len) + 1`;
//! 3. chunk independence: the same stream fed as one chunk yields the same
//!    items, compared through their public accessors (event type, data, last
//!    event ID, id and frame bytes; id updates' frames; comments; retries;
//!    the position of errors but not which limit they name, see
//!    [`Observed::Error`]), so that internal representation changes cannot
//!    cause false alarms;
//! 4. every `Event`/`IdUpdate` frame is valid UTF-8 without CR and ends with
//!    an empty line (`\n\n`), as the crate documents for forwarded frames;
//! 5. frame transparency: when the run yielded no `Item::Error`, decoding the
//!    concatenation of all `Event` and `IdUpdate` frames (with default limits)
//!    yields no error and the same sequence of events (event type, data, last
//!    event ID, own id) and id updates.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sse_gateway_codec::{CodecLimits, Decoder, Item};

const HEADER: usize = 4;

/// A limit from one byte: 0..=127 as is, 128..=191 in steps of 16 up to
/// 1136, 192..=255 the 1 MiB default (effectively no limit here).
fn limit(b: u8) -> usize {
    match b {
        0..=127 => usize::from(b),
        128..=191 => 128 + usize::from(b - 128) * 16,
        _ => 1 << 20,
    }
}

/// A tiny deterministic generator for chunk sizes.
struct XorShift(u32);

impl XorShift {
    fn next(&mut self) -> u32 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0 = x;
        x
    }
}

/// Cuts `data` into chunks according to `b2` and `b3`.
///
/// `b2 % 4` is the mode:
/// * 0: fixed size `1 + b2 / 4` (1..=64; 1 is byte by byte);
/// * 1: random sizes in `0..=(b3 % 32 + 1)`, empty chunks included;
/// * 2: random sizes in `1..=(b3 + 1)`;
/// * 3: cut right after every CR and every 0xEF (first BOM byte), and
///   before every LF, plus an empty chunk when `b3` is odd, to hit the
///   CR|LF and BOM boundaries.
fn chunks(data: &[u8], b2: u8, b3: u8) -> Vec<Bytes> {
    let whole = Bytes::copy_from_slice(data);
    let mut out = Vec::new();
    let mut rng = XorShift(0x9E37_79B9 ^ (u32::from(b2) << 8 | u32::from(b3)) | 1);
    let mut at = 0;
    match b2 % 4 {
        0 => {
            let size = 1 + usize::from(b2 / 4);
            while at < data.len() {
                let end = (at + size).min(data.len());
                out.push(whole.slice(at..end));
                at = end;
            }
        }
        1 | 2 => {
            let (min, span) = if b2 % 4 == 1 {
                (0, u32::from(b3 % 32) + 2)
            } else {
                (1, u32::from(b3) + 1)
            };
            while at < data.len() {
                let size = min + (rng.next() % span) as usize;
                let end = (at + size).min(data.len());
                out.push(whole.slice(at..end));
                at = end;
            }
        }
        _ => {
            let mut start = 0;
            for (i, &b) in data.iter().enumerate() {
                let cut = if b == b'\r' || b == 0xEF {
                    Some(i + 1)
                } else if b == b'\n' && i > start {
                    Some(i)
                } else {
                    None
                };
                if let Some(cut) = cut {
                    if cut > start {
                        out.push(whole.slice(start..cut));
                        if b3 % 2 == 1 {
                            out.push(Bytes::new());
                        }
                        start = cut;
                    }
                }
            }
            if start < data.len() {
                out.push(whole.slice(start..));
            }
        }
    }
    out
}

/// An item as its public accessors show it (what chunk independence compares).
#[derive(Debug, PartialEq, Eq)]
enum Observed {
    Event {
        event_type: String,
        data: String,
        last_event_id: String,
        id: Option<String>,
        frame: Vec<u8>,
    },
    IdUpdate {
        id: Option<String>,
        frame: Vec<u8>,
    },
    Comment(Vec<u8>),
    Retry(u64),
    /// Which limit is reported may depend on chunking: a line that is too long
    /// can first be seen, at the end of a chunk, as an event that is too large.
    /// Where errors occur, and what is dropped, must not.
    Error,
}

fn observed(items: &[Item]) -> Vec<Observed> {
    items
        .iter()
        .map(|item| match item {
            Item::Event(e) => Observed::Event {
                event_type: e.event_type().to_owned(),
                data: e.data().to_owned(),
                last_event_id: e.last_event_id().to_owned(),
                id: e.id().map(str::to_owned),
                frame: e.frame().bytes().to_vec(),
            },
            Item::IdUpdate(f) => Observed::IdUpdate {
                id: f.id().map(str::to_owned),
                frame: f.bytes().to_vec(),
            },
            Item::Comment(c) => Observed::Comment(c.to_vec()),
            Item::Retry(ms) => Observed::Retry(*ms),
            Item::Error(_) => Observed::Error,
        })
        .collect()
}

/// What frame transparency compares.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Event {
        event_type: String,
        data: String,
        last_event_id: String,
        id: Option<String>,
    },
    IdUpdate(Option<String>),
}

fn seen(items: &[Item]) -> Vec<Seen> {
    items
        .iter()
        .filter_map(|item| match item {
            Item::Event(e) => Some(Seen::Event {
                event_type: e.event_type().to_owned(),
                data: e.data().to_owned(),
                last_event_id: e.last_event_id().to_owned(),
                id: e.id().map(str::to_owned),
            }),
            Item::IdUpdate(f) => Some(Seen::IdUpdate(f.id().map(str::to_owned))),
            _ => None,
        })
        .collect()
}

/// Feeds `chunks` to a fresh decoder, checking the buffer bound after each.
fn run(limits: CodecLimits, chunks: &[Bytes]) -> Vec<Item> {
    let bound = limits.max_event_size.max(limits.max_line_len) + 1;
    let mut decoder = Decoder::new(limits);
    let mut items = Vec::new();
    for (i, chunk) in chunks.iter().enumerate() {
        items.extend(decoder.decode(chunk.clone()));
        let buffered = decoder.buffered_len();
        assert!(
            buffered <= bound,
            "buffered_len() = {buffered} > {bound} after chunk {i} of {} ({limits:?})",
            chunks.len()
        );
    }
    items
}

fn check_frame(bytes: &[u8]) {
    assert!(
        std::str::from_utf8(bytes).is_ok(),
        "frame is not UTF-8: {bytes:?}"
    );
    assert!(!bytes.contains(&b'\r'), "frame has a CR: {bytes:?}");
    assert!(
        bytes.ends_with(b"\n\n"),
        "frame does not end with an empty line: {bytes:?}"
    );
}

fuzz_target!(|input: &[u8]| {
    if input.len() < HEADER {
        return;
    }
    let limits = CodecLimits {
        max_event_size: limit(input[0]),
        max_line_len: limit(input[1]),
    };
    let data = &input[HEADER..];

    // 1 + 2: chunked run.
    let chunked = run(limits, &chunks(data, input[2], input[3]));

    // 3: chunk independence.
    let whole = run(limits, &[Bytes::copy_from_slice(data)]);
    assert!(
        observed(&chunked) == observed(&whole),
        "chunked and whole-input runs differ ({limits:?}):\n chunked: {:?}\n   whole: {:?}",
        observed(&chunked),
        observed(&whole)
    );

    // 4: frame shape.
    let mut frames = Vec::new();
    for item in &chunked {
        match item {
            Item::Event(e) => {
                check_frame(e.frame().bytes());
                frames.extend_from_slice(e.frame().bytes());
            }
            Item::IdUpdate(f) => {
                check_frame(f.bytes());
                frames.extend_from_slice(f.bytes());
            }
            _ => {}
        }
    }

    // 5: frame transparency, only for runs without a limit error.
    if chunked.iter().any(|item| matches!(item, Item::Error(_))) {
        return;
    }
    let mut decoder = Decoder::new(CodecLimits::default());
    let again: Vec<Item> = decoder.decode(Bytes::from(frames)).collect();
    assert!(
        !again.iter().any(|item| matches!(item, Item::Error(_))),
        "re-decoding the frames hit a limit: {again:?}"
    );
    assert_eq!(
        seen(&chunked),
        seen(&again),
        "re-decoding the frames changed the events"
    );
});
