//! Benchmarks and load generation for sse-gateway; see `benches/README.md`.
//!
//! The `origin` binary is an SSE server that emits numbered, timestamped
//! events per topic; the `loadgen` binary subscribes many clients through a
//! gateway and measures what arrives. They share the payload format here.
//! `chaos-origin` and `loadgen --chaos` (see [`chaos`]) test what a gateway
//! loses or repeats while its upstream misbehaves.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{SystemTime, UNIX_EPOCH};

pub mod chaos;
pub mod proc;
pub mod publish;

/// Microseconds since the Unix epoch (both sides run on one machine).
pub fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// The key that precedes the checksum in a payload.
const SUM_KEY: &str = "\"sum\":\"";
/// Hex digits of the checksum.
const SUM_DIGITS: usize = 16;

/// The data of event `seq` of `topic`:
/// `{"seq":N,"ts":MICROS,"sum":"HEX16","pad":"xx…"}`, padded so that the
/// whole data value is about `size` bytes. `sum` is [`checksum`] of the topic
/// and of the payload without the `"sum":"…",` field, so that a reader can
/// tell a damaged event, or one delivered to another topic's subscribers,
/// from an intact one ([`check_payload`]).
pub fn payload(topic: &str, seq: u64, ts: u64, size: usize) -> String {
    let head = format!("{{\"seq\":{seq},\"ts\":{ts},");
    const PAD_OPEN: &str = "\"pad\":\"";
    let fixed = head.len() + SUM_KEY.len() + SUM_DIGITS + 2 + PAD_OPEN.len() + 2;
    let pad = size.saturating_sub(fixed);
    let mut tail = String::with_capacity(PAD_OPEN.len() + pad + 2);
    tail.push_str(PAD_OPEN);
    tail.extend(std::iter::repeat_n('x', pad));
    tail.push_str("\"}");
    let sum = checksum(&[topic.as_bytes(), head.as_bytes(), tail.as_bytes()]);
    let mut out = String::with_capacity(fixed + pad);
    out.push_str(&head);
    out.push_str(SUM_KEY);
    out.push_str(&format!("{sum:016x}\","));
    out.push_str(&tail);
    out
}

/// A payload's checksum: FNV-1a's offset basis and prime applied to 8-byte
/// words, in two interleaved lanes (so that the multiplications overlap) and
/// rotated after each step so that the high bits mix too; a part's last
/// bytes go in as one zero-padded word with the part's length. 21-29 ns for
/// 256 bytes on the benchmark machine: the load generator checks every event.
pub fn checksum(parts: &[&[u8]]) -> u64 {
    const BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    fn step(h: u64, word: u64) -> u64 {
        (h ^ word).wrapping_mul(PRIME).rotate_left(23)
    }
    fn word(bytes: &[u8]) -> u64 {
        let mut buf = [0u8; 8];
        let n = bytes.len().min(8);
        buf[..n].copy_from_slice(&bytes[..n]);
        u64::from_le_bytes(buf)
    }
    let (mut a, mut b) = (BASIS, BASIS.rotate_left(32));
    for part in parts {
        let mut pairs = part.chunks_exact(16);
        for pair in &mut pairs {
            a = step(a, word(&pair[..8]));
            b = step(b, word(&pair[8..]));
        }
        let rest = pairs.remainder();
        let (first, last) = rest.split_at(rest.len().min(8));
        a = step(a, word(first));
        b = step(b, word(last) ^ ((part.len() as u64) << 56));
    }
    step(a, b)
}

/// What a reader learns from an event's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checked {
    /// The sequence number (the origin's event id).
    pub seq: u64,
    /// When the origin sent (or, for `chaos-origin`, scheduled) it.
    pub ts: u64,
    /// The checksum matches the topic and the rest of the payload.
    pub intact: bool,
}

/// Reads `seq` and `ts` back from a payload and verifies its checksum for
/// `topic`. The fields are read where [`payload`] puts them, without a
/// search or a JSON parser: the load generator checks every event it reads.
/// 85-100 ns for 256 bytes on the benchmark machine, 15-25 ns more than
/// [`parse_payload`] (which verifies nothing) took for the old payload.
/// `None`: not a payload at all.
pub fn check_payload(topic: &str, data: &str) -> Option<Checked> {
    /// The number the decimal digits at the start of `s` spell, and the rest.
    fn number(s: &str) -> Option<(u64, &str)> {
        let digits = s.bytes().take_while(u8::is_ascii_digit).count();
        let value = s.as_bytes()[..digits].iter().try_fold(0u64, |acc, d| {
            acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        })?;
        (digits > 0).then_some((value, s.get(digits..)?))
    }
    let (seq, rest) = number(data.strip_prefix("{\"seq\":")?)?;
    let (ts, rest) = number(rest.strip_prefix(",\"ts\":")?)?;
    let rest = rest.strip_prefix(',')?;
    let head = data.get(..data.len() - rest.len())?;
    let digits = rest.strip_prefix(SUM_KEY)?.get(..SUM_DIGITS)?;
    let tail = rest
        .get(SUM_KEY.len() + SUM_DIGITS..)?
        .strip_prefix("\",")?;
    let sum = digits.bytes().try_fold(0u64, |acc, d| {
        Some(acc << 4 | u64::from(char::from(d).to_digit(16)?))
    })?;
    let intact = checksum(&[topic.as_bytes(), head.as_bytes(), tail.as_bytes()]) == sum;
    Some(Checked { seq, ts, intact })
}

/// Reads `seq` and `ts` back from a payload (no checksum verification).
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

/// A TCP connection to `target` from the loopback source address of
/// subscriber (or connection) `n`, spread over `sources` addresses of
/// 127.0.0.0/8 (one address has only about 28,000 ephemeral ports, and the
/// gateway counts some limits per address).
pub async fn connect_from(
    n: u64,
    sources: u64,
    target: SocketAddr,
) -> anyhow::Result<tokio::net::TcpStream> {
    let n = n % sources.max(1);
    let source = Ipv4Addr::new(
        127,
        ((n >> 8) & 0xff) as u8,
        (n & 0xff) as u8,
        1 + ((n >> 16) & 0x7f) as u8,
    );
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(IpAddr::V4(source), 0))?;
    Ok(socket.connect(target).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trips_and_has_the_size() {
        let data = payload("7", 42, 1_700_000_000_000_000, 256);
        assert_eq!(data.len(), 256);
        assert_eq!(parse_payload(&data), Some((42, 1_700_000_000_000_000)));
        assert_eq!(
            check_payload("7", &data),
            Some(Checked {
                seq: 42,
                ts: 1_700_000_000_000_000,
                intact: true
            })
        );
        assert_eq!(parse_payload("{}"), None);
        assert_eq!(check_payload("7", "{}"), None);
        assert_eq!(check_payload("7", "not json at all"), None);
        // Small sizes still carry every field.
        assert!(check_payload("7", &payload("7", 1, 2, 0)).is_some_and(|c| c.intact));
    }

    #[test]
    fn a_damaged_payload_or_another_topic_fails_the_checksum() {
        let data = payload("3", 9, 123, 300);
        assert!(!check_payload("4", &data).is_some_and(|c| c.intact));
        // One byte of the padding changed, one dropped, the number changed.
        let flipped = data.replacen("xxx", "xyx", 1);
        assert!(!check_payload("3", &flipped).is_some_and(|c| c.intact));
        let shorter = data.replacen("xxx", "xx", 1);
        assert!(!check_payload("3", &shorter).is_some_and(|c| c.intact));
        let renumbered = data.replacen("\"seq\":9", "\"seq\":8", 1);
        assert_eq!(
            check_payload("3", &renumbered).map(|c| c.intact),
            Some(false)
        );
        // A damaged checksum field itself.
        let bad_sum = data.replacen("\"sum\":\"", "\"sum\":\"z", 1);
        assert!(!check_payload("3", &bad_sum).is_some_and(|c| c.intact));
    }
}
