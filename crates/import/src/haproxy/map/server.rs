//! `server NAME ADDRESS [params]` and `default-server [params]`: the backends, and the
//! per-server parameters (checks, weights, limits, TLS of the check).

use std::time::Duration;

use havip_config::place::Place;

use super::bind::strip_family;
use super::global::Globals;
use super::section::http_only;
use crate::haproxy::Line;
use crate::model::Sourced;
use crate::text::parse_time;
use crate::Report;

/// Server parameters, from `default-server` lines and `server` lines.
#[derive(Debug, Clone, Default)]
pub struct ServerParams {
    pub check: Option<Sourced<bool>>,
    pub check_ssl: Option<Sourced<bool>>,
    pub inter: Option<Sourced<Duration>>,
    pub fastinter: Option<Sourced<Duration>>,
    pub downinter: Option<Sourced<Duration>>,
    pub rise: Option<Sourced<u32>>,
    pub fall: Option<Sourced<u32>>,
    pub slowstart: Option<Sourced<Duration>>,
    pub maxconn: Option<Sourced<u32>>,
    pub maxqueue: Option<Sourced<u32>>,
    pub weight: Option<Sourced<u32>>,
    pub backup: Option<Sourced<bool>>,
    pub disabled: Option<Sourced<bool>>,
    pub port: Option<Sourced<u16>>,
    pub verify: Option<Sourced<String>>,
    pub ca_file: Option<Sourced<String>>,
    pub crt: Option<Sourced<String>>,
    pub check_sni: Option<Sourced<String>>,
    pub shutdown_on_down: Option<Sourced<bool>>,
}

impl ServerParams {
    /// `self` with unset fields taken from `defaults`.
    pub fn over(&self, defaults: &ServerParams) -> ServerParams {
        fn pick<T: Clone>(a: &Option<Sourced<T>>, b: &Option<Sourced<T>>) -> Option<Sourced<T>> {
            a.clone().or_else(|| b.clone())
        }
        let d = defaults;
        ServerParams {
            check: pick(&self.check, &d.check),
            check_ssl: pick(&self.check_ssl, &d.check_ssl),
            inter: pick(&self.inter, &d.inter),
            fastinter: pick(&self.fastinter, &d.fastinter),
            downinter: pick(&self.downinter, &d.downinter),
            rise: pick(&self.rise, &d.rise),
            fall: pick(&self.fall, &d.fall),
            slowstart: pick(&self.slowstart, &d.slowstart),
            maxconn: pick(&self.maxconn, &d.maxconn),
            maxqueue: pick(&self.maxqueue, &d.maxqueue),
            weight: pick(&self.weight, &d.weight),
            backup: pick(&self.backup, &d.backup),
            disabled: pick(&self.disabled, &d.disabled),
            port: pick(&self.port, &d.port),
            verify: pick(&self.verify, &d.verify),
            ca_file: pick(&self.ca_file, &d.ca_file),
            crt: pick(&self.crt, &d.crt),
            check_sni: pick(&self.check_sni, &d.check_sni),
            shutdown_on_down: pick(&self.shutdown_on_down, &d.shutdown_on_down),
        }
    }

    /// Whether `check` is on.
    pub fn checked(&self) -> bool {
        self.check.as_ref().is_some_and(|c| c.value)
    }
}

/// One `server` line.
#[derive(Debug, Clone)]
pub struct ServerLine {
    pub name: Sourced<String>,
    /// (IP address, port); None when the address is not one havip can use (reported).
    pub address: Option<(String, Option<u16>)>,
    pub address_place: Place,
    /// The whole line, as `server NAME`.
    pub from: Place,
    pub params: ServerParams,
}

/// A `server` line; None when it lacks its name or address (reported).
pub fn server(line: &Line, globals: &Globals, report: &mut Report) -> Option<ServerLine> {
    let (Some(name), Some(address)) = (line.arg(1), line.arg(2)) else {
        report.error(
            &line.place(0, "server"),
            "expected: server NAME ADDRESS[:PORT] [options]",
        );
        return None;
    };
    let mut params = ServerParams::default();
    self::params(line, 3, &mut params, globals, report);
    let parsed = match server_address(address) {
        Ok(a) => Some(a),
        Err(msg) => {
            report.skip(
                &line.place(2, "server"),
                format!("{address:?}: {msg}; server {name} not imported"),
            );
            None
        }
    };
    Some(ServerLine {
        name: Sourced::new(name.to_string(), &line.place(1, "server")),
        address: parsed,
        address_place: line.place(2, "server"),
        from: line.place(0, format!("server {name}")),
        params,
    })
}

/// `IP[:PORT]` as (address text, port).
fn server_address(address: &str) -> Result<(String, Option<u16>), String> {
    let a = strip_family(address).ok_or("only IP backends are supported")?;
    if let Ok(ip) = a.parse::<std::net::IpAddr>() {
        return Ok((ip.to_string(), None));
    }
    let Some((host, port)) = a.rsplit_once(':') else {
        return Err("host names are not resolved; use an IP address".into());
    };
    if port.starts_with('+') || port.starts_with('-') {
        return Err("port offsets are not supported".into());
    }
    let port: u16 = port
        .parse()
        .map_err(|_| format!("port {port:?} is not a port number"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match host.parse::<std::net::IpAddr>() {
        Ok(ip) => Ok((ip.to_string(), Some(port))),
        Err(_) => Err("host names are not resolved; use an IP address".into()),
    }
}

/// One parameter being read: the line, where its keyword is, and the value after it.
struct Param<'a> {
    line: &'a Line,
    /// `server` or `default-server`.
    directive: &'a str,
    keyword: &'a str,
    index: usize,
}

impl Param<'_> {
    /// Where the keyword is, under `DIRECTIVE KEYWORD`: the place of the value it sets.
    fn place(&self) -> Place {
        self.line
            .place(self.index, format!("{} {}", self.directive, self.keyword))
    }

    /// Where the keyword is, under the directive: the place of a problem with it.
    fn problem(&self) -> Place {
        self.line.place(self.index, self.directive)
    }

    /// The value after the keyword; a missing one is reported.
    fn value(&self, report: &mut Report) -> Option<&str> {
        let value = self.line.arg(self.index + 1);
        if value.is_none() {
            report.error(&self.problem(), format!("{}: missing value", self.keyword));
        }
        value
    }
}

/// Server keywords from word `start` on into `params`.
pub fn params(
    line: &Line,
    start: usize,
    params: &mut ServerParams,
    globals: &Globals,
    report: &mut Report,
) {
    let mut i = start;
    while let Some(keyword) = line.arg(i) {
        let param = Param {
            line,
            directive: line.keyword(),
            keyword,
            index: i,
        };
        i += if flag(&param, params) {
            1
        } else if valued(&param, params, globals, report) {
            2
        } else {
            skipped(&param, report)
        };
    }
}

/// A keyword without a value that havip carries; false when it is not one.
fn flag(param: &Param<'_>, params: &mut ServerParams) -> bool {
    let (target, value) = match param.keyword {
        "check" => (&mut params.check, true),
        "no-check" => (&mut params.check, false),
        "check-ssl" => (&mut params.check_ssl, true),
        "no-check-ssl" => (&mut params.check_ssl, false),
        "backup" => (&mut params.backup, true),
        "no-backup" => (&mut params.backup, false),
        "disabled" => (&mut params.disabled, true),
        "enabled" => (&mut params.disabled, false),
        _ => return false,
    };
    *target = Some(Sourced::new(value, &param.place()));
    true
}

/// A keyword with a value that havip carries; false when it is not one.
fn valued(
    param: &Param<'_>,
    params: &mut ServerParams,
    globals: &Globals,
    report: &mut Report,
) -> bool {
    let keyword = param.keyword;
    match keyword {
        "inter" | "fastinter" | "downinter" | "slowstart" => {
            let target = match keyword {
                "inter" => &mut params.inter,
                "fastinter" => &mut params.fastinter,
                "downinter" => &mut params.downinter,
                _ => &mut params.slowstart,
            };
            if let Some(v) = param.value(report) {
                match parse_time(v, "ms", false) {
                    Some(d) => *target = Some(Sourced::new(d, &param.place())),
                    None => {
                        report.error(&param.problem(), format!("{keyword}: {v:?} is not a time"))
                    }
                }
            }
        }
        "rise" | "fall" | "maxconn" | "maxqueue" | "weight" => {
            let target = match keyword {
                "rise" => &mut params.rise,
                "fall" => &mut params.fall,
                "maxconn" => &mut params.maxconn,
                "maxqueue" => &mut params.maxqueue,
                _ => &mut params.weight,
            };
            if let Some(v) = param.value(report) {
                match v.parse::<u32>() {
                    Ok(n) => *target = Some(Sourced::new(n, &param.place())),
                    Err(_) => report.error(
                        &param.problem(),
                        format!("{keyword}: {v:?} is not a number"),
                    ),
                }
            }
        }
        "port" => {
            if let Some(v) = param.value(report) {
                match v.parse::<u16>() {
                    Ok(n) if n > 0 => params.port = Some(Sourced::new(n, &param.place())),
                    _ => report.error(&param.problem(), format!("port: {v:?} is not a port")),
                }
            }
        }
        "verify" | "ca-file" | "crt" | "check-sni" => {
            let (target, base) = match keyword {
                "verify" => (&mut params.verify, &None),
                "ca-file" => (&mut params.ca_file, &globals.ca_base),
                "crt" => (&mut params.crt, &globals.crt_base),
                _ => (&mut params.check_sni, &None),
            };
            if let Some(v) = param.value(report) {
                *target = Some(Sourced::new(with_base(base, v), &param.place()));
            }
        }
        "on-marked-down" => {
            if let Some(v) = param.value(report) {
                if v == "shutdown-sessions" {
                    params.shutdown_on_down = Some(Sourced::new(true, &param.place()));
                } else {
                    report.skip(&param.place(), format!("{v}: not supported"));
                }
            }
        }
        _ => return false,
    }
    true
}

/// A path relative to HAProxy's `ca-base` / `crt-base`.
fn with_base(base: &Option<String>, path: &str) -> String {
    match base {
        Some(b) if !path.starts_with('/') => format!("{}/{path}", b.trim_end_matches('/')),
        _ => path.to_string(),
    }
}

const NO_EQUIVALENT: &str = "no havip equivalent";

/// Flags havip has no use for; their `no-` forms are what havip does anyway.
const FLAGS_WITHOUT_EQUIVALENT: &[&str] = &[
    "check-send-proxy",
    "agent-check",
    "no-agent-check",
    "non-stick",
    "stick",
    "no-tls-tickets",
    "tls-tickets",
    "allow-0rtt",
    "tfo",
    "no-sslv3",
    "no-tlsv10",
    "no-tlsv11",
    "no-tlsv12",
    "no-tlsv13",
    "force-sslv3",
    "force-tlsv10",
    "force-tlsv11",
    "force-tlsv12",
    "force-tlsv13",
    "ssl-reuse",
    "no-ssl-reuse",
    "no-verifyhost",
    "check-via-socks4",
    "no-send-proxy",
    "no-send-proxy-v2",
    "no-ssl",
    "strict-maxconn",
];

/// Keywords with a value that havip has no use for, and why.
const VALUED_SKIPPED: &[(&[&str], &str)] = &[
    (
        &["addr"],
        "checks go to the backend's own address; a separate check address is not supported",
    ),
    (
        &["observe", "error-limit", "on-error", "on-marked-up"],
        "havip's passive checks count failed connects ([service.passive] max_fails, fail_timeout)",
    ),
    (
        &["agent-port", "agent-inter", "agent-send", "agent-addr"],
        "agent checks are not supported",
    ),
    (
        &[
            "resolvers",
            "init-addr",
            "resolve-prefer",
            "resolve-net",
            "resolve-opts",
        ],
        "havip does not resolve names; backends are IP addresses",
    ),
    (
        &["minconn"],
        "dynamic server limits (minconn/fullconn) are not supported; maxconn is a fixed limit",
    ),
    (
        &["sni"],
        "havip does not open TLS to backends; for checks use check-sni",
    ),
    (
        &["verifyhost"],
        "with verify required, havip checks the certificate against check-sni or the address",
    ),
    (
        &[
            "id",
            "guid",
            "hash-key",
            "source",
            "usesrc",
            "interface",
            "namespace",
            "proto",
            "alpn",
            "check-alpn",
            "check-proto",
            "npn",
            "ciphers",
            "ciphersuites",
            "curves",
            "sigalgs",
            "client-sigalgs",
            "crl-file",
            "ssl-min-ver",
            "ssl-max-ver",
            "max-reuse",
            "pool-low-conn",
            "pool-max-conn",
            "pool-purge-delay",
            "tcp-ut",
            "track",
            "redir",
            "socks4",
            "log-proto",
            "ws",
            "set-proxy-v2-tlv-fmt",
            "shard",
            "log-bufsize",
            "check-pool-conn-name",
            "pool-conn-name",
            "sni-auto",
        ],
        NO_EQUIVALENT,
    ),
];

/// A keyword havip does not carry: reported (unless it asks for what havip does anyway);
/// returns how many words it takes.
fn skipped(param: &Param<'_>, report: &mut Report) -> usize {
    let keyword = param.keyword;
    let place = param.place();
    match keyword {
        "ssl" => report.skip(
            &place,
            "havip forwards bytes as they are and does not encrypt traffic to backends (check-ssl applies to checks only)",
        ),
        "send-proxy" | "send-proxy-v2" | "send-proxy-v2-ssl" | "send-proxy-v2-ssl-cn" => report.skip(
            &place,
            "havip does not send the PROXY protocol header; a backend that requires it will reject connections",
        ),
        "cookie" => {
            report.skip(&place, http_only(false, true));
            return 2;
        }
        _ if FLAGS_WITHOUT_EQUIVALENT.contains(&keyword) => {
            if !keyword.starts_with("no-") {
                report.skip(&place, NO_EQUIVALENT);
            }
        }
        _ => match VALUED_SKIPPED.iter().find(|(names, _)| names.contains(&keyword)) {
            Some((_, reason)) => {
                report.skip(&place, *reason);
                return 2;
            }
            None => report.skip(&place, "unknown server keyword, not carried over"),
        },
    }
    1
}
