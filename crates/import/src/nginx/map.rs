//! nginx's `stream` module into havip services: the top level (which blocks are the stream
//! config), each stream block's settings that its servers inherit, and each `server` block
//! with its upstream ([`server`], [`upstream`]).

mod server;
mod upstream;

use std::sync::Arc;
use std::time::Duration;

use havip_config::place::Place;

use crate::model::{Draft, Sourced};
use crate::syntax::{Directive, Tree};
use crate::text::parse_time;
use crate::Report;

const LOG_REASON: &str = "havip logs to stderr (the journal under systemd); see [log]";

/// Settings that a `server` block inherits from the `stream` block.
#[derive(Debug, Clone, Default)]
struct Inherited {
    /// `proxy_connect_timeout`.
    connect: Option<Sourced<Duration>>,
    /// `proxy_timeout`.
    timeout: Option<Sourced<Duration>>,
    /// `proxy_next_upstream` (on unless `off`).
    next_upstream: Option<Sourced<bool>>,
    /// `proxy_next_upstream_tries`.
    tries: Option<Sourced<u32>>,
}

/// Top-level directives of a whole nginx.conf that are process settings.
const PROCESS_SETTINGS: &[&str] = &[
    "events",
    "worker_processes",
    "worker_rlimit_nofile",
    "pid",
    "user",
    "daemon",
    "master_process",
    "load_module",
    "env",
    "worker_cpu_affinity",
    "worker_priority",
    "thread_pool",
    "pcre_jit",
    "timer_resolution",
    "working_directory",
];

/// Map the stream part of an nginx config into services.
pub fn map(parsed: &Tree, report: &mut Report) -> Draft {
    let tree = parsed.directives.as_slice();
    let mut out = Draft::default();
    let is_stream_snippet = tree
        .iter()
        .any(|d| d.name() == "upstream" || d.name() == "server");
    let mut streams: Vec<&[Directive]> = Vec::new();
    if is_stream_snippet {
        streams.push(tree);
    }
    for directive in tree {
        let place = directive.place();
        match (directive.name(), &directive.block) {
            ("stream", Some(children)) => streams.push(children.as_slice()),
            ("upstream" | "server", _) if is_stream_snippet => {}
            ("http", Some(_)) => report.skip(
                &place,
                "the http block is not a TCP proxy config; havip imports the stream block",
            ),
            ("mail", Some(_)) => report.skip(&place, "mail proxying is not supported"),
            (name, _) if PROCESS_SETTINGS.contains(&name) => report.skip(
                &place,
                "process setting with no havip equivalent (havip runs under systemd; see [global] workers)",
            ),
            ("error_log", _) => report.skip(&place, LOG_REASON),
            _ => report.skip(&place, "not supported by the importer"),
        }
    }
    if streams.is_empty() {
        let place = match (tree.first(), parsed.files.first()) {
            (Some(first), _) => first.place_as("stream"),
            (None, Some(file)) => Place::new(file, 1, 1, "stream"),
            (None, None) => Place::new(&Arc::from("nginx"), 1, 1, "stream"),
        };
        report.skip(
            &place,
            "no stream block and no upstream/server: nothing to import",
        );
        return out;
    }
    for children in streams {
        stream(children, &mut out, report);
    }
    out
}

/// Directives of a stream block that are neither servers nor proxy settings, and why they
/// are not carried over.
const STREAM_SKIPPED: &[(&[&str], &str)] = &[
    (
        &[
            "log_format",
            "access_log",
            "error_log",
            "open_log_file_cache",
        ],
        LOG_REASON,
    ),
    (
        &["resolver", "resolver_timeout"],
        "havip does not resolve names; backends are IP addresses",
    ),
    (
        &["limit_conn_zone", "limit_conn"],
        "connection limits per key are not supported; see [service.limits]",
    ),
    (
        &["map", "geo", "split_clients", "js_import", "js_set", "njs"],
        "variables and scripting are not supported",
    ),
    (
        &[
            "tcp_nodelay",
            "variables_hash_max_size",
            "variables_hash_bucket_size",
        ],
        "no havip equivalent",
    ),
];

/// One stream block (or a file of upstream and server blocks): a service per server block.
fn stream(children: &[Directive], out: &mut Draft, report: &mut Report) {
    let mut inherited = Inherited::default();
    for directive in children {
        let name = directive.name();
        if name == "upstream"
            || name == "server"
            || proxy_setting(directive, &mut inherited, report)
        {
            continue;
        }
        let reason = STREAM_SKIPPED
            .iter()
            .find(|(names, _)| names.contains(&name))
            .map_or("not supported by the importer", |(_, r)| r);
        report.skip(&directive.place(), reason);
    }
    let upstreams: Vec<&Directive> = children.iter().filter(|d| d.name() == "upstream").collect();
    let servers: Vec<&Directive> = children.iter().filter(|d| d.name() == "server").collect();
    let mut used: Vec<String> = Vec::new();
    for server in &servers {
        let Some(block) = &server.block else {
            report.error(
                &server.place(),
                "expected a block: server { listen ...; proxy_pass ...; }",
            );
            continue;
        };
        let blocks = server::Blocks {
            upstreams: &upstreams,
            servers: &servers,
        };
        if let Some(service) = server::server(server, block, &blocks, &inherited, &mut used, report)
        {
            out.services.push(service);
        }
    }
    for upstream in &upstreams {
        let name = upstream.arg(0).unwrap_or("");
        if !used.iter().any(|n| n == name) {
            report.skip(
                &upstream.place(),
                format!("{name}: no server block proxies to it; not imported"),
            );
        }
    }
}

/// Settings allowed both in `stream` and in `server`; true when handled.
fn proxy_setting(directive: &Directive, inherited: &mut Inherited, report: &mut Report) -> bool {
    let name = directive.name();
    let place = directive.place();
    match name {
        "proxy_connect_timeout" => inherited.connect = time(directive, report),
        "proxy_timeout" => inherited.timeout = time(directive, report),
        "proxy_next_upstream" => {
            inherited.next_upstream = Some(Sourced::new(
                directive.arg(0) != Some("off"),
                &directive.arg_place(0),
            ))
        }
        "proxy_next_upstream_tries" => match directive.arg(0).and_then(|t| t.parse().ok()) {
            Some(n) => inherited.tries = Some(Sourced::new(n, &directive.arg_place(0))),
            None => report.error(&directive.arg_place(0), "expected a number"),
        },
        "proxy_next_upstream_timeout" => report.skip(
            &place,
            "havip bounds retries by their count ([service] retries) and each connect by timeouts.connect",
        ),
        "proxy_protocol" => {
            if directive.arg(0) == Some("on") {
                report.skip(
                    &place,
                    "havip does not send the PROXY protocol header; a backend that requires it will reject connections",
                );
            }
        }
        _ if name.starts_with("proxy_ssl") => report.skip(
            &place,
            "havip forwards bytes as they are and does not encrypt traffic to backends",
        ),
        _ if name.starts_with("ssl_") || name == "ssl" => report.skip(
            &place,
            "havip does not terminate TLS; clients' bytes go to the backends as they are",
        ),
        "proxy_socket_keepalive" => {
            report.skip(&place, "havip always enables TCP keepalive on both sides")
        }
        "proxy_half_close" => report.skip(&place, "havip always passes half-closes on"),
        "proxy_buffer_size" | "proxy_upload_rate" | "proxy_download_rate" | "proxy_bind"
        | "proxy_requests" | "proxy_responses" | "preread_buffer_size" | "preread_timeout"
        | "proxy_session_drop" => report.skip(&place, "no havip equivalent"),
        _ => return false,
    }
    true
}

/// The directive's time argument (seconds unless a unit is given); a bad one is reported.
fn time(directive: &Directive, report: &mut Report) -> Option<Sourced<Duration>> {
    let text = directive.arg(0)?;
    match parse_time(text, "s", true) {
        Some(d) => Some(Sourced::new(d, &directive.arg_place(0))),
        None => {
            report.error(&directive.arg_place(0), format!("{text:?} is not a time"));
            None
        }
    }
}
