//! The BGP announce mode (issue #16) with real routing daemons: a router namespace running
//! FRR (bgpd + bfdd, ECMP up to 16 paths), three havip nodes each running FRR from
//! `examples/frr/node.frr.conf` peered with it (`examples/frr/router.frr.conf`), and a
//! client that reaches the VIP only through the router. Needs root, `ip netns`, nftables,
//! curl and FRR (the guard skips loudly outside CI and fails under CI=true).
//!
//! ```text
//!   client 10.66.0.100, .101 ──┐            (one bridge; the client's subnet is routed)
//!   router 10.77.0.1 + 10.66.0.1 ┼── n0 10.77.0.11 ─ havip + FRR, VIP 10.88.88.70 on lo
//!                              ├── n1 10.77.0.12
//!                              └── n2 10.77.0.13
//! ```
//!
//! Times are measured from the fault to the moment the router's kernel route to the VIP
//! lost the node's path (a netlink poller in the router namespace records every change).
//! The router forwards the client's first address by FRR's own ECMP route (hash-threshold,
//! as Linux installs it) and the second by a resilient next-hop group that follows FRR's
//! paths (what a router with resilient hashing does in hardware; FRR 8.4 cannot ask the
//! kernel for one): connections held from the second address must survive every change,
//! those from the first show what happens without it. Fresh connections (90 to see the
//! spread, and one every 5 ms throughout) leave from the second address.

#![allow(clippy::unwrap_used)] // test code: a panic is a failed test
#![allow(clippy::disallowed_types)] // the lab measures wall-clock time of real processes

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use havip_sys::netlink::Netlink;
use havip_test_support::lab::{node_v4, HostSpec, Lab, LabSpec};
use havip_test_support::nft::Direction;
use havip_test_support::node_config::{Health, NodeConfig, Service, Tracker};
use havip_test_support::prober::{Attempt, Prober};
use havip_test_support::servers::Reply;
use havip_test_support::{require, serial, wait_for, Need};

const HAVIP: &str = env!("CARGO_BIN_EXE_havip");
const VIP: Ipv4Addr = Ipv4Addr::new(10, 88, 88, 70);
const ROUTER: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
const CLIENT_GW: Ipv4Addr = Ipv4Addr::new(10, 66, 0, 1);
/// Forwarded by FRR's ECMP route.
const CLIENT_HASHED: Ipv4Addr = Ipv4Addr::new(10, 66, 0, 100);
/// Forwarded by the resilient group.
const CLIENT_RESILIENT: Ipv4Addr = Ipv4Addr::new(10, 66, 0, 101);
const NAME_PORT: u16 = 9000;
const ECHO_PORT: u16 = 9001;
const BFD_INTERVAL: Duration = Duration::from_millis(100);
const NODES: usize = 3;
const RESILIENT_TABLE: &str = "50";

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/frr")
}

/// The example file with the lab's names and logs to the daemon's stdout (the lab's log).
fn frr_config(file: &str, replace: &[(&str, String)]) -> String {
    let mut text = std::fs::read_to_string(examples().join(file)).unwrap();
    text = text.replace("log syslog informational", "log stdout informational");
    for (from, to) in replace {
        assert!(text.contains(from), "{file} has no {from:?}");
        text = text.replace(from, to);
    }
    text
}

/// One FRR instance (`-N NAME`) in a lab namespace: zebra, bfdd and bgpd, started in the
/// foreground by the lab (stopped by PID with it); its run directory removed on drop.
struct Frr {
    instance: String,
}

impl Frr {
    fn start(lab: &Lab, ns: &str, instance: &str, config: &str) -> Frr {
        let run = Path::new("/var/run/frr").join(instance);
        let _ = std::fs::remove_dir_all(&run);
        std::fs::create_dir_all(&run).unwrap();
        let chown = Command::new("chown")
            .args(["frr:frr"])
            .arg(&run)
            .status()
            .unwrap();
        assert!(chown.success(), "chown frr:frr {}", run.display());
        let conf = lab.write(&format!("{instance}.frr.conf"), config);
        let conf = conf.display().to_string();
        for daemon in ["zebra", "bfdd", "bgpd"] {
            let pid = run.join(format!("{daemon}.pid")).display().to_string();
            lab.spawn(
                ns,
                &format!("/usr/lib/frr/{daemon}"),
                &["-N", instance, "-f", &conf, "-i", &pid],
                &format!("{instance}-{daemon}.log"),
                &[],
            );
            if daemon == "zebra" {
                // bgpd and bfdd connect to zebra's socket at start.
                let socket = run.join("zserv.api");
                assert!(
                    wait_for(Duration::from_secs(10), || socket.exists().then_some(())).is_some(),
                    "zebra of {instance} did not start\n{}",
                    lab.all_logs()
                );
            }
        }
        Frr {
            instance: instance.to_string(),
        }
    }

    fn vtysh(&self, command: &str) -> String {
        let out = Command::new("vtysh")
            .args(["-N", &self.instance, "-c", command])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Frr {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(Path::new("/var/run/frr").join(&self.instance));
    }
}

/// The lab: three nodes, the router on the same bridge with the client's subnet too, the
/// client in its own subnet behind it.
fn build_lab(tag: &str) -> Lab {
    let mut spec = LabSpec::new(tag, NODES);
    let mut router = HostSpec::new("r", ROUTER, Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 1));
    router.v4.push((CLIENT_GW, 24));
    spec.nodes.push(router);
    let mut client = HostSpec::new(
        "c",
        CLIENT_HASHED,
        Ipv6Addr::new(0xfd66, 0, 0, 0, 0, 0, 0, 0x100),
    );
    client.v4.push((CLIENT_RESILIENT, 24));
    spec.client = Some(client);
    let lab = Lab::with(spec).unwrap();
    let router = lab.nodes[NODES].clone();
    for setting in [
        "net.ipv4.ip_forward=1",
        // Hash on ports too: one client's connections spread over the nodes.
        "net.ipv4.fib_multipath_hash_policy=1",
        // The client and the nodes share the bridge: no redirects around the router.
        "net.ipv4.conf.all.send_redirects=0",
        "net.ipv4.conf.eth0.send_redirects=0",
    ] {
        lab.ns(&router, &["sysctl", "-qw", setting]);
    }
    for i in 0..NODES {
        lab.ns(
            &lab.nodes[i],
            &["ip", "route", "add", "default", "via", &ROUTER.to_string()],
        );
    }
    lab.ns(
        &lab.client,
        &[
            "ip",
            "route",
            "add",
            "default",
            "via",
            &CLIENT_GW.to_string(),
        ],
    );
    // Fresh connections (the prober's, unbound) leave from the resilient address: through
    // a change, only those in flight to the node that leaves can be cut.
    let vip = format!("{VIP}/32");
    let (gw, src) = (CLIENT_GW.to_string(), CLIENT_RESILIENT.to_string());
    let route = ["ip", "route", "add", &vip, "via", &gw, "src", &src];
    lab.ns(&lab.client, &route);
    let pref = ["ip", "rule", "add", "from", "10.66.0.101", "lookup"];
    let mut rule = pref.to_vec();
    rule.extend([RESILIENT_TABLE, "pref", "100"]);
    lab.ns(&router, &rule);
    lab
}

/// havip on node `i`: the VIP's port 80 answers the node's name and closes, port 81 greets
/// with it and echoes; both behind health-checked backends; the announcement follows the
/// name service's backends.
fn start_havip(lab: &Lab, i: usize) -> u32 {
    let path = lab.write(&format!("node{i}.toml"), &havip_config(""));
    let path = path.display().to_string();
    lab.spawn(
        &lab.nodes[i].clone(),
        HAVIP,
        &["run", "--config", &path],
        &format!("node{i}.log"),
        &[],
    )
}

/// A node's havip config; `bgp_extra` goes into its `[[bgp]]` table.
fn havip_config(bgp_extra: &str) -> String {
    let config = NodeConfig::new()
        .grace("1s")
        .log_level("info")
        .log_connections(false)
        .admin("127.0.0.1:8404")
        .service(
            Service::new("names", SocketAddr::from((VIP, 80)))
                .health(Health::tcp().interval("100ms").rise(2).fall(2))
                .backend(format!("127.0.0.1:{NAME_PORT}")),
        )
        .service(
            Service::new("echo", SocketAddr::from((VIP, 81)))
                .health(Health::tcp().interval("100ms").rise(2).fall(2))
                .backend(format!("127.0.0.1:{ECHO_PORT}")),
        )
        .tracker(Tracker::service("backends", "names").min_healthy(1));
    config.to_toml()
        + &format!(
            "[[bgp]]\nname = \"vip\"\nvirtual_addresses = [\"{VIP}\"]\n\
             track = [\"backends\"]\nshutdown_delay = \"1s\"\n{bgp_extra}"
        )
}

/// `havip check` of node 0's config with `bgp_extra`: its warnings.
fn check_warnings(c: &Cluster, bgp_extra: &str) -> String {
    let name = format!("check-{}.toml", bgp_extra.len());
    let path = c.lab.write(&name, &havip_config(bgp_extra));
    let out = Command::new(HAVIP)
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(": OK ("),
        "{stdout}"
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Every change of the router's paths to the VIP (the nodes, by index), with its time; the
/// poller also keeps the resilient group in table 50 on the same nodes.
#[derive(Clone, Default)]
struct Paths(Arc<Mutex<PathLog>>);

type PathLog = Vec<(Instant, Vec<usize>)>;

impl Paths {
    fn start(lab: &Lab) -> Paths {
        let paths = Paths::default();
        let log = paths.clone();
        let router = lab.nodes[NODES].clone();
        lab.background(&router.clone(), move |stop| {
            let netlink = Netlink::open().unwrap();
            let mut last: Option<Vec<usize>> = None;
            // The group is made once every node is in: made earlier, it would keep all its
            // buckets on the first node (none is idle, none is forced to move).
            let mut mirrored = false;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let now = current_paths(&netlink);
                if last.as_ref() != Some(&now) {
                    if !mirrored && now.len() == NODES {
                        mirrored = true;
                        resilient_members(&router);
                    }
                    if mirrored {
                        mirror_resilient(&router, &now);
                    }
                    log.0.lock().unwrap().push((Instant::now(), now.clone()));
                    last = Some(now);
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        paths
    }

    fn now(&self) -> Vec<usize> {
        self.0
            .lock()
            .unwrap()
            .last()
            .map(|(_, p)| p.clone())
            .unwrap_or_default()
    }

    /// When the paths first were `wanted` after `from`, waiting up to `timeout`.
    fn wait(&self, wanted: &[usize], from: Instant, timeout: Duration) -> Option<Instant> {
        wait_for(timeout, || {
            self.0
                .lock()
                .unwrap()
                .iter()
                .find(|(at, p)| *at >= from && p == wanted)
                .map(|(at, _)| *at)
        })
        .or_else(|| (self.now() == wanted).then_some(from))
    }
}

/// The nodes the router's main-table route to the VIP goes to (by nexthop object, as
/// zebra installs it, or inline).
fn current_paths(netlink: &Netlink) -> Vec<usize> {
    let Ok(routes) = netlink.routes(254) else {
        return Vec::new();
    };
    let Some(route) = routes
        .into_iter()
        .find(|r| r.destination == IpAddr::V4(VIP) && r.prefix_len == 32)
    else {
        return Vec::new();
    };
    let mut gateways = Vec::new();
    if let Some(id) = route.nexthop_id {
        if let Ok(Some(nh)) = netlink.nexthop(id) {
            if nh.group.is_empty() {
                gateways.extend(nh.gateway);
            }
            for (member, _) in nh.group {
                if let Ok(Some(m)) = netlink.nexthop(member) {
                    gateways.extend(m.gateway);
                }
            }
        }
    }
    gateways.extend(route.gateway);
    gateways.extend(route.multipath.iter().filter_map(|h| h.gateway));
    let mut nodes: Vec<usize> = (0..NODES)
        .filter(|i| gateways.contains(&IpAddr::V4(node_v4(*i))))
        .collect();
    nodes.dedup();
    nodes
}

/// The members of the resilient group: nexthop 901 + i via node i. Made once (replacing a
/// member would move its buckets).
fn resilient_members(router: &str) {
    for i in 0..NODES {
        let id = (901 + i).to_string();
        let via = node_v4(i).to_string();
        let out = Command::new("ip")
            .args([
                "-n", router, "nexthop", "add", "id", &id, "via", &via, "dev", "eth0",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Keep the resilient group 900 (members 901.. = the nodes) on `nodes`: flows of the
/// members that stay keep their buckets (idle timer far beyond the test, no forced
/// rebalancing), as a router's resilient hashing does.
fn mirror_resilient(router: &str, nodes: &[usize]) {
    let ip = |args: &[&str]| {
        let _ = Command::new("ip").args(["-n", router]).args(args).output();
    };
    if nodes.is_empty() {
        ip(&[
            "route",
            "del",
            &format!("{VIP}/32"),
            "table",
            RESILIENT_TABLE,
        ]);
        return;
    }
    let group: Vec<String> = nodes.iter().map(|i| (901 + i).to_string()).collect();
    let group = group.join("/");
    ip(&[
        "nexthop",
        "replace",
        "id",
        "900",
        "group",
        &group,
        "type",
        "resilient",
        "buckets",
        "64",
        "idle_timer",
        "3600",
        "unbalanced_timer",
        "0",
    ]);
    ip(&[
        "route",
        "replace",
        &format!("{VIP}/32"),
        "nhid",
        "900",
        "table",
        RESILIENT_TABLE,
    ]);
}

/// A connection held open through the VIP from the client, on the node that greeted it.
struct Held {
    node: usize,
    source: Ipv4Addr,
    stream: TcpStream,
}

/// `count` connections to the echo port from `source`, each on a new source port.
fn hold(lab: &Lab, source: Ipv4Addr, count: usize) -> Vec<Held> {
    lab.in_ns(&lab.client, || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        (0..count)
            .filter_map(|_| {
                let socket = tokio::net::TcpSocket::new_v4().ok()?;
                socket.bind(SocketAddr::from((source, 0))).ok()?;
                let target = SocketAddr::from((VIP, 81));
                let stream = runtime
                    .block_on(async {
                        tokio::time::timeout(Duration::from_secs(2), socket.connect(target)).await
                    })
                    .ok()?
                    .ok()?
                    .into_std()
                    .ok()?;
                stream.set_nonblocking(false).ok()?;
                stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
                let mut greeting = [0u8; 6];
                (&stream).read_exact(&mut greeting).ok()?;
                let text = String::from_utf8_lossy(&greeting);
                let node = text.trim().strip_prefix("node")?.parse().ok()?;
                Some(Held {
                    node,
                    source,
                    stream,
                })
            })
            .collect()
    })
}

/// Whether a held connection still echoes.
fn echoes(held: &Held) -> bool {
    let mut stream = &held.stream;
    if stream.write_all(b"ping\n").is_err() {
        return false;
    }
    let mut back = [0u8; 5];
    stream.read_exact(&mut back).is_ok() && &back == b"ping\n"
}

/// Check every held connection on a node in `live`; drop the broken ones and those of
/// other nodes. Returns how many broke, by client source.
fn survivors(held: &mut Vec<Held>, live: &[usize]) -> BTreeMap<Ipv4Addr, usize> {
    let mut broken = BTreeMap::from([(CLIENT_HASHED, 0), (CLIENT_RESILIENT, 0)]);
    held.retain(|h| {
        if !live.contains(&h.node) {
            return false;
        }
        let ok = echoes(h);
        if !ok {
            *broken.entry(h.source).or_insert(0) += 1;
        }
        ok
    });
    broken
}

/// Which node answers `count` fresh connections to port 80 (each from a new source port).
fn spread(lab: &Lab, count: usize) -> BTreeMap<String, usize> {
    lab.in_ns(&lab.client, || {
        let mut seen = BTreeMap::new();
        for _ in 0..count {
            let answer = havip_test_support::prober::probe_once(
                SocketAddr::from((VIP, 80)),
                Duration::from_secs(1),
            )
            .unwrap_or_else(|| "failed".into());
            *seen.entry(answer).or_insert(0) += 1;
        }
        seen
    })
}

/// The node's `/api/status` BGP entry.
fn bgp_status(lab: &Lab, i: usize) -> serde_json::Value {
    let body = lab.ns(
        &lab.nodes[i],
        &["curl", "-sf", "http://127.0.0.1:8404/api/status"],
    );
    let status: serde_json::Value = serde_json::from_str(&body).unwrap();
    status["bgp"][0].clone()
}

/// The running lab: FRR on the router and the nodes, havip on the nodes, the path log, the
/// connections held from the client, and what each fault did.
struct Cluster {
    lab: Lab,
    router: Frr,
    _nodes: Vec<Frr>,
    paths: Paths,
    pids: Vec<u32>,
    held: Vec<Held>,
    /// Fresh connections every 5 ms from the client, from the first three paths on.
    prober: Option<Prober>,
    report: Vec<Change>,
}

/// What one change did.
struct Change {
    what: &'static str,
    /// From the fault to the router's paths changing.
    took: Duration,
    /// Fresh connects started from the fault to the check, and how many failed.
    connects: usize,
    failed: usize,
    /// From the fault to the start of the last failed connect: how long clients saw it.
    failing_for: Option<Duration>,
    /// Held connections on the other nodes that broke, by client address.
    broken: BTreeMap<Ipv4Addr, usize>,
}

impl Cluster {
    fn start(tag: &str) -> Cluster {
        let lab = build_lab(tag);
        let prefix = lab.prefix.clone();
        let router = Frr::start(
            &lab,
            &lab.nodes[NODES].clone(),
            &format!("{prefix}r"),
            &frr_config("router.frr.conf", &[]),
        );
        let paths = Paths::start(&lab);
        let mut pids = Vec::new();
        let mut nodes = Vec::new();
        for i in 0..NODES {
            lab.start_name_server(i, NAME_PORT);
            lab.start_server(
                i,
                SocketAddr::from(([127, 0, 0, 1], ECHO_PORT)),
                Reply::GreetThenEcho(format!("node{i}")),
            );
            let config = frr_config(
                "node.frr.conf",
                &[
                    ("hostname havip-1", format!("hostname n{i}")),
                    (
                        "bgp router-id 10.77.0.11",
                        format!("bgp router-id {}", node_v4(i)),
                    ),
                ],
            );
            let ns = lab.nodes[i].clone();
            nodes.push(Frr::start(&lab, &ns, &format!("{prefix}n{i}"), &config));
            pids.push(start_havip(&lab, i));
        }
        Cluster {
            lab,
            router,
            _nodes: nodes,
            paths,
            pids,
            held: Vec::new(),
            prober: None,
            report: Vec::new(),
        }
    }

    /// Hold 30 more connections from each client address; print where they are.
    fn hold_more(&mut self) {
        self.held.extend(hold(&self.lab, CLIENT_HASHED, 30));
        self.held.extend(hold(&self.lab, CLIENT_RESILIENT, 30));
        let mut count = [0usize; NODES];
        for h in &self.held {
            count[h.node] += 1;
        }
        eprintln!("held connections by node: {count:?}");
    }

    /// Record a change made at `fault` that took `took`: the fresh connects since, and the
    /// connections held on `live`, which must all survive where the router hashes
    /// resiliently.
    fn judge(
        &mut self,
        what: &'static str,
        fault: Instant,
        took: Duration,
        live: &[usize],
    ) -> usize {
        let attempts: Vec<Attempt> = self
            .prober
            .as_ref()
            .map(|p| p.settled())
            .unwrap_or_default()
            .into_iter()
            .filter(|a| a.started >= fault)
            .collect();
        let failures: Vec<&Attempt> = attempts
            .iter()
            .filter(|a| matches!(a.outcome, Some(Err(_))))
            .collect();
        let failing_for = failures.last().map(|a| a.started.duration_since(fault));
        let broken = survivors(&mut self.held, live);
        eprintln!(
            "{what}: {took:?}; {} of {} connects failed (last {failing_for:?} after); \
             held connections broken: {broken:?}",
            failures.len(),
            attempts.len()
        );
        assert_eq!(
            broken[&CLIENT_RESILIENT], 0,
            "{what}: flows on the other nodes broke under resilient hashing"
        );
        let failed = failures.len();
        self.report.push(Change {
            what,
            took,
            connects: attempts.len(),
            failed,
            failing_for,
            broken,
        });
        failed
    }

    /// Wait until the router's paths are `wanted`; how long after `from`.
    fn took(&self, wanted: &[usize], from: Instant, timeout: Duration) -> Duration {
        match self.paths.wait(wanted, from, timeout) {
            Some(at) => at.duration_since(from),
            None => panic!(
                "the router's paths are {:?}, not {wanted:?}, {timeout:?} after the change\n{}\n{}",
                self.paths.now(),
                self.router.vtysh("show bgp summary"),
                self.lab.all_logs()
            ),
        }
    }
}

#[test]
fn three_nodes_share_the_vip_by_ecmp_and_each_fault_withdraws_one_path() {
    require!(Need::Root, Need::Netns, Need::Nft, Need::Curl, Need::Frr);
    let _serial = serial();
    let mut c = Cluster::start("bg");
    announced_on_three_paths(&mut c);
    backends_fail_and_return(&mut c);
    a_node_dies(&mut c);
    sigterm_costs_no_connect(&mut c);
    // One line per change for bench/bgp.sh.
    for c in &c.report {
        eprintln!(
            "REPORT {}|{:.1}|{}|{}|{}|{}|{}",
            c.what,
            c.took.as_secs_f64() * 1000.0,
            c.failed,
            c.connects,
            c.failing_for
                .map_or("-".into(), |d| format!("{:.1}", d.as_secs_f64() * 1000.0)),
            c.broken[&CLIENT_HASHED],
            c.broken[&CLIENT_RESILIENT]
        );
    }
}

/// Three equal-cost paths; fresh connections spread over the three nodes.
fn announced_on_three_paths(c: &mut Cluster) {
    let took = c.took(&[0, 1, 2], Instant::now(), Duration::from_secs(60));
    let router = c.lab.nodes[NODES].clone();
    let mirrored = wait_for(Duration::from_secs(5), || {
        let table = c
            .lab
            .ns(&router, &["ip", "route", "show", "table", RESILIENT_TABLE]);
        table.contains(&VIP.to_string()).then_some(())
    });
    assert!(
        mirrored.is_some(),
        "the resilient group follows FRR's paths"
    );
    eprintln!(
        "three paths {took:?} after start:\n{}",
        c.router.vtysh(&format!("show ip route {VIP}/32"))
    );
    let seen = spread(&c.lab, 90);
    eprintln!("90 connections from one client: {seen:?}");
    for i in 0..NODES {
        let n = seen.get(&format!("node{i}")).copied().unwrap_or(0);
        assert!(n >= 10, "node{i} served {n} of 90: {seen:?}");
    }
    let status = bgp_status(&c.lab, 0);
    assert_eq!(status["state"], "announced", "{status}");
    check_sees_the_daemon(c);
    c.hold_more();
    c.prober = Some(c.lab.start_prober(
        SocketAddr::from((VIP, 80)),
        Duration::from_millis(5),
        Duration::from_secs(120),
    ));
    std::thread::sleep(Duration::from_millis(300));
}

/// `havip check` on a node finds its FRR running and importing table 100, and says so
/// when the table is one FRR does not import, or the instance one that does not run.
fn check_sees_the_daemon(c: &Cluster) {
    let instance = format!("frr_instance = \"{}n0\"\n", c.lab.prefix);
    let fine = check_warnings(c, &format!("table = 100\n{instance}"));
    assert!(!fine.contains("[[bgp]]"), "{fine}");
    let other = check_warnings(c, &format!("table = 101\n{instance}"));
    assert!(other.contains("FRR does not import table 101"), "{other}");
    assert!(other.contains("does not announce table 101"), "{other}");
    let stopped = check_warnings(c, "frr_instance = \"nosuchfrr\"\n");
    assert!(stopped.contains("are not running here"), "{stopped}");
}

/// Node 0's backends fail: its path is withdrawn (and why shows in its status); they
/// come back: it is announced again.
fn backends_fail_and_return(c: &mut Cluster) {
    let fault = Instant::now();
    c.lab.block_tcp_port(0, Direction::Incoming, NAME_PORT);
    let took = c.took(&[1, 2], fault, Duration::from_secs(10));
    // Health checks every 100 ms, fall 2; the tracker's own look every 100 ms.
    assert!(took < Duration::from_secs(3), "withdrawn after {took:?}");
    let status = bgp_status(&c.lab, 0);
    assert_eq!(status["state"], "withdrawn", "{status}");
    assert_eq!(status["reason_kind"], "tracker", "{status}");
    assert_eq!(status["reason"], "tracker failing: backends", "{status}");
    c.judge("backends failed -> withdrawn", fault, took, &[1, 2]);
    let back = Instant::now();
    c.lab.unblock_tcp_port(0, Direction::Incoming, NAME_PORT);
    let took = c.took(&[0, 1, 2], back, Duration::from_secs(10));
    assert_eq!(bgp_status(&c.lab, 0)["state"], "announced");
    let failed = c.judge("backends back -> announced", back, took, &[1, 2]);
    let errors = c
        .prober
        .as_ref()
        .unwrap()
        .errors_between(back, Instant::now());
    assert_eq!(failed, 0, "a node coming back costs no connect: {errors:?}");
    c.hold_more();
}

/// Node 1 dies: link down and kill -9. Its FRR cannot say goodbye: BFD must see it, in
/// about 3 x the interval, far below the hold time (9 s).
fn a_node_dies(c: &mut Cluster) {
    let fault = Instant::now();
    c.lab.set_node_link(1, false);
    c.lab.signal(c.pids[1], "KILL");
    let took = c.took(&[0, 2], fault, Duration::from_secs(15));
    let bound = BFD_INTERVAL * 3;
    // The allowance covers a loaded machine; the hold time would be 9 s.
    assert!(
        took < bound + Duration::from_millis(700),
        "withdrawn after {took:?} (BFD: {bound:?})\n{}",
        c.router.vtysh("show bfd peers brief")
    );
    c.judge(
        "kill -9 + link down -> withdrawn (BFD)",
        fault,
        took,
        &[0, 2],
    );
    c.hold_more();
}

/// SIGTERM on node 2: withdrawn first, accepting meanwhile: no client connect fails but
/// one caught in its handshake at the router's switch, and havip exits 0 after its drain.
fn sigterm_costs_no_connect(c: &mut Cluster) {
    let before = Instant::now();
    c.lab.signal(c.pids[2], "TERM");
    let took = c.took(&[0], before, Duration::from_secs(10));
    assert!(took < Duration::from_secs(2), "withdrawn after {took:?}");
    let exit = c.lab.wait(c.pids[2], Duration::from_secs(10));
    assert_eq!(exit, Some(Some(0)), "node2 exits 0\n{}", c.lab.all_logs());
    std::thread::sleep(Duration::from_millis(300));
    let failed = c.judge("SIGTERM -> withdrawn", before, took, &[0]);
    let connects = c.report.last().map_or(0, |r| r.connects);
    assert!(connects > 100, "the client kept connecting: {connects}");
    // The route goes before the listener: no connect meets a closed port. Only one whose
    // handshake is in flight to node 2 at the instant the router switches can be cut (its
    // ACK reaches node 0, which never saw the SYN): one every 5 ms here, taking well under a
    // millisecond, so at most one, started just before the switch.
    let switched = before + took;
    let attempts = c.prober.as_ref().unwrap().settled();
    let cut: Vec<&Attempt> = attempts
        .iter()
        .filter(|a| a.started >= before && matches!(a.outcome, Some(Err(_))))
        .collect();
    let near =
        |a: &&Attempt| a.started + Duration::from_millis(50) >= switched && a.started <= switched;
    assert!(
        failed <= 1 && cut.iter().all(near),
        "{failed} connects failed after SIGTERM: {cut:?}\n{}",
        c.lab.all_logs()
    );
    assert!(
        c.held.iter().any(|h| h.source == CLIENT_RESILIENT),
        "resilient flows were left to judge"
    );
}

/// A VIP held by VRRP on a segment and announced by BGP as well (no FRR needed: the table is
/// read back): both nodes accept for it and keep its route in table 100, but only the VRRP
/// master answers ARP for it on the segment, and an announcement with no tracker stays made.
#[test]
fn a_vip_on_a_segment_is_announced_beside_vrrp_and_only_the_master_answers_arp() {
    require!(Need::Root, Need::Netns);
    let _serial = serial();
    let lab = Lab::new("bv", 2);
    let vip = Ipv4Addr::new(10, 77, 0, 200);
    let mut pids = Vec::new();
    for (i, priority) in [100u8, 90].iter().enumerate() {
        lab.start_name_server(i, NAME_PORT);
        let config = NodeConfig::new()
            .grace("1s")
            .log_level("info")
            .log_connections(false)
            .service(
                // The name server speaks no TLS: the default HTTPS check would mark it
                // down after its first run, and the probes below would then race it.
                Service::new("names", SocketAddr::from((vip, 80)))
                    .health(Health::tcp())
                    .backend(format!("127.0.0.1:{NAME_PORT}")),
            )
            .vrrp(
                havip_test_support::node_config::Vrrp::new("VI_1", 42)
                    .priority(*priority)
                    .advert_interval("100ms")
                    .vip(format!("{vip}/24")),
            );
        let text = config.to_toml()
            + &format!("[[bgp]]\nname = \"vip\"\nvirtual_addresses = [\"{vip}\"]\n");
        let path = lab.write(&format!("node{i}.toml"), &text);
        let path = path.display().to_string();
        let ns = lab.nodes[i].clone();
        pids.push(lab.spawn(
            &ns,
            HAVIP,
            &["run", "--config", &path],
            &format!("node{i}.log"),
            &[],
        ));
    }
    lab.wait_for_sole_holder(IpAddr::V4(vip), 0, &[], Duration::from_secs(5));
    for i in 0..2 {
        let ns = lab.nodes[i].clone();
        let routed = wait_for(Duration::from_secs(5), || {
            let table = lab.ns(
                &ns,
                &["ip", "route", "show", "table", "100", "proto", "200"],
            );
            table.contains(&vip.to_string()).then_some(())
        });
        assert!(routed.is_some(), "node{i} announces\n{}", lab.all_logs());
        let local = lab.ns(
            &ns,
            &["ip", "route", "show", "table", "local", "proto", "200"],
        );
        assert!(
            local.contains(&format!("local {vip} dev lo")),
            "node{i}: {local}"
        );
        for (key, wanted) in [("arp_ignore", "1"), ("arp_announce", "2")] {
            let value = lab.ns(&ns, &["sysctl", "-n", &format!("net.ipv4.conf.eth0.{key}")]);
            assert_eq!(value.trim(), wanted, "node{i} {key}");
        }
    }
    // The client resolves the VIP to the master alone, however often it asks.
    let master_mac = lab.ns(&lab.nodes[0], &["cat", "/sys/class/net/eth0/address"]);
    for _ in 0..5 {
        lab.ns(&lab.client, &["ip", "neigh", "flush", "dev", "eth0"]);
        let answer = lab.in_ns(&lab.client, || {
            havip_test_support::prober::probe_once(
                SocketAddr::from((vip, 80)),
                Duration::from_secs(1),
            )
        });
        assert_eq!(answer.as_deref(), Some("node0"));
        let neigh = lab.ns(&lab.client, &["ip", "neigh", "show", &vip.to_string()]);
        assert!(
            neigh.contains(master_mac.trim()),
            "{neigh} is not the master's {master_mac}"
        );
    }
    // VRRP on node 0 stops: node 1 takes the VIP over; node 0's route goes with havip.
    lab.signal(pids[0], "TERM");
    assert_eq!(lab.wait(pids[0], Duration::from_secs(10)), Some(Some(0)));
    lab.wait_for_sole_holder(IpAddr::V4(vip), 1, &[], Duration::from_secs(5));
    let table = lab.ns(&lab.nodes[0], &["ip", "route", "show", "table", "100"]);
    assert!(!table.contains(&vip.to_string()), "node0 withdrew: {table}");
    let local = lab.ns(
        &lab.nodes[0],
        &["ip", "route", "show", "table", "local", "proto", "200"],
    );
    assert!(local.is_empty(), "node0 removed its local route: {local}");
}
