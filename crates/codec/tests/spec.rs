//! Table-driven tests of the WHATWG "interpreting an event stream" rules.
//! Each case is checked whole, byte by byte, and split at every position.

mod support;

use sse_gateway_codec::CodecLimits;
use support::{chunkings, decode, decode_with, ev, Out};

fn check(name: &str, input: &[u8], want: &[Out]) {
    for chunks in chunkings(input) {
        let got = decode_with(CodecLimits::default(), &chunks);
        assert_eq!(got, want, "case {name:?}, chunks {chunks:?}");
    }
}

#[test]
fn spec_rules() {
    use Out::*;
    let cases: Vec<(&str, &[u8], Vec<Out>)> = vec![
        (
            "simple",
            b"data: hello\n\n",
            vec![ev("message", "hello", "")],
        ),
        (
            "no space",
            b"data:hello\n\n",
            vec![ev("message", "hello", "")],
        ),
        (
            "one space stripped only",
            b"data:  two\n\n",
            vec![ev("message", " two", "")],
        ),
        (
            "multi-line data",
            b"data: a\ndata: b\ndata\n\n",
            vec![ev("message", "a\nb\n", "")],
        ),
        (
            "final LF removed once",
            b"data\ndata\n\n",
            vec![ev("message", "\n", "")],
        ),
        (
            "empty data dispatched",
            b"data\n\n",
            vec![ev("message", "", "")],
        ),
        (
            "field with no colon",
            b"data\n\n",
            vec![ev("message", "", "")],
        ),
        ("no data: not dispatched", b"event: x\n\n", vec![]),
        (
            "event type",
            b"event: tick\ndata: 1\n\n",
            vec![ev("tick", "1", "")],
        ),
        (
            "event type reset after dispatch",
            b"event: a\ndata: 1\n\ndata: 2\n\n",
            vec![ev("a", "1", ""), ev("message", "2", "")],
        ),
        (
            "empty event type",
            b"event:\ndata: 1\n\n",
            vec![ev("message", "1", "")],
        ),
        (
            "last event field wins",
            b"event: a\nevent: b\ndata: 1\n\n",
            vec![ev("b", "1", "")],
        ),
        ("id", b"id: 1\ndata: a\n\n", vec![ev("message", "a", "1")]),
        (
            "id persists",
            b"id: 1\ndata: a\n\ndata: b\n\n",
            vec![ev("message", "a", "1"), ev("message", "b", "1")],
        ),
        (
            "empty id resets",
            b"id: 1\ndata: a\n\nid\ndata: b\n\n",
            vec![ev("message", "a", "1"), ev("message", "b", "")],
        ),
        (
            "id with NUL ignored",
            b"id: 1\ndata: a\n\nid: 2\0x\ndata: b\n\n",
            vec![ev("message", "a", "1"), ev("message", "b", "1")],
        ),
        (
            "id-only block applies",
            b"id: 5\n\ndata: a\n\n",
            vec![Id("5".into()), ev("message", "a", "5")],
        ),
        (
            "id in unterminated block",
            b"data: a\n\nid: 9\ndata: b\n",
            vec![ev("message", "a", "")],
        ),
        (
            "retry",
            b"retry: 1500\ndata: a\n\n",
            vec![Retry(1500), ev("message", "a", "")],
        ),
        (
            "retry non-digit ignored",
            b"retry: 15x\nretry: -1\nretry:\nretry:  1\n\n",
            vec![],
        ),
        (
            "retry applies without dispatch",
            b"retry: 20\n",
            vec![Retry(20)],
        ),
        (
            "unknown fields ignored",
            b"foo: bar\nData: x\ndata: y\n\n",
            vec![ev("message", "y", "")],
        ),
        (
            "comment",
            b": hi\ndata: a\n\n",
            vec![Comment(b" hi".to_vec()), ev("message", "a", "")],
        ),
        (
            "comment only",
            b":\n:\n\n",
            vec![Comment(vec![]), Comment(vec![])],
        ),
        (
            "comment mid-event",
            b"data: a\n: x\ndata: b\n\n",
            vec![Comment(b" x".to_vec()), ev("message", "a\nb", "")],
        ),
        (
            "CRLF",
            b"data: a\r\ndata: b\r\n\r\n",
            vec![ev("message", "a\nb", "")],
        ),
        (
            "CR",
            b"data: a\rdata: b\r\r",
            vec![ev("message", "a\nb", "")],
        ),
        (
            "mixed line ends",
            b"data: a\rdata: b\ndata: c\r\n\n",
            vec![ev("message", "a\nb\nc", "")],
        ),
        (
            "CR CR is two line ends",
            b"data: a\r\rdata: b\n\n",
            vec![ev("message", "a", ""), ev("message", "b", "")],
        ),
        (
            "LF CR is two line ends",
            b"data: a\n\rdata: b\n\n",
            vec![ev("message", "a", ""), ev("message", "b", "")],
        ),
        (
            "BOM stripped at start",
            b"\xEF\xBB\xBFdata: a\n\n",
            vec![ev("message", "a", "")],
        ),
        (
            "only one BOM stripped",
            b"\xEF\xBB\xBF\xEF\xBB\xBFdata: a\n\n",
            vec![],
        ),
        (
            "BOM mid-stream is not stripped",
            b"data: a\n\n\xEF\xBB\xBFdata: b\n\n",
            vec![ev("message", "a", "")],
        ),
        ("partial BOM is data", b"\xEF\xBBdata: a\n\n", vec![]),
        (
            "invalid UTF-8 replaced",
            b"data: a\xFFb\n\n",
            vec![ev("message", "a\u{FFFD}b", "")],
        ),
        (
            "truncated sequence replaced",
            b"data: \xE2\x82\n\n",
            vec![ev("message", "\u{FFFD}", "")],
        ),
        (
            "multi-byte UTF-8",
            "data: €😀\n\n".as_bytes(),
            vec![ev("message", "€😀", "")],
        ),
        (
            "colon in value",
            b"data: a: b\n\n",
            vec![ev("message", "a: b", "")],
        ),
        (
            "unterminated event discarded",
            b"data: a\n\ndata: b\n",
            vec![ev("message", "a", "")],
        ),
        ("blank lines only", b"\n\n\r\n\r\r", vec![]),
        (
            "leading blank lines",
            b"\n\ndata: a\n\n",
            vec![ev("message", "a", "")],
        ),
        ("space before field name", b" data: a\n\n", vec![]),
        (
            "WPT: bogus fields",
            b"data:1\nxx\ndata:2\n\n",
            vec![ev("message", "1\n2", "")],
        ),
    ];
    for (name, input, want) in &cases {
        check(name, input, want);
    }
}

#[test]
fn last_event_id_is_kept_by_the_decoder() {
    let mut d = sse_gateway_codec::Decoder::default();
    let _: Vec<_> = d
        .decode(bytes::Bytes::from_static(b"id: 3\ndata: x\n\nid: 4\n"))
        .collect();
    assert_eq!(
        d.last_event_id(),
        "3",
        "an id takes effect only at the empty line"
    );
    let _: Vec<_> = d.decode(bytes::Bytes::from_static(b"\n")).collect();
    assert_eq!(d.last_event_id(), "4");
}

#[test]
fn event_with_nul_in_data_is_kept() {
    assert_eq!(decode(b"data: a\0b\n\n"), vec![ev("message", "a\0b", "")]);
}
