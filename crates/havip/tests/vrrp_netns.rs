//! VRRP on the wire (issue #4): real `havip` processes in network namespaces on one bridge,
//! with a client namespace that connects to the VIP. Needs root, `ip netns`, nftables and
//! curl (the guard skips loudly outside CI and fails under CI=true).
//!
//! Each node runs a balancer on the VIP (port 80) in front of a backend in its own namespace
//! that answers with the node's name, so a client connect tells which node holds the VIP.
//! Timings are asserted against the RFC formulas plus a fixed allowance, measured from the
//! adverts the client namespace sees on the wire.

#![allow(clippy::unwrap_used)] // test code: a panic is a failed test
#![allow(clippy::disallowed_types)] // the lab measures wall-clock time of real processes

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use havip_test_support::adverts::AdvertWatch;
use havip_test_support::lab::{node_v4, Lab};
use havip_test_support::node_config::{Health, NodeConfig, Service, Vrrp};
use havip_test_support::wait::watch;
use havip_test_support::{require, serial, wait_for, Need};

const HAVIP: &str = env!("CARGO_BIN_EXE_havip");
const VIP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 200);
const BACKEND_PORT: u16 = 9000;

/// A node config: the balancer on VIP:80 (in front of the node's own name server) and `vrrp`.
fn node_config(vrrp: Vrrp) -> NodeConfig {
    NodeConfig::new()
        // Connections that were open on the VIP when it moved cannot finish here; do not wait
        // long.
        .grace("1s")
        .log_level("info")
        .log_connections(false)
        .service(
            Service::new("api", vip_target())
                .health(Health::tcp().interval("200ms"))
                .backend(format!("127.0.0.1:{BACKEND_PORT}")),
        )
        .vrrp(vrrp)
}

/// Instance VI_1 (VRID 42) holding the VIP, with 100 ms adverts.
fn vi_1(priority: u8) -> Vrrp {
    Vrrp::new("VI_1", 42)
        .priority(priority)
        .advert_interval("100ms")
        .vip(format!("{VIP}/24"))
}

/// Start havip in node `i` with `config`; returns its PID.
fn start_node(lab: &Lab, i: usize, config: &NodeConfig) -> u32 {
    lab.start_name_server(i, BACKEND_PORT);
    let path = lab.write(&format!("node{i}.toml"), &config.to_toml());
    let path = path.display().to_string();
    lab.spawn(
        &lab.nodes[i].clone(),
        HAVIP,
        &["run", "--config", &path],
        &format!("node{i}.log"),
        &[],
    )
}

fn vip_target() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(VIP), 80)
}

/// Master_Down_Interval (RFC 5798 6.1) for a v3 backup of `priority` with `interval_cs`.
fn v3_master_down(priority: u8, interval_cs: u64) -> Duration {
    let skew_ns = ((256 - u64::from(priority)) * interval_cs * 10_000_000).div_ceil(256);
    Duration::from_millis(interval_cs * 10 * 3) + Duration::from_nanos(skew_ns)
}

/// Wait until `expected` is the only live node (not in `dead`) that holds the VIP.
fn wait_for_holder(lab: &Lab, expected: usize, dead: &[usize], timeout: Duration) {
    lab.wait_for_sole_holder(IpAddr::V4(VIP), expected, dead, timeout);
}

#[test]
fn highest_priority_wins_and_a_crash_moves_the_vip_within_master_down_interval() {
    require!(Need::Root, Need::Netns);
    let _serial = serial();
    let lab = Lab::new("cr", 3);
    let priorities = [100, 90, 80];
    let mut pids = Vec::new();
    for (i, priority) in priorities.iter().enumerate() {
        pids.push(start_node(&lab, i, &node_config(vi_1(*priority))));
    }
    wait_for_holder(&lab, 0, &[], Duration::from_secs(5));

    let watch = lab.start_advert_watch(42, false);
    // Let the master settle: several of its adverts on the wire before the crash.
    let node0 = IpAddr::V4(node_v4(0));
    assert!(
        wait_for(Duration::from_secs(2), || (watch
            .adverts()
            .iter()
            .filter(|a| a.source == node0)
            .count()
            >= 3)
            .then_some(()))
        .is_some(),
        "node0 advertises\n{}",
        lab.all_logs()
    );
    let prober = lab.start_prober(
        vip_target(),
        Duration::from_millis(2),
        Duration::from_secs(8),
    );
    assert!(
        wait_for(Duration::from_secs(2), || prober.first_answer_from(
            "node0",
            Instant::now() - Duration::from_secs(1)
        ))
        .is_some(),
        "the client reaches node0 through the VIP\n{}",
        lab.all_logs()
    );

    // Crash: kill -9 and the link goes down with it (as when a machine dies).
    lab.signal(pids[0], "KILL");
    lab.set_node_link(0, false);
    let crashed = Instant::now();
    wait_for_holder(&lab, 1, &[0], Duration::from_secs(3));
    let answered = wait_for(Duration::from_secs(3), || {
        prober.first_answer_from("node1", crashed)
    })
    .expect("node1 answers on the VIP");
    let last_advert = watch
        .adverts()
        .into_iter()
        .rev()
        .find(|a| a.source == node0 && a.at <= crashed)
        .expect("adverts of node0 were seen");
    let took = answered.duration_since(last_advert.at);
    if let Some(first) = watch.first_from_after(IpAddr::V4(node_v4(1)), last_advert.at) {
        eprintln!(
            "node1's first advert {:?} after node0's last",
            first.at.duration_since(last_advert.at)
        );
    }
    let bound = v3_master_down(90, 10) + Duration::from_millis(100);
    eprintln!("crash takeover: {took:?} after the last advert (bound {bound:?})");
    assert!(
        took <= bound,
        "takeover took {took:?}, more than Master_Down_Interval + 100 ms = {bound:?}\n{}",
        lab.all_logs()
    );
    // Node 2 (priority 80) stays backup.
    assert!(!lab.node_has_address(2, IpAddr::V4(VIP)));
}

/// Skew_Time (RFC 5798 6.1) for a v3 backup of `priority` with `interval_cs`.
fn v3_skew(priority: u8, interval_cs: u64) -> Duration {
    Duration::from_nanos(((256 - u64::from(priority)) * interval_cs * 10_000_000).div_ceil(256))
}

fn wait_for_adverts(lab: &Lab, watch: &AdvertWatch, node: usize, count: usize) {
    let source = IpAddr::V4(node_v4(node));
    assert!(
        wait_for(Duration::from_secs(3), || (watch
            .adverts()
            .iter()
            .filter(|a| a.source == source)
            .count()
            >= count)
            .then_some(()))
        .is_some(),
        "node{node} advertises\n{}",
        lab.all_logs()
    );
}

#[test]
fn sigterm_hands_over_after_skew_time_and_clients_see_no_gap() {
    require!(Need::Root, Need::Netns);
    let _serial = serial();
    let lab = Lab::new("tm", 3);
    let mut pids = Vec::new();
    for (i, priority) in [100, 90, 80].iter().enumerate() {
        pids.push(start_node(&lab, i, &node_config(vi_1(*priority))));
    }
    wait_for_holder(&lab, 0, &[], Duration::from_secs(5));
    let watch = lab.start_advert_watch(42, false);
    wait_for_adverts(&lab, &watch, 0, 3);
    let started = Instant::now();
    let prober = lab.start_prober(
        vip_target(),
        Duration::from_millis(1),
        Duration::from_secs(8),
    );
    // The client is served through the VIP before the stop.
    assert!(
        wait_for(Duration::from_secs(2), || prober
            .first_answer_from("node0", started))
        .is_some(),
        "the client reaches node0\n{}",
        lab.all_logs()
    );
    let before = Instant::now();
    lab.signal(pids[0], "TERM");
    // The old master exits 0 once the new master is heard and its connections are drained.
    let exit = lab.wait(pids[0], Duration::from_secs(10));
    assert_eq!(exit, Some(Some(0)), "node0 exits 0\n{}", lab.all_logs());
    wait_for_holder(&lab, 1, &[], Duration::from_secs(2));
    let node0 = IpAddr::V4(node_v4(0));
    let node1 = IpAddr::V4(node_v4(1));
    let released = watch
        .adverts()
        .into_iter()
        .find(|a| a.source == node0 && a.priority == 0 && a.at >= before)
        .expect("node0 sent priority 0");
    let taken = watch
        .first_from_after(node1, released.at)
        .expect("node1 advertises as master");
    let took = taken.at.duration_since(released.at);
    let bound = v3_skew(90, 10) + Duration::from_millis(100);
    eprintln!("SIGTERM takeover: {took:?} after priority 0 (bound {bound:?})");
    assert!(
        took <= bound,
        "took {took:?} > {bound:?}\n{}",
        lab.all_logs()
    );
    // The client is served through node1 (the gap, if any, has ended).
    assert!(
        wait_for(Duration::from_secs(2), || prober
            .first_answer_from("node1", before))
        .is_some(),
        "the client reaches node1\n{}",
        lab.all_logs()
    );
    let gap = prober.longest_gap_after(before);
    let failures = prober.failures_after(before);
    eprintln!("SIGTERM client gap: {gap:?}, failed connects: {failures}");
    // A connection caught mid-exchange at the instant the client's ARP entry flips may
    // fail (its replies reach the new master): only the few attempts under way at that
    // instant (one starts every millisecond and takes about one). New connections must not
    // see a gap.
    assert!(
        gap <= Duration::from_millis(50) && failures <= 4,
        "clients saw {failures} failed connects, longest gap {gap:?}\n{}",
        lab.all_logs()
    );
    assert!(prober.first_answer_from("node1", before).is_some());
    assert!(lab.log_of("node0.log").contains("new master heard"));
}

#[test]
fn link_down_means_fault_and_takeover_then_preemption_on_recovery() {
    require!(Need::Root, Need::Netns);
    let _serial = serial();
    let lab = Lab::new("lk", 2);
    for (i, priority) in [100, 90].iter().enumerate() {
        start_node(&lab, i, &node_config(vi_1(*priority)));
    }
    wait_for_holder(&lab, 0, &[], Duration::from_secs(5));
    lab.set_node_link(0, false);
    // The node sees its link go: Fault, and it lets go of the VIP itself.
    assert!(
        wait_for(Duration::from_secs(2), || (!lab
            .node_has_address(0, IpAddr::V4(VIP)))
        .then_some(()))
        .is_some(),
        "node0 releases the VIP in Fault\n{}",
        lab.all_logs()
    );
    wait_for_holder(&lab, 1, &[0], Duration::from_secs(2));
    assert!(
        lab.log_of("node0.log").contains("to=\"FAULT\""),
        "{}",
        lab.all_logs()
    );
    lab.set_node_link(0, true);
    // Preempt (the default): the higher priority takes the VIP back.
    wait_for_holder(&lab, 0, &[], Duration::from_secs(3));
    let prober = lab.start_prober(
        vip_target(),
        Duration::from_millis(5),
        Duration::from_secs(3),
    );
    assert!(
        wait_for(Duration::from_secs(2), || prober.first_answer_from(
            "node0",
            Instant::now() - Duration::from_secs(2)
        ))
        .is_some(),
        "the client reaches node0 again\n{}",
        lab.all_logs()
    );
}

#[test]
fn a_partition_makes_two_masters_and_healing_leaves_one_within_two_intervals() {
    require!(Need::Root, Need::Netns);
    let _serial = serial();
    let lab = Lab::new("pt", 2);
    for (i, priority) in [100, 90].iter().enumerate() {
        start_node(&lab, i, &node_config(vi_1(*priority)));
    }
    wait_for_holder(&lab, 0, &[], Duration::from_secs(5));
    // Cut node0 off at the switch: it keeps its link (no Fault) but hears nobody.
    lab.set_partitioned(0, true);
    let both = wait_for(Duration::from_secs(2), || {
        (lab.holders(IpAddr::V4(VIP)) == vec![0, 1]).then_some(())
    });
    assert!(
        both.is_some(),
        "split brain: both hold the VIP\n{}",
        lab.all_logs()
    );
    let healed = Instant::now();
    lab.set_partitioned(0, false);
    let one = wait_for(Duration::from_secs(2), || {
        (lab.holders(IpAddr::V4(VIP)) == vec![0]).then_some(Instant::now())
    })
    .expect("one master after the heal");
    let took = one.duration_since(healed);
    // Two advert intervals, plus the 20 ms polling of this test and process scheduling.
    let bound = Duration::from_millis(200 + 100);
    eprintln!("heal: one master after {took:?} (bound {bound:?})");
    assert!(took <= bound, "{took:?} > {bound:?}\n{}", lab.all_logs());
    let prober = lab.start_prober(
        vip_target(),
        Duration::from_millis(5),
        Duration::from_secs(3),
    );
    assert!(
        wait_for(Duration::from_secs(2), || prober
            .first_answer_from("node0", healed))
        .is_some(),
        "the client reaches the VIP after the heal\n{}",
        lab.all_logs()
    );
}

#[test]
fn unicast_peers_work_with_multicast_dropped() {
    require!(Need::Root, Need::Netns, Need::Nft);
    let _serial = serial();
    let lab = Lab::new("uc", 2);
    for i in 0..2 {
        // Drop VRRP multicast both ways, as clouds do (counting what a node tries to send).
        lab.drop_vrrp_multicast(i);
    }
    let pids: Vec<u32> = [100, 90]
        .iter()
        .enumerate()
        .map(|(i, priority)| {
            let peer = node_v4(1 - i).to_string();
            let vrrp = vi_1(*priority).unicast(node_v4(i), &[peer]);
            start_node(&lab, i, &node_config(vrrp))
        })
        .collect();
    wait_for_holder(&lab, 0, &[], Duration::from_secs(5));
    // Stable: node1 hears node0's unicast adverts and stays backup (time passing is the
    // point: eight advert intervals in which the VIP must not move).
    let moved = watch(
        Duration::from_millis(800),
        Duration::from_millis(50),
        || {
            let holders = lab.holders(IpAddr::V4(VIP));
            (holders != vec![0]).then_some(holders)
        },
    );
    assert!(moved.is_empty(), "{moved:?}\n{}", lab.all_logs());
    assert_eq!(lab.holders(IpAddr::V4(VIP)), vec![0], "{}", lab.all_logs());
    // The master is the node that advertises: its VRRP went out by unicast only.
    let sent = lab.vrrp_unicast_sent(0);
    assert!(
        sent >= 5,
        "node0 advertised by unicast ({sent} packets): {}",
        lab.multicast_rules(0)
    );
    for node in [0, 1] {
        let counters = lab.multicast_rules(node);
        assert_eq!(
            lab.vrrp_multicast_sent(node),
            0,
            "no multicast sent by node{node}: {counters}"
        );
    }
    // And the counters would have seen multicast had there been any.
    for node in [0, 1] {
        lab.assert_multicast_counted(node);
    }
    lab.signal(pids[0], "KILL");
    lab.set_node_link(0, false);
    wait_for_holder(&lab, 1, &[0], Duration::from_secs(2));
}

#[test]
fn two_instances_share_one_interface() {
    require!(Need::Root, Need::Netns, Need::Curl);
    let _serial = serial();
    let lab = Lab::new("2i", 2);
    let vip2 = Ipv4Addr::new(10, 77, 0, 201);
    for (i, (p1, p2)) in [(100, 90), (90, 100)].iter().enumerate() {
        let vi_2 = Vrrp::new("VI_2", 43)
            .priority(*p2)
            .advert_interval("100ms")
            .vip(format!("{vip2}/24"));
        let config = node_config(vi_1(*p1)).vrrp(vi_2).admin("127.0.0.1:8404");
        start_node(&lab, i, &config);
    }
    wait_for_holder(&lab, 0, &[], Duration::from_secs(5));
    let vip2_holder = wait_for(Duration::from_secs(5), || {
        (lab.holders(IpAddr::V4(vip2)) == vec![1]).then_some(())
    });
    assert!(
        vip2_holder.is_some(),
        "node1 holds VI_2's address\n{}",
        lab.all_logs()
    );
    let value = |metrics: &str, prefix: &str| -> Option<u64> {
        metrics
            .lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    };
    let read_metrics = || {
        lab.ns(
            &lab.nodes[0].clone(),
            &["curl", "-s", "http://127.0.0.1:8404/metrics"],
        )
    };
    // Wait until VI_2 on node0 has counted a few of node1's adverts.
    let metrics = wait_for(Duration::from_secs(3), || {
        let metrics = read_metrics();
        let received = value(
            &metrics,
            "havip_vrrp_adverts_received_total{instance=\"VI_2\"}",
        );
        (received >= Some(3)).then_some(metrics)
    })
    .unwrap_or_else(read_metrics);
    // One receive path, demultiplexed: nothing dropped as unknown, each instance counts
    // the other node's adverts.
    let line = |prefix: &str| -> u64 {
        value(&metrics, prefix).unwrap_or_else(|| panic!("{prefix} missing in\n{metrics}"))
    };
    assert_eq!(
        line("havip_vrrp_receive_dropped_total{interface=\"eth0\",family=\"ipv4\",reason=\"unknown_vrid\"}"),
        0
    );
    assert!(line("havip_vrrp_adverts_received_total{instance=\"VI_2\"}") >= 3);
    assert_eq!(
        line("havip_vrrp_state{instance=\"VI_1\",state=\"MASTER\"}"),
        1
    );
    assert_eq!(
        line("havip_vrrp_state{instance=\"VI_2\",state=\"BACKUP\"}"),
        1
    );
}

#[test]
fn an_ipv6_vip_moves_and_clients_follow_it() {
    require!(Need::Root, Need::Netns);
    let _serial = serial();
    let lab = Lab::new("v6", 2);
    let vip6: std::net::Ipv6Addr = "fd77::200".parse().unwrap();
    let mut pids = Vec::new();
    for (i, priority) in [100, 90].iter().enumerate() {
        let config = NodeConfig::new()
            .grace("1s")
            .log_connections(false)
            .service(
                Service::new("api", SocketAddr::new(IpAddr::V6(vip6), 80))
                    .health(Health::tcp().interval("200ms"))
                    .backend(format!("127.0.0.1:{BACKEND_PORT}")),
            )
            .vrrp(
                Vrrp::new("VI_6", 42)
                    .priority(*priority)
                    .advert_interval("100ms")
                    .vip(format!("{vip6}/64")),
            );
        pids.push(start_node(&lab, i, &config));
    }
    let vip = IpAddr::V6(vip6);
    let sole = |node: usize, dead: &[usize]| {
        wait_for(Duration::from_secs(5), || {
            let holders: Vec<usize> = lab
                .holders(vip)
                .into_iter()
                .filter(|i| !dead.contains(i))
                .collect();
            (holders == vec![node]).then_some(())
        })
        .is_some()
    };
    assert!(sole(0, &[]), "node0 holds the IPv6 VIP\n{}", lab.all_logs());
    // The source of IPv6 adverts is the link-local address (RFC 5798 5.1.2.1).
    assert!(
        lab.log_of("node0.log").contains("source=fe80::"),
        "{}",
        lab.all_logs()
    );
    let target = SocketAddr::new(vip, 80);
    let prober = lab.start_prober(target, Duration::from_millis(2), Duration::from_secs(6));
    assert!(
        wait_for(Duration::from_secs(2), || prober.first_answer_from(
            "node0",
            Instant::now() - Duration::from_secs(2)
        ))
        .is_some(),
        "the client reaches node0 over IPv6\n{}",
        lab.all_logs()
    );
    lab.signal(pids[0], "KILL");
    lab.set_node_link(0, false);
    let crashed = Instant::now();
    assert!(
        sole(1, &[0]),
        "node1 takes the IPv6 VIP\n{}",
        lab.all_logs()
    );
    let answered = wait_for(Duration::from_secs(3), || {
        prober.first_answer_from("node1", crashed)
    })
    .expect("the client follows the VIP to node1 (unsolicited NA)");
    let took = answered.duration_since(crashed);
    let bound = v3_master_down(90, 10) + Duration::from_millis(100);
    eprintln!("IPv6 crash takeover: {took:?} after the kill (bound {bound:?})");
    assert!(took <= bound, "{took:?} > {bound:?}\n{}", lab.all_logs());
}

#[test]
fn a_lone_node_cleans_up_notifies_restores_its_vip_and_stops_within_the_bound() {
    require!(Need::Root, Need::Netns);
    let _serial = serial();
    let lab = Lab::new("ln", 1);
    let ns = lab.nodes[0].clone();
    // A VIP left behind by a crashed run.
    lab.ns(
        &ns,
        &["ip", "addr", "add", &format!("{VIP}/24"), "dev", "eth0"],
    );
    let notes = lab.dir.join("notes");
    let notes_path = notes.display();
    let vrrp = vi_1(100)
        .notify("command", format!("echo \"$1 $2 $3\" >> {notes_path}"))
        .notify("master", format!("echo entered-master >> {notes_path}"))
        .notify("shell", true);
    let pid = start_node(&lab, 0, &node_config(vrrp));
    assert!(
        wait_for(Duration::from_secs(2), || lab
            .log_of("node0.log")
            .contains("left behind by an earlier run")
            .then_some(()))
        .is_some(),
        "the stale VIP is removed at start\n{}",
        lab.all_logs()
    );
    wait_for_holder(&lab, 0, &[], Duration::from_secs(3));
    // Someone removes the VIP while we are master: it comes back.
    lab.ns(
        &ns,
        &["ip", "addr", "del", &format!("{VIP}/24"), "dev", "eth0"],
    );
    wait_for_holder(&lab, 0, &[], Duration::from_secs(2));
    assert!(lab.log_of("node0.log").contains("removed by someone else"));
    // Alone, a SIGTERM waits at most the longest Master_Down_Interval for a successor.
    let stopping = Instant::now();
    lab.signal(pid, "TERM");
    assert_eq!(
        lab.wait(pid, Duration::from_secs(5)),
        Some(Some(0)),
        "{}",
        lab.all_logs()
    );
    let took = stopping.elapsed();
    // 3 × 100 ms + Skew_Time of priority 1, the grace of 1 s, and process exit.
    assert!(
        took < Duration::from_millis(300 + 100 + 1000 + 500),
        "{took:?}"
    );
    assert!(
        !lab.node_has_address(0, IpAddr::V4(VIP)),
        "the VIP is released"
    );
    assert!(lab.log_of("node0.log").contains("no new master heard"));
    let notes = std::fs::read_to_string(&notes).unwrap_or_default();
    for line in [
        "VI_1 INIT BACKUP",
        "VI_1 BACKUP MASTER",
        "entered-master",
        "VI_1 MASTER STOP",
    ] {
        assert!(notes.contains(line), "notify wrote {line:?}: {notes}");
    }
}

#[test]
fn a_sigterm_during_a_step_down_exits_within_the_hand_over_bound() {
    require!(Need::Root, Need::Netns, Need::Curl);
    let _serial = serial();
    let lab = Lab::new("sd", 1);
    let ns = lab.nodes[0].clone();
    let config = node_config(vi_1(100))
        .admin("127.0.0.1:8404")
        .admin_commands();
    let pid = start_node(&lab, 0, &config);
    wait_for_holder(&lab, 0, &[], Duration::from_secs(3));
    // A drill with nobody to take over: the step-down waits for a new master until the
    // hand-over bound, 3 × 100 ms + 255/256 × 100 ms after its priority 0.
    let asked = Instant::now();
    let curl = lab.spawn(
        &ns,
        "curl",
        &[
            "-s",
            "-X",
            "POST",
            // Commands take a JSON body (the admin endpoint refuses others).
            "-H",
            "Content-Type: application/json",
            "-d",
            "{}",
            "http://127.0.0.1:8404/api/vrrp/VI_1/step-down",
        ],
        "curl.log",
        &[],
    );
    assert!(
        wait_for(Duration::from_secs(2), || lab
            .log_of("node0.log")
            .contains("drill: stepping down")
            .then_some(()))
        .is_some(),
        "the step-down began\n{}",
        lab.all_logs()
    );
    // SIGTERM while the step-down waits. Before the core owned the hand-over, this signal
    // was dropped and the process never exited.
    lab.signal(pid, "TERM");
    assert_eq!(
        lab.wait(pid, Duration::from_secs(5)),
        Some(Some(0)),
        "havip must exit 0 after SIGTERM during a step-down\n{}",
        lab.all_logs()
    );
    let took = asked.elapsed();
    let bound = v3_master_down(1, 10);
    // The bound, plus the time to start curl and process exit (no connections are open, so
    // the 1 s grace is not waited).
    assert!(
        took < bound + Duration::from_millis(600),
        "exited {took:?} after the step-down; bound {bound:?}\n{}",
        lab.all_logs()
    );
    assert!(
        !lab.node_has_address(0, IpAddr::V4(VIP)),
        "the VIP is released"
    );
    assert_eq!(lab.wait(curl, Duration::from_secs(2)), Some(Some(0)));
    let answer = lab.log_of("curl.log");
    assert!(
        answer.contains("nobody_took_over"),
        "the drill is answered: {answer:?}"
    );
}
