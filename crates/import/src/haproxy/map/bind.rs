//! `bind ADDR[:PORT][,ADDR...] [options]`: the service's listen addresses.

use super::section::{OwnLines, Settings};
use crate::haproxy::Line;
use crate::model::Sourced;
use crate::text::listen_address;
use crate::Report;

/// Bind options followed by a value.
const WITH_VALUE: &[&str] = &[
    "crt",
    "ca-file",
    "alpn",
    "npn",
    "ciphers",
    "ciphersuites",
    "curves",
    "ecdhe",
    "crl-file",
    "crt-list",
    "interface",
    "name",
    "id",
    "process",
    "mss",
    "backlog",
    "maxconn",
    "level",
    "severity-output",
    "gid",
    "uid",
    "user",
    "group",
    "mode",
    "namespace",
    "nice",
    "thread",
    "tcp-ut",
    "verify",
    "sigalgs",
    "client-sigalgs",
    "ssl-min-ver",
    "ssl-max-ver",
    "crt-ignore-err",
    "ca-ignore-err",
    "ca-verify-file",
    "ca-sign-file",
    "ca-sign-pass",
    "label",
    "accept-netscaler-cip",
    "shards",
    "guid-prefix",
    "idle-ping",
    "quic-cc-algo",
    "quic-socket",
    "ocsp-update",
    "default-crt",
];

/// Bind options with nothing to carry: descriptive, or what havip does anyway.
const HARMLESS: &[&str] = &[
    "v4v6",
    "defer-accept",
    "tfo",
    "name",
    "id",
    "process",
    "thread",
    "nice",
    "label",
];

/// A `bind` line: its addresses into `own.binds`, its `backlog` into the settings.
pub fn bind(line: &Line, own: &mut OwnLines, settings: &mut Settings, report: &mut Report) {
    let Some(addresses) = line.arg(1) else {
        report.error(&line.place(0, "bind"), "missing the address");
        return;
    };
    let mut v6only = false;
    let mut i = 2;
    while let Some(word) = line.arg(i) {
        match word {
            "v6only" => v6only = true,
            "backlog" => {
                if let Some(n) = line.arg(i + 1).and_then(|n| n.parse::<u32>().ok()) {
                    settings.backlog = Some(Sourced::new(n, &line.place(i + 1, "bind backlog")));
                }
            }
            _ if HARMLESS.contains(&word) => {}
            _ => report.skip(&line.place(i, "bind"), option_reason(word)),
        }
        i += if WITH_VALUE.contains(&word) { 2 } else { 1 };
    }
    let place = line.place(1, "bind");
    for address in addresses.split(',') {
        match bind_address(address) {
            Ok(listen) => {
                let v6_any = listen.starts_with("[::]");
                own.binds.push(Sourced::new(listen, &place));
                if v6_any && !v6only {
                    // HAProxy's `:::PORT` is dual-stack on Linux; havip's IPv6 listeners
                    // are IPv6-only, so IPv4 gets its own listener.
                    if let Some(port) = address.rsplit(':').next() {
                        own.binds.push(Sourced::noted(
                            format!("*:{port}"),
                            &place,
                            "IPv4 too: HAProxy's IPv6 wildcard is dual-stack",
                        ));
                    }
                }
            }
            Err(msg) => report.skip(&place, format!("{address:?}: {msg}")),
        }
    }
}

fn option_reason(word: &str) -> String {
    match word {
        "ssl" | "crt" | "crt-list" => format!(
            "{word}: havip does not terminate TLS; clients' bytes go to the backends as they are"
        ),
        "accept-proxy" => "accept-proxy: havip does not read the PROXY protocol header".into(),
        "transparent" => "transparent binding is not supported".into(),
        "interface" => {
            "binding to an interface is not supported; bind the VIP's address instead".into()
        }
        "maxconn" => "per-listener maxconn: havip limits connections per service ([service.limits] max_conns)".into(),
        _ => format!("{word}: not supported"),
    }
}

/// Strip HAProxy's address family prefixes (`ipv4@`, `tcp@`, ...); None for an address that
/// keeps an `@` or is a path: not an IP address.
pub fn strip_family(address: &str) -> Option<&str> {
    let mut a = address;
    for prefix in ["ipv4@", "ipv6@", "tcp@", "tcp4@", "tcp6@"] {
        if let Some(rest) = a.strip_prefix(prefix) {
            a = rest;
        }
    }
    (!a.contains('@') && !a.starts_with('/')).then_some(a)
}

/// One bind address as havip writes listen addresses.
fn bind_address(address: &str) -> Result<String, String> {
    let a = strip_family(address).ok_or("only IP listeners are supported")?;
    let Some((host, port)) = a.rsplit_once(':') else {
        return Err("no port".into());
    };
    let port: u16 = port
        .parse()
        .map_err(|_| format!("port {port:?}: port ranges and offsets are not supported"))?;
    if port == 0 {
        return Err("port 0".into());
    }
    listen_address(host, port).map_err(str::to_string)
}
