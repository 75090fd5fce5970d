//! The seed deployments (issue #5, item 4) end to end: each seed guide's topology in network
//! namespaces, every havip node running the translated config from `examples/seeds/` (read
//! from the file, with the seed's addresses and interface mapped into the lab), in front of
//! real TLS servers (nginx, self-signed certificate made by openssl at test start) that answer
//! `GET /readyz` with 200 "ok" and say who they are (`X-Backend`) and which balancer reached
//! them (`X-Via`, the connection's source address).
//!
//! Each test runs the seed's own drill: the master's balancer fails (every backend it uses
//! becomes unreachable from its namespace, with nftables; its peers still reach them), the VIP
//! moves and clients keep connecting through it; then the failure is repaired and the VIP
//! returns (preemption) or stays (nopreempt, or equal priorities). A client in its own
//! namespace does `GET /readyz` over TLS through the VIP all along, 100 times a second; the
//! assertions are on which node holds the VIP, the client-visible gap against the protocol's
//! formula plus an allowance, and that every failed request lies inside an expected gap.
//!
//! Seed addresses map to the lab's 10.77.0.0/24 keeping the last octet of the VIP:
//! seed 000 10.88.88.70 -> 10.77.0.70, 001 172.16.0.10 -> 10.77.0.10, 004 192.168.139.150 ->
//! 10.77.0.150; node addresses map in order to 10.77.0.11, .12, ...
//!
//! Needs root, `ip netns`, nginx, openssl, nftables and curl (CI installs them; the guard
//! skips loudly outside CI and fails under CI=true).

#![allow(clippy::unwrap_used)] // test code: a panic is a failed test
#![allow(clippy::disallowed_types)] // the lab measures wall-clock time of real processes

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use havip_test_support::adverts::AdvertWatch;
use havip_test_support::lab::{node_v4, Lab};
use havip_test_support::nft::Direction;
use havip_test_support::prober::{Prober, Served};
use havip_test_support::tls_probe::TlsProbe;
use havip_test_support::wait::watch;
use havip_test_support::{nginx, pki, require, serial, wait_for, Need};

const HAVIP: &str = env!("CARGO_BIN_EXE_havip");

/// What every seed test needs.
macro_rules! require_seed_tools {
    () => {
        require!(
            Need::Root,
            Need::Netns,
            Need::Nginx,
            Need::Openssl,
            Need::Nft,
            Need::Curl
        );
    };
}

/// havip's in-process trackers look every 100 ms (`vrrp::tracking::IN_PROCESS_PERIOD`).
const TRACKER_PERIOD: Duration = Duration::from_millis(100);
/// The client's request rate through the VIP: one every 10 ms, each on its own task, so a
/// request that hangs until its timeout (sent to a node that just lost the VIP) does not
/// blind the others.
const PROBE_EVERY: Duration = Duration::from_millis(10);
/// At most this many requests are under way at one moment (a TLS request through the lab
/// takes well under 80 ms): the most a single moment (a client's ARP entry flipping) can fail.
const PROBE_WORKERS: u32 = 8;

// ---------------------------------------------------------------------------------------
// The TLS backends

/// A self-signed certificate and key in the lab directory, shared by all backends.
fn self_signed_cert(lab: &Lab) -> (PathBuf, PathBuf) {
    pki::self_signed(&lab.dir, "kube-apiserver")
}

/// nginx serving TLS on 0.0.0.0:`port` in node `node`'s namespace, saying who it is.
fn start_backend(lab: &Lab, cert: &(PathBuf, PathBuf), node: usize, name: &str, port: u16) {
    nginx::start_tls_backend(lab, cert, node, name, port);
}

// ---------------------------------------------------------------------------------------
// The configs: the example files, mapped into the lab

fn example(file: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/seeds")
        .join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Replace each seed address by its lab address, as whole addresses only (10.88.88.7 must not
/// match inside 10.88.88.70).
fn map_addresses(text: &str, map: &[(&str, String)]) -> String {
    let mut out = text.to_string();
    for (from, to) in map {
        let mut result = String::new();
        let mut rest = out.as_str();
        while let Some(i) = rest.find(from) {
            let after = &rest[i + from.len()..];
            let before_ok = !rest[..i].ends_with(|c: char| c.is_ascii_digit() || c == '.');
            let after_ok = !after.starts_with(|c: char| c.is_ascii_digit());
            result.push_str(&rest[..i]);
            result.push_str(if before_ok && after_ok { to } else { from });
            rest = after;
        }
        result.push_str(rest);
        out = result;
    }
    out
}

/// Set the one top-level line `key = ...` (a per-node setting of the example) to `value`.
fn set_key(text: &str, key: &str, value: &str) -> String {
    let prefix = format!("{key} = ");
    let count = text.lines().filter(|l| l.starts_with(&prefix)).count();
    assert_eq!(count, 1, "the example has one `{key} = ` line");
    text.lines()
        .map(|l| {
            if l.starts_with(&prefix) {
                format!("{key} = {value}   # per node (seeds.rs)")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

fn start_havip(lab: &Lab, node: usize, config: &str) -> u32 {
    let path = lab.write(&format!("havip{node}.toml"), config);
    let check = Command::new(HAVIP)
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "the mapped config is valid:\n{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    lab.spawn(
        &lab.nodes[node].clone(),
        HAVIP,
        &["run", "--config", &path.display().to_string()],
        &format!("havip{node}.log"),
        &[],
    )
}

/// The first VRRP instance's status from node `node`'s admin endpoint.
fn vrrp_status(lab: &Lab, node: usize, admin: &str) -> serde_json::Value {
    let (ok, body) = lab.try_ns(
        &lab.nodes[node].clone(),
        &[
            "curl",
            "-s",
            "--max-time",
            "2",
            &format!("http://{admin}/api/status"),
        ],
    );
    assert!(ok, "admin of node{node}: {body}");
    let status: serde_json::Value = serde_json::from_str(&body).unwrap();
    status["vrrp"][0].clone()
}

/// Make every backend on `port` unreachable from node `node` (its own included): TCP resets
/// for its connects, in its namespace's output path. Replies of its own servers to others
/// leave from that port, not to it, so its peers still reach them.
fn cut(lab: &Lab, node: usize, port: u16, on: bool) {
    if on {
        lab.block_tcp_port(node, Direction::Outgoing, port);
    } else {
        lab.unblock_tcp_port(node, Direction::Outgoing, port);
    }
}

// ---------------------------------------------------------------------------------------
// The client: TLS requests through the VIP, and what they saw

/// Requests through the VIP and the reasons of failed ones.
struct Client {
    prober: Prober,
}

fn start_client(lab: &Lab, target: SocketAddr, duration: Duration) -> Client {
    // Connecting on the lab's bridge takes well under a millisecond: 200 ms only expires for
    // a SYN sent to a node that no longer holds the VIP.
    let probe = TlsProbe::new(Duration::from_millis(200), Duration::from_secs(1));
    // A request takes at most the connect and three I/O steps (handshake, request, reply).
    let longest = Duration::from_millis(200) + Duration::from_secs(3);
    let prober = lab.start_prober_with(target, PROBE_EVERY, duration, longest, move |t| {
        let reply = probe.get(t, "/readyz")?;
        match (
            reply.status,
            reply.body.as_str(),
            reply.header("x-backend"),
            reply.header("x-via"),
        ) {
            (200, "ok", Some(backend), Some(via)) => Ok(Served {
                at: reply.connected,
                answer: format!("{backend} via {via}"),
            }),
            _ => Err(format!("unexpected reply {reply:?}")),
        }
    });
    Client { prober }
}

impl Client {
    /// Every finished request on the service's timeline (see `Prober::results`).
    fn results(&self) -> Vec<(Instant, Option<String>)> {
        self.prober.results()
    }

    /// Wait until a request was answered through `node`'s balancer at or after `after`.
    fn first_via(&self, node: usize, after: Instant, timeout: Duration) -> Option<Instant> {
        let via = node_v4(node).to_string();
        wait_for(timeout, || {
            self.prober
                .attempts()
                .iter()
                .filter_map(|a| Some((a.served_at()?, a.answer()?)))
                .filter(|(at, answer)| *at >= after && via_of(answer) == Some(via.as_str()))
                .map(|(at, _)| at)
                .min()
        })
    }

    /// Wait until at least `count` requests have finished; they are all there is so far.
    fn wait_finished(&self, count: usize, timeout: Duration) {
        let done = wait_for(timeout, || {
            let finished = self
                .prober
                .attempts()
                .iter()
                .filter(|a| a.done.is_some())
                .count();
            (finished >= count).then_some(())
        });
        assert!(
            done.is_some(),
            "{count} requests did not finish within {timeout:?}"
        );
    }

    /// Why requests started in [from, to] failed: each distinct reason with its count.
    fn reasons(&self, from: Instant, to: Instant) -> String {
        let mut tally = std::collections::BTreeMap::<String, usize>::new();
        for e in self.errors_between(from, to) {
            *tally.entry(e).or_default() += 1;
        }
        let parts: Vec<String> = tally.iter().map(|(e, n)| format!("{n} x {e}")).collect();
        if parts.is_empty() {
            "none".into()
        } else {
            parts.join("; ")
        }
    }

    fn errors_between(&self, from: Instant, to: Instant) -> Vec<String> {
        self.prober.errors_between(from, to)
    }
}

/// Before a drill: the first requests through the VIP all succeed, all through node `via`'s
/// balancer; their answers.
fn warm_up(lab: &Lab, client: &Client, started: Instant, via: usize) -> Vec<String> {
    client.wait_finished(60, Duration::from_secs(5));
    let warm: Vec<String> = client
        .results()
        .into_iter()
        .filter_map(|(_, a)| a)
        .collect();
    assert!(
        client.results().iter().all(|(_, a)| a.is_some()) && warm.len() > 50,
        "requests before the drill succeed: {:?}\n{}",
        client.errors_between(started, Instant::now()),
        lab.all_logs()
    );
    assert!(
        warm.iter()
            .all(|a| via_of(a) == Some(&node_v4(via).to_string())),
        "{warm:?}"
    );
    warm
}

fn via_of(answer: &str) -> Option<&str> {
    answer.split_once(" via ").map(|(_, via)| via)
}

fn backend_of(answer: &str) -> Option<&str> {
    answer.split_once(" via ").map(|(backend, _)| backend)
}

/// A run of failed requests (in order of their start), with the successes around it.
#[derive(Debug, Clone, Copy)]
struct Outage {
    /// Start of the last successful request before the run.
    before: Option<Instant>,
    first_failure: Instant,
    last_failure: Instant,
    /// Start of the first successful request after the run.
    after: Option<Instant>,
    failures: usize,
}

impl Outage {
    /// What a client saw: from its last success to its next one.
    fn gap(&self) -> Duration {
        match (self.before, self.after) {
            (Some(b), Some(a)) => a.duration_since(b),
            _ => Duration::MAX,
        }
    }
}

/// The runs of failed requests among those started in [from, to].
fn outages(results: &[(Instant, Option<String>)], from: Instant, to: Instant) -> Vec<Outage> {
    let mut out: Vec<Outage> = Vec::new();
    let mut last_ok: Option<Instant> = None;
    let mut open: Option<Outage> = None;
    for (at, answer) in results {
        let inside = *at >= from && *at <= to;
        match answer {
            Some(_) => {
                if let Some(mut o) = open.take() {
                    o.after = Some(*at);
                    out.push(o);
                }
                last_ok = Some(*at);
            }
            None if inside => match &mut open {
                Some(o) => {
                    o.last_failure = *at;
                    o.failures += 1;
                }
                None => {
                    open = Some(Outage {
                        before: last_ok,
                        first_failure: *at,
                        last_failure: *at,
                        after: None,
                        failures: 1,
                    })
                }
            },
            None => {}
        }
    }
    out.extend(open);
    out
}

// ---------------------------------------------------------------------------------------
// VRRP helpers

/// VRRPv2 Skew_Time (RFC 3768 6.1): (256 - priority) / 256 s, whatever the advert interval.
fn v2_skew(priority: u8) -> Duration {
    Duration::from_nanos((256 - u64::from(priority)) * 1_000_000_000 / 256)
}

/// VRRPv2 Master_Down_Interval (RFC 3768 6.1): 3 × Advertisement_Interval + Skew_Time.
fn v2_master_down(priority: u8, interval: Duration) -> Duration {
    interval * 3 + v2_skew(priority)
}

/// The nodes among `among` that hold `vip`.
fn holders(lab: &Lab, vip: Ipv4Addr, among: &[usize]) -> Vec<usize> {
    among
        .iter()
        .copied()
        .filter(|i| lab.node_has_address(*i, IpAddr::V4(vip)))
        .collect()
}

fn wait_sole_holder(
    lab: &Lab,
    vip: Ipv4Addr,
    among: &[usize],
    node: usize,
    timeout: Duration,
) -> Option<Instant> {
    wait_for(timeout, || {
        (holders(lab, vip, among) == vec![node]).then(Instant::now)
    })
}

/// Priority-0 advert of `from` after `after`, and the first advert of `to` after that.
fn handover_on_wire(
    watch: &AdvertWatch,
    from: usize,
    to: usize,
    after: Instant,
) -> Option<(Instant, Instant)> {
    let released = watch
        .adverts()
        .into_iter()
        .find(|a| a.source == IpAddr::V4(node_v4(from)) && a.priority == 0 && a.at >= after)?;
    let taken = watch.first_from_after(IpAddr::V4(node_v4(to)), released.at)?;
    Some((released.at, taken.at))
}

/// Hold for `duration` (time passing is the point), checking every 100 ms that `node` alone
/// holds the VIP; the moments it did not, if any.
fn watch_holder(
    lab: &Lab,
    vip: Ipv4Addr,
    among: &[usize],
    node: usize,
    duration: Duration,
) -> Vec<(Duration, Vec<usize>)> {
    watch(duration, Duration::from_millis(100), || {
        let h = holders(lab, vip, among);
        (h != vec![node]).then_some(h)
    })
}

// ---------------------------------------------------------------------------------------
// Seed 000: RKE2, three masters

const S0_VIP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 70);
const S0_PORT: u16 = 19345;
const S0_SUPERVISOR: u16 = 9345;
/// master1 100 as in the seed; the backups "50" of the seed's comment, made distinct.
const S0_PRIORITIES: [u8; 3] = [100, 50, 40];
const S0_NODES: [usize; 3] = [0, 1, 2];
/// The seed's advert interval.
const S0_INTERVAL: Duration = Duration::from_secs(1);

fn seed_000_config(node: usize) -> String {
    let text = example("000-rke2.toml");
    let text = set_key(&text, "priority", &S0_PRIORITIES[node].to_string());
    let text = text.replace("interface = \"ens160\"", "interface = \"eth0\"");
    map_addresses(
        &text,
        &[
            ("10.88.88.70", S0_VIP.to_string()),
            ("10.88.88.71", node_v4(0).to_string()),
            ("10.88.88.72", node_v4(1).to_string()),
            ("10.88.88.73", node_v4(2).to_string()),
        ],
    )
}

/// Seed 000's drill (its section 3.2: stop HAProxy on the master, the VIP moves to another
/// master): here the master's supervisors all become unreachable from it. Its weight-0
/// trackers put it in Fault: priority 0 on the wire, master2 (50) takes over after its
/// Skew_Time. When the supervisors are reachable again master1 leaves Fault and, preempting,
/// takes the VIP back after its Master_Down_Interval. master3 (40) never holds it.
#[test]
fn seed_000_rke2_three_masters_the_vip_follows_a_working_balancer() {
    require_seed_tools!();
    let _serial = serial();
    let lab = Lab::new("s0", 3);
    let cert = self_signed_cert(&lab);
    for node in 0..3 {
        start_backend(
            &lab,
            &cert,
            node,
            &format!("k8sm{}", node + 1),
            S0_SUPERVISOR,
        );
    }
    for node in 0..3 {
        start_havip(&lab, node, &seed_000_config(node));
    }
    let (all, interval) = (S0_NODES, S0_INTERVAL);
    assert!(
        wait_sole_holder(
            &lab,
            S0_VIP,
            &all,
            0,
            v2_master_down(100, interval) + Duration::from_secs(2)
        )
        .is_some(),
        "master1 (priority 100) holds the VIP\n{}",
        lab.all_logs()
    );
    let status = vrrp_status(&lab, 0, "127.0.0.1:1080");
    assert_eq!(status["version"], 2, "{status}");
    assert_eq!(status["vrid"], 51, "{status}");
    assert_eq!(status["state"], "MASTER", "{status}");
    let watch = lab.start_advert_watch(51, false);
    let started = Instant::now();
    let client = start_client(
        &lab,
        SocketAddr::new(IpAddr::V4(S0_VIP), S0_PORT),
        Duration::from_secs(40),
    );

    // Before the drill: every request succeeds, through master1, round robin over the three.
    let warm = warm_up(&lab, &client, started, 0);
    for backend in ["k8sm1", "k8sm2", "k8sm3"] {
        assert!(
            warm.iter().any(|a| backend_of(a) == Some(backend)),
            "round robin reaches {backend}: {warm:?}"
        );
    }

    let restore_at = seed_000_drill(&lab, &client, &watch, started);
    seed_000_restore(&lab, &client, &watch, restore_at);
}

/// Seed 000's drill: master1 reaches no supervisor, master2 takes over; when the repair
/// starts.
fn seed_000_drill(lab: &Lab, client: &Client, watch: &AdvertWatch, started: Instant) -> Instant {
    let all = S0_NODES;
    // The drill: master1 reaches no supervisor.
    let cut_at = Instant::now();
    cut(lab, 0, S0_SUPERVISOR, true);
    let moved = wait_sole_holder(lab, S0_VIP, &all, 1, Duration::from_secs(5))
        .unwrap_or_else(|| panic!("the VIP moves to master2\n{}", lab.all_logs()));
    let served = client
        .first_via(1, cut_at, Duration::from_secs(3))
        .expect("clients are served through master2");
    // Time passing is the point: a second of service through the new master, in which no
    // request may fail.
    std::thread::sleep(Duration::from_secs(1));
    let restore_at = Instant::now();
    let (released, taken) = handover_on_wire(watch, 0, 1, cut_at).unwrap_or_else(|| {
        panic!(
            "master1 sends priority 0 and master2 advertises: {:?}",
            watch.adverts()
        )
    });
    let drill = outages(&client.results(), started, restore_at);
    // Passive detection needs max_fails (3) failed client requests, each trying every
    // supervisor; the tracker needs fall (2) looks; then a backup of priority 50 waits its
    // Skew_Time after the priority-0 advert.
    let bound = PROBE_EVERY * 3 * 2 + TRACKER_PERIOD * 2 + v2_skew(50) + Duration::from_millis(300);
    let on_wire = taken.duration_since(released);
    let took = moved.duration_since(cut_at);
    assert!(
        on_wire <= v2_skew(50) + Duration::from_millis(100),
        "{on_wire:?}\n{}",
        lab.all_logs()
    );
    assert_eq!(
        drill.len(),
        1,
        "one outage, nothing failed outside it: {drill:?}\n{:?}",
        client.errors_between(started, restore_at)
    );
    let gap = drill[0].gap();
    eprintln!(
        "seed 000 drill: VIP on master2 {took:?} after the cut (bound {bound:?}); first request \
         served via master2 started {:?} after the cut; priority 0 -> master2's first advert \
         {on_wire:?} (Skew_Time {:?}); client gap {gap:?}, {} failed requests ({}), none outside",
        served.duration_since(cut_at),
        v2_skew(50),
        drill[0].failures,
        client.reasons(cut_at, restore_at)
    );
    assert!(drill[0].first_failure >= cut_at, "{drill:?}");
    assert!(
        gap <= bound,
        "client gap {gap:?} > {bound:?}\n{}",
        lab.all_logs()
    );
    assert!(
        took <= bound,
        "takeover {took:?} > {bound:?}\n{}",
        lab.all_logs()
    );
    let status = vrrp_status(lab, 0, "127.0.0.1:1080");
    assert_eq!(status["state"], "FAULT", "{status}");
    restore_at
}

/// Seed 000's restore: the supervisors are back, master1 preempts; master3 never advertised.
fn seed_000_restore(lab: &Lab, client: &Client, watch: &AdvertWatch, restore_at: Instant) {
    let (all, interval) = (S0_NODES, S0_INTERVAL);
    // Restore: the supervisors are reachable again. master1 sees them up after rise (2)
    // passing checks (the next check is at most down_interval, 5 s, away; the second follows
    // after fast_interval, 500 ms), leaves Fault and preempts after Master_Down_Interval.
    cut(lab, 0, S0_SUPERVISOR, false);
    let back = wait_sole_holder(lab, S0_VIP, &all, 0, Duration::from_secs(15))
        .unwrap_or_else(|| panic!("the VIP returns to master1\n{}", lab.all_logs()));
    let returned = back.duration_since(restore_at);
    let return_bound = Duration::from_millis(5_000 + 500 + 200)
        + TRACKER_PERIOD
        + v2_master_down(100, interval)
        + Duration::from_millis(500);
    client
        .first_via(0, back, Duration::from_secs(2))
        .expect("clients are served through master1 again");
    // Time passing is the point: a second of service after the return, for the count of
    // failed requests below.
    std::thread::sleep(Duration::from_secs(1));
    let end = Instant::now();
    let after = outages(&client.results(), restore_at, end);
    eprintln!(
        "seed 000 restore: VIP back on master1 {returned:?} after the repair (bound \
         {return_bound:?}, at least Master_Down_Interval {:?}); failed requests while it \
         returned: {} ({}), longest gap {:?}",
        v2_master_down(100, interval),
        after.iter().map(|o| o.failures).sum::<usize>(),
        client.reasons(restore_at, end),
        after.iter().map(Outage::gap).max().unwrap_or_default()
    );
    assert!(
        returned >= v2_master_down(100, interval) && returned <= return_bound,
        "{returned:?}\n{}",
        lab.all_logs()
    );
    // A handover between two live masters: only requests caught mid-exchange at the moment
    // the client's ARP entry flips may fail, at most one per client thread.
    for o in &after {
        assert!(
            o.failures <= PROBE_WORKERS as usize && o.gap() <= Duration::from_millis(150),
            "preemption costs clients at most a few requests: {after:?}\n{}",
            lab.all_logs()
        );
    }
    assert!(
        !watch
            .adverts()
            .iter()
            .any(|a| a.source == IpAddr::V4(node_v4(2))),
        "master3 (priority 40) never advertised (was never master)"
    );
}

// ---------------------------------------------------------------------------------------
// Seed 001: KubeSphere, two dedicated balancers with unicast VRRP

const S1_VIP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 10);
const S1_PORT: u16 = 6443;
const S1_PAIR: [usize; 2] = [0, 1];
/// The seed's advert interval.
const S1_INTERVAL: Duration = Duration::from_secs(1);

fn seed_001_config(node: usize) -> String {
    let text = example("001-kubesphere.toml");
    // The second balancer: unicast_src_ip and unicast_peer swapped.
    let (own, peer) = if node == 0 { (0, 1) } else { (1, 0) };
    let text = set_key(&text, "source", &format!("\"{}\"", node_v4(own)));
    let text = set_key(&text, "unicast_peers", &format!("[\"{}\"]", node_v4(peer)));
    map_addresses(
        &text,
        &[
            ("172.16.0.10", S1_VIP.to_string()),
            ("172.16.0.4", node_v4(2).to_string()),
            ("172.16.0.5", node_v4(3).to_string()),
            ("172.16.0.6", node_v4(4).to_string()),
        ],
    )
}

/// Seed 001's drill (its "verify high availability": stop HAProxy on the balancer holding
/// the address, the address moves to the other one; start it again): here the master's
/// apiservers all become unreachable from it. Both balancers have priority 100 and two
/// trackers of weight +2: a healthy one advertises 104, the failing master drops to 102, and
/// the other, strictly higher, preempts after its Master_Down_Interval. After the repair both
/// are at 104 again, and with equal priorities nobody preempts: the address stays.
#[test]
fn seed_001_kubesphere_unicast_pair_the_vip_moves_and_stays() {
    require_seed_tools!();
    let _serial = serial();
    let lab = Lab::new("s1", 5);
    let cert = self_signed_cert(&lab);
    for (i, node) in [2, 3, 4].into_iter().enumerate() {
        start_backend(
            &lab,
            &cert,
            node,
            &format!("kube-apiserver-{}", i + 1),
            6443,
        );
    }
    for node in [0, 1] {
        // As the clouds that made the guide use unicast do.
        lab.drop_vrrp_multicast(node);
        start_havip(&lab, node, &seed_001_config(node));
    }
    let (pair, interval) = (S1_PAIR, S1_INTERVAL);
    let first = wait_for(
        v2_master_down(104, interval) + Duration::from_secs(3),
        || {
            let h = holders(&lab, S1_VIP, &pair);
            (h.len() == 1).then(|| h[0])
        },
    );
    assert!(
        first.is_some(),
        "one balancer holds the address\n{}",
        lab.all_logs()
    );
    // Equal priorities: whoever timed out first is master (two at once resolve to the higher
    // address within an interval). Wait until that has settled (one master, one backup, by
    // their own account), then see who it is.
    let settled = wait_for(Duration::from_secs(5), || {
        let mut states: Vec<String> = pair
            .iter()
            .map(|n| vrrp_status(&lab, *n, "127.0.0.1:8404")["state"].to_string())
            .collect();
        states.sort();
        (states == ["\"BACKUP\"", "\"MASTER\""]).then_some(())
    });
    assert!(
        settled.is_some(),
        "one master and one backup\n{}",
        lab.all_logs()
    );
    let h = holders(&lab, S1_VIP, &pair);
    assert_eq!(h.len(), 1, "{h:?}\n{}", lab.all_logs());
    let master = h[0];
    for node in pair {
        let s = vrrp_status(&lab, node, "127.0.0.1:8404");
        assert_eq!(s["priority"], 104, "100 + 2 + 2 while healthy: {s}");
    }
    let started = Instant::now();
    let client = start_client(
        &lab,
        SocketAddr::new(IpAddr::V4(S1_VIP), S1_PORT),
        Duration::from_secs(40),
    );
    warm_up(&lab, &client, started, master);

    let restore_at = seed_001_drill(&lab, &client, started, master);
    seed_001_restore(&lab, &client, restore_at, master);
}

/// Seed 001's drill: `master` reaches no apiserver, the other balancer takes the address;
/// when the repair starts.
fn seed_001_drill(lab: &Lab, client: &Client, started: Instant, master: usize) -> Instant {
    let (pair, interval, other) = (S1_PAIR, S1_INTERVAL, 1 - master);
    let cut_at = Instant::now();
    cut(lab, master, S1_PORT, true);
    let moved =
        wait_sole_holder(lab, S1_VIP, &pair, other, Duration::from_secs(8)).unwrap_or_else(|| {
            panic!(
                "the address moves to the other balancer\n{}",
                lab.all_logs()
            )
        });
    client
        .first_via(other, cut_at, Duration::from_secs(3))
        .expect("clients are served through the other balancer");
    // Time passing is the point: a second of service through the other balancer, in which
    // no request may fail.
    std::thread::sleep(Duration::from_secs(1));
    let restore_at = Instant::now();
    let drill = outages(&client.results(), started, restore_at);
    let s = vrrp_status(lab, master, "127.0.0.1:8404");
    assert_eq!(
        (s["state"].as_str(), s["priority"].as_u64()),
        (Some("BACKUP"), Some(102)),
        "{s}"
    );
    // Detection (3 failed requests, one tracker look), then the other balancer discards the
    // master's lower adverts until its Master_Down_Interval runs out, counted from the last
    // advert at 104, sent at most one interval before the drop.
    let mdi = v2_master_down(104, interval);
    let bound = PROBE_EVERY * 3 * 2 + TRACKER_PERIOD + mdi + Duration::from_millis(300);
    let took = moved.duration_since(cut_at);
    assert_eq!(
        drill.len(),
        1,
        "one outage, nothing failed outside it: {drill:?}\n{:?}",
        client.errors_between(started, restore_at)
    );
    let gap = drill[0].gap();
    eprintln!(
        "seed 001 drill: address on the other balancer {took:?} after the cut (bound {bound:?}, \
         at least Master_Down_Interval {mdi:?} - one interval); client gap {gap:?}, {} failed \
         requests ({}), none outside",
        drill[0].failures,
        client.reasons(cut_at, restore_at)
    );
    assert!(drill[0].first_failure >= cut_at, "{drill:?}");
    assert!(
        took + interval >= mdi && took <= bound,
        "{took:?}\n{}",
        lab.all_logs()
    );
    assert!(
        gap <= bound,
        "client gap {gap:?} > {bound:?}\n{}",
        lab.all_logs()
    );
    restore_at
}

/// Seed 001's restore: the old master is healthy again and, at an equal priority, leaves the
/// address where it is; nothing went out as multicast.
fn seed_001_restore(lab: &Lab, client: &Client, restore_at: Instant, master: usize) {
    let (pair, other) = (S1_PAIR, 1 - master);
    let mdi = v2_master_down(104, S1_INTERVAL);
    // Repair: the old master sees its apiservers up after rise (2) checks, within
    // down_interval (5 s) + fast_interval (500 ms), and is back at 104, equal to the holder.
    cut(lab, master, S1_PORT, false);
    let healthy = wait_for(Duration::from_secs(8), || {
        (vrrp_status(lab, master, "127.0.0.1:8404")["priority"] == 104).then(Instant::now)
    })
    .unwrap_or_else(|| panic!("the old master's trackers recover\n{}", lab.all_logs()));
    // Equal priorities: it must not preempt. Watch for longer than its Master_Down_Interval.
    let wrong = watch_holder(lab, S1_VIP, &pair, other, mdi + Duration::from_secs(1));
    let end = Instant::now();
    let after = outages(&client.results(), restore_at, end);
    eprintln!(
        "seed 001 restore: old master back at 104 {:?} after the repair; the address stayed on \
         the other balancer for {:?} after that: {}; failed requests since the repair: {}",
        healthy.duration_since(restore_at),
        end.duration_since(healthy),
        wrong.is_empty(),
        after.iter().map(|o| o.failures).sum::<usize>()
    );
    assert!(
        wrong.is_empty(),
        "the address stays on the other balancer: {wrong:?}\n{}",
        lab.all_logs()
    );
    assert!(
        after.is_empty(),
        "no request failed after the repair: {after:?}"
    );
    let s = vrrp_status(lab, master, "127.0.0.1:8404");
    assert_eq!(s["state"], "BACKUP", "{s}");
    // Unicast only: nothing went to 224.0.0.18 from either balancer (both were master at
    // some point and advertised by unicast), and the counters would have seen it.
    for node in pair {
        let rules = lab.multicast_rules(node);
        assert_eq!(
            lab.vrrp_multicast_sent(node),
            0,
            "no multicast sent: {rules}"
        );
        assert!(
            lab.vrrp_unicast_sent(node) > 0,
            "node{node} advertised: {rules}"
        );
    }
    for node in pair {
        lab.assert_multicast_counted(node);
    }
}

// ---------------------------------------------------------------------------------------
// Seed 004: nginx stream + keepalived on two of three masters

const S4_VIP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 150);
const S4_PORT: u16 = 8443;
const S4_PRIORITIES: [u8; 2] = [100, 90];
const S4_PAIR: [usize; 2] = [0, 1];
/// The seed's advert interval.
const S4_INTERVAL: Duration = Duration::from_secs(2);

fn seed_004_config(node: usize) -> String {
    let text = example("004-nginx.toml");
    let text = set_key(&text, "priority", &S4_PRIORITIES[node].to_string());
    let text = set_key(&text, "source", &format!("\"{}\"", node_v4(node)));
    let text = text.replace("interface = \"ens33\"", "interface = \"eth0\"");
    map_addresses(
        &text,
        &[
            ("192.168.139.150", S4_VIP.to_string()),
            ("192.168.139.133", node_v4(0).to_string()),
            ("192.168.139.134", node_v4(1).to_string()),
            ("192.168.139.135", node_v4(2).to_string()),
        ],
    )
}

/// Seed 004's drill (its 8.2: nginx on master1 fails and cannot be restarted, the VIP moves to
/// master2; 8.3: master1 is restored and, nopreempt, does not take it back). Here master1
/// reaches no apiserver. Its balancer has passive health only, so it learns that from the
/// client's failing requests: each one counts a failed connect against every apiserver it
/// tried (all three, with retries), and after max_fails (3) all are down; the weight-0
/// tracker then puts master1 in Fault (priority 0), and master2 takes over after its
/// Skew_Time. Consistent hashing by client address sends the client to the same apiserver
/// through either balancer. Repaired, master1 learns it only when fail_timeout (30 s) has
/// passed and its apiservers are tried again; it leaves Fault as a backup and, nopreempt,
/// leaves the VIP on master2.
#[test]
fn seed_004_nginx_pair_passive_health_nopreempt() {
    require_seed_tools!();
    let _serial = serial();
    let lab = Lab::new("s4", 3);
    let cert = self_signed_cert(&lab);
    for node in 0..3 {
        start_backend(&lab, &cert, node, &format!("master{}", node + 1), 6443);
    }
    for node in [0, 1] {
        start_havip(&lab, node, &seed_004_config(node));
    }
    let (pair, interval) = (S4_PAIR, S4_INTERVAL);
    assert!(
        wait_sole_holder(
            &lab,
            S4_VIP,
            &pair,
            0,
            v2_master_down(100, interval) + Duration::from_secs(2)
        )
        .is_some(),
        "master1 holds the VIP\n{}",
        lab.all_logs()
    );
    let watch = lab.start_advert_watch(51, false);
    let started = Instant::now();
    let client = start_client(
        &lab,
        SocketAddr::new(IpAddr::V4(S4_VIP), S4_PORT),
        Duration::from_secs(60),
    );
    let warm = warm_up(&lab, &client, started, 0);
    let sticky = backend_of(&warm[0]).unwrap().to_string();
    assert!(
        warm.iter().all(|a| backend_of(a) == Some(sticky.as_str())),
        "one client address, one apiserver: {warm:?}"
    );

    let (cut_at, restore_at) = seed_004_drill(&lab, &client, &watch, started, &sticky);
    seed_004_restore(&lab, &client, cut_at, restore_at);
}

/// Seed 004's drill: master1 reaches no apiserver, learns it from the client's failures and
/// hands over; when the cut and the repair were made.
fn seed_004_drill(
    lab: &Lab,
    client: &Client,
    watch: &AdvertWatch,
    started: Instant,
    sticky: &str,
) -> (Instant, Instant) {
    let pair = S4_PAIR;
    let cut_at = Instant::now();
    cut(lab, 0, 6443, true);
    let moved = wait_sole_holder(lab, S4_VIP, &pair, 1, Duration::from_secs(5))
        .unwrap_or_else(|| panic!("the VIP moves to master2\n{}", lab.all_logs()));
    client
        .first_via(1, cut_at, Duration::from_secs(3))
        .expect("clients are served through master2");
    // Time passing is the point: a second of service through the new master, in which no
    // request may fail.
    std::thread::sleep(Duration::from_secs(1));
    let restore_at = Instant::now();
    let (released, taken) = handover_on_wire(watch, 0, 1, cut_at).unwrap_or_else(|| {
        panic!(
            "master1 sends priority 0 and master2 advertises: {:?}",
            watch.adverts()
        )
    });
    let on_wire = taken.duration_since(released);
    let drill = outages(&client.results(), started, restore_at);
    // max_fails (3) failed requests, the tracker's fall (2) looks, master2's Skew_Time.
    let bound = PROBE_EVERY * 3 * 2 + TRACKER_PERIOD * 2 + v2_skew(90) + Duration::from_millis(300);
    let took = moved.duration_since(cut_at);
    assert_eq!(
        drill.len(),
        1,
        "one outage, nothing failed outside it: {drill:?}\n{:?}",
        client.errors_between(started, restore_at)
    );
    let gap = drill[0].gap();
    eprintln!(
        "seed 004 drill: VIP on master2 {took:?} after the cut (bound {bound:?}); priority 0 -> \
         master2's first advert {on_wire:?} (Skew_Time {:?}); client gap {gap:?}, {} failed \
         requests ({}), none outside",
        v2_skew(90),
        drill[0].failures,
        client.reasons(cut_at, restore_at)
    );
    assert!(drill[0].first_failure >= cut_at, "{drill:?}");
    assert!(
        on_wire <= v2_skew(90) + Duration::from_millis(100),
        "{on_wire:?}"
    );
    assert!(
        took <= bound,
        "takeover {took:?} > {bound:?}\n{}",
        lab.all_logs()
    );
    assert!(
        gap <= bound,
        "client gap {gap:?} > {bound:?}\n{}",
        lab.all_logs()
    );
    let served: Vec<String> = client
        .results()
        .into_iter()
        .filter(|(at, _)| *at > drill[0].last_failure)
        .filter_map(|(_, a)| a)
        .collect();
    assert!(
        served.len() > 50
            && served.iter().all(
                |a| backend_of(a) == Some(sticky) && via_of(a) == Some(&node_v4(1).to_string())
            ),
        "same apiserver through master2 (same hash ring): {served:?}"
    );
    let s = vrrp_status(lab, 0, "127.0.0.1:8404");
    assert_eq!(s["state"], "FAULT", "{s}");
    (cut_at, restore_at)
}

/// Seed 004's restore: master1 learns of the repair after fail_timeout, leaves Fault as a
/// backup and, nopreempt, leaves the VIP on master2.
fn seed_004_restore(lab: &Lab, client: &Client, cut_at: Instant, restore_at: Instant) {
    let (pair, interval) = (S4_PAIR, S4_INTERVAL);
    // Restore: the apiservers are reachable again. With passive health only master1 cannot
    // know until fail_timeout (30 s) after its failures marked them down: then they are tried
    // again (counted as up), its tracker recovers and it leaves Fault as a backup. nopreempt:
    // it hears master2 (90) below its own 100 and still does not take the VIP back. (The
    // seed's restore, restarting nginx and keepalived, takes the same path: a node starts as
    // a backup, like one leaving Fault.)
    cut(lab, 0, 6443, false);
    let fail_timeout = Duration::from_secs(30);
    // Time passing is the point: nothing can change before fail_timeout has run out.
    std::thread::sleep(fail_timeout.saturating_sub(cut_at.elapsed() + Duration::from_millis(500)));
    let left_fault = wait_for(Duration::from_secs(3), || {
        (vrrp_status(lab, 0, "127.0.0.1:8404")["state"] == "BACKUP").then(Instant::now)
    })
    .unwrap_or_else(|| {
        panic!(
            "master1 leaves Fault after fail_timeout\n{}",
            lab.all_logs()
        )
    });
    let recovered = left_fault.duration_since(cut_at);
    // Marked down by the third failed request (< 100 ms after the cut), up 30 s later, one
    // tracker look (rise 1), and this test's polling.
    let recovery_bound =
        fail_timeout + Duration::from_millis(100) + TRACKER_PERIOD + Duration::from_millis(400);
    let log = lab.log_of("havip0.log");
    assert!(
        log.contains("3 connect failures in 30s") && log.contains("fail_timeout 30s elapsed"),
        "passive health marked the apiservers down and tried them again:\n{log}"
    );
    // Longer than master1's Master_Down_Interval: with preemption it would take over by then.
    let mdi = v2_master_down(100, interval);
    let wrong = watch_holder(lab, S4_VIP, &pair, 1, mdi + Duration::from_secs(1));
    let end = Instant::now();
    let s = vrrp_status(lab, 0, "127.0.0.1:8404");
    let after = outages(&client.results(), restore_at, end);
    eprintln!(
        "seed 004 restore: master1 left Fault {recovered:?} after the cut (fail_timeout 30 s, \
         bound {recovery_bound:?}); {:?} later it is {} at priority {} and the VIP stayed on \
         master2: {}; failed requests since the repair: {}",
        end.duration_since(left_fault),
        s["state"],
        s["priority"],
        wrong.is_empty(),
        after.iter().map(|o| o.failures).sum::<usize>()
    );
    assert!(
        recovered >= fail_timeout && recovered <= recovery_bound,
        "{recovered:?}\n{}",
        lab.all_logs()
    );
    assert!(
        wrong.is_empty(),
        "the VIP stays on master2: {wrong:?}\n{}",
        lab.all_logs()
    );
    assert_eq!(
        (s["state"].as_str(), s["priority"].as_u64()),
        (Some("BACKUP"), Some(100)),
        "{s}"
    );
    assert!(
        after.is_empty(),
        "no request failed after the repair: {after:?}"
    );
}
