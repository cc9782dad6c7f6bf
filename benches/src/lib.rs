//! Benchmarks and load generation for sse-gateway; see `benches/README.md`.
//!
//! The `origin` binary is an SSE server that emits numbered, timestamped
//! events per topic; the `loadgen` binary subscribes many clients through a
//! gateway and measures what arrives. They share the payload format here.

use std::time::{SystemTime, UNIX_EPOCH};

pub mod proc;
pub mod publish;

/// Microseconds since the Unix epoch (both sides run on one machine).
pub fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// The data of event `seq`: `{"seq":N,"ts":MICROS,"pad":"xx…"}`, padded so
/// that the whole data value is about `size` bytes.
pub fn payload(seq: u64, ts: u64, size: usize) -> String {
    let head = format!("{{\"seq\":{seq},\"ts\":{ts},\"pad\":\"");
    let pad = size.saturating_sub(head.len() + 2);
    let mut out = String::with_capacity(head.len() + pad + 2);
    out.push_str(&head);
    out.extend(std::iter::repeat_n('x', pad));
    out.push_str("\"}");
    out
}

/// Reads `seq` and `ts` back from a payload, without a JSON parser on the
/// hot path of the load generator.
pub fn parse_payload(data: &str) -> Option<(u64, u64)> {
    let number = |key: &str| -> Option<u64> {
        let start = data.find(key)? + key.len();
        let rest = &data[start..];
        let end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        rest[..end].parse().ok()
    };
    Some((number("\"seq\":")?, number("\"ts\":")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trips_and_has_the_size() {
        let data = payload(42, 1_700_000_000_000_000, 256);
        assert_eq!(data.len(), 256);
        assert_eq!(parse_payload(&data), Some((42, 1_700_000_000_000_000)));
        assert_eq!(parse_payload("{}"), None);
    }
}
