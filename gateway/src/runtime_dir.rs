//! The gateway's private runtime directory: where the zero-downtime upgrade
//! socket and the pid file live.
//!
//! Whoever can connect to the upgrade socket when the running gateway gets
//! SIGQUIT receives its listening sockets, so the socket must not sit in a
//! directory other local users can reach. The directory is `runtime_dir`
//! from the configuration, else `/run/sse-gateway` for root and
//! `/tmp/sse-gateway-<uid>` for any other user. The default depends on the
//! user only, never on the environment: `$XDG_RUNTIME_DIR` or `$TMPDIR`
//! differ between a systemd unit, a login shell and `sudo`, so the process
//! started with `run --upgrade` could look for the socket somewhere else
//! than the running one listens, and logind deletes `/run/user/<uid>` at
//! logout. At start-up it is created with mode 0700,
//! or, when it exists, checked: a real directory (not a symlink), owned by
//! this process's user, with no access for group or others (an own directory
//! that allows more is tightened to 0700, and the log says so). Anything else
//! stops the start with an error that names the directory.
//!
//! An old and a new process started with the same configuration and
//! environment agree on the directory, so `run --upgrade` finds the socket.

use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use sse_gateway_config::GatewayConfig;

/// The directory to use: `runtime_dir`, else the default for this user.
pub(crate) fn resolve(config: &GatewayConfig) -> PathBuf {
    match &config.runtime_dir {
        Some(dir) => dir.clone(),
        None => default_dir(uid()),
    }
}

/// `/run/sse-gateway` for root, `/tmp/sse-gateway-<uid>` for anyone else.
fn default_dir(uid: u32) -> PathBuf {
    if uid == 0 {
        PathBuf::from("/run/sse-gateway")
    } else {
        PathBuf::from(format!("/tmp/sse-gateway-{uid}"))
    }
}

fn uid() -> u32 {
    nix::unistd::getuid().as_raw()
}

/// Longest path a Unix socket can bind to (`sun_path` holds 108 bytes with
/// its terminating NUL).
const MAX_SOCKET_PATH: usize = 107;

/// Fails, naming the path, when the upgrade socket's path is too long for a
/// Unix socket (a long `runtime_dir`); pingora would only fail at upgrade.
pub(crate) fn check_socket_path(path: &Path) -> anyhow::Result<()> {
    let len = path.as_os_str().len();
    if len > MAX_SOCKET_PATH {
        anyhow::bail!(
            "the upgrade socket path {} is {len} bytes; a Unix socket path has at most \
             {MAX_SOCKET_PATH}: choose a shorter runtime_dir",
            path.display()
        );
    }
    Ok(())
}

/// Creates `dir` with mode 0700, or checks the one that is there (see the
/// module documentation).
pub(crate) fn prepare(dir: &Path) -> anyhow::Result<()> {
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .with_context(|| {
                    format!("cannot create the runtime directory {}", dir.display())
                })?;
        }
        Err(e) => {
            return Err(e)
                .with_context(|| format!("cannot read the runtime directory {}", dir.display()))
        }
        Ok(_) => {}
    }
    // Checked after creating too: something else may have been quicker.
    let meta = std::fs::symlink_metadata(dir)
        .with_context(|| format!("cannot read the runtime directory {}", dir.display()))?;
    let shown = dir.display();
    if meta.file_type().is_symlink() {
        anyhow::bail!(
            "the runtime directory {shown} is a symbolic link; set runtime_dir to a real directory"
        );
    }
    if !meta.is_dir() {
        anyhow::bail!("the runtime directory {shown} is not a directory");
    }
    let me = uid();
    if meta.uid() != me {
        anyhow::bail!(
            "the runtime directory {shown} belongs to uid {}, not to this process (uid {me}): \
             whoever owns it could take the listening sockets at an upgrade; set runtime_dir \
             to a directory of this user",
            meta.uid()
        );
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot make the runtime directory {shown} private"))?;
        tracing::info!(
            runtime_dir = %shown,
            "runtime directory had mode {mode:o}; now 0700 (it holds the upgrade socket)"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "sse-gateway-runtime-test-{}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_file(&dir);
        dir
    }

    fn mode(dir: &Path) -> u32 {
        std::fs::symlink_metadata(dir).unwrap().mode() & 0o777
    }

    #[test]
    fn the_default_depends_on_the_user_only() {
        assert_eq!(default_dir(0), PathBuf::from("/run/sse-gateway"));
        assert_eq!(default_dir(1000), PathBuf::from("/tmp/sse-gateway-1000"));
    }

    #[test]
    fn a_socket_path_too_long_for_a_unix_socket_is_refused() {
        check_socket_path(Path::new(
            "/run/user/1000/sse-gateway/sse-gateway-9090.upgrade.sock",
        ))
        .unwrap();
        let long = PathBuf::from(format!("/{}/s.sock", "d".repeat(120)));
        let err = check_socket_path(&long).unwrap_err().to_string();
        assert!(err.contains("choose a shorter runtime_dir"), "{err}");
    }

    #[test]
    fn a_missing_directory_is_created_private() {
        let dir = scratch("create").join("nested");
        prepare(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        prepare(&dir).unwrap();
        std::fs::remove_dir_all(dir.parent().unwrap()).unwrap();
    }

    #[test]
    fn an_own_directory_that_others_can_reach_is_tightened() {
        let dir = scratch("open");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        prepare(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_symlink_or_a_file_is_refused() {
        let target = scratch("target");
        std::fs::create_dir(&target).unwrap();
        let link = scratch("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = prepare(&link).unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
        let file = scratch("file");
        std::fs::write(&file, b"x").unwrap();
        let err = prepare(&file).unwrap_err().to_string();
        assert!(err.contains("not a directory"), "{err}");
        for path in [&link, &file] {
            std::fs::remove_file(path).unwrap();
        }
        std::fs::remove_dir(&target).unwrap();
    }

    #[test]
    fn a_directory_of_another_user_is_refused() {
        if uid() != 0 {
            return; // only root can make one to test with
        }
        let dir = scratch("other");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::os::unix::fs::chown(&dir, Some(65534), None).unwrap();
        let err = prepare(&dir).unwrap_err().to_string();
        assert!(err.contains("belongs to uid 65534"), "{err}");
        std::fs::remove_dir(&dir).unwrap();
    }
}
