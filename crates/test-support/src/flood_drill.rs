//! The hostile-VRRP drill shared by the flood test and `bench/flood.sh` (issue 15 item 2):
//! two havip nodes with two VRRP instances each, flooded from a third namespace on the same
//! segment with every [`Defect`], first while nothing else happens (no state may change),
//! then while the master is killed (the backup must still take over on time).
//!
//! ```text
//!   node 0 (10.77.0.11) havip, priority 100 ─┐
//!   node 1 (10.77.0.12) havip, priority 90  ─┼── bridge
//!   node 2 (10.77.0.13) the flood            ─┘
//!   VI_V2: VRID 51, VRRPv2, multicast, auth_pass, 1 s adverts, VIP 10.77.0.200
//!   VI_V3: VRID 52, VRRPv3, unicast between the nodes, 100 ms adverts, VIP 10.77.0.201
//! ```
//!
//! Measured: packets sent per defect and the rate reached; on node 1 (the survivor) the drops
//! by reason as its `/metrics` counts them, against what each defect must be dropped for;
//! the kernel's drops on its receive socket (`/proc/net/raw`); state transitions on both
//! nodes during the calm phase; the takeover time of each VIP after the kill; and the CPU
//! both havip processes used (`/proc/PID/stat`). [`run_keepalived`] floods keepalived 2.2 in
//! the same topology, for the benchmark's side-by-side figures.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::{Duration, Instant};

use havip_vrrp::packet::Version;
use havip_vrrp::AdvertInterval;

use crate::flood::{Defect, FloodReport, Spoof, Target};
use crate::lab::{node_v4, Lab};
use crate::node_config::{NodeConfig, Vrrp};
use crate::scrape::Metrics;
use crate::wait_for_every;

/// The v2 instance's VIP.
pub const VIP_V2: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 200);
/// The v3 instance's VIP.
pub const VIP_V3: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 201);
const VRID_V2: u8 = 51;
const VRID_V3: u8 = 52;
const PASSWORD: &str = "k8s-vip!";
const ADMIN: &str = "127.0.0.1:8404";
const PRIORITIES: [u8; 2] = [100, 90];
/// The "instance" of drops the receive path counts before any instance sees the packet.
pub const RECEIVE_PATH: &str = "(receive path)";

/// How long each phase floods, and how hard.
#[derive(Debug, Clone, Copy)]
pub struct DrillOptions {
    /// Packets per second.
    pub rate: u64,
    /// Flooding before the kill, in which nothing may change.
    pub calm: Duration,
    /// Flooding after the kill (must cover the v2 takeover, ~3.7 s, to test it under fire).
    pub after_kill: Duration,
}

/// What one drill measured.
#[derive(Debug, Clone)]
pub struct DrillResult {
    /// What the flood sent.
    pub flood: FloodReport,
    /// Holder changes of either VIP seen during the calm phase (should be none).
    pub calm_holder_changes: Vec<String>,
    /// State transitions counted by each node's metrics during the calm phase.
    pub calm_transitions: [u64; 2],
    /// From the kill to node 1 holding the v2 VIP, and the v3 VIP (None: never).
    pub takeover: [Option<Duration>; 2],
    /// Master_Down_Interval of node 1 for the v2 and the v3 instance.
    pub master_down: [Duration; 2],
    /// (instance, reason) -> (expected from what was sent, counted by node 1).
    pub drops: BTreeMap<(String, String), (u64, u64)>,
    /// Node 1's receive-path drops by reason (unknown_vrid, malformed_ip, inbox_full,
    /// socket_overflow).
    pub receive_drops: BTreeMap<String, u64>,
    /// Packets node 1's receive path read during the drill.
    pub received: u64,
    /// Adverts node 1's instances accepted during the drill.
    pub accepted: u64,
    /// Packets the kernel dropped on node 1's VRRP socket (its receive queue was full).
    pub kernel_drops: u64,
    /// CPU of node 0 during the calm phase and of node 1 over the whole flood, in percent
    /// of one core.
    pub cpu_percent: [f64; 2],
    /// Lines node 1 logged during the flood (drops are logged once per reason per minute).
    pub log_lines: usize,
    /// The nodes' logs when something went wrong, for the failure message.
    pub logs: String,
}

impl DrillResult {
    /// Every drop counted where it was expected, unless the kernel or a full inbox lost
    /// packets first (then the counts are lower bounds).
    pub fn drops_match(&self) -> bool {
        let lossy = self.kernel_drops > 0 || self.receive_drops.get("inbox_full") > Some(&0);
        self.drops.values().all(|(expected, counted)| {
            if lossy {
                *counted > 0 && counted <= expected
            } else {
                counted == expected
            }
        })
    }
}

/// The spoofs of the drill: every defect that applies to each instance, multicast to the
/// group and unicast to both nodes (with the other node as spoofed trusted source).
pub fn spoofs() -> Vec<Spoof> {
    let stranger = node_v4(2);
    let v2 = Target {
        version: Version::V2,
        vrid: VRID_V2,
        interval: AdvertInterval::ONE_SECOND,
        addresses: vec![VIP_V2],
        password: Some(PASSWORD.to_string()),
        unicast_to: None,
        trusted_source: stranger,
        stranger,
    };
    let mut out: Vec<Spoof> = [
        Defect::Truncated,
        Defect::BadChecksum,
        Defect::Ttl,
        Defect::Version,
        Defect::UnknownVrid,
        Defect::Password,
        Defect::AddressList,
        Defect::OwnerPriority,
    ]
    .iter()
    .map(|d| Spoof::new(&v2, *d))
    .collect();
    for node in [0, 1] {
        let v3 = Target {
            version: Version::V3,
            vrid: VRID_V3,
            interval: AdvertInterval::from_centiseconds(10).expect("100 ms"),
            addresses: vec![VIP_V3],
            password: None,
            unicast_to: Some(node_v4(node)),
            trusted_source: node_v4(1 - node),
            stranger,
        };
        out.extend(
            [
                Defect::Truncated,
                Defect::BadChecksum,
                Defect::Ttl,
                Defect::Version,
                Defect::UnknownVrid,
                Defect::UnknownUnicastSource,
                Defect::OwnerPriority,
            ]
            .iter()
            .map(|d| Spoof::new(&v3, *d)),
        );
    }
    out
}

/// The receive check that must drop `defect` in instance `vrid` (an instance drop reason),
/// or `None` when the receive path drops it before any instance (an unknown VRID).
pub fn expected_reason(defect: Defect, vrid: u8) -> Option<&'static str> {
    Some(match defect {
        Defect::Truncated => "packet_length",
        Defect::BadChecksum => "checksum",
        Defect::Ttl => "ip_ttl",
        Defect::Version => "version",
        Defect::UnknownVrid => return None,
        Defect::Password => "auth_failure",
        Defect::UnknownUnicastSource => "unknown_unicast_source",
        Defect::AddressList => "address_list",
        Defect::OwnerPriority if vrid == VRID_V2 => "auth_failure",
        Defect::OwnerPriority => "unknown_unicast_source",
    })
}

fn instance_name(vrid: u8) -> &'static str {
    if vrid == VRID_V2 {
        "VI_V2"
    } else {
        "VI_V3"
    }
}

fn node_config(i: usize) -> NodeConfig {
    let priority = PRIORITIES[i];
    NodeConfig::new()
        .grace("1s")
        .log_level("info")
        .admin(ADMIN)
        .vrrp(
            Vrrp::new("VI_V2", VRID_V2)
                .version(2)
                .priority(priority)
                .advert_interval("1s")
                .auth_pass(PASSWORD)
                .vip(format!("{VIP_V2}/24")),
        )
        .vrrp(
            Vrrp::new("VI_V3", VRID_V3)
                .version(3)
                .priority(priority)
                .advert_interval("100ms")
                .unicast(node_v4(i), &[node_v4(1 - i).to_string()])
                .vip(format!("{VIP_V3}/24")),
        )
}

/// Master_Down_Interval for `priority` (RFC 5798 6.1; RFC 3768 6.1 for v2, the same form).
pub fn master_down(priority: u8, interval: Duration) -> Duration {
    interval * 3 + interval.mul_f64(f64::from(256 - u32::from(priority)) / 256.0)
}

/// Run the drill with the havip binary at `havip`.
pub fn run(havip: &Path, options: DrillOptions) -> DrillResult {
    let lab = Lab::new("fl", 3);
    let pids: Vec<u32> = (0..2)
        .map(|i| {
            let path = lab.write(&format!("node{i}.toml"), &node_config(i).to_toml());
            let config = path.display().to_string();
            lab.spawn(
                &lab.nodes[i].clone(),
                &havip.display().to_string(),
                &["run", "--config", &config],
                &format!("node{i}.log"),
                &[],
            )
        })
        .collect();
    for vip in [VIP_V2, VIP_V3] {
        lab.wait_for_sole_holder(IpAddr::V4(vip), 0, &[], Duration::from_secs(8));
    }
    // Let the backup hear a few adverts of each instance first.
    std::thread::sleep(Duration::from_millis(1500));
    let before = [
        lab.scrape(&lab.nodes[0], ADMIN),
        lab.scrape(&lab.nodes[1], ADMIN),
    ];
    let cpu_before = [cpu_ticks(pids[0]), cpu_ticks(pids[1])];
    let lines_before = lab.log_of("node1.log").lines().count();

    let flood = lab.start_flood(
        &lab.nodes[2].clone(),
        "eth0",
        spoofs(),
        options.rate,
        options.calm + options.after_kill,
    );
    let flood_started = Instant::now();
    let calm_holder_changes = watch_holders(&lab, options.calm);
    let calm = [
        lab.scrape(&lab.nodes[0], ADMIN),
        lab.scrape(&lab.nodes[1], ADMIN),
    ];
    let calm_elapsed = flood_started.elapsed();
    let node0_ticks = cpu_ticks(pids[0]).saturating_sub(cpu_before[0]);

    // The crash: kill -9 and the link down with it.
    lab.signal(pids[0], "KILL");
    lab.set_node_link(0, false);
    let killed = Instant::now();
    let takeover = takeovers(&lab, killed, options.after_kill + Duration::from_secs(2));
    let report = flood.finish();
    let node1_ticks = cpu_ticks(pids[1]).saturating_sub(cpu_before[1]);
    let whole = flood_started.elapsed();
    let after = lab.scrape(&lab.nodes[1], ADMIN);
    let kernel_drops = raw_socket_drops(&lab, &lab.nodes[1]);

    let transitions = |m: &Metrics| m.count("havip_vrrp_transitions_total", &[]);
    let hz = clock_ticks_per_second();
    let percent = |ticks: u64, over: Duration| ticks as f64 / hz / over.as_secs_f64() * 100.0;
    let mut result = DrillResult {
        calm_holder_changes,
        calm_transitions: [
            transitions(&calm[0]) - transitions(&before[0]),
            transitions(&calm[1]) - transitions(&before[1]),
        ],
        takeover,
        master_down: [
            master_down(PRIORITIES[1], Duration::from_secs(1)),
            master_down(PRIORITIES[1], Duration::from_millis(100)),
        ],
        drops: BTreeMap::new(),
        receive_drops: BTreeMap::new(),
        received: delta(&after, &before[1], "havip_vrrp_receive_packets_total", &[]),
        accepted: delta(&after, &before[1], "havip_vrrp_adverts_received_total", &[]),
        kernel_drops,
        cpu_percent: [
            percent(node0_ticks, calm_elapsed),
            percent(node1_ticks, whole),
        ],
        log_lines: lab.log_of("node1.log").lines().count() - lines_before,
        logs: String::new(),
        flood: report,
    };
    count_drops(&mut result, &before[1], &after);
    result.logs = lab.all_logs();
    result
}

/// The expected and counted drops on node 1, by instance and reason.
fn count_drops(result: &mut DrillResult, before: &Metrics, after: &Metrics) {
    let node1 = node_v4(1);
    let pairs: std::collections::BTreeSet<(Defect, u8)> = result
        .flood
        .sent
        .iter()
        .map(|(d, v, _, _)| (*d, *v))
        .collect();
    for (defect, vrid) in pairs {
        let key = match expected_reason(defect, vrid) {
            Some(reason) => (instance_name(vrid).to_string(), reason.to_string()),
            None => (RECEIVE_PATH.to_string(), "unknown_vrid".to_string()),
        };
        result.drops.entry(key).or_insert((0, 0)).0 += result.flood.reaching(defect, vrid, node1);
    }
    for ((instance, reason), (_, counted)) in result.drops.iter_mut() {
        *counted = if instance == RECEIVE_PATH {
            let labels = [("family", "ipv4"), ("reason", reason.as_str())];
            delta(after, before, "havip_vrrp_receive_dropped_total", &labels)
        } else {
            let labels = [("instance", instance.as_str()), ("reason", reason.as_str())];
            delta(after, before, "havip_vrrp_adverts_dropped_total", &labels)
        };
    }
    for reason in [
        "unknown_vrid",
        "malformed_ip",
        "inbox_full",
        "socket_overflow",
    ] {
        let labels = [("family", "ipv4"), ("reason", reason)];
        let n = delta(after, before, "havip_vrrp_receive_dropped_total", &labels);
        result.receive_drops.insert(reason.to_string(), n);
    }
}

fn delta(after: &Metrics, before: &Metrics, name: &str, labels: &[(&str, &str)]) -> u64 {
    after
        .count(name, labels)
        .saturating_sub(before.count(name, labels))
}

/// Watch both VIPs for `duration`: every moment their holders were not node 0 alone.
fn watch_holders(lab: &Lab, duration: Duration) -> Vec<String> {
    let start = Instant::now();
    let mut changes = Vec::new();
    while start.elapsed() < duration {
        for vip in [VIP_V2, VIP_V3] {
            let holders = lab.holders(IpAddr::V4(vip));
            if holders != vec![0] {
                changes.push(format!(
                    "{vip} held by {holders:?} at {:?}",
                    start.elapsed()
                ));
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    changes
}

/// From `killed`, how long until node 1 holds each VIP (v2, v3).
fn takeovers(lab: &Lab, killed: Instant, timeout: Duration) -> [Option<Duration>; 2] {
    let mut out = [None, None];
    let _ = wait_for_every(Duration::from_millis(5), timeout, || {
        for (slot, vip) in out.iter_mut().zip([VIP_V2, VIP_V3]) {
            if slot.is_none() && lab.node_has_address(1, IpAddr::V4(vip)) {
                *slot = Some(killed.elapsed());
            }
        }
        out.iter().all(Option::is_some).then_some(())
    });
    out
}

/// utime + stime of `pid`, in clock ticks (0 when it is gone).
pub fn cpu_ticks(pid: u32) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    // Fields after the command (which may hold spaces) start at field 3, the state.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
    field(14).unwrap_or(0) + field(15).unwrap_or(0)
}

/// The kernel's clock ticks per second (`getconf CLK_TCK`, 100 on Linux).
pub fn clock_ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// Packets dropped by the kernel on the VRRP (protocol 112) raw sockets of namespace `ns`.
pub fn raw_socket_drops(lab: &Lab, ns: &str) -> u64 {
    let (_, table) = lab.try_ns(ns, &["cat", "/proc/net/raw"]);
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local = fields.get(1)?;
            // local_address is ADDR:PROTO in hex; the drops column is the last.
            (local.ends_with(":0070"))
                .then(|| fields.last()?.parse::<u64>().ok())
                .flatten()
        })
        .sum()
}

/// What the same drill measured with keepalived on both nodes (its per-reason counters are
/// only reachable through SNMP or a stats file, so drops are not compared).
#[derive(Debug, Clone)]
pub struct KeepalivedResult {
    /// What the flood sent.
    pub flood: FloodReport,
    /// Holder changes of either VIP during the calm phase.
    pub calm_holder_changes: Vec<String>,
    /// "Entering ... STATE" lines each node logged during the calm phase.
    pub calm_transitions: [usize; 2],
    /// From the kill to node 1 holding the v2 VIP, and the v3 VIP.
    pub takeover: [Option<Duration>; 2],
    /// CPU of node 0's VRRP process during the calm phase and node 1's over the whole flood,
    /// in percent of one core.
    pub cpu_percent: [f64; 2],
    /// Lines node 1 logged during the flood (keepalived logs receive errors unthrottled).
    pub log_lines: usize,
    /// Both logs' tails, for failure messages.
    pub logs: String,
}

/// The keepalived.conf of node `i`: the same two instances (with `check_unicast_src`, which
/// havip has on by default and keepalived off).
fn keepalived_config(i: usize) -> String {
    let priority = PRIORITIES[i];
    format!(
        "global_defs {{\n    router_id node{i}\n}}\n\
         vrrp_instance VI_V2 {{\n    version 2\n    state BACKUP\n    interface eth0\n    \
         virtual_router_id {VRID_V2}\n    priority {priority}\n    advert_int 1\n    \
         authentication {{\n        auth_type PASS\n        auth_pass {PASSWORD}\n    }}\n    \
         virtual_ipaddress {{\n        {VIP_V2}/24 dev eth0\n    }}\n}}\n\
         vrrp_instance VI_V3 {{\n    version 3\n    state BACKUP\n    interface eth0\n    \
         virtual_router_id {VRID_V3}\n    priority {priority}\n    advert_int 0.1\n    \
         unicast_src_ip {}\n    unicast_peer {{\n        {}\n    }}\n    check_unicast_src\n    \
         virtual_ipaddress {{\n        {VIP_V3}/24 dev eth0\n    }}\n}}\n",
        node_v4(i),
        node_v4(1 - i)
    )
}

fn state_lines(lab: &Lab, log: &str) -> usize {
    lab.log_of(log).matches("STATE").count()
}

/// The drill with keepalived 2.2 (the Debian package) instead of havip, same flood.
pub fn run_keepalived(options: DrillOptions) -> KeepalivedResult {
    let lab = Lab::new("fk", 3);
    let nodes: Vec<crate::keepalived::Keepalived> = (0..2)
        .map(|i| crate::keepalived::start_with_config(&lab, i, &keepalived_config(i)))
        .collect();
    for vip in [VIP_V2, VIP_V3] {
        lab.wait_for_sole_holder(IpAddr::V4(vip), 0, &[], Duration::from_secs(8));
    }
    std::thread::sleep(Duration::from_millis(1500));
    let children: Vec<u32> = nodes
        .iter()
        .map(|k| k.vrrp_child().expect("keepalived's VRRP child"))
        .collect();
    let states_before = [
        state_lines(&lab, &nodes[0].log),
        state_lines(&lab, &nodes[1].log),
    ];
    let lines_before = lab.log_of(&nodes[1].log).lines().count();
    let cpu_before = [cpu_ticks(children[0]), cpu_ticks(children[1])];
    let flood = lab.start_flood(
        &lab.nodes[2].clone(),
        "eth0",
        spoofs(),
        options.rate,
        options.calm + options.after_kill,
    );
    let started = Instant::now();
    let calm_holder_changes = watch_holders(&lab, options.calm);
    let calm_transitions = [
        state_lines(&lab, &nodes[0].log) - states_before[0],
        state_lines(&lab, &nodes[1].log) - states_before[1],
    ];
    let calm_elapsed = started.elapsed();
    let node0_ticks = cpu_ticks(children[0]).saturating_sub(cpu_before[0]);
    nodes[0].crash(&lab);
    lab.set_node_link(0, false);
    let killed = Instant::now();
    let takeover = takeovers(&lab, killed, options.after_kill + Duration::from_secs(2));
    let report = flood.finish();
    let node1_ticks = cpu_ticks(children[1]).saturating_sub(cpu_before[1]);
    let whole = started.elapsed();
    let hz = clock_ticks_per_second();
    let percent = |ticks: u64, over: Duration| ticks as f64 / hz / over.as_secs_f64() * 100.0;
    KeepalivedResult {
        flood: report,
        calm_holder_changes,
        calm_transitions,
        takeover,
        cpu_percent: [
            percent(node0_ticks, calm_elapsed),
            percent(node1_ticks, whole),
        ],
        log_lines: lab.log_of(&nodes[1].log).lines().count() - lines_before,
        logs: lab.all_logs(),
    }
}
