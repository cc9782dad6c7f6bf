//! The one place where validated bytes become `&str` without a second check.
//!
//! The decoder validates each block's UTF-8 once (with `simdutf8`) when it
//! dispatches it, and rebuilds any block that is not valid. Events and frames
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

/// A range of at most 4 GiB, stored compactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Span {
    start: u32,
    end: u32,
}

// === impl Span ===

impl Span {
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
