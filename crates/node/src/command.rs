//! Running the external commands operators configure: notify commands on VRRP state changes
//! and script trackers. No shell unless the config asks for one, an optional unprivileged
//! user, a timeout after which the command (and only it) is killed, and output captured for
//! the log instead of inherited.

use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use havip_config::vrrp::CommandSpec;

/// How a command run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Exited with this status code (0 is success).
    Exited(i32),
    /// Killed by a signal it did not get from us.
    Signalled,
    /// Still running at the timeout; killed.
    TimedOut,
    /// Could not be started (missing program, unknown user...).
    NotStarted(String),
}

impl Outcome {
    /// Whether the command exited 0: a passing script tracker, a notify that worked.
    pub fn is_success(&self) -> bool {
        *self == Outcome::Exited(0)
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Exited(code) => write!(f, "exit status {code}"),
            Outcome::Signalled => f.write_str("killed by a signal"),
            Outcome::TimedOut => f.write_str("timed out"),
            Outcome::NotStarted(why) => write!(f, "not started: {why}"),
        }
    }
}

/// A user to run commands as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunAs {
    /// The user id the command runs with.
    pub uid: u32,
    /// The group id the command runs with.
    pub gid: u32,
}

/// Look a user up in /etc/passwd (as keepalived's `script_user` does through getpwnam; a
/// file read keeps this crate free of unsafe). A number is taken as a uid with the same gid.
pub fn lookup_user(name: &str) -> Result<RunAs, String> {
    if let Ok(uid) = name.parse::<u32>() {
        return Ok(RunAs { uid, gid: uid });
    }
    let passwd = std::fs::read_to_string("/etc/passwd").map_err(|e| format!("/etc/passwd: {e}"))?;
    find_user(&passwd, name).ok_or_else(|| format!("no user {name:?} in /etc/passwd"))
}

fn find_user(passwd: &str, name: &str) -> Option<RunAs> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        if fields.next()? != name {
            return None;
        }
        let _password = fields.next()?;
        let uid = fields.next()?.parse().ok()?;
        let gid = fields.next()?.parse().ok()?;
        Some(RunAs { uid, gid })
    })
}

/// Run `spec` with `extra` arguments, as `user` if given, for at most `timeout`. Returns the
/// outcome and the first line of what it wrote (stderr, else stdout) for the log.
pub async fn run(
    spec: &CommandSpec,
    extra: &[&str],
    user: Option<&str>,
    timeout: Duration,
) -> (Outcome, String) {
    let argv = spec.argv(extra);
    let Some((program, args)) = argv.split_first() else {
        return (Outcome::NotStarted("empty command".into()), String::new());
    };
    let mut command = Command::new(program);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // The timeout drops the future; the child must not outlive it.
        .kill_on_drop(true);
    if let Some(user) = user {
        match lookup_user(user) {
            Ok(run_as) => {
                command.uid(run_as.uid).gid(run_as.gid);
            }
            Err(why) => return (Outcome::NotStarted(why), String::new()),
        }
    }
    let child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            return (
                Outcome::NotStarted(format!("{program}: {e}")),
                String::new(),
            )
        }
    };
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Err(_) => (Outcome::TimedOut, String::new()),
        Ok(Err(e)) => (Outcome::NotStarted(e.to_string()), String::new()),
        Ok(Ok(output)) => {
            let text = if output.stderr.is_empty() {
                &output.stdout
            } else {
                &output.stderr
            };
            let first_line = String::from_utf8_lossy(text)
                .lines()
                .next()
                .unwrap_or("")
                .chars()
                .take(200)
                .collect();
            let outcome = match output.status.code() {
                Some(code) => Outcome::Exited(code),
                None => Outcome::Signalled,
            };
            (outcome, first_line)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_are_found_in_passwd_text() {
        let passwd =
            "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/:/usr/sbin/nologin\n";
        assert_eq!(
            find_user(passwd, "nobody"),
            Some(RunAs {
                uid: 65534,
                gid: 65534
            })
        );
        assert_eq!(find_user(passwd, "nob"), None);
        assert_eq!(
            lookup_user("1000"),
            Ok(RunAs {
                uid: 1000,
                gid: 1000
            })
        );
    }

    #[tokio::test]
    async fn argv_commands_get_their_arguments_without_a_shell() {
        let spec = CommandSpec::Argv(vec!["/bin/echo".into(), "$HOME".into()]);
        let (outcome, line) = run(&spec, &["VI_1"], None, Duration::from_secs(5)).await;
        assert_eq!(outcome, Outcome::Exited(0));
        // No shell: `$HOME` is passed literally.
        assert_eq!(line, "$HOME VI_1");
    }

    #[tokio::test]
    async fn shell_commands_see_extra_arguments_as_positional_parameters() {
        let spec = CommandSpec::Shell("echo \"$1->$3\" >&2; exit 3".into());
        let (outcome, line) = run(
            &spec,
            &["VI_1", "BACKUP", "MASTER"],
            None,
            Duration::from_secs(5),
        )
        .await;
        assert_eq!(outcome, Outcome::Exited(3));
        assert_eq!(line, "VI_1->MASTER");
    }

    #[tokio::test]
    async fn commands_run_as_the_configured_user() {
        let root = std::fs::read_to_string("/proc/self/status")
            .unwrap_or_default()
            .lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"));
        if !root {
            // CI runs as root: there this is a failure, not a skip.
            assert!(
                std::env::var("CI").map_or(true, |v| v != "true"),
                "CI must run the tests as root (switching users needs it)"
            );
            eprintln!("SKIPPED commands_run_as_the_configured_user: switching users needs root");
            return;
        }
        let spec = CommandSpec::Argv(vec!["/usr/bin/id".into(), "-u".into()]);
        let (outcome, line) = run(&spec, &[], Some("nobody"), Duration::from_secs(5)).await;
        assert_eq!(outcome, Outcome::Exited(0));
        assert_eq!(line, "65534");
    }

    #[tokio::test]
    async fn a_slow_command_is_killed_at_the_timeout() {
        let spec = CommandSpec::Argv(vec!["/bin/sleep".into(), "30".into()]);
        let started = tokio::time::Instant::now();
        let (outcome, _) = run(&spec, &[], None, Duration::from_millis(200)).await;
        assert_eq!(outcome, Outcome::TimedOut);
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn missing_programs_and_users_are_reported() {
        let spec = CommandSpec::Argv(vec!["/nonexistent/havip-test".into()]);
        let (outcome, _) = run(&spec, &[], None, Duration::from_secs(1)).await;
        assert!(matches!(outcome, Outcome::NotStarted(_)), "{outcome:?}");
        let spec = CommandSpec::Argv(vec!["/bin/true".into()]);
        let (outcome, _) = run(
            &spec,
            &[],
            Some("no-such-user-havip"),
            Duration::from_secs(1),
        )
        .await;
        assert!(matches!(outcome, Outcome::NotStarted(ref w) if w.contains("no-such-user-havip")));
    }
}
