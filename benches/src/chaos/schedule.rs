//! When a chaos origin misbehaves: windows of time from the run's start.

use std::fmt;
use std::str::FromStr;

/// A misbehaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Answer new requests with this status (and end open streams).
    Status(u16),
    /// Write half of the next event on every stream, then nothing.
    Stall,
    /// Every k-th event is larger than the gateway's `max_event_size`.
    Oversize,
}

/// A misbehaviour from `from_ms` (included) until `until_ms` (excluded),
/// milliseconds from the run's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// What.
    pub kind: Kind,
    /// From, in milliseconds from the start.
    pub from_ms: u64,
    /// Until, in milliseconds from the start (excluded).
    pub until_ms: u64,
}

/// Every window of a run. Written `KIND:FROM-UNTIL,...` with times in
/// seconds from the start (fractions allowed), KIND one of `stall`,
/// `oversize` or an HTTP status such as `404` or `500`; e.g.
/// `404:22-30,500:40-48,stall:68-78,oversize:20-50`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schedule {
    /// The windows, in the order given.
    pub windows: Vec<Window>,
}

impl Schedule {
    /// Whether a window of `kind` covers `at_ms`.
    pub fn active(&self, kind: Kind, at_ms: u64) -> bool {
        self.windows
            .iter()
            .any(|w| w.kind == kind && (w.from_ms..w.until_ms).contains(&at_ms))
    }

    /// The status a window in effect at `at_ms` answers with, if any.
    pub fn status_at(&self, at_ms: u64) -> Option<u16> {
        self.windows.iter().find_map(|w| match w.kind {
            Kind::Status(code) if (w.from_ms..w.until_ms).contains(&at_ms) => Some(code),
            _ => None,
        })
    }

    /// The end of the latest stall window in effect at `at_ms`, if any.
    pub fn stall_until(&self, at_ms: u64) -> Option<u64> {
        self.windows
            .iter()
            .filter(|w| w.kind == Kind::Stall && (w.from_ms..w.until_ms).contains(&at_ms))
            .map(|w| w.until_ms)
            .max()
    }
}

/// Seconds (fractions allowed) to milliseconds.
fn millis(seconds: &str) -> Result<u64, String> {
    let value: f64 = seconds
        .trim()
        .parse()
        .map_err(|_| format!("{seconds:?} is not a number of seconds"))?;
    if !(0.0..1e9).contains(&value) {
        return Err(format!("{seconds:?} is out of range"));
    }
    Ok((value * 1000.0).round() as u64)
}

impl FromStr for Kind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "stall" => Ok(Self::Stall),
            "oversize" => Ok(Self::Oversize),
            code => match code.parse::<u16>() {
                Ok(code) if (100..=599).contains(&code) && code != 200 => Ok(Self::Status(code)),
                _ => Err(format!(
                    "unknown misbehaviour {code:?} (stall, oversize or an HTTP status)"
                )),
            },
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Status(code) => write!(f, "{code}"),
            Self::Stall => f.write_str("stall"),
            Self::Oversize => f.write_str("oversize"),
        }
    }
}

impl FromStr for Schedule {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut windows = Vec::new();
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (kind, span) = item
                .split_once(':')
                .ok_or_else(|| format!("{item:?}: expected KIND:FROM-UNTIL"))?;
            let (from, until) = span
                .split_once('-')
                .ok_or_else(|| format!("{item:?}: expected KIND:FROM-UNTIL"))?;
            let window = Window {
                kind: kind.trim().parse()?,
                from_ms: millis(from)?,
                until_ms: millis(until)?,
            };
            if window.until_ms <= window.from_ms {
                return Err(format!("{item:?}: the window ends before it starts"));
            }
            windows.push(window);
        }
        Ok(Self { windows })
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, w) in self.windows.iter().enumerate() {
            let sep = if i == 0 { "" } else { "," };
            let (from, until) = (w.from_ms as f64 / 1000.0, w.until_ms as f64 / 1000.0);
            write!(f, "{sep}{}:{from}-{until}", w.kind)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_answers_by_time() {
        let s: Schedule = "404:2-3, 500:4-5.5,stall:6-8,oversize:0-10"
            .parse()
            .unwrap();
        assert_eq!(s.windows.len(), 4);
        assert_eq!(s.status_at(1999), None);
        assert_eq!(s.status_at(2000), Some(404));
        assert_eq!(s.status_at(3000), None);
        assert_eq!(s.status_at(5499), Some(500));
        assert_eq!(s.stall_until(7000), Some(8000));
        assert_eq!(s.stall_until(8000), None);
        assert!(s.active(Kind::Oversize, 9999));
        assert_eq!(s.to_string().parse::<Schedule>().unwrap(), s);
        assert_eq!("".parse::<Schedule>().unwrap(), Schedule::default());
    }

    #[test]
    fn refuses_what_it_cannot_mean() {
        for bad in [
            "404",
            "404:3-2",
            "teapot:1-2",
            "200:1-2",
            "stall:a-2",
            "500:-1-2",
        ] {
            assert!(bad.parse::<Schedule>().is_err(), "{bad}");
        }
    }
}
