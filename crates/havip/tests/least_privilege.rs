//! havip as an unprivileged user (issue 13): real `havip` processes in network namespaces,
//! started the way the unit starts them (`User=` + `AmbientCapabilities=`), here with
//! `setpriv`: user `nobody`, no supplementary groups, and exactly the capabilities under test
//! in the inheritable, ambient and bounding sets. Needs root (to make the namespaces and hand
//! the capabilities down) and `ip netns`.
//!
//! - A VRRP + balancer node (balancer on port 8443, so no CAP_NET_BIND_SERVICE) holds the VIP
//!   with only CAP_NET_ADMIN and CAP_NET_RAW, and a peer under the same limits takes over
//!   when it stops.
//! - Without CAP_NET_RAW it refuses to start: exit 1, the message names the capability and
//!   the setting.
//! - A balancer alone on a high port needs no capability at all.

#![allow(clippy::unwrap_used)] // test code: a panic is a failed test
#![allow(clippy::disallowed_types)] // the lab measures wall-clock time of real processes

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use havip_test_support::lab::Lab;
use havip_test_support::node_config::{Health, NodeConfig, Service, Vrrp};
use havip_test_support::{require, serial, wait_for, Need};

const HAVIP: &str = env!("CARGO_BIN_EXE_havip");
const VIP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 201);
const PORT: u16 = 8443;
const BACKEND_PORT: u16 = 9000;
/// `nobody`'s uid on Debian.
const NOBODY: u32 = 65534;

/// The capability bits of CAP_NET_ADMIN (12) and CAP_NET_RAW (13), as /proc shows them.
const NET_ADMIN_RAW: u64 = (1 << 12) | (1 << 13);

fn config(priority: Option<u8>) -> NodeConfig {
    let listen = match priority {
        Some(_) => SocketAddr::new(IpAddr::V4(VIP), PORT),
        None => SocketAddr::from(([0, 0, 0, 0], PORT)),
    };
    let config = NodeConfig::new()
        .grace("1s")
        .log_level("info")
        .log_connections(false)
        .service(
            Service::new("api", listen)
                .health(Health::tcp().interval("200ms"))
                .backend(format!("127.0.0.1:{BACKEND_PORT}")),
        );
    match priority {
        Some(priority) => config.vrrp(
            Vrrp::new("VI_1", 43)
                .priority(priority)
                .advert_interval("100ms")
                .vip(format!("{VIP}/24")),
        ),
        None => config,
    }
}

/// Start havip in node `i` as `nobody` with exactly `caps` (setpriv names: "net_admin"...);
/// returns its PID (`ip netns exec` and `setpriv` both exec, so it is havip's own).
fn start_as_nobody(lab: &Lab, i: usize, config: &NodeConfig, caps: &[&str]) -> u32 {
    lab.start_name_server(i, BACKEND_PORT);
    let path = lab.write(&format!("node{i}.toml"), &config.to_toml());
    let set: String = std::iter::once("-all".to_string())
        .chain(caps.iter().map(|c| format!("+{c}")))
        .collect::<Vec<_>>()
        .join(",");
    lab.spawn(
        &lab.nodes[i].clone(),
        "/usr/bin/setpriv",
        &[
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            &format!("--inh-caps={set}"),
            &format!("--ambient-caps={set}"),
            &format!("--bounding-set={set}"),
            HAVIP,
            "run",
            "--config",
            &path.display().to_string(),
        ],
        &format!("node{i}.log"),
        &[],
    )
}

/// The effective user and capability set of a running process, from /proc.
fn uid_and_effective_caps(pid: u32) -> (u32, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    let uid: u32 = field("Uid:")[1].parse().unwrap();
    let caps = u64::from_str_radix(field("CapEff:")[0], 16).unwrap();
    (uid, caps)
}

#[test]
fn a_vrrp_node_as_nobody_with_net_admin_and_net_raw_holds_the_vip_and_fails_over() {
    require!(Need::Root, Need::Netns);
    let _serial = serial();
    let lab = Lab::new("lp", 2);
    let caps = ["net_admin", "net_raw"];
    let pids: Vec<u32> = [100, 90]
        .iter()
        .enumerate()
        .map(|(i, p)| start_as_nobody(&lab, i, &config(Some(*p)), &caps))
        .collect();
    lab.wait_for_sole_holder(IpAddr::V4(VIP), 0, &[], Duration::from_secs(5));
    for pid in &pids {
        assert_eq!(
            uid_and_effective_caps(*pid),
            (NOBODY, NET_ADMIN_RAW),
            "pid {pid}"
        );
    }
    let target = SocketAddr::new(IpAddr::V4(VIP), PORT);
    let prober = lab.start_prober(target, Duration::from_millis(5), Duration::from_secs(10));
    let started = Instant::now();
    assert!(
        wait_for(Duration::from_secs(3), || prober
            .first_answer_from("node0", started))
        .is_some(),
        "the client reaches node0's balancer on the VIP\n{}",
        lab.all_logs()
    );
    // SIGTERM: node0 releases the VIP (priority 0 advert, RFC 5798 6.4.3) and node1, as
    // unprivileged as node0, takes it and serves.
    lab.signal(pids[0], "TERM");
    let stopped = Instant::now();
    assert_eq!(
        lab.wait(pids[0], Duration::from_secs(5)),
        Some(Some(0)),
        "{}",
        lab.all_logs()
    );
    lab.wait_for_sole_holder(IpAddr::V4(VIP), 1, &[0], Duration::from_secs(3));
    assert!(
        wait_for(Duration::from_secs(3), || prober
            .first_answer_from("node1", stopped))
        .is_some(),
        "node1 serves on the VIP after the hand-over\n{}",
        lab.all_logs()
    );
    let log = lab.log_of("node0.log");
    assert!(!log.contains("not permitted"), "{log}");
}

#[test]
fn without_net_raw_a_vrrp_node_refuses_to_start_naming_the_capability_and_the_setting() {
    require!(Need::Root, Need::Netns);
    let _serial = serial();
    let lab = Lab::new("lq", 1);
    let pid = start_as_nobody(&lab, 0, &config(Some(100)), &["net_admin"]);
    let exit = lab.wait(pid, Duration::from_secs(5));
    let log = lab.log_of("node0.log");
    assert_eq!(exit, Some(Some(1)), "{log}");
    assert!(log.contains("CAP_NET_RAW"), "{log}");
    assert!(log.contains("vrrp[0]"), "the setting that needs it: {log}");
    assert!(
        log.contains("AmbientCapabilities=CAP_NET_RAW"),
        "how to grant it: {log}"
    );
    assert!(
        !log.contains("CAP_NET_ADMIN to"),
        "CAP_NET_ADMIN is held: {log}"
    );
    assert!(!lab.node_has_address(0, IpAddr::V4(VIP)));
}

#[test]
fn a_balancer_on_a_high_port_runs_as_nobody_without_any_capability() {
    require!(Need::Root, Need::Netns);
    let _serial = serial();
    let lab = Lab::new("lr", 1);
    let pid = start_as_nobody(&lab, 0, &config(None), &[]);
    let target = SocketAddr::new(IpAddr::V4(lab.node_addr(0)), PORT);
    let prober = lab.start_prober(target, Duration::from_millis(20), Duration::from_secs(5));
    let started = Instant::now();
    assert!(
        wait_for(Duration::from_secs(3), || prober
            .first_answer_from("node0", started))
        .is_some(),
        "the balancer answers\n{}",
        lab.all_logs()
    );
    assert_eq!(uid_and_effective_caps(pid), (NOBODY, 0));
}

#[test]
fn havip_check_as_an_unprivileged_user_warns_with_the_same_lines_and_passes() {
    require!(Need::Root);
    let scratch = havip_test_support::scratch::Scratch::new("check-caps");
    let path = scratch.write("havip.toml", &config(Some(100)).to_toml());
    let output = std::process::Command::new("/usr/bin/setpriv")
        .args([
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            "--inh-caps=-all,+net_admin",
            "--ambient-caps=-all,+net_admin",
            "--bounding-set=-all,+net_admin",
            HAVIP,
            "check",
            "--config",
            path.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&output.stderr).to_string()
        + &String::from_utf8_lossy(&output.stdout);
    // A warning, not a problem: the file is valid, this process merely lacks CAP_NET_RAW.
    assert!(output.status.success(), "{said}");
    let line = said
        .lines()
        .find(|l| l.contains("CAP_NET_RAW"))
        .unwrap_or_else(|| panic!("no CAP_NET_RAW warning:\n{said}"));
    assert!(
        line.contains("vrrp[0]") && line.contains("warning"),
        "{line}"
    );
    assert!(line.contains("AmbientCapabilities=CAP_NET_RAW"), "{line}");
    assert!(
        !said.contains("CAP_NET_ADMIN to"),
        "CAP_NET_ADMIN is held:\n{said}"
    );
}
