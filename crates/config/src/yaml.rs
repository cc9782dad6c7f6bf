//! YAML text → a small tree of nodes that remember where they are.
//!
//! We read YAML with [`saphyr_parser`], the event-level parser of the saphyr
//! project (the maintained YAML 1.2 successor of yaml-rust / yaml-rust2;
//! `serde_yaml` is deprecated). It was chosen for two reasons:
//!
//! * **Error locations.** Every event carries a span with line and column, so
//!   every key and every value in the tree below has its position, and our
//!   own walker (not serde) decides what an error says and where it points.
//!   Syntax errors come with the position of the fault too.
//! * **Maintenance and size.** It is actively maintained, fully YAML 1.2,
//!   and brings only `arraydeque` and `thiserror`; no serde layer sits in
//!   between to lose positions or accept unknown keys.
//!
//! Building our own tree (rather than saphyr's `MarkedYaml`) also lets us keep
//! the position of each mapping *key* (for "unknown key" errors), detect
//! duplicate keys, and reject aliases and tags with a clear message.

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

/// A 1-based line and column in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Pos {
    pub(crate) line: usize,
    pub(crate) col: usize,
}

/// A YAML node and the position where it starts.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub(crate) pos: Pos,
    pub(crate) kind: NodeKind,
}

/// What a node holds.
#[derive(Debug, Clone)]
pub(crate) enum NodeKind {
    /// A scalar: its text, and whether it was written plain (unquoted).
    Scalar { text: String, plain: bool },
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in file order (keys are unique).
    Map(Vec<Entry>),
}

/// One `key: value` pair of a mapping.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) key: String,
    pub(crate) key_pos: Pos,
    pub(crate) value: Node,
}

/// A problem found while reading the YAML itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct YamlError {
    pub(crate) pos: Pos,
    pub(crate) key_path: String,
    pub(crate) message: String,
}

/// A container being built.
enum Frame {
    Seq(Pos, Vec<Node>),
    Map(Pos, Vec<Entry>, Pending),
}

/// The state of a mapping between its key and its value.
enum Pending {
    /// The next node is a key.
    Key,
    /// The next node is the value of this key.
    Value(String, Pos),
    /// The next node is the value of a rejected key: drop it.
    Skip,
}

/// Builds the tree from parser events, collecting problems.
#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    root: Option<Node>,
    documents: usize,
    errors: Vec<YamlError>,
}

// === impl Node ===

impl Node {
    /// True for a plain `~`, `null` or empty scalar.
    pub(crate) fn is_null(&self) -> bool {
        matches!(&self.kind, NodeKind::Scalar { text, plain: true }
            if matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }

    /// True for a mapping.
    pub(crate) fn is_map(&self) -> bool {
        matches!(self.kind, NodeKind::Map(_))
    }

    /// A short name of the node's type for error messages.
    pub(crate) fn describe(&self) -> &'static str {
        match &self.kind {
            _ if self.is_null() => "an empty value",
            NodeKind::Scalar { .. } => "a scalar",
            NodeKind::Seq(_) => "a list",
            NodeKind::Map(_) => "a mapping",
        }
    }
}

/// Parses `text` (one YAML document) into a tree. `Ok(None)` for a file with
/// no document or an empty one.
pub(crate) fn parse(text: &str) -> Result<Option<Node>, Vec<YamlError>> {
    let mut builder = Builder::default();
    for item in Parser::new_from_str(text) {
        match item {
            Ok((event, span)) => builder.on_event(event, span),
            Err(e) => {
                let marker = e.marker();
                let pos = Pos {
                    line: marker.line(),
                    col: marker.col() + 1,
                };
                builder.error(pos, format!("invalid YAML: {}", e.info()));
                break;
            }
        }
    }
    if builder.errors.is_empty() {
        Ok(builder.root)
    } else {
        Err(builder.errors)
    }
}

// === impl Builder ===

impl Builder {
    fn on_event(&mut self, event: Event<'_>, span: Span) {
        let pos = Pos {
            line: span.start.line(),
            col: span.start.col() + 1,
        };
        match event {
            Event::DocumentStart(_) => {
                self.documents += 1;
                if self.documents > 1 {
                    self.error(pos, "only one YAML document is allowed".into());
                }
            }
            Event::Alias(_) => {
                self.error(pos, "YAML aliases (*name) are not supported".into());
                self.push_node(Node {
                    pos,
                    kind: NodeKind::Scalar {
                        text: String::new(),
                        plain: true,
                    },
                });
            }
            Event::Scalar(text, style, _anchor, tag) => {
                if tag.is_some() {
                    self.error(pos, "YAML tags (!tag) are not supported".into());
                }
                let plain = matches!(style, ScalarStyle::Plain);
                let text = text.into_owned();
                self.push_node(Node {
                    pos,
                    kind: NodeKind::Scalar { text, plain },
                });
            }
            Event::SequenceStart(_, Some(_)) | Event::MappingStart(_, Some(_)) => {
                self.error(pos, "YAML tags (!tag) are not supported".into());
                self.open(&event, pos);
            }
            Event::SequenceStart(..) | Event::MappingStart(..) => self.open(&event, pos),
            Event::SequenceEnd | Event::MappingEnd => self.close(),
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => {}
        }
    }

    fn open(&mut self, event: &Event<'_>, pos: Pos) {
        if matches!(event, Event::SequenceStart(..)) {
            self.stack.push(Frame::Seq(pos, Vec::new()));
        } else {
            self.stack.push(Frame::Map(pos, Vec::new(), Pending::Key));
        }
    }

    fn close(&mut self) {
        let node = match self.stack.pop() {
            Some(Frame::Seq(pos, items)) => Node {
                pos,
                kind: NodeKind::Seq(items),
            },
            Some(Frame::Map(pos, entries, _)) => Node {
                pos,
                kind: NodeKind::Map(entries),
            },
            None => return,
        };
        self.push_node(node);
    }

    /// Places a finished node into its parent (or makes it the root).
    fn push_node(&mut self, node: Node) {
        let path = self.key_path();
        match self.stack.last_mut() {
            None => {
                if self.root.is_none() {
                    self.root = Some(node);
                }
            }
            Some(Frame::Seq(_, items)) => items.push(node),
            Some(Frame::Map(_, entries, pending)) => {
                match std::mem::replace(pending, Pending::Key) {
                    Pending::Skip => {}
                    Pending::Value(key, key_pos) => entries.push(Entry {
                        key,
                        key_pos,
                        value: node,
                    }),
                    Pending::Key => match node.kind {
                        NodeKind::Scalar { text, .. } => {
                            if let Some(first) = entries.iter().find(|e| e.key == text) {
                                let message = format!(
                                    "duplicate key `{text}` (first set at line {})",
                                    first.key_pos.line
                                );
                                *pending = Pending::Skip;
                                let key_path = join(&path, &text);
                                self.errors.push(YamlError {
                                    pos: node.pos,
                                    key_path,
                                    message,
                                });
                            } else {
                                *pending = Pending::Value(text, node.pos);
                            }
                        }
                        NodeKind::Seq(_) | NodeKind::Map(_) => {
                            *pending = Pending::Skip;
                            let key_path = if path.is_empty() {
                                crate::error::ROOT_KEY_PATH.to_owned()
                            } else {
                                path
                            };
                            self.errors.push(YamlError {
                                pos: node.pos,
                                key_path,
                                message: "a mapping key must be a plain string".into(),
                            });
                        }
                    },
                }
            }
        }
    }

    /// The key path of the node being read, from the containers being built.
    fn key_path(&self) -> String {
        let mut path = String::new();
        for frame in &self.stack {
            match frame {
                Frame::Seq(_, items) => path.push_str(&format!("[{}]", items.len())),
                Frame::Map(_, _, Pending::Value(key, _)) => path = join(&path, key),
                Frame::Map(..) => {}
            }
        }
        path
    }

    fn error(&mut self, pos: Pos, message: String) {
        let mut key_path = self.key_path();
        if key_path.is_empty() {
            key_path = crate::error::ROOT_KEY_PATH.to_owned();
        }
        self.errors.push(YamlError {
            pos,
            key_path,
            message,
        });
    }
}

/// `parent.key`, or `key` at the top level.
pub(crate) fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}
