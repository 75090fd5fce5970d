//! One stream `server` block as a havip service: its `listen` addresses, and its
//! `proxy_pass` to an upstream (see [`super::upstream`]) or to one address.

use havip_config::place::Place;

use super::{proxy_setting, upstream, Inherited, LOG_REASON};
use crate::model::{Backend, Check, OrOff, Service, Sourced};
use crate::syntax::Directive;
use crate::text::{backend_address as host_port, listen_address as listen_host, sanitize_name};
use crate::Report;

/// The blocks of the stream block a server is in.
pub struct Blocks<'a> {
    /// Its `upstream` blocks.
    pub upstreams: &'a [&'a Directive],
    /// Its `server` blocks (to tell whether several proxy to one upstream).
    pub servers: &'a [&'a Directive],
}

/// What a server block holds that makes a service.
#[derive(Default)]
struct ServerLines<'a> {
    listens: Vec<Sourced<String>>,
    backlog: Option<Sourced<u32>>,
    pass: Option<&'a Directive>,
}

/// The service of one server block; None when it has nothing to listen on or nowhere to
/// send to (reported).
pub fn server(
    server: &Directive,
    block: &[Directive],
    blocks: &Blocks<'_>,
    inherited: &Inherited,
    used: &mut Vec<String>,
    report: &mut Report,
) -> Option<Service> {
    let mut settings = inherited.clone();
    let mut lines = ServerLines::default();
    for directive in block {
        server_line(directive, &mut lines, &mut settings, report);
    }
    let server_place = server.place_as("server");
    if lines.listens.is_empty() {
        report.skip(&server_place, "no usable listen: not imported");
        return None;
    }
    let Some(pass) = lines.pass else {
        report.skip(&server_place, "no proxy_pass: not imported");
        return None;
    };
    let Some(target) = pass.arg(0) else {
        report.error(&pass.place(), "missing the upstream");
        return None;
    };
    if target.contains('$') {
        report.skip(&pass.place(), "variables are not supported");
        return None;
    }
    let port_suffix = lines
        .listens
        .iter()
        .find_map(|l| {
            l.value
                .rsplit_once(':')
                .and_then(|(_, p)| p.parse::<u16>().ok())
        })
        .map_or(String::new(), |p| p.to_string());
    let mut service = match blocks.upstreams.iter().find(|u| u.arg(0) == Some(target)) {
        Some(upstream) => {
            used.push(target.to_string());
            let place = &server_place;
            to_upstream(upstream, place, pass, target, &port_suffix, blocks, report)
        }
        None => to_address(server, pass, target, &port_suffix, report)?,
    };
    service.listen = lines.listens;
    service.limits.backlog = lines.backlog;
    service.health.check = Some(Sourced::noted(
        Check::None,
        &server_place,
        "nginx (open source) has no active checks; passive only",
    ));
    apply_inherited(&mut service, &settings);
    if service.backends.is_empty() {
        report.skip(&server_place, "no usable backend: not imported");
        return None;
    }
    Some(service)
}

/// One directive of a server block.
fn server_line<'a>(
    directive: &'a Directive,
    lines: &mut ServerLines<'a>,
    settings: &mut Inherited,
    report: &mut Report,
) {
    let place = directive.place();
    match directive.name() {
        "listen" => listen(directive, lines, report),
        "proxy_pass" => lines.pass = Some(directive),
        "access_log" | "error_log" => report.skip(&place, LOG_REASON),
        "allow" | "deny" => report.skip(&place, "access control lists are not supported"),
        "limit_conn" => report.skip(
            &place,
            "connection limits per key are not supported; see [service.limits] max_conns",
        ),
        "return" | "set" | "js_access" | "js_preread" | "js_filter" | "ssl_preread" => {
            report.skip(&place, "not supported")
        }
        "resolver" | "resolver_timeout" => report.skip(
            &place,
            "havip does not resolve names; backends are IP addresses",
        ),
        "tcp_nodelay" => {}
        _ => {
            if !proxy_setting(directive, settings, report) {
                report.skip(&place, "not supported by the importer");
            }
        }
    }
}

/// A service balancing to an upstream block; named after it (with the port when several
/// servers proxy to it).
fn to_upstream(
    upstream: &Directive,
    server_place: &Place,
    pass: &Directive,
    target: &str,
    port_suffix: &str,
    blocks: &Blocks<'_>,
    report: &mut Report,
) -> Service {
    let proxies_to_it = |s: &&&Directive| {
        s.children()
            .iter()
            .any(|d| d.name() == "proxy_pass" && d.arg(0) == Some(target))
    };
    let shared = blocks.servers.iter().filter(proxies_to_it).count() > 1;
    let name = if shared {
        format!("{}-{port_suffix}", sanitize_name(target))
    } else {
        sanitize_name(target)
    };
    let mut service = Service::new(Sourced::new(name, &pass.arg_place(0)), server_place.clone());
    service
        .also_from
        .push(upstream.place_as(format!("upstream {target}")));
    upstream::upstream(upstream, &mut service, report);
    service
}

/// A service with one backend: `proxy_pass ADDRESS:PORT`.
fn to_address(
    server: &Directive,
    pass: &Directive,
    target: &str,
    port_suffix: &str,
    report: &mut Report,
) -> Option<Service> {
    let server_place = server.place_as("server");
    let mut service = Service::new(
        Sourced::noted(
            format!("stream-{port_suffix}"),
            &server_place,
            "nginx server blocks have no name",
        ),
        server_place.clone(),
    );
    let address = match backend_address(target) {
        Ok(address) => address,
        Err(msg) => {
            report.skip(&pass.arg_place(0), format!("{target:?}: {msg}"));
            return None;
        }
    };
    let place = pass.arg_place(0);
    service
        .backends
        .push(Backend::new(Sourced::new(address, &place), place.clone()));
    // nginx's passive defaults: max_fails=1 fail_timeout=10s.
    service.passive.max_fails = Some(Sourced::noted(1, &place, "nginx's default max_fails"));
    Some(service)
}

/// The stream's and the server's proxy settings as the service's timeouts and retries.
fn apply_inherited(service: &mut Service, settings: &Inherited) {
    service.timeouts.connect = settings.connect.clone();
    if let Some(t) = &settings.timeout {
        service.timeouts.tunnel = Some(
            t.map(|d| OrOff::On(*d))
                .with_note("nginx proxy_timeout: no bytes either way"),
        );
        service.timeouts.client_idle = Some(t.clone());
        service.timeouts.server_idle = Some(t.clone());
    }
    match (&settings.next_upstream, &settings.tries) {
        (Some(next), _) if !next.value => {
            service.retries = Some(Sourced::noted(0, &next.place, "proxy_next_upstream off"));
        }
        (_, Some(tries)) if tries.value > 0 => {
            service.retries = Some(Sourced::noted(
                tries.value - 1,
                &tries.place,
                "nginx counts the first try",
            ));
        }
        _ => {}
    }
}

/// `listen ADDRESS[:PORT] [params]`.
fn listen(directive: &Directive, lines: &mut ServerLines<'_>, report: &mut Report) {
    let Some(address) = directive.arg(0) else {
        report.error(&directive.place(), "missing the address");
        return;
    };
    let mut udp = false;
    for (i, arg) in directive.args.iter().enumerate().skip(1) {
        let text = arg.text.as_str();
        let place = arg.place_as("listen");
        match text {
            "udp" => udp = true,
            "ssl" => report.skip(
                &place,
                "ssl: havip does not terminate TLS; clients' bytes go to the backends as they are",
            ),
            "proxy_protocol" => report.skip(
                &place,
                "proxy_protocol: havip does not read the PROXY protocol header",
            ),
            "reuseport" | "bind" | "deferred" | "default_server" | "ipv6only=on" => {}
            _ if text.starts_with("backlog=") => {
                if let Ok(n) = text["backlog=".len()..].parse::<u32>() {
                    lines.backlog = Some(Sourced::new(n, &directive.arg_place(i)));
                }
            }
            _ if text.starts_with("so_keepalive=") => report.skip(
                &place,
                "havip always enables TCP keepalive (60 s idle, 6 probes 10 s apart)",
            ),
            _ => report.skip(&place, format!("{text}: not supported")),
        }
    }
    if udp {
        report.skip(
            &directive.place(),
            "UDP is not supported; this listen is not imported",
        );
        return;
    }
    match listen_address(address) {
        Ok(a) => lines.listens.push(Sourced::new(a, &directive.arg_place(0))),
        Err(msg) => report.skip(&directive.arg_place(0), format!("{address:?}: {msg}")),
    }
}

/// `ADDRESS[:PORT]` or `PORT` of `listen`, as havip writes listen addresses.
fn listen_address(address: &str) -> Result<String, String> {
    if address.starts_with("unix:") {
        return Err("unix sockets are not supported".into());
    }
    if let Ok(port) = address.parse::<u16>() {
        return Ok(format!("*:{port}"));
    }
    let Some((host, port)) = address.rsplit_once(':') else {
        return Err("no port".into());
    };
    let port: u16 = port
        .parse()
        .map_err(|_| format!("port {port:?}: port ranges are not supported"))?;
    listen_host(host, port).map_err(str::to_string)
}

/// `ADDRESS:PORT` of a server or `proxy_pass`, as havip writes backend addresses.
pub fn backend_address(address: &str) -> Result<String, String> {
    if address.starts_with("unix:") {
        return Err("unix sockets are not supported".into());
    }
    let Some((host, port)) = address.rsplit_once(':') else {
        return Err("no port".into());
    };
    let port: u16 = port
        .parse()
        .map_err(|_| format!("port {port:?} is not a port number"))?;
    host_port(host, port).map_err(str::to_string)
}
