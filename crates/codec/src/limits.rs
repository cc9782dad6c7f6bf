//! Size limits for one event and one line.

/// Bounds on what the [`Decoder`](crate::Decoder) buffers for one event.
///
/// Both limits count raw bytes as they arrive from the stream, line ends
/// included for the event size. Past either limit the decoder reports
/// [`DecodeError`](crate::DecodeError) and skips to the next empty line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodecLimits {
    /// Largest event, in bytes of its lines (comments before the first field
    /// excluded). Default: 1 MiB.
    pub max_event_size: usize,
    /// Longest line, in bytes without its line end. Default: 1 MiB.
    pub max_line_len: usize,
}

// === impl CodecLimits ===

impl CodecLimits {
    /// Limits with the given event size and a line length of the same size.
    pub fn with_max_event_size(max_event_size: usize) -> Self {
        Self {
            max_event_size,
            max_line_len: max_event_size,
        }
    }
}

impl Default for CodecLimits {
    fn default() -> Self {
        Self::with_max_event_size(1 << 20)
    }
}
