//! `option NAME` and `no option NAME`.

use super::section::{http_only, CheckOpt, Context, Settings};
use crate::haproxy::Line;
use crate::model::Sourced;
use crate::Report;

/// Protocol checks havip does not have; imported as TCP connect checks.
const PROTOCOL_CHECKS: &[&str] = &[
    "mysql-check",
    "pgsql-check",
    "redis-check",
    "smtpchk",
    "ldap-check",
    "spop-check",
    "external-check",
];

/// Options of HTTP processing.
const HTTP_OPTIONS: &[&str] = &[
    "httplog",
    "http-server-close",
    "forwardfor",
    "http-keep-alive",
    "httpclose",
    "forceclose",
    "http-pretend-keepalive",
    "http-buffer-request",
    "http-no-delay",
    "http-use-proxy-header",
    "http-ignore-probes",
    "originalto",
    "accept-invalid-http-request",
    "accept-invalid-http-response",
    "http-restrict-req-hdr-names",
    "h1-case-adjust-bogus-client",
    "h1-case-adjust-bogus-server",
    "disable-h2-upgrade",
    "checkcache",
    "http-use-htx",
    "http_proxy",
    "http-tunnel",
];

/// What havip always does: nothing to carry.
const ALWAYS: &[&str] = &[
    "tcpka",
    "clitcpka",
    "srvtcpka",
    "splice-auto",
    "splice-request",
    "splice-response",
    "nolinger",
    "abortonclose",
];

/// Options havip has no use for, and why.
const SKIPPED: &[(&[&str], &str)] = &[
    (
        &[
            "dontlognull",
            "dontlog-normal",
            "log-health-checks",
            "logasap",
            "log-separate-errors",
            "log-steps",
        ],
        "log filtering is not supported: havip logs every connection when [log] connections = true",
    ),
    (
        &["allbackups"],
        "havip uses every backup backend together while no primary is available",
    ),
    (
        &["persist", "prefer-last-server"],
        "stickiness is not supported",
    ),
    (&["transparent"], "transparent proxying is not supported"),
    (
        &["socket-stats", "contstats", "independent-streams"],
        "no havip equivalent",
    ),
];

/// `option NAME` (`on`) or `no option NAME`, the name being word `at`.
pub fn option(
    line: &Line,
    at: usize,
    on: bool,
    context: &Context<'_>,
    settings: &mut Settings,
    report: &mut Report,
) {
    let Some(name) = line.arg(at) else {
        report.error(&line.place(0, "option"), "missing the option's name");
        return;
    };
    let directive = format!("{}option {name}", if on { "" } else { "no " });
    let place = line.place(at, directive.clone());
    let check = |opt: CheckOpt| on.then(|| Sourced::new(opt, &place));
    match name {
        "redispatch" => settings.redispatch = Some(Sourced::new(on, &place)),
        "tcplog" => settings.tcplog = Some(Sourced::new(true, &place)),
        "tcp-check" => settings.check = check(CheckOpt::Tcp),
        "httpchk" => httpchk(line, at, on, &directive, settings),
        "ssl-hello-chk" => settings.check = check(CheckOpt::SslHello),
        _ => {
            if let Some(known) = PROTOCOL_CHECKS.iter().find(|c| **c == name) {
                settings.check = check(CheckOpt::Other(known));
            } else if !ALWAYS.contains(&name) {
                report.skip(&line.place(0, directive), skip_reason(name, context));
            }
        }
    }
}

fn skip_reason(name: &str, context: &Context<'_>) -> &'static str {
    if HTTP_OPTIONS.contains(&name) {
        return http_only(context.kind == "defaults", context.tcp);
    }
    SKIPPED
        .iter()
        .find(|(names, _)| names.contains(&name))
        .map_or("not supported by the importer", |(_, reason)| reason)
}

/// `option httpchk [<method>] <uri> [<version>]`; the version may carry headers
/// (`HTTP/1.1\r\nHost:\ api`).
fn httpchk(line: &Line, at: usize, on: bool, directive: &str, settings: &mut Settings) {
    if !on {
        settings.check = None;
        return;
    }
    let place = line.place(at, directive);
    settings.check = Some(Sourced::new(CheckOpt::Http, &place));
    let args: Vec<&str> = line
        .words
        .iter()
        .skip(at + 1)
        .map(|w| w.text.as_str())
        .collect();
    let (method, uri, version) = match args.as_slice() {
        [] => (None, None, None),
        [uri] => (None, Some(*uri), None),
        [m, uri] => (Some(*m), Some(*uri), None),
        [m, uri, v, ..] => (Some(*m), Some(*uri), Some(*v)),
    };
    settings.http_method = method.map(|m| Sourced::new(m.to_string(), &place));
    settings.http_path = uri.map(|u| Sourced::new(u.to_string(), &place));
    if let Some(host) = version.and_then(host_from_version) {
        settings.http_host = Some(Sourced::new(host, &place));
    }
}

/// `HTTP/1.1\r\nHost: api.example` (the old way to send a Host header): the host.
fn host_from_version(version: &str) -> Option<String> {
    version.split("\r\n").skip(1).find_map(|h| {
        let (name, value) = h.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("host")
            .then(|| value.trim().to_string())
    })
}
