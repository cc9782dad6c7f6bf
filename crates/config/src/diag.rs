//! Collects the errors and warnings of one file, each at a position and a
//! key path, and keeps every message on one line.

use crate::error::{ConfigError, ConfigWarning, ROOT_KEY_PATH};
use crate::read::Spanned;
use crate::yaml::Pos;

/// Collects errors and warnings for one file.
#[derive(Debug)]
pub(crate) struct Diag {
    file: String,
    errors: Vec<ConfigError>,
    warnings: Vec<ConfigWarning>,
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
        let error = self.error(pos, path, message);
        self.errors.push(error);
    }

    /// Records an error at `pos` as if it had been recorded when
    /// [`Diag::mark`] returned `mark` (so that errors at one position keep
    /// the order of the checks that found them).
    pub(crate) fn insert(&mut self, mark: usize, pos: Pos, path: &str, message: String) {
        let error = self.error(pos, path, message);
        self.errors.insert(mark.min(self.errors.len()), error);
    }

    /// Where the next error will go, for [`Diag::insert`].
    pub(crate) fn mark(&self) -> usize {
        self.errors.len()
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

    fn error(&self, pos: Pos, path: &str, message: impl Into<String>) -> ConfigError {
        let key_path = if path.is_empty() { ROOT_KEY_PATH } else { path };
        ConfigError {
            file: self.file.clone(),
            line: pos.line.max(1),
            col: pos.col.max(1),
            key_path: one_line(key_path),
            message: one_line(&message.into()),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
