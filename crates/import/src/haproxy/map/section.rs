//! The lines of a `defaults`, `frontend`, `backend` or `listen` section, applied onto the
//! settings it inherited: one small handler per directive family, and a table of the
//! directives havip has no use for, each with its reason.

use std::time::Duration;

use super::global::Globals;
use super::server::{self, ServerLine, ServerParams};
use super::{bind, check, option, LOG_REASON};
use crate::haproxy::{Line, Section};
use crate::model::Sourced;
use crate::text::parse_time;
use crate::Report;

/// The check an `option` selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckOpt {
    /// `option tcp-check`.
    Tcp,
    /// `option httpchk`.
    Http,
    /// `option ssl-hello-chk`.
    SslHello,
    /// A protocol check havip does not have (`option mysql-check`, ...).
    Other(&'static str),
}

/// What a proxy section says, with `defaults` applied first.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub mode: Option<Sourced<String>>,
    pub maxconn: Option<Sourced<u32>>,
    pub backlog: Option<Sourced<u32>>,
    pub retries: Option<Sourced<u32>>,
    pub redispatch: Option<Sourced<bool>>,
    pub balance: Option<Sourced<String>>,
    pub hash_type: Option<Sourced<String>>,
    pub timeout_connect: Option<Sourced<Duration>>,
    pub timeout_client: Option<Sourced<Duration>>,
    pub timeout_server: Option<Sourced<Duration>>,
    pub timeout_tunnel: Option<Sourced<Duration>>,
    pub timeout_queue: Option<Sourced<Duration>>,
    pub timeout_check: Option<Sourced<Duration>>,
    pub check: Option<Sourced<CheckOpt>>,
    pub http_method: Option<Sourced<String>>,
    pub http_path: Option<Sourced<String>>,
    pub http_host: Option<Sourced<String>>,
    pub http_expect: Option<Sourced<Vec<(u16, u16)>>>,
    pub check_connect_ssl: Option<Sourced<bool>>,
    pub check_connect_port: Option<Sourced<u16>>,
    pub tcplog: Option<Sourced<bool>>,
    pub default_backend: Option<Sourced<String>>,
    pub default_server: ServerParams,
}

/// What only the section itself says (a `defaults` section passes none of it on).
#[derive(Debug, Default)]
pub struct OwnLines {
    pub binds: Vec<Sourced<String>>,
    pub servers: Vec<ServerLine>,
    pub stats: Vec<Line>,
    pub disabled: bool,
}

/// What a line's meaning depends on besides the line.
pub struct Context<'a> {
    /// `defaults`, `frontend`, `backend` or `listen`.
    pub kind: &'a str,
    /// Whether the section is in TCP mode (its own `mode`, else the inherited one).
    pub tcp: bool,
    pub globals: &'a Globals,
}

impl Context<'_> {
    fn in_defaults(&self) -> bool {
        self.kind == "defaults"
    }
}

/// Why an HTTP-only directive is not carried over.
pub fn http_only(in_defaults: bool, tcp: bool) -> &'static str {
    if in_defaults {
        "applies to HTTP mode only; the TCP sections that inherit it ignore it, as HAProxy does"
    } else if tcp {
        "applies to HTTP mode only; ignored in a TCP section, as HAProxy does"
    } else {
        "HTTP processing: havip balances TCP connections (layer 4)"
    }
}

/// Apply a section's lines onto `settings` (inherited from defaults) and `own`.
pub fn apply_lines(
    section: &Section,
    settings: &mut Settings,
    own: &mut OwnLines,
    globals: &Globals,
    report: &mut Report,
) {
    // The section's mode decides how HTTP-only lines are reported, wherever `mode` is.
    let mut tcp = settings.mode.as_ref().is_none_or(|m| m.value != "http");
    for line in &section.lines {
        if line.keyword() == "mode" {
            tcp = line.arg(1) != Some("http");
        }
    }
    let context = Context {
        kind: section.kind(),
        tcp,
        globals,
    };
    for line in &section.lines {
        apply_line(line, &context, settings, own, report);
    }
}

fn apply_line(
    line: &Line,
    context: &Context<'_>,
    settings: &mut Settings,
    own: &mut OwnLines,
    report: &mut Report,
) {
    let keyword = line.keyword();
    match keyword {
        "mode" => mode(line, settings, report),
        "bind" => {
            if matches!(context.kind, "backend" | "defaults") {
                not_allowed(line, context, report);
            } else {
                bind::bind(line, own, settings, report);
            }
        }
        "server" => {
            if matches!(context.kind, "frontend" | "defaults") {
                not_allowed(line, context, report);
            } else if let Some(server) = server::server(line, context.globals, report) {
                own.servers.push(server);
            }
        }
        "default-server" => server::params(
            line,
            1,
            &mut settings.default_server,
            context.globals,
            report,
        ),
        "default_backend" => match line.arg(1) {
            Some(name) => settings.default_backend = Some(Sourced::new(name.into(), &line.at(1))),
            None => report.error(&line.at(0), "missing the backend name"),
        },
        "balance" => balance(line, settings, report),
        "hash-type" => {
            if line.arg(1).is_some() {
                settings.hash_type = Some(Sourced::new(line.text_from(1), &line.at(1)));
            }
        }
        "maxconn" => set(&mut settings.maxconn, number(line, report)),
        "backlog" => set(&mut settings.backlog, number(line, report)),
        "retries" => set(&mut settings.retries, number(line, report)),
        "timeout" => timeout(line, context, settings, report),
        "contimeout" | "clitimeout" | "srvtimeout" => old_timeout(line, settings, report),
        "option" => option::option(line, 1, true, context, settings, report),
        "no" if line.arg(1) == Some("option") => {
            option::option(line, 2, false, context, settings, report)
        }
        "http-check" => check::http_check(line, settings, report),
        "tcp-check" => check::tcp_check(line, settings, report),
        "stats" => {
            if context.in_defaults() {
                report.skip(
                    &line.at(0),
                    "statistics pages are imported from the section that enables them",
                );
            } else {
                own.stats.push(line.clone());
            }
        }
        "disabled" => own.disabled = true,
        "enabled" => {}
        _ => report.skip(&line.at(0), skip_reason(keyword, context)),
    }
}

fn not_allowed(line: &Line, context: &Context<'_>, report: &mut Report) {
    report.error(
        &line.at(0),
        format!("not allowed in a {} section", context.kind),
    );
}

/// Directives that only mean something to HTTP processing.
const HTTP_ONLY: &[&str] = &[
    "http-request",
    "http-response",
    "http-after-response",
    "http-reuse",
    "http-send-name-header",
    "redirect",
    "cookie",
    "capture",
    "compression",
    "errorfile",
    "errorfiles",
    "errorloc",
    "errorloc302",
    "errorloc303",
    "monitor-uri",
    "monitor",
    "unique-id-format",
    "unique-id-header",
    "http-error",
    "reqadd",
    "reqrep",
    "reqdel",
    "rspadd",
    "rsprep",
    "rspdel",
    "filter",
];

/// Directives havip has no use for, and why.
const SKIPPED: &[(&[&str], &str)] = &[
    (
        &["use_backend"],
        "content switching is not supported: every client goes to the default_backend",
    ),
    (
        &["server-template"],
        "server templates are filled by DNS at run time; havip needs backend addresses",
    ),
    (
        &[
            "log",
            "log-format",
            "log-tag",
            "error-log-format",
            "log-format-sd",
        ],
        LOG_REASON,
    ),
    (&["acl"], "havip has no ACLs (nor the rules that use them)"),
    (
        &["tcp-request", "tcp-response"],
        "havip has no content inspection or connection rules",
    ),
    (
        &[
            "stick-table",
            "stick",
            "persist",
            "force-persist",
            "ignore-persist",
        ],
        "stickiness is not supported; balance = \"source_hash\" keeps a client on one backend",
    ),
    (
        &["fullconn"],
        "dynamic server limits (minconn/fullconn) are not supported; maxconn is a fixed limit",
    ),
    (
        &["hash-balance-factor"],
        "bounded-load hashing is not supported",
    ),
    (&["retry-on"], "havip retries failed connects only"),
    (&["description", "id"], "descriptive only"),
    (
        &["source"],
        "binding backend connections to a source address is not supported",
    ),
    (&["rate-limit"], "session rate limits are not supported"),
    (&["email-alert"], "email alerts are not supported"),
    (&["external-check"], "external checks are not supported"),
    (&["dispatch"], "dispatch is not supported; use servers"),
];

fn skip_reason(keyword: &str, context: &Context<'_>) -> &'static str {
    if HTTP_ONLY.contains(&keyword) {
        return http_only(context.in_defaults(), context.tcp);
    }
    SKIPPED
        .iter()
        .find(|(names, _)| names.contains(&keyword))
        .map_or("not supported by the importer", |(_, reason)| reason)
}

fn mode(line: &Line, settings: &mut Settings, report: &mut Report) {
    match line.arg(1) {
        Some(m @ ("tcp" | "http")) => settings.mode = Some(Sourced::new(m.into(), &line.at(1))),
        Some(other) => report.skip(
            &line.at(1),
            format!("mode {other} is not supported; havip balances TCP"),
        ),
        None => report.error(&line.at(0), "missing value"),
    }
}

fn balance(line: &Line, settings: &mut Settings, report: &mut Report) {
    match line.arg(1) {
        Some(_) => settings.balance = Some(Sourced::new(line.text_from(1), &line.at(1))),
        None => report.error(&line.at(0), "missing the algorithm"),
    }
}

/// Set `target` when the line gave a (valid) value; an invalid one leaves what was inherited.
fn set<T>(target: &mut Option<T>, value: Option<T>) {
    if value.is_some() {
        *target = value;
    }
}

/// The number after the keyword, at its place.
fn number(line: &Line, report: &mut Report) -> Option<Sourced<u32>> {
    int_arg(line, 1, report).map(|n| Sourced::new(n, &line.at(1)))
}

/// Word `i` as a number; a missing or bad one is reported.
pub fn int_arg(line: &Line, i: usize, report: &mut Report) -> Option<u32> {
    match line.arg(i) {
        None => {
            report.error(&line.at(i), "missing value");
            None
        }
        Some(text) => match text.parse::<u32>() {
            Ok(n) => Some(n),
            Err(_) => {
                report.error(&line.at(i), format!("{text:?} is not a number"));
                None
            }
        },
    }
}

/// Word `i` as a time (milliseconds unless a unit is given); a missing or bad one is
/// reported under `directive`.
fn time_arg(line: &Line, i: usize, directive: &str, report: &mut Report) -> Option<Duration> {
    match line.arg(i) {
        None => {
            report.error(&line.place(i, directive), "missing value");
            None
        }
        Some(text) => match parse_time(text, "ms", false) {
            Some(d) => Some(d),
            None => {
                report.error(&line.place(i, directive), format!("{text:?} is not a time"));
                None
            }
        },
    }
}

fn timeout(line: &Line, context: &Context<'_>, settings: &mut Settings, report: &mut Report) {
    let Some(which) = line.arg(1) else {
        report.error(&line.at(0), "missing the timeout's name");
        return;
    };
    let directive = format!("timeout {which}");
    let target = match which {
        "connect" => &mut settings.timeout_connect,
        "client" => &mut settings.timeout_client,
        "server" => &mut settings.timeout_server,
        "tunnel" => &mut settings.timeout_tunnel,
        "queue" => &mut settings.timeout_queue,
        "check" => &mut settings.timeout_check,
        "http-request" | "http-keep-alive" | "tarpit" => {
            report.skip(
                &line.place(0, directive),
                http_only(context.in_defaults(), context.tcp),
            );
            return;
        }
        "client-fin" | "server-fin" => {
            report.skip(
                &line.place(0, directive),
                "no separate half-closed timeouts: after a half-close havip applies client_idle / server_idle",
            );
            return;
        }
        _ => {
            report.skip(&line.place(0, directive), "not supported by the importer");
            return;
        }
    };
    if let Some(d) = time_arg(line, 2, &directive, report) {
        *target = Some(Sourced::new(d, &line.place(2, directive)));
    }
}

/// `contimeout`, `clitimeout`, `srvtimeout`: the names before `timeout connect|client|server`.
fn old_timeout(line: &Line, settings: &mut Settings, report: &mut Report) {
    let keyword = line.keyword();
    let target = match keyword {
        "contimeout" => &mut settings.timeout_connect,
        "clitimeout" => &mut settings.timeout_client,
        _ => &mut settings.timeout_server,
    };
    if let Some(d) = time_arg(line, 1, keyword, report) {
        *target = Some(Sourced::new(d, &line.at(1)));
    }
}
