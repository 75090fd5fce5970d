//! `docs/config.md` and the code agree: every key the reader accepts is documented in its
//! section's part of the page, and every documented default is the default the reader
//! gives. A key added without docs, or a default changed in one place only, fails here.

use std::path::Path;

use havip_config::keys::{self, Section};
use havip_config::{read, Config};

/// The page, split at its headings.
struct Page {
    parts: Vec<Part>,
}

/// The text under one heading, up to the next heading of any level.
struct Part {
    /// The TOML path the heading names (`service.health` for "### `[service.health]`"),
    /// empty for headings that name none.
    path: String,
    lines: Vec<String>,
}

/// One row of a table whose first column is `key`.
#[derive(Debug)]
struct Row {
    /// The backticked names of the first column (`rise`, `fall`).
    keys: Vec<String>,
    /// The whole row, for keys documented inside another key's row.
    text: String,
    /// The default column, as written.
    default: Option<String>,
}

impl Page {
    fn load() -> Page {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/config.md");
        let text = std::fs::read_to_string(&path).expect("docs/config.md");
        let mut parts = vec![Part {
            path: String::new(),
            lines: Vec::new(),
        }];
        for line in text.lines() {
            if line.starts_with('#') {
                parts.push(Part {
                    path: heading_path(line),
                    lines: Vec::new(),
                });
            } else if let Some(part) = parts.last_mut() {
                part.lines.push(line.to_string());
            }
        }
        Page { parts }
    }

    fn part(&self, path: &str) -> Option<&Part> {
        self.parts
            .iter()
            .find(|p| !p.path.is_empty() && p.path == path)
    }
}

/// "## `[[service]]`" -> "service"; "### Damping: ..." -> "".
fn heading_path(line: &str) -> String {
    let Some(code) = backticked(line).into_iter().next() else {
        return String::new();
    };
    let inner = code.trim_start_matches('[').trim_end_matches(']');
    if code.starts_with('[') && !inner.is_empty() {
        inner.to_string()
    } else {
        String::new()
    }
}

/// The `code` spans of a line.
fn backticked(text: &str) -> Vec<String> {
    text.split('`')
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, s)| s.to_string())
        .collect()
}

fn cells(line: &str) -> Vec<String> {
    let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
    inner.split('|').map(|c| c.trim().to_string()).collect()
}

/// What the table being read is.
enum Table {
    /// A key table, with the index of its default column if it has one.
    Keys(Option<usize>),
    /// Any other table (metrics, log fields): skipped.
    Other,
}

impl Part {
    /// The rows of the part's key tables (tables whose header's first column is "key").
    fn rows(&self) -> Vec<Row> {
        let mut out = Vec::new();
        let mut table: Option<Table> = None;
        for line in &self.lines {
            if !line.trim_start().starts_with('|') {
                table = None;
                continue;
            }
            let cells = cells(line);
            match &table {
                None if cells.first().is_some_and(|c| c == "key") => {
                    table = Some(Table::Keys(cells.iter().position(|c| c == "default")));
                }
                None => table = Some(Table::Other),
                Some(Table::Other) => {}
                Some(Table::Keys(_)) if cells.iter().all(|c| c.chars().all(|ch| ch == '-')) => {}
                Some(Table::Keys(column)) => out.push(Row {
                    keys: backticked(&cells[0]),
                    text: line.clone(),
                    default: column.and_then(|i| cells.get(i).cloned()),
                }),
            }
        }
        out
    }
}

/// Where a section is documented: its own part, or (for the tables written inside a key of
/// another section, like a `virtual_addresses` entry) its parent's row for that key.
fn documented_in(page: &Page, section: &Section) -> Result<(), String> {
    if section.path.is_empty() {
        // The top level: each key has a part of its own.
        for key in section.keys {
            if page.part(key).is_none() {
                return Err(format!("no heading for the [{key}] section"));
            }
        }
        return Ok(());
    }
    if let Some(part) = page.part(section.path) {
        let rows = part.rows();
        let missing: Vec<&str> = section
            .keys
            .iter()
            .copied()
            .filter(|k| !rows.iter().any(|r| r.keys.iter().any(|rk| rk == k)))
            // A key that is a table of its own has its own part (`[service.timeouts]`).
            .filter(|k| page.part(&format!("{}.{k}", section.path)).is_none())
            .collect();
        return if missing.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "[{}]: no table row for {}",
                section.path,
                missing.join(", ")
            ))
        };
    }
    let (parent, key) = section
        .path
        .rsplit_once('.')
        .ok_or_else(|| format!("[{}] has no part of the page", section.path))?;
    let part = page
        .part(parent)
        .ok_or_else(|| format!("[{}] has no part of the page", section.path))?;
    let rows = part.rows();
    let row = rows
        .iter()
        .find(|r| r.keys.first().is_some_and(|k| k == key))
        .ok_or_else(|| format!("[{parent}] has no row for {key}"))?;
    let missing: Vec<&str> = section
        .keys
        .iter()
        .copied()
        .filter(|k| !row.text.contains(&format!("{k} = ")))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the row of {parent}.{key} does not show {}",
            missing.join(", ")
        ))
    }
}

#[test]
fn every_key_is_documented_in_its_section() {
    let page = Page::load();
    let problems: Vec<String> = keys::ALL
        .iter()
        .filter_map(|s| documented_in(&page, s).err())
        .collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn a_key_documented_elsewhere_does_not_count() {
    // The check looks in the section's own part: `weight` is a row of [[service.backend]],
    // so a made-up section of the backend table claiming it elsewhere fails.
    let page = Page::load();
    let wrong = Section {
        path: "service.passive",
        keys: &["weight"],
    };
    assert!(documented_in(&page, &wrong).is_err());
    let right = Section {
        path: "service.backend",
        keys: &["weight"],
    };
    assert!(documented_in(&page, &right).is_ok());
}

// ---------------------------------------------------------------------------------------
// Defaults

/// A config in which every documented section is present with only the keys it needs;
/// `#PATH` marks where a key of that section goes. Kind-specific tracker keys go to the
/// tracker of their kind (`#tracker.service`).
const BASE: &str = r#"
[global]
#global
[log]
#log
[admin]
#admin
[control]
#control
[[service]]
name = "api"
listen = "127.0.0.1:8443"
#service
[service.timeouts]
#service.timeouts
[service.limits]
#service.limits
[service.health]
#service.health
[service.health.tls]
#service.health.tls
[service.passive]
#service.passive
[[service.backend]]
address = "10.0.0.1:6443"
#service.backend
[[tracker]]
name = "script"
kind = "script"
command = "/bin/true"
#tracker
[[tracker]]
name = "healthy"
kind = "service"
service = "api"
#tracker.service
[[vrrp]]
name = "VI_1"
interface = "eth0"
vrid = 7
virtual_addresses = ["192.0.2.10/24"]
track = ["script", "healthy"]
#vrrp
[vrrp.announce]
#vrrp.announce
[vrrp.notify]
#vrrp.notify
[[bgp]]
name = "vip"
virtual_addresses = ["192.0.2.100"]
#bgp
"#;

/// Variants of [`BASE`] in which other keys matter (`buffer_size` only in buffered mode): a
/// key already set by the variant is not tried in it.
const VARIANTS: &[(&str, &str)] = &[("", ""), ("global", "copy = \"buffered\"")];

/// Keys of one kind of tracker.
const KIND_PLACEHOLDER: &[(&str, &str)] = &[
    ("min_healthy", "tracker.service"),
    ("min_healthy_fraction", "tracker.service"),
    ("drain_counts_as_down", "tracker.service"),
];

/// Documented defaults that are words, not values one can write; `documented_prose_defaults`
/// checks each by hand. (Section, key, the default column as written.)
const PROSE: &[(&str, &str, &str)] = &[
    ("global", "max_conns", "none"),
    ("admin", "auth", "none (open)"),
    ("admin", "tls_cert", "none (plain HTTP)"),
    ("admin", "tls_key", "none (plain HTTP)"),
    ("control", "group", "havip's group"),
    ("service", "slow_start", "off"),
    ("service.limits", "max_conns", "none"),
    ("service.health", "host", "backend address"),
    ("service.health", "down_interval", "same as `interval`"),
    ("service.health", "port", "backend port"),
    ("service.health.tls", "ca_file", "system store"),
    ("service.health.tls", "client_cert", "none"),
    ("service.health.tls", "sni", "backend host"),
    ("service.backend", "name", "the address"),
    ("service.backend", "max_conns", "none"),
    (
        "vrrp",
        "source",
        "the interface's primary address (IPv6: link-local)",
    ),
    ("vrrp", "unicast_peers", "none (multicast)"),
    ("vrrp", "auth_pass", "none"),
    ("vrrp", "track", "none"),
    ("vrrp.notify", "command", "none"),
    ("vrrp.notify", "master", "none"),
    ("vrrp.notify", "user", "havip's user"),
    ("tracker", "timeout", "the interval"),
    ("tracker", "user", "havip's user"),
    ("bgp", "track", "none"),
    ("bgp", "frr_instance", "none"),
];

/// Default columns that say there is none: the key must be given (or belongs to one kind).
const NO_DEFAULT: &[&str] = &["required", "—"];

fn base(variant: &(&str, &str)) -> String {
    let (path, line) = variant;
    if path.is_empty() {
        BASE.to_string()
    } else {
        BASE.replace(&format!("#{path}\n"), &format!("{line}\n#{path}\n"))
    }
}

fn read_ok(text: &str) -> Config {
    match read(Path::new("docs.toml"), text).into_result() {
        Ok((config, _)) => config,
        Err(problems) => panic!(
            "{}\nin:\n{text}",
            problems
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        ),
    }
}

/// The backticked TOML values of a default cell (`"30s"`, `0`, `[200]`), in order.
fn literals(cell: &str) -> Vec<String> {
    backticked(cell)
        .into_iter()
        .filter(|code| toml::from_str::<toml::Table>(&format!("v = {code}")).is_ok())
        .collect()
}

/// Every (section, key, documented value) that can be written, and the prose defaults met.
fn documented_defaults(page: &Page) -> (Vec<(String, String, String)>, Vec<String>) {
    let mut values = Vec::new();
    let mut unexplained = Vec::new();
    for section in keys::ALL {
        let Some(part) = page.part(section.path) else {
            continue;
        };
        for row in part.rows() {
            let Some(cell) = row.default.as_deref() else {
                continue;
            };
            let found = literals(cell);
            if found.is_empty() {
                let key = row.keys.first().map_or("", String::as_str);
                let listed = PROSE
                    .iter()
                    .any(|(s, k, text)| *s == section.path && *k == key && *text == cell);
                if !listed && !NO_DEFAULT.contains(&cell) {
                    unexplained.push(format!("[{}] {key}: {cell}", section.path));
                }
                continue;
            }
            // `rise`, `fall` | `1`, `1`: pairwise; otherwise the value is the first key's
            // (`weight` | `0` (`file`: `1`): the other value is prose about one kind).
            let pairs: Vec<(String, String)> = if found.len() == row.keys.len() {
                row.keys.iter().cloned().zip(found).collect()
            } else {
                vec![(row.keys[0].clone(), found[0].clone())]
            };
            for (key, value) in pairs {
                values.push((section.path.to_string(), key, value));
            }
        }
    }
    (values, unexplained)
}

/// Writing a documented default explicitly gives the same config as leaving it out, in
/// every variant where the key matters: so the documented value *is* the default.
#[test]
fn documented_defaults_are_the_defaults() {
    let page = Page::load();
    let (values, unexplained) = documented_defaults(&page);
    assert!(
        unexplained.is_empty(),
        "defaults that are neither a value nor listed in PROSE:\n{}",
        unexplained.join("\n")
    );
    // Every section with a table of defaults took part.
    assert!(
        values.len() >= 55,
        "only {} documented defaults",
        values.len()
    );
    let mut wrong = Vec::new();
    for variant in VARIANTS {
        let text = base(variant);
        let omitted = read_ok(&text);
        for (section, key, value) in &values {
            if variant.0 == section && variant.1.starts_with(&format!("{key} =")) {
                continue;
            }
            let placeholder = KIND_PLACEHOLDER
                .iter()
                .find(|(k, _)| *k == key && section == "tracker")
                .map_or(section.as_str(), |(_, p)| p);
            let written = text.replace(
                &format!("#{placeholder}\n"),
                &format!("{key} = {value}\n#{placeholder}\n"),
            );
            assert_ne!(written, text, "no #{placeholder} in the base config");
            match read(Path::new("docs.toml"), &written).into_result() {
                Ok((config, _)) if config == omitted => {}
                Ok(_) => wrong.push(format!(
                    "[{section}] {key}: the docs say {value}, the default differs (variant {variant:?})"
                )),
                Err(problems) => wrong.push(format!(
                    "[{section}] {key} = {value} does not read: {}",
                    problems[0]
                )),
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The defaults the docs state in words.
#[test]
fn documented_prose_defaults() {
    let c = read_ok(&base(&VARIANTS[0]));
    let s = &c.services[0];
    let b = &s.backends[0];
    let havip_config::service::CheckKind::Http(http) = s.health.check.as_ref().expect("check")
    else {
        panic!("the default check is https");
    };
    let tls = http.tls.as_ref().expect("https");
    let v = &c.vrrp[0];
    // none / off
    assert_eq!(c.global.max_conns, None);
    assert_eq!(c.admin.as_ref().map(|a| a.auth.len()), Some(0));
    assert_eq!(s.slow_start, None);
    assert_eq!(s.limits.max_conns, None);
    assert_eq!(b.max_conns, None);
    assert_eq!(
        (tls.client_cert.as_ref(), tls.client_key.as_ref()),
        (None, None)
    );
    assert!(v.unicast_peers.is_empty());
    assert_eq!(v.authentication, havip_vrrp::Authentication::None);
    assert_eq!(v.notify.command, None);
    assert_eq!(
        (
            &v.notify.master,
            &v.notify.backup,
            &v.notify.fault,
            &v.notify.stop
        ),
        (&None, &None, &None, &None)
    );
    // Taken from elsewhere at start: the backend's address and host, the system's trust
    // store, the interface's address, havip's own user.
    assert_eq!(http.host, None);
    assert_eq!(tls.sni, None);
    assert_eq!(tls.ca_file, None);
    assert_eq!(s.health.port, None);
    assert_eq!(b.name, "10.0.0.1:6443");
    assert_eq!(v.source, None);
    assert_eq!(v.notify.user, None);
    let havip_config::vrrp::TrackerKind::Script { timeout, user, .. } = &c.trackers[0].kind else {
        panic!("the first tracker is a script");
    };
    assert_eq!(*timeout, c.trackers[0].interval);
    assert_eq!(*user, None);
    // A BGP announcement follows no tracker unless told, and asks the ordinary FRR.
    assert!(c.bgp[0].track.is_empty());
    assert_eq!(
        c.bgp[0].daemon,
        havip_config::bgp::RoutingDaemon::Frr { instance: None }
    );
    // `down_interval`: same as `interval`, also when only `interval` is set.
    assert_eq!(s.health.down_interval, s.health.interval);
    let text =
        base(&VARIANTS[0]).replace("#service.health\n", "interval = \"7s\"\n#service.health\n");
    let h = &read_ok(&text).services[0].health;
    assert_eq!(h.down_interval, std::time::Duration::from_secs(7));
    // `weight` | `0` (`file`: `1`)
    let text = base(&VARIANTS[0]).replace(
        "[[vrrp]]",
        "[[tracker]]\nname = \"f\"\nkind = \"file\"\npath = \"/run/prio\"\n[[vrrp]]",
    );
    let trackers = read_ok(&text).trackers;
    assert_eq!(trackers.last().map(|t| t.weight), Some(1));
}
