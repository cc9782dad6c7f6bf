//! Benchmarks and load generation for sse-gateway; see `benches/README.md`.
