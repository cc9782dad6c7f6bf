//! HTTP/1.1 chunk framing: `{len:x}\r\n` + payload + `\r\n`. A frame is
//! framed once per delivery and thread ([`chunk_of`]) and the same chunk is
//! sent to every direct subscriber with one `send`.

use std::cell::RefCell;

use bytes::{Bytes, BytesMut};

/// How many payloads a thread keeps framed: one delivery's, and a few
/// others offered in the same rounds (the selections of a batch that
/// clients' event filters keep, beside the whole batch).
const KEPT: usize = 4;

/// A payload a thread framed (held: see [`chunk_of`]) and its chunk.
type Framed = Option<(Bytes, Bytes)>;

thread_local! {
    /// The last payloads this thread framed, and their chunks; the next
    /// slot to reuse.
    static LAST: RefCell<([Framed; KEPT], usize)> =
        const { RefCell::new(([const { None }; KEPT], 0)) };
}

/// `payload` as one chunk, made once per delivery on each thread: a round
/// offers one delivery to many sinks in a row on one thread (one per
/// shard), and every sink gets the same chunk (a reference count, not a
/// copy).
///
/// The thread keeps its last few payloads (references, so an allocation
/// cannot be reused by another payload while it is cached: equal address
/// and length mean the same bytes) until it frames others.
pub(crate) fn chunk_of(payload: &Bytes) -> Bytes {
    LAST.with(|last| {
        let (slots, next) = &mut *last.borrow_mut();
        let same =
            |framed: &Bytes| framed.as_ptr() == payload.as_ptr() && framed.len() == payload.len();
        for (framed, wire) in slots.iter().flatten() {
            if same(framed) {
                return wire.clone();
            }
        }
        let wire = chunk(payload);
        slots[*next] = Some((payload.clone(), wire.clone()));
        *next = (*next + 1) % KEPT;
        wire
    })
}

/// Ends a chunk.
pub(crate) const CRLF: &[u8] = b"\r\n";

/// The last chunk: ends a chunked body (no trailers).
pub(crate) const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// The size line of one chunk, formatted on the stack.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChunkHeader {
    buf: [u8; 18],
    len: u8,
}

// === impl ChunkHeader ===

impl ChunkHeader {
    /// The size line for a payload of `len` bytes.
    pub(crate) fn new(len: usize) -> Self {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut digits = [0u8; 16];
        let mut n = len;
        let mut count = 0;
        loop {
            digits[count] = HEX[n & 0xf];
            count += 1;
            n >>= 4;
            if n == 0 {
                break;
            }
        }
        let mut buf = [0u8; 18];
        for (slot, digit) in buf.iter_mut().zip(digits[..count].iter().rev()) {
            *slot = *digit;
        }
        buf[count] = b'\r';
        buf[count + 1] = b'\n';
        Self {
            buf,
            len: (count + 2) as u8,
        }
    }

    /// The size line's bytes.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }
}

/// `payload` as one HTTP/1.1 chunk (made once per delivery and shared by
/// every direct subscriber).
pub(crate) fn chunk(payload: &Bytes) -> Bytes {
    let header = ChunkHeader::new(payload.len());
    let mut out = BytesMut::with_capacity(header.as_bytes().len() + payload.len() + CRLF.len());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(CRLF);
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_lines_are_lowercase_hex() {
        assert_eq!(ChunkHeader::new(0).as_bytes(), b"0\r\n");
        assert_eq!(ChunkHeader::new(9).as_bytes(), b"9\r\n");
        assert_eq!(ChunkHeader::new(255).as_bytes(), b"ff\r\n");
        assert_eq!(ChunkHeader::new(4096).as_bytes(), b"1000\r\n");
        assert_eq!(
            ChunkHeader::new(usize::MAX).as_bytes(),
            b"ffffffffffffffff\r\n"
        );
        for n in [0usize, 1, 15, 16, 1000, 65_536, 1 << 20] {
            let expected = format!("{n:x}\r\n");
            assert_eq!(ChunkHeader::new(n).as_bytes(), expected.as_bytes());
            let payload = Bytes::from(vec![b'x'; n]);
            let framed = chunk(&payload);
            assert_eq!(framed.len(), expected.len() + n + 2);
            assert!(framed.starts_with(expected.as_bytes()) && framed.ends_with(b"\r\n"));
        }
    }
}
