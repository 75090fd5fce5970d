//! Imported seed pairs run (issue #6 item 5): each seed's balancer config and keepalived
//! config(s), with their addresses moved into the namespace lab, go through `havip import`
//! and `havip check`, and two nodes run the imported configs: one holds the VIP, clients
//! reach the backends through it, and when the master stops the other takes over.
//! Needs root and `ip netns` (the guard skips loudly outside CI and fails under CI=true).

#![allow(clippy::unwrap_used)] // test code: a panic is a failed test
#![allow(clippy::disallowed_types)] // the lab measures wall-clock time of real processes

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use havip_test_support::lab::{node_v4, Lab};
use havip_test_support::prober::probe_once;
use havip_test_support::{require, serial, wait_for, Need};

const HAVIP: &str = env!("CARGO_BIN_EXE_havip");
const VIP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 200);

fn seed(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../import/tests/import/seeds")
        .join(name);
    std::fs::read_to_string(path).unwrap()
}

/// Replace each `(from, to)` in `text`; every `from` must occur, so a changed seed is noticed.
fn moved(text: &str, pairs: &[(&str, String)]) -> String {
    let mut out = text.to_string();
    for (from, to) in pairs {
        assert!(out.contains(from), "{from:?} not in the seed");
        out = out.replace(from, to);
    }
    out
}

/// The backends: nodes 2, 3 and 4 of the lab, each answering with its name.
const BACKENDS: [usize; 3] = [2, 3, 4];

struct Case {
    tag: &'static str,
    /// `--haproxy` or `--nginx`, and the moved text.
    balancer: (&'static str, String),
    /// The keepalived config of node 0 and of node 1.
    keepalived: [String; 2],
    /// Extra files given with --script: (name, text).
    scripts: Vec<(&'static str, String)>,
    /// The port clients use on the VIP.
    port: u16,
    backend_port: u16,
}

/// `havip import` of `case`'s files into the lab directory, then `havip check` of the two
/// node configs it wrote; their paths and the import report.
fn import_and_check(lab: &Lab, case: &Case) -> ([PathBuf; 2], String) {
    let (flag, text) = &case.balancer;
    let balancer = lab.write("balancer.cfg", text);
    let k0 = lab.write("node0.conf", &case.keepalived[0]);
    let k1 = lab.write("node1.conf", &case.keepalived[1]);
    let out_dir: PathBuf = lab.dir.join("out");
    let mut import = Command::new(HAVIP);
    import
        .arg("import")
        .arg(flag)
        .arg(&balancer)
        .arg("--keepalived")
        .arg(&k0)
        .arg("--keepalived")
        .arg(&k1)
        .arg("-o")
        .arg(format!("{}/", out_dir.display()));
    for (name, text) in &case.scripts {
        import.arg("--script").arg(lab.write(name, text));
    }
    let output = import.output().unwrap();
    let report = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "{}: import failed:\n{report}",
        case.tag
    );
    let configs = [out_dir.join("node0.toml"), out_dir.join("node1.toml")];
    for c in &configs {
        let check = Command::new(HAVIP)
            .args(["check", "--config"])
            .arg(c)
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "{}: havip check rejects {}:\n{}{}",
            case.tag,
            c.display(),
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );
    }
    (configs, report)
}

/// Import, check, and run `case` on nodes 0 and 1.
fn run_case(case: Case) {
    let lab = Lab::new(case.tag, 5);
    for b in BACKENDS {
        lab.start_name_server_on(b, SocketAddr::from(([0, 0, 0, 0], case.backend_port)));
    }
    let (configs, report) = import_and_check(&lab, &case);
    let pids: Vec<u32> = configs
        .iter()
        .enumerate()
        .map(|(i, c)| {
            lab.spawn(
                &lab.nodes[i].clone(),
                HAVIP,
                &["run", "--config", &c.display().to_string()],
                &format!("node{i}.log"),
                &[],
            )
        })
        .collect();
    let holders = |lab: &Lab| -> Vec<usize> {
        lab.holders(IpAddr::V4(VIP))
            .into_iter()
            .filter(|i| *i < 2)
            .collect::<Vec<_>>()
    };
    let master = wait_for(Duration::from_secs(20), || {
        let h = holders(&lab);
        (h.len() == 1).then(|| h[0])
    })
    .unwrap_or_else(|| {
        panic!(
            "{}: no single node holds the VIP\n{report}\n{}",
            case.tag,
            lab.all_logs()
        )
    });
    let target = SocketAddr::new(IpAddr::V4(VIP), case.port);
    let answer = |lab: &Lab| {
        let client = lab.client.clone();
        lab.in_ns(&client, move || {
            wait_for(Duration::from_secs(10), || {
                probe_once(target, Duration::from_millis(500))
            })
        })
    };
    let first = answer(&lab).unwrap_or_else(|| {
        panic!(
            "{}: no answer through {target}\n{}",
            case.tag,
            lab.all_logs()
        )
    });
    assert!(
        BACKENDS.iter().any(|b| first == format!("node{b}")),
        "{}: {first:?}",
        case.tag
    );
    // The master stops: the other node takes the VIP and serves.
    lab.signal(pids[master], "TERM");
    let other = 1 - master;
    wait_for(Duration::from_secs(20), || {
        (holders(&lab) == vec![other]).then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "{}: node{other} did not take over\n{}",
            case.tag,
            lab.all_logs()
        )
    });
    assert!(
        answer(&lab).is_some(),
        "{}: no answer after the failover\n{}",
        case.tag,
        lab.all_logs()
    );
    eprintln!(
        "{}: node{master} held the VIP, node{other} took over",
        case.tag
    );
}

fn backends(seed_addrs: [&str; 3]) -> Vec<(&str, String)> {
    seed_addrs
        .iter()
        .zip(BACKENDS)
        .map(|(from, b)| (*from, node_v4(b).to_string()))
        .collect()
}

#[test]
fn the_rke2_seed_imported_runs() {
    require!(Need::Root, Need::Netns);
    let _serial = serial();
    let keepalived = seed("rke2-keepalived.conf");
    let base = [
        ("ens160", "eth0".to_string()),
        ("10.88.88.70", VIP.to_string()),
    ];
    // The guide: the other masters say BACKUP with a lower priority.
    let mut backup = base.to_vec();
    backup.push(("state MASTER", "state BACKUP".to_string()));
    backup.push(("priority 100", "priority 90".to_string()));
    run_case(Case {
        tag: "rk",
        balancer: (
            "--haproxy",
            moved(
                &seed("rke2-haproxy.cfg"),
                &backends(["10.88.88.71", "10.88.88.72", "10.88.88.73"]),
            ),
        ),
        keepalived: [moved(&keepalived, &base), moved(&keepalived, &backup)],
        scripts: vec![("check_apiserver.sh", seed("rke2-check_apiserver.sh"))],
        port: 19345,
        backend_port: 9345,
    });
}

#[test]
fn the_kubesphere_seed_imported_runs() {
    require!(Need::Root, Need::Netns);
    let _serial = serial();
    let keepalived = seed("kubesphere-keepalived.conf");
    let node = |me: usize, peer: usize| {
        moved(
            &keepalived,
            &[
                ("172.16.0.10/24", format!("{VIP}/24")),
                (
                    "unicast_src_ip 172.16.0.2",
                    format!("unicast_src_ip {}", node_v4(me)),
                ),
                ("172.16.0.3", node_v4(peer).to_string()),
            ],
        )
    };
    run_case(Case {
        tag: "ks",
        balancer: (
            "--haproxy",
            moved(
                &seed("kubesphere-haproxy.cfg"),
                &backends(["172.16.0.4", "172.16.0.5", "172.16.0.6"]),
            ),
        ),
        keepalived: [node(0, 1), node(1, 0)],
        scripts: Vec::new(),
        port: 6443,
        backend_port: 6443,
    });
}

#[test]
fn the_docker_seed_imported_runs() {
    require!(Need::Root, Need::Netns);
    let _serial = serial();
    let keepalived = seed("docker-keepalived.conf");
    let base = [("10.53.61.200", VIP.to_string())];
    let mut backup = base.to_vec();
    backup.push(("state MASTER", "state BACKUP".to_string()));
    backup.push(("priority 100", "priority 90".to_string()));
    run_case(Case {
        tag: "dk",
        balancer: (
            "--haproxy",
            moved(
                &seed("docker-haproxy.cfg"),
                &backends(["10.53.61.195", "10.53.61.43", "10.53.61.159"]),
            ),
        ),
        keepalived: [moved(&keepalived, &base), moved(&keepalived, &backup)],
        scripts: Vec::new(),
        port: 9443,
        backend_port: 6443,
    });
}

#[test]
fn the_nginx_seed_imported_runs() {
    require!(Need::Root, Need::Netns);
    let _serial = serial();
    let node = |file: &str, own: &str, me: usize| {
        moved(
            &seed(file),
            &[
                ("ens33", "eth0".to_string()),
                (own, node_v4(me).to_string()),
                ("192.168.139.150", VIP.to_string()),
            ],
        )
    };
    run_case(Case {
        tag: "ng",
        balancer: (
            "--nginx",
            moved(
                &seed("nginx-stream.conf"),
                &backends(["192.168.139.133", "192.168.139.134", "192.168.139.135"]),
            ),
        ),
        keepalived: [
            node("nginx-keepalived-master1.conf", "192.168.139.133", 0),
            node("nginx-keepalived-master2.conf", "192.168.139.134", 1),
        ],
        scripts: Vec::new(),
        port: 8443,
        backend_port: 6443,
    });
}
