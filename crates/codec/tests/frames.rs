//! The forwarding form: one frame per event, the upstream's bytes when canonical.

mod support;

use bytes::Bytes;
use sse_gateway_codec::{CodecLimits, Decoder, Item};
use support::decode_items;

fn frames(input: &[u8]) -> Vec<Vec<u8>> {
    decode_items(CodecLimits::default(), &[input])
        .into_iter()
        .filter_map(|item| match item {
            Item::Event(e) => Some(e.frame().bytes().to_vec()),
            Item::IdUpdate(f) => Some(f.bytes().to_vec()),
            _ => None,
        })
        .collect()
}

#[test]
fn frame_forms() {
    type Case<'a> = (&'a str, &'a [u8], &'a [&'a [u8]]);
    let cases: &[Case<'_>] = &[
        (
            "canonical kept",
            b"id: 1\nevent: t\ndata: x\n\n",
            &[b"id: 1\nevent: t\ndata: x\n\n"],
        ),
        (
            "unknown fields kept",
            b"foo: 1\ndata: x\n\n",
            &[b"foo: 1\ndata: x\n\n"],
        ),
        (
            "retry kept",
            b"retry: 5\ndata: x\n\n",
            &[b"retry: 5\ndata: x\n\n"],
        ),
        (
            "CRLF normalised",
            b"data: a\r\ndata: b\r\n\r\n",
            &[b"data: a\ndata: b\n\n"],
        ),
        ("CR normalised", b"data: a\r\r", &[b"data: a\n\n"]),
        (
            "leading comment dropped",
            b": c\ndata: x\n\n",
            &[b"data: x\n\n"],
        ),
        (
            "inner comment dropped",
            b"data: a\n:c\ndata: b\n\n",
            &[b"data: a\ndata: b\n\n"],
        ),
        (
            "invalid UTF-8 replaced",
            b"data: \xFF\n\n",
            &["data: \u{FFFD}\n\n".as_bytes()],
        ),
        (
            "start BOM never forwarded",
            b"\xEF\xBB\xBFdata: x\n\n",
            &[b"data: x\n\n"],
        ),
        (
            "BOM-led line dropped",
            b"data: x\n\xEF\xBB\xBFdata: y\n\n",
            &[b"data: x\n\n"],
        ),
        ("id-only block forwarded", b"id: 9\n\n", &[b"id: 9\n\n"]),
        (
            "id with NUL kept verbatim",
            b"id: a\0\ndata: x\n\n",
            &[b"id: a\0\ndata: x\n\n"],
        ),
        (
            "two events",
            b"data: 1\n\ndata: 2\n\n",
            &[b"data: 1\n\n", b"data: 2\n\n"],
        ),
    ];
    for (name, input, want) in cases {
        let want: Vec<Vec<u8>> = want.iter().map(|w| w.to_vec()).collect();
        assert_eq!(frames(input), want, "{name}");
    }
}

#[test]
fn canonical_frame_shares_the_input_buffer() {
    let input = Bytes::from_static(b"data: a\n\ndata: b\n\n");
    let mut decoder = Decoder::default();
    let items: Vec<_> = decoder.decode(input.clone()).collect();
    let Item::Event(second) = &items[1] else {
        panic!("{items:?}")
    };
    let frame = second.frame().bytes();
    assert_eq!(
        frame.as_ptr(),
        input[9..].as_ptr(),
        "no copy of canonical bytes"
    );
    assert_eq!(
        second.data().as_ptr(),
        input[15..].as_ptr(),
        "data shares the frame"
    );
}

#[test]
fn frame_id_is_set_only_by_the_block() {
    let items = decode_items(
        CodecLimits::default(),
        &[b"id: 1\ndata: a\n\ndata: b\n\nid\ndata: c\n\n"],
    );
    let ids: Vec<Option<String>> = items
        .iter()
        .map(|item| match item {
            Item::Event(e) => e.id().map(str::to_owned),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(ids, vec![Some("1".into()), None, Some(String::new())]);
}
