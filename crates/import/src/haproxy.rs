//! haproxy.cfg: a line lexer with HAProxy's quoting rules, sections, and the mapping of
//! frontends, backends and listen sections into havip services.
//!
//! Lexing follows HAProxy's `parse_line`: words separated by spaces or tabs, `#` starts a
//! comment, a backslash escapes the next character, `"..."` (with escapes) and `'...'`
//! (literal) group. Section keywords start a section wherever they appear. The mapping
//! applies the `defaults` section in force (the last one before a proxy, or `from NAME`),
//! then the proxy's own lines, as HAProxy does.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::model::{self, Backend, Check, OrOff, Service, V};
use super::text::parse_time;
use super::{sanitize_name, Loc, Report, Src};

/// One word of a line and its 1-based column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    pub text: String,
    pub col: u32,
}

/// One non-empty line, split into words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub file: Arc<str>,
    pub line: u32,
    pub words: Vec<Word>,
}

impl Line {
    pub fn kw(&self) -> &str {
        self.words.first().map_or("", |w| w.text.as_str())
    }

    pub fn arg(&self, i: usize) -> Option<&str> {
        self.words.get(i).map(|w| w.text.as_str())
    }

    pub fn loc(&self, i: usize) -> Loc {
        let col = self.words.get(i).or(self.words.last()).map_or(1, |w| w.col);
        Loc::new(&self.file, self.line, col)
    }

    fn src(&self, i: usize, directive: impl Into<String>) -> Src {
        Src::new(self.loc(i), directive)
    }

    /// The words from `i` on, joined, for messages.
    fn text_from(&self, i: usize) -> String {
        self.words
            .iter()
            .skip(i)
            .map(|w| w.text.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// A section: its header line (`frontend NAME ...`) and the lines under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub head: Line,
    pub lines: Vec<Line>,
}

impl Section {
    pub fn kind(&self) -> &str {
        self.head.kw()
    }

    pub fn name(&self) -> Option<&str> {
        self.head.arg(1)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Haproxy {
    pub sections: Vec<Section>,
}

const SECTIONS: &[&str] = &[
    "global",
    "defaults",
    "frontend",
    "backend",
    "listen",
    "peers",
    "resolvers",
    "userlist",
    "mailers",
    "program",
    "http-errors",
    "ring",
    "cache",
    "fcgi-app",
    "crt-store",
    "traces",
    "log-forward",
    "acme",
];

/// Split one line into words with HAProxy's quoting and escaping; an unterminated quote is
/// an error at its column.
pub fn tokenize(line: &str) -> Result<Vec<Word>, (u32, String)> {
    let chars: Vec<char> = line.chars().collect();
    let n = chars.len();
    let mut words = Vec::new();
    let mut i = 0;
    'line: loop {
        while i < n && (chars[i] == ' ' || chars[i] == '\t') {
            i += 1;
        }
        if i >= n || chars[i] == '#' {
            break;
        }
        let start = i;
        let mut text = String::new();
        while i < n && chars[i] != ' ' && chars[i] != '\t' {
            match chars[i] {
                '#' => {
                    words.push(Word {
                        text,
                        col: start as u32 + 1,
                    });
                    break 'line;
                }
                '\\' => {
                    i += 1;
                    i = escape(&chars, i, &mut text);
                }
                '"' => {
                    let open = i;
                    i += 1;
                    loop {
                        if i >= n {
                            return Err((open as u32 + 1, "unterminated double quote".into()));
                        }
                        match chars[i] {
                            '"' => {
                                i += 1;
                                break;
                            }
                            '\\' => {
                                i += 1;
                                i = escape(&chars, i, &mut text);
                            }
                            c => {
                                text.push(c);
                                i += 1;
                            }
                        }
                    }
                }
                '\'' => {
                    let open = i;
                    i += 1;
                    loop {
                        if i >= n {
                            return Err((open as u32 + 1, "unterminated single quote".into()));
                        }
                        if chars[i] == '\'' {
                            i += 1;
                            break;
                        }
                        text.push(chars[i]);
                        i += 1;
                    }
                }
                c => {
                    text.push(c);
                    i += 1;
                }
            }
        }
        words.push(Word {
            text,
            col: start as u32 + 1,
        });
    }
    Ok(words)
}

/// The escape after a backslash at `chars[i]`; returns the index after it.
fn escape(chars: &[char], i: usize, text: &mut String) -> usize {
    let Some(&c) = chars.get(i) else {
        text.push('\\');
        return i;
    };
    match c {
        'r' => text.push('\r'),
        'n' => text.push('\n'),
        't' => text.push('\t'),
        'x' => {
            let hex: String = chars.iter().skip(i + 1).take(2).collect();
            if hex.len() == 2 {
                if let Ok(b) = u8::from_str_radix(&hex, 16) {
                    text.push(char::from(b));
                    return i + 3;
                }
            }
            text.push_str("\\x");
        }
        c => text.push(c),
    }
    i + 1
}

/// Parse haproxy.cfg into sections. Syntax problems are reported as errors with file and
/// line; parsing continues so every problem is listed.
pub fn parse(file: &Arc<str>, text: &str, report: &mut Report) -> Haproxy {
    let mut cfg = Haproxy::default();
    // Depth of `.if` blocks being skipped, and where the outermost began.
    let mut cond: Vec<Loc> = Vec::new();
    for (idx, raw) in text.lines().enumerate() {
        let line_no = u32::try_from(idx + 1).unwrap_or(u32::MAX);
        let words = match tokenize(raw) {
            Ok(w) => w,
            Err((col, msg)) => {
                report.error(&Loc::new(file, line_no, col), "(syntax)", msg);
                continue;
            }
        };
        if words.is_empty() {
            continue;
        }
        let line = Line {
            file: file.clone(),
            line: line_no,
            words,
        };
        let kw = line.kw().to_string();
        if kw.starts_with('.') {
            match kw.as_str() {
                ".if" => {
                    if cond.is_empty() {
                        report.skip(
                            &line.loc(0),
                            ".if",
                            "conditional blocks are not evaluated; the lines up to .endif are not imported",
                        );
                    }
                    cond.push(line.loc(0));
                }
                ".endif" => {
                    if cond.pop().is_none() {
                        report.error(&line.loc(0), ".endif", "no .if to end");
                    }
                }
                ".elif" | ".else" => {
                    if cond.is_empty() {
                        report.error(&line.loc(0), &kw, "outside an .if block");
                    }
                }
                _ => report.skip(&line.loc(0), &kw, "configuration directive not evaluated"),
            }
            continue;
        }
        if !cond.is_empty() {
            continue;
        }
        if SECTIONS.contains(&kw.as_str()) {
            cfg.sections.push(Section {
                head: line,
                lines: Vec::new(),
            });
        } else if let Some(section) = cfg.sections.last_mut() {
            section.lines.push(line);
        } else {
            report.error(
                &line.loc(0),
                &kw,
                "directive outside any section (global, defaults, frontend, backend, listen)",
            );
        }
    }
    if let Some(open) = cond.first() {
        report.error(open, ".if", "not closed by .endif");
    }
    cfg
}

// ---------------------------------------------------------------------------------------
// Mapping

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CheckOpt {
    Tcp,
    Http,
    SslHello,
    Other(&'static str),
}

/// Server parameters, from `default-server` lines and `server` lines.
#[derive(Debug, Clone, Default)]
struct ServerParams {
    check: Option<V<bool>>,
    check_ssl: Option<V<bool>>,
    inter: Option<V<Duration>>,
    fastinter: Option<V<Duration>>,
    downinter: Option<V<Duration>>,
    rise: Option<V<u32>>,
    fall: Option<V<u32>>,
    slowstart: Option<V<Duration>>,
    maxconn: Option<V<u32>>,
    maxqueue: Option<V<u32>>,
    weight: Option<V<u32>>,
    backup: Option<V<bool>>,
    disabled: Option<V<bool>>,
    port: Option<V<u16>>,
    verify: Option<V<String>>,
    ca_file: Option<V<String>>,
    crt: Option<V<String>>,
    check_sni: Option<V<String>>,
    shutdown_on_down: Option<V<bool>>,
}

impl ServerParams {
    /// `self` with unset fields taken from `defaults`.
    fn over(&self, d: &ServerParams) -> ServerParams {
        fn pick<T: Clone>(a: &Option<V<T>>, b: &Option<V<T>>) -> Option<V<T>> {
            a.clone().or_else(|| b.clone())
        }
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
}

/// What a proxy section says, with `defaults` applied first.
#[derive(Debug, Clone, Default)]
struct Settings {
    mode: Option<V<String>>,
    maxconn: Option<V<u32>>,
    backlog: Option<V<u32>>,
    retries: Option<V<u32>>,
    redispatch: Option<V<bool>>,
    balance: Option<V<String>>,
    hash_type: Option<V<String>>,
    t_connect: Option<V<Duration>>,
    t_client: Option<V<Duration>>,
    t_server: Option<V<Duration>>,
    t_tunnel: Option<V<Duration>>,
    t_queue: Option<V<Duration>>,
    t_check: Option<V<Duration>>,
    check: Option<V<CheckOpt>>,
    http_method: Option<V<String>>,
    http_path: Option<V<String>>,
    http_host: Option<V<String>>,
    http_expect: Option<V<Vec<(u16, u16)>>>,
    check_connect_ssl: Option<V<bool>>,
    check_connect_port: Option<V<u16>>,
    tcplog: Option<V<bool>>,
    default_backend: Option<V<String>>,
    default_server: ServerParams,
}

#[derive(Debug, Clone)]
struct ServerLine {
    name: V<String>,
    addr: Option<(String, Option<u16>)>,
    addr_src: Src,
    from: Src,
    params: ServerParams,
}

#[derive(Debug, Clone)]
struct Proxy {
    kind: String,
    name: String,
    head: Src,
    settings: Settings,
    binds: Vec<V<String>>,
    servers: Vec<ServerLine>,
    stats: Vec<Line>,
    disabled: bool,
}

/// Globals that change how proxies are read.
#[derive(Debug, Clone, Default)]
struct GlobalCtx {
    verify_none: Option<Src>,
    ca_base: Option<String>,
    crt_base: Option<String>,
}

fn http_only(in_defaults: bool, tcp: bool) -> &'static str {
    if in_defaults {
        "applies to HTTP mode only; the TCP sections that inherit it ignore it, as HAProxy does"
    } else if tcp {
        "applies to HTTP mode only; ignored in a TCP section, as HAProxy does"
    } else {
        "HTTP processing: havip balances TCP connections (layer 4)"
    }
}

const LOG_REASON: &str =
    "havip logs to stderr (the journal under systemd); see [log] format and level";

/// Map the parsed config into havip's model.
pub fn map(cfg: &Haproxy, report: &mut Report) -> model::Config {
    let mut out = model::Config::default();
    let mut gctx = GlobalCtx::default();
    for s in cfg.sections.iter().filter(|s| s.kind() == "global") {
        map_global(s, &mut out, &mut gctx, report);
    }

    let mut proxies: Vec<Proxy> = Vec::new();
    let mut named_defaults: HashMap<String, Settings> = HashMap::new();
    let mut defaults = Settings::default();
    for s in &cfg.sections {
        match s.kind() {
            "global" => {}
            "defaults" => {
                let mut base = Settings::default();
                if let Some(from) = from_clause(&s.head) {
                    match named_defaults.get(&from) {
                        Some(d) => base = d.clone(),
                        None => report.error(
                            &s.head.loc(0),
                            "defaults",
                            format!("no defaults section named {from:?} before this one"),
                        ),
                    }
                }
                let mut settings = base;
                let mut own = Own::default();
                apply_lines(s, &mut settings, &mut own, &gctx, report);
                if let Some(name) = s.name().filter(|n| *n != "from") {
                    named_defaults.insert(name.to_string(), settings.clone());
                }
                defaults = settings;
            }
            "frontend" | "backend" | "listen" => {
                let Some(name) = s.name() else {
                    report.error(&s.head.loc(0), s.kind(), "missing the section's name");
                    continue;
                };
                let mut settings = defaults.clone();
                if let Some(from) = from_clause(&s.head) {
                    match named_defaults.get(&from) {
                        Some(d) => settings = d.clone(),
                        None => report.error(
                            &s.head.loc(0),
                            s.kind(),
                            format!("no defaults section named {from:?}"),
                        ),
                    }
                }
                let mut own = Own::default();
                apply_lines(s, &mut settings, &mut own, &gctx, report);
                proxies.push(Proxy {
                    kind: s.kind().to_string(),
                    name: name.to_string(),
                    head: s.head.src(0, format!("{} {name}", s.kind())),
                    settings,
                    binds: own.binds,
                    servers: own.servers,
                    stats: own.stats,
                    disabled: own.disabled,
                });
            }
            other => report.skip(
                &s.head.loc(0),
                other,
                match other {
                    "userlist" => "user lists are for HTTP authentication; not used by havip",
                    "resolvers" => "havip does not resolve names; backends are IP addresses",
                    "peers" => "stick-table replication is not needed: havip has no stick tables",
                    "mailers" => "email alerts are not supported; use the vrrp notify commands",
                    "program" => "havip does not start other programs; use systemd units",
                    _ => "section not supported by havip",
                },
            ),
        }
    }

    let mut used_backends: Vec<String> = Vec::new();
    for p in &proxies {
        if p.kind == "backend" {
            continue;
        }
        if p.disabled {
            report.skip(&p.head.loc, &p.head.directive, "disabled: not imported");
            continue;
        }
        let is_stats =
            !p.stats.is_empty() && p.servers.is_empty() && p.settings.default_backend.is_none();
        if is_stats {
            map_stats(p, &mut out, report);
            continue;
        }
        if p.binds.is_empty() {
            report.skip(
                &p.head.loc,
                &p.head.directive,
                "no bind line: nothing to listen on, not imported",
            );
            continue;
        }
        let backend = if p.kind == "listen" {
            Some(p)
        } else {
            match &p.settings.default_backend {
                None => {
                    report.skip(
                        &p.head.loc,
                        &p.head.directive,
                        "no default_backend: nothing to balance to, not imported",
                    );
                    None
                }
                Some(name) => {
                    let found = proxies
                        .iter()
                        .find(|b| b.kind == "backend" && b.name == name.value);
                    if found.is_none() {
                        let loc = name.loc().cloned().unwrap_or_else(|| p.head.loc.clone());
                        report.error(
                            &loc,
                            "default_backend",
                            format!("no backend named {:?}", name.value),
                        );
                    }
                    found
                }
            }
        };
        let Some(backend) = backend else { continue };
        if backend.disabled {
            report.skip(
                &backend.head.loc,
                &backend.head.directive,
                "disabled: not imported",
            );
            continue;
        }
        used_backends.push(backend.name.clone());
        if !p.stats.is_empty() {
            for l in &p.stats {
                report.skip(
                    &l.loc(0),
                    "stats",
                    "a stats page inside a balanced section is not carried over; havip's [admin] endpoint serves statistics",
                );
            }
        }
        if let Some(s) = build_service(p, backend, &gctx, report) {
            if p.settings.tcplog.is_some() || backend.settings.tcplog.is_some() {
                let v = p
                    .settings
                    .tcplog
                    .clone()
                    .or_else(|| backend.settings.tcplog.clone());
                if out.log.connections.is_none() {
                    out.log.connections = v;
                }
            }
            out.services.push(s);
        }
    }
    for p in proxies.iter().filter(|p| p.kind == "backend") {
        if !used_backends.contains(&p.name) {
            report.skip(
                &p.head.loc,
                &p.head.directive,
                "not the default_backend of any imported frontend: not imported",
            );
        }
    }
    out
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

fn map_global(s: &Section, out: &mut model::Config, g: &mut GlobalCtx, report: &mut Report) {
    for l in &s.lines {
        let kw = l.kw();
        match kw {
            "maxconn" => {
                if let Some(n) = int_arg(l, 1, report) {
                    out.global.max_conns = Some(V::new(n, &l.src(1, kw)));
                }
            }
            "nbthread" => {
                if let Some(n) = int_arg(l, 1, report) {
                    out.global.workers = Some(V::new(n, &l.src(1, kw)));
                }
            }
            "hard-stop-after" => {
                report.skip(
                    &l.loc(0),
                    kw,
                    "set [global] grace: how long SIGTERM lets connections finish (default 30s)",
                );
            }
            "ssl-server-verify" => {
                if l.arg(1) == Some("none") {
                    g.verify_none = Some(l.src(1, kw));
                }
            }
            "ca-base" => g.ca_base = l.arg(1).map(str::to_string),
            "crt-base" => g.crt_base = l.arg(1).map(str::to_string),
            "log" | "log-send-hostname" | "log-tag" | "log-format" => {
                report.skip(&l.loc(0), kw, LOG_REASON)
            }
            "chroot" | "user" | "group" | "uid" | "gid" => report.skip(
                &l.loc(0),
                kw,
                "havip runs as its systemd unit's user (it needs CAP_NET_ADMIN and CAP_NET_RAW for VRRP)",
            ),
            "daemon" | "master-worker" => {
                report.skip(&l.loc(0), kw, "havip runs in the foreground under systemd")
            }
            "pidfile" => report.skip(&l.loc(0), kw, "systemd tracks havip's process"),
            "stats" => report.skip(
                &l.loc(0),
                &format!("stats {}", l.arg(1).unwrap_or("")),
                "no runtime socket: the [admin] HTTP endpoint serves status and metrics",
            ),
            "ulimit-n" => report.skip(&l.loc(0), kw, "havip raises its open-file limit itself"),
            "nbproc" => report.skip(&l.loc(0), kw, "havip is one process; see [global] workers"),
            _ => report.skip(&l.loc(0), kw, "global setting with no havip equivalent"),
        }
    }
}

#[derive(Debug, Default)]
struct Own {
    binds: Vec<V<String>>,
    servers: Vec<ServerLine>,
    stats: Vec<Line>,
    disabled: bool,
}

fn int_arg(l: &Line, i: usize, report: &mut Report) -> Option<u32> {
    match l.arg(i) {
        None => {
            report.error(&l.loc(i), l.kw(), "missing value");
            None
        }
        Some(t) => match t.parse::<u32>() {
            Ok(n) => Some(n),
            Err(_) => {
                report.error(&l.loc(i), l.kw(), format!("{t:?} is not a number"));
                None
            }
        },
    }
}

fn time_arg(l: &Line, i: usize, directive: &str, report: &mut Report) -> Option<Duration> {
    match l.arg(i) {
        None => {
            report.error(&l.loc(i), directive, "missing value");
            None
        }
        Some(t) => match parse_time(t, "ms", false) {
            Some(d) => Some(d),
            None => {
                report.error(&l.loc(i), directive, format!("{t:?} is not a time"));
                None
            }
        },
    }
}

/// Apply a section's lines onto `settings` (inherited from defaults) and `own`.
fn apply_lines(
    s: &Section,
    settings: &mut Settings,
    own: &mut Own,
    g: &GlobalCtx,
    report: &mut Report,
) {
    let in_defaults = s.kind() == "defaults";
    // The section's mode decides how HTTP-only lines are reported, wherever `mode` is.
    let mut tcp = settings.mode.as_ref().is_none_or(|m| m.value != "http");
    for l in &s.lines {
        if l.kw() == "mode" {
            tcp = l.arg(1) != Some("http");
        }
    }
    for l in &s.lines {
        apply_line(l, s.kind(), in_defaults, tcp, settings, own, g, report);
    }
}

#[allow(clippy::too_many_arguments)]
fn apply_line(
    l: &Line,
    kind: &str,
    in_defaults: bool,
    tcp: bool,
    st: &mut Settings,
    own: &mut Own,
    g: &GlobalCtx,
    report: &mut Report,
) {
    let kw = l.kw();
    let skip = |report: &mut Report, msg: &str| report.skip(&l.loc(0), kw, msg);
    match kw {
        "mode" => match l.arg(1) {
            Some(m @ ("tcp" | "http")) => st.mode = Some(V::new(m.to_string(), &l.src(1, kw))),
            Some(other) => report.skip(
                &l.loc(1),
                kw,
                format!("mode {other} is not supported; havip balances TCP"),
            ),
            None => report.error(&l.loc(0), kw, "missing value"),
        },
        "bind" => {
            if kind == "backend" || kind == "defaults" {
                report.error(&l.loc(0), kw, format!("not allowed in a {kind} section"));
            } else {
                parse_bind(l, own, st, report);
            }
        }
        "default_backend" => match l.arg(1) {
            Some(name) => st.default_backend = Some(V::new(name.to_string(), &l.src(1, kw))),
            None => report.error(&l.loc(0), kw, "missing the backend name"),
        },
        "use_backend" => skip(
            report,
            "content switching is not supported: every client goes to the default_backend",
        ),
        "server" => {
            if kind == "frontend" || kind == "defaults" {
                report.error(&l.loc(0), kw, format!("not allowed in a {kind} section"));
            } else if let Some(server) = parse_server(l, g, report) {
                own.servers.push(server);
            }
        }
        "default-server" => {
            let mut p = std::mem::take(&mut st.default_server);
            server_params(l, 1, &mut p, g, report);
            st.default_server = p;
        }
        "server-template" => skip(
            report,
            "server templates are filled by DNS at run time; havip needs backend addresses",
        ),
        "balance" => match l.arg(1) {
            Some(a) => {
                let mut text = a.to_string();
                if l.words.len() > 2 {
                    text = l.text_from(1);
                }
                st.balance = Some(V::new(text, &l.src(1, kw)));
            }
            None => report.error(&l.loc(0), kw, "missing the algorithm"),
        },
        "hash-type" => {
            if let Some(t) = l.arg(1) {
                st.hash_type = Some(V::new(l.text_from(1), &l.src(1, kw)));
                let _ = t;
            }
        }
        "maxconn" => {
            if let Some(n) = int_arg(l, 1, report) {
                st.maxconn = Some(V::new(n, &l.src(1, kw)));
            }
        }
        "backlog" => {
            if let Some(n) = int_arg(l, 1, report) {
                st.backlog = Some(V::new(n, &l.src(1, kw)));
            }
        }
        "retries" => {
            if let Some(n) = int_arg(l, 1, report) {
                st.retries = Some(V::new(n, &l.src(1, kw)));
            }
        }
        "timeout" => apply_timeout(l, in_defaults, tcp, st, report),
        "contimeout" | "clitimeout" | "srvtimeout" => {
            let target = match kw {
                "contimeout" => &mut st.t_connect,
                "clitimeout" => &mut st.t_client,
                _ => &mut st.t_server,
            };
            if let Some(d) = time_arg(l, 1, kw, report) {
                *target = Some(V::new(d, &l.src(1, kw)));
            }
        }
        "option" => apply_option(l, 1, true, in_defaults, tcp, st, report),
        "no" if l.arg(1) == Some("option") => {
            apply_option(l, 2, false, in_defaults, tcp, st, report)
        }
        "http-check" => apply_http_check(l, st, report),
        "tcp-check" => apply_tcp_check(l, st, report),
        "stats" => {
            if in_defaults {
                skip(
                    report,
                    "statistics pages are imported from the section that enables them",
                );
            } else {
                own.stats.push(l.clone());
            }
        }
        "disabled" => own.disabled = true,
        "enabled" => {}
        "log" | "log-format" | "log-tag" | "error-log-format" | "log-format-sd" => {
            skip(report, LOG_REASON)
        }
        "acl" => skip(report, "havip has no ACLs (nor the rules that use them)"),
        "tcp-request" | "tcp-response" => skip(
            report,
            "havip has no content inspection or connection rules",
        ),
        "http-request"
        | "http-response"
        | "http-after-response"
        | "http-reuse"
        | "http-send-name-header"
        | "redirect"
        | "cookie"
        | "capture"
        | "compression"
        | "errorfile"
        | "errorfiles"
        | "errorloc"
        | "errorloc302"
        | "errorloc303"
        | "monitor-uri"
        | "monitor"
        | "unique-id-format"
        | "unique-id-header"
        | "http-error"
        | "reqadd"
        | "reqrep"
        | "reqdel"
        | "rspadd"
        | "rsprep"
        | "rspdel"
        | "filter" => skip(report, http_only(in_defaults, tcp)),
        "stick-table" | "stick" | "persist" | "force-persist" | "ignore-persist" => skip(
            report,
            "stickiness is not supported; balance = \"source_hash\" keeps a client on one backend",
        ),
        "fullconn" => skip(
            report,
            "dynamic server limits (minconn/fullconn) are not supported; maxconn is a fixed limit",
        ),
        "hash-balance-factor" => skip(report, "bounded-load hashing is not supported"),
        "retry-on" => skip(report, "havip retries failed connects only"),
        "description" | "id" => skip(report, "descriptive only"),
        "source" => skip(
            report,
            "binding backend connections to a source address is not supported",
        ),
        "rate-limit" => skip(report, "session rate limits are not supported"),
        "email-alert" => skip(report, "email alerts are not supported"),
        "external-check" => skip(report, "external checks are not supported"),
        "dispatch" => skip(report, "dispatch is not supported; use servers"),
        _ => skip(report, "not supported by the importer"),
    }
}

fn apply_timeout(l: &Line, in_defaults: bool, tcp: bool, st: &mut Settings, report: &mut Report) {
    let Some(which) = l.arg(1) else {
        report.error(&l.loc(0), "timeout", "missing the timeout's name");
        return;
    };
    let directive = format!("timeout {which}");
    let target = match which {
        "connect" => &mut st.t_connect,
        "client" => &mut st.t_client,
        "server" => &mut st.t_server,
        "tunnel" => &mut st.t_tunnel,
        "queue" => &mut st.t_queue,
        "check" => &mut st.t_check,
        "http-request" | "http-keep-alive" | "tarpit" => {
            report.skip(&l.loc(0), &directive, http_only(in_defaults, tcp));
            return;
        }
        "client-fin" | "server-fin" => {
            report.skip(
                &l.loc(0),
                &directive,
                "no separate half-closed timeouts: after a half-close havip applies client_idle / server_idle",
            );
            return;
        }
        _ => {
            report.skip(&l.loc(0), &directive, "not supported by the importer");
            return;
        }
    };
    if let Some(d) = time_arg(l, 2, &directive, report) {
        *target = Some(V::new(d, &l.src(2, directive.clone())));
    }
}

fn apply_option(
    l: &Line,
    at: usize,
    on: bool,
    in_defaults: bool,
    tcp: bool,
    st: &mut Settings,
    report: &mut Report,
) {
    let Some(name) = l.arg(at) else {
        report.error(&l.loc(0), "option", "missing the option's name");
        return;
    };
    let directive = format!("{}option {name}", if on { "" } else { "no " });
    let src = l.src(at, directive.clone());
    let skip = |report: &mut Report, msg: &str| report.skip(&l.loc(0), &directive, msg);
    match name {
        "redispatch" => st.redispatch = Some(V::new(on, &src)),
        "tcplog" => st.tcplog = Some(V::new(true, &src)),
        "tcp-check" => st.check = on.then(|| V::new(CheckOpt::Tcp, &src)),
        "httpchk" => {
            if !on {
                st.check = None;
                return;
            }
            st.check = Some(V::new(CheckOpt::Http, &src));
            // option httpchk [<method>] <uri> [<version>]; the version may carry headers
            // (`HTTP/1.1\r\nHost:\ api`).
            let args: Vec<&str> = l.words.iter().skip(at + 1).map(|w| w.text.as_str()).collect();
            let (method, uri, version) = match args.as_slice() {
                [] => (None, None, None),
                [uri] => (None, Some(*uri), None),
                [m, uri] => (Some(*m), Some(*uri), None),
                [m, uri, v, ..] => (Some(*m), Some(*uri), Some(*v)),
            };
            st.http_method = method.map(|m| V::new(m.to_string(), &src));
            st.http_path = uri.map(|u| V::new(u.to_string(), &src));
            if let Some(host) = version.and_then(host_from_version) {
                st.http_host = Some(V::new(host, &src));
            }
        }
        "ssl-hello-chk" => st.check = on.then(|| V::new(CheckOpt::SslHello, &src)),
        "mysql-check" | "pgsql-check" | "redis-check" | "smtpchk" | "ldap-check"
        | "spop-check" | "external-check" => {
            let static_name: &'static str = match name {
                "mysql-check" => "mysql-check",
                "pgsql-check" => "pgsql-check",
                "redis-check" => "redis-check",
                "smtpchk" => "smtpchk",
                "ldap-check" => "ldap-check",
                "spop-check" => "spop-check",
                _ => "external-check",
            };
            st.check = on.then(|| V::new(CheckOpt::Other(static_name), &src));
        }
        "httplog" | "http-server-close" | "forwardfor" | "http-keep-alive" | "httpclose"
        | "forceclose" | "http-pretend-keepalive" | "http-buffer-request" | "http-no-delay"
        | "http-use-proxy-header" | "http-ignore-probes" | "originalto" | "accept-invalid-http-request"
        | "accept-invalid-http-response" | "http-restrict-req-hdr-names" | "h1-case-adjust-bogus-client"
        | "h1-case-adjust-bogus-server" | "disable-h2-upgrade" | "checkcache" | "http-use-htx"
        | "http_proxy" | "http-tunnel" => skip(report, http_only(in_defaults, tcp)),
        "dontlognull" | "dontlog-normal" | "log-health-checks" | "logasap" | "log-separate-errors"
        | "log-steps" => skip(
            report,
            "log filtering is not supported: havip logs every connection when [log] connections = true",
        ),
        // havip always does these: nothing to carry.
        "tcpka" | "clitcpka" | "srvtcpka" | "splice-auto" | "splice-request" | "splice-response"
        | "nolinger" | "abortonclose" => {}
        "allbackups" => skip(
            report,
            "havip uses every backup backend together while no primary is available",
        ),
        "persist" | "prefer-last-server" => {
            skip(report, "stickiness is not supported")
        }
        "transparent" => skip(report, "transparent proxying is not supported"),
        "socket-stats" | "contstats" | "independent-streams" => {
            skip(report, "no havip equivalent")
        }
        _ => skip(report, "not supported by the importer"),
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

fn apply_http_check(l: &Line, st: &mut Settings, report: &mut Report) {
    let Some(action) = l.arg(1) else {
        report.error(&l.loc(0), "http-check", "missing the action");
        return;
    };
    let directive = format!("http-check {action}");
    match action {
        "send" => {
            let mut i = 2;
            while i < l.words.len() {
                let key = l.words[i].text.as_str();
                let value = l.arg(i + 1);
                let src = l.src(i, directive.clone());
                match (key, value) {
                    ("meth", Some(m)) => st.http_method = Some(V::new(m.to_string(), &src)),
                    ("uri", Some(u)) => st.http_path = Some(V::new(u.to_string(), &src)),
                    ("ver", Some(_)) => {}
                    ("hdr", Some(name)) => {
                        let v = l.arg(i + 2);
                        if name.eq_ignore_ascii_case("host") {
                            if let Some(v) = v {
                                st.http_host = Some(V::new(v.to_string(), &src));
                            }
                        } else {
                            report.skip(
                                &l.loc(i),
                                &directive,
                                format!("header {name:?}: havip sends only Host"),
                            );
                        }
                        i += 1;
                    }
                    ("body", Some(_)) | ("body-lf", Some(_)) => {
                        report.skip(&l.loc(i), &directive, "havip's checks send no body")
                    }
                    _ => report.skip(
                        &l.loc(i),
                        &directive,
                        format!("{key:?} is not supported by the importer"),
                    ),
                }
                i += 2;
            }
        }
        "expect" => {
            let mut i = 2;
            let mut negate = false;
            if l.arg(i) == Some("!") {
                negate = true;
                i += 1;
            }
            // Options such as min-recv or ok-status come before the matcher.
            while let Some(w) = l.arg(i) {
                if matches!(
                    w,
                    "min-recv"
                        | "ok-status"
                        | "error-status"
                        | "tout-status"
                        | "on-success"
                        | "on-error"
                        | "status-code"
                        | "comment"
                ) {
                    i += 2;
                } else {
                    break;
                }
            }
            match (negate, l.arg(i), l.arg(i + 1)) {
                (false, Some("status"), Some(list)) => match parse_status_list(list) {
                    Some(ranges) => {
                        st.http_expect = Some(V::new(ranges, &l.src(i + 1, directive.clone())))
                    }
                    None => report.skip(
                        &l.loc(i + 1),
                        &directive,
                        format!("status {list:?}: not a list of codes or ranges"),
                    ),
                },
                _ => report.skip(
                    &l.loc(0),
                    &directive,
                    "havip's HTTP checks match the status code only (expect_status)",
                ),
            }
        }
        "connect" => {
            let mut i = 2;
            while let Some(w) = l.arg(i) {
                match w {
                    "ssl" => {
                        st.check_connect_ssl = Some(V::new(true, &l.src(i, directive.clone())))
                    }
                    "port" => {
                        if let Some(p) = l.arg(i + 1).and_then(|p| p.parse::<u16>().ok()) {
                            st.check_connect_port =
                                Some(V::new(p, &l.src(i + 1, directive.clone())));
                        }
                        i += 1;
                    }
                    "default" | "linger" => {}
                    "sni" | "alpn" | "proto" | "addr" | "comment" | "via-socks4" | "send-proxy" => {
                        report.skip(&l.loc(i), &directive, format!("{w}: not supported"));
                        if !matches!(w, "via-socks4" | "send-proxy") {
                            i += 1;
                        }
                    }
                    _ => report.skip(&l.loc(i), &directive, format!("{w}: not supported")),
                }
                i += 1;
            }
        }
        "disable-on-404" => report.skip(
            &l.loc(0),
            &directive,
            "a 404 marks the backend down like any other unexpected status",
        ),
        _ => report.skip(&l.loc(0), &directive, "not supported by the importer"),
    }
}

fn apply_tcp_check(l: &Line, st: &mut Settings, report: &mut Report) {
    let action = l.arg(1).unwrap_or("");
    let directive = format!("tcp-check {action}");
    match action {
        "connect" => {
            let mut i = 2;
            while let Some(w) = l.arg(i) {
                match w {
                    "ssl" => {
                        st.check_connect_ssl = Some(V::new(true, &l.src(i, directive.clone())))
                    }
                    "port" => {
                        if let Some(p) = l.arg(i + 1).and_then(|p| p.parse::<u16>().ok()) {
                            st.check_connect_port =
                                Some(V::new(p, &l.src(i + 1, directive.clone())));
                        }
                        i += 1;
                    }
                    _ => report.skip(&l.loc(i), &directive, format!("{w}: not supported")),
                }
                i += 1;
            }
        }
        "comment" => {}
        _ => report.skip(
            &l.loc(0),
            &directive,
            "scripted TCP checks (send/expect) are not supported; havip's tcp check connects only",
        ),
    }
}

/// `200`, `200,204,300-399` into inclusive ranges.
fn parse_status_list(text: &str) -> Option<Vec<(u16, u16)>> {
    let mut out = Vec::new();
    for part in text.split(',') {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (a.trim().parse().ok()?, b.trim().parse().ok()?),
            None => {
                let n = part.trim().parse().ok()?;
                (n, n)
            }
        };
        if !(100..=599).contains(&lo) || !(lo..=599).contains(&hi) {
            return None;
        }
        out.push((lo, hi));
    }
    (!out.is_empty()).then_some(out)
}

/// `bind ADDR[:PORT][,ADDR...] [options]`.
fn parse_bind(l: &Line, own: &mut Own, st: &mut Settings, report: &mut Report) {
    let Some(addrs) = l.arg(1) else {
        report.error(&l.loc(0), "bind", "missing the address");
        return;
    };
    let mut v6only = false;
    let mut i = 2;
    while let Some(w) = l.arg(i) {
        let takes_value = matches!(
            w,
            "crt"
                | "ca-file"
                | "alpn"
                | "npn"
                | "ciphers"
                | "ciphersuites"
                | "curves"
                | "ecdhe"
                | "crl-file"
                | "crt-list"
                | "interface"
                | "name"
                | "id"
                | "process"
                | "mss"
                | "backlog"
                | "maxconn"
                | "level"
                | "severity-output"
                | "gid"
                | "uid"
                | "user"
                | "group"
                | "mode"
                | "namespace"
                | "nice"
                | "thread"
                | "tcp-ut"
                | "verify"
                | "sigalgs"
                | "client-sigalgs"
                | "ssl-min-ver"
                | "ssl-max-ver"
                | "crt-ignore-err"
                | "ca-ignore-err"
                | "ca-verify-file"
                | "ca-sign-file"
                | "ca-sign-pass"
                | "label"
                | "accept-netscaler-cip"
                | "shards"
                | "guid-prefix"
                | "idle-ping"
                | "quic-cc-algo"
                | "quic-socket"
                | "ocsp-update"
                | "default-crt"
        );
        match w {
            "v6only" => v6only = true,
            "v4v6" => {}
            "backlog" => {
                if let Some(n) = l.arg(i + 1).and_then(|n| n.parse::<u32>().ok()) {
                    st.backlog = Some(V::new(n, &l.src(i + 1, "bind backlog")));
                }
            }
            "ssl" | "crt" | "crt-list" => report.skip(
                &l.loc(i),
                "bind",
                format!("{w}: havip does not terminate TLS; clients' bytes go to the backends as they are"),
            ),
            "accept-proxy" => report.skip(
                &l.loc(i),
                "bind",
                "accept-proxy: havip does not read the PROXY protocol header",
            ),
            "transparent" => report.skip(&l.loc(i), "bind", "transparent binding is not supported"),
            "interface" => report.skip(
                &l.loc(i),
                "bind",
                "binding to an interface is not supported; bind the VIP's address instead",
            ),
            "maxconn" => report.skip(
                &l.loc(i),
                "bind",
                "per-listener maxconn: havip limits connections per service ([service.limits] max_conns)",
            ),
            "defer-accept" | "tfo" | "name" | "id" | "process" | "thread" | "nice" | "label" => {}
            _ => report.skip(&l.loc(i), "bind", format!("{w}: not supported")),
        }
        i += if takes_value { 2 } else { 1 };
    }
    for addr in addrs.split(',') {
        match bind_address(addr) {
            Ok(list) => {
                let v6_any = list.iter().any(|a| a.starts_with("[::]"));
                for a in list {
                    own.binds.push(V::new(a, &l.src(1, "bind")));
                }
                if v6_any && !v6only {
                    // HAProxy's `:::PORT` is dual-stack on Linux; havip's IPv6 listeners
                    // are IPv6-only, so IPv4 gets its own listener.
                    if let Some(port) = addr.rsplit(':').next() {
                        own.binds.push(V::noted(
                            format!("*:{port}"),
                            &l.src(1, "bind"),
                            "IPv4 too: HAProxy's IPv6 wildcard is dual-stack",
                        ));
                    }
                }
            }
            Err(msg) => report.skip(&l.loc(1), "bind", format!("{addr:?}: {msg}")),
        }
    }
}

/// One bind address as havip writes listen addresses.
fn bind_address(addr: &str) -> Result<Vec<String>, String> {
    let mut a = addr;
    for prefix in ["ipv4@", "ipv6@", "tcp@", "tcp4@", "tcp6@"] {
        if let Some(rest) = a.strip_prefix(prefix) {
            a = rest;
        }
    }
    if a.contains('@') || a.starts_with('/') {
        return Err("only IP listeners are supported".into());
    }
    let Some((host, port)) = a.rsplit_once(':') else {
        return Err("no port".into());
    };
    let port: u16 = port
        .parse()
        .map_err(|_| format!("port {port:?}: port ranges and offsets are not supported"))?;
    if port == 0 {
        return Err("port 0".into());
    }
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || host == "*" || host == "0.0.0.0" {
        return Ok(vec![format!("*:{port}")]);
    }
    match host.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(ip)) => Ok(vec![format!("{ip}:{port}")]),
        Ok(std::net::IpAddr::V6(ip)) => Ok(vec![format!("[{ip}]:{port}")]),
        Err(_) => Err("host names are not resolved; use an IP address".into()),
    }
}

fn parse_server(l: &Line, g: &GlobalCtx, report: &mut Report) -> Option<ServerLine> {
    let (Some(name), Some(addr)) = (l.arg(1), l.arg(2)) else {
        report.error(
            &l.loc(0),
            "server",
            "expected: server NAME ADDRESS[:PORT] [options]",
        );
        return None;
    };
    let mut params = ServerParams::default();
    server_params(l, 3, &mut params, g, report);
    let addr_src = l.src(2, "server");
    let parsed = match server_address(addr) {
        Ok(a) => Some(a),
        Err(msg) => {
            report.skip(
                &l.loc(2),
                "server",
                format!("{addr:?}: {msg}; server {name} not imported"),
            );
            None
        }
    };
    Some(ServerLine {
        name: V::new(name.to_string(), &l.src(1, "server")),
        addr: parsed,
        addr_src,
        from: l.src(0, format!("server {name}")),
        params,
    })
}

/// `IP[:PORT]` as (address text, port).
fn server_address(addr: &str) -> Result<(String, Option<u16>), String> {
    let mut a = addr;
    for prefix in ["ipv4@", "ipv6@", "tcp@", "tcp4@", "tcp6@"] {
        if let Some(rest) = a.strip_prefix(prefix) {
            a = rest;
        }
    }
    if a.contains('@') || a.starts_with('/') {
        return Err("only IP backends are supported".into());
    }
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

/// Server keywords from `words[start..]` into `p`.
fn server_params(l: &Line, start: usize, p: &mut ServerParams, g: &GlobalCtx, report: &mut Report) {
    let directive = l.kw().to_string();
    let mut i = start;
    while let Some(kw) = l.arg(i) {
        let src = l.src(i, format!("{directive} {kw}"));
        let loc = l.loc(i);
        let value = l.arg(i + 1);
        let need_value = |report: &mut Report| -> Option<String> {
            match value {
                Some(v) => Some(v.to_string()),
                None => {
                    report.error(&loc, &directive, format!("{kw}: missing value"));
                    None
                }
            }
        };
        let mut consumed = 1;
        match kw {
            "check" => p.check = Some(V::new(true, &src)),
            "no-check" => p.check = Some(V::new(false, &src)),
            "check-ssl" => p.check_ssl = Some(V::new(true, &src)),
            "no-check-ssl" => p.check_ssl = Some(V::new(false, &src)),
            "backup" => p.backup = Some(V::new(true, &src)),
            "no-backup" => p.backup = Some(V::new(false, &src)),
            "disabled" => p.disabled = Some(V::new(true, &src)),
            "enabled" => p.disabled = Some(V::new(false, &src)),
            "inter" | "fastinter" | "downinter" | "slowstart" => {
                consumed = 2;
                if let Some(v) = need_value(report) {
                    match parse_time(&v, "ms", false) {
                        Some(d) => {
                            let v = Some(V::new(d, &src));
                            match kw {
                                "inter" => p.inter = v,
                                "fastinter" => p.fastinter = v,
                                "downinter" => p.downinter = v,
                                _ => p.slowstart = v,
                            }
                        }
                        None => report.error(&loc, &directive, format!("{kw}: {v:?} is not a time")),
                    }
                }
            }
            "rise" | "fall" | "maxconn" | "maxqueue" | "weight" => {
                consumed = 2;
                if let Some(v) = need_value(report) {
                    match v.parse::<u32>() {
                        Ok(n) => {
                            let v = Some(V::new(n, &src));
                            match kw {
                                "rise" => p.rise = v,
                                "fall" => p.fall = v,
                                "maxconn" => p.maxconn = v,
                                "maxqueue" => p.maxqueue = v,
                                _ => p.weight = v,
                            }
                        }
                        Err(_) => {
                            report.error(&loc, &directive, format!("{kw}: {v:?} is not a number"))
                        }
                    }
                }
            }
            "port" => {
                consumed = 2;
                if let Some(v) = need_value(report) {
                    match v.parse::<u16>() {
                        Ok(n) if n > 0 => p.port = Some(V::new(n, &src)),
                        _ => report.error(&loc, &directive, format!("port: {v:?} is not a port")),
                    }
                }
            }
            "verify" => {
                consumed = 2;
                if let Some(v) = need_value(report) {
                    p.verify = Some(V::new(v, &src));
                }
            }
            "ca-file" => {
                consumed = 2;
                if let Some(v) = need_value(report) {
                    p.ca_file = Some(V::new(with_base(&g.ca_base, &v), &src));
                }
            }
            "crt" => {
                consumed = 2;
                if let Some(v) = need_value(report) {
                    p.crt = Some(V::new(with_base(&g.crt_base, &v), &src));
                }
            }
            "check-sni" => {
                consumed = 2;
                if let Some(v) = need_value(report) {
                    p.check_sni = Some(V::new(v, &src));
                }
            }
            "on-marked-down" => {
                consumed = 2;
                if let Some(v) = need_value(report) {
                    if v == "shutdown-sessions" {
                        p.shutdown_on_down = Some(V::new(true, &src));
                    } else {
                        report.skip(&loc, &format!("{directive} {kw}"), format!("{v}: not supported"));
                    }
                }
            }
            "ssl" => report.skip(
                &loc,
                &format!("{directive} ssl"),
                "havip forwards bytes as they are and does not encrypt traffic to backends (check-ssl applies to checks only)",
            ),
            "send-proxy" | "send-proxy-v2" | "send-proxy-v2-ssl" | "send-proxy-v2-ssl-cn" => {
                report.skip(
                    &loc,
                    &format!("{directive} {kw}"),
                    "havip does not send the PROXY protocol header; a backend that requires it will reject connections",
                )
            }
            "check-send-proxy" | "agent-check" | "no-agent-check" | "non-stick" | "stick"
            | "no-tls-tickets" | "tls-tickets" | "allow-0rtt" | "tfo" | "no-sslv3"
            | "no-tlsv10" | "no-tlsv11" | "no-tlsv12" | "no-tlsv13" | "force-sslv3"
            | "force-tlsv10" | "force-tlsv11" | "force-tlsv12" | "force-tlsv13"
            | "ssl-reuse" | "no-ssl-reuse" | "no-verifyhost" | "check-via-socks4"
            | "no-send-proxy" | "no-send-proxy-v2" | "no-ssl" | "strict-maxconn" => {
                if !kw.starts_with("no-") {
                    report.skip(&loc, &format!("{directive} {kw}"), "no havip equivalent");
                }
            }
            "addr" => {
                consumed = 2;
                report.skip(
                    &loc,
                    &format!("{directive} addr"),
                    "checks go to the backend's own address; a separate check address is not supported",
                );
            }
            "observe" | "error-limit" | "on-error" | "on-marked-up" => {
                consumed = 2;
                report.skip(
                    &loc,
                    &format!("{directive} {kw}"),
                    "havip's passive checks count failed connects ([service.passive] max_fails, fail_timeout)",
                );
            }
            "agent-port" | "agent-inter" | "agent-send" | "agent-addr" => {
                consumed = 2;
                report.skip(&loc, &format!("{directive} {kw}"), "agent checks are not supported");
            }
            "cookie" => {
                consumed = 2;
                report.skip(&loc, &format!("{directive} cookie"), http_only(false, true));
            }
            "resolvers" | "init-addr" | "resolve-prefer" | "resolve-net" | "resolve-opts" => {
                consumed = 2;
                report.skip(
                    &loc,
                    &format!("{directive} {kw}"),
                    "havip does not resolve names; backends are IP addresses",
                );
            }
            "minconn" => {
                consumed = 2;
                report.skip(
                    &loc,
                    &format!("{directive} minconn"),
                    "dynamic server limits (minconn/fullconn) are not supported; maxconn is a fixed limit",
                );
            }
            "sni" | "verifyhost" => {
                consumed = 2;
                let msg = if kw == "sni" {
                    "havip does not open TLS to backends; for checks use check-sni"
                } else {
                    "with verify required, havip checks the certificate against check-sni or the address"
                };
                report.skip(&loc, &format!("{directive} {kw}"), msg);
            }
            "id" | "guid" | "hash-key" | "source" | "usesrc" | "interface" | "namespace" | "proto"
            | "alpn" | "check-alpn" | "check-proto" | "npn" | "ciphers" | "ciphersuites"
            | "curves" | "sigalgs" | "client-sigalgs" | "crl-file" | "ssl-min-ver"
            | "ssl-max-ver" | "max-reuse" | "pool-low-conn" | "pool-max-conn"
            | "pool-purge-delay" | "tcp-ut" | "track" | "redir" | "socks4" | "log-proto"
            | "ws" | "set-proxy-v2-tlv-fmt" | "shard" | "log-bufsize" | "check-pool-conn-name"
            | "pool-conn-name" | "sni-auto" => {
                consumed = 2;
                report.skip(&loc, &format!("{directive} {kw}"), "no havip equivalent");
            }
            _ => report.skip(
                &loc,
                &format!("{directive} {kw}"),
                "unknown server keyword, not carried over",
            ),
        }
        i += consumed;
    }
}

fn with_base(base: &Option<String>, path: &str) -> String {
    match base {
        Some(b) if !path.starts_with('/') => format!("{}/{path}", b.trim_end_matches('/')),
        _ => path.to_string(),
    }
}

fn map_stats(p: &Proxy, out: &mut model::Config, report: &mut Report) {
    if out.admin.is_some() {
        report.skip(
            &p.head.loc,
            &p.head.directive,
            "a second statistics section: havip has one admin endpoint",
        );
        return;
    }
    let Some(first) = p.binds.first() else {
        report.skip(
            &p.head.loc,
            &p.head.directive,
            "statistics section without a bind line: not imported",
        );
        return;
    };
    for extra in p.binds.iter().skip(1) {
        if let Some(loc) = extra.loc() {
            report.skip(loc, "bind", "havip's admin endpoint listens on one address");
        }
    }
    let mut admin = model::Admin {
        from: p.head.clone(),
        listen: first.clone(),
        auth: Vec::new(),
    };
    let mut enabled = false;
    for l in &p.stats {
        let what = l.arg(1).unwrap_or("");
        let directive = format!("stats {what}");
        match what {
            "enable" => enabled = true,
            "auth" => {
                enabled = true;
                match l.arg(2) {
                    Some(up) if up.contains(':') => admin
                        .auth
                        .push(V::new(up.to_string(), &l.src(2, directive))),
                    _ => report.error(&l.loc(0), &directive, "expected user:password"),
                }
            }
            "uri" => {
                enabled = true;
                report.skip(
                    &l.loc(0),
                    &directive,
                    format!(
                        "no HTML page at {}: the admin endpoint serves /metrics, /api/status and /healthz",
                        l.arg(2).unwrap_or("/")
                    ),
                );
            }
            "realm" | "refresh" | "hide-version" | "show-legends" | "show-desc" | "show-node"
            | "show-modules" | "scope" | "admin" | "http-request" => report.skip(
                &l.loc(0),
                &directive,
                "HTML statistics page option; no equivalent",
            ),
            _ => report.skip(&l.loc(0), &directive, "not supported by the importer"),
        }
    }
    if !enabled {
        report.skip(
            &p.head.loc,
            &p.head.directive,
            "statistics are not enabled in this section: not imported",
        );
        return;
    }
    if admin.auth.is_empty() {
        report.warn(
            &p.head.loc,
            &p.head.directive,
            format!(
                "the admin endpoint on {} has no authentication (stats auth): anyone who reaches it can read the metrics",
                first.value
            ),
        );
    }
    out.admin = Some(admin);
}

/// One service from a frontend (or listen section) and its backend.
fn build_service(fe: &Proxy, be: &Proxy, g: &GlobalCtx, report: &mut Report) -> Option<Service> {
    let name = sanitize_name(&fe.name);
    let mut svc = Service::new(V::new(name, &fe.head), fe.head.clone());
    if !std::ptr::eq(fe, be) {
        svc.also_from.push(be.head.clone());
    }
    svc.listen = fe.binds.clone();
    for p in [fe, be] {
        if let Some(m) = &p.settings.mode {
            if m.value == "http" {
                let loc = m.loc().cloned().unwrap_or_else(|| p.head.loc.clone());
                report.warn(
                    &loc,
                    "mode http",
                    format!(
                        "{} is in HTTP mode; havip balances TCP, so it is imported as TCP and its HTTP processing is lost",
                        p.head.directive
                    ),
                );
            }
        }
    }
    let bs = &be.settings;
    let fs = &fe.settings;

    // Balance.
    if let Some(b) = &bs.balance {
        let algo = b
            .value
            .split_whitespace()
            .next()
            .unwrap_or("")
            .split('(')
            .next()
            .unwrap_or("");
        let src = b.src.clone().unwrap_or_else(|| be.head.clone());
        let loc = src.loc.clone();
        let mapped: Option<V<&'static str>> = match algo {
            "roundrobin" => Some(V::new("round_robin", &src)),
            "static-rr" => Some(V::noted(
                "round_robin",
                &src,
                "static-rr: havip's weights change only by config or admin command",
            )),
            "leastconn" => Some(V::new("least_conn", &src)),
            "source" => {
                let consistent = bs
                    .hash_type
                    .as_ref()
                    .is_some_and(|h| h.value.contains("consistent"));
                if !consistent {
                    if let Some(h) = &bs.hash_type {
                        if let Some(l) = h.loc() {
                            report.skip(
                                l,
                                "hash-type",
                                "havip's source hash is always consistent (a backend leaving moves only its clients)",
                            );
                        }
                    }
                }
                Some(V::new("source_hash", &src))
            }
            "random" => {
                let draws = algo_arg(&b.value).unwrap_or(2);
                if draws != 2 {
                    report.skip(
                        &loc,
                        "balance",
                        format!(
                            "random({draws}): havip draws two backends and picks the less loaded"
                        ),
                    );
                }
                Some(V::new("random_two", &src))
            }
            "first" => {
                report.skip(
                    &loc,
                    "balance first",
                    "filling servers in order is not supported; imported as round_robin",
                );
                Some(V::noted(
                    "round_robin",
                    &src,
                    "balance first is not supported",
                ))
            }
            "uri" | "url_param" | "hdr" | "rdp-cookie" | "hash" => {
                report.skip(
                    &loc,
                    &format!("balance {algo}"),
                    "hashing on request content needs HTTP; imported as round_robin",
                );
                Some(V::noted(
                    "round_robin",
                    &src,
                    "content hashing is not supported",
                ))
            }
            _ => {
                report.skip(&loc, "balance", format!("{algo:?} is not supported"));
                None
            }
        };
        svc.balance = mapped;
    }

    // Retries.
    if let Some(r) = &bs.retries {
        let redispatch = bs.redispatch.as_ref().is_some_and(|v| v.value);
        if redispatch {
            svc.retries = Some(r.clone());
        } else {
            svc.retries = Some(V {
                note: Some("havip retries on another backend (like option redispatch)".into()),
                ..r.clone()
            });
        }
    }

    // Timeouts.
    svc.timeouts.connect = bs.t_connect.clone();
    svc.timeouts.queue = bs.t_queue.clone();
    svc.timeouts.client_idle = fs.t_client.clone();
    svc.timeouts.server_idle = bs.t_server.clone();
    svc.timeouts.tunnel = match &bs.t_tunnel {
        Some(t) => Some(V {
            value: OrOff::On(t.value),
            src: t.src.clone(),
            note: None,
        }),
        None if fs.t_client.is_some() || bs.t_server.is_some() => Some(V::noted(
            OrOff::Off,
            &be.head,
            "no timeout tunnel: HAProxy applies timeout client/server to established connections",
        )),
        None => None,
    };
    if fs.t_client.is_none() {
        report.skip(
            &fe.head.loc,
            &fe.head.directive,
            "no timeout client (HAProxy: never); havip's client_idle default (1h) applies",
        );
    }

    // Limits.
    svc.limits.max_conns = fs.maxconn.clone();
    svc.limits.backlog = fs.backlog.clone();

    // Servers.
    let servers: Vec<(ServerLine, ServerParams)> = be
        .servers
        .iter()
        .filter(|s| s.addr.is_some())
        .map(|s| (s.clone(), s.params.over(&bs.default_server)))
        .collect();
    let fe_ports: Vec<u16> = svc.listen_ports();
    for (s, p) in &servers {
        let Some((ip, port)) = &s.addr else { continue };
        let port = match port {
            Some(p) => *p,
            None => {
                let mut ports = fe_ports.clone();
                ports.dedup();
                if ports.len() == 1 {
                    ports[0]
                } else {
                    report.skip(
                        &s.addr_src.loc,
                        "server",
                        "no port: HAProxy uses the port the client connected to; give the backend's port",
                    );
                    continue;
                }
            }
        };
        let address = if ip.contains(':') {
            format!("[{ip}]:{port}")
        } else {
            format!("{ip}:{port}")
        };
        let mut b = Backend {
            from: s.from.clone(),
            name: Some(V {
                value: sanitize_name(&s.name.value),
                ..s.name.clone()
            }),
            address: V::new(address, &s.addr_src),
            weight: p.weight.clone(),
            max_conns: p.maxconn.clone(),
            backup: p.backup.clone().filter(|b| b.value),
        };
        if let Some(d) = p.disabled.as_ref().filter(|d| d.value) {
            b.weight = Some(V::noted(
                0,
                d.src.as_ref().unwrap_or(&s.from),
                "disabled: drained",
            ));
        }
        svc.backends.push(b);
    }
    if svc.backends.is_empty() {
        report.skip(
            &be.head.loc,
            &be.head.directive,
            "no usable server: the service is not imported",
        );
        return None;
    }

    // Per-server settings that are per service in havip.
    svc.slow_start = servers.iter().find_map(|(_, p)| p.slowstart.clone());
    if servers.iter().any(|(_, p)| p.shutdown_on_down.is_some()) {
        svc.close_on_down = servers.iter().find_map(|(_, p)| p.shutdown_on_down.clone());
    }
    let queues: Vec<&V<u32>> = servers
        .iter()
        .filter_map(|(_, p)| p.maxqueue.as_ref())
        .collect();
    if let Some(first) = queues.first() {
        let total: u32 = queues
            .iter()
            .map(|q| q.value)
            .fold(0u32, u32::saturating_add);
        svc.limits.max_queue = Some(V {
            value: total,
            src: first.src.clone(),
            note: Some(format!(
                "sum of the servers' maxqueue: havip queues per service ({} x {})",
                queues.len(),
                first.value
            )),
        });
    }

    map_health(&mut svc, be, &servers, g, report);
    Some(svc)
}

fn algo_arg(text: &str) -> Option<u32> {
    let open = text.find('(')?;
    let close = text.find(')')?;
    text.get(open + 1..close)?.trim().parse().ok()
}

fn map_health(
    svc: &mut Service,
    be: &Proxy,
    servers: &[(ServerLine, ServerParams)],
    g: &GlobalCtx,
    report: &mut Report,
) {
    let bs = &be.settings;
    let checked: Vec<&(ServerLine, ServerParams)> = servers
        .iter()
        .filter(|(_, p)| p.check.as_ref().is_some_and(|c| c.value))
        .collect();
    let h = &mut svc.health;
    let Some((first_server, first)) = checked.first().map(|(s, p)| (s, p)) else {
        h.check = Some(V::noted(
            Check::None,
            &be.head,
            "no server has `check`: HAProxy never checks them",
        ));
        if let Some(c) = &bs.check {
            if let Some(l) = c.loc() {
                report.skip(
                    l,
                    c.src.as_ref().map_or("option", |s| s.directive.as_str()),
                    "no server has `check`, so no check runs (as in HAProxy)",
                );
            }
        }
        return;
    };
    for (s, p) in servers {
        if !p.check.as_ref().is_some_and(|c| c.value) {
            report.skip(
                &s.from.loc,
                &s.from.directive,
                "no `check` on this server while others have one: havip checks every backend of a service",
            );
        }
    }
    let check_src = first
        .check
        .as_ref()
        .and_then(|c| c.src.clone())
        .unwrap_or_else(|| first_server.from.clone());
    let ssl = first.check_ssl.as_ref().is_some_and(|c| c.value)
        || bs.check_connect_ssl.as_ref().is_some_and(|c| c.value);
    match bs.check.as_ref().map(|c| (c.value, c.src.clone())) {
        None => {
            h.check = Some(V::noted(
                Check::Tcp,
                &check_src,
                "HAProxy's default check connects only",
            ));
            if ssl {
                report.skip(
                    &check_src.loc,
                    "check-ssl",
                    "without option httpchk this is a TLS handshake check; havip has none, so it is a TCP connect check (add check = \"https\" for /readyz)",
                );
            }
        }
        Some((CheckOpt::Tcp, src)) => {
            let src = src.unwrap_or_else(|| check_src.clone());
            h.check = Some(V::new(Check::Tcp, &src));
            if ssl {
                report.skip(
                    &src.loc,
                    "tcp-check connect ssl",
                    "TLS handshake checks are not available; a TCP connect check is used",
                );
            }
        }
        Some((CheckOpt::SslHello, src)) => {
            let src = src.unwrap_or_else(|| check_src.clone());
            h.check = Some(V::noted(Check::Tcp, &src, "was option ssl-hello-chk"));
            report.warn(
                &src.loc,
                "option ssl-hello-chk",
                "SSLv3 hello check: modern TLS servers refuse SSLv3, and havip has no such check; imported as a TCP connect check (use check = \"https\" with path = \"/readyz\" for apiservers)",
            );
        }
        Some((CheckOpt::Other(name), src)) => {
            let src = src.unwrap_or_else(|| check_src.clone());
            h.check = Some(V::noted(Check::Tcp, &src, format!("was option {name}")));
            report.skip(
                &src.loc,
                &format!("option {name}"),
                "protocol checks are not supported; imported as a TCP connect check",
            );
        }
        Some((CheckOpt::Http, src)) => {
            let src = src.unwrap_or_else(|| check_src.clone());
            h.check = Some(V::new(if ssl { Check::Https } else { Check::Http }, &src));
            let path = bs
                .http_path
                .clone()
                .unwrap_or_else(|| V::noted("/".to_string(), &src, "HAProxy's default URI"));
            if path.value.contains('?') || !path.value.starts_with('/') {
                report.skip(
                    path.loc().unwrap_or(&src.loc),
                    "option httpchk",
                    format!("URI {:?} is sent as is", path.value),
                );
            }
            h.path = Some(path);
            if let Some(m) = &bs.http_method {
                if !matches!(m.value.as_str(), "GET" | "HEAD" | "OPTIONS") {
                    report.skip(
                        m.loc().unwrap_or(&src.loc),
                        "option httpchk",
                        format!("method {}: havip's checks send GET", m.value),
                    );
                }
            }
            h.host = bs.http_host.clone();
            h.expect_status = Some(bs.http_expect.clone().unwrap_or_else(|| {
                V::noted(vec![(200, 399)], &src, "HAProxy accepts 2xx and 3xx")
            }));
            if ssl {
                let verify_src = first.verify.clone();
                let verify = match (&verify_src, &g.verify_none) {
                    (Some(v), _) => V::new(v.value != "none", v.src.as_ref().unwrap_or(&src)),
                    (None, Some(gsrc)) => V::new(false, gsrc),
                    (None, None) => V::noted(
                        true,
                        &src,
                        "HAProxy verifies server certificates by default",
                    ),
                };
                h.tls.verify = Some(verify);
                h.tls.ca_file = first.ca_file.clone();
                if let Some(crt) = &first.crt {
                    h.tls.client_cert = Some(crt.clone());
                    h.tls.client_key = Some(V {
                        note: Some("HAProxy's crt holds the certificate and its key".into()),
                        ..crt.clone()
                    });
                }
                h.tls.sni = first.check_sni.clone();
            }
        }
    }
    let default_src = check_src.clone();
    let inter = first.inter.clone().unwrap_or_else(|| {
        V::noted(
            Duration::from_secs(2),
            &default_src,
            "HAProxy's default inter",
        )
    });
    h.fast_interval = Some(first.fastinter.clone().unwrap_or_else(|| V {
        note: Some("HAProxy: fastinter defaults to inter".into()),
        ..inter.clone()
    }));
    h.down_interval = Some(first.downinter.clone().unwrap_or_else(|| V {
        note: Some("HAProxy: downinter defaults to inter".into()),
        ..inter.clone()
    }));
    h.rise = Some(
        first
            .rise
            .clone()
            .unwrap_or_else(|| V::noted(2, &default_src, "HAProxy's default")),
    );
    h.fall = Some(
        first
            .fall
            .clone()
            .unwrap_or_else(|| V::noted(3, &default_src, "HAProxy's default")),
    );
    // HAProxy: connect within min(timeout connect, inter); then the response within timeout
    // check if set; without timeout check, inter bounds the whole check.
    let connect = bs
        .t_connect
        .as_ref()
        .map_or(inter.value, |c| c.value.min(inter.value));
    let is_http = matches!(
        h.check.as_ref().map(|c| c.value),
        Some(Check::Http | Check::Https)
    );
    h.timeout = Some(match (&bs.t_check, is_http) {
        (Some(tc), true) => V {
            value: connect + tc.value,
            src: tc.src.clone(),
            note: Some("HAProxy: min(timeout connect, inter) to connect + timeout check".into()),
        },
        (_, false) => V {
            value: connect,
            src: bs
                .t_connect
                .as_ref()
                .and_then(|c| c.src.clone())
                .or_else(|| inter.src.clone()),
            note: Some("HAProxy: a connect check gets min(timeout connect, inter)".into()),
        },
        (None, true) => V {
            note: Some("HAProxy: without timeout check, inter bounds the check".into()),
            ..inter.clone()
        },
    });
    if let Some(tc) = &bs.t_check {
        if !is_http {
            if let Some(l) = tc.loc() {
                report.skip(
                    l,
                    "timeout check",
                    "a TCP connect check has no response to wait for; min(timeout connect, inter) bounds it",
                );
            }
        }
    }
    h.interval = Some(inter);
    h.port = first.port.clone().or_else(|| bs.check_connect_port.clone());

    // Settings that differ between servers: havip has one set per service.
    for (s, p) in checked.iter().skip(1) {
        let differs = [
            (
                "inter",
                p.inter.as_ref().map(|v| v.value) != first.inter.as_ref().map(|v| v.value),
            ),
            (
                "fastinter",
                p.fastinter.as_ref().map(|v| v.value) != first.fastinter.as_ref().map(|v| v.value),
            ),
            (
                "downinter",
                p.downinter.as_ref().map(|v| v.value) != first.downinter.as_ref().map(|v| v.value),
            ),
            (
                "rise",
                p.rise.as_ref().map(|v| v.value) != first.rise.as_ref().map(|v| v.value),
            ),
            (
                "fall",
                p.fall.as_ref().map(|v| v.value) != first.fall.as_ref().map(|v| v.value),
            ),
            (
                "port",
                p.port.as_ref().map(|v| v.value) != first.port.as_ref().map(|v| v.value),
            ),
            (
                "slowstart",
                p.slowstart.as_ref().map(|v| v.value) != first.slowstart.as_ref().map(|v| v.value),
            ),
            (
                "check-ssl",
                p.check_ssl.as_ref().map(|v| v.value) != first.check_ssl.as_ref().map(|v| v.value),
            ),
        ];
        for (what, d) in differs {
            if d {
                report.skip(
                    &s.from.loc,
                    &format!("{} {what}", s.from.directive),
                    format!(
                        "check settings are per service in havip; those of {} apply",
                        first_server.from.directive
                    ),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests;
