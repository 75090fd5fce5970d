//! Switching a child process to another user before it runs its program: the supplementary
//! groups, the primary group and the user, in the child between fork and exec.
//!
//! Why here: stable Rust's `CommandExt::uid` / `gid` cannot set supplementary groups (std
//! then drops them all), and the only way to run code in the child, `pre_exec`, is `unsafe`
//! and runs after std's own `setuid`, when `setgroups` is no longer allowed. So the whole
//! switch is done in one `pre_exec` hook, in the order in which each call still holds the
//! privilege it needs: `setgroups` and `setgid` need CAP_SETGID, `setuid` CAP_SETUID and
//! comes last.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// The identity a child process takes before exec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// Real, effective and saved user id.
    pub uid: u32,
    /// Real, effective and saved group id (the user's primary group).
    pub gid: u32,
    /// Supplementary groups, as `initgroups(3)` would set them for the user.
    pub groups: Vec<u32>,
}

/// Make `command`'s child switch to `credentials` before exec. Spawning then fails with the
/// error of the first call refused (EPERM without CAP_SETUID / CAP_SETGID).
pub fn switch_user_before_exec(command: &mut Command, credentials: &Credentials) {
    let groups: Vec<libc::gid_t> = credentials.groups.clone();
    let (uid, gid) = (credentials.uid, credentials.gid);
    let hook = move || -> io::Result<()> {
        // SAFETY: setgroups reads `groups.len()` gids from a live, immutable buffer owned by
        // this closure; it is async-signal-safe, as code between fork and exec must be.
        if unsafe { libc::setgroups(groups.len(), groups.as_ptr()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: setgid and setuid take plain integers and are async-signal-safe; in the
        // child only this thread exists, so there is no other thread whose ids could differ.
        if unsafe { libc::setgid(gid) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: as above.
        if unsafe { libc::setuid(uid) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    };
    // SAFETY: the hook allocates nothing, takes no lock and only makes async-signal-safe
    // system calls, which is what `pre_exec` requires of code run in the forked child.
    unsafe {
        command.pre_exec(hook);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_root() -> bool {
        std::fs::read_to_string("/proc/self/status")
            .unwrap_or_default()
            .lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
    }

    #[test]
    fn the_child_gets_the_user_its_group_and_its_supplementary_groups() {
        if !is_root() {
            assert!(
                std::env::var("CI").map_or(true, |v| v != "true"),
                "CI must run the tests as root (switching users needs it)"
            );
            eprintln!("SKIPPED the_child_gets_the_user_...: switching users needs root");
            return;
        }
        let mut command = Command::new("/usr/bin/id");
        switch_user_before_exec(
            &mut command,
            &Credentials {
                uid: 65534,
                gid: 65533,
                groups: vec![65533, 4242],
            },
        );
        let output = command.output().unwrap();
        let text = String::from_utf8_lossy(&output.stdout);
        // id prints names where the group database has them; the numbers are always there.
        assert!(text.starts_with("uid=65534("), "{text}");
        assert!(text.contains(" gid=65533"), "{text}");
        assert!(
            text.contains("groups=65533") && text.contains("4242"),
            "{text}"
        );
    }
}
