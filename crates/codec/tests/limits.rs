//! Limits: an error item, resynchronisation at the next empty line, bounded memory.

mod support;

use bytes::Bytes;
use sse_gateway_codec::{CodecLimits, DecodeError, Decoder, Item};
use support::{chunkings, decode_with, ev, Out};

const LIMITS: CodecLimits = CodecLimits {
    max_event_size: 32,
    max_line_len: 16,
};

#[test]
fn oversized_event_is_reported_and_skipped() {
    let input = b"data: 0123456789\ndata: 0123456789\ndata: x\n\ndata: ok\n\n";
    for chunks in chunkings(input) {
        assert_eq!(
            decode_with(LIMITS, &chunks),
            vec![Out::Err, ev("message", "ok", "")],
            "{chunks:?}"
        );
    }
}

#[test]
fn long_line_is_reported_and_skipped() {
    let input = b"id: 1\ndata: 0123456789abcdef\n\nid: 2\ndata: ok\n\n";
    for chunks in chunkings(input) {
        assert_eq!(
            decode_with(LIMITS, &chunks),
            vec![Out::Err, ev("message", "ok", "2")],
            "{chunks:?}"
        );
    }
}

#[test]
fn long_comment_line_is_limited_too() {
    let input = b":0123456789abcdefghij\n\ndata: ok\n\n";
    assert_eq!(
        decode_with(LIMITS, &[input]),
        vec![Out::Err, ev("message", "ok", "")]
    );
}

#[test]
fn resync_handles_crlf_split_across_chunks() {
    let got = decode_with(
        LIMITS,
        &[
            b"data: 0123456789abcdefgh\r",
            b"\n\r",
            b"\ndata: ok\r\n\r\n",
        ],
    );
    assert_eq!(got, vec![Out::Err, ev("message", "ok", "")]);
}

#[test]
fn comments_without_blank_lines_do_not_accumulate() {
    let mut decoder = Decoder::new(LIMITS);
    for _ in 0..1000 {
        let items: Vec<_> = decoder
            .decode(Bytes::from_static(b": keepalive\n"))
            .collect();
        assert_eq!(items.len(), 1);
        assert!(matches!(items[0], Item::Comment(_)));
    }
    assert_eq!(decoder.buffered_len(), 0);
}

#[test]
fn memory_stays_bounded_on_an_endless_line() {
    let mut decoder = Decoder::new(LIMITS);
    let mut errors = 0;
    for _ in 0..10_000 {
        for item in decoder.decode(Bytes::from_static(b"data: xxxxxxxx")) {
            assert_eq!(item, Item::Error(DecodeError::LineTooLong { limit: 16 }));
            errors += 1;
        }
        assert!(decoder.buffered_len() <= 32, "{}", decoder.buffered_len());
    }
    assert_eq!(errors, 1, "one error per oversized event");
}

#[test]
fn error_says_which_limit() {
    let items: Vec<_> = Decoder::new(LIMITS)
        .decode(Bytes::from_static(b"data: 0123456789abcdef\n"))
        .collect();
    assert_eq!(
        items,
        vec![Item::Error(DecodeError::LineTooLong { limit: 16 })]
    );
}

/// Found by the fuzzer: a CRLF split across reads changed what counted
/// against `max_event_size`.
#[test]
fn crlf_counts_the_same_however_the_reads_split() {
    let cases: [(usize, &[u8]); 3] = [
        (14, b"data:x\r\ndata:y\n\n"),
        (15, b"data:x\r\ndata:y\n\n"),
        (3, b"id\r\n\r\n"),
    ];
    for (max_event_size, input) in cases {
        let limits = CodecLimits {
            max_event_size,
            max_line_len: 64,
        };
        let whole = decode_with(limits, &[input]);
        for chunks in chunkings(input) {
            assert_eq!(
                decode_with(limits, &chunks),
                whole,
                "{max_event_size} {chunks:?}"
            );
        }
    }
}
