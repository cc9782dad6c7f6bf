//! Small helpers that read YAML nodes into typed values or record an error
//! at the node's position: the "or bail" layer between the tree and the raw
//! shape.

use crate::error::{ConfigError, ConfigWarning, ROOT_KEY_PATH};
use crate::yaml::{join, Entry, Node, NodeKind, Pos};

/// A value read from the file, with where it was written.
#[derive(Debug, Clone)]
pub(crate) struct Spanned<T> {
    pub(crate) value: T,
    pub(crate) pos: Pos,
    pub(crate) path: String,
}

/// Collects errors and warnings for one file.
#[derive(Debug)]
pub(crate) struct Diag {
    file: String,
    errors: Vec<ConfigError>,
    warnings: Vec<ConfigWarning>,
}

/// Reads the entries of one mapping, having already reported unknown keys.
pub(crate) struct MapReader<'n> {
    pub(crate) path: String,
    pub(crate) pos: Pos,
    entries: &'n [Entry],
}

// === impl Spanned ===

impl<T> Spanned<T> {
    /// Where the value was written: its position and key path.
    pub(crate) fn at(&self) -> (Pos, &str) {
        (self.pos, &self.path)
    }
}

// === impl Diag ===

impl Diag {
    pub(crate) fn new(file: &str) -> Self {
        Self {
            file: file.to_owned(),
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// Records an error at `pos`, for the key `path`.
    pub(crate) fn push(&mut self, pos: Pos, path: &str, message: impl Into<String>) {
        let key_path = if path.is_empty() { ROOT_KEY_PATH } else { path };
        self.errors.push(ConfigError {
            file: self.file.clone(),
            line: pos.line.max(1),
            col: pos.col.max(1),
            key_path: one_line(key_path),
            message: one_line(&message.into()),
        });
    }

    /// Records an error at a value read from the file.
    pub(crate) fn at<T>(&mut self, spanned: &Spanned<T>, message: impl Into<String>) {
        self.push(spanned.pos, &spanned.path, message);
    }

    /// Records a warning at a value read from the file (never fails the load).
    pub(crate) fn warn_at<T>(&mut self, spanned: &Spanned<T>, message: impl Into<String>) {
        self.warnings.push(ConfigWarning {
            file: self.file.clone(),
            line: spanned.pos.line.max(1),
            col: spanned.pos.col.max(1),
            key_path: one_line(&spanned.path),
            message: one_line(&message.into()),
        });
    }

    /// True when no error was recorded (warnings do not count).
    pub(crate) fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    pub(crate) fn into_errors(self) -> Vec<ConfigError> {
        self.errors
    }

    /// The errors and the warnings, the warnings sorted by position.
    pub(crate) fn into_parts(self) -> (Vec<ConfigError>, Vec<ConfigWarning>) {
        let mut warnings = self.warnings;
        warnings.sort_by_key(|w| (w.line, w.col));
        warnings.dedup();
        (self.errors, warnings)
    }
}

// === impl MapReader ===

impl<'n> MapReader<'n> {
    /// Reads `node` as a mapping whose keys must be in `allowed`; reports
    /// each unknown key. `None` (after an error) when it is not a mapping.
    pub(crate) fn new(
        diag: &mut Diag,
        node: &'n Node,
        path: &str,
        allowed: &[&str],
    ) -> Option<Self> {
        let NodeKind::Map(entries) = &node.kind else {
            diag.push(
                node.pos,
                path,
                format!("expected a mapping, found {}", node.describe()),
            );
            return None;
        };
        for entry in entries {
            if !allowed.contains(&entry.key.as_str()) {
                let message = unknown_key_message(&entry.key, allowed);
                diag.push(entry.key_pos, &join(path, &entry.key), message);
            }
        }
        Some(Self {
            path: path.to_owned(),
            pos: node.pos,
            entries,
        })
    }

    /// The value of `key`, if present.
    pub(crate) fn node(&self, key: &str) -> Option<&'n Node> {
        self.entries.iter().find(|e| e.key == key).map(|e| &e.value)
    }

    /// The value of `key` and its key path, if present.
    pub(crate) fn child(&self, key: &str) -> Option<(&'n Node, String)> {
        self.node(key).map(|n| (n, join(&self.path, key)))
    }

    /// Reports `key` as missing.
    pub(crate) fn missing(&self, diag: &mut Diag, key: &str) {
        diag.push(self.pos, &join(&self.path, key), "required key is missing");
    }

    /// An optional string.
    pub(crate) fn string(&self, diag: &mut Diag, key: &str) -> Option<Spanned<String>> {
        let (node, path) = self.child(key)?;
        string(diag, node, &path)
    }

    /// A required string: reports a missing key.
    pub(crate) fn required_string(&self, diag: &mut Diag, key: &str) -> Option<Spanned<String>> {
        if self.node(key).is_none() {
            self.missing(diag, key);
        }
        self.string(diag, key)
    }

    /// An optional whole number.
    pub(crate) fn number(&self, diag: &mut Diag, key: &str) -> Option<Spanned<u64>> {
        let (node, path) = self.child(key)?;
        number(diag, node, &path)
    }

    /// An optional boolean.
    pub(crate) fn boolean(&self, diag: &mut Diag, key: &str) -> Option<Spanned<bool>> {
        let (node, path) = self.child(key)?;
        let value = match &node.kind {
            NodeKind::Scalar { text, plain: true } => match text.as_str() {
                "true" | "True" | "TRUE" => Some(true),
                "false" | "False" | "FALSE" => Some(false),
                _ => None,
            },
            _ => None,
        };
        if value.is_none() {
            diag.push(
                node.pos,
                &path,
                format!("expected true or false, found {}", found(node)),
            );
        }
        Some(Spanned {
            value: value?,
            pos: node.pos,
            path,
        })
    }

    /// An optional string or list of strings (`listen: "a"` or `listen: [a, b]`).
    pub(crate) fn strings(
        &self,
        diag: &mut Diag,
        key: &str,
    ) -> Option<Spanned<Vec<Spanned<String>>>> {
        let (node, path) = self.child(key)?;
        let items = match &node.kind {
            NodeKind::Seq(items) => items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| string(diag, item, &format!("{path}[{i}]")))
                .collect(),
            NodeKind::Scalar { .. } => vec![string(diag, node, &path)?],
            NodeKind::Map(_) => {
                diag.push(
                    node.pos,
                    &path,
                    "expected a string or a list of strings, found a mapping",
                );
                return None;
            }
        };
        Some(Spanned {
            value: items,
            pos: node.pos,
            path,
        })
    }

    /// An optional sub-mapping with its own allowed keys.
    pub(crate) fn map(
        &self,
        diag: &mut Diag,
        key: &str,
        allowed: &[&str],
    ) -> Option<MapReader<'n>> {
        let (node, path) = self.child(key)?;
        MapReader::new(diag, node, &path, allowed)
    }
}

/// `text` with each control character (CR, LF, NUL, ...) escaped as in Rust
/// (`\n`, `\r`, `\0`, `\u{85}`): key paths and messages quote values from
/// the file, and each error must stay one line.
fn one_line(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out
}

/// A scalar as text (any non-empty scalar, quoted or not).
pub(crate) fn string(diag: &mut Diag, node: &Node, path: &str) -> Option<Spanned<String>> {
    match &node.kind {
        NodeKind::Scalar { text, .. } if !node.is_null() => Some(Spanned {
            value: text.clone(),
            pos: node.pos,
            path: path.to_owned(),
        }),
        _ => {
            diag.push(
                node.pos,
                path,
                format!("expected a string, found {}", node.describe()),
            );
            None
        }
    }
}

/// A plain whole number.
pub(crate) fn number(diag: &mut Diag, node: &Node, path: &str) -> Option<Spanned<u64>> {
    let value = match &node.kind {
        NodeKind::Scalar { text, plain: true } if text.bytes().all(|b| b.is_ascii_digit()) => {
            text.parse().ok()
        }
        _ => None,
    };
    if value.is_none() {
        diag.push(
            node.pos,
            path,
            format!("expected a whole number, found {}", found(node)),
        );
    }
    Some(Spanned {
        value: value?,
        pos: node.pos,
        path: path.to_owned(),
    })
}

/// How to name what was found instead, for type errors.
fn found(node: &Node) -> String {
    match &node.kind {
        NodeKind::Scalar { text, plain } if !node.is_null() => {
            if *plain {
                format!("`{text}`")
            } else {
                format!("the quoted string \"{text}\"")
            }
        }
        _ => node.describe().to_owned(),
    }
}

/// "unknown key", with the closest allowed key or the list of allowed keys.
fn unknown_key_message(key: &str, allowed: &[&str]) -> String {
    let closest = allowed
        .iter()
        .map(|a| (edit_distance(key, a), *a))
        .min()
        .filter(|(d, a)| *d <= 2.max(a.len() / 4));
    match closest {
        Some((_, suggestion)) => format!("unknown key; did you mean `{suggestion}`?"),
        None => format!("unknown key; expected one of: {}", allowed.join(", ")),
    }
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(edit_distance("heartbeet", "heartbeat"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("abc", "abc"), 0);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn messages_and_key_paths_stay_on_one_line() {
        let mut diag = Diag::new("f.yaml");
        let at = Spanned {
            value: (),
            pos: Pos { line: 2, col: 3 },
            path: "routes[0].headers.a\nb".to_owned(),
        };
        diag.at(&at, "`x\r\ny\0\u{85}\tz` is not valid");
        diag.warn_at(&at, "a\nb");
        let (errors, warnings) = diag.into_parts();
        assert_eq!(
            errors[0].to_string(),
            "f.yaml:2:3: routes[0].headers.a\\nb: `x\\r\\ny\\0\\u{85}\\tz` is not valid"
        );
        assert_eq!(
            warnings[0].to_string(),
            "f.yaml:2:3: routes[0].headers.a\\nb: warning: a\\nb"
        );
    }

    #[test]
    fn unknown_key_messages() {
        let allowed = ["heartbeat", "linger"];
        assert_eq!(
            unknown_key_message("heartbeet", &allowed),
            "unknown key; did you mean `heartbeat`?"
        );
        assert_eq!(
            unknown_key_message("zzz", &allowed),
            "unknown key; expected one of: heartbeat, linger"
        );
    }
}
