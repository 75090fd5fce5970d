//! Running the external commands operators configure: notify commands on VRRP state changes
//! and script trackers. No shell unless the config asks for one, an optional unprivileged
//! user (looked up through NSS, with its primary and supplementary groups, as keepalived's
//! `script_user` and `initgroups(3)` do), a timeout after which the command's whole process
//! group is killed (a `shell = true` line's `curl` or `sleep` dies with its shell), and output
//! captured for the log instead of inherited.
//!
//! Lifecycle of one run: resolve the user (off the async threads: NSS may ask LDAP or SSSD),
//! spawn the program as the leader of a new process group, wait for it and its output up to
//! the timeout, and on timeout (or when the run is abandoned) SIGKILL the group.

use std::ffi::CString;
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::{Gid, Pid, Uid, User};
use tokio::process::Command;

use havip_config::vrrp::CommandSpec;
use havip_sys::process::{switch_user_before_exec, Credentials};

/// How a command run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Exited with this status code (0 is success).
    Exited(i32),
    /// Killed by a signal it did not get from us.
    Signalled,
    /// Still running at the timeout; killed with its process group.
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

/// A user to run commands as, resolved through the system's user database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAs {
    /// The user id the command runs with.
    pub uid: u32,
    /// The user's primary group, from its user database entry.
    pub gid: u32,
    /// Every group the user is in (primary first), as `initgroups(3)` sets them.
    pub groups: Vec<u32>,
}

/// Look `name` up through NSS (`getpwnam_r` and `getgrouplist`, so users from LDAP, SSSD or
/// nss-systemd are found as `id` finds them). A number is a uid, looked up the same way for
/// its primary group and groups; a uid without an entry is refused rather than given a
/// guessed group.
pub fn lookup_user(name: &str) -> Result<RunAs, String> {
    let found = match name.parse::<u32>() {
        Ok(uid) => User::from_uid(Uid::from_raw(uid)),
        Err(_) => User::from_name(name),
    };
    let user = match found {
        Ok(Some(user)) => user,
        Ok(None) => {
            return Err(format!(
                "no user {name:?} in the user database (as `getent passwd {name}` shows it)"
            ))
        }
        Err(errno) => return Err(format!("looking up user {name:?}: {errno}")),
    };
    let c_name = CString::new(user.name.as_bytes())
        .map_err(|_| format!("user name {:?} contains a NUL byte", user.name))?;
    let groups = nix::unistd::getgrouplist(&c_name, user.gid)
        .map_err(|errno| format!("looking up the groups of {:?}: {errno}", user.name))?;
    let mut groups: Vec<u32> = groups.into_iter().map(Gid::as_raw).collect();
    // getgrouplist lists the primary group too, not necessarily first.
    groups.retain(|&gid| gid != user.gid.as_raw());
    groups.insert(0, user.gid.as_raw());
    Ok(RunAs {
        uid: user.uid.as_raw(),
        gid: user.gid.as_raw(),
        groups,
    })
}

/// SIGKILLs a process group when dropped, unless disarmed: a run that times out, or whose
/// future is dropped (shutdown), takes its children with it.
struct GroupKill(Option<Pid>);

impl GroupKill {
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for GroupKill {
    fn drop(&mut self) {
        if let Some(group) = self.0.take() {
            // ESRCH: every member is gone already. The group's id cannot be reused while the
            // leader is unreaped or any member lives, so this never hits another group.
            let _ = killpg(group, Signal::SIGKILL);
        }
    }
}

/// The command to spawn: its own process group, no inherited stdin, output captured, and
/// none of systemd's notify variables (the service manager listens to havip alone).
fn build(program: &str, args: &[String], run_as: Option<&RunAs>) -> Command {
    let mut command = std::process::Command::new(program);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC")
        .env_remove("WATCHDOG_PID");
    if let Some(run_as) = run_as {
        let credentials = Credentials {
            uid: run_as.uid,
            gid: run_as.gid,
            groups: run_as.groups.clone(),
        };
        switch_user_before_exec(&mut command, &credentials);
    }
    let mut command = Command::from(command);
    // The leader dies with the future too; GroupKill takes care of the rest of the group.
    command.kill_on_drop(true);
    command
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
    let run_as = match user {
        None => None,
        Some(user) => {
            let name = user.to_string();
            match tokio::task::spawn_blocking(move || lookup_user(&name)).await {
                Ok(Ok(run_as)) => Some(run_as),
                Ok(Err(why)) => return (Outcome::NotStarted(why), String::new()),
                Err(e) => return (Outcome::NotStarted(e.to_string()), String::new()),
            }
        }
    };
    let child = match build(program, args, run_as.as_ref()).spawn() {
        Ok(child) => child,
        Err(e) => {
            return (
                Outcome::NotStarted(format!("{program}: {e}")),
                String::new(),
            )
        }
    };
    let mut group = GroupKill(child.id().map(|pid| Pid::from_raw(pid as i32)));
    let Ok(finished) = tokio::time::timeout(timeout, child.wait_with_output()).await else {
        // `group` kills the leader's whole group as it goes out of scope.
        return (Outcome::TimedOut, String::new());
    };
    // Finished in time: what it left running in the background is its own business (as with
    // keepalived), so the group is not killed.
    group.disarm();
    match finished {
        Err(e) => (Outcome::NotStarted(e.to_string()), String::new()),
        Ok(output) => {
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

    fn is_root() -> bool {
        std::fs::read_to_string("/proc/self/status")
            .unwrap_or_default()
            .lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
    }

    /// False (after printing SKIPPED) where switching users cannot be tested; under CI a
    /// failure instead.
    fn root_or_skip(test: &str) -> bool {
        if is_root() {
            return true;
        }
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "CI must run the tests as root (switching users needs it)"
        );
        eprintln!("SKIPPED {test}: switching users needs root");
        false
    }

    #[test]
    fn users_and_uids_get_the_primary_group_of_their_entry() {
        // Debian's base-passwd: games is uid 5 in group 60, so a uid is not its own gid.
        let games = lookup_user("games").unwrap();
        assert_eq!((games.uid, games.gid), (5, 60));
        assert_eq!(games.groups[0], 60);
        assert_eq!(lookup_user("5").unwrap(), games);
        let why = lookup_user("3999999").unwrap_err();
        assert!(why.contains("no user \"3999999\""), "{why}");
        let why = lookup_user("no-such-user-havip").unwrap_err();
        assert!(why.contains("getent passwd no-such-user-havip"), "{why}");
    }

    const NSS_USER: &str = "havip-nss-test";

    /// Runs inside a private mount namespace whose /etc/passwd and /etc/group name a user
    /// that exists nowhere else, with a supplementary group.
    fn nss_groups_inside() {
        let run_as = lookup_user(NSS_USER).unwrap();
        assert_eq!(
            run_as,
            RunAs {
                uid: 45678,
                gid: 45679,
                groups: vec![45679, 45680]
            }
        );
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let spec = CommandSpec::Argv(vec!["/usr/bin/id".into()]);
        let (outcome, line) =
            runtime.block_on(run(&spec, &[], Some(NSS_USER), Duration::from_secs(5)));
        assert_eq!(outcome, Outcome::Exited(0));
        assert_eq!(
            line,
            "uid=45678(havip-nss-test) gid=45679(havip-nss-primary) \
             groups=45679(havip-nss-primary),45680(havip-nss-extra)"
        );
        println!("NSS-GROUPS-OK");
    }

    #[test]
    fn commands_get_the_users_supplementary_groups_from_the_group_database() {
        if std::env::var_os("HAVIP_TEST_NSS_INSIDE").is_some() {
            nss_groups_inside();
            return;
        }
        if !root_or_skip("commands_get_the_users_supplementary_groups_from_the_group_database") {
            return;
        }
        let dir = std::env::temp_dir().join(format!("havip-nss-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap()
            + &format!("{NSS_USER}:x:45678:45679::/nonexistent:/usr/sbin/nologin\n");
        let group = std::fs::read_to_string("/etc/group").unwrap()
            + &format!("havip-nss-primary:x:45679:\nhavip-nss-extra:x:45680:{NSS_USER}\n");
        std::fs::write(dir.join("passwd"), passwd).unwrap();
        std::fs::write(dir.join("group"), group).unwrap();
        // The same test binary, again, in a mount namespace of its own: the machine's files
        // are never touched.
        let output = std::process::Command::new("unshare")
            .args(["--mount", "--propagation", "private", "--", "sh", "-c"])
            .arg(
                "mount --bind \"$1/passwd\" /etc/passwd && mount --bind \"$1/group\" /etc/group \
                 && exec \"$2\" --exact \"$3\" --nocapture",
            )
            .arg("sh")
            .arg(&dir)
            .arg(std::env::current_exe().unwrap())
            .arg("command::tests::commands_get_the_users_supplementary_groups_from_the_group_database")
            .env("HAVIP_TEST_NSS_INSIDE", "1")
            .output()
            .unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success() && stdout.contains("NSS-GROUPS-OK"),
            "{stdout}\n{stderr}"
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
        if !root_or_skip("commands_run_as_the_configured_user") {
            return;
        }
        let spec = CommandSpec::Argv(vec!["/usr/bin/id".into()]);
        let (outcome, line) = run(&spec, &[], Some("games"), Duration::from_secs(5)).await;
        assert_eq!(outcome, Outcome::Exited(0));
        // The entry's group (60), and no group left over from root.
        assert_eq!(line, "uid=5(games) gid=60(games) groups=60(games)");
    }

    #[tokio::test]
    async fn commands_do_not_inherit_the_notify_socket() {
        let spec = CommandSpec::Shell("echo \"[${NOTIFY_SOCKET-unset}]\"".into());
        let (_, line) = run(&spec, &[], None, Duration::from_secs(5)).await;
        assert_eq!(line, "[unset]");
    }

    #[tokio::test]
    async fn a_slow_command_is_killed_at_the_timeout() {
        let spec = CommandSpec::Argv(vec!["/bin/sleep".into(), "30".into()]);
        let started = tokio::time::Instant::now();
        let (outcome, _) = run(&spec, &[], None, Duration::from_millis(200)).await;
        assert_eq!(outcome, Outcome::TimedOut);
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    /// Whether `pid` still runs `sleep` (a zombie waiting for init to reap it has stopped).
    fn sleeping(pid: u32) -> bool {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            return false;
        };
        let state = stat
            .rsplit(") ")
            .next()
            .and_then(|rest| rest.chars().next());
        stat.contains("(sleep)") && state != Some('Z')
    }

    #[tokio::test]
    async fn a_shell_command_that_times_out_leaves_no_child_behind() {
        let pidfile = std::env::temp_dir().join(format!("havip-sleep-{}", std::process::id()));
        let line = format!("/bin/sleep 60 & echo $! > {}; wait", pidfile.display());
        let spec = CommandSpec::Shell(line);
        let (outcome, _) = run(&spec, &[], None, Duration::from_millis(300)).await;
        assert_eq!(outcome, Outcome::TimedOut);
        let pid: u32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        std::fs::remove_file(&pidfile).unwrap();
        // SIGKILL is delivered at once; give the kernel a moment to finish the process.
        for _ in 0..100 {
            if !sleeping(pid) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(!sleeping(pid), "sleep {pid} outlived its timed-out shell");
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
