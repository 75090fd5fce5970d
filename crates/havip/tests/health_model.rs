//! One health model (issue #5): the balancer's own state drives VRRP priority, in real
//! namespaces. Two havip nodes share backends in other namespaces; trackers read the
//! balancer in-process. Needs root (CI runs as root).

#![allow(clippy::unwrap_used)] // test code: a panic is a failed test
#![allow(clippy::disallowed_types)] // the lab measures wall-clock time of real processes

use havip_test_support as support;
use havip_test_support::require_lab;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use support::lab::{node_v4, wait_for, Lab};

const HAVIP: &str = env!("CARGO_BIN_EXE_havip");
const VIP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 200);
const BACKEND_PORT: u16 = 9000;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Nodes 0 and 1 run havip; nodes 2.. are backends answering with their name.
fn config(node: usize, priority: u8, backends: &[usize], health: &str, extra_vrrp: &str) -> String {
    let mut text = format!(
        r#"
[global]
grace = "1s"
[log]
connections = false
[admin]
listen = "{}:8404"
commands = true

[[service]]
name = "api"
listen = "{VIP}:80"
{health}
"#,
        node_v4(node)
    );
    for b in backends {
        text.push_str(&format!(
            "[[service.backend]]\naddress = \"{}:{BACKEND_PORT}\"\n",
            node_v4(*b)
        ));
    }
    text.push_str(&format!(
        r#"
[[tracker]]
name = "backends"
kind = "service"
service = "api"
min_healthy = 1
weight = -50

[[tracker]]
name = "listening"
kind = "listener"
service = "api"
weight = 0

[[vrrp]]
name = "VI_1"
interface = "eth0"
vrid = 42
priority = {priority}
advert_interval = "100ms"
virtual_addresses = ["{VIP}/24"]
track = ["backends", "listening"]
{extra_vrrp}
"#
    ));
    text
}

fn start(lab: &Lab, node: usize, text: &str) -> u32 {
    let path = lab.write(&format!("node{node}.toml"), text);
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
    let ns = lab.nodes[from].clone();
    if cut {
        lab.ns(&ns, &["nft", "add", "table", "inet", "cut"]);
        lab.ns(
            &ns,
            &[
                "nft", "add", "chain", "inet", "cut", "out", "{", "type", "filter", "hook",
                "output", "priority", "0", ";", "}",
            ],
        );
        lab.ns(
            &ns,
            &[
                "nft", "add", "rule", "inet", "cut", "out", "tcp", "dport", "9000", "reject",
                "with", "tcp", "reset",
            ],
        );
    } else {
        lab.ns(&ns, &["nft", "delete", "table", "inet", "cut"]);
    }
}

const HEALTH: &str = r#"[service.health]
check = "tcp"
interval = "500ms"
fast_interval = "200ms"
timeout = "300ms"
rise = 2
fall = 3"#;

#[test]
fn the_vip_leaves_a_master_whose_backends_are_unreachable() {
    require_lab!();
    let _serial = serial();
    let lab = Lab::new("ub", 4);
    for b in [2, 3] {
        lab.start_name_server_on(b, SocketAddr::from(([0, 0, 0, 0], BACKEND_PORT)));
    }
    start(&lab, 0, &config(0, 100, &[2, 3], HEALTH, ""));
    start(&lab, 1, &config(1, 90, &[2, 3], HEALTH, ""));
    assert!(
        wait_holder(&lab, 0, Duration::from_secs(5)).is_some(),
        "{}",
        lab.all_logs()
    );
    std::thread::sleep(Duration::from_secs(1));
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
    std::thread::sleep(Duration::from_millis(500));
    let results = prober.results();
    assert!(
        results.iter().all(|(_, a)| a.is_some()),
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

#[test]
fn a_flapping_backend_does_not_move_the_vip() {
    require_lab!();
    let _serial = serial();
    let lab = Lab::new("fl", 3);
    lab.start_name_server_on(2, SocketAddr::from(([0, 0, 0, 0], BACKEND_PORT)));
    // Checks every second (fast 500 ms, rise 2, fall 3): more often than the default 2 s, so
    // the flapping is seen. Three failures 500 ms ±10 % apart fit in a one-second outage only
    // rarely; when they do, the node's priority drops from 100 to 50 for about a second, and
    // `preempt_delay` is the damping that keeps the VIP: the backup must see the lower
    // priority for 10 s in a row before it takes over.
    let health = "[service.health]\ncheck = \"tcp\"\ninterval = \"1s\"";
    let damping = "preempt_delay = \"10s\"";
    // node0 first: with a preempt delay, whoever is master first keeps the VIP for 10 s.
    start(&lab, 0, &config(0, 100, &[2], health, damping));
    assert!(
        wait_holder(&lab, 0, Duration::from_secs(5)).is_some(),
        "{}",
        lab.all_logs()
    );
    start(&lab, 1, &config(1, 90, &[2], health, damping));
    // A running cluster: every node's first check of the backend has passed (a backend
    // starts on probation, where one failed check marks it down, as in HAProxy).
    for node in 0..2 {
        let passed = wait_for(Duration::from_secs(10), || {
            // Not listening yet counts as "not yet".
            let (_, metrics) = lab.try_ns(
                &lab.client.clone(),
                &[
                    "curl",
                    "-s",
                    &format!("http://{}:8404/metrics", node_v4(node)),
                ],
            );
            metrics
                .lines()
                .any(|l| {
                    l.starts_with("havip_backend_checks_total")
                        && l.contains("result=\"passed\"")
                        && !l.ends_with(" 0")
                })
                .then_some(())
        });
        assert!(
            passed.is_some(),
            "node{node} checked its backend\n{}",
            lab.all_logs()
        );
    }
    // The only backend answers for one second and refuses for the next, for 30 seconds.
    let backend = lab.nodes[2].clone();
    lab.ns(&backend, &["nft", "add", "table", "inet", "flap"]);
    lab.ns(
        &backend,
        &[
            "nft", "add", "chain", "inet", "flap", "in", "{", "type", "filter", "hook", "input",
            "priority", "0", ";", "}",
        ],
    );
    let started = Instant::now();
    let mut down = false;
    let mut moved = Vec::new();
    while started.elapsed() < Duration::from_secs(30) {
        down = !down;
        if down {
            lab.ns(
                &backend,
                &[
                    "nft", "add", "rule", "inet", "flap", "in", "tcp", "dport", "9000", "reject",
                    "with", "tcp", "reset",
                ],
            );
        } else {
            lab.ns(&backend, &["nft", "flush", "chain", "inet", "flap", "in"]);
        }
        let tick = Instant::now();
        while tick.elapsed() < Duration::from_secs(1) {
            let h = holders(&lab);
            if h != vec![0] {
                moved.push((started.elapsed(), h));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    lab.ns(&backend, &["nft", "flush", "chain", "inet", "flap", "in"]);
    // The flapping was real: checks failed on node0.
    let metrics = lab.ns(
        &lab.client.clone(),
        &["curl", "-s", &format!("http://{}:8404/metrics", node_v4(0))],
    );
    let failed_checks: u64 = metrics
        .lines()
        .filter(|l| l.starts_with("havip_backend_checks_total") && l.contains("result=\"fail"))
        .filter_map(|l| l.rsplit(" ").next()?.parse::<u64>().ok())
        .sum();
    let marked_down: u64 = metrics
        .lines()
        .filter(|l| l.starts_with("havip_backend_down_transitions_total"))
        .filter_map(|l| l.rsplit(" ").next()?.parse::<u64>().ok())
        .sum();
    eprintln!(
        "flapping: {failed_checks} failed checks and {marked_down} mark-downs on node0, VIP moves: {moved:?}"
    );
    assert!(failed_checks > 0, "the backend did flap:\n{metrics}");
    assert!(
        moved.is_empty(),
        "the VIP moved: {moved:?}\n{}",
        lab.all_logs()
    );
}

#[test]
fn the_drill_hands_over_measures_the_gap_and_restores() {
    require_lab!();
    let _serial = serial();
    let lab = Lab::new("dr", 3);
    lab.start_name_server_on(2, SocketAddr::from(([0, 0, 0, 0], BACKEND_PORT)));
    let pid0 = start(&lab, 0, &config(0, 100, &[2], HEALTH, ""));
    let pid1 = start(&lab, 1, &config(1, 90, &[2], HEALTH, ""));
    let _ = pid0;
    assert!(
        wait_holder(&lab, 0, Duration::from_secs(5)).is_some(),
        "{}",
        lab.all_logs()
    );
    std::thread::sleep(Duration::from_millis(500));
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
    std::thread::sleep(Duration::from_millis(200));
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
    require_lab!();
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

/// Every tracker kind moves the effective priority, read from `/api/status`.
#[test]
fn every_tracker_kind_moves_the_priority() {
    require_lab!();
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
    let text = format!(
        r#"
[log]
connections = false
[admin]
listen = "127.0.0.1:8404"

[[service]]
name = "api"
listen = "{VIP}:80"
[service.limits]
max_conns = 1
[service.health]
check = "tcp"
interval = "300ms"
fast_interval = "100ms"
rise = 1
fall = 1
[[service.backend]]
address = "{backend}:{BACKEND_PORT}"

[[tracker]]
name = "script"
kind = "script"
command = ["/bin/sh", "-c", "test -e {ok}"]
interval = "200ms"
weight = -10

[[tracker]]
name = "slow-script"
kind = "script"
command = "/bin/sleep 5"
interval = "200ms"
timeout = "100ms"
weight = -100

[[tracker]]
name = "slow-script-failing"
kind = "script"
command = "/bin/sleep 5"
interval = "200ms"
timeout = "100ms"
timeout_counts_as = "failure"
weight = -1

[[tracker]]
name = "pid"
kind = "process"
pidfile = "{pidfile}"
interval = "200ms"
weight = -20

[[tracker]]
name = "file"
kind = "file"
path = "{number}"
interval = "200ms"
weight = 2

[[tracker]]
name = "link"
kind = "interface"
interface = "x0"
weight = -40

[[tracker]]
name = "backends"
kind = "service"
service = "api"
weight = -50

[[tracker]]
name = "listening"
kind = "listener"
service = "api"
weight = -5

[[vrrp]]
name = "VI_1"
interface = "eth0"
vrid = 42
priority = 200
advert_interval = "100ms"
virtual_addresses = ["{VIP}/24"]
track = ["script", "slow-script", "slow-script-failing", "pid", "file", "link", "backends", "listening"]
"#,
        backend = node_v4(1),
        ok = ok_file.display(),
        pidfile = pidfile.display(),
        number = number_file.display(),
    );
    start(&lab, 0, &text);
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
        std::thread::sleep(Duration::from_millis(100));
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
