//! Durations: a whole number and a unit, `250ms`, `15s`, `5m`, `1h`, `0s`.

use std::time::Duration;

/// Why a duration did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Nothing, or no digits before the unit.
    #[error("expected a duration like 250ms, 15s, 5m or 1h, found `{0}`")]
    Malformed(String),
    /// Digits without a unit.
    #[error("`{0}` has no unit: write ms, s, m or h (for example {0}s)")]
    MissingUnit(String),
    /// A unit we do not know.
    #[error("unknown duration unit `{unit}` in `{text}`: use ms, s, m or h")]
    UnknownUnit {
        /// The whole text.
        text: String,
        /// The unit as written.
        unit: String,
    },
    /// Too large to represent.
    #[error("duration `{0}` is too large")]
    Overflow(String),
}

/// Parses `250ms`, `15s`, `5m`, `1h` (a whole number and one unit; `0s` is
/// zero). Surrounding whitespace is ignored.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (digits, unit) = trimmed.split_at(split);
    if digits.is_empty() {
        return Err(DurationError::Malformed(text.to_owned()));
    }
    let overflow = || DurationError::Overflow(text.to_owned());
    let n: u64 = digits.parse().map_err(|_| overflow())?;
    let millis_per_unit: u64 = match unit {
        "" => return Err(DurationError::MissingUnit(trimmed.to_owned())),
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => {
            return Err(DurationError::UnknownUnit {
                text: trimmed.to_owned(),
                unit: unit.to_owned(),
            })
        }
    };
    let millis = n.checked_mul(millis_per_unit).ok_or_else(overflow)?;
    Ok(Duration::from_millis(millis))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let ms = Duration::from_millis;
        let cases: &[(&str, Result<Duration, DurationError>)] = &[
            ("250ms", Ok(ms(250))),
            ("0s", Ok(Duration::ZERO)),
            ("0ms", Ok(Duration::ZERO)),
            ("15s", Ok(ms(15_000))),
            ("5m", Ok(ms(300_000))),
            ("1h", Ok(ms(3_600_000))),
            (" 2s ", Ok(ms(2_000))),
            ("15", Err(DurationError::MissingUnit("15".into()))),
            ("s", Err(DurationError::Malformed("s".into()))),
            ("", Err(DurationError::Malformed(String::new()))),
            ("-1s", Err(DurationError::Malformed("-1s".into()))),
            (
                "1.5s",
                Err(DurationError::UnknownUnit {
                    text: "1.5s".into(),
                    unit: ".5s".into(),
                }),
            ),
            (
                "10 s",
                Err(DurationError::UnknownUnit {
                    text: "10 s".into(),
                    unit: " s".into(),
                }),
            ),
            (
                "3d",
                Err(DurationError::UnknownUnit {
                    text: "3d".into(),
                    unit: "d".into(),
                }),
            ),
            (
                "99999999999999999999s",
                Err(DurationError::Overflow("99999999999999999999s".into())),
            ),
            (
                "18446744073709551615h",
                Err(DurationError::Overflow("18446744073709551615h".into())),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(&parse_duration(input), want, "input {input:?}");
        }
    }
}
