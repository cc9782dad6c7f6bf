//! Configuration errors: each one names the file, the position, the key path
//! and what is wrong, and all of them are collected before loading fails.

use std::fmt;

/// The key path used for errors that concern the whole file rather than a key
/// (the file cannot be read, the YAML is empty, the top level is not a
/// mapping).
pub const ROOT_KEY_PATH: &str = "<root>";

/// One problem in a configuration file.
///
/// Displays as exactly `FILE:LINE:COL: key.path: message`, for example
/// `gateway.yaml:12:15: routes[0].params.symbol: invalid regex: unclosed character class`.
/// Lines and columns start at 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{col}: {key_path}: {message}")]
pub struct ConfigError {
    /// The file name as given to [`crate::load`] or [`crate::from_str`].
    pub file: String,
    /// The line of the offending key or value (1-based).
    pub line: usize,
    /// The column of the offending key or value (1-based, in characters).
    pub col: usize,
    /// Where in the document: `routes[0].params.symbol`, `defaults.replay.max_age`,
    /// or [`ROOT_KEY_PATH`] for problems with the file as a whole.
    pub key_path: String,
    /// What is wrong, and where useful what to write instead. One line.
    pub message: String,
}

/// A setting that is valid but risky: it never fails the load.
///
/// Displays as exactly `FILE:LINE:COL: key.path: warning: message`, for
/// example `gateway.yaml:8:11: routes[0].path: warning: capture `{symbol}`
/// has no `params` regex ...`. Found in [`crate::GatewayConfig::warnings`],
/// or in [`ConfigErrors::warnings`] when the file also has errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    /// The file name as given to [`crate::load`] or [`crate::from_str`].
    pub file: String,
    /// The line of the key or value concerned (1-based).
    pub line: usize,
    /// The column of the key or value concerned (1-based, in characters).
    pub col: usize,
    /// Where in the document, as for [`ConfigError::key_path`].
    pub key_path: String,
    /// What the risk is and what to do about it. One line.
    pub message: String,
}

/// Every problem found in a configuration file, sorted by position.
///
/// Displays one [`ConfigError`] per line (no trailing newline). Never empty
/// when returned by [`crate::load`] or [`crate::from_str`]. The warnings
/// found on the way are kept too (see [`ConfigErrors::warnings`]) but are
/// not part of the display.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfigErrors {
    errors: Vec<ConfigError>,
    warnings: Vec<ConfigWarning>,
}

// === impl ConfigWarning ===

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}: warning: {}",
            self.file, self.line, self.col, self.key_path, self.message
        )
    }
}

// === impl ConfigErrors ===

impl ConfigErrors {
    /// The errors, in file order.
    pub fn errors(&self) -> &[ConfigError] {
        &self.errors
    }

    /// How many errors there are.
    pub fn len(&self) -> usize {
        self.errors.len()
    }

    /// True when there is no error.
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// Iterates over the errors in file order.
    pub fn iter(&self) -> std::slice::Iter<'_, ConfigError> {
        self.errors.iter()
    }

    /// The warnings found while reading the file, in file order (as
    /// [`crate::GatewayConfig::warnings`] would have held them).
    pub fn warnings(&self) -> &[ConfigWarning] {
        &self.warnings
    }

    /// Builds the collection, sorted by line then column (stable, so errors at
    /// the same spot keep the order they were found in).
    pub(crate) fn from_vec(mut errors: Vec<ConfigError>) -> Self {
        errors.sort_by_key(|e| (e.line, e.col));
        errors.dedup();
        Self {
            errors,
            warnings: Vec::new(),
        }
    }

    /// Adds the warnings found on the way.
    pub(crate) fn with_warnings(mut self, warnings: Vec<ConfigWarning>) -> Self {
        self.warnings = warnings;
        self
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl IntoIterator for ConfigErrors {
    type Item = ConfigError;
    type IntoIter = std::vec::IntoIter<ConfigError>;

    fn into_iter(self) -> Self::IntoIter {
        self.errors.into_iter()
    }
}

impl<'a> IntoIterator for &'a ConfigErrors {
    type Item = &'a ConfigError;
    type IntoIter = std::slice::Iter<'a, ConfigError>;

    fn into_iter(self) -> Self::IntoIter {
        self.errors.iter()
    }
}
