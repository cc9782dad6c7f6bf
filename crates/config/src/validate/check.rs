//! Value checks shared by the validation steps: each parses one value as read or
//! records an error at its position and returns `None`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::diag::Diag;
use crate::read::{Spanned, Text, TextList};
use crate::values::duration::parse_duration;
use crate::values::env::{expand_env, EnvSource};
use crate::values::size::parse_size;

/// A duration (`15s`).
pub(crate) fn duration(diag: &mut Diag, text: &Text) -> Option<Duration> {
    parse_duration(&text.value)
        .map_err(|e| diag.at(text, e.to_string()))
        .ok()
}

/// A duration that must not be zero.
pub(crate) fn positive_duration(diag: &mut Diag, text: &Text) -> Option<Duration> {
    let value = duration(diag, text)?;
    if value.is_zero() {
        diag.at(text, "must be greater than 0s");
        return None;
    }
    Some(value)
}

/// A duration where `0s` means "off" (`None`).
pub(crate) fn optional_duration(diag: &mut Diag, text: &Text) -> Option<Option<Duration>> {
    duration(diag, text).map(|d| Some(d).filter(|d| !d.is_zero()))
}

/// A size in bytes that must not be zero.
pub(crate) fn positive_size(diag: &mut Diag, text: &Text) -> Option<u64> {
    let value = parse_size(&text.value)
        .map_err(|e| diag.at(text, e.to_string()))
        .ok()?;
    if value == 0 {
        diag.at(text, "must be greater than 0B");
        return None;
    }
    Some(value)
}

/// A count that must not be zero.
pub(crate) fn positive_count(diag: &mut Diag, n: &Spanned<u64>) -> Option<usize> {
    if n.value == 0 {
        diag.at(n, "must be greater than 0");
        return None;
    }
    count(diag, n)
}

/// A count as `usize`.
pub(crate) fn count(diag: &mut Diag, n: &Spanned<u64>) -> Option<usize> {
    usize::try_from(n.value)
        .map_err(|_| diag.at(n, "number too large"))
        .ok()
}

/// A socket address `IP:PORT`.
pub(crate) fn socket_addr(diag: &mut Diag, text: &Text) -> Option<SocketAddr> {
    match text.value.parse() {
        Ok(addr) => Some(addr),
        Err(_) => {
            let message = format!(
                "`{}` is not a socket address: write IP:PORT, e.g. 127.0.0.1:8080 or [::1]:8080",
                text.value
            );
            diag.at(text, message);
            None
        }
    }
}

/// A non-empty list of socket addresses, each with its spanned text.
pub(crate) fn socket_addrs(diag: &mut Diag, list: &TextList) -> Vec<(SocketAddr, Text)> {
    if list.value.is_empty() {
        diag.at(list, "at least one address is needed");
    }
    list.value
        .iter()
        .filter_map(|text| socket_addr(diag, text).map(|a| (a, text.clone())))
        .collect()
}

/// `${VAR}` expansion.
pub(crate) fn expand(diag: &mut Diag, text: &Text, env: &dyn EnvSource) -> Option<String> {
    expand_env(&text.value, env)
        .map_err(|e| diag.at(text, e.to_string()))
        .ok()
}

/// A regular file that must exist and be readable; relative paths are
/// resolved against `base_dir`. `what` names the file in the message.
///
/// The file type is checked (through symlinks) before the file is opened:
/// opening a FIFO blocks until a writer comes, and reading a device such as
/// `/dev/zero` never ends, so `check` would hang on either.
pub(crate) fn readable_file(
    diag: &mut Diag,
    text: &Text,
    base_dir: &Path,
    what: &str,
) -> Option<PathBuf> {
    let path = base_dir.join(&text.value);
    let problem = match std::fs::metadata(&path) {
        Ok(meta) => match not_regular(&meta) {
            Some(reason) => Some(reason),
            None => std::fs::File::open(&path).err().map(|e| io_reason(&e)),
        },
        Err(e) => Some(io_reason(&e)),
    };
    match problem {
        None => Some(path),
        Some(reason) => {
            diag.at(
                text,
                format!("cannot read {what} `{}`: {reason}", path.display()),
            );
            None
        }
    }
}

/// `runtime_dir`: a directory path, resolved against `base_dir` and made
/// absolute. It need not exist; when it does, it must be a directory.
pub(crate) fn runtime_dir(diag: &mut Diag, text: &Text, base_dir: &Path) -> Option<PathBuf> {
    if text.value.is_empty() || text.value.contains('\0') {
        diag.at(text, "expected a directory path");
        return None;
    }
    let joined = base_dir.join(&text.value);
    let path = std::path::absolute(&joined).unwrap_or(joined);
    match std::fs::metadata(&path) {
        Ok(meta) if !meta.is_dir() => {
            let message = format!("`{}` exists and is not a directory", path.display());
            diag.at(text, message);
            None
        }
        _ => Some(path),
    }
}

/// Why a file with this metadata is not a regular file, or `None` when it is.
pub(crate) fn not_regular(meta: &std::fs::Metadata) -> Option<String> {
    let file_type = meta.file_type();
    if file_type.is_file() {
        return None;
    }
    if file_type.is_dir() {
        return Some("is a directory".to_owned());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt as _;
        let kind = if file_type.is_fifo() {
            Some("a FIFO")
        } else if file_type.is_char_device() {
            Some("a character device")
        } else if file_type.is_block_device() {
            Some("a block device")
        } else if file_type.is_socket() {
            Some("a socket")
        } else {
            None
        };
        if let Some(kind) = kind {
            return Some(format!("is {kind}, not a regular file"));
        }
    }
    Some("is not a regular file".to_owned())
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".to_owned(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        _ => e.to_string(),
    }
}

/// True when `text` has a control character (CR, LF, NUL, ...) other than tab.
pub(crate) fn has_control(text: &str) -> bool {
    text.chars().any(|c| c.is_control() && c != '\t')
}

/// For an optional section that was validated: absent is fine (`Some(None)`),
/// present and valid is `Some(Some(_))`, present with errors is `None`.
pub(crate) fn section<T>(validated: Option<Option<T>>) -> Option<Option<T>> {
    match validated {
        None => Some(None),
        Some(None) => None,
        Some(Some(value)) => Some(Some(value)),
    }
}
