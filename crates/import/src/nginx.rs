//! nginx configs: a lexer and block parser for nginx's syntax, `include` with wildcards, and
//! the mapping of the `stream` module (upstream and server blocks) into havip services.
//!
//! The input may be a whole nginx.conf (with `stream { ... }`, and an `http` block that is
//! skipped) or a file meant to be included inside `stream { }` (top-level `upstream` and
//! `server` blocks), as the seed guides write it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::model::{self, Backend, Check, OrOff, Service, V};
use super::text::parse_time;
use super::{display, glob, sanitize_name, Loc, Report, Src};

/// One argument and where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arg {
    pub text: String,
    pub loc: Loc,
}

/// A directive: `name args... ;` or `name args... { children }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    pub name: String,
    pub loc: Loc,
    pub args: Vec<Arg>,
    pub block: Option<Vec<Directive>>,
}

impl Directive {
    fn arg(&self, i: usize) -> Option<&str> {
        self.args.get(i).map(|a| a.text.as_str())
    }

    fn arg_loc(&self, i: usize) -> Loc {
        self.args
            .get(i)
            .map_or_else(|| self.loc.clone(), |a| a.loc.clone())
    }

    fn src(&self, i: usize) -> Src {
        Src::new(self.arg_loc(i), self.name.clone())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(String),
    Semi,
    Open,
    Close,
}

const MAX_DEPTH: usize = 64;
const MAX_INCLUDE_DEPTH: usize = 16;

/// Tokens of nginx syntax with their locations; errors name line and column.
fn lex(file: &Arc<str>, text: &str) -> Result<Vec<(Tok, Loc)>, (Loc, String)> {
    let mut out = Vec::new();
    let mut line: u32 = 1;
    let mut col: u32 = 1;
    let mut chars = text.chars().peekable();
    // Advance one char, tracking line and column.
    macro_rules! bump {
        ($c:expr) => {
            if $c == '\n' {
                line += 1;
                col = 1;
            } else {
                col += 1;
            }
        };
    }
    while let Some(&c) = chars.peek() {
        let here = Loc::new(file, line, col);
        match c {
            c if c.is_whitespace() => {
                chars.next();
                bump!(c);
            }
            '#' => {
                while let Some(&c) = chars.peek() {
                    if c == '\n' {
                        break;
                    }
                    chars.next();
                    bump!(c);
                }
            }
            ';' | '{' | '}' => {
                chars.next();
                bump!(c);
                out.push((
                    match c {
                        ';' => Tok::Semi,
                        '{' => Tok::Open,
                        _ => Tok::Close,
                    },
                    here,
                ));
            }
            '"' | '\'' => {
                let quote = c;
                chars.next();
                bump!(c);
                let mut word = String::new();
                let mut closed = false;
                while let Some(c) = chars.next() {
                    bump!(c);
                    if c == quote {
                        closed = true;
                        break;
                    }
                    if c == '\\' {
                        if let Some(n) = chars.next() {
                            bump!(n);
                            match n {
                                '"' | '\'' | '\\' => word.push(n),
                                'n' => word.push('\n'),
                                't' => word.push('\t'),
                                'r' => word.push('\r'),
                                other => {
                                    word.push('\\');
                                    word.push(other);
                                }
                            }
                        }
                        continue;
                    }
                    word.push(c);
                }
                if !closed {
                    return Err((here, "unterminated quoted string".into()));
                }
                out.push((Tok::Word(word), here));
            }
            _ => {
                let mut word = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || matches!(c, ';' | '{' | '}' | '"' | '\'') {
                        break;
                    }
                    chars.next();
                    bump!(c);
                    if c == '\\' {
                        if let Some(&n) = chars.peek() {
                            chars.next();
                            bump!(n);
                            word.push(n);
                        }
                        continue;
                    }
                    word.push(c);
                }
                out.push((Tok::Word(word), here));
            }
        }
    }
    Ok(out)
}

/// Parse nginx text into directives (no include expansion). Errors carry file and line.
pub fn parse(file: &Arc<str>, text: &str) -> Result<Vec<Directive>, (Loc, String)> {
    let toks = lex(file, text)?;
    let mut i = 0;
    let last_line = text.rsplit('\n').next().unwrap_or("");
    let end = Loc::new(
        file,
        u32::try_from(text.matches('\n').count() + 1).unwrap_or(u32::MAX),
        u32::try_from(last_line.chars().count() + 1).unwrap_or(u32::MAX),
    );
    let list = block(&toks, &mut i, 0, &end)?;
    Ok(list)
}

fn block(
    toks: &[(Tok, Loc)],
    i: &mut usize,
    depth: usize,
    end: &Loc,
) -> Result<Vec<Directive>, (Loc, String)> {
    if depth > MAX_DEPTH {
        let loc = toks.get(*i).map_or_else(|| end.clone(), |t| t.1.clone());
        return Err((loc, "blocks nested too deeply".into()));
    }
    let mut out = Vec::new();
    loop {
        let Some((tok, loc)) = toks.get(*i) else {
            if depth > 0 {
                return Err((
                    end.clone(),
                    "unexpected end of file, expecting \"}\"".into(),
                ));
            }
            return Ok(out);
        };
        match tok {
            Tok::Close => {
                *i += 1;
                if depth == 0 {
                    return Err((loc.clone(), "unexpected \"}\"".into()));
                }
                return Ok(out);
            }
            Tok::Semi => return Err((loc.clone(), "unexpected \";\"".into())),
            Tok::Open => return Err((loc.clone(), "unexpected \"{\"".into())),
            Tok::Word(name) => {
                let mut d = Directive {
                    name: name.clone(),
                    loc: loc.clone(),
                    args: Vec::new(),
                    block: None,
                };
                *i += 1;
                loop {
                    match toks.get(*i) {
                        None => {
                            return Err((
                                end.clone(),
                                format!(
                                    "unexpected end of file, expecting \";\" or \"}}\" after {:?}",
                                    d.name
                                ),
                            ))
                        }
                        Some((Tok::Word(w), l)) => {
                            d.args.push(Arg {
                                text: w.clone(),
                                loc: l.clone(),
                            });
                            *i += 1;
                        }
                        Some((Tok::Semi, _)) => {
                            *i += 1;
                            break;
                        }
                        Some((Tok::Open, _)) => {
                            *i += 1;
                            d.block = Some(block(toks, i, depth + 1, end)?);
                            break;
                        }
                        Some((Tok::Close, l)) => {
                            return Err((
                                l.clone(),
                                format!("unexpected \"}}\" after {:?}", d.name),
                            ))
                        }
                    }
                }
                out.push(d);
            }
        }
    }
}

/// Parse a file and everything it includes. Problems are reported; what parsed is returned.
pub fn parse_file(path: &Path, text: &str, report: &mut Report) -> Vec<Directive> {
    let file = display(path);
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    match parse(&file, text) {
        Ok(list) => {
            let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
            expand_includes(list, &base, 0, &mut vec![key], report)
        }
        Err((loc, msg)) => {
            report.error(&loc, "(syntax)", msg);
            Vec::new()
        }
    }
}

fn expand_includes(
    list: Vec<Directive>,
    base: &Path,
    depth: usize,
    stack: &mut Vec<PathBuf>,
    report: &mut Report,
) -> Vec<Directive> {
    let mut out = Vec::new();
    for mut d in list {
        if d.name == "include" && d.block.is_none() {
            let Some(pattern) = d.arg(0) else {
                report.error(&d.loc, "include", "missing the file name");
                continue;
            };
            if depth >= MAX_INCLUDE_DEPTH {
                report.error(&d.loc, "include", "includes nested too deeply");
                continue;
            }
            // nginx resolves relative includes against its configuration directory: the
            // directory of the main file here.
            let p = Path::new(pattern);
            let full = if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            };
            let files = if glob::is_pattern(pattern) {
                glob::expand(&full)
            } else {
                vec![full.clone()]
            };
            if files.is_empty() && !glob::is_pattern(pattern) {
                report.error(
                    &d.loc,
                    "include",
                    format!("{}: no such file", full.display()),
                );
            }
            for f in files {
                let key = std::fs::canonicalize(&f).unwrap_or_else(|_| f.clone());
                if stack.contains(&key) {
                    report.error(
                        &d.loc,
                        "include",
                        format!("{} includes itself", f.display()),
                    );
                    continue;
                }
                let text = match std::fs::read(&f) {
                    Ok(b) => String::from_utf8_lossy(&b).into_owned(),
                    Err(e) => {
                        report.error(&d.loc, "include", format!("{}: {e}", f.display()));
                        continue;
                    }
                };
                let name = display(&f);
                match parse(&name, &text) {
                    Ok(inner) => {
                        stack.push(key);
                        out.extend(expand_includes(inner, base, depth + 1, stack, report));
                        stack.pop();
                    }
                    Err((loc, msg)) => report.error(&loc, "(syntax)", msg),
                }
            }
            continue;
        }
        if let Some(children) = d.block.take() {
            d.block = Some(expand_includes(children, base, depth, stack, report));
        }
        out.push(d);
    }
    out
}

// ---------------------------------------------------------------------------------------
// Mapping

/// Settings that a `server` block inherits from the `stream` block.
#[derive(Debug, Clone, Default)]
struct Inherit {
    connect: Option<V<Duration>>,
    timeout: Option<V<Duration>>,
    next_upstream: Option<V<bool>>,
    tries: Option<V<u32>>,
}

const LOG_REASON: &str = "havip logs to stderr (the journal under systemd); see [log]";

/// Map the stream part of an nginx config into services.
pub fn map(tree: &[Directive], report: &mut Report) -> model::Config {
    let mut out = model::Config::default();
    let is_stream_snippet = tree
        .iter()
        .any(|d| d.name == "upstream" || d.name == "server");
    let mut streams: Vec<&[Directive]> = Vec::new();
    if is_stream_snippet {
        streams.push(tree);
    }
    for d in tree {
        match (d.name.as_str(), &d.block) {
            ("stream", Some(children)) => streams.push(children.as_slice()),
            ("upstream" | "server", _) if is_stream_snippet => {}
            ("http", Some(_)) => report.skip(
                &d.loc,
                "http",
                "the http block is not a TCP proxy config; havip imports the stream block",
            ),
            ("mail", Some(_)) => report.skip(&d.loc, "mail", "mail proxying is not supported"),
            ("events", _) | ("worker_processes", _) | ("worker_rlimit_nofile", _)
            | ("pid", _) | ("user", _) | ("daemon", _) | ("master_process", _)
            | ("load_module", _) | ("env", _) | ("worker_cpu_affinity", _)
            | ("worker_priority", _) | ("thread_pool", _) | ("pcre_jit", _)
            | ("timer_resolution", _) | ("working_directory", _) => report.skip(
                &d.loc,
                &d.name,
                "process setting with no havip equivalent (havip runs under systemd; see [global] workers)",
            ),
            ("error_log", _) => report.skip(&d.loc, &d.name, LOG_REASON),
            _ => report.skip(&d.loc, &d.name, "not supported by the importer"),
        }
    }
    if streams.is_empty() {
        let loc = tree
            .first()
            .map_or_else(|| Loc::new(&Arc::from("nginx"), 1, 1), |d| d.loc.clone());
        report.skip(
            &loc,
            "stream",
            "no stream block and no upstream/server: nothing to import",
        );
        return out;
    }
    for children in streams {
        map_stream(children, &mut out, report);
    }
    out
}

fn map_stream(children: &[Directive], out: &mut model::Config, report: &mut Report) {
    let mut inherit = Inherit::default();
    let upstreams: Vec<&Directive> = children.iter().filter(|d| d.name == "upstream").collect();
    for d in children {
        match d.name.as_str() {
            "upstream" | "server" => {}
            other => {
                if !apply_proxy_setting(d, &mut inherit, report) {
                    let msg = match other {
                        "log_format" | "access_log" | "error_log" | "open_log_file_cache" => {
                            LOG_REASON
                        }
                        "resolver" | "resolver_timeout" => {
                            "havip does not resolve names; backends are IP addresses"
                        }
                        "limit_conn_zone" | "limit_conn" => {
                            "connection limits per key are not supported; see [service.limits]"
                        }
                        "map" | "geo" | "split_clients" | "js_import" | "js_set" | "njs" => {
                            "variables and scripting are not supported"
                        }
                        "tcp_nodelay"
                        | "variables_hash_max_size"
                        | "variables_hash_bucket_size" => "no havip equivalent",
                        _ => "not supported by the importer",
                    };
                    report.skip(&d.loc, other, msg);
                }
            }
        }
    }
    let mut used: Vec<String> = Vec::new();
    let servers: Vec<&Directive> = children.iter().filter(|d| d.name == "server").collect();
    for server in &servers {
        let Some(block) = &server.block else {
            report.error(
                &server.loc,
                "server",
                "expected a block: server { listen ...; proxy_pass ...; }",
            );
            continue;
        };
        if let Some(svc) = map_server(
            server, block, &upstreams, &inherit, &servers, &mut used, report,
        ) {
            out.services.push(svc);
        }
    }
    for u in &upstreams {
        let name = u.arg(0).unwrap_or("");
        if !used.iter().any(|n| n == name) {
            report.skip(
                &u.loc,
                "upstream",
                format!("{name}: no server block proxies to it; not imported"),
            );
        }
    }
}

/// Settings allowed both in `stream` and in `server`; true when handled.
fn apply_proxy_setting(d: &Directive, st: &mut Inherit, report: &mut Report) -> bool {
    let time = |d: &Directive, report: &mut Report| -> Option<V<Duration>> {
        let t = d.arg(0)?;
        match parse_time(t, "s", true) {
            Some(v) => Some(V::new(v, &d.src(0))),
            None => {
                report.error(&d.arg_loc(0), &d.name, format!("{t:?} is not a time"));
                None
            }
        }
    };
    match d.name.as_str() {
        "proxy_connect_timeout" => st.connect = time(d, report),
        "proxy_timeout" => st.timeout = time(d, report),
        "proxy_next_upstream" => st.next_upstream = Some(V::new(d.arg(0) != Some("off"), &d.src(0))),
        "proxy_next_upstream_tries" => {
            if let Some(n) = d.arg(0).and_then(|t| t.parse::<u32>().ok()) {
                st.tries = Some(V::new(n, &d.src(0)));
            } else {
                report.error(&d.arg_loc(0), &d.name, "expected a number");
            }
        }
        "proxy_next_upstream_timeout" => report.skip(
            &d.loc,
            &d.name,
            "havip bounds retries by their count ([service] retries) and each connect by timeouts.connect",
        ),
        "proxy_protocol" => {
            if d.arg(0) == Some("on") {
                report.skip(
                    &d.loc,
                    &d.name,
                    "havip does not send the PROXY protocol header; a backend that requires it will reject connections",
                );
            }
        }
        n if n.starts_with("proxy_ssl") => report.skip(
            &d.loc,
            n,
            "havip forwards bytes as they are and does not encrypt traffic to backends",
        ),
        n if n.starts_with("ssl_") || n == "ssl" => report.skip(
            &d.loc,
            n,
            "havip does not terminate TLS; clients' bytes go to the backends as they are",
        ),
        "proxy_buffer_size" | "proxy_upload_rate" | "proxy_download_rate" | "proxy_bind"
        | "proxy_socket_keepalive" | "proxy_half_close" | "proxy_requests"
        | "proxy_responses" | "preread_buffer_size" | "preread_timeout" | "proxy_session_drop" => {
            let msg = match d.name.as_str() {
                "proxy_socket_keepalive" => "havip always enables TCP keepalive on both sides",
                "proxy_half_close" => "havip always passes half-closes on",
                _ => "no havip equivalent",
            };
            report.skip(&d.loc, &d.name, msg);
        }
        _ => return false,
    }
    true
}

fn map_server(
    server: &Directive,
    block: &[Directive],
    upstreams: &[&Directive],
    inherit: &Inherit,
    all_servers: &[&Directive],
    used: &mut Vec<String>,
    report: &mut Report,
) -> Option<Service> {
    let mut st = inherit.clone();
    let mut listens: Vec<V<String>> = Vec::new();
    let mut backlog: Option<V<u32>> = None;
    let mut pass: Option<&Directive> = None;
    for d in block {
        match d.name.as_str() {
            "listen" => parse_listen(d, &mut listens, &mut backlog, report),
            "proxy_pass" => pass = Some(d),
            "access_log" | "error_log" => report.skip(&d.loc, &d.name, LOG_REASON),
            "allow" | "deny" => {
                report.skip(&d.loc, &d.name, "access control lists are not supported")
            }
            "limit_conn" => report.skip(
                &d.loc,
                &d.name,
                "connection limits per key are not supported; see [service.limits] max_conns",
            ),
            "return" | "set" | "js_access" | "js_preread" | "js_filter" | "ssl_preread" => {
                report.skip(&d.loc, &d.name, "not supported")
            }
            "resolver" | "resolver_timeout" => report.skip(
                &d.loc,
                &d.name,
                "havip does not resolve names; backends are IP addresses",
            ),
            "tcp_nodelay" => {}
            _ => {
                if !apply_proxy_setting(d, &mut st, report) {
                    report.skip(&d.loc, &d.name, "not supported by the importer");
                }
            }
        }
    }
    let server_src = Src::new(server.loc.clone(), "server");
    if listens.is_empty() {
        report.skip(&server.loc, "server", "no usable listen: not imported");
        return None;
    }
    let Some(pass) = pass else {
        report.skip(&server.loc, "server", "no proxy_pass: not imported");
        return None;
    };
    let Some(target) = pass.arg(0) else {
        report.error(&pass.loc, "proxy_pass", "missing the upstream");
        return None;
    };
    if target.contains('$') {
        report.skip(&pass.loc, "proxy_pass", "variables are not supported");
        return None;
    }
    let upstream = upstreams.iter().find(|u| u.arg(0) == Some(target));
    let ports: Vec<u16> = listens
        .iter()
        .filter_map(|l| l.value.rsplit_once(':').and_then(|(_, p)| p.parse().ok()))
        .collect();
    let port_suffix = ports.first().map_or(String::new(), |p| p.to_string());
    let mut svc;
    match upstream {
        Some(u) => {
            let shared = all_servers
                .iter()
                .filter(|s| {
                    s.block.as_ref().is_some_and(|b| {
                        b.iter()
                            .any(|d| d.name == "proxy_pass" && d.arg(0) == Some(target))
                    })
                })
                .count()
                > 1;
            let name = if shared {
                format!("{}-{port_suffix}", sanitize_name(target))
            } else {
                sanitize_name(target)
            };
            svc = Service::new(V::new(name, &pass.src(0)), server_src);
            svc.also_from
                .push(Src::new(u.loc.clone(), format!("upstream {target}")));
            used.push(target.to_string());
            map_upstream(u, &mut svc, report);
        }
        None => {
            // A literal address: one backend.
            let name = format!("stream-{port_suffix}");
            svc = Service::new(
                V::noted(name, &server_src, "nginx server blocks have no name"),
                server_src.clone(),
            );
            match backend_address(target) {
                Ok(addr) => {
                    svc.backends.push(Backend {
                        from: pass.src(0),
                        name: None,
                        address: V::new(addr, &pass.src(0)),
                        weight: None,
                        max_conns: None,
                        backup: None,
                    });
                    // nginx's passive defaults: max_fails=1 fail_timeout=10s.
                    svc.passive.max_fails =
                        Some(V::noted(1, &pass.src(0), "nginx's default max_fails"));
                }
                Err(msg) => {
                    report.skip(&pass.arg_loc(0), "proxy_pass", format!("{target:?}: {msg}"));
                    return None;
                }
            }
        }
    }
    svc.listen = listens;
    svc.limits.backlog = backlog;
    svc.health.check = Some(V::noted(
        Check::None,
        &Src::new(server.loc.clone(), "server"),
        "nginx (open source) has no active checks; passive only",
    ));
    svc.timeouts.connect = st.connect.clone();
    if let Some(t) = &st.timeout {
        svc.timeouts.tunnel = Some(V {
            value: OrOff::On(t.value),
            src: t.src.clone(),
            note: Some("nginx proxy_timeout: no bytes either way".into()),
        });
        svc.timeouts.client_idle = Some(t.clone());
        svc.timeouts.server_idle = Some(t.clone());
    }
    match (&st.next_upstream, &st.tries) {
        (Some(n), _) if !n.value => {
            svc.retries = Some(V::noted(
                0,
                n.src.as_ref().unwrap_or(&svc.from),
                "proxy_next_upstream off",
            ));
        }
        (_, Some(t)) if t.value > 0 => {
            svc.retries = Some(V::noted(
                t.value - 1,
                t.src.as_ref().unwrap_or(&svc.from),
                "nginx counts the first try",
            ));
        }
        _ => {}
    }
    if svc.backends.is_empty() {
        report.skip(&server.loc, "server", "no usable backend: not imported");
        return None;
    }
    Some(svc)
}

/// `listen ADDRESS[:PORT] [params]`.
fn parse_listen(
    d: &Directive,
    listens: &mut Vec<V<String>>,
    backlog: &mut Option<V<u32>>,
    report: &mut Report,
) {
    let Some(addr) = d.arg(0) else {
        report.error(&d.loc, "listen", "missing the address");
        return;
    };
    let mut udp = false;
    for (i, a) in d.args.iter().enumerate().skip(1) {
        let t = a.text.as_str();
        match t {
            "udp" => udp = true,
            "ssl" => report.skip(
                &a.loc,
                "listen",
                "ssl: havip does not terminate TLS; clients' bytes go to the backends as they are",
            ),
            "proxy_protocol" => report.skip(
                &a.loc,
                "listen",
                "proxy_protocol: havip does not read the PROXY protocol header",
            ),
            "reuseport" | "bind" | "deferred" | "default_server" | "ipv6only=on" => {}
            t if t.starts_with("backlog=") => {
                if let Ok(n) = t["backlog=".len()..].parse::<u32>() {
                    *backlog = Some(V::new(n, &d.src(i)));
                }
            }
            t if t.starts_with("so_keepalive=") => report.skip(
                &a.loc,
                "listen",
                "havip always enables TCP keepalive (60 s idle, 6 probes 10 s apart)",
            ),
            _ => report.skip(&a.loc, "listen", format!("{t}: not supported")),
        }
    }
    if udp {
        report.skip(
            &d.loc,
            "listen",
            "UDP is not supported; this listen is not imported",
        );
        return;
    }
    match listen_address(addr) {
        Ok(a) => listens.push(V::new(a, &d.src(0))),
        Err(msg) => report.skip(&d.arg_loc(0), "listen", format!("{addr:?}: {msg}")),
    }
}

fn listen_address(addr: &str) -> Result<String, String> {
    if addr.starts_with("unix:") {
        return Err("unix sockets are not supported".into());
    }
    if let Ok(port) = addr.parse::<u16>() {
        return Ok(format!("*:{port}"));
    }
    let Some((host, port)) = addr.rsplit_once(':') else {
        return Err("no port".into());
    };
    let port: u16 = port
        .parse()
        .map_err(|_| format!("port {port:?}: port ranges are not supported"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host == "*" || host.is_empty() || host == "0.0.0.0" {
        return Ok(format!("*:{port}"));
    }
    match host.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(ip)) => Ok(format!("{ip}:{port}")),
        Ok(std::net::IpAddr::V6(ip)) => Ok(format!("[{ip}]:{port}")),
        Err(_) => Err("host names are not resolved; use an IP address".into()),
    }
}

fn backend_address(addr: &str) -> Result<String, String> {
    if addr.starts_with("unix:") {
        return Err("unix sockets are not supported".into());
    }
    let Some((host, port)) = addr.rsplit_once(':') else {
        return Err("no port".into());
    };
    let port: u16 = port
        .parse()
        .map_err(|_| format!("port {port:?} is not a port number"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match host.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(ip)) => Ok(format!("{ip}:{port}")),
        Ok(std::net::IpAddr::V6(ip)) => Ok(format!("[{ip}]:{port}")),
        Err(_) => Err("host names are not resolved; use an IP address".into()),
    }
}

fn map_upstream(u: &Directive, svc: &mut Service, report: &mut Report) {
    let Some(children) = &u.block else {
        report.error(&u.loc, "upstream", "expected a block");
        return;
    };
    let mut passive: Option<(V<u32>, V<Duration>, String)> = None;
    for d in children {
        match d.name.as_str() {
            "server" => {
                let Some(addr) = d.arg(0) else {
                    report.error(&d.loc, "server", "missing the address");
                    continue;
                };
                let address = match backend_address(addr) {
                    Ok(a) => a,
                    Err(msg) => {
                        report.skip(
                            &d.arg_loc(0),
                            "server",
                            format!("{addr:?}: {msg}; not imported"),
                        );
                        continue;
                    }
                };
                let from = Src::new(d.loc.clone(), format!("server {addr}"));
                let mut b = Backend {
                    from: from.clone(),
                    name: None,
                    address: V::new(address, &d.src(0)),
                    weight: None,
                    max_conns: None,
                    backup: None,
                };
                let mut max_fails = V::noted(1u32, &from, "nginx's default max_fails");
                let mut fail_timeout = V::noted(
                    Duration::from_secs(10),
                    &from,
                    "nginx's default fail_timeout",
                );
                for (i, a) in d.args.iter().enumerate().skip(1) {
                    let (key, value) = a.text.split_once('=').unwrap_or((a.text.as_str(), ""));
                    let src = Src::new(a.loc.clone(), format!("server {key}"));
                    match key {
                        "weight" => match value.parse::<u32>() {
                            Ok(n) => b.weight = Some(V::new(n, &src)),
                            Err(_) => report.error(&a.loc, "server", format!("weight={value:?}")),
                        },
                        "max_conns" => match value.parse::<u32>() {
                            Ok(0) => {}
                            Ok(n) => b.max_conns = Some(V::new(n, &src)),
                            Err(_) => {
                                report.error(&a.loc, "server", format!("max_conns={value:?}"))
                            }
                        },
                        "max_fails" => match value.parse::<u32>() {
                            Ok(n) => max_fails = V::new(n, &src),
                            Err(_) => {
                                report.error(&a.loc, "server", format!("max_fails={value:?}"))
                            }
                        },
                        "fail_timeout" => match parse_time(value, "s", true) {
                            Some(t) => fail_timeout = V::new(t, &src),
                            None => {
                                report.error(&a.loc, "server", format!("fail_timeout={value:?}"))
                            }
                        },
                        "backup" => b.backup = Some(V::new(true, &src)),
                        "down" => {
                            b.weight = Some(V::noted(0, &src, "down: drained"));
                        }
                        "resolve" | "service" | "route" => report.skip(
                            &a.loc,
                            "server",
                            format!("{key}: havip does not resolve names"),
                        ),
                        "slow_start" => match parse_time(value, "s", true) {
                            Some(t) => {
                                if svc.slow_start.is_none() {
                                    svc.slow_start = Some(V::new(t, &src));
                                }
                            }
                            None => report.error(&a.loc, "server", format!("slow_start={value:?}")),
                        },
                        _ => report.skip(&a.loc, "server", format!("{key}: not supported")),
                    }
                    let _ = i;
                }
                let this = (max_fails.value, fail_timeout.value);
                match &passive {
                    None => passive = Some((max_fails, fail_timeout, addr.to_string())),
                    Some((mf, ft, first)) => {
                        if (mf.value, ft.value) != this {
                            report.skip(
                                &d.loc,
                                "server",
                                format!(
                                    "max_fails/fail_timeout are per service in havip; those of {first} apply"
                                ),
                            );
                        }
                    }
                }
                svc.backends.push(b);
            }
            "hash" => {
                let key = d.arg(0).unwrap_or("");
                let consistent = d.arg(1) == Some("consistent");
                if key == "$remote_addr" || key == "$binary_remote_addr" {
                    svc.balance = Some(if consistent {
                        V::new("source_hash", &d.src(0))
                    } else {
                        V::noted(
                            "source_hash",
                            &d.src(0),
                            "havip's source hash is always consistent",
                        )
                    });
                } else {
                    report.skip(
                        &d.loc,
                        "hash",
                        format!("hashing on {key}: havip hashes the client address only; round robin is used"),
                    );
                }
            }
            "least_conn" => {
                svc.balance = Some(V::new("least_conn", &Src::new(d.loc.clone(), "least_conn")))
            }
            "random" => {
                let src = Src::new(d.loc.clone(), "random");
                if d.arg(0) == Some("two") {
                    svc.balance = Some(V::new("random_two", &src));
                    if let Some(m) = d.arg(1).filter(|m| *m != "least_conn") {
                        report.skip(
                            &d.arg_loc(1),
                            "random",
                            format!("{m}: havip compares connections (least_conn)"),
                        );
                    }
                } else {
                    svc.balance = Some(V::noted(
                        "random_two",
                        &src,
                        "random: havip draws two and takes the less loaded",
                    ));
                }
            }
            "least_time" => {
                svc.balance = Some(V::noted(
                    "least_conn",
                    &Src::new(d.loc.clone(), "least_time"),
                    "least_time is not supported",
                ));
                report.skip(
                    &d.loc,
                    "least_time",
                    "response times are not tracked; imported as least_conn",
                );
            }
            "zone" | "state" => {}
            "keepalive" | "keepalive_timeout" | "keepalive_requests" | "keepalive_time" => {
                report.skip(&d.loc, &d.name, "connection reuse applies to HTTP only")
            }
            "resolver" | "resolver_timeout" => report.skip(
                &d.loc,
                &d.name,
                "havip does not resolve names; backends are IP addresses",
            ),
            _ => report.skip(&d.loc, &d.name, "not supported by the importer"),
        }
    }
    if let Some((mf, ft, _)) = passive {
        svc.passive.max_fails = Some(mf);
        svc.passive.fail_timeout = Some(ft);
    }
}

#[cfg(test)]
mod tests;
