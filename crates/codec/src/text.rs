//! The one place where validated bytes become `&str` without a second check.
//!
//! The decoder validates UTF-8 once (with `simdutf8`): each chunk as it
//! arrives ([`valid_span`]), and, when a block is not inside the valid part
//! of its chunk, the block itself (or the seam between chunks) when it
//! dispatches it; it rebuilds any block that is not valid. In debug builds it
//! asserts every block it forwards unchanged is valid. Events and frames
//! then keep byte ranges into those bytes; every range starts and ends next to
//! an ASCII delimiter (`:`, space, LF), so it lies on character boundaries.
//! Checking again on every access would cost a second pass over each event's
//! data on the fan-out path, which the benchmarks in `benches/` measure.

use std::ops::Range;

/// Returns `bytes[range]` as text.
///
/// Callers pass only bytes that were validated as UTF-8 and ranges that lie
/// on character boundaries (see the module doc). In debug builds (and so in
/// every test, proptest and fuzz run) this is asserted.
#[allow(unsafe_code)]
pub(crate) fn validated(bytes: &[u8], range: Range<usize>) -> &str {
    let slice = &bytes[range];
    debug_assert!(
        std::str::from_utf8(slice).is_ok(),
        "unvalidated bytes: {slice:?}"
    );
    // SAFETY: per this function's contract, `bytes` is valid UTF-8 and
    // `range` lies on character boundaries, so `slice` is valid UTF-8.
    unsafe { std::str::from_utf8_unchecked(slice) }
}

/// Whether `bytes` is valid UTF-8 (the fast validator).
pub(crate) fn is_utf8(bytes: &[u8]) -> bool {
    simdutf8::basic::from_utf8(bytes).is_ok()
}

/// How much of `bytes` is valid UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Prefix {
    /// All of it.
    Whole,
    /// `bytes[..n]` is; the rest is the start of a sequence that may still be
    /// completed by the bytes that follow.
    Incomplete(usize),
    /// `bytes[..n]` is; then comes a sequence that is invalid whatever follows.
    Invalid(usize),
}

/// How much of `bytes` is valid UTF-8 (one pass of the fast validator).
pub(crate) fn valid_prefix(bytes: &[u8]) -> Prefix {
    match simdutf8::compat::from_utf8(bytes) {
        Ok(_) => Prefix::Whole,
        Err(e) if e.error_len().is_none() => Prefix::Incomplete(e.valid_up_to()),
        Err(e) => Prefix::Invalid(e.valid_up_to()),
    }
}

/// The part of a chunk of the stream that is known to be valid UTF-8 on its
/// own, validated in one pass: from its first byte that is not a
/// continuation byte (leading continuation bytes end a sequence that began
/// in an earlier chunk) up to the first invalid or incomplete sequence.
///
/// Every sub-range of the result that starts and ends on character
/// boundaries (for example next to ASCII line ends) is valid UTF-8 too.
pub(crate) fn valid_span(chunk: &[u8]) -> Range<usize> {
    // Small reads (an idle stream's) are checked without the SIMD set-up.
    if chunk.len() < 64 && chunk.is_ascii() {
        return 0..chunk.len();
    }
    let start = chunk
        .iter()
        .take(3)
        .take_while(|&&b| b & 0xC0 == 0x80)
        .count();
    let rest = &chunk[start..];
    let end = match valid_prefix(rest) {
        Prefix::Whole => rest.len(),
        Prefix::Incomplete(n) | Prefix::Invalid(n) => n,
    };
    start..start + end
}

/// A range of at most 4 GiB, stored compactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Span {
    start: u32,
    end: u32,
}

// === impl Span ===

impl Span {
    /// No range: `Span::new` never makes it (its start never passes its end).
    pub(crate) const NONE: Self = Self {
        start: u32::MAX,
        end: 0,
    };

    /// An empty range (at 0), distinct from [`Span::NONE`].
    pub(crate) const EMPTY: Self = Self { start: 0, end: 0 };

    pub(crate) fn new(range: Range<usize>) -> Self {
        // Blocks are bounded by `CodecLimits`, far below 4 GiB; saturate anyway.
        let clamp = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        Self {
            start: clamp(range.start),
            end: clamp(range.end),
        }
    }

    pub(crate) fn range(self) -> Range<usize> {
        self.start as usize..self.end as usize
    }

    pub(crate) fn is_empty(self) -> bool {
        self.start >= self.end
    }
}
