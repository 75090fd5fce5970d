//! The network-namespace lab: a switch namespace with a bridge, host namespaces each with one
//! veth port on it (the nodes, and usually a client), addresses that exist only inside them,
//! and the processes, threads and servers started there. Tests, the failover benchmark and
//! `havip demo --cluster` all build their networks with it.
//!
//! ```text
//!   client (10.77.0.100, fd77::100) ─┐
//!   node 0 (10.77.0.11, fd77::11) ───┼── br0 in the switch namespace (ports p0, p1, ..., pc)
//!   node 1 (10.77.0.12, fd77::12) ───┘
//! ```
//!
//! [`Lab::new`] builds that default network with unique names; [`Lab::with`] takes a
//! [`LabSpec`] for other addresses, interface names, fixed names (the demo) or kernel
//! behaviour (duplicate address detection, link-local addresses). Lifecycle: everything the
//! lab starts is stopped (servers closed, processes killed by PID, threads joined) and every
//! namespace deleted when it is dropped or [`Lab::shutdown`] is called, also when a test
//! panics; its directory of configs and logs is kept after a panic (and with
//! `HAVIP_KEEP_LAB_LOGS` set) and removed otherwise.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::servers::{Reply, Server};
use crate::wait::wait_for_every;

static LAB_COUNTER: AtomicU32 = AtomicU32::new(0);

/// The client's IPv4 address in the default network.
pub const CLIENT_V4: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 100);
/// The client's IPv6 address in the default network.
pub const CLIENT_V6: Ipv6Addr = Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 0x100);

/// Node `i`'s IPv4 address in the default network (10.77.0.11, .12, ...).
pub fn node_v4(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 77, 0, 11 + i as u8)
}

/// Node `i`'s IPv6 address in the default network (fd77::11, ::12, ...).
pub fn node_v6(i: usize) -> Ipv6Addr {
    Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 0x11 + i as u16)
}

/// Why a lab could not be built.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// A command that builds the network failed.
    #[error("`{command}` failed: {output}")]
    Command {
        /// The command line.
        command: String,
        /// What it printed.
        output: String,
    },
    /// A file or directory of the lab could not be made.
    #[error("{path}: {source}")]
    Io {
        /// Which one.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// One host of a lab: a namespace with one interface on the bridge.
#[derive(Debug, Clone)]
pub struct HostSpec {
    /// The namespace is `<lab prefix>-<name>`.
    pub name: String,
    /// The host's side of its veth pair.
    pub interface: String,
    /// IPv4 addresses with their prefix lengths.
    pub v4: Vec<(Ipv4Addr, u8)>,
    /// IPv6 addresses with their prefix lengths, added without duplicate address detection
    /// (usable at once); link-local ones (fe80::/10) are fine here.
    pub v6: Vec<(Ipv6Addr, u8)>,
    /// Let the kernel make its own link-local address (false: `addrgenmode none`, so the
    /// addresses above are all there is and the source of IPv6 packets is known).
    pub kernel_link_local: bool,
    /// Keep the kernel's duplicate address detection on (false: `accept_dad=0`, so the
    /// kernel's own link-local address is usable at once as well).
    pub dad: bool,
}

impl HostSpec {
    /// A host with `eth0`, one IPv4 /24 and one IPv6 /64 address, the kernel's link-local
    /// address, no duplicate address detection.
    pub fn new(name: &str, v4: Ipv4Addr, v6: Ipv6Addr) -> HostSpec {
        HostSpec {
            name: name.to_string(),
            interface: "eth0".to_string(),
            v4: vec![(v4, 24)],
            v6: vec![(v6, 64)],
            kernel_link_local: true,
            dad: false,
        }
    }
}

/// What a lab is made of.
#[derive(Debug, Clone)]
pub struct LabSpec {
    /// The start of every namespace name: `<prefix>-sw`, `<prefix>-<host>`.
    pub prefix: String,
    /// The nodes, in order (`lab.nodes[i]`, bridge port `p<i>`).
    pub nodes: Vec<HostSpec>,
    /// The client (bridge port `pc`), if any.
    pub client: Option<HostSpec>,
    /// Where configs and logs go.
    pub dir: PathBuf,
    /// Delete namespaces of the same names first: a run that was killed left them (only for
    /// fixed prefixes; unique ones cannot collide).
    pub replace_stale: bool,
    /// Start processes in their own process group, so that Ctrl-C in a terminal reaches only
    /// the program that owns the lab, which then stops them itself.
    pub own_process_group: bool,
}

impl LabSpec {
    /// The default network: `nodes` nodes at 10.77.0.11.. / fd77::11.., a client at
    /// 10.77.0.100 / fd77::100; names unique to this process (`tag` goes into them: keep it
    /// short).
    pub fn new(tag: &str, nodes: usize) -> LabSpec {
        let n = LAB_COUNTER.fetch_add(1, Ordering::Relaxed);
        let prefix = format!("hv{}{}{tag}", std::process::id() % 100_000, n);
        LabSpec {
            dir: std::env::temp_dir().join(format!("havip-lab-{prefix}")),
            prefix,
            nodes: (0..nodes)
                .map(|i| HostSpec::new(&format!("n{i}"), node_v4(i), node_v6(i)))
                .collect(),
            client: Some(HostSpec::new("c", CLIENT_V4, CLIENT_V6)),
            replace_stale: false,
            own_process_group: false,
        }
    }
}

/// A child process of the lab.
struct Started {
    pid: u32,
    child: Child,
    /// Its log file, if it has one (not for processes that write to the terminal).
    log: Option<PathBuf>,
}

/// A running lab; see the module documentation.
pub struct Lab {
    /// The start of every namespace name.
    pub prefix: String,
    /// The switch namespace (the bridge `br0`).
    pub switch: String,
    /// The node namespaces, in order.
    pub nodes: Vec<String>,
    /// The client namespace; empty when the spec has no client.
    pub client: String,
    /// Configs and logs of this lab.
    pub dir: PathBuf,
    spec: LabSpec,
    children: Mutex<Vec<Started>>,
    servers: Mutex<Vec<Server>>,
    stop: Arc<AtomicBool>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    down: AtomicBool,
}

impl Lab {
    /// The default network with `nodes` nodes and a client; panics when it cannot be built.
    pub fn new(tag: &str, nodes: usize) -> Lab {
        Lab::with(LabSpec::new(tag, nodes)).unwrap_or_else(|e| panic!("lab: {e}"))
    }

    /// The network `spec` describes. Whatever was made before a failure is removed again.
    pub fn with(spec: LabSpec) -> Result<Lab, LabError> {
        let name = |host: &HostSpec| format!("{}-{}", spec.prefix, host.name);
        let lab = Lab {
            prefix: spec.prefix.clone(),
            switch: format!("{}-sw", spec.prefix),
            nodes: spec.nodes.iter().map(name).collect(),
            client: spec.client.as_ref().map(name).unwrap_or_default(),
            dir: spec.dir.clone(),
            spec,
            children: Mutex::new(Vec::new()),
            servers: Mutex::new(Vec::new()),
            stop: Arc::new(AtomicBool::new(false)),
            threads: Mutex::new(Vec::new()),
            down: AtomicBool::new(false),
        };
        if lab.spec.replace_stale {
            for ns in lab.namespaces() {
                let _ = run_ip(&["netns", "del", &ns]);
            }
        }
        let _ = std::fs::remove_dir_all(&lab.dir);
        std::fs::create_dir_all(&lab.dir).map_err(|source| LabError::Io {
            path: lab.dir.clone(),
            source,
        })?;
        // From here on, Drop removes whatever was created.
        lab.build()?;
        Ok(lab)
    }

    fn namespaces(&self) -> Vec<String> {
        let mut all = self.nodes.clone();
        if !self.client.is_empty() {
            all.push(self.client.clone());
        }
        all.push(self.switch.clone());
        all
    }

    fn build(&self) -> Result<(), LabError> {
        let sw = self.switch.as_str();
        run_ip(&["netns", "add", sw])?;
        // The switch itself says nothing on the wire (no IPv6 of its own: no router
        // solicitations, MLD reports or DAD probes among the hosts' packets).
        self.exec(sw, &["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"])?;
        self.exec(
            sw,
            &["sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"],
        )?;
        run_ip(&["-n", sw, "link", "add", "br0", "type", "bridge"])?;
        // VRRP's ff02::12 must reach every port even without MLD reports.
        run_ip(&[
            "-n",
            sw,
            "link",
            "set",
            "br0",
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        ])?;
        run_ip(&["-n", sw, "link", "set", "br0", "up"])?;
        let hosts = self
            .spec
            .nodes
            .iter()
            .enumerate()
            .map(|(i, h)| (self.nodes[i].clone(), format!("p{i}"), h.clone()));
        let client = self
            .spec
            .client
            .clone()
            .map(|h| (self.client.clone(), "pc".to_string(), h));
        for (ns, port, host) in hosts.chain(client) {
            self.build_host(&ns, &port, &host)?;
        }
        Ok(())
    }

    fn build_host(&self, ns: &str, port: &str, host: &HostSpec) -> Result<(), LabError> {
        let sw = self.switch.as_str();
        let iface = host.interface.as_str();
        run_ip(&["netns", "add", ns])?;
        if !host.dad {
            // Set before the interface exists, so that it starts with it.
            for key in ["all", "default"] {
                let setting = format!("net.ipv6.conf.{key}.accept_dad=0");
                self.exec(ns, &["sysctl", "-qw", &setting])?;
            }
        }
        run_ip(&["-n", ns, "link", "set", "lo", "up"])?;
        run_ip(&[
            "-n", sw, "link", "add", port, "type", "veth", "peer", "name", iface, "netns", ns,
        ])?;
        run_ip(&["-n", sw, "link", "set", port, "master", "br0", "up"])?;
        if !host.kernel_link_local {
            run_ip(&["-n", ns, "link", "set", iface, "addrgenmode", "none"])?;
        }
        for (address, len) in &host.v4 {
            let cidr = format!("{address}/{len}");
            run_ip(&["-n", ns, "addr", "add", &cidr, "dev", iface])?;
        }
        for (address, len) in &host.v6 {
            let cidr = format!("{address}/{len}");
            run_ip(&["-n", ns, "addr", "add", &cidr, "dev", iface, "nodad"])?;
        }
        run_ip(&["-n", ns, "link", "set", iface, "up"])?;
        Ok(())
    }

    fn exec(&self, ns: &str, argv: &[&str]) -> Result<String, LabError> {
        let mut args = vec!["netns", "exec", ns];
        args.extend_from_slice(argv);
        run_ip(&args)
    }

    /// How many nodes the lab has.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Node `i`'s first IPv4 address.
    pub fn node_addr(&self, i: usize) -> Ipv4Addr {
        self.spec.nodes[i].v4[0].0
    }

    /// Node `i`'s interface on the bridge.
    pub fn interface(&self, i: usize) -> &str {
        &self.spec.nodes[i].interface
    }

    /// The path that names namespace `ns` for `setns` (`/run/netns/<ns>`).
    pub fn netns_path(ns: &str) -> PathBuf {
        Path::new("/run/netns").join(ns)
    }

    /// Run a command inside namespace `ns`; panic with its output if it fails.
    pub fn ns(&self, ns: &str, argv: &[&str]) -> String {
        self.exec(ns, argv).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Run a command inside `ns` and return whether it succeeded, with its output.
    pub fn try_ns(&self, ns: &str, argv: &[&str]) -> (bool, String) {
        let out = Command::new("ip")
            .args(["netns", "exec", ns])
            .args(argv)
            .output()
            .expect("run ip");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    /// Start `program` inside `ns`, its output to `<dir>/<log>`. Returns its PID (`ip netns
    /// exec` execs the program, so the PID is the program's own).
    pub fn spawn(
        &self,
        ns: &str,
        program: &str,
        args: &[&str],
        log: &str,
        envs: &[(&str, &str)],
    ) -> u32 {
        let log_path = self.dir.join(log);
        let file = std::fs::File::create(&log_path).expect("log file");
        let mut command = self.command(ns, program, args);
        command
            .stdout(file.try_clone().expect("log"))
            .stderr(file)
            .envs(envs.iter().copied());
        self.start(command, Some(log_path))
    }

    /// Start `program` inside `ns` with its output on this process's terminal.
    pub fn spawn_to_terminal(&self, ns: &str, program: &str, args: &[&str]) -> u32 {
        let command = self.command(ns, program, args);
        self.start(command, None)
    }

    fn command(&self, ns: &str, program: &str, args: &[&str]) -> Command {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", ns, program])
            .args(args)
            .stdin(Stdio::null());
        if self.spec.own_process_group {
            command.process_group(0);
        }
        command
    }

    fn start(&self, mut command: Command, log: Option<PathBuf>) -> u32 {
        // A process started now would outlive the cleanup.
        assert!(!self.down.load(Ordering::SeqCst), "the lab is shut down");
        let child = command.spawn().expect("spawn in namespace");
        let pid = child.id();
        self.children
            .lock()
            .unwrap()
            .push(Started { pid, child, log });
        pid
    }

    /// Send `signal` (e.g. "KILL", "TERM") to a process this lab started.
    pub fn signal(&self, pid: u32, signal: &str) {
        let known = self.children.lock().unwrap().iter().any(|s| s.pid == pid);
        assert!(known, "only processes the lab started are signalled");
        let _ = Command::new("kill")
            .args([&format!("-{signal}"), &pid.to_string()])
            .status();
    }

    /// Wait for a process this lab started to exit: Some(its exit code, None when a signal
    /// ended it), or None when it still runs after `timeout`.
    pub fn wait(&self, pid: u32, timeout: Duration) -> Option<Option<i32>> {
        wait_for_every(Duration::from_millis(10), timeout, || {
            let mut children = self.children.lock().unwrap();
            let started = children.iter_mut().find(|s| s.pid == pid)?;
            match started.child.try_wait() {
                Ok(Some(status)) => Some(status.code()),
                _ => None,
            }
        })
    }

    /// The log of a process this lab started.
    pub fn log_of(&self, log: &str) -> String {
        std::fs::read_to_string(self.dir.join(log)).unwrap_or_default()
    }

    /// The last 40 lines of every log, for failure messages.
    pub fn all_logs(&self) -> String {
        let children = self.children.lock().unwrap();
        let mut out = String::new();
        for started in children.iter() {
            let Some(path) = &started.log else { continue };
            let text = std::fs::read_to_string(path).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            out.push_str(&format!(
                "==== {} (pid {}) ====\n",
                path.display(),
                started.pid
            ));
            for line in tail.iter().rev() {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }

    /// Take node `i`'s port off the bridge or put it back: a partition that the node cannot
    /// see on its link (a veth whose peer goes down loses carrier, which is a link-down, not
    /// a partition).
    pub fn set_partitioned(&self, i: usize, partitioned: bool) {
        let port = format!("p{i}");
        if partitioned {
            self.ns(&self.switch, &["ip", "link", "set", &port, "nomaster"]);
        } else {
            self.ns(&self.switch, &["ip", "link", "set", &port, "master", "br0"]);
        }
    }

    /// Bring node `i`'s own interface down or up (the node sees its link go).
    pub fn set_node_link(&self, i: usize, up: bool) {
        let state = if up { "up" } else { "down" };
        let iface = self.interface(i).to_string();
        self.ns(&self.nodes[i], &["ip", "link", "set", &iface, state]);
    }

    /// Whether node `i` has `address` on its interface.
    pub fn node_has_address(&self, i: usize, address: IpAddr) -> bool {
        let iface = self.interface(i).to_string();
        let out = self.ns(&self.nodes[i], &["ip", "-o", "addr", "show", "dev", &iface]);
        let wanted = address.to_string();
        out.split_whitespace()
            .any(|w| w.split('/').next() == Some(wanted.as_str()))
    }

    /// The nodes that hold `address` now.
    pub fn holders(&self, address: IpAddr) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|i| self.node_has_address(*i, address))
            .collect()
    }

    /// Wait up to `timeout` until `expected` is the only node, among those not in `dead`,
    /// that holds `address` (a node killed with -9 keeps the address on its downed
    /// interface, hence `dead`); panics with every log otherwise.
    pub fn wait_for_sole_holder(
        &self,
        address: IpAddr,
        expected: usize,
        dead: &[usize],
        timeout: Duration,
    ) {
        let live_holders = || {
            self.holders(address)
                .into_iter()
                .filter(|i| !dead.contains(i))
                .collect::<Vec<_>>()
        };
        let got = crate::wait_for(timeout, || (live_holders() == vec![expected]).then_some(()));
        assert!(
            got.is_some(),
            "node {expected} should hold {address} alone; live holders {:?}\n{}",
            live_holders(),
            self.all_logs()
        );
    }

    /// Run `f` on a thread inside namespace `ns` (sockets it opens belong there) and return
    /// its result; a panic in `f` is the caller's panic.
    pub fn in_ns<T: Send>(&self, ns: &str, f: impl FnOnce() -> T + Send) -> T {
        let path = Lab::netns_path(ns);
        std::thread::scope(|scope| {
            let handle = scope.spawn(move || {
                havip_sys::enter_netns(&path).expect("enter namespace");
                f()
            });
            match handle.join() {
                Ok(value) => value,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }

    /// Start a thread in `ns` that runs `f` until the lab is shut down (`f` gets the stop
    /// flag to look at).
    pub fn background(&self, ns: &str, f: impl FnOnce(Arc<AtomicBool>) + Send + 'static) {
        let path = Lab::netns_path(ns);
        let stop = self.stop.clone();
        let handle = std::thread::spawn(move || {
            havip_sys::enter_netns(&path).expect("enter namespace");
            f(stop)
        });
        self.threads.lock().unwrap().push(handle);
    }

    /// A server in node `i` on `bind`, kept until the lab is shut down.
    pub fn start_server(&self, i: usize, bind: SocketAddr, reply: Reply) -> SocketAddr {
        let server = Server::start_in(&Lab::netns_path(&self.nodes[i]), bind, reply);
        let addr = server.addr;
        self.servers.lock().unwrap().push(server);
        addr
    }

    /// A TCP server in node `i` on 127.0.0.1:`port` that answers every connection with
    /// `node<i>` and closes: the backend behind each node's balancer.
    pub fn start_name_server(&self, i: usize, port: u16) {
        self.start_name_server_on(i, SocketAddr::from(([127, 0, 0, 1], port)));
    }

    /// A name server in node `i` on `bind` (e.g. 0.0.0.0:9000, for a backend that other
    /// nodes reach over the bridge).
    pub fn start_name_server_on(&self, i: usize, bind: SocketAddr) {
        self.start_server(i, bind, Reply::Text(format!("node{i}\n")));
    }

    /// Write a file into the lab directory; returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, text).expect("write lab file");
        path
    }

    /// SIGTERM to every process of the lab that still runs, then wait up to `grace` for them
    /// all to exit (a graceful stop before [`Lab::shutdown`] kills what is left).
    pub fn terminate_all(&self, grace: Duration) {
        let running: Vec<u32> = {
            let mut children = self.children.lock().unwrap_or_else(|e| e.into_inner());
            children
                .iter_mut()
                .filter_map(|s| matches!(s.child.try_wait(), Ok(None)).then_some(s.pid))
                .collect()
        };
        for pid in &running {
            self.signal(*pid, "TERM");
        }
        let _ = wait_for_every(Duration::from_millis(50), grace, || {
            let mut children = self.children.lock().unwrap_or_else(|e| e.into_inner());
            children
                .iter_mut()
                .all(|s| !running.contains(&s.pid) || !matches!(s.child.try_wait(), Ok(None)))
                .then_some(())
        });
    }

    /// Stop everything the lab started and delete its namespaces (what dropping it does; for
    /// an owner that must clean up while others still hold the lab, e.g. on Ctrl-C).
    /// Idempotent.
    pub fn shutdown(&self) {
        if self.down.swap(true, Ordering::SeqCst) {
            return;
        }
        self.stop.store(true, Ordering::Relaxed);
        self.servers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        let mut children = self.children.lock().unwrap_or_else(|e| e.into_inner());
        for started in children.iter_mut() {
            if let Ok(None) = started.child.try_wait() {
                // Our own child, by its PID.
                let _ = started.child.kill();
            }
            let _ = started.child.wait();
        }
        drop(children);
        let threads: Vec<JoinHandle<()>> = self
            .threads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
            .collect();
        for handle in threads {
            let _ = handle.join();
        }
        for ns in self.namespaces() {
            let _ = run_ip(&["netns", "del", &ns]);
        }
        if std::thread::panicking() {
            eprintln!("lab logs kept in {}", self.dir.display());
        } else if std::env::var_os("HAVIP_KEEP_LAB_LOGS").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Run `ip args`; its output, or the failure with what it printed.
fn run_ip(args: &[&str]) -> Result<String, LabError> {
    let failed = |output: String| LabError::Command {
        command: format!("ip {}", args.join(" ")),
        output,
    };
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| failed(e.to_string()))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(failed(text))
    }
}

/// The index of interface `name` in the calling thread's namespace (/sys shows the
/// namespace it was mounted in, so ask netlink).
pub(crate) fn interface_index(name: &str) -> u32 {
    havip_sys::netlink::Netlink::open()
        .and_then(|n| n.link_by_name(name))
        .expect("netlink")
        .expect("interface exists")
        .index
}
