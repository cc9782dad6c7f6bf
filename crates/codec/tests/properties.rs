//! Property tests: encode/decode round trips, chunking independence, frame
//! transparency and no panics on arbitrary input.

mod support;

use bytes::Bytes;
use proptest::prelude::*;
use sse_gateway_codec::{encode_event, CodecLimits, Decoder, Item, OutgoingEvent};
use support::{decode_items, decode_with, reduce, Out};

#[derive(Debug, Clone)]
struct Ev {
    event_type: Option<String>,
    id: Option<String>,
    data: String,
}

fn event() -> impl Strategy<Value = Ev> {
    (
        proptest::option::of("[a-z][a-z0-9_]{0,8}"),
        proptest::option::of("[ -~é€😀]{0,12}"),
        // Data: any text but CR (a CR cannot be carried by SSE data).
        "[^\r]{0,40}",
    )
        .prop_map(|(event_type, id, data)| Ev {
            event_type,
            id,
            data,
        })
}

/// Splits `bytes` at the given (sorted, deduplicated) points.
fn split_at(bytes: &[u8], mut points: Vec<usize>) -> Vec<&[u8]> {
    points.retain(|p| *p > 0 && *p < bytes.len());
    points.sort_unstable();
    points.dedup();
    let mut chunks = Vec::new();
    let mut last = 0;
    for p in points {
        chunks.push(&bytes[last..p]);
        last = p;
    }
    chunks.push(&bytes[last..]);
    chunks
}

fn dispatched(outs: Vec<Out>) -> Vec<Out> {
    outs.into_iter()
        .filter(|o| matches!(o, Out::Ev(..) | Out::Id(_)))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn encode_then_decode_gives_the_events_back(
        events in proptest::collection::vec(event(), 0..20),
        points in proptest::collection::vec(0usize..4096, 0..30),
    ) {
        let mut wire = Vec::new();
        let mut want = Vec::new();
        let mut last_id = String::new();
        for e in &events {
            let frame = encode_event(&OutgoingEvent {
                event_type: e.event_type.as_deref(),
                id: e.id.as_deref(),
                data: &e.data,
                retry: None,
            }).unwrap();
            wire.extend_from_slice(frame.bytes());
            if let Some(id) = &e.id { last_id = id.clone(); }
            let data = e.data.clone();
            want.push(Out::Ev(e.event_type.clone().unwrap_or_else(|| "message".into()), data, last_id.clone()));
        }
        let chunks = split_at(&wire, points);
        prop_assert_eq!(decode_with(CodecLimits::default(), &chunks), want);
    }

    #[test]
    fn whole_and_byte_by_byte_agree(input in proptest::collection::vec(any::<u8>(), 0..300)) {
        let whole = decode_with(CodecLimits::default(), &[&input]);
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        prop_assert_eq!(decode_with(CodecLimits::default(), &bytes), whole);
    }

    #[test]
    fn sse_like_input_agrees_under_any_split(
        lines in proptest::collection::vec(
            prop_oneof![
                Just("data: x".to_string()), Just("data".to_string()), Just("id: 1".to_string()),
                Just("id".to_string()), Just(":c".to_string()), Just("event: t".to_string()),
                Just("retry: 10".to_string()), Just(String::new()), Just("\u{FEFF}data: b".to_string()),
                "[a-z: ]{0,6}",
            ],
            0..30),
        ends in proptest::collection::vec(prop_oneof![Just("\n"), Just("\r"), Just("\r\n")], 30),
        points in proptest::collection::vec(0usize..400, 0..20),
    ) {
        let mut input = String::new();
        for (line, end) in lines.iter().zip(&ends) {
            input.push_str(line);
            input.push_str(end);
        }
        let whole = decode_with(CodecLimits::default(), &[input.as_bytes()]);
        prop_assert_eq!(decode_with(CodecLimits::default(), &split_at(input.as_bytes(), points)), whole);
    }

    /// A client that reads only the frames sees the same events and ids as a
    /// client reading the upstream bytes: the gateway is transparent.
    #[test]
    fn frames_are_transparent(
        lines in proptest::collection::vec(
            prop_oneof![
                "data:[ a-zé\u{FEFF}]{0,5}", "id:[ 0-9\u{0}]{0,3}", "event:[ a-z]{0,3}",
                Just(":comment".to_string()), Just(String::new()), Just(String::new()),
                Just("\u{FEFF}data: b".to_string()), Just("retry: 7".to_string()), "[a-z]{1,4}",
            ],
            0..30),
        ends in proptest::collection::vec(prop_oneof![Just("\n"), Just("\r"), Just("\r\n")], 30),
        junk in proptest::option::of(proptest::collection::vec(any::<u8>(), 1..4)),
    ) {
        let mut input = Vec::new();
        for (line, end) in lines.iter().zip(&ends) {
            input.extend_from_slice(line.as_bytes());
            if let Some(junk) = &junk { if line.starts_with("data") { input.extend_from_slice(junk); } }
            input.extend_from_slice(end.as_bytes());
        }
        let items = decode_items(CodecLimits::default(), &[&input]);
        let mut frames = Vec::new();
        let mut direct = Vec::new();
        for item in items {
            match &item {
                Item::Event(e) => frames.extend_from_slice(e.frame().bytes()),
                Item::IdUpdate(f) => frames.extend_from_slice(f.bytes()),
                _ => {}
            }
            direct.push(reduce(item));
        }
        let via_frames = decode_with(CodecLimits::default(), &[&frames]);
        prop_assert_eq!(dispatched(via_frames), dispatched(direct));
    }

    #[test]
    fn never_panics_and_stays_bounded(
        input in proptest::collection::vec(any::<u8>(), 0..2000),
        points in proptest::collection::vec(0usize..2000, 0..40),
        max_event_size in 1usize..64,
        max_line_len in 1usize..64,
    ) {
        let limits = CodecLimits { max_event_size, max_line_len };
        let mut decoder = Decoder::new(limits);
        for chunk in split_at(&input, points) {
            let _ = decoder.decode(Bytes::copy_from_slice(chunk)).count();
            prop_assert!(decoder.buffered_len() <= max_event_size.max(max_line_len) + 1);
        }
    }
}
