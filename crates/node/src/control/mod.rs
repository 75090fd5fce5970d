//! The local control socket: the admin API ([`crate::admin::api`]) over a Unix stream
//! socket, for `havip status` and `havip backend` on the node itself. Its file permissions
//! are the access control, as for HAProxy's `stats socket`: whoever may open it may run every
//! command, so no credentials and no `[admin] commands` are needed here.
//!
//! Lifecycle: [`bind`] creates the socket when the node starts: under a temporary name, with
//! its mode and group set, then renamed into place, so it never exists with the wrong
//! permissions. A stale file from a crashed havip is replaced; a socket another live process
//! answers on is left alone (two daemons by mistake must not steal each other's socket).
//! [`serve`] accepts until its token is cancelled; dropping the [`ControlSocket`] (at the
//! end of [`serve`], or with the task when the runtime shuts down) removes the file if it
//! is still the one [`bind`] created. [`client`] is the other side, for the CLI and tests.

pub mod client;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::UnixListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::admin::http::serve_connection;

/// Connections open at once on the control socket.
pub const MAX_CONNECTIONS: usize = 16;

/// Why the control socket cannot be created.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// Another process answers on the socket already.
    #[error("{0}: another process (a running havip?) answers on it; set [control] socket to another path")]
    InUse(PathBuf),
    /// Something that is not a socket is at the path; havip does not delete it.
    #[error("{0}: exists and is not a socket; remove it or set [control] socket to another path")]
    NotASocket(PathBuf),
    /// The configured group does not exist.
    #[error("no group {0:?} in /etc/group")]
    NoGroup(String),
    /// A file operation failed (no permission to create the directory, ...).
    #[error("{path}: {source}")]
    Io {
        /// The path the operation was on.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
}

/// A bound control socket.
#[derive(Debug)]
pub struct ControlSocket {
    listener: UnixListener,
    path: PathBuf,
    /// (device, inode) of the file created, so only that file is removed at the end.
    identity: (u64, u64),
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> ControlError + '_ {
    move |source| ControlError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Create the socket at `path` with permissions `mode` and, when given, group `group` (a
/// name or a number). Must run inside a tokio runtime.
pub fn bind(
    path: &Path,
    mode: u32,
    group: Option<&str>,
    replace_live: bool,
) -> Result<ControlSocket, ControlError> {
    let gid = group.map(lookup_group).transpose()?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            std::fs::create_dir_all(dir).map_err(io_error(dir))?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
                .map_err(io_error(dir))?;
        }
    }
    if let Ok(existing) = std::fs::symlink_metadata(path) {
        use std::os::unix::fs::FileTypeExt;
        if !existing.file_type().is_socket() {
            return Err(ControlError::NotASocket(path.to_path_buf()));
        }
        // Replacing a live one (a binary upgrade's successor): the rename below swaps the
        // path over at once, and the predecessor, finding another file there when it ends,
        // leaves it alone.
        if !replace_live {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(ControlError::InUse(path.to_path_buf()));
            }
            // Nobody listens: left by a havip that was killed.
            std::fs::remove_file(path).map_err(io_error(path))?;
        }
    }
    let temporary = path.with_extension(format!("tmp.{}", std::process::id()));
    let _ = std::fs::remove_file(&temporary);
    let listener = UnixListener::bind(&temporary).map_err(io_error(&temporary))?;
    let prepared = std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(mode))
        .and_then(|()| match gid {
            Some(gid) => std::os::unix::fs::chown(&temporary, None, Some(gid)),
            None => Ok(()),
        })
        .and_then(|()| std::fs::rename(&temporary, path));
    if let Err(source) = prepared {
        let _ = std::fs::remove_file(&temporary);
        return Err(ControlError::Io {
            path: path.to_path_buf(),
            source,
        });
    }
    let metadata = std::fs::metadata(path).map_err(io_error(path))?;
    Ok(ControlSocket {
        listener,
        path: path.to_path_buf(),
        identity: (metadata.dev(), metadata.ino()),
    })
}

/// A group's id from its name (or number), as /etc/group has it.
fn lookup_group(name: &str) -> Result<u32, ControlError> {
    if let Ok(gid) = name.parse::<u32>() {
        return Ok(gid);
    }
    let groups =
        std::fs::read_to_string("/etc/group").map_err(io_error(Path::new("/etc/group")))?;
    groups
        .lines()
        .find_map(|line| {
            let mut fields = line.split(':');
            (fields.next()? == name).then_some(())?;
            fields.nth(1)?.parse().ok()
        })
        .ok_or_else(|| ControlError::NoGroup(name.to_string()))
}

/// Serve `app` on the socket until `stop` is cancelled, then remove the socket file (if it
/// is still the one [`bind`] made).
pub async fn serve(socket: ControlSocket, app: Router, stop: CancellationToken) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            accepted = socket.listener.accept() => accepted,
            () = stop.cancelled() => break,
        };
        match accepted {
            Ok((stream, _)) => {
                // Local callers are trusted; still, a stuck script must not pile up tasks.
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    tracing::warn!(
                        "control socket: {MAX_CONNECTIONS} connections open, refusing one"
                    );
                    continue;
                };
                let (app, stop) = (app.clone(), stop.clone());
                tokio::spawn(async move {
                    let _slot = slot;
                    serve_connection(stream, app, stop).await;
                });
            }
            Err(error) => {
                tracing::warn!(%error, "control socket accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    drop(socket);
}

impl Drop for ControlSocket {
    /// Removes the socket file if it is still the one [`bind`] made: when [`serve`] ends,
    /// and also when the runtime shuts down with the task unfinished (the process exits
    /// right after the node stops), so a stopped havip leaves no socket behind.
    fn drop(&mut self) {
        let still_ours =
            std::fs::metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == self.identity);
        if still_ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_stale_socket_is_replaced_a_live_one_kept_a_file_never_deleted() {
        let dir = std::env::temp_dir().join(format!("havip-control-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("sub").join("havip.sock");
        let first = bind(&path, 0o600, None, false).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(matches!(
            bind(&path, 0o600, None, false),
            Err(ControlError::InUse(_))
        ));
        drop(first);
        assert!(!path.exists(), "its own socket is removed when dropped");
        // A socket nobody listens on any more, as a havip killed with SIGKILL leaves.
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        // Our own group: any user may give its socket that one.
        let own_group = std::fs::metadata(&dir).unwrap().gid().to_string();
        let second = bind(&path, 0o660, Some(&own_group), false).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o660
        );
        drop(second);
        let plain = dir.join("plain");
        std::fs::write(&plain, "keep me").unwrap();
        assert!(matches!(
            bind(&plain, 0o600, None, false),
            Err(ControlError::NotASocket(_))
        ));
        assert_eq!(std::fs::read_to_string(&plain).unwrap(), "keep me");
        assert!(matches!(
            bind(
                &dir.join("x.sock"),
                0o600,
                Some("no-such-group-havip"),
                false
            ),
            Err(ControlError::NoGroup(_))
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
