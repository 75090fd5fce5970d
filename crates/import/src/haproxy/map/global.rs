//! The `global` section: the process-wide settings havip has (`maxconn`, `nbthread`), the
//! ones that change how the proxies are read (`ssl-server-verify`, `ca-base`, `crt-base`),
//! and why the others are not needed.

use havip_config::place::Place;

use super::section::int_arg;
use super::LOG_REASON;
use crate::haproxy::{Line, Section};
use crate::model::{Draft, Sourced};
use crate::Report;

/// Globals that change how proxies are read.
#[derive(Debug, Clone, Default)]
pub struct Globals {
    /// `ssl-server-verify none`: servers' certificates are not verified unless a server says.
    pub verify_none: Option<Place>,
    /// `ca-base`: the directory of relative `ca-file` paths.
    pub ca_base: Option<String>,
    /// `crt-base`: the directory of relative `crt` paths.
    pub crt_base: Option<String>,
}

/// Global settings with no havip equivalent, and why.
const SKIPPED: &[(&[&str], &str)] = &[
    (
        &["hard-stop-after"],
        "set [global] grace: how long SIGTERM lets connections finish (default 30s)",
    ),
    (
        &["log", "log-send-hostname", "log-tag", "log-format"],
        LOG_REASON,
    ),
    (
        &["chroot", "user", "group", "uid", "gid"],
        "havip runs as its systemd unit's user (it needs CAP_NET_ADMIN and CAP_NET_RAW for VRRP)",
    ),
    (
        &["daemon", "master-worker"],
        "havip runs in the foreground under systemd",
    ),
    (&["pidfile"], "systemd tracks havip's process"),
    (&["ulimit-n"], "havip raises its open-file limit itself"),
    (&["nbproc"], "havip is one process; see [global] workers"),
];

/// Apply one `global` section onto `out` and `globals`.
pub fn global(section: &Section, out: &mut Draft, globals: &mut Globals, report: &mut Report) {
    for line in &section.lines {
        global_line(line, out, globals, report);
    }
}

fn global_line(line: &Line, out: &mut Draft, globals: &mut Globals, report: &mut Report) {
    let keyword = line.keyword();
    match keyword {
        "maxconn" => {
            if let Some(n) = int_arg(line, 1, report) {
                out.global.max_conns = Some(Sourced::new(n, &line.at(1)));
            }
        }
        "nbthread" => {
            if let Some(n) = int_arg(line, 1, report) {
                out.global.workers = Some(Sourced::new(n, &line.at(1)));
            }
        }
        "ssl-server-verify" => {
            if line.arg(1) == Some("none") {
                globals.verify_none = Some(line.at(1));
            }
        }
        "ca-base" => globals.ca_base = line.arg(1).map(str::to_string),
        "crt-base" => globals.crt_base = line.arg(1).map(str::to_string),
        "stats" => report.skip(
            &line.place(0, format!("stats {}", line.arg(1).unwrap_or(""))),
            "no runtime socket: the [admin] HTTP endpoint serves status and metrics",
        ),
        _ => {
            let reason = SKIPPED
                .iter()
                .find(|(names, _)| names.contains(&keyword))
                .map_or("global setting with no havip equivalent", |(_, r)| r);
            report.skip(&line.at(0), reason);
        }
    }
}
