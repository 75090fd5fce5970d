//! keepalived as a VRRP peer in a [`Lab`]: write a `keepalived.conf` for one node, start
//! keepalived 2.2 (the Debian package) in that node's namespace in the foreground, crash it
//! or stop it, and give the node a TCP backend on the VIP (keepalived moves the address but
//! balances nothing, so the client needs something that answers there).
//!
//! Lifecycle: [`start`] spawns keepalived through [`Lab::spawn`], so the lab kills the main
//! process by PID when it is dropped. keepalived forks a VRRP child, which does a graceful
//! stop (priority 0) when its parent dies; [`Keepalived::crash`] therefore freezes both with
//! SIGSTOP before killing them, so nothing at all goes out, as when a machine dies, and fails
//! the test when it cannot find the child (a crash must never quietly become a graceful stop).
//! Each start uses fresh pid files: after a kill -9 the old ones would make keepalived refuse
//! to start. Tests that use it need [`Need::Keepalived`](crate::Need::Keepalived).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::lab::Lab;
use crate::servers::{Reply, Server};
use crate::wait::wait_for;

static RUNS: AtomicU32 = AtomicU32::new(0);

/// One `vrrp_instance` of a node.
#[derive(Debug, Clone)]
pub struct Instance {
    /// `virtual_router_id`.
    pub vrid: u8,
    /// 2 or 3 (keepalived's own default is 2).
    pub version: u8,
    /// `priority`.
    pub priority: u8,
    /// keepalived's `advert_int`: "1", "0.1".
    pub advert_int: String,
    /// `authentication { auth_type PASS; auth_pass ... }` (v2 only).
    pub auth_pass: Option<String>,
    /// `unicast_src_ip` and `unicast_peer { ... }`; None: multicast.
    pub unicast: Option<(IpAddr, Vec<IpAddr>)>,
    /// `virtual_ipaddress`, e.g. "10.77.0.200/24".
    pub vip: String,
}

impl Instance {
    /// The `keepalived.conf` text for this instance on a lab node (interface `eth0`).
    pub fn config(&self, router_id: &str) -> String {
        let mut text = format!(
            "global_defs {{\n    router_id {router_id}\n}}\n\
             vrrp_instance VI_1 {{\n    version {}\n    state BACKUP\n    interface eth0\n    \
             virtual_router_id {}\n    priority {}\n    advert_int {}\n",
            self.version, self.vrid, self.priority, self.advert_int
        );
        if let Some(pass) = &self.auth_pass {
            text.push_str(&format!(
                "    authentication {{\n        auth_type PASS\n        auth_pass {pass}\n    }}\n"
            ));
        }
        if let Some((source, peers)) = &self.unicast {
            text.push_str(&format!(
                "    unicast_src_ip {source}\n    unicast_peer {{\n"
            ));
            for peer in peers {
                text.push_str(&format!("        {peer}\n"));
            }
            text.push_str("    }\n");
        }
        text.push_str(&format!(
            "    virtual_ipaddress {{\n        {} dev eth0\n    }}\n}}\n",
            self.vip
        ));
        text
    }
}

/// A keepalived started by [`start`].
#[derive(Debug)]
pub struct Keepalived {
    /// The main process (a child of the lab).
    pub pid: u32,
    /// The file keepalived writes its VRRP child's PID to.
    pub vrrp_pid_file: PathBuf,
    /// Its log (in the lab directory).
    pub log: String,
}

/// Write `instance`'s config for node `i` and start keepalived there.
pub fn start(lab: &Lab, i: usize, instance: &Instance) -> Keepalived {
    start_with_config(lab, i, &instance.config(&format!("node{i}")))
}

/// Start keepalived in node `i` with the whole `keepalived.conf` text `config` (for configs
/// [`Instance`] cannot write, e.g. several instances).
pub fn start_with_config(lab: &Lab, i: usize, config: &str) -> Keepalived {
    let run = RUNS.fetch_add(1, Ordering::Relaxed);
    let tag = format!("ka-n{i}-{run}");
    let config = lab.write(&format!("{tag}.conf"), config);
    let file = |suffix: &str| lab.dir.join(format!("{tag}.{suffix}"));
    let (pid_file, vrrp_pid_file, checkers_pid_file) =
        (file("pid"), file("vrrp.pid"), file("checkers.pid"));
    let log = format!("{tag}.log");
    let program = crate::Need::Keepalived.path().display().to_string();
    let pid = lab.spawn(
        &lab.nodes[i].clone(),
        &program,
        &[
            "-n", // foreground
            "-l", // log to the console (our log file)
            "-D", // detailed
            "-f",
            &config.display().to_string(),
            "-p",
            &pid_file.display().to_string(),
            "-r",
            &vrrp_pid_file.display().to_string(),
            "-c",
            &checkers_pid_file.display().to_string(),
        ],
        &log,
        &[],
    );
    Keepalived {
        pid,
        vrrp_pid_file,
        log,
    }
}

impl Keepalived {
    /// The PID of the VRRP child once keepalived has written it (up to 5 s after the start),
    /// if it is a child of our main process: nothing else is ever signalled.
    pub fn vrrp_child(&self) -> Option<u32> {
        let written = wait_for(Duration::from_secs(5), || {
            std::fs::read_to_string(&self.vrrp_pid_file)
                .ok()
                .and_then(|t| t.trim().parse::<u32>().ok())
        })?;
        (parent_of(written) == Some(self.pid)).then_some(written)
    }

    /// A crash: freeze the main process and the VRRP child (so no priority-0 advert and no
    /// respawn can happen), then kill both with SIGKILL. Panics when the VRRP child cannot be
    /// found or outlives the kill: the test would otherwise measure a graceful stop.
    pub fn crash(&self, lab: &Lab) {
        let Some(child) = self.vrrp_child() else {
            panic!(
                "keepalived {}: no VRRP child found through {} (a kill of the main process \
                 alone would be a graceful stop, not a crash)\n{}",
                self.pid,
                self.vrrp_pid_file.display(),
                lab.log_of(&self.log)
            );
        };
        lab.signal(self.pid, "STOP");
        signal_child(self.pid, child, "STOP");
        signal_child(self.pid, child, "KILL");
        lab.signal(self.pid, "KILL");
        let gone = wait_for(Duration::from_secs(5), || {
            (!is_running(child)).then_some(())
        });
        assert!(
            gone.is_some(),
            "keepalived's VRRP child {child} still runs after the crash"
        );
    }
}

impl Drop for Keepalived {
    /// The lab kills the main process by PID; kill the VRRP child first (it would otherwise
    /// outlive its namespace for a moment, stopping gracefully). Only while it is still a
    /// child of our main process, which is then alive too.
    fn drop(&mut self) {
        let child = std::fs::read_to_string(&self.vrrp_pid_file)
            .ok()
            .and_then(|t| t.trim().parse::<u32>().ok());
        if let Some(child) = child {
            if parent_of(child) == Some(self.pid) {
                let _ = Command::new("kill")
                    .args(["-STOP", &self.pid.to_string()])
                    .status();
                signal_child(self.pid, child, "KILL");
            }
        }
    }
}

/// Whether `pid` is a live process (not gone, not a zombie).
fn is_running(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // "pid (comm) state ...": the state follows the last ')'.
    let state = stat
        .rfind(')')
        .and_then(|i| stat[i + 1..].split_whitespace().next());
    !matches!(state, Some("Z") | Some("X") | None)
}

/// The parent PID of `pid` (from /proc).
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ppid ...": comm may hold spaces, so split after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// Signal `child` only while it is still a child of `parent` (a process we started).
fn signal_child(parent: u32, child: u32, signal: &str) {
    if parent_of(child) == Some(parent) {
        let _ = Command::new("kill")
            .args([&format!("-{signal}"), &child.to_string()])
            .status();
    }
}

/// A TCP server in node `i` bound to `vip` (before the node holds it: `ip_nonlocal_bind` is
/// set in that namespace) that answers every connection with `node<i>` and closes. It stops,
/// and frees the port, when the returned server is dropped.
pub fn start_vip_backend(lab: &Lab, i: usize, vip: SocketAddr) -> Server {
    let key = if vip.is_ipv4() { "ipv4" } else { "ipv6" };
    lab.ns(
        &lab.nodes[i].clone(),
        &["sysctl", "-qw", &format!("net.{key}.ip_nonlocal_bind=1")],
    );
    Server::start_in(
        &Lab::netns_path(&lab.nodes[i]),
        vip,
        Reply::Text(format!("node{i}\n")),
    )
}
