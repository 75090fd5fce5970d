//! A small network built from network namespaces, for tests and benchmarks that need real
//! VRRP peers: a switch namespace with a bridge, N node namespaces each with an `eth0` veth
//! port on the bridge, and a client namespace. Addresses exist only inside these namespaces.
//! Everything the lab starts (processes, namespaces) is removed when it is dropped, also when
//! a test panics.
//!
//! ```text
//!   client (10.77.0.100, fd77::100) ─┐
//!   node 0 (10.77.0.11, fd77::11) ───┼── br0 in the switch namespace (ports p0, p1, ..., pc)
//!   node 1 (10.77.0.12, fd77::12) ───┘
//! ```
#![allow(dead_code)] // each test binary uses a different part of the harness
#![allow(clippy::disallowed_types)] // the lab measures wall-clock time of real processes

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

static LAB_COUNTER: AtomicU32 = AtomicU32::new(0);

/// Why a lab cannot run here (not root, no `ip netns`): tests print it and pass vacuously
/// only outside CI; under CI=true they fail, so a CI machine that cannot run them is noticed.
pub fn unavailable() -> Option<String> {
    // SAFETY-free check: root is uid 0 in /proc/self/status.
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let root = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .is_some_and(|l| l.split_whitespace().nth(1) == Some("0"));
    if !root {
        return Some("network-namespace tests need root".into());
    }
    if Command::new("ip").arg("-V").output().is_err() {
        return Some("`ip` (iproute2) is not installed".into());
    }
    None
}

/// Skip (outside CI) or fail (in CI) when the lab cannot run.
#[macro_export]
macro_rules! require_lab {
    () => {
        if let Some(why) = $crate::lab::unavailable() {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("CI must run the netns tests: {why}");
            }
            eprintln!("skipped: {why}");
            return;
        }
    };
}

pub struct Lab {
    pub prefix: String,
    pub switch: String,
    pub nodes: Vec<String>,
    pub client: String,
    pub dir: PathBuf,
    children: Mutex<Vec<(u32, Child, String)>>,
    stop: Arc<AtomicBool>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

pub const CLIENT_V4: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 100);
pub const CLIENT_V6: Ipv6Addr = Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 0x100);

impl Lab {
    /// A lab with `nodes` node namespaces. `tag` goes into the names (keep it short).
    pub fn new(tag: &str, nodes: usize) -> Lab {
        let n = LAB_COUNTER.fetch_add(1, Ordering::Relaxed);
        let prefix = format!("hv{}{}{tag}", std::process::id() % 100_000, n);
        let dir = std::env::temp_dir().join(format!("havip-lab-{prefix}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("lab dir");
        let lab = Lab {
            switch: format!("{prefix}-sw"),
            nodes: (0..nodes).map(|i| format!("{prefix}-n{i}")).collect(),
            client: format!("{prefix}-c"),
            prefix,
            dir,
            children: Mutex::new(Vec::new()),
            stop: Arc::new(AtomicBool::new(false)),
            threads: Mutex::new(Vec::new()),
        };
        // From here on, Drop cleans up whatever was created.
        lab.build();
        lab
    }

    fn build(&self) {
        ip(&["netns", "add", &self.switch]);
        self.ns(
            &self.switch,
            &["ip", "link", "add", "br0", "type", "bridge"],
        );
        // VRRP's ff02::12 must reach every port even without MLD reports.
        self.ns(
            &self.switch,
            &[
                "ip",
                "link",
                "set",
                "br0",
                "type",
                "bridge",
                "mcast_snooping",
                "0",
            ],
        );
        self.ns(&self.switch, &["ip", "link", "set", "br0", "up"]);
        let hosts: Vec<(String, String, Ipv4Addr, Ipv6Addr)> = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, ns)| (ns.clone(), format!("p{i}"), node_v4(i), node_v6(i)))
            .chain(std::iter::once((
                self.client.clone(),
                "pc".to_string(),
                CLIENT_V4,
                CLIENT_V6,
            )))
            .collect();
        for (ns, port, v4, v6) in hosts {
            ip(&["netns", "add", &ns]);
            // No duplicate address detection: link-local and static IPv6 addresses are usable
            // at once (DAD would hold them tentative for a second).
            for key in ["all", "default"] {
                self.ns(
                    &ns,
                    &[
                        "sysctl",
                        "-qw",
                        &format!("net.ipv6.conf.{key}.accept_dad=0"),
                    ],
                );
            }
            self.ns(&ns, &["ip", "link", "set", "lo", "up"]);
            ip(&[
                "-n",
                &self.switch,
                "link",
                "add",
                &port,
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                &ns,
            ]);
            self.ns(
                &self.switch,
                &["ip", "link", "set", &port, "master", "br0", "up"],
            );
            self.ns(
                &ns,
                &["ip", "addr", "add", &format!("{v4}/24"), "dev", "eth0"],
            );
            self.ns(
                &ns,
                &[
                    "ip",
                    "addr",
                    "add",
                    &format!("{v6}/64"),
                    "dev",
                    "eth0",
                    "nodad",
                ],
            );
            self.ns(&ns, &["ip", "link", "set", "eth0", "up"]);
        }
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Run a command inside namespace `ns`; panic with its output if it fails.
    pub fn ns(&self, ns: &str, argv: &[&str]) -> String {
        let mut args = vec!["netns", "exec", ns];
        args.extend_from_slice(argv);
        ip(&args)
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

    /// Start `program` inside `ns`, output to `<dir>/<log>`. Returns its PID (`ip netns exec`
    /// execs the program, so the PID is the program's own).
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
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", ns, program])
            .args(args)
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log"))
            .stderr(file);
        for (k, v) in envs {
            command.env(k, v);
        }
        let child = command.spawn().expect("spawn in namespace");
        let pid = child.id();
        self.children
            .lock()
            .unwrap()
            .push((pid, child, log_path.display().to_string()));
        pid
    }

    /// Send `signal` (e.g. "KILL", "TERM") to a process this lab started.
    pub fn signal(&self, pid: u32, signal: &str) {
        let known = self
            .children
            .lock()
            .unwrap()
            .iter()
            .any(|(p, _, _)| *p == pid);
        assert!(known, "only processes the lab started are signalled");
        let _ = Command::new("kill")
            .args([&format!("-{signal}"), &pid.to_string()])
            .status();
    }

    /// Wait for a process this lab started to exit; its exit code (None: killed by a signal).
    pub fn wait(&self, pid: u32, timeout: Duration) -> Option<Option<i32>> {
        let deadline = Instant::now() + timeout;
        loop {
            {
                let mut children = self.children.lock().unwrap();
                if let Some((_, child, _)) = children.iter_mut().find(|(p, _, _)| *p == pid) {
                    if let Ok(Some(status)) = child.try_wait() {
                        return Some(status.code());
                    }
                }
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The log of a process this lab started.
    pub fn log_of(&self, log: &str) -> String {
        std::fs::read_to_string(self.dir.join(log)).unwrap_or_default()
    }

    /// Every log, for failure messages.
    pub fn all_logs(&self) -> String {
        let children = self.children.lock().unwrap();
        let mut out = String::new();
        for (pid, _, path) in children.iter() {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            out.push_str(&format!("==== {path} (pid {pid}) ====\n"));
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

    /// Bring node `i`'s own eth0 down or up (the node sees its link go).
    pub fn set_node_link(&self, i: usize, up: bool) {
        self.ns(
            &self.nodes[i],
            &["ip", "link", "set", "eth0", if up { "up" } else { "down" }],
        );
    }

    /// Whether node `i` has `address` on eth0.
    pub fn node_has_address(&self, i: usize, address: IpAddr) -> bool {
        let out = self.ns(&self.nodes[i], &["ip", "-o", "addr", "show", "dev", "eth0"]);
        out.split_whitespace()
            .any(|w| w.split('/').next() == Some(address.to_string().as_str()))
    }

    /// The nodes that hold `address` now.
    pub fn holders(&self, address: IpAddr) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|i| self.node_has_address(*i, address))
            .collect()
    }

    /// Run `f` on a thread inside namespace `ns` (sockets it opens belong there).
    pub fn in_ns<T: Send + 'static>(&self, ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = netns_path(ns);
        std::thread::spawn(move || {
            havip_sys::enter_netns(&path).expect("enter namespace");
            f()
        })
        .join()
        .expect("namespace thread")
    }

    /// Start a thread in `ns` that runs `f` until the lab is dropped (`f` gets the stop flag).
    pub fn background(&self, ns: &str, f: impl FnOnce(Arc<AtomicBool>) + Send + 'static) {
        let path = netns_path(ns);
        let stop = self.stop.clone();
        let handle = std::thread::spawn(move || {
            havip_sys::enter_netns(&path).expect("enter namespace");
            f(stop)
        });
        self.threads.lock().unwrap().push(handle);
    }

    /// A TCP server in node `i` on 127.0.0.1:`port` that answers every connection with the
    /// node's name and closes: the backend behind each node's balancer.
    pub fn start_name_server(&self, i: usize, port: u16) {
        self.start_name_server_on(i, SocketAddr::from(([127, 0, 0, 1], port)));
    }

    /// A name server in node `i` on `bind` (e.g. 0.0.0.0:9000, for a backend that other
    /// nodes reach over the bridge).
    pub fn start_name_server_on(&self, i: usize, bind: SocketAddr) {
        let name = format!("node{i}\n");
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        self.background(&self.nodes[i].clone(), move |stop| {
            let listener = TcpListener::bind(bind).expect("bind name server");
            listener.set_nonblocking(true).expect("nonblocking");
            let _ = ready_tx.send(());
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut stream, _)) => {
                        let _ = stream.set_nonblocking(false);
                        let _ = stream.write_all(name.as_bytes());
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        ready_rx
            .recv_timeout(Duration::from_secs(5))
            .expect("name server started");
    }

    /// Start client-side connect loops to `target`: together one attempt every `every`,
    /// for at most `duration`. Four staggered threads share the work, so an attempt that
    /// hangs (a connection caught mid-exchange by a failover) does not delay the others.
    /// Each attempt is recorded with its start time and the node name that answered.
    pub fn start_prober(&self, target: SocketAddr, every: Duration, duration: Duration) -> Prober {
        const WORKERS: u32 = 4;
        let results = Arc::new(Mutex::new(Vec::new()));
        let running = Arc::new(AtomicU32::new(WORKERS));
        let period = every * WORKERS;
        for worker in 0..WORKERS {
            let out = results.clone();
            let running = running.clone();
            self.background(&self.client.clone(), move |stop| {
                std::thread::sleep(every * worker);
                let started = Instant::now();
                while !stop.load(Ordering::Relaxed) && started.elapsed() < duration {
                    let at = Instant::now();
                    let answer = probe_once(target, Duration::from_millis(5));
                    out.lock().unwrap().push((at, answer));
                    let spent = at.elapsed();
                    if spent < period {
                        std::thread::sleep(period - spent);
                    }
                }
                running.fetch_sub(1, Ordering::Relaxed);
            });
        }
        Prober { results, running }
    }

    /// Like [`Lab::start_prober`] with the attempt supplied: `attempt(target)` returns the
    /// answer (what identifies who served it) or None, e.g. a TLS request. `workers`
    /// staggered threads share the work, together one attempt every `every`; more workers
    /// keep the resolution when attempts can hang for a timeout.
    pub fn start_prober_with(
        &self,
        target: SocketAddr,
        every: Duration,
        duration: Duration,
        workers: u32,
        attempt: impl Fn(SocketAddr) -> Option<String> + Send + Sync + 'static,
    ) -> Prober {
        let results = Arc::new(Mutex::new(Vec::new()));
        let running = Arc::new(AtomicU32::new(workers));
        let period = every * workers;
        let attempt = Arc::new(attempt);
        for worker in 0..workers {
            let out = results.clone();
            let running = running.clone();
            let attempt = attempt.clone();
            self.background(&self.client.clone(), move |stop| {
                std::thread::sleep(every * worker);
                let started = Instant::now();
                while !stop.load(Ordering::Relaxed) && started.elapsed() < duration {
                    let at = Instant::now();
                    let answer = attempt(target);
                    out.lock().unwrap().push((at, answer));
                    let spent = at.elapsed();
                    if spent < period {
                        std::thread::sleep(period - spent);
                    }
                }
                running.fetch_sub(1, Ordering::Relaxed);
            });
        }
        Prober { results, running }
    }

    /// Record every VRRP advert of `vrid` the client sees (multicast), with its arrival
    /// time, source and priority.
    pub fn start_advert_watch(&self, vrid: u8, ipv6: bool) -> AdvertWatch {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let out = seen.clone();
        let client = self.client.clone();
        let ifindex = self.in_ns(&client, || interface_index("eth0"));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        self.background(&client, move |stop| {
            use havip_sys::vrrp_socket::{Family, VrrpReceiver};
            let family = if ipv6 { Family::V6 } else { Family::V4 };
            let receiver =
                VrrpReceiver::open(ifindex, "eth0", family, true).expect("advert watch socket");
            let _ = ready_tx.send(());
            let mut buf = vec![0u8; 2048];
            while !stop.load(Ordering::Relaxed) {
                match receiver.recv(&mut buf) {
                    Ok(d) => {
                        let payload = &buf[d.payload.clone()];
                        if payload.len() >= 3 && payload[1] == vrid {
                            out.lock().unwrap().push(Advert {
                                at: Instant::now(),
                                source: d.source,
                                priority: payload[2],
                            });
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_micros(500))
                    }
                    Err(e) => {
                        eprintln!("advert watch: {e}");
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
            }
        });
        ready_rx
            .recv_timeout(Duration::from_secs(5))
            .expect("advert watch started");
        AdvertWatch { seen }
    }

    /// Write a file into the lab directory; returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, text).expect("write lab file");
        path
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let mut children = self.children.lock().unwrap_or_else(|e| e.into_inner());
        for (pid, child, _) in children.iter_mut() {
            if let Ok(None) = child.try_wait() {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
            let _ = child.wait();
        }
        drop(children);
        for handle in self
            .threads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            let _ = handle.join();
        }
        for ns in self.nodes.iter().chain([&self.client, &self.switch]) {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
        if std::env::var("HAVIP_KEEP_LAB_LOGS").is_err() && !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

pub fn node_v4(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 77, 0, 11 + i as u8)
}

pub fn node_v6(i: usize) -> Ipv6Addr {
    Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 0x11 + i as u16)
}

fn netns_path(ns: &str) -> PathBuf {
    Path::new("/run/netns").join(ns)
}

fn ip(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().expect("run ip");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "ip {}: {text}", args.join(" "));
    text
}

/// The index of interface `name` in the calling thread's namespace (/sys shows the
/// namespace it was mounted in, so ask netlink).
fn interface_index(name: &str) -> u32 {
    havip_sys::netlink::Netlink::open()
        .and_then(|n| n.link_by_name(name))
        .expect("netlink")
        .expect("interface exists")
        .index
}

/// One connect attempt: Some(node name) when a backend answered.
pub fn probe_once(target: SocketAddr, timeout: Duration) -> Option<String> {
    let mut stream = TcpStream::connect_timeout(&target, timeout).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let text = text.trim().to_string();
    (!text.is_empty()).then_some(text)
}

/// Results of a connect loop.
/// Probe attempts: when each started, and the node that answered (None: no answer).
type ProbeLog = Arc<Mutex<Vec<(Instant, Option<String>)>>>;

pub struct Prober {
    results: ProbeLog,
    running: Arc<AtomicU32>,
}

impl Prober {
    /// Every attempt so far, in order of start time.
    pub fn results(&self) -> Vec<(Instant, Option<String>)> {
        let mut results = self.results.lock().unwrap().clone();
        results.sort_by_key(|(at, _)| *at);
        results
    }

    pub fn finished(&self) -> bool {
        self.running.load(Ordering::Relaxed) == 0
    }

    /// The longest run of failed probes after `from` (the client-visible gap), measured
    /// from the last success before it to the first success after it.
    pub fn longest_gap_after(&self, from: Instant) -> Duration {
        let results = self.results();
        let mut last_ok: Option<Instant> = None;
        let mut longest = Duration::ZERO;
        let mut failing = false;
        for (at, answer) in results.iter().filter(|(at, _)| *at >= from) {
            match answer {
                Some(_) => {
                    if failing {
                        if let Some(ok) = last_ok {
                            longest = longest.max(at.duration_since(ok));
                        }
                    }
                    failing = false;
                    last_ok = Some(*at);
                }
                None => failing = true,
            }
        }
        longest
    }

    /// The first probe at or after `from` answered by `node`.
    pub fn first_answer_from(&self, node: &str, from: Instant) -> Option<Instant> {
        self.results()
            .into_iter()
            .find(|(at, answer)| *at >= from && answer.as_deref() == Some(node))
            .map(|(at, _)| at)
    }

    /// Failed probes after `from`.
    pub fn failures_after(&self, from: Instant) -> usize {
        self.results()
            .iter()
            .filter(|(at, a)| *at >= from && a.is_none())
            .count()
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Advert {
    pub at: Instant,
    pub source: IpAddr,
    pub priority: u8,
}

pub struct AdvertWatch {
    seen: Arc<Mutex<Vec<Advert>>>,
}

impl AdvertWatch {
    pub fn adverts(&self) -> Vec<Advert> {
        self.seen.lock().unwrap().clone()
    }

    /// The last advert from `source` (at or before `until`, if given).
    pub fn last_from(&self, source: IpAddr) -> Option<Advert> {
        self.adverts()
            .into_iter()
            .rev()
            .find(|a| a.source == source)
    }

    pub fn first_from_after(&self, source: IpAddr, after: Instant) -> Option<Advert> {
        self.adverts()
            .into_iter()
            .find(|a| a.source == source && a.at > after)
    }
}

/// Poll `f` every 20 ms until it returns Some or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
