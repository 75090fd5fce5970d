//! One health model (issue #5): the balancer's own state drives VRRP priority, in real
//! namespaces. Two havip nodes share backends in other namespaces; trackers read the
//! balancer in-process. Needs root, `ip netns`, nftables and curl (the guard skips loudly
//! outside CI and fails under CI=true).

#![allow(clippy::unwrap_used)] // test code: a panic is a failed test
#![allow(clippy::disallowed_types)] // the lab measures wall-clock time of real processes

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use havip_test_support::lab::{node_v4, Lab};
use havip_test_support::nft::Direction;
use havip_test_support::node_config::{Health, NodeConfig, Service, Tracker, Vrrp};
use havip_test_support::{require, serial, wait_for, Need};

const HAVIP: &str = env!("CARGO_BIN_EXE_havip");
const VIP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 200);
const BACKEND_PORT: u16 = 9000;

/// Node `node` (0 or 1) runs havip with `vrrp`, in front of the backends on nodes
/// `backends` (2.., each answering with its name), checked with `health`; trackers read the
/// balancer: `backends` (-50 when none is up) and `listening`.
fn config(node: usize, backends: &[usize], health: Health, vrrp: Vrrp) -> NodeConfig {
    let mut service = Service::new("api", SocketAddr::new(IpAddr::V4(VIP), 80)).health(health);
    for b in backends {
        service = service.backend(SocketAddr::new(IpAddr::V4(node_v4(*b)), BACKEND_PORT));
    }
    NodeConfig::new()
        .grace("1s")
        .log_connections(false)
        .admin(format!("{}:8404", node_v4(node)))
        .admin_commands()
        .service(service)
        .tracker(
            Tracker::service("backends", "api")
                .min_healthy(1)
                .weight(-50),
        )
        .tracker(Tracker::listener("listening", "api").weight(0))
        .vrrp(vrrp)
}

/// VI_1 (VRID 42) with the VIP, 100 ms adverts, tracking both trackers.
fn vi_1(priority: u8) -> Vrrp {
    Vrrp::new("VI_1", 42)
        .priority(priority)
        .advert_interval("100ms")
        .vip(format!("{VIP}/24"))
        .track(&["backends", "listening"])
}

fn start(lab: &Lab, node: usize, config: &NodeConfig) -> u32 {
    let path = lab.write(&format!("node{node}.toml"), &config.to_toml());
    lab.spawn(
        &lab.nodes[node].clone(),
        HAVIP,
        &["run", "--config", &path.display().to_string()],
        &format!("node{node}.log"),
        &[],
    )
}

fn holders(lab: &Lab) -> Vec<usize> {
    lab.holders(IpAddr::V4(VIP))
        .into_iter()
        .filter(|i| *i < 2)
        .collect()
}

fn wait_holder(lab: &Lab, node: usize, timeout: Duration) -> Option<Instant> {
    wait_for(timeout, || (holders(lab) == vec![node]).then(Instant::now))
}

/// Block (or allow) node `from`'s traffic to the backends, with nftables in its namespace.
fn cut_backends(lab: &Lab, from: usize, cut: bool) {
    if cut {
        lab.block_tcp_port(from, Direction::Outgoing, BACKEND_PORT);
    } else {
        lab.unblock_tcp_port(from, Direction::Outgoing, BACKEND_PORT);
    }
}

fn health() -> Health {
    Health::tcp()
        .interval("500ms")
        .fast_interval("200ms")
        .timeout("300ms")
        .rise(2)
        .fall(3)
}

/// Node `node`'s metrics, read from the client namespace ("" while it does not answer).
fn metrics(lab: &Lab, node: usize) -> String {
    let url = format!("http://{}:8404/metrics", node_v4(node));
    lab.try_ns(
        &lab.client.clone(),
        &["curl", "-s", "--max-time", "2", &url],
    )
    .1
}

/// The sum of the samples of `name` whose labels contain `labels`.
fn sum(metrics: &str, name: &str, labels: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter(|l| l.contains(labels))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// Every sample of `name`, as text (to compare a family before and after).
fn samples(metrics: &str, name: &str) -> Vec<String> {
    metrics
        .lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .map(str::to_owned)
        .collect()
}

/// Wait until node `node`'s first check of a backend has passed (a backend starts on
/// probation, where one failed check marks it down, as in HAProxy).
fn wait_first_check(lab: &Lab, node: usize) {
    let passed = wait_for(Duration::from_secs(10), || {
        // Not listening yet counts as "not yet".
        (sum(
            &metrics(lab, node),
            "havip_backend_checks_total",
            "result=\"passed\"",
        ) > 0)
            .then_some(())
    });
    assert!(
        passed.is_some(),
        "node{node} checked its backend\n{}",
        lab.all_logs()
    );
}

/// Node `node`'s VRRP instance as `/api/status` shows it.
fn vrrp_status(lab: &Lab, node: usize) -> Option<serde_json::Value> {
    let url = format!("http://{}:8404/api/status", node_v4(node));
    let (_, out) = lab.try_ns(
        &lab.client.clone(),
        &["curl", "-s", "--max-time", "2", &url],
    );
    let json: serde_json::Value = serde_json::from_str(&out).ok()?;
    Some(json["vrrp"][0].clone())
}

/// Node `node`'s effective VRRP priority.
fn priority(lab: &Lab, node: usize) -> Option<u64> {
    vrrp_status(lab, node)?["priority"].as_u64()
}

/// Node `node`'s VRRP state ("MASTER", "BACKUP", ...).
fn vrrp_state(lab: &Lab, node: usize) -> Option<String> {
    Some(vrrp_status(lab, node)?["state"].as_str()?.to_string())
}

#[test]
fn the_vip_leaves_a_master_whose_backends_are_unreachable() {
    require!(Need::Root, Need::Netns, Need::Nft, Need::Curl);
    let _serial = serial();
    let lab = Lab::new("ub", 4);
    for b in [2, 3] {
        lab.start_name_server_on(b, SocketAddr::from(([0, 0, 0, 0], BACKEND_PORT)));
    }
    start(&lab, 0, &config(0, &[2, 3], health(), vi_1(100)));
    start(&lab, 1, &config(1, &[2, 3], health(), vi_1(90)));
    assert!(
        wait_holder(&lab, 0, Duration::from_secs(5)).is_some(),
        "{}",
        lab.all_logs()
    );
    // A steady state: both nodes have checked their backends.
    for node in 0..2 {
        wait_first_check(&lab, node);
    }
    let cut = Instant::now();
    cut_backends(&lab, 0, true);
    let moved = wait_holder(&lab, 1, Duration::from_secs(6)).unwrap_or_else(|| {
        panic!("the VIP moves to node1\n{}", lab.all_logs());
    });
    let took = moved.duration_since(cut);
    // (fall × interval) + Master_Down_Interval + 200 ms, with the fast interval after the
    // first failure it is faster still: the bound of issue #5 with this config's numbers.
    let master_down =
        Duration::from_millis(300) + Duration::from_nanos((256 - 90) * 100_000_000 / 256);
    let bound = Duration::from_millis(3 * 500) + master_down + Duration::from_millis(200);
    eprintln!("backends cut: VIP on node1 after {took:?} (bound {bound:?})");
    assert!(took <= bound, "{took:?} > {bound:?}\n{}", lab.all_logs());
    // Clients keep connecting through the VIP, now served by node1.
    let prober = lab.start_prober(
        SocketAddr::new(IpAddr::V4(VIP), 80),
        Duration::from_millis(5),
        Duration::from_secs(2),
    );
    // A hundred attempts, 5 ms apart.
    let made = wait_for(Duration::from_secs(2), || {
        (prober
            .attempts()
            .iter()
            .filter(|a| a.done.is_some())
            .count()
            >= 100)
            .then_some(())
    });
    assert!(made.is_some(), "the client probes\n{}", lab.all_logs());
    let results = prober.results();
    assert!(
        results.len() >= 100 && results.iter().all(|(_, a)| a.is_some()),
        "every connect reaches a backend: {results:?}"
    );
    // Restore: node0's backends come back; preempt (the default) returns the VIP.
    cut_backends(&lab, 0, false);
    assert!(
        wait_holder(&lab, 0, Duration::from_secs(6)).is_some(),
        "{}",
        lab.all_logs()
    );
}

/// What one node's metrics say about the flapping: check counts, mark-downs, VRRP
/// transitions and master changes.
#[derive(Debug, PartialEq)]
struct Flaps {
    passed: u64,
    failed: u64,
    marked_down: u64,
    transitions: Vec<String>,
    master_changes: Vec<String>,
}

impl Flaps {
    fn read(lab: &Lab, node: usize) -> Flaps {
        let m = metrics(lab, node);
        Flaps {
            passed: sum(&m, "havip_backend_checks_total", "result=\"passed\""),
            failed: sum(&m, "havip_backend_checks_total", "result=\"fail"),
            marked_down: sum(&m, "havip_backend_down_transitions_total", ""),
            transitions: samples(&m, "havip_vrrp_transitions_total"),
            master_changes: samples(&m, "havip_vrrp_master_changes_total"),
        }
    }
}

#[test]
fn a_flapping_backend_does_not_move_the_vip() {
    require!(Need::Root, Need::Netns, Need::Nft, Need::Curl);
    let _serial = serial();
    let lab = Lab::new("fl", 3);
    lab.start_name_server_on(2, SocketAddr::from(([0, 0, 0, 0], BACKEND_PORT)));
    // Checks every second (fast 500 ms, rise 2, fall 3): more often than the default 2 s, so
    // the flapping is seen. Three failures 500 ms ±10 % apart fit in a one-second outage only
    // rarely; when they do, the node's priority drops from 100 to 50 for about a second, and
    // `preempt_delay` is the damping that keeps the VIP: the backup must see the lower
    // priority for 10 s in a row before it takes over.
    const RISE: u64 = 2;
    const FALL: u64 = 3;
    let health = || {
        Health::tcp()
            .interval("1s")
            .fast_interval("500ms")
            .rise(RISE as u32)
            .fall(FALL as u32)
    };
    let damped = |priority| vi_1(priority).preempt_delay("10s");
    // node0 first: with a preempt delay, whoever is master first keeps the VIP for 10 s.
    start(&lab, 0, &config(0, &[2], health(), damped(100)));
    assert!(
        wait_holder(&lab, 0, Duration::from_secs(5)).is_some(),
        "{}",
        lab.all_logs()
    );
    start(&lab, 1, &config(1, &[2], health(), damped(90)));
    // A running cluster: every node's first check of the backend has passed, node1 is a
    // backup.
    for node in 0..2 {
        wait_first_check(&lab, node);
    }
    let backup = wait_for(Duration::from_secs(5), || {
        (sum(&metrics(&lab, 1), "havip_vrrp_state", "state=\"BACKUP\"") == 1).then_some(())
    });
    assert!(backup.is_some(), "node1 is a backup\n{}", lab.all_logs());
    let settled = [Flaps::read(&lab, 0), Flaps::read(&lab, 1)];
    // The only backend answers for one second and refuses for the next, for 30 seconds.
    let started = Instant::now();
    let mut down = false;
    let mut moved = Vec::new();
    let mut priorities = Vec::new();
    while started.elapsed() < Duration::from_secs(30) {
        down = !down;
        if down {
            lab.block_tcp_port(2, Direction::Incoming, BACKEND_PORT);
        } else {
            lab.unblock_tcp_port(2, Direction::Incoming, BACKEND_PORT);
        }
        // Watch for the second: time passing is the point.
        let tick = Instant::now();
        while tick.elapsed() < Duration::from_secs(1) {
            let h = holders(&lab);
            if h != vec![0] {
                moved.push((started.elapsed(), h));
            }
            priorities.push(priority(&lab, 0));
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    if down {
        lab.unblock_tcp_port(2, Direction::Incoming, BACKEND_PORT);
    }
    let after = [Flaps::read(&lab, 0), Flaps::read(&lab, 1)];
    let (before0, after0) = (&settled[0], &after[0]);
    let failed_checks = after0.failed - before0.failed;
    let passed_checks = after0.passed - before0.passed;
    let marked_down = after0.marked_down - before0.marked_down;
    let dips = priorities.iter().filter(|p| **p == Some(50)).count();
    eprintln!(
        "flapping: {failed_checks} failed and {passed_checks} passed checks, {marked_down} \
         mark-downs on node0, priority 50 in {dips} of {} looks; VIP moves: {moved:?}",
        priorities.len()
    );
    // The flapping was real: checks failed on node0 during it.
    assert!(failed_checks > 0, "the backend did flap: {after0:?}");
    assert!(
        moved.is_empty(),
        "the VIP moved: {moved:?}\n{}",
        lab.all_logs()
    );
    // Damping, as measured: no VRRP transition and no change of master on either node since
    // the cluster settled (a move too short for the holder checks would show here)...
    for node in 0..2 {
        assert_eq!(
            (&after[node].transitions, &after[node].master_changes),
            (&settled[node].transitions, &settled[node].master_changes),
            "node{node} changed VRRP state while the backend flapped\n{}",
            lab.all_logs()
        );
    }
    // ...and the backend was marked down no more often than rise and fall allow: each
    // mark-down took `fall` failed checks in a row, each one after the first a mark-up of
    // `rise` passed checks before it.
    assert!(
        marked_down * FALL <= failed_checks,
        "{marked_down} mark-downs from {failed_checks} failed checks (fall {FALL})"
    );
    assert!(
        marked_down <= passed_checks / RISE + 1,
        "{marked_down} mark-downs with {passed_checks} passed checks (rise {RISE})"
    );
    // The tracker followed the backend: the priority was 100, or 50 while it was down; a
    // dip is a counted mark-down.
    let answered: Vec<u64> = priorities.iter().flatten().copied().collect();
    assert!(
        answered.len() * 10 >= priorities.len() * 9
            && answered.iter().all(|p| [100, 50].contains(p)),
        "{priorities:?}"
    );
    assert!(dips == 0 || marked_down > 0, "{dips} dips, no mark-down");
}

#[test]
fn the_drill_hands_over_measures_the_gap_and_restores() {
    require!(Need::Root, Need::Netns, Need::Nft, Need::Curl);
    let _serial = serial();
    let lab = Lab::new("dr", 3);
    lab.start_name_server_on(2, SocketAddr::from(([0, 0, 0, 0], BACKEND_PORT)));
    let pid0 = start(&lab, 0, &config(0, &[2], health(), vi_1(100)));
    let pid1 = start(&lab, 1, &config(1, &[2], health(), vi_1(90)));
    let _ = pid0;
    assert!(
        wait_holder(&lab, 0, Duration::from_secs(5)).is_some(),
        "{}",
        lab.all_logs()
    );
    // What the drill checks first: both nodes healthy (master and backup), their backend
    // checked.
    for (node, state) in [(0, "MASTER"), (1, "BACKUP")] {
        wait_first_check(&lab, node);
        let reported = wait_for(Duration::from_secs(5), || {
            (vrrp_state(&lab, node).as_deref() == Some(state)).then_some(())
        });
        assert!(
            reported.is_some(),
            "node{node} is {state}\n{}",
            lab.all_logs()
        );
    }
    let node = |i: usize| format!("{}:8404", node_v4(i));
    let target = format!("{VIP}:80");
    let (ok, out) = lab.try_ns(
        &lab.client.clone(),
        &[
            HAVIP,
            "drill",
            "--node",
            &node(0),
            "--node",
            &node(1),
            "--target",
            &target,
            "--hold",
            "1s",
            "--limit",
            "10s",
        ],
    );
    eprintln!("{out}");
    assert!(ok, "drill succeeds:\n{out}\n{}", lab.all_logs());
    assert!(out.contains(&format!("new master:  {}", node(1))), "{out}");
    let gap_ms: f64 = out
        .split("longest gap ")
        .nth(1)
        .and_then(|r| r.split(" ms").next())
        .and_then(|v| v.parse().ok())
        .expect("gap printed");
    assert!(
        gap_ms <= 50.0,
        "the graceful handover keeps the gap small: {gap_ms} ms\n{out}"
    );
    // Preempt is on: after the restore node0 holds the VIP again.
    assert!(
        out.contains(&format!("after restore the VIP is on {}", node(0))),
        "{out}"
    );
    assert_eq!(holders(&lab), vec![0]);

    // With only one healthy node the drill refuses.
    lab.signal(pid1, "KILL");
    assert!(
        lab.wait(pid1, Duration::from_secs(5)).is_some(),
        "node1 is gone"
    );
    let (ok, out) = lab.try_ns(
        &lab.client.clone(),
        &[
            HAVIP,
            "drill",
            "--node",
            &node(0),
            "--node",
            &node(1),
            "--target",
            &target,
        ],
    );
    assert!(!ok, "{out}");
    assert!(
        out.contains("refusing to drill: 1 healthy node(s) of 2"),
        "{out}"
    );
    assert_eq!(holders(&lab), vec![0], "a refused drill changes nothing");
}

#[test]
fn the_cluster_demo_runs_the_drill_and_cleans_up() {
    require!(Need::Root, Need::Netns);
    let _serial = serial();
    let out = std::process::Command::new("timeout")
        .args(["120", HAVIP, "demo", "--cluster"])
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    for expected in [
        "VIP 10.99.0.100 is on m1",
        "new master:  10.99.0.12:8404",
        "after restore the VIP is on 10.99.0.11:8404",
        "m1 crashed; m2 holds the VIP",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    let gap_ms: f64 = text
        .split("longest gap ")
        .nth(1)
        .and_then(|r| r.split(" ms").next())
        .and_then(|v| v.parse().ok())
        .expect("gap printed");
    assert!(gap_ms <= 100.0, "the drill's gap: {gap_ms} ms\n{text}");
    let left = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&left.stdout).contains("havip-demo"),
        "the demo removed its namespaces"
    );
}

/// One node with a tracker of every kind on VI_1 (priority 200): a script testing that
/// `ok_file` exists, two scripts that time out, the process in `pidfile`, the number in
/// `number_file`, interface x0, the service's backends and its listener (max_conns 1).
fn tracker_config(ok_file: &Path, pidfile: &Path, number_file: &Path) -> NodeConfig {
    let service = Service::new("api", SocketAddr::new(IpAddr::V4(VIP), 80))
        .max_conns(1)
        .health(
            Health::tcp()
                .interval("300ms")
                .fast_interval("100ms")
                .rise(1)
                .fall(1),
        )
        .backend(SocketAddr::new(IpAddr::V4(node_v4(1)), BACKEND_PORT));
    let ok_test = format!("test -e {}", ok_file.display());
    let sh = ["/bin/sh", "-c", ok_test.as_str()];
    let trackers = [
        Tracker::script("script", &sh[..])
            .interval("200ms")
            .weight(-10),
        Tracker::script("slow-script", "/bin/sleep 5")
            .interval("200ms")
            .timeout("100ms")
            .weight(-100),
        Tracker::script("slow-script-failing", "/bin/sleep 5")
            .interval("200ms")
            .timeout("100ms")
            .set("timeout_counts_as", "failure")
            .weight(-1),
        Tracker::process("pid", pidfile.display())
            .interval("200ms")
            .weight(-20),
        Tracker::file("file", number_file.display())
            .interval("200ms")
            .weight(2),
        Tracker::interface("link", "x0").weight(-40),
        Tracker::service("backends", "api").weight(-50),
        Tracker::listener("listening", "api").weight(-5),
    ];
    let vrrp = Vrrp::new("VI_1", 42)
        .priority(200)
        .advert_interval("100ms")
        .vip(format!("{VIP}/24"))
        .track(&[
            "script",
            "slow-script",
            "slow-script-failing",
            "pid",
            "file",
            "link",
            "backends",
            "listening",
        ]);
    let mut config = NodeConfig::new()
        .log_connections(false)
        .admin("127.0.0.1:8404")
        .service(service)
        .vrrp(vrrp);
    for tracker in trackers {
        config = config.tracker(tracker);
    }
    config
}

/// Every tracker kind moves the effective priority, read from `/api/status`.
#[test]
fn every_tracker_kind_moves_the_priority() {
    require!(Need::Root, Need::Netns, Need::Curl);
    let _serial = serial();
    let lab = Lab::new("tk", 2);
    lab.start_name_server_on(1, SocketAddr::from(([0, 0, 0, 0], BACKEND_PORT)));
    let ns = lab.nodes[0].clone();
    // A second interface to track.
    lab.ns(
        &ns,
        &[
            "ip", "link", "add", "x0", "type", "veth", "peer", "name", "x1",
        ],
    );
    lab.ns(&ns, &["ip", "link", "set", "x1", "up"]);
    lab.ns(&ns, &["ip", "link", "set", "x0", "up"]);
    let ok_file = lab.dir.join("ok");
    std::fs::write(&ok_file, "").unwrap();
    let number_file = lab.dir.join("number");
    std::fs::write(&number_file, "3\n").unwrap();
    let sleeper = lab.spawn(&ns, "/bin/sleep", &["120"], "sleep.log", &[]);
    let pidfile = lab.write("sleep.pid", &format!("{sleeper}\n"));
    start(&lab, 0, &tracker_config(&ok_file, &pidfile, &number_file));
    // Safe boot: the slow script never reports (its timeouts count as "unknown"), so the
    // instance waits for its startup_limit before it takes the VIP the steps below use.
    lab.wait_for_sole_holder(IpAddr::V4(VIP), 0, &[], Duration::from_secs(10));
    let priority = || -> Option<u64> {
        let (_, out) = lab.try_ns(&ns, &["curl", "-s", "http://127.0.0.1:8404/api/status"]);
        let json: serde_json::Value = serde_json::from_str(&out).ok()?;
        json["vrrp"][0]["priority"].as_u64()
    };
    let expect = |value: u64, what: &str| {
        let got = wait_for(Duration::from_secs(3), || {
            (priority() == Some(value)).then_some(())
        });
        assert!(
            got.is_some(),
            "{what}: priority {:?}, expected {value}\n{}",
            priority(),
            lab.all_logs()
        );
    };
    // 200 + file 3×2 − the script that times out as a failure (1); the one whose timeout is
    // "unknown" changes nothing.
    expect(205, "start");
    std::fs::remove_file(&ok_file).unwrap();
    expect(195, "script fails (-10)");
    std::fs::write(&ok_file, "").unwrap();
    expect(205, "script passes again");
    lab.signal(sleeper, "KILL");
    expect(185, "process gone (-20)");
    std::fs::write(&number_file, "-4\n").unwrap();
    expect(171, "file says -4 (×2)");
    lab.ns(&ns, &["ip", "link", "set", "x0", "down"]);
    expect(131, "tracked interface down (-40)");
    lab.ns(&ns, &["ip", "link", "set", "x0", "up"]);
    expect(171, "interface up again");
    // Hold the only connection slot: the listener cannot accept (-5).
    let _held = lab.in_ns(&ns, move || {
        let stream = std::net::TcpStream::connect((VIP, 80)).unwrap();
        // The backend's greeting: the balancer has taken this connection (the slot is used).
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut greeting = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(&stream), &mut greeting).unwrap();
        assert_eq!(greeting, "node1\n");
        stream
    });
    let _second = lab.in_ns(&ns, move || {
        std::net::TcpStream::connect((VIP, 80)).unwrap()
    });
    expect(166, "listener stalled at max_conns (-5)");
    drop(_held);
    drop(_second);
    expect(171, "listener accepting again");
    // Backends unreachable (-50).
    lab.ns(
        &lab.nodes[1].clone(),
        &["ip", "link", "set", "eth0", "down"],
    );
    expect(121, "no backend up (-50)");
}
