//! One line of an event block: a comment or a field with its value.

use std::ops::Range;

/// The UTF-8 byte order mark.
pub(crate) const BOM: &[u8; 3] = b"\xEF\xBB\xBF";

/// What one non-empty line means, with the value as a range of the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Line {
    /// `:` and anything after it; the range excludes the colon.
    Comment(Range<usize>),
    /// `data`.
    Data(Range<usize>),
    /// `event`.
    Event(Range<usize>),
    /// `id` whose value has no NUL.
    Id(Range<usize>),
    /// `retry` whose value is all ASCII digits, saturated to `u64::MAX`.
    Retry(u64),
    /// Anything else: an unknown field, an `id` with NUL, a bad `retry`.
    Ignored,
}

/// Interprets one non-empty line (without its line end).
#[inline(always)]
pub(crate) fn parse_line(line: &[u8]) -> Line {
    debug_assert!(!line.is_empty());
    // The usual field names, decided without searching for the colon.
    match line {
        [b'd', b'a', b't', b'a', b':', ..] => Line::Data(value_after(line, 4)),
        [b'i', b'd', b':', ..] => id_line(line, value_after(line, 2)),
        [b'e', b'v', b'e', b'n', b't', b':', ..] => Line::Event(value_after(line, 5)),
        _ => parse_other_line(line),
    }
}

/// The value of a field whose colon is at `colon`: the rest of the line
/// without one leading space.
#[inline(always)]
fn value_after(line: &[u8], colon: usize) -> Range<usize> {
    let start = if line.get(colon + 1) == Some(&b' ') {
        colon + 2
    } else {
        colon + 1
    };
    start..line.len()
}

#[inline]
fn id_line(line: &[u8], value: Range<usize>) -> Line {
    if line[value.clone()].contains(&0) {
        Line::Ignored
    } else {
        Line::Id(value)
    }
}

/// Any other line: a comment, a field without a colon, another field name.
fn parse_other_line(line: &[u8]) -> Line {
    let (name, value) = match memchr::memchr(b':', line) {
        Some(0) => return Line::Comment(1..line.len()),
        Some(colon) => (&line[..colon], value_after(line, colon)),
        None => (line, line.len()..line.len()),
    };
    match name {
        b"data" => Line::Data(value),
        b"event" => Line::Event(value),
        b"id" => id_line(line, value),
        b"retry" => parse_retry(&line[value]).map_or(Line::Ignored, Line::Retry),
        _ => Line::Ignored,
    }
}

fn parse_retry(value: &[u8]) -> Option<u64> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(value.iter().fold(0u64, |acc, d| {
        acc.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_values() {
        assert_eq!(parse_line(b"data: x"), Line::Data(6..7));
        assert_eq!(parse_line(b"data:x"), Line::Data(5..6));
        assert_eq!(parse_line(b"data:  x"), Line::Data(6..8));
        assert_eq!(parse_line(b"data"), Line::Data(4..4));
        assert_eq!(parse_line(b"data:"), Line::Data(5..5));
        assert_eq!(parse_line(b"data: "), Line::Data(6..6));
        assert_eq!(parse_line(b"event:a:b"), Line::Event(6..9));
        assert_eq!(parse_line(b":hi"), Line::Comment(1..3));
        assert_eq!(parse_line(b"id: a\0b"), Line::Ignored);
        assert_eq!(parse_line(b"id"), Line::Id(2..2));
        assert_eq!(parse_line(b"Data: x"), Line::Ignored);
        assert_eq!(parse_line(b" data: x"), Line::Ignored);
    }

    #[test]
    fn retry_values() {
        assert_eq!(parse_line(b"retry: 1000"), Line::Retry(1000));
        assert_eq!(parse_line(b"retry:0"), Line::Retry(0));
        assert_eq!(parse_line(b"retry: 10a"), Line::Ignored);
        assert_eq!(parse_line(b"retry: -1"), Line::Ignored);
        assert_eq!(parse_line(b"retry:  1"), Line::Ignored);
        assert_eq!(parse_line(b"retry: "), Line::Ignored);
        assert_eq!(parse_line(b"retry"), Line::Ignored);
        assert_eq!(
            parse_line(b"retry: 99999999999999999999999"),
            Line::Retry(u64::MAX)
        );
    }
}
