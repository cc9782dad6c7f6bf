//! A small, independent parser of the Prometheus text format (0.0.4), used by
//! the tests as an oracle for what [`GatewayMetrics`](crate::GatewayMetrics)
//! renders.

use std::collections::BTreeMap;

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sample {
    pub(crate) name: String,
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) value: f64,
}

/// A parsed exposition.
#[derive(Debug, Default)]
pub(crate) struct Exposition {
    /// `# TYPE` by family name.
    pub(crate) types: BTreeMap<String, String>,
    /// `# HELP` by family name.
    pub(crate) helps: BTreeMap<String, String>,
    pub(crate) samples: Vec<Sample>,
}

/// Parses `text`, checking every line: HELP/TYPE comments, sample syntax,
/// label escapes, values, and that each sample's family was typed first.
pub(crate) fn parse(text: &str) -> Result<Exposition, String> {
    let mut out = Exposition::default();
    if !text.is_empty() && !text.ends_with('\n') {
        return Err("exposition does not end with a newline".into());
    }
    for (n, line) in text.lines().enumerate() {
        let err = |m: &str| format!("line {}: {m}: {line:?}", n + 1);
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest
                .split_once(' ')
                .ok_or_else(|| err("HELP without text"))?;
            check_name(name).map_err(|m| err(&m))?;
            out.helps.insert(name.into(), help.into());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest
                .split_once(' ')
                .ok_or_else(|| err("TYPE without type"))?;
            check_name(name).map_err(|m| err(&m))?;
            if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                return Err(err("unknown type"));
            }
            if out.types.insert(name.into(), kind.into()).is_some() {
                return Err(err("family typed twice"));
            }
        } else if line.starts_with('#') {
            continue;
        } else {
            let sample = parse_sample(line).map_err(|m| err(&m))?;
            if family_type(&out.types, &sample.name).is_none() {
                return Err(err("sample before its TYPE"));
            }
            out.samples.push(sample);
        }
    }
    Ok(out)
}

impl Exposition {
    /// The value of the sample `name` whose label set is exactly `labels`.
    pub(crate) fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let want: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        self.samples
            .iter()
            .find(|s| s.name == name && s.labels == want)
            .map(|s| s.value)
    }

    /// Samples of `name` (exact sample name).
    pub(crate) fn samples_of<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Sample> {
        self.samples.iter().filter(move |s| s.name == name)
    }

    /// Whether any sample carries label `key` with `value`.
    pub(crate) fn any_label(&self, key: &str, value: &str) -> bool {
        self.samples
            .iter()
            .any(|s| s.labels.get(key).map(String::as_str) == Some(value))
    }
}

fn family_type<'a>(types: &'a BTreeMap<String, String>, sample: &str) -> Option<&'a str> {
    if let Some(t) = types.get(sample) {
        return Some(t);
    }
    ["_bucket", "_sum", "_count"].iter().find_map(|suffix| {
        let base = sample.strip_suffix(suffix)?;
        let t = types.get(base)?;
        matches!(t.as_str(), "histogram" | "summary").then_some(t.as_str())
    })
}

fn check_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':');
    if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
        Ok(())
    } else {
        Err(format!("bad metric or label name {name:?}"))
    }
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line
        .find(['{', ' '])
        .ok_or_else(|| "sample without value".to_string())?;
    let name = &line[..name_end];
    check_name(name)?;
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(after) = rest.strip_prefix('{') {
        rest = parse_labels(after, &mut labels)?;
    }
    let rest = rest
        .strip_prefix(' ')
        .ok_or_else(|| "no space before value".to_string())?;
    let mut parts = rest.split(' ');
    let value = parse_value(parts.next().unwrap_or(""))?;
    if let Some(ts) = parts.next() {
        ts.parse::<i64>()
            .map_err(|_| format!("bad timestamp {ts:?}"))?;
    }
    if parts.next().is_some() {
        return Err("trailing fields".into());
    }
    Ok(Sample {
        name: name.into(),
        labels,
        value,
    })
}

/// Parses `k="v",...}` and returns what follows the closing brace.
fn parse_labels<'a>(mut s: &'a str, out: &mut BTreeMap<String, String>) -> Result<&'a str, String> {
    loop {
        if let Some(rest) = s.strip_prefix('}') {
            return Ok(rest);
        }
        let (key, rest) = s.split_once("=\"").ok_or("label without =\"")?;
        check_name(key)?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    other => return Err(format!("bad escape {other:?}")),
                },
                Some((_, '\n')) => return Err("raw newline in label value".into()),
                Some((_, c)) => value.push(c),
                None => return Err("unterminated label value".into()),
            }
        };
        if out.insert(key.into(), value).is_some() {
            return Err(format!("label {key} repeated"));
        }
        s = &rest[end + 1..];
        s = s.strip_prefix(',').unwrap_or(s);
    }
}

fn parse_value(v: &str) -> Result<f64, String> {
    match v {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => v.parse().map_err(|_| format!("bad value {v:?}")),
    }
}
