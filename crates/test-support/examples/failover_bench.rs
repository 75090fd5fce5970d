//! The VRRP failover benchmark (issue #4): havip against keepalived 2.2 in the same network
//! namespaces, in the same run. Three nodes with priorities 100 / 90 / 80 hold one VIP; a
//! client namespace connects to VIP:80 at least once per millisecond and watches the adverts.
//! The master (node 0) crashes (kill -9 and its link down) or gets SIGTERM, with v2 / 1 s
//! adverts and v3 / 0.1 s adverts. Each repetition starts a fresh cluster; the two daemons
//! alternate so that a slow moment of the machine hits both.
//!
//! Measured per run, from the client namespace (the lab's prober: one attempt per millisecond,
//! each on its own task, timeouts a loaded machine meets):
//! - takeover: from the old master's last advert seen on the wire (for SIGTERM its priority-0
//!   advert) to the first connect on the VIP answered by the new master (node 1);
//! - outage: the longest time with no successful new connection (between the moments two
//!   consecutive successful connects were answered);
//! - the new master's first advert after the old master's last one (the protocol part).
//!
//! Run it with `bench/failover.sh` (builds the release binaries, needs root, keepalived). Writes
//! `<out>.json` (every run) and `<out>.md` (medians, p90, max, RFC values, ratios, targets).
//!
//! ```text
//! failover_bench --havip target/release/havip --out bench/results/failover-TS [--reps 5]
//!                [--only v2-crash,v3-sigterm,...]
//! ```

#![allow(clippy::unwrap_used)] // a benchmark: a broken invariant ends the run with its reason
#![allow(clippy::disallowed_types)] // wall-clock time of real processes

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use havip_test_support::adverts::AdvertWatch;
use havip_test_support::guard::{self, Need};
use havip_test_support::keepalived::{self as ka, Keepalived};
use havip_test_support::lab::{node_v4, Lab};
use havip_test_support::node_config::{Health, NodeConfig, Service, Vrrp};
use havip_test_support::prober::{Attempt, Prober};
use havip_test_support::servers::Server;
use havip_test_support::wait_for;
use serde_json::json;

const VIP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 200);
const VRID: u8 = 51;
const BACKEND_PORT: u16 = 9000;
const PRIORITIES: [u8; 3] = [100, 90, 80];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Daemon {
    Havip,
    Keepalived,
}

impl Daemon {
    fn name(self) -> &'static str {
        match self {
            Daemon::Havip => "havip",
            Daemon::Keepalived => "keepalived",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    Crash,
    Sigterm,
}

#[derive(Debug, Clone, Copy)]
struct Version {
    number: u8,
    interval: Duration,
}

const V2: Version = Version {
    number: 2,
    interval: Duration::from_secs(1),
};
const V3: Version = Version {
    number: 3,
    interval: Duration::from_millis(100),
};

impl Version {
    fn label(&self) -> String {
        format!("v{} / {:?}", self.number, self.interval)
    }

    /// Skew_Time (RFC 3768 6.1, RFC 5798 6.1).
    fn skew(&self, priority: u8) -> Duration {
        let unit = if self.number == 2 {
            1_000_000_000
        } else {
            self.interval.as_nanos() as u64
        };
        Duration::from_nanos(((256 - u64::from(priority)) * unit).div_ceil(256))
    }

    fn master_down(&self, priority: u8) -> Duration {
        self.interval * 3 + self.skew(priority)
    }
}

struct Options {
    havip: String,
    out: String,
    reps: usize,
    only: Option<Vec<String>>,
}

fn options() -> Options {
    let mut o = Options {
        havip: "target/release/havip".into(),
        out: String::new(),
        reps: 5,
        only: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--havip" => o.havip = value(),
            "--out" => o.out = value(),
            "--reps" => o.reps = value().parse().expect("--reps N"),
            "--only" => o.only = Some(value().split(',').map(str::to_owned).collect()),
            "-h" | "--help" => {
                println!("failover_bench --havip PATH --out PREFIX [--reps N] [--only v2-crash,v3-sigterm,...]");
                std::process::exit(0);
            }
            other => panic!("unknown argument {other}"),
        }
    }
    assert!(!o.out.is_empty(), "--out PREFIX is required");
    o
}

fn havip_config(version: &Version, i: usize) -> NodeConfig {
    NodeConfig::new()
        .grace("1s")
        .log_level("info")
        .log_connections(false)
        .service(
            Service::new("api", SocketAddr::from((VIP, 80)))
                .health(Health::tcp().interval("200ms"))
                .backend(format!("127.0.0.1:{BACKEND_PORT}")),
        )
        .vrrp(
            Vrrp::new("VI_1", VRID)
                .version(version.number)
                .priority(PRIORITIES[i])
                .advert_interval(version.interval)
                .vip(format!("{VIP}/24")),
        )
}

enum Running {
    Havip(u32),
    Keepalived(Keepalived),
}

/// How many attempts `node` answered at or after `after` (so far).
fn answers_from(prober: &Prober, node: &str, after: Instant) -> usize {
    prober
        .attempts()
        .iter()
        .filter(|a| a.answer() == Some(node) && a.served_at() >= Some(after))
        .count()
}

/// When an attempt ended (its start while it is under way).
fn done_at(a: &Attempt) -> Instant {
    a.done.unwrap_or(a.started)
}

/// One measured failover.
#[derive(Debug, Clone)]
struct Run {
    daemon: Daemon,
    version: Version,
    event: Event,
    rep: usize,
    formula: Duration,
    takeover: Duration,
    outage: Duration,
    advert_gap: Option<Duration>,
    failed: usize,
    /// When the failed attempts started, in ms relative to the new master's first advert.
    failed_at: Vec<f64>,
    attempts_per_ms: f64,
    /// The longest the client started an attempt after its tick.
    client_late: Duration,
}

struct Bench {
    lab: Lab,
    havip: String,
    watch: AdvertWatch,
    runs: usize,
}

impl Bench {
    fn node(i: usize) -> IpAddr {
        IpAddr::V4(node_v4(i))
    }

    fn start(&mut self, daemon: Daemon, version: &Version, i: usize) -> Running {
        self.runs += 1;
        match daemon {
            Daemon::Havip => {
                let path = self.lab.write(
                    &format!("havip-n{i}-{}.toml", self.runs),
                    &havip_config(version, i).to_toml(),
                );
                Running::Havip(self.lab.spawn(
                    &self.lab.nodes[i].clone(),
                    &self.havip,
                    &["run", "--config", &path.display().to_string()],
                    &format!("havip-n{i}-{}.log", self.runs),
                    &[],
                ))
            }
            Daemon::Keepalived => {
                let interval = version.interval.as_secs_f64();
                Running::Keepalived(ka::start(
                    &self.lab,
                    i,
                    &ka::Instance {
                        vrid: VRID,
                        version: version.number,
                        priority: PRIORITIES[i],
                        advert_int: format!("{interval}"),
                        auth_pass: None,
                        unicast: None,
                        vip: format!("{VIP}/24"),
                    },
                ))
            }
        }
    }

    fn kill(&self, running: &Running) {
        match running {
            Running::Havip(pid) => {
                if self.lab.wait(*pid, Duration::ZERO).is_none() {
                    self.lab.signal(*pid, "KILL");
                }
                self.lab.wait(*pid, Duration::from_secs(5));
            }
            Running::Keepalived(k) => {
                if self.lab.wait(k.pid, Duration::ZERO).is_none() {
                    k.crash(&self.lab);
                }
                self.lab.wait(k.pid, Duration::from_secs(5));
            }
        }
    }

    fn holders(&self) -> Vec<usize> {
        self.lab.holders(IpAddr::V4(VIP))
    }

    /// One failover: a fresh cluster of `daemon`, node 0 master, then `event` on node 0.
    fn run(&mut self, daemon: Daemon, version: Version, event: Event, rep: usize) -> Run {
        // A clean network: no VIP anywhere, every link up, the client's ARP cache empty.
        for i in 0..3 {
            if self.lab.node_has_address(i, IpAddr::V4(VIP)) {
                self.lab.ns(
                    &self.lab.nodes[i].clone(),
                    &["ip", "addr", "del", &format!("{VIP}/24"), "dev", "eth0"],
                );
            }
            self.lab.set_node_link(i, true);
        }
        self.lab
            .ns(&self.lab.client.clone(), &["ip", "neigh", "flush", "all"]);
        let _backends: Vec<Server> = if daemon == Daemon::Keepalived {
            (0..3)
                .map(|i| ka::start_vip_backend(&self.lab, i, SocketAddr::new(IpAddr::V4(VIP), 80)))
                .collect()
        } else {
            Vec::new()
        };
        let running: Vec<Running> = (0..3).map(|i| self.start(daemon, &version, i)).collect();
        let result = self.measure(&running, daemon, version, event, rep);
        for r in &running {
            self.kill(r);
        }
        match result {
            Ok(run) => run,
            Err(why) => panic!(
                "{} {} {:?} rep {rep}: {why}\n{}",
                daemon.name(),
                version.label(),
                event,
                self.lab.all_logs()
            ),
        }
    }

    /// Node 0 alone holds the VIP and advertises, and the client (started here) reaches it.
    fn settle_and_probe(&self, version: &Version) -> Result<Prober, String> {
        let lab = &self.lab;
        let elected = wait_for(
            version.master_down(PRIORITIES[0]) + Duration::from_secs(3),
            || (self.holders() == vec![0]).then_some(Instant::now()),
        )
        .ok_or_else(|| format!("node0 never held the VIP alone: {:?}", self.holders()))?;
        // Settled: two adverts of node 0 after it took the VIP, and nobody else advertising.
        wait_for(version.interval * 4, || {
            (self
                .watch
                .adverts()
                .iter()
                .filter(|a| a.source == Self::node(0) && a.at > elected)
                .count()
                >= 2)
                .then_some(())
        })
        .ok_or("node0 does not advertise")?;
        let prober = lab.start_prober(
            SocketAddr::from((VIP, 80)),
            Duration::from_millis(1),
            Duration::from_secs(600),
        );
        let started = Instant::now();
        let warm = wait_for(Duration::from_secs(2), || {
            (answers_from(&prober, "node0", started) >= 100).then_some(())
        });
        warm.ok_or("the client does not reach node0 through the VIP")?;
        Ok(prober)
    }

    /// The event on node 0; when it happened.
    fn fire(&self, running: &[Running], event: Event) -> Instant {
        let lab = &self.lab;
        match event {
            Event::Crash => {
                // kill -9 (keepalived: frozen first, see havip_test_support::keepalived), link
                // down.
                match &running[0] {
                    Running::Havip(pid) => lab.signal(*pid, "KILL"),
                    Running::Keepalived(k) => k.crash(lab),
                }
                lab.set_node_link(0, false);
                Instant::now()
            }
            Event::Sigterm => {
                let at = Instant::now();
                let pid = match &running[0] {
                    Running::Havip(pid) => *pid,
                    Running::Keepalived(k) => k.pid,
                };
                lab.signal(pid, "TERM");
                at
            }
        }
    }

    fn measure(
        &self,
        running: &[Running],
        daemon: Daemon,
        version: Version,
        event: Event,
        rep: usize,
    ) -> Result<Run, String> {
        let prober = self.settle_and_probe(&version)?;
        let event_at = self.fire(running, event);
        let bound = version.master_down(PRIORITIES[1]) + Duration::from_secs(2);
        let answered = wait_for(bound, || prober.first_answer_from("node1", event_at))
            .ok_or("node1 never answered on the VIP")?;
        // The service is back: a hundred more answers; then the attempts under way end.
        wait_for(Duration::from_secs(2), || {
            (answers_from(&prober, "node1", answered) >= 100).then_some(())
        })
        .ok_or("node1 stopped answering")?;
        prober.stop();
        let results = prober.settled();

        let adverts = self.watch.adverts();
        let last = adverts
            .iter()
            .rev()
            .find(|a| a.source == Self::node(0) && a.at <= answered)
            .ok_or("no advert of node0 seen")?;
        if event == Event::Sigterm && last.priority != 0 {
            return Err(format!(
                "node0's last advert had priority {}, not 0",
                last.priority
            ));
        }
        let first_new = adverts
            .iter()
            .find(|a| a.source == Self::node(1) && a.at > last.at)
            .map(|a| a.at);
        let advert_gap = first_new.map(|at| at.duration_since(last.at));
        let takeover = answered.duration_since(last.at);
        let view = ClientView::of(&results, event_at, event, first_new);
        let formula = match event {
            Event::Crash => version.master_down(PRIORITIES[1]),
            Event::Sigterm => version.skew(PRIORITIES[1]),
        };
        let run = Run {
            daemon,
            version,
            event,
            rep,
            formula,
            takeover,
            outage: view.outage,
            advert_gap,
            failed: view.failed,
            failed_at: view.failed_at.clone(),
            attempts_per_ms: view.attempts_per_ms,
            client_late: view.client_late,
        };
        eprintln!(
            "{:<10} {:<12} {:<7} rep {rep}: takeover {:>9.3} ms (RFC {:.3}), outage {:>9.3} ms, \
             new master's first advert after {:>9.3} ms, {} failed connects, {:.2} attempts/ms, \
             client late by up to {:.1} ms",
            daemon.name(),
            version.label(),
            format!("{event:?}"),
            ms(takeover),
            ms(formula),
            ms(view.outage),
            advert_gap.map_or(f64::NAN, ms),
            view.failed,
            view.attempts_per_ms,
            ms(view.client_late)
        );
        if !view.failed_at.is_empty() && view.failed_at.len() <= 5 {
            eprintln!(
                "    failed attempts started at {:.2?} ms from the new master's first advert",
                view.failed_at
            );
        }
        Ok(run)
    }
}

/// What the client saw around the event.
struct ClientView {
    /// The longest time between two answered attempts.
    outage: Duration,
    failed: usize,
    /// When the failed attempts started, in ms from the new master's first advert (SIGTERM).
    failed_at: Vec<f64>,
    attempts_per_ms: f64,
    /// The longest the client started an attempt after its tick.
    client_late: Duration,
}

impl ClientView {
    /// The attempts from just before `event_at` on; `first_new`: the new master's first
    /// advert.
    fn of(
        results: &[Attempt],
        event_at: Instant,
        event: Event,
        first_new: Option<Instant>,
    ) -> ClientView {
        let window: Vec<&Attempt> = results
            .iter()
            .filter(|a| a.started + Duration::from_millis(50) >= event_at)
            .collect();
        let mut served: Vec<Instant> = window.iter().filter_map(|a| a.served_at()).collect();
        served.sort();
        let (outage, gap) = served
            .windows(2)
            .map(|w| (w[1].duration_since(w[0]), (w[0], w[1])))
            .max_by_key(|(d, _)| *d)
            .unwrap_or((Duration::ZERO, (event_at, event_at)));
        // How late the client itself started its attempts (a loaded machine holds up the
        // prober thread too): the largest delay after its 1 ms tick in the window.
        let client_late = window
            .iter()
            .map(|a| a.started.duration_since(a.scheduled))
            .max()
            .unwrap_or_default();
        let relative = |at: Instant, to: Instant| -> f64 {
            if at >= to {
                ms(at.duration_since(to))
            } else {
                -ms(to.duration_since(at))
            }
        };
        if outage > Duration::from_millis(10) && event == Event::Sigterm {
            eprintln!("    attempts around the longest gap (ms from its start: scheduled, started, ended, answer):");
            for a in window.iter().filter(|a| {
                done_at(a) + Duration::from_millis(3) >= gap.0
                    && a.started <= gap.1 + Duration::from_millis(1)
            }) {
                eprintln!(
                    "      {:>8.3} {:>8.3} {:>8.3} {:?}",
                    relative(a.scheduled, gap.0),
                    relative(a.started, gap.0),
                    relative(done_at(a), gap.0),
                    a.answer()
                );
            }
        }
        let failed = window.iter().filter(|a| a.answer().is_none()).count();
        let failed_at: Vec<f64> = match first_new {
            Some(new) if event == Event::Sigterm => window
                .iter()
                .filter(|a| a.answer().is_none())
                .map(|a| relative(a.started, new))
                .collect(),
            _ => Vec::new(),
        };
        let span = match (window.first(), window.last()) {
            (Some(a), Some(b)) => b.started.duration_since(a.started),
            _ => Duration::ZERO,
        };
        let attempts_per_ms = window.len() as f64 / span.as_secs_f64().max(1e-9) / 1000.0;
        ClientView {
            outage,
            failed,
            failed_at,
            attempts_per_ms,
            client_late,
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let o = options();
    if let Some(why) = guard::unmet(&[Need::Root, Need::Netns, Need::Keepalived]) {
        eprintln!("cannot run: it {why}");
        std::process::exit(2);
    }
    let lab = Lab::new("fb", 3);
    for i in 0..3 {
        lab.start_name_server(i, BACKEND_PORT);
    }
    let watch = lab.start_advert_watch(VRID, false);
    let mut bench = Bench {
        lab,
        havip: o.havip.clone(),
        watch,
        runs: 0,
    };
    let started = Instant::now();
    let mut runs = Vec::new();
    for version in [V2, V3] {
        for event in [Event::Crash, Event::Sigterm] {
            let key = scenario_key(&version, event);
            if o.only.as_ref().is_some_and(|only| !only.contains(&key)) {
                continue;
            }
            for rep in 0..o.reps {
                // Alternate who goes first, so a slow moment of the machine hits both.
                let order = if rep % 2 == 0 {
                    [Daemon::Havip, Daemon::Keepalived]
                } else {
                    [Daemon::Keepalived, Daemon::Havip]
                };
                for daemon in order {
                    runs.push(bench.run(daemon, version, event, rep));
                }
            }
        }
    }
    let elapsed = started.elapsed();
    let (json, markdown) = report(&o, &runs, elapsed);
    std::fs::write(format!("{}.json", o.out), json).expect("write the JSON");
    std::fs::write(format!("{}.md", o.out), &markdown).expect("write the table");
    println!("{markdown}");
    eprintln!("wrote {}.json and {}.md", o.out, o.out);
}

fn scenario_key(version: &Version, event: Event) -> String {
    format!(
        "v{}-{}",
        version.number,
        match event {
            Event::Crash => "crash",
            Event::Sigterm => "sigterm",
        }
    )
}

/// Median (mean of the middle two for an even count), p90 (nearest rank) and max, in ms.
fn stats(values: &[Duration]) -> Option<(f64, f64, f64)> {
    if values.is_empty() {
        return None;
    }
    let mut v: Vec<f64> = values.iter().map(|d| ms(*d)).collect();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    let p90 = v[((n as f64 * 0.9).ceil() as usize).clamp(1, n) - 1];
    Some((median, p90, v[n - 1]))
}

fn command_output(program: &str, args: &[&str]) -> String {
    std::process::Command::new(program)
        .args(args)
        .output()
        .map(|o| {
            let mut text = String::from_utf8_lossy(&o.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&o.stderr));
            text.lines().next().unwrap_or_default().trim().to_string()
        })
        .unwrap_or_default()
}

fn report(o: &Options, runs: &[Run], elapsed: Duration) -> (String, String) {
    let machine = json!({
        "kernel": command_output("uname", &["-r"]),
        "cpus": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "keepalived": command_output("keepalived", &["--version"]),
        "havip_commit": command_output("git", &["rev-parse", "--short", "HEAD"]),
        "date_unix": std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    });
    let raw = raw_runs(runs);
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# VRRP failover: havip vs keepalived\n\n{} repetitions per cell, {} runs in {:.0} s; \
         machine: {}; havip {}; {}.\n\n\
         3 nodes (priorities 100 / 90 / 80) on one bridge, the master (node 0) crashes \
         (kill -9 + link down) or gets SIGTERM. *takeover*: from the master's last advert seen \
         by the client (for SIGTERM its priority-0 advert) to the first successful connect on \
         the VIP answered by the new master. *outage*: the longest time the client had no \
         successful new connection (≥ 1 connect attempt per ms). RFC: Master_Down_Interval \
         (crash) or Skew_Time (SIGTERM) of the priority-90 node. Values in ms: median / p90 / \
         max (p90 is the nearest rank, i.e. the max for 5 repetitions).\n",
        o.reps,
        runs.len(),
        elapsed.as_secs_f64(),
        format_args!(
            "{} CPUs, Linux {}",
            machine["cpus"],
            machine["kernel"].as_str().unwrap_or("?")
        ),
        machine["havip_commit"].as_str().unwrap_or("?"),
        machine["keepalived"].as_str().unwrap_or("?"),
    );
    let _ = writeln!(
        md,
        "| scenario | measure | RFC | havip | keepalived | havip / keepalived (medians) | target | met |\n\
         |---|---|---|---|---|---|---|---|"
    );
    let summary = summary_rows(runs, &mut md);
    failures_and_lateness(runs, &mut md);
    let json = serde_json::to_string_pretty(&json!({
        "machine": machine,
        "reps": o.reps,
        "elapsed_s": elapsed.as_secs_f64(),
        "summary": summary,
        "runs": raw,
    }))
    .unwrap();
    (json, md)
}

/// Every run as JSON.
fn raw_runs(runs: &[Run]) -> Vec<serde_json::Value> {
    runs.iter()
        .map(|r| {
            json!({
                "daemon": r.daemon.name(),
                "version": r.version.number,
                "interval_ms": ms(r.version.interval),
                "event": scenario_key(&r.version, r.event),
                "rep": r.rep,
                "rfc_ms": ms(r.formula),
                "takeover_ms": ms(r.takeover),
                "outage_ms": ms(r.outage),
                "new_master_first_advert_ms": r.advert_gap.map(ms),
                "failed_connects": r.failed,
                "failed_at_ms_from_new_master_advert": r.failed_at,
                "attempts_per_ms": r.attempts_per_ms,
                "client_late_ms": ms(r.client_late),
            })
        })
        .collect()
}

/// One table row (and one JSON summary) per scenario and measure.
fn summary_rows(runs: &[Run], md: &mut String) -> Vec<serde_json::Value> {
    let mut summary = Vec::new();
    for version in [V2, V3] {
        for event in [Event::Crash, Event::Sigterm] {
            let key = scenario_key(&version, event);
            let of = |d: Daemon| -> Vec<&Run> {
                runs.iter()
                    .filter(|r| r.daemon == d && scenario_key(&r.version, r.event) == key)
                    .collect()
            };
            let (h, k) = (of(Daemon::Havip), of(Daemon::Keepalived));
            if h.is_empty() && k.is_empty() {
                continue;
            }
            let formula = h.first().or(k.first()).map(|r| r.formula).unwrap();
            type Pick = fn(&Run) -> Option<Duration>;
            let measures: [(&str, Pick); 3] = [
                ("takeover", |r| Some(r.takeover)),
                ("outage", |r| Some(r.outage)),
                ("new master's first advert", |r| r.advert_gap),
            ];
            for (name, pick) in measures {
                let hs = stats(&h.iter().filter_map(|r| pick(r)).collect::<Vec<_>>());
                let ks = stats(&k.iter().filter_map(|r| pick(r)).collect::<Vec<_>>());
                let cell = |s: Option<(f64, f64, f64)>| {
                    s.map_or("–".to_string(), |(m, p, x)| {
                        format!("{m:.1} / {p:.1} / {x:.1}")
                    })
                };
                let ratio = match (hs, ks) {
                    (Some((hm, _, _)), Some((km, _, _))) if km > 0.0 => format!("{:.3}", hm / km),
                    _ => "–".into(),
                };
                // Targets of issue #4, judged on havip's worst run.
                let (target, met) = match (event, name) {
                    (Event::Crash, "takeover") => {
                        let limit = ms(formula) + 5.0;
                        (
                            format!("≤ RFC + 5 = {limit:.1}"),
                            hs.map(|(_, _, x)| x <= limit),
                        )
                    }
                    (Event::Sigterm, "outage") => {
                        ("≤ 10".to_string(), hs.map(|(_, _, x)| x <= 10.0))
                    }
                    _ => (String::new(), None),
                };
                let met_text = match met {
                    Some(true) => "yes",
                    Some(false) => "**no**",
                    None => "",
                };
                let _ = writeln!(
                    md,
                    "| {} {:?} | {name} | {:.1} | {} | {} | {ratio} | {target} | {met_text} |",
                    version.label(),
                    event,
                    ms(formula),
                    cell(hs),
                    cell(ks)
                );
                summary.push(json!({
                    "scenario": key,
                    "measure": name,
                    "rfc_ms": ms(formula),
                    "havip": hs.map(|(m, p, x)| json!({"median": m, "p90": p, "max": x})),
                    "keepalived": ks.map(|(m, p, x)| json!({"median": m, "p90": p, "max": x})),
                    "target": target,
                    "met": met,
                }));
            }
        }
    }
    summary
}

/// The failed attempts and the client's lateness, below the table.
fn failures_and_lateness(runs: &[Run], md: &mut String) {
    let late = |d: Daemon| {
        runs.iter()
            .filter(|r| r.daemon == d)
            .map(|r| ms(r.client_late))
            .fold(0.0, f64::max)
    };
    let failed = |d: Daemon, event: Event| {
        let mut v: Vec<usize> = runs
            .iter()
            .filter(|r| r.daemon == d && r.event == event)
            .map(|r| r.failed)
            .collect();
        v.sort_unstable();
        v.get(v.len() / 2).copied().unwrap_or(0)
    };
    let _ = writeln!(
        md,
        "\nFailed connect attempts per run (median): crash havip {}, keepalived {}; SIGTERM \
         havip {}, keepalived {}. The client started its attempts at most {:.1} ms (havip runs) \
         and {:.1} ms (keepalived runs) after their 1 ms tick (a busy machine delays the client too).",
        failed(Daemon::Havip, Event::Crash),
        failed(Daemon::Keepalived, Event::Crash),
        failed(Daemon::Havip, Event::Sigterm),
        failed(Daemon::Keepalived, Event::Sigterm),
        late(Daemon::Havip),
        late(Daemon::Keepalived),
    );
}
