//! What `havip check` can tell about the routing daemon on this machine: whether it runs,
//! and whether it takes in the table havip writes. Only the daemon knows what it does with
//! the routes; these are the mistakes that leave a healthy node announcing nothing.
//!
//! - FRR: live `zebra`, `bgpd` and `bfdd` (their pid files under `/var/run/frr[/NAME]`), and
//!   in `vtysh [-N NAME] -c "show running-config"` an `ip import-table TABLE` (zebra) and a
//!   `redistribute table TABLE` (bgpd).
//! - BIRD: `birdc show status` answers, and `/etc/bird/bird.conf` names `kernel table TABLE`.
//!
//! The judging is pure ([`frr_findings`], [`bird_findings`]); [`warnings`] gathers the facts.
//! Lifecycle: called once by `havip check`; the commands it runs are bounded in time.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use havip_config::bgp::{BgpSettings, RoutingDaemon};
use havip_config::lint::Warning;
use havip_config::place::{Place, Places};
use havip_config::Config;

/// How long `vtysh` or `birdc` may take to answer.
const COMMAND_LIMIT: Duration = Duration::from_secs(5);

/// What was seen of FRR.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FrrFacts {
    /// The run directory looked in.
    pub run_dir: PathBuf,
    /// zebra, bgpd, bfdd: whether each runs (a live pid in its pid file).
    pub zebra: bool,
    /// See `zebra`.
    pub bgpd: bool,
    /// See `zebra`.
    pub bfdd: bool,
    /// `show running-config`, when vtysh answered.
    pub running_config: Option<String>,
}

/// What is wrong with FRR for an announcement through `table`; empty when nothing is.
pub fn frr_findings(table: u32, facts: &FrrFacts) -> Vec<String> {
    let dir = facts.run_dir.display();
    let mut out = Vec::new();
    if !facts.zebra || !facts.bgpd {
        let missing: Vec<&str> = [("zebra", facts.zebra), ("bgpd", facts.bgpd)]
            .iter()
            .filter(|(_, up)| !up)
            .map(|(name, _)| *name)
            .collect();
        out.push(format!(
            "FRR's {} not running here (no live pid in {dir}): nothing announces the \
             routes havip keeps in table {table}; enable zebra and bgpd in /etc/frr/daemons",
            missing.join(" and ") + if missing.len() == 1 { " is" } else { " are" }
        ));
        return out;
    }
    if !facts.bfdd {
        out.push(format!(
            "FRR's bfdd is not running (no live pid in {dir}): a node that dies is withdrawn \
             only after the BGP hold time, not in 3 x the BFD interval; set bfdd=yes in \
             /etc/frr/daemons"
        ));
    }
    let Some(config) = &facts.running_config else {
        out.push(
            "vtysh did not answer `show running-config`: cannot tell whether FRR imports the table"
                .into(),
        );
        return out;
    };
    let has = |words: &[&str]| {
        config.lines().any(|line| {
            let found: Vec<&str> = line.split_whitespace().collect();
            found.len() >= words.len() && found[..words.len()] == *words
        })
    };
    let table = table.to_string();
    if !has(&["ip", "import-table", &table]) && !has(&["ipv6", "import-table", &table]) {
        out.push(format!(
            "FRR does not import table {table}: zebra needs `ip import-table {table}` \
             (FRR 8.4 imports IPv4 tables only), or the routes stay in the kernel"
        ));
    }
    if !has(&["redistribute", "table", &table]) {
        out.push(format!(
            "FRR's bgpd does not announce table {table}: add `redistribute table {table} \
             route-map havip-vips` under `address-family ipv4 unicast` (see examples/frr/node.frr.conf)"
        ));
    }
    out
}

/// What was seen of BIRD.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BirdFacts {
    /// `birdc show status` answered.
    pub running: bool,
    /// `/etc/bird/bird.conf`, when readable.
    pub config: Option<String>,
}

/// What is wrong with BIRD for an announcement through `table`.
pub fn bird_findings(table: u32, facts: &BirdFacts) -> Vec<String> {
    if !facts.running {
        return vec![format!(
            "BIRD is not running here (birdc show status did not answer): nothing announces \
             the routes havip keeps in table {table}"
        )];
    }
    let Some(config) = &facts.config else {
        return Vec::new();
    };
    let words: Vec<&str> = config
        .split(|c: char| c.is_whitespace() || c == ';' || c == '{')
        .filter(|w| !w.is_empty())
        .collect();
    let table = table.to_string();
    let imports = words
        .windows(2)
        .any(|pair| pair[0] == "table" && pair[1] == table)
        && words.contains(&"kernel");
    if imports {
        Vec::new()
    } else {
        vec![format!(
            "/etc/bird/bird.conf has no `kernel table {table}` protocol: BIRD does not learn \
             the routes havip keeps there"
        )]
    }
}

/// The daemon warnings of every `[[bgp]]` in `config`, placed at its `daemon` key (or
/// the table), one look per daemon and table.
pub fn warnings(config: &Config, places: &Places) -> Vec<Warning> {
    let mut out = Vec::new();
    let mut seen: Vec<(RoutingDaemon, u32)> = Vec::new();
    for (i, settings) in config.bgp.iter().enumerate() {
        if seen.contains(&(settings.daemon.clone(), settings.table)) {
            continue;
        }
        seen.push((settings.daemon.clone(), settings.table));
        let place = place(places, i);
        for message in findings(settings) {
            out.push(Warning {
                place: place.clone(),
                message: format!("[[bgp]] {:?}: {message}", settings.name),
            });
        }
    }
    out
}

fn place(places: &Places, i: usize) -> Place {
    [
        format!("bgp[{i}].daemon"),
        format!("bgp[{i}].table"),
        format!("bgp[{i}]"),
    ]
    .iter()
    .find_map(|key| places.get(key).cloned())
    .unwrap_or_else(|| Place::new(&Arc::from(""), 0, 0, format!("bgp[{i}]")))
}

fn findings(settings: &BgpSettings) -> Vec<String> {
    match &settings.daemon {
        RoutingDaemon::Frr { instance } => {
            let run_dir = match instance {
                Some(name) => Path::new("/var/run/frr").join(name),
                None => PathBuf::from("/var/run/frr"),
            };
            let alive = |daemon: &str| pid_alive(&run_dir.join(format!("{daemon}.pid")));
            let mut facts = FrrFacts {
                zebra: alive("zebra"),
                bgpd: alive("bgpd"),
                bfdd: alive("bfdd"),
                run_dir: run_dir.clone(),
                running_config: None,
            };
            if facts.zebra && facts.bgpd {
                let mut args: Vec<&str> = Vec::new();
                if let Some(name) = instance {
                    args.extend(["-N", name.as_str()]);
                }
                args.extend(["-c", "show running-config"]);
                facts.running_config = bounded("vtysh", &args);
            }
            frr_findings(settings.table, &facts)
        }
        RoutingDaemon::Bird => {
            let facts = BirdFacts {
                running: bounded("birdc", &["show", "status"]).is_some(),
                config: std::fs::read_to_string("/etc/bird/bird.conf").ok(),
            };
            bird_findings(settings.table, &facts)
        }
    }
}

/// Whether the pid in `file` is a live process.
fn pid_alive(file: &Path) -> bool {
    std::fs::read_to_string(file)
        .ok()
        .and_then(|text| text.trim().parse::<u32>().ok())
        .is_some_and(|pid| Path::new("/proc").join(pid.to_string()).exists())
}

/// The output of `program args` when it succeeds within [`COMMAND_LIMIT`]; a program
/// that overruns is killed (our own child, by its handle).
fn bounded(program: &str, args: &[&str]) -> Option<String> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut stdout = child.stdout.take()?;
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let step = Duration::from_millis(20);
    let mut waited = Duration::ZERO;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if waited < COMMAND_LIMIT => {
                std::thread::sleep(step);
                waited += step;
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let text = reader.join().ok()?;
    status.filter(|s| s.success()).map(|_| text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn running(config: &str) -> FrrFacts {
        FrrFacts {
            run_dir: "/var/run/frr".into(),
            zebra: true,
            bgpd: true,
            bfdd: true,
            running_config: Some(config.into()),
        }
    }

    const GOOD: &str = "frr version 8.4.4\nip import-table 100\n!\nrouter bgp 65001\n address-family ipv4 unicast\n  redistribute table 100 route-map havip-vips\n";

    #[test]
    fn a_well_set_up_frr_gives_no_finding() {
        assert!(frr_findings(100, &running(GOOD)).is_empty());
    }

    #[test]
    fn each_missing_piece_is_named() {
        let other = frr_findings(101, &running(GOOD));
        assert_eq!(other.len(), 2, "{other:?}");
        assert!(other[0].contains("ip import-table 101"), "{other:?}");
        assert!(other[1].contains("redistribute table 101"), "{other:?}");
        // "1000" is not "100".
        let near = GOOD.replace("table 100", "table 1000");
        assert_eq!(frr_findings(100, &running(&near)).len(), 2);
        let no_bfd = FrrFacts {
            bfdd: false,
            ..running(GOOD)
        };
        let found = frr_findings(100, &no_bfd);
        assert_eq!(found.len(), 1);
        assert!(found[0].contains("bfdd"), "{found:?}");
        let down = FrrFacts {
            bgpd: false,
            ..running(GOOD)
        };
        let found = frr_findings(100, &down);
        assert_eq!(found.len(), 1, "nothing more is asked of a stopped FRR");
        assert!(found[0].contains("bgpd is not running"), "{found:?}");
        let silent = FrrFacts {
            running_config: None,
            ..running(GOOD)
        };
        assert!(frr_findings(100, &silent)[0].contains("vtysh did not answer"));
    }

    #[test]
    fn bird_needs_to_run_and_name_the_table() {
        let config = "protocol kernel havip {\n  kernel table 100;\n  ipv4 { import all; export none; };\n}\n";
        let facts = BirdFacts {
            running: true,
            config: Some(config.into()),
        };
        assert!(bird_findings(100, &facts).is_empty());
        assert_eq!(bird_findings(101, &facts).len(), 1);
        let stopped = BirdFacts {
            running: false,
            ..facts
        };
        assert!(bird_findings(100, &stopped)[0].contains("not running"));
    }

    #[test]
    fn a_command_that_is_missing_or_fails_gives_nothing() {
        assert_eq!(bounded("/nonexistent/vtysh", &[]), None);
        assert_eq!(bounded("false", &[]), None);
        assert_eq!(bounded("echo", &["hi"]).as_deref(), Some("hi\n"));
    }
}
