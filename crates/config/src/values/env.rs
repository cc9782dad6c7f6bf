//! `${VAR}` expansion from an [`EnvSource`], so that tests never read or
//! change the process environment.
//!
//! Syntax, in upstream header values, upstream URLs and proxy URLs:
//!
//! * `${NAME}`: the variable's value; an unset variable is an error.
//! * `${NAME:-fallback}`: the variable's value, or `fallback` when it is unset.
//! * `$$`: a literal `$`. Any other `$` is kept as it is.
//!
//! `NAME` is `[A-Za-z_][A-Za-z0-9_]*`.

/// Where `${VAR}` values come from.
pub trait EnvSource {
    /// The value of the variable `name`, or `None` when it is not set.
    fn var(&self, name: &str) -> Option<String>;
}

/// Reads variables from the process environment (`std::env::var`). A
/// variable that is not valid Unicode counts as unset.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

/// Why `${VAR}` expansion failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvError {
    /// `${NAME}` names a variable that is not set.
    #[error("environment variable `{0}` is not set (use ${{{0}:-default}} for a fallback)")]
    Unset(String),
    /// `${` without a closing `}`.
    #[error("unterminated `${{`: write ${{NAME}}, or $$ for a literal `$`")]
    Unterminated,
    /// The name between `${` and `}` is not a valid variable name.
    #[error("invalid environment variable name `{0}`")]
    BadName(String),
}

// === impl ProcessEnv ===

impl EnvSource for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl<S: EnvSource + ?Sized> EnvSource for &S {
    fn var(&self, name: &str) -> Option<String> {
        (**self).var(name)
    }
}

impl EnvSource for std::collections::HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

impl EnvSource for std::collections::BTreeMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

impl EnvSource for [(&str, &str)] {
    fn var(&self, name: &str) -> Option<String> {
        self.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
    }
}

impl<const N: usize> EnvSource for [(&str, &str); N] {
    fn var(&self, name: &str) -> Option<String> {
        self.as_slice().var(name)
    }
}

/// Expands every `${NAME}` / `${NAME:-fallback}` in `text` (see the module
/// docs). Returns the first problem found.
pub fn expand_env(text: &str, env: &dyn EnvSource) -> Result<String, EnvError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body.find('}').ok_or(EnvError::Unterminated)?;
            out.push_str(&lookup(&body[..end], env)?);
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Resolves the inside of one `${...}`.
fn lookup(inner: &str, env: &dyn EnvSource) -> Result<String, EnvError> {
    let (name, fallback) = match inner.split_once(":-") {
        Some((name, fallback)) => (name, Some(fallback)),
        None => (inner, None),
    };
    if !is_var_name(name) {
        return Err(EnvError::BadName(name.to_owned()));
    }
    match (env.var(name), fallback) {
        (Some(value), _) => Ok(value),
        (None, Some(fallback)) => Ok(fallback.to_owned()),
        (None, None) => Err(EnvError::Unset(name.to_owned())),
    }
}

/// True for `[A-Za-z_][A-Za-z0-9_]*`.
pub(crate) fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands() {
        let env: &[(&str, &str)] = &[("TOKEN", "abc"), ("EMPTY", "")];
        let cases: &[(&str, Result<&str, EnvError>)] = &[
            ("plain", Ok("plain")),
            ("Bearer ${TOKEN}", Ok("Bearer abc")),
            ("${TOKEN}${TOKEN}", Ok("abcabc")),
            ("${EMPTY}x", Ok("x")),
            ("${MISSING:-dev}", Ok("dev")),
            ("${TOKEN:-dev}", Ok("abc")),
            ("${MISSING:-}", Ok("")),
            ("cost $5 and $$ and $", Ok("cost $5 and $ and $")),
            ("$${TOKEN}", Ok("${TOKEN}")),
            ("${MISSING}", Err(EnvError::Unset("MISSING".into()))),
            ("${TOKEN", Err(EnvError::Unterminated)),
            ("${1X}", Err(EnvError::BadName("1X".into()))),
            ("${}", Err(EnvError::BadName(String::new()))),
        ];
        for (input, want) in cases {
            let got = expand_env(input, &env);
            assert_eq!(got.as_deref(), want.as_ref().map(|s| *s), "input {input:?}");
        }
    }

    #[test]
    fn array_source() {
        let env = [("A", "1")];
        assert_eq!(expand_env("${A}", &env).as_deref(), Ok("1"));
    }

    #[test]
    fn unset_message() {
        assert_eq!(
            EnvError::Unset("X".into()).to_string(),
            "environment variable `X` is not set (use ${X:-default} for a fallback)"
        );
    }
}
