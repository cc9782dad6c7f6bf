//! Parse throughput of sse-gateway-codec against published Rust SSE parsers,
//! on the same inputs in the same run. See `benches/README.md` for figures.
//!
//! Inputs: (a) 256-byte JSON events, (b) 64 KiB events, both read in 16 KiB
//! chunks as a socket would deliver them, and (c) input (a) fed one byte at a
//! time. Every parser consumes every event.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use eventsource_stream::Eventsource;
use futures::{executor::block_on, stream, StreamExt};
use sse_gateway_codec::{Decoder, Item};

/// `count` events whose `data` line is a JSON object of about `data_len` bytes.
fn stream_of(count: usize, data_len: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..count {
        let head = format!("{{\"seq\":{i},\"symbol\":\"AAPL\",\"pad\":\"");
        let pad = data_len.saturating_sub(head.len() + 2);
        out.extend_from_slice(format!("id: {i}\nevent: tick\ndata: {head}").as_bytes());
        out.extend(std::iter::repeat_n(b'x', pad));
        out.extend_from_slice(b"\"}\n\n");
    }
    out
}

fn chunked(input: &[u8], size: usize) -> Vec<Bytes> {
    input.chunks(size).map(Bytes::copy_from_slice).collect()
}

fn ours(chunks: &[Bytes]) -> usize {
    let mut decoder = Decoder::default();
    let mut events = 0;
    for chunk in chunks {
        for item in decoder.decode(chunk.clone()) {
            if let Item::Event(event) = item {
                black_box(event.data());
                events += 1;
            }
        }
    }
    events
}

fn eventsource_stream(chunks: &[Bytes]) -> usize {
    let input = stream::iter(chunks.iter().cloned().map(Ok::<_, std::io::Error>));
    block_on(input.eventsource().fold(0, |n, event| async move {
        black_box(event.map(|e| e.data.len()).unwrap_or(0));
        n + 1
    }))
}

fn sse_stream(chunks: &[Bytes]) -> usize {
    let input = stream::iter(chunks.iter().cloned().map(Ok::<_, std::io::Error>));
    block_on(
        sse_stream::SseByteStream::new(input).fold(0, |n, event| async move {
            black_box(event.map(|e| e.data.map_or(0, |d| d.len())).unwrap_or(0));
            n + 1
        }),
    )
}

/// A parser under test: parses every chunk, returns the number of events.
type Parser = fn(&[Bytes]) -> usize;

fn bench(c: &mut Criterion) {
    let small = stream_of(2000, 256);
    let large = stream_of(32, 64 * 1024);
    let inputs = [
        ("a_256B_events", chunked(&small, 16 * 1024), 2000),
        ("b_64KiB_events", chunked(&large, 16 * 1024), 32),
        ("c_256B_byte_at_a_time", chunked(&small, 1), 2000),
    ];
    for (name, chunks, events) in &inputs {
        let bytes: usize = chunks.iter().map(Bytes::len).sum();
        let mut group = c.benchmark_group(*name);
        group.throughput(Throughput::Bytes(bytes as u64));
        group.sample_size(20);
        let parsers: [(&str, Parser); 3] = [
            ("sse-gateway-codec", ours),
            ("eventsource-stream", eventsource_stream),
            ("sse-stream", sse_stream),
        ];
        for (parser, run) in parsers {
            assert_eq!(
                run(chunks),
                *events,
                "{parser} parses every event of {name}"
            );
            group.bench_with_input(BenchmarkId::from_parameter(parser), chunks, |b, chunks| {
                b.iter(|| run(chunks))
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
