//! keepalived as a VRRP peer in a [`Lab`]: write a `keepalived.conf` for one node, start
//! keepalived 2.2 (the Debian package) in that node's namespace in the foreground, crash it
//! or stop it, and give the node a TCP backend on the VIP (keepalived moves the address but
//! balances nothing, so the client needs something that answers there).
//!
//! Lifecycle: [`start`] spawns keepalived through [`Lab::spawn`], so the lab kills the main
//! process by PID when it is dropped. keepalived forks a VRRP child, which does a graceful
//! stop (priority 0) when its parent dies; [`Keepalived::crash`] therefore freezes both with
//! SIGSTOP before killing them, so nothing at all goes out, as when a machine dies. Each start
//! uses fresh pid files: after a kill -9 the old ones would make keepalived refuse to start.
#![allow(dead_code)] // each test binary uses a different part of the harness
#![allow(clippy::disallowed_types)] // wall-clock time of real processes

use std::io::Write;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::lab::Lab;

static RUNS: AtomicU32 = AtomicU32::new(0);

/// Whether keepalived is installed (tests skip outside CI without it, like the lab).
pub fn unavailable() -> Option<String> {
    match Command::new("keepalived").arg("--version").output() {
        Ok(_) => None,
        Err(_) => Some("keepalived is not installed (Debian package `keepalived`)".into()),
    }
}

/// One `vrrp_instance` of a node.
#[derive(Debug, Clone)]
pub struct Instance {
    pub vrid: u8,
    /// 2 or 3 (keepalived's own default is 2).
    pub version: u8,
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
    let run = RUNS.fetch_add(1, Ordering::Relaxed);
    let tag = format!("ka-n{i}-{run}");
    let config = lab.write(
        &format!("{tag}.conf"),
        &instance.config(&format!("node{i}")),
    );
    let file = |suffix: &str| lab.dir.join(format!("{tag}.{suffix}"));
    let (pid_file, vrrp_pid_file, checkers_pid_file) =
        (file("pid"), file("vrrp.pid"), file("checkers.pid"));
    let log = format!("{tag}.log");
    let pid = lab.spawn(
        &lab.nodes[i].clone(),
        "keepalived",
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
    /// The PID of the VRRP child, once keepalived has written it (it must be a child of our
    /// main process: nothing else is ever signalled).
    pub fn vrrp_child(&self) -> Option<u32> {
        for _ in 0..100 {
            if let Some(pid) = std::fs::read_to_string(&self.vrrp_pid_file)
                .ok()
                .and_then(|t| t.trim().parse::<u32>().ok())
            {
                return (parent_of(pid) == Some(self.pid)).then_some(pid);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    /// A crash: freeze the main process and the VRRP child (so no priority-0 advert and no
    /// respawn can happen), then kill both with SIGKILL.
    pub fn crash(&self, lab: &Lab) {
        let child = self.vrrp_child();
        lab.signal(self.pid, "STOP");
        if let Some(child) = child {
            signal_child(self.pid, child, "STOP");
            signal_child(self.pid, child, "KILL");
        }
        lab.signal(self.pid, "KILL");
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
/// set in that namespace) that answers every connection with `node<i>` and closes. It stops
/// when the returned handle is dropped (the lab stops it too).
pub fn start_vip_backend(lab: &Lab, i: usize, vip: SocketAddr) -> VipBackend {
    let key = if vip.is_ipv4() { "ipv4" } else { "ipv6" };
    lab.ns(
        &lab.nodes[i].clone(),
        &["sysctl", "-qw", &format!("net.{key}.ip_nonlocal_bind=1")],
    );
    let name = format!("node{i}\n");
    let stop = Arc::new(AtomicBool::new(false));
    let own_stop = stop.clone();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    lab.background(&lab.nodes[i].clone(), move |lab_stop| {
        let listener = TcpListener::bind(vip).expect("bind the VIP backend");
        listener.set_nonblocking(true).expect("nonblocking");
        let _ = ready_tx.send(());
        while !lab_stop.load(Ordering::Relaxed) && !own_stop.load(Ordering::Relaxed) {
            match listener.accept() {
                Ok((mut stream, _)) => {
                    let _ = stream.set_nonblocking(false);
                    let _ = stream.write_all(name.as_bytes());
                }
                Err(_) => std::thread::sleep(Duration::from_millis(1)),
            }
        }
        // Dropping the listener here frees VIP:port for whatever runs next in the namespace.
        drop(listener);
        let _ = ready_tx.send(());
    });
    ready_rx
        .recv_timeout(Duration::from_secs(5))
        .expect("VIP backend started");
    VipBackend {
        stop,
        closed: ready_rx,
    }
}

pub struct VipBackend {
    stop: Arc<AtomicBool>,
    closed: std::sync::mpsc::Receiver<()>,
}

impl Drop for VipBackend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wait (briefly) until the port is free again.
        let _ = self.closed.recv_timeout(Duration::from_secs(1));
    }
}
