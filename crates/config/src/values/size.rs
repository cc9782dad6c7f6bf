//! Sizes in bytes: a whole number and a binary unit, `512B`, `64KiB`,
//! `1MiB`, `1GiB`.

/// Why a size did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    /// Nothing, or no digits before the unit.
    #[error("expected a size like 512B, 64KiB or 1MiB, found `{0}`")]
    Malformed(String),
    /// Digits without a unit.
    #[error("`{0}` has no unit: write B, KiB, MiB or GiB (for example {0}KiB)")]
    MissingUnit(String),
    /// A unit we do not know (decimal units such as `KB` are refused on purpose).
    #[error("unknown size unit `{unit}` in `{text}`: use B, KiB, MiB or GiB")]
    UnknownUnit {
        /// The whole text.
        text: String,
        /// The unit as written.
        unit: String,
    },
    /// Larger than `u64::MAX` bytes.
    #[error("size `{0}` is too large")]
    Overflow(String),
}

/// Parses `512B`, `64KiB`, `1MiB`, `1GiB`, `1TiB` into bytes. Surrounding
/// whitespace is ignored.
pub fn parse_size(text: &str) -> Result<u64, SizeError> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (digits, unit) = trimmed.split_at(split);
    if digits.is_empty() {
        return Err(SizeError::Malformed(text.to_owned()));
    }
    let overflow = || SizeError::Overflow(text.to_owned());
    let n: u64 = digits.parse().map_err(|_| overflow())?;
    let factor: u64 = match unit {
        "" => return Err(SizeError::MissingUnit(trimmed.to_owned())),
        "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        _ => {
            return Err(SizeError::UnknownUnit {
                text: trimmed.to_owned(),
                unit: unit.to_owned(),
            })
        }
    };
    n.checked_mul(factor).ok_or_else(overflow)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let unknown = |text: &str, unit: &str| {
            Err(SizeError::UnknownUnit {
                text: text.into(),
                unit: unit.into(),
            })
        };
        let cases: Vec<(&str, Result<u64, SizeError>)> = vec![
            ("512B", Ok(512)),
            ("0B", Ok(0)),
            ("64KiB", Ok(65_536)),
            ("1MiB", Ok(1_048_576)),
            ("1GiB", Ok(1_073_741_824)),
            ("2TiB", Ok(2 << 40)),
            (" 1MiB", Ok(1_048_576)),
            ("1024", Err(SizeError::MissingUnit("1024".into()))),
            ("MiB", Err(SizeError::Malformed("MiB".into()))),
            ("", Err(SizeError::Malformed(String::new()))),
            ("1KB", unknown("1KB", "KB")),
            ("1mib", unknown("1mib", "mib")),
            ("1.5MiB", unknown("1.5MiB", ".5MiB")),
            (
                "16777216TiB",
                Err(SizeError::Overflow("16777216TiB".into())),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(parse_size(input), want, "input {input:?}");
        }
    }
}
