//! Finding the external programs the tests drive, and running one with a time limit.
//!
//! Programs are looked up on `PATH`, then in `/usr/sbin` and `/usr/bin` (a non-root `PATH`
//! often lacks `/usr/sbin`, where nginx, keepalived and tcpdump live), and count as present
//! only when their version command succeeds.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::wait::wait_for_every;

/// The first of `name`, `/usr/sbin/name`, `/usr/bin/name` that runs `name version_args`
/// successfully.
pub fn find(name: &str, version_args: &[&str]) -> Option<PathBuf> {
    let candidates = [
        PathBuf::from(name),
        Path::new("/usr/sbin").join(name),
        Path::new("/usr/bin").join(name),
    ];
    candidates.into_iter().find(|candidate| {
        Command::new(candidate)
            .args(version_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    })
}

/// Run `program args` to its end, killing it (our own child, by its handle) if it takes longer
/// than `limit`; its output either way. Panics when it cannot start or overran.
pub fn run_bounded(program: &Path, args: &[&str], limit: Duration) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
    // Read both pipes on threads so a chatty child never blocks on a full pipe.
    let mut out_pipe = child.stdout.take().expect("stdout piped");
    let mut err_pipe = child.stderr.take().expect("stderr piped");
    let out = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out_pipe.read_to_end(&mut buf);
        buf
    });
    let err = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err_pipe.read_to_end(&mut buf);
        buf
    });
    let exited = wait_for_every(Duration::from_millis(10), limit, || {
        child.try_wait().expect("wait for child")
    });
    let Some(status) = exited else {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "{} {} did not finish within {limit:?}",
            program.display(),
            args.join(" ")
        );
    };
    Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}
