//! Live reload and binary upgrade with VRRP on the wire (issue #11, items 2 and 3): real
//! `havip` processes (and a real keepalived peer) in network namespaces on one bridge, a
//! client namespace that connects to the VIP, and a capture of the adverts on the segment.
//! Needs root, `ip netns` and keepalived (the guard skips loudly outside CI and fails under
//! CI=true).

#![allow(clippy::unwrap_used)] // test code: a panic is a failed test
#![allow(clippy::disallowed_types)] // the lab measures wall-clock time of real processes

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use havip_test_support::adverts::{Advert, AdvertWatch};
use havip_test_support::keepalived as ka;
use havip_test_support::lab::{node_v4, Lab};
use havip_test_support::node_config::{Health, NodeConfig, Service, Vrrp};
use havip_test_support::{require, serial, wait_for, Need};

const HAVIP: &str = env!("CARGO_BIN_EXE_havip");
const VIP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 200);
const VIP2: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 201);
const BACKEND_PORT: u16 = 9000;
const INTERVAL: Duration = Duration::from_millis(100);
/// What a loaded 2-core test machine adds to an advert's timing.
const ALLOWANCE: Duration = Duration::from_millis(40);

/// The balancer on VIP:80 in front of the node's name server, with `health_interval` checks.
fn node_config(health_interval: &str, vrrp: Vec<Vrrp>) -> NodeConfig {
    let mut config = NodeConfig::new()
        .grace("2s")
        .log_level("info")
        .log_connections(false)
        .service(
            Service::new("api", SocketAddr::new(IpAddr::V4(VIP), 80))
                .health(Health::tcp().interval(health_interval))
                .backend(format!("127.0.0.1:{BACKEND_PORT}")),
        );
    for instance in vrrp {
        config = config.vrrp(instance);
    }
    config
}

fn instance(name: &str, vrid: u8, priority: u8, vip: Ipv4Addr) -> Vrrp {
    Vrrp::new(name, vrid)
        .priority(priority)
        .advert_interval("100ms")
        .vip(format!("{vip}/24"))
}

/// Write node `i`'s config (the file its havip reads on SIGHUP); returns the path.
fn write_config(lab: &Lab, i: usize, config: &NodeConfig) -> String {
    lab.write(&format!("node{i}.toml"), &config.to_toml())
        .display()
        .to_string()
}

fn start_node(lab: &Lab, i: usize, config: &NodeConfig) -> u32 {
    lab.start_name_server(i, BACKEND_PORT);
    let path = write_config(lab, i, config);
    lab.spawn(
        &lab.nodes[i].clone(),
        HAVIP,
        &["run", "--config", &path],
        &format!("node{i}.log"),
        &[],
    )
}

fn state_changes(lab: &Lab, i: usize) -> usize {
    lab.log_of(&format!("node{i}.log"))
        .matches("VRRP state change")
        .count()
}

/// Wait until node `i`'s log has `count` occurrences of `text`.
fn wait_for_log(lab: &Lab, i: usize, text: &str, count: usize) {
    let log = format!("node{i}.log");
    assert!(
        wait_for(Duration::from_secs(5), || (lab
            .log_of(&log)
            .matches(text)
            .count()
            >= count)
            .then_some(()))
        .is_some(),
        "node{i} logs {text:?} x{count}\n{}",
        lab.all_logs()
    );
}

/// The longest time between consecutive adverts from `source` within `[from, to]`.
fn longest_advert_gap(adverts: &[Advert], source: IpAddr, from: Instant, to: Instant) -> Duration {
    let times: Vec<Instant> = adverts
        .iter()
        .filter(|a| a.source == source && a.at >= from && a.at <= to)
        .map(|a| a.at)
        .collect();
    times
        .windows(2)
        .map(|pair| pair[1].duration_since(pair[0]))
        .max()
        .unwrap_or(to.duration_since(from))
}

/// The adverts of `source` in `[from, to]`, for a failure message.
fn advert_times(watch: &AdvertWatch, source: IpAddr, from: Instant) -> Vec<(u64, u8)> {
    watch
        .adverts()
        .iter()
        .filter(|a| a.source == source && a.at >= from)
        .map(|a| (a.at.duration_since(from).as_millis() as u64, a.priority))
        .collect()
}

#[test]
fn reloads_leave_an_unchanged_master_silent_and_apply_vrrp_changes_under_the_rules() {
    require!(Need::Root, Need::Netns);
    let _serial = serial();
    let lab = Lab::new("rl", 2);
    let node0 = IpAddr::V4(node_v4(0));
    let node1 = IpAddr::V4(node_v4(1));
    let vi_1 = |priority| instance("VI_1", 42, priority, VIP);
    let pid0 = start_node(&lab, 0, &node_config("200ms", vec![vi_1(100)]));
    let pid1 = start_node(&lab, 1, &node_config("200ms", vec![vi_1(90)]));
    lab.wait_for_sole_holder(IpAddr::V4(VIP), 0, &[], Duration::from_secs(5));
    let watch = lab.start_advert_watch(42, false);
    let prober = lab.start_prober(
        SocketAddr::new(IpAddr::V4(VIP), 80),
        Duration::from_millis(2),
        Duration::from_secs(20),
    );
    std::thread::sleep(Duration::from_millis(500));

    // 1. A change outside VRRP: the master's instance sees nothing.
    let changes_before = (state_changes(&lab, 0), state_changes(&lab, 1));
    let from = Instant::now();
    write_config(&lab, 0, &node_config("300ms", vec![vi_1(100)]));
    lab.signal(pid0, "HUP");
    wait_for_log(&lab, 0, "config reloaded", 1);
    std::thread::sleep(Duration::from_millis(600));
    let to = Instant::now();
    let gap = longest_advert_gap(&watch.adverts(), node0, from, to);
    let count = watch.count_from_after(node0, from);
    eprintln!(
        "reload outside VRRP: longest advert gap {gap:?}, {count} adverts in {:?}",
        to - from
    );
    assert!(
        gap <= INTERVAL + ALLOWANCE,
        "advert gap {gap:?}: {:?}",
        advert_times(&watch, node0, from)
    );
    let expected = (to - from).as_millis() as usize / 100;
    assert!(
        count <= expected + 2,
        "no extra adverts: {count} in {:?}",
        to - from
    );
    assert_eq!(
        (state_changes(&lab, 0), state_changes(&lab, 1)),
        changes_before,
        "no transition anywhere\n{}",
        lab.all_logs()
    );

    // 2. A lower priority on the master: advertised with its next advert, no transition.
    let from = Instant::now();
    write_config(&lab, 0, &node_config("300ms", vec![vi_1(95)]));
    lab.signal(pid0, "HUP");
    wait_for_log(&lab, 0, "config reloaded", 2);
    let seen = wait_for(Duration::from_secs(2), || {
        watch
            .adverts()
            .into_iter()
            .find(|a| a.source == node0 && a.at > from && a.priority == 95)
    })
    .expect("the new priority is advertised");
    eprintln!("priority 95 advertised {:?} after SIGHUP", seen.at - from);
    assert!(seen.at - from <= INTERVAL + Duration::from_millis(300));
    assert_eq!(state_changes(&lab, 0), changes_before.0);

    // 3. The backup's priority above the master's: it preempts under the normal rules (RFC
    // 5798 6.4.2: it discards the lower adverts and takes over when Master_Down_Timer fires).
    write_config(&lab, 1, &node_config("200ms", vec![vi_1(110)]));
    let from = Instant::now();
    lab.signal(pid1, "HUP");
    lab.wait_for_sole_holder(IpAddr::V4(VIP), 1, &[], Duration::from_secs(3));
    let took = watch.first_from_after(node1, from).unwrap().at - from;
    eprintln!("preempted {took:?} after the backup's SIGHUP");
    assert!(lab.log_of("node1.log").contains("preempted master"));

    // 4. An instance added on node0 starts as backup (then, alone, becomes master); removed,
    // it hands over with priority 0 exactly as on SIGTERM.
    let watch2 = lab.start_advert_watch(43, false);
    let both = vec![vi_1(95), instance("VI_2", 43, 100, VIP2)];
    write_config(&lab, 0, &node_config("300ms", both));
    lab.signal(pid0, "HUP");
    lab.wait_for_sole_holder(IpAddr::V4(VIP2), 0, &[], Duration::from_secs(3));
    assert!(lab.log_of("node0.log").contains("VI_2"));
    let from = Instant::now();
    write_config(&lab, 0, &node_config("300ms", vec![vi_1(95)]));
    lab.signal(pid0, "HUP");
    let zero = wait_for(Duration::from_secs(3), || {
        watch2
            .adverts()
            .into_iter()
            .find(|a| a.source == node0 && a.at > from && a.priority == 0)
    });
    assert!(zero.is_some(), "VI_2 sent priority 0\n{}", lab.all_logs());
    assert!(
        wait_for(Duration::from_secs(3), || lab
            .holders(IpAddr::V4(VIP2))
            .is_empty()
            .then_some(()))
        .is_some(),
        "VI_2's address is gone"
    );
    lab.wait_for_sole_holder(IpAddr::V4(VIP), 1, &[], Duration::from_secs(1));
    // Through all of it the client was served (the preemption in step 3 moved the VIP: a
    // connection under way at that instant may fail, as on any VRRP move).
    let failures = prober.failures_after(Instant::now() - Duration::from_secs(60));
    assert!(
        failures <= 4,
        "failed connects: {failures}\n{}",
        lab.all_logs()
    );
    lab.terminate_all(Duration::from_secs(5));
}

/// A process the test did not start itself (the upgraded havip, a child of the old one),
/// stopped with SIGTERM by its PID on drop, then SIGKILL if it did not stop.
struct Successor(u32);

impl Drop for Successor {
    fn drop(&mut self) {
        let pid = self.0.to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        for _ in 0..100 {
            if !Path::new(&format!("/proc/{pid}")).exists() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = Command::new("kill").args(["-KILL", &pid]).status();
    }
}

/// The successor's PID, from the old process's log line "upgrade: new process started".
fn successor_pid(log: &str) -> Option<u32> {
    let line = log.lines().find(|l| l.contains("new process started"))?;
    let after = line.split("pid=").nth(1)?;
    after
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

#[test]
fn an_upgrade_keeps_the_vip_and_a_keepalived_peer_sees_no_transition() {
    require!(Need::Root, Need::Netns, Need::Keepalived);
    let _serial = serial();
    let lab = Lab::new("ug", 2);
    let node0 = IpAddr::V4(node_v4(0));
    let node1 = IpAddr::V4(node_v4(1));
    let pid0 = start_node(
        &lab,
        0,
        &node_config("200ms", vec![instance("VI_1", 42, 100, VIP).version(3)]),
    );
    let peer = ka::start(
        &lab,
        1,
        &ka::Instance {
            vrid: 42,
            version: 3,
            priority: 90,
            advert_int: "0.1".into(),
            auth_pass: None,
            unicast: None,
            vip: format!("{VIP}/24"),
        },
    );
    lab.wait_for_sole_holder(IpAddr::V4(VIP), 0, &[], Duration::from_secs(5));
    let watch = lab.start_advert_watch(42, false);
    let prober = lab.start_prober(
        SocketAddr::new(IpAddr::V4(VIP), 80),
        Duration::from_millis(2),
        Duration::from_secs(12),
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        watch.count_from_after(node1, Instant::now() - Duration::from_millis(400)),
        0
    );

    let from = Instant::now();
    lab.signal(pid0, "USR2");
    wait_for_log(&lab, 0, "took over from the previous process", 1);
    let successor = Successor(successor_pid(&lab.log_of("node0.log")).expect("the new PID"));
    assert_ne!(successor.0, pid0);
    let exit = lab.wait(pid0, Duration::from_secs(10));
    assert_eq!(
        exit,
        Some(Some(0)),
        "the old process exits 0\n{}",
        lab.all_logs()
    );
    std::thread::sleep(Duration::from_millis(500));
    let to = Instant::now();

    let adverts = watch.adverts();
    let gap = longest_advert_gap(&adverts, node0, from, to);
    let zero = adverts
        .iter()
        .any(|a| a.source == node0 && a.at >= from && a.priority == 0);
    let peer_adverts = watch.count_from_after(node1, from);
    let failures = prober.failures_after(from);
    let client_gap = prober.longest_gap_after(from);
    eprintln!(
        "upgrade: longest advert gap {gap:?}, priority 0 sent: {zero}, keepalived adverts: \
         {peer_adverts}, failed connects {failures}, longest client gap {client_gap:?}"
    );
    assert!(
        gap <= INTERVAL + ALLOWANCE,
        "advert gap {gap:?}: {:?}\n{}",
        advert_times(&watch, node0, from),
        lab.all_logs()
    );
    assert!(!zero, "no priority 0 on an upgrade");
    assert_eq!(
        peer_adverts,
        0,
        "keepalived stayed backup\n{}",
        lab.log_of(&peer.log)
    );
    assert_eq!(lab.holders(IpAddr::V4(VIP)), vec![0]);
    assert_eq!(
        failures,
        0,
        "failed connects across the upgrade\n{}",
        lab.all_logs()
    );
    assert!(!lab.log_of(&peer.log).contains("Entering MASTER STATE"));
    drop(successor);
    lab.terminate_all(Duration::from_secs(5));
}
