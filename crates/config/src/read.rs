//! The typed reader over the YAML tree: a [`MapReader`] hands out each key's
//! value already checked for its YAML type (string, whole number, boolean,
//! list of strings, mapping) with its position, and remembers which keys were
//! asked for. When the mapping has been read, every key nobody asked for is
//! reported as unknown, with the closest known key as a suggestion. So a
//! setting is spelled once, where it is read and validated: there is no
//! separate list of allowed keys nor an intermediate "raw" struct.

use crate::diag::Diag;
use crate::yaml::{join, Entry, Node, NodeKind, Pos};

/// A value read from the file, with where it was written.
#[derive(Debug, Clone)]
pub(crate) struct Spanned<T> {
    pub(crate) value: T,
    pub(crate) pos: Pos,
    pub(crate) path: String,
}

/// A string value with its position.
pub(crate) type Text = Spanned<String>;

/// A string or list of strings with its position.
pub(crate) type TextList = Spanned<Vec<Text>>;

/// A YAML-level type a node can be read as; a mismatch is an error at the
/// node ("expected a string, found a list").
pub(crate) trait FromNode: Sized {
    /// The value of `node` (at key path `path`), or `None` after an error.
    fn from_node(diag: &mut Diag, node: &Node, path: &str) -> Option<Self>;
}

/// Reads one mapping; see the module documentation.
pub(crate) struct MapReader<'n> {
    path: String,
    pos: Pos,
    entries: &'n [Entry],
    /// The keys asked for, in the order asked: the known keys.
    asked: Vec<&'static str>,
    /// Where the unknown-key errors go among the errors (see [`Diag::insert`]).
    mark: usize,
}

// === impl MapReader ===

impl<'n> MapReader<'n> {
    /// Reads `node` as a mapping with `read`, then reports each key that
    /// `read` did not ask for as unknown. `None` (after an error) when `node`
    /// is not a mapping.
    pub(crate) fn read<T>(
        diag: &mut Diag,
        node: &'n Node,
        path: &str,
        read: impl FnOnce(&mut Diag, &mut MapReader<'n>) -> T,
    ) -> Option<T> {
        let NodeKind::Map(entries) = &node.kind else {
            diag.push(
                node.pos,
                path,
                format!("expected a mapping, found {}", node.describe()),
            );
            return None;
        };
        let mut map = Self {
            path: path.to_owned(),
            pos: node.pos,
            entries,
            asked: Vec::new(),
            mark: diag.mark(),
        };
        let value = read(diag, &mut map);
        map.finish(diag);
        Some(value)
    }

    /// The mapping's key path (`routes[0]`; empty at the top level).
    pub(crate) fn path(&self) -> &str {
        &self.path
    }

    /// Where the mapping starts.
    pub(crate) fn pos(&self) -> Pos {
        self.pos
    }

    /// Marks `key` as known; its value and key path, if present.
    pub(crate) fn take_node(&mut self, key: &'static str) -> Option<(&'n Node, String)> {
        if !self.asked.contains(&key) {
            self.asked.push(key);
        }
        let entry = self.entries.iter().find(|e| e.key == key)?;
        Some((&entry.value, join(&self.path, key)))
    }

    /// An optional value of YAML type `T`.
    pub(crate) fn take<T: FromNode>(
        &mut self,
        diag: &mut Diag,
        key: &'static str,
    ) -> Option<Spanned<T>> {
        let (node, path) = self.take_node(key)?;
        spanned(diag, node, &path)
    }

    /// A required value of YAML type `T`: reports a missing key.
    pub(crate) fn require<T: FromNode>(
        &mut self,
        diag: &mut Diag,
        key: &'static str,
    ) -> Option<Spanned<T>> {
        if !self.entries.iter().any(|e| e.key == key) {
            self.missing(diag, key);
        }
        self.take(diag, key)
    }

    /// Reports `key` as missing.
    pub(crate) fn missing(&self, diag: &mut Diag, key: &str) {
        diag.push(self.pos, &join(&self.path, key), "required key is missing");
    }

    /// An optional sub-mapping, read with `read` (see [`MapReader::read`]).
    pub(crate) fn map<T>(
        &mut self,
        diag: &mut Diag,
        key: &'static str,
        read: impl FnOnce(&mut Diag, &mut MapReader<'n>) -> T,
    ) -> Option<T> {
        let (node, path) = self.take_node(key)?;
        MapReader::read(diag, node, &path, read)
    }

    /// An optional mapping of free-form keys to strings (`params:`,
    /// `headers:`): each key (at its own position) with its value.
    pub(crate) fn string_map(&mut self, diag: &mut Diag, key: &'static str) -> Vec<(Text, Text)> {
        let Some((node, path)) = self.take_node(key) else {
            return Vec::new();
        };
        let NodeKind::Map(entries) = &node.kind else {
            diag.push(
                node.pos,
                &path,
                format!("expected a mapping, found {}", node.describe()),
            );
            return Vec::new();
        };
        entries
            .iter()
            .filter_map(|entry| {
                let entry_path = join(&path, &entry.key);
                let value = spanned(diag, &entry.value, &entry_path)?;
                let key = Spanned {
                    value: entry.key.clone(),
                    pos: entry.key_pos,
                    path: entry_path,
                };
                Some((key, value))
            })
            .collect()
    }

    /// Reports each key nobody asked for, where the mapping was opened.
    fn finish(self, diag: &mut Diag) {
        let unknown = self
            .entries
            .iter()
            .filter(|e| !self.asked.contains(&e.key.as_str()));
        for (i, entry) in unknown.enumerate() {
            let message = unknown_key_message(&entry.key, &self.asked);
            let path = join(&self.path, &entry.key);
            diag.insert(self.mark + i, entry.key_pos, &path, message);
        }
    }
}

/// `node` read as a `T`, with its position and key path `path`.
pub(crate) fn spanned<T: FromNode>(diag: &mut Diag, node: &Node, path: &str) -> Option<Spanned<T>> {
    let value = T::from_node(diag, node, path)?;
    Some(Spanned {
        value,
        pos: node.pos,
        path: path.to_owned(),
    })
}

// === impl FromNode ===

/// Any non-empty scalar, quoted or not.
impl FromNode for String {
    fn from_node(diag: &mut Diag, node: &Node, path: &str) -> Option<Self> {
        match &node.kind {
            NodeKind::Scalar { text, .. } if !node.is_null() => Some(text.clone()),
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
}

/// A plain whole number.
impl FromNode for u64 {
    fn from_node(diag: &mut Diag, node: &Node, path: &str) -> Option<Self> {
        let value = match &node.kind {
            NodeKind::Scalar { text, plain: true } if text.bytes().all(|b| b.is_ascii_digit()) => {
                text.parse().ok()
            }
            _ => None,
        };
        if value.is_none() {
            let message = format!("expected a whole number, found {}", found(node));
            diag.push(node.pos, path, message);
        }
        value
    }
}

/// A plain `true` or `false`.
impl FromNode for bool {
    fn from_node(diag: &mut Diag, node: &Node, path: &str) -> Option<Self> {
        let value = match &node.kind {
            NodeKind::Scalar { text, plain: true } => match text.as_str() {
                "true" | "True" | "TRUE" => Some(true),
                "false" | "False" | "FALSE" => Some(false),
                _ => None,
            },
            _ => None,
        };
        if value.is_none() {
            let message = format!("expected true or false, found {}", found(node));
            diag.push(node.pos, path, message);
        }
        value
    }
}

/// A string or a list of strings (`listen: "a"` or `listen: [a, b]`).
impl FromNode for Vec<Text> {
    fn from_node(diag: &mut Diag, node: &Node, path: &str) -> Option<Self> {
        match &node.kind {
            NodeKind::Seq(items) => Some(
                items
                    .iter()
                    .enumerate()
                    .filter_map(|(i, item)| spanned(diag, item, &format!("{path}[{i}]")))
                    .collect(),
            ),
            NodeKind::Scalar { .. } => Some(vec![spanned(diag, node, path)?]),
            NodeKind::Map(_) => {
                diag.push(
                    node.pos,
                    path,
                    "expected a string or a list of strings, found a mapping",
                );
                None
            }
        }
    }
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

    /// Keys nobody asked for are unknown; the known ones are the keys asked.
    #[test]
    fn unknown_keys_are_the_keys_not_taken() {
        let root = crate::yaml::parse("a: x\nb: 1\nzzz: 2\n").unwrap().unwrap();
        let mut diag = Diag::new("f.yaml");
        let read = MapReader::read(&mut diag, &root, "", |diag, map| {
            let a = map.take::<String>(diag, "a").map(|t| t.value);
            let b = map.take::<u64>(diag, "b").map(|n| n.value);
            (a, b)
        });
        assert_eq!(read, Some((Some("x".to_owned()), Some(1))));
        let errors: Vec<String> = diag.into_errors().iter().map(ToString::to_string).collect();
        assert_eq!(
            errors,
            ["f.yaml:3:1: zzz: unknown key; expected one of: a, b"]
        );
    }
}
