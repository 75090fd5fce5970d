//! The hostile-VRRP benchmark (issue 15 item 2): the drill of
//! `havip_test_support::flood_drill` run at full length, 10 s at 50,000 packets/s by default
//! (half before the master is killed, half after), printed as the tables of
//! docs/reliability.md. Run it with `bench/flood.sh` (root; builds the release binaries).
//!
//! ```text
//! flood_bench --havip target/release/havip --out bench/results/flood-TS [--rate 50000]
//!             [--seconds 10]
//! ```

#![allow(clippy::unwrap_used)] // a benchmark: a broken invariant ends the run with its reason
#![allow(clippy::disallowed_types)] // wall-clock time of real processes

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use havip_test_support::flood::Defect;
use havip_test_support::flood_drill::{self, DrillOptions, DrillResult, KeepalivedResult};
use havip_test_support::guard::{self, Need};

fn main() {
    let mut havip = PathBuf::from("target/release/havip");
    let mut out = PathBuf::from("bench/results/flood");
    let (mut rate, mut seconds) = (50_000u64, 10u64);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--havip" => havip = PathBuf::from(value()),
            "--out" => out = PathBuf::from(value()),
            "--rate" => rate = value().parse().expect("--rate N"),
            "--seconds" => seconds = value().parse().expect("--seconds N"),
            other => panic!("unknown argument {other}"),
        }
    }
    assert!(
        seconds >= 6,
        "at least 6 s: the v2 takeover (3.65 s) must happen under fire"
    );
    let load_before = loadavg();
    let half = Duration::from_secs(seconds) / 2;
    let result = flood_drill::run(
        &havip,
        DrillOptions {
            rate,
            calm: half,
            after_kill: half,
        },
    );
    let load_after = loadavg();
    let mut table = render(&result, rate, seconds, &load_before, &load_after);
    // The same flood against keepalived, when it is installed, for the side-by-side figures.
    if guard::unmet(&[Need::Keepalived]).is_none() {
        let before = loadavg();
        let keepalived = flood_drill::run_keepalived(DrillOptions {
            rate,
            calm: half,
            after_kill: half,
        });
        table.push_str(&compare(&result, &keepalived, &before, &loadavg()));
    } else {
        table.push_str(
            "
keepalived is not installed: no side-by-side run.\n",
        );
    }
    print!("{table}");
    let path = out.with_extension("md");
    std::fs::write(&path, &table).expect("write the table");
    eprintln!("written to {}", path.display());
    if !verdict(&result).is_empty() {
        eprintln!("{}", result.logs);
        std::process::exit(1);
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// What went wrong, if anything: the same invariants the test asserts.
fn verdict(r: &DrillResult) -> Vec<String> {
    let mut problems = Vec::new();
    if !r.calm_holder_changes.is_empty() {
        problems.push(format!("a VIP moved: {:?}", r.calm_holder_changes));
    }
    if r.calm_transitions != [0, 0] {
        problems.push(format!("state changes: {:?}", r.calm_transitions));
    }
    if !r.drops_match() {
        problems.push("drops not all counted under their reason".to_string());
    }
    for (i, name) in ["v2", "v3"].iter().enumerate() {
        if r.takeover[i].is_none() {
            problems.push(format!("no {name} takeover"));
        }
    }
    problems
}

fn ms(d: Option<Duration>) -> String {
    d.map_or("never".to_string(), |d| {
        format!("{:.0} ms", d.as_secs_f64() * 1000.0)
    })
}

/// havip and keepalived side by side under the same flood.
fn compare(h: &DrillResult, k: &KeepalivedResult, before: &str, after: &str) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "\nThe same flood against keepalived 2.2.7 (both nodes; `check_unicast_src` on, as havip's default): {} packets at {:.0}/s. Load average before: {before}; after: {after}.\n",
        k.flood.total(),
        k.flood.rate()
    );
    let _ = writeln!(t, "| | havip | keepalived |\n| --- | ---: | ---: |");
    let _ = writeln!(
        t,
        "| state changes during the calm phase (node 0, node 1) | {}, {} | {}, {} |",
        h.calm_transitions[0], h.calm_transitions[1], k.calm_transitions[0], k.calm_transitions[1]
    );
    let _ = writeln!(
        t,
        "| VIP holder changes during the calm phase | {} | {} |",
        h.calm_holder_changes.len(),
        k.calm_holder_changes.len()
    );
    for (i, name) in ["VRRPv2 / 1 s", "VRRPv3 / 100 ms"].iter().enumerate() {
        let _ = writeln!(
            t,
            "| takeover after kill -9, {name} | {} | {} |",
            ms(h.takeover[i]),
            ms(k.takeover[i])
        );
    }
    let _ = writeln!(
        t,
        "| CPU of the flooded master, calm phase | {:.1} % | {:.1} % |\n| CPU of the survivor, whole flood | {:.1} % | {:.1} % |",
        h.cpu_percent[0], k.cpu_percent[0], h.cpu_percent[1], k.cpu_percent[1]
    );
    let _ = writeln!(
        t,
        "| log lines the survivor wrote during the flood | {} | {} |",
        h.log_lines, k.log_lines
    );
    t
}

fn render(r: &DrillResult, rate: u64, seconds: u64, before: &str, after: &str) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "Flood: {} packets in {:.2} s = {:.0} packets/s (asked {rate}/s for {seconds} s), {} refused by the sender's kernel. Load average before: {before}; after: {after}.\n",
        r.flood.total(),
        r.flood.elapsed.as_secs_f64(),
        r.flood.rate(),
        r.flood.send_errors
    );
    let _ = writeln!(t, "| defect | packets sent |\n| --- | ---: |");
    for defect in Defect::ALL {
        let _ = writeln!(t, "| {} | {} |", defect.name(), r.flood.of(defect));
    }
    let _ = writeln!(
        t,
        "\nOn the surviving node (node 1), from its `/metrics`:\n\n| where | reason | expected | counted |\n| --- | --- | ---: | ---: |"
    );
    for ((instance, reason), (expected, counted)) in &r.drops {
        let _ = writeln!(t, "| {instance} | `{reason}` | {expected} | {counted} |");
    }
    for (reason, n) in &r.receive_drops {
        if reason != "unknown_vrid" {
            let _ = writeln!(t, "| (receive path) | `{reason}` | 0 | {n} |");
        }
    }
    let _ = writeln!(
        t,
        "\nPackets read by node 1: {}; real adverts accepted: {}; dropped by the kernel on its socket (`/proc/net/raw`): {}.\n",
        r.received, r.accepted, r.kernel_drops
    );
    let _ = writeln!(
        t,
        "| check | result |\n| --- | --- |\n| state transitions during the calm {:.1} s (node 0, node 1) | {} , {} |\n| VIP holder changes during the calm phase | {} |",
        Duration::from_secs(seconds).as_secs_f64() / 2.0,
        r.calm_transitions[0],
        r.calm_transitions[1],
        r.calm_holder_changes.len()
    );
    for (i, name) in ["VRRPv2 / 1 s", "VRRPv3 / 100 ms"].iter().enumerate() {
        let took = r.takeover[i].map_or("never".to_string(), |d| {
            format!("{:.0} ms", d.as_secs_f64() * 1000.0)
        });
        let _ = writeln!(
            t,
            "| takeover after kill -9 of the master, {name} | {took} (Master_Down_Interval {:.0} ms) |",
            r.master_down[i].as_secs_f64() * 1000.0
        );
    }
    let _ = writeln!(
        t,
        "| havip CPU, master (node 0) while flooded, calm phase | {:.1} % of one core |\n| havip CPU, backup then master (node 1), whole flood | {:.1} % of one core |",
        r.cpu_percent[0], r.cpu_percent[1]
    );
    let problems = verdict(r);
    let _ = writeln!(
        t,
        "\nVerdict: {}",
        if problems.is_empty() {
            "every invariant held".to_string()
        } else {
            problems.join("; ")
        }
    );
    t
}
