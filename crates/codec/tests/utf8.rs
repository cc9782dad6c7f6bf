//! UTF-8 and chunk boundaries: the decoder validates each read once and only
//! re-checks blocks (or the seams between reads) that the read's check did
//! not cover. These tests put multi-byte characters and invalid sequences on
//! every side of a chunk boundary and compare with an independent reference.

mod support;

use bytes::Bytes;
use proptest::prelude::*;
use sse_gateway_codec::{CodecLimits, Decoder, Item};
use support::{chunkings, decode_items, decode_with, ev, Out};

/// Frames and reduced items of `input` fed in `chunks`.
fn frames_and_items(chunks: &[&[u8]]) -> (Vec<Vec<u8>>, Vec<Out>) {
    let items = decode_items(CodecLimits::default(), chunks);
    let frames = items
        .iter()
        .filter_map(|item| match item {
            Item::Event(e) => Some(e.frame().bytes().to_vec()),
            Item::IdUpdate(f) => Some(f.bytes().to_vec()),
            _ => None,
        })
        .collect();
    (frames, items.into_iter().map(support::reduce).collect())
}

/// The WHATWG algorithm, written the plain way: decode the whole stream
/// with replacement, drop one leading BOM, split lines, interpret them.
fn reference(input: &[u8]) -> Vec<Out> {
    let text = String::from_utf8_lossy(input);
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(&text);
    let mut lines = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(['\r', '\n']) {
        lines.push(&rest[..i]);
        let skip = if rest[i..].starts_with("\r\n") { 2 } else { 1 };
        rest = &rest[i + skip..];
    }
    let (mut data, mut event_type, mut id_buffer) = (None::<String>, String::new(), String::new());
    let mut out = Vec::new();
    for line in lines {
        if line.is_empty() {
            // The last event ID string takes the buffer's value.
            if let Some(data) = data.take() {
                let t = if event_type.is_empty() {
                    "message"
                } else {
                    &event_type
                };
                out.push(ev(t, &data, &id_buffer));
            }
            event_type.clear();
            continue;
        }
        if line.starts_with(':') {
            continue;
        }
        let (name, value) = match line.find(':') {
            Some(c) => (
                &line[..c],
                line[c + 1..].strip_prefix(' ').unwrap_or(&line[c + 1..]),
            ),
            None => (line, ""),
        };
        match name {
            "data" => match &mut data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => data = Some(value.to_owned()),
            },
            "event" => event_type = value.to_owned(),
            "id" if !value.contains('\0') => id_buffer = value.to_owned(),
            _ => {}
        }
    }
    out
}

fn events(outs: Vec<Out>) -> Vec<Out> {
    outs.into_iter()
        .filter(|o| matches!(o, Out::Ev(..)))
        .collect()
}

#[test]
fn multibyte_and_invalid_sequences_under_every_split() {
    let cases: &[(&str, &[u8], &[Out])] = &[
        (
            "multi-byte data",
            "id: é1\nevent: 😀\ndata: a€b😀c\n\n".as_bytes(),
            &[Out::Ev("😀".into(), "a€b😀c".into(), "é1".into())],
        ),
        (
            "invalid byte",
            b"data: a\xFFb\n\n",
            &[Out::Ev("message".into(), "a\u{FFFD}b".into(), String::new())],
        ),
        (
            "truncated sequence before the line end",
            b"data: \xE2\x82\n\n",
            &[Out::Ev("message".into(), "\u{FFFD}".into(), String::new())],
        ),
        (
            "lone continuation byte",
            b"data: \x80x\n\n",
            &[Out::Ev("message".into(), "\u{FFFD}x".into(), String::new())],
        ),
        (
            "valid, invalid, valid",
            b"data: \xC3\xA9\n\ndata: \xE2\x82\xAC\xED\xA0\x80\n\ndata: z\xC3\n\ndata: \xC3\xBC\n\n",
            &[
                Out::Ev("message".into(), "é".into(), String::new()),
                // A surrogate's encoding: one U+FFFD per byte (maximal subparts).
                Out::Ev("message".into(), "€\u{FFFD}\u{FFFD}\u{FFFD}".into(), String::new()),
                Out::Ev("message".into(), "z\u{FFFD}".into(), String::new()),
                Out::Ev("message".into(), "ü".into(), String::new()),
            ],
        ),
    ];
    for (name, input, want) in cases {
        assert_eq!(reference(input), *want, "reference: {name}");
        for chunks in chunkings(input) {
            let (frames, items) = frames_and_items(&chunks);
            assert_eq!(items, *want, "{name}: {chunks:?}");
            for frame in frames {
                assert!(std::str::from_utf8(&frame).is_ok(), "{name}: {chunks:?}");
            }
        }
    }
}

/// Events after an invalid sequence in the same read are checked on their
/// own, and still forwarded without a copy.
#[test]
fn valid_block_after_an_invalid_one_is_still_zero_copy() {
    let input = Bytes::from_static(b"data: \xFF\n\ndata: \xC3\xA9\n\n");
    let mut decoder = Decoder::default();
    let items: Vec<_> = decoder.decode(input.clone()).collect();
    let [Item::Event(first), Item::Event(second)] = &items[..] else {
        panic!("{items:?}")
    };
    assert_eq!(first.data(), "\u{FFFD}");
    assert_eq!(second.data(), "é");
    assert_eq!(second.frame().bytes().as_ptr(), input[9..].as_ptr());
}

/// A character split between reads, inside an event that spans them, and
/// the next read starting with the rest of it.
#[test]
fn character_split_between_reads_of_a_spanning_event() {
    let mut input = b"data: ".to_vec();
    input.extend("é".repeat(40).as_bytes());
    input.extend(b"\n\ndata: x\n\n");
    for cut in [7, 8, 9, 50, 51] {
        let chunks = [&input[..cut], &input[cut..]];
        let (frames, items) = frames_and_items(&chunks);
        assert_eq!(
            items,
            vec![ev("message", &"é".repeat(40), ""), ev("message", "x", "")],
            "cut at {cut}"
        );
        assert_eq!(
            frames[0],
            input[..input.len() - 9],
            "cut at {cut}: kept as is"
        );
    }
}

fn line() -> impl Strategy<Value = Vec<u8>> {
    let name = prop_oneof![
        Just(&b"data:"[..]),
        Just(&b"data: "[..]),
        Just(&b"id: "[..]),
        Just(&b"event:"[..]),
        Just(&b":"[..]),
        Just(&b"retry: "[..]),
        Just(&b"\xEF\xBB\xBFdata: "[..]),
        Just(&b"x"[..]),
        Just(&b""[..]),
    ];
    let piece = prop_oneof![
        Just(&b"a"[..]),
        Just(&b"7"[..]),
        Just("é".as_bytes()),
        Just("€".as_bytes()),
        Just("😀".as_bytes()),
        Just(&b"\xFF"[..]),
        Just(&b"\x80"[..]),
        Just(&b"\xE2\x82"[..]),
        Just(&b"\xF0\x9F"[..]),
        Just(&b"\0"[..]),
    ];
    let end = prop_oneof![
        Just(&b"\n"[..]),
        Just(&b"\n"[..]),
        Just(&b"\r\n"[..]),
        Just(&b"\r"[..])
    ];
    (name, proptest::collection::vec(piece, 0..12), end).prop_map(|(name, pieces, end)| {
        let mut line = name.to_vec();
        pieces.iter().for_each(|p| line.extend_from_slice(p));
        line.extend_from_slice(end);
        line
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any chunking gives the events of the plain reference, and the same
    /// frames as the whole input; every frame is valid UTF-8.
    #[test]
    fn agrees_with_the_reference_under_any_split(
        lines in proptest::collection::vec(line(), 0..40),
        points in proptest::collection::vec(0usize..600, 0..12),
    ) {
        let input: Vec<u8> = lines.concat();
        let mut points = points;
        points.retain(|p| *p > 0 && *p < input.len());
        points.sort_unstable();
        points.dedup();
        let mut chunks = Vec::new();
        let mut last = 0;
        for p in points {
            chunks.push(&input[last..p]);
            last = p;
        }
        chunks.push(&input[last..]);

        let (whole_frames, whole_items) = frames_and_items(&[&input]);
        let (frames, items) = frames_and_items(&chunks);
        prop_assert_eq!(&items, &whole_items);
        prop_assert_eq!(&frames, &whole_frames);
        for frame in &frames {
            prop_assert!(std::str::from_utf8(frame).is_ok());
        }
        prop_assert_eq!(events(decode_with(CodecLimits::default(), &chunks)), reference(&input));
    }
}
