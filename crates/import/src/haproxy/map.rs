//! haproxy.cfg's sections into havip's model: each section is read onto the settings it
//! inherits ([`section`]), then each frontend (with its `default_backend`) or listen section
//! becomes one service ([`service`], [`health`]), and a section that only serves statistics
//! becomes the admin endpoint ([`stats`]).

mod bind;
mod check;
mod global;
mod health;
mod option;
mod section;
mod server;
mod service;
mod stats;

use havip_config::place::Place;

use self::global::Globals;
use self::section::{apply_lines, OwnLines, Settings};
use self::server::ServerLine;
use super::{Cfg, Line, Section};
use crate::model::{Draft, Sourced};
use crate::text::did_you_mean;
use crate::Report;

const LOG_REASON: &str =
    "havip logs to stderr (the journal under systemd); see [log] format and level";

/// A frontend, backend or listen section as read: its settings with the defaults applied,
/// and its own lines.
#[derive(Debug)]
struct ProxySection {
    /// `frontend`, `backend` or `listen`.
    kind: String,
    name: String,
    /// The header line, as `KIND NAME`.
    head: Place,
    settings: Settings,
    binds: Vec<Sourced<String>>,
    servers: Vec<ServerLine>,
    stats: Vec<Line>,
    disabled: bool,
}

/// Map the parsed config into havip's model.
pub fn map(cfg: &Cfg, report: &mut Report) -> Draft {
    let mut out = Draft::default();
    let mut globals = Globals::default();
    for section in cfg.sections.iter().filter(|s| s.kind() == "global") {
        global::global(section, &mut out, &mut globals, report);
    }
    let proxies = read_proxies(cfg, &globals, report);
    let mut used_backends: Vec<&str> = Vec::new();
    for proxy in proxies.iter().filter(|p| p.kind != "backend") {
        if let Some(backend) = balanced(proxy, &proxies, &mut out, report) {
            used_backends.push(&backend.name);
            if let Some(service) = service::service(proxy, backend, &globals, report) {
                if out.log.connections.is_none() {
                    out.log.connections = proxy
                        .settings
                        .tcplog
                        .clone()
                        .or_else(|| backend.settings.tcplog.clone());
                }
                out.services.push(service);
            }
        }
    }
    for proxy in proxies.iter().filter(|p| p.kind == "backend") {
        if !used_backends.contains(&proxy.name.as_str()) {
            report.skip(
                &proxy.head,
                "not the default_backend of any imported frontend: not imported",
            );
        }
    }
    out
}

/// Sections other than proxies, and why they are not imported.
const OTHER_SECTIONS: &[(&str, &str)] = &[
    (
        "userlist",
        "user lists are for HTTP authentication; not used by havip",
    ),
    (
        "resolvers",
        "havip does not resolve names; backends are IP addresses",
    ),
    (
        "peers",
        "stick-table replication is not needed: havip has no stick tables",
    ),
    (
        "mailers",
        "email alerts are not supported; use the vrrp notify commands",
    ),
    (
        "program",
        "havip does not start other programs; use systemd units",
    ),
];

/// Every frontend, backend and listen section, read onto the defaults in force.
fn read_proxies(cfg: &Cfg, globals: &Globals, report: &mut Report) -> Vec<ProxySection> {
    let mut proxies = Vec::new();
    let mut named_defaults: Vec<(String, Settings)> = Vec::new();
    let mut defaults = Settings::default();
    for section in &cfg.sections {
        match section.kind() {
            "global" => {}
            "defaults" => {
                let mut settings = inherited(section, &named_defaults, report).unwrap_or_default();
                apply_lines(
                    section,
                    &mut settings,
                    &mut OwnLines::default(),
                    globals,
                    report,
                );
                if let Some(name) = section.name().filter(|n| *n != "from") {
                    named_defaults.push((name.to_string(), settings.clone()));
                }
                defaults = settings;
            }
            "frontend" | "backend" | "listen" => {
                let inherited = inherited(section, &named_defaults, report);
                let settings = inherited.unwrap_or_else(|| defaults.clone());
                if let Some(proxy) = read_proxy(section, settings, globals, report) {
                    proxies.push(proxy);
                }
            }
            other => {
                let reason = OTHER_SECTIONS
                    .iter()
                    .find(|(kind, _)| *kind == other)
                    .map_or("section not supported by havip", |(_, r)| r);
                report.skip(&section.head.at(0), reason);
            }
        }
    }
    proxies
}

/// The defaults named by the section's `from NAME`; None without one (or when it names no
/// defaults section before this one: reported).
fn inherited(
    section: &Section,
    named: &[(String, Settings)],
    report: &mut Report,
) -> Option<Settings> {
    let from = from_clause(&section.head)?;
    match named.iter().rev().find(|(name, _)| *name == from) {
        Some((_, settings)) => Some(settings.clone()),
        None => {
            let before = if section.kind() == "defaults" {
                " before this one"
            } else {
                ""
            };
            let names = named.iter().map(|(name, _)| name.as_str());
            report.error(
                &section.head.at(0),
                format!(
                    "no defaults section named {from:?}{before}{}",
                    did_you_mean(&from, names)
                ),
            );
            None
        }
    }
}

/// A frontend, backend or listen section read onto `settings`.
fn read_proxy(
    section: &Section,
    mut settings: Settings,
    globals: &Globals,
    report: &mut Report,
) -> Option<ProxySection> {
    let Some(name) = section.name() else {
        report.error(&section.head.at(0), "missing the section's name");
        return None;
    };
    let mut own = OwnLines::default();
    apply_lines(section, &mut settings, &mut own, globals, report);
    Some(ProxySection {
        kind: section.kind().to_string(),
        name: name.to_string(),
        head: section.head.place(0, format!("{} {name}", section.kind())),
        settings,
        binds: own.binds,
        servers: own.servers,
        stats: own.stats,
        disabled: own.disabled,
    })
}

/// `frontend NAME from DEFAULTS`: the defaults section named after `from`.
fn from_clause(head: &Line) -> Option<String> {
    let words: Vec<&str> = head.words.iter().map(|w| w.text.as_str()).collect();
    words
        .iter()
        .position(|w| *w == "from")
        .filter(|&i| i >= 1)
        .and_then(|i| words.get(i + 1))
        .map(|s| s.to_string())
}

/// The backend a frontend or listen section balances to (a listen section is its own), or
/// None when it is not a balanced service: disabled, a statistics page (mapped here), no
/// bind line, no backend.
fn balanced<'a>(
    proxy: &'a ProxySection,
    proxies: &'a [ProxySection],
    out: &mut Draft,
    report: &mut Report,
) -> Option<&'a ProxySection> {
    if proxy.disabled {
        report.skip(&proxy.head, "disabled: not imported");
        return None;
    }
    let is_stats = !proxy.stats.is_empty()
        && proxy.servers.is_empty()
        && proxy.settings.default_backend.is_none();
    if is_stats {
        stats::stats(proxy, out, report);
        return None;
    }
    if proxy.binds.is_empty() {
        report.skip(
            &proxy.head,
            "no bind line: nothing to listen on, not imported",
        );
        return None;
    }
    let backend = if proxy.kind == "listen" {
        proxy
    } else {
        default_backend(proxy, proxies, report)?
    };
    if backend.disabled {
        report.skip(&backend.head, "disabled: not imported");
        return None;
    }
    for line in &proxy.stats {
        report.skip(
            &line.place(0, "stats"),
            "a stats page inside a balanced section is not carried over; havip's [admin] endpoint serves statistics",
        );
    }
    Some(backend)
}

/// The backend a frontend's `default_backend` names.
fn default_backend<'a>(
    frontend: &ProxySection,
    proxies: &'a [ProxySection],
    report: &mut Report,
) -> Option<&'a ProxySection> {
    let Some(name) = &frontend.settings.default_backend else {
        report.skip(
            &frontend.head,
            "no default_backend: nothing to balance to, not imported",
        );
        return None;
    };
    let mut backends = proxies.iter().filter(|b| b.kind == "backend");
    let found = backends.clone().find(|b| b.name == name.value);
    if found.is_none() {
        let names = backends.by_ref().map(|b| b.name.as_str());
        report.error(
            &name.place.with_key("default_backend"),
            format!(
                "no backend named {:?}{}",
                name.value,
                did_you_mean(&name.value, names)
            ),
        );
    }
    found
}
