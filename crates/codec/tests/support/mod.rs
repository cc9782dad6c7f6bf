//! Shared helpers for the codec's integration tests.
#![allow(dead_code)]

use bytes::Bytes;
use sse_gateway_codec::{CodecLimits, Decoder, Item};

/// A decoded item, reduced to what a client observes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Out {
    /// type, data, lastEventId
    Ev(String, String, String),
    /// An id-only block.
    Id(String),
    Comment(Vec<u8>),
    Retry(u64),
    Err,
}

pub(crate) fn ev(t: &str, d: &str, id: &str) -> Out {
    Out::Ev(t.into(), d.into(), id.into())
}

pub(crate) fn reduce(item: Item) -> Out {
    match item {
        Item::Event(e) => Out::Ev(
            e.event_type().into(),
            e.data().into(),
            e.last_event_id().into(),
        ),
        Item::IdUpdate(f) => Out::Id(f.id().unwrap_or_default().into()),
        Item::Comment(c) => Out::Comment(c.to_vec()),
        Item::Retry(ms) => Out::Retry(ms),
        Item::Error(_) => Out::Err,
    }
}

/// Decodes `chunks` in order and returns every item.
pub(crate) fn decode_items(limits: CodecLimits, chunks: &[&[u8]]) -> Vec<Item> {
    let mut decoder = Decoder::new(limits);
    let mut out = Vec::new();
    for chunk in chunks {
        out.extend(decoder.decode(Bytes::copy_from_slice(chunk)));
    }
    out
}

pub(crate) fn decode_with(limits: CodecLimits, chunks: &[&[u8]]) -> Vec<Out> {
    decode_items(limits, chunks)
        .into_iter()
        .map(reduce)
        .collect()
}

pub(crate) fn decode(input: &[u8]) -> Vec<Out> {
    decode_with(CodecLimits::default(), &[input])
}

/// Every way of feeding `input` that the tests check: whole, byte by byte,
/// and split once at every position.
pub(crate) fn chunkings(input: &[u8]) -> Vec<Vec<&[u8]>> {
    let mut all = vec![vec![input], input.chunks(1).collect()];
    for i in 1..input.len() {
        all.push(vec![&input[..i], &input[i..]]);
    }
    all
}
