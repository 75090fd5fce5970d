//! `[[bgp]]`: virtual addresses announced by BGP through the node's routing daemon (FRR or
//! BIRD), instead of (or beside) VRRP. Every healthy node announces the VIP as a host route
//! and the routers spread flows over the nodes with ECMP.
//!
//! havip is not a BGP speaker. It keeps each VIP as a host route in a kernel routing table of
//! its own (`table`), which the daemon imports (FRR: `ip import-table` in zebra and
//! `redistribute table` in bgpd; BIRD: a `kernel` protocol on that table) and announces to
//! its peers; the route is there while every tracker the instance follows is healthy, and
//! withdrawn when one fails or havip stops. Peering, BFD, route-maps and ECMP are the
//! daemon's configuration, in a file the operator owns (`examples/frr/`, `docs/bgp.md`).
//!
//! What is only known on the running machine (whether the daemon runs and imports the
//! table) is asked by `havip check` on the node, not here.

use std::net::IpAddr;
use std::time::Duration;

use crate::address::parse_cidr;
use crate::keys;
use crate::reader::{not_one_of, Record, TableReader, Written};
use crate::vrrp::TrackerSettings;

/// The table the examples use, and the default: `ip import-table 100` in FRR's zebra.
pub const DEFAULT_TABLE: u32 = 100;
/// How long a stopping node keeps accepting after it withdrew its routes: the time the
/// withdrawal takes to reach every router (a few hundred milliseconds through one hop with
/// BFD-era timers; more behind route reflectors).
pub const DEFAULT_SHUTDOWN_DELAY: Duration = Duration::from_secs(2);
/// The longest `shutdown_delay` (systemd's default stop timeout is 90 s, with the grace).
const MAX_SHUTDOWN_DELAY: Duration = Duration::from_secs(300);
/// FRR's zebra imports kernel tables 1-252 (`ip import-table (1-252)`).
const FRR_MAX_TABLE: u32 = 252;

/// One announcement: VIPs this node announces while healthy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BgpSettings {
    /// Names logs, metrics and events.
    pub name: String,
    /// The VIPs, each announced as a host route (/32 or /128).
    pub virtual_addresses: Vec<IpAddr>,
    /// The kernel routing table havip keeps the host routes in, which the daemon imports.
    pub table: u32,
    /// The trackers whose failure withdraws the routes (any one of them).
    pub track: Vec<String>,
    /// On SIGTERM: how long to keep accepting after the routes are withdrawn.
    pub shutdown_delay: Duration,
    /// The routing daemon that imports the table (for `havip check` and the status).
    pub daemon: RoutingDaemon,
}

/// The daemon that announces the routes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoutingDaemon {
    /// FRRouting: zebra imports the table, bgpd announces it, bfdd watches the peers.
    Frr {
        /// The `-N` instance name when FRR runs as several instances on one machine
        /// (`vtysh -N NAME`); `None` for the ordinary single instance.
        instance: Option<String>,
    },
    /// BIRD 2: a `kernel` protocol learns the table, a `bgp` protocol announces it.
    Bird,
}

impl RoutingDaemon {
    /// The name written in the config: `frr` or `bird`.
    pub fn as_str(&self) -> &'static str {
        match self {
            RoutingDaemon::Frr { .. } => "frr",
            RoutingDaemon::Bird => "bird",
        }
    }
}

/// Every `[[bgp]]`; trackers are checked against `trackers` (read first).
pub(crate) fn read_bgp(
    p: &mut Record,
    root: &mut TableReader<'_, '_>,
    trackers: &[TrackerSettings],
) -> Vec<BgpSettings> {
    let mut out: Vec<BgpSettings> = Vec::new();
    for mut t in root.tables(p, "bgp", keys::BGP.keys) {
        if let Some(settings) = read_one(p, &mut t, trackers) {
            if out.iter().any(|o| o.name == settings.name) {
                p.add(
                    &t.span(),
                    t.key("name"),
                    format!("a [[bgp]] named {:?} is already defined", settings.name),
                );
            }
            // One route has one owner: the same VIP twice in one table would be withdrawn by
            // one instance while the other still wants it.
            for address in &settings.virtual_addresses {
                if let Some(other) = out
                    .iter()
                    .find(|o| o.table == settings.table && o.virtual_addresses.contains(address))
                {
                    p.add(
                        &t.span(),
                        t.key("virtual_addresses"),
                        format!(
                            "{address} is already announced by [[bgp]] {:?} through table {}",
                            other.name, settings.table
                        ),
                    );
                }
            }
            out.push(settings);
        }
        t.finish(p);
    }
    out
}

/// One `[[bgp]]`; `None` when any of its keys had a problem (the load fails anyway).
fn read_one(
    p: &mut Record,
    t: &mut TableReader<'_, '_>,
    trackers: &[TrackerSettings],
) -> Option<BgpSettings> {
    let before = p.count();
    let name = t.required_name(p, "[[bgp]]");
    let virtual_addresses = read_addresses(p, t);
    let daemon = read_daemon(p, t);
    let table = read_table(p, t, &daemon);
    let track = read_track(p, t, trackers);
    let shutdown_delay = match t.duration(p, "shutdown_delay") {
        Some(d) if d.value > MAX_SHUTDOWN_DELAY => {
            p.add(&d.span, t.key("shutdown_delay"), "at most 5m");
            DEFAULT_SHUTDOWN_DELAY
        }
        Some(d) => d.value,
        None => DEFAULT_SHUTDOWN_DELAY,
    };
    (p.count() == before).then_some(BgpSettings {
        name,
        virtual_addresses,
        table,
        track,
        shutdown_delay,
        daemon,
    })
}

/// `virtual_addresses = ["10.88.88.70", "2001:db8::70/128"]`: host addresses, each once.
fn read_addresses(p: &mut Record, t: &mut TableReader<'_, '_>) -> Vec<IpAddr> {
    let key = t.key("virtual_addresses");
    let Some(items) = t.strings(p, "virtual_addresses") else {
        if !t.has("virtual_addresses") {
            p.add(
                &t.span(),
                &key,
                "missing: the VIP(s) to announce, e.g. virtual_addresses = [\"10.88.88.70\"]",
            );
        }
        return Vec::new();
    };
    if items.is_empty() {
        p.add(&t.span(), &key, "must list at least one address");
    }
    let mut out = Vec::new();
    for (i, at) in items.iter().enumerate() {
        let item_key = format!("{key}[{i}]");
        match parse_cidr(at.value.trim()) {
            Err(e) => p.add(&at.span, &item_key, e.to_string()),
            Ok((address, len)) if len != if address.is_ipv4() { 32 } else { 128 } => p.add(
                &at.span,
                &item_key,
                format!(
                    "a VIP is announced as a host route: write {address} (or {address}/{}); \
                     the routers learn the prefix of the segment elsewhere",
                    if address.is_ipv4() { 32 } else { 128 }
                ),
            ),
            Ok((address, _)) if address.is_unspecified() || address.is_loopback() => p.add(
                &at.span,
                &item_key,
                format!("{address} cannot be announced"),
            ),
            Ok((address, _)) if out.contains(&address) => {
                p.add(&at.span, &item_key, format!("{address} is listed twice"))
            }
            Ok((address, _)) => out.push(address),
        }
    }
    out
}

fn read_daemon(p: &mut Record, t: &mut TableReader<'_, '_>) -> RoutingDaemon {
    let daemon = match t.string(p, "daemon") {
        None => "frr".to_string(),
        Some(Written { value, span }) => match value.as_str() {
            "frr" | "bird" => value,
            other => {
                p.add(
                    &span,
                    t.key("daemon"),
                    not_one_of(
                        other,
                        "a routing daemon",
                        &["frr", "bird"],
                        "use \"frr\" or \"bird\"",
                    ),
                );
                "frr".to_string()
            }
        },
    };
    let instance = t.string(p, "frr_instance");
    if daemon == "bird" {
        if let Some(at) = &instance {
            p.add(
                &at.span,
                t.key("frr_instance"),
                "only for daemon = \"frr\" (FRR's -N instance name)",
            );
        }
        return RoutingDaemon::Bird;
    }
    if let Some(at) = &instance {
        // FRR's pathspace names a directory under /var/run/frr.
        let valid = !at.value.is_empty()
            && at.value.len() <= 64
            && at
                .value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !valid {
            p.add(
                &at.span,
                t.key("frr_instance"),
                "an FRR instance name (vtysh -N NAME): letters, digits, '-', '_', '.'",
            );
        }
    }
    RoutingDaemon::Frr {
        instance: instance.map(|at| at.value),
    }
}

fn read_table(p: &mut Record, t: &mut TableReader<'_, '_>, daemon: &RoutingDaemon) -> u32 {
    let Some(at) = t.int(p, "table", 1..=i64::from(u32::MAX)) else {
        return DEFAULT_TABLE;
    };
    let table = u32::try_from(at.value).unwrap_or(DEFAULT_TABLE);
    let key = t.key("table");
    match table {
        253..=255 => p.add(
            &at.span,
            key,
            format!(
                "table {table} is the kernel's {} table; use a table of its own, e.g. 100",
                match table {
                    253 => "default",
                    254 => "main",
                    _ => "local",
                }
            ),
        ),
        _ if matches!(daemon, RoutingDaemon::Frr { .. }) && table > FRR_MAX_TABLE => p.add(
            &at.span,
            key,
            format!("FRR's zebra imports tables 1-{FRR_MAX_TABLE} (ip import-table)"),
        ),
        _ => {}
    }
    table
}

/// `track = ["apiservers"]`: defined trackers, each once. No per-use weights: weights move
/// VRRP priorities, and an announcement is either made or withdrawn.
fn read_track(
    p: &mut Record,
    t: &mut TableReader<'_, '_>,
    trackers: &[TrackerSettings],
) -> Vec<String> {
    let key = t.key("track");
    let mut out: Vec<String> = Vec::new();
    for (i, at) in t.strings(p, "track").unwrap_or_default().iter().enumerate() {
        let item_key = format!("{key}[{i}]");
        if !trackers.iter().any(|tracker| tracker.name == at.value) {
            let known: Vec<&str> = trackers.iter().map(|tr| tr.name.as_str()).collect();
            let message = if known.is_empty() {
                format!("no [[tracker]] is named {:?}", at.value)
            } else {
                format!(
                    "no [[tracker]] is named {:?} (defined: {})",
                    at.value,
                    known.join(", ")
                )
            };
            p.add(&at.span, &item_key, message);
        } else if out.contains(&at.value) {
            p.add(&at.span, &item_key, "tracked twice");
        } else {
            out.push(at.value.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    const BASE: &str = r#"
[[service]]
name = "api"
listen = "10.99.0.100:6443"
[[service.backend]]
address = "10.0.0.1:6443"
[[tracker]]
name = "backends"
kind = "service"
service = "api"
"#;

    fn read(extra: &str) -> Result<Vec<BgpSettings>, Vec<String>> {
        let text = format!("{BASE}{extra}");
        match crate::read(Path::new("havip.toml"), &text).into_result() {
            Ok((config, _)) => Ok(config.bgp),
            Err(problems) => Err(problems.iter().map(|p| p.to_string()).collect()),
        }
    }

    fn problems(extra: &str) -> Vec<String> {
        read(extra).expect_err("problems expected")
    }

    #[test]
    fn a_minimal_announcement_takes_the_defaults() {
        let bgp = read(
            "[[bgp]]\nname = \"vip\"\nvirtual_addresses = [\"10.99.0.100\", \"2001:db8::70/128\"]\ntrack = [\"backends\"]\n",
        )
        .unwrap();
        assert_eq!(
            bgp,
            vec![BgpSettings {
                name: "vip".into(),
                virtual_addresses: vec![
                    "10.99.0.100".parse().unwrap(),
                    "2001:db8::70".parse().unwrap()
                ],
                table: DEFAULT_TABLE,
                track: vec!["backends".into()],
                shutdown_delay: DEFAULT_SHUTDOWN_DELAY,
                daemon: RoutingDaemon::Frr { instance: None },
            }]
        );
        let bird = read(
            "[[bgp]]\nname = \"vip\"\nvirtual_addresses = [\"10.99.0.100/32\"]\ndaemon = \"bird\"\ntable = 1000\nshutdown_delay = \"500ms\"\n",
        )
        .unwrap();
        assert_eq!(bird[0].daemon, RoutingDaemon::Bird);
        assert_eq!(bird[0].table, 1000);
        assert_eq!(bird[0].shutdown_delay, Duration::from_millis(500));
    }

    #[test]
    fn addresses_are_host_addresses_listed_once() {
        let got = problems(
            "[[bgp]]\nname = \"vip\"\nvirtual_addresses = [\"10.99.0.0/24\", \"10.99.0.1\", \"10.99.0.1\", \"0.0.0.0\", \"nope\"]\n",
        );
        assert_eq!(got.len(), 4, "{got:#?}");
        assert!(
            got[0].contains(
                "virtual_addresses[0]: a VIP is announced as a host route: write 10.99.0.0"
            ),
            "{got:#?}"
        );
        assert!(
            got[1].contains("virtual_addresses[2]: 10.99.0.1 is listed twice"),
            "{got:#?}"
        );
        assert!(got[2].contains("0.0.0.0 cannot be announced"), "{got:#?}");
        assert!(got[3].contains("virtual_addresses[4]"), "{got:#?}");
        let got = problems("[[bgp]]\nname = \"vip\"\n");
        assert!(
            got[0].contains("bgp[0].virtual_addresses: missing"),
            "{got:#?}"
        );
    }

    #[test]
    fn tables_daemons_and_trackers_are_checked() {
        let got =
            problems("[[bgp]]\nname = \"a\"\nvirtual_addresses = [\"10.99.0.100\"]\ntable = 254\n");
        assert!(
            got[0].contains("bgp[0].table: table 254 is the kernel's main table"),
            "{got:#?}"
        );
        let got =
            problems("[[bgp]]\nname = \"a\"\nvirtual_addresses = [\"10.99.0.100\"]\ntable = 300\n");
        assert!(
            got[0].contains("FRR's zebra imports tables 1-252"),
            "{got:#?}"
        );
        let got = problems(
            "[[bgp]]\nname = \"a\"\nvirtual_addresses = [\"10.99.0.100\"]\ndaemon = \"brid\"\n",
        );
        assert!(got[0].contains("did you mean \"bird\""), "{got:#?}");
        let got = problems(
            "[[bgp]]\nname = \"a\"\nvirtual_addresses = [\"10.99.0.100\"]\ndaemon = \"bird\"\nfrr_instance = \"n0\"\n",
        );
        assert!(
            got[0].contains("bgp[0].frr_instance: only for daemon = \"frr\""),
            "{got:#?}"
        );
        let got = problems(
            "[[bgp]]\nname = \"a\"\nvirtual_addresses = [\"10.99.0.100\"]\nfrr_instance = \"a b\"\n",
        );
        assert!(got[0].contains("an FRR instance name"), "{got:#?}");
        let got = problems(
            "[[bgp]]\nname = \"a\"\nvirtual_addresses = [\"10.99.0.100\"]\ntrack = [\"backend\", \"backends\", \"backends\"]\n",
        );
        assert_eq!(got.len(), 2, "{got:#?}");
        assert!(
            got[0].contains(
                "bgp[0].track[0]: no [[tracker]] is named \"backend\" (defined: backends)"
            ),
            "{got:#?}"
        );
        assert!(
            got[1].contains("bgp[0].track[2]: tracked twice"),
            "{got:#?}"
        );
        let ok = read("[[bgp]]\nname = \"a\"\nvirtual_addresses = [\"10.99.0.100\"]\nfrr_instance = \"node-1\"\n").unwrap();
        assert_eq!(
            ok[0].daemon,
            RoutingDaemon::Frr {
                instance: Some("node-1".into())
            }
        );
    }

    #[test]
    fn one_route_has_one_owner() {
        let got = problems(
            "[[bgp]]\nname = \"a\"\nvirtual_addresses = [\"10.99.0.100\"]\n[[bgp]]\nname = \"a\"\nvirtual_addresses = [\"10.99.0.100\"]\n",
        );
        assert_eq!(got.len(), 2, "{got:#?}");
        assert!(
            got[0].contains("bgp[1].name: a [[bgp]] named \"a\" is already defined"),
            "{got:#?}"
        );
        assert!(got[1].contains("bgp[1].virtual_addresses: 10.99.0.100 is already announced by [[bgp]] \"a\" through table 100"), "{got:#?}");
        // Through another table it is another route (another daemon, another peering).
        read("[[bgp]]\nname = \"a\"\nvirtual_addresses = [\"10.99.0.100\"]\n[[bgp]]\nname = \"b\"\ntable = 101\nvirtual_addresses = [\"10.99.0.100\"]\n").unwrap();
        let got = problems(
            "[[bgp]]\nname = \"a\"\nvirtual_addresses = [\"10.99.0.100\"]\nshutdown_delay = \"10m\"\nweight = 3\n",
        );
        assert!(got[0].contains("shutdown_delay: at most 5m"), "{got:#?}");
        assert!(got[1].contains("bgp[0].weight: unknown key"), "{got:#?}");
    }
}
