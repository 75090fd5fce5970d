//! havip's configuration: one TOML file (default `/etc/havip/havip.toml`), read into typed
//! settings and the proxy's [`ServiceSpec`]s, and validated as a whole before anything starts.
//!
//! Every problem is reported with file, line, column and key (see [`reader`]); `havip check`
//! prints them all and exits 1. The schema and every default are documented in
//! `docs/config.md`; the defaults suit a kube-apiserver behind the balancer.

pub mod address;
pub mod copy_mode;
pub mod duration;
pub mod keys;
pub mod lint;
pub mod place;
mod reader;
pub mod service;
pub mod vrrp;

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use copy_mode::{CopyMode, DEFAULT_BUFFER_SIZE, DEFAULT_PIPE_SIZE};
use service::{
    defaults, Algorithm, BackendSpec, CheckKind, HealthSpec, HttpCheck, Limits, PassiveSpec,
    ServiceSpec, Timeouts, TlsCheck,
};

use place::{Place, Places};
use reader::{not_one_of, Record, Span, TableReader, Written};

pub const DEFAULT_PATH: &str = "/etc/havip/havip.toml";

/// The whole configuration, validated.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config {
    pub global: Global,
    pub log: LogSettings,
    /// The admin HTTP endpoint; off unless configured.
    pub admin: Option<AdminSettings>,
    pub services: Vec<ServiceSpec>,
    /// VRRP instances: the floating addresses this node may hold.
    pub vrrp: Vec<vrrp::VrrpSettings>,
    /// Trackers that move the instances' priorities.
    pub trackers: Vec<vrrp::TrackerSettings>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Global {
    /// Client connections across all services.
    pub max_conns: Option<u32>,
    /// How long SIGTERM/SIGINT waits for open connections before closing them.
    pub grace: Duration,
    /// Worker threads; 0 means one per CPU this process may run on.
    pub workers: usize,
    pub copy_mode: CopyMode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogSettings {
    pub format: LogFormat,
    /// A `tracing` filter: "info", "warn", "havip=debug,info"…
    pub level: String,
    /// One line per closed connection (like HAProxy's `option tcplog`).
    pub connections: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AdminSettings {
    pub listen: SocketAddr,
    /// `user:password` pairs for HTTP basic authentication (HAProxy's `stats auth`); empty:
    /// open. `/healthz` never needs them.
    pub auth: Vec<String>,
    /// Accept runtime commands (POST: the failover drill's step-down and restore).
    pub commands: bool,
}

/// One thing wrong with a config file, where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// File, line, column and the dotted key path (`service[0].backend[1].weight`).
    pub place: Place,
    /// What is wrong, and how to fix it when that is clear.
    pub message: String,
}

impl Problem {
    /// A problem at `place`.
    pub fn new(place: Place, message: impl Into<String>) -> Problem {
        Problem {
            place,
            message: message.into(),
        }
    }
}

/// `file:line:column: key: message`, as `havip check` prints it.
impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.place, self.message)
    }
}

/// Why a config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why not.
        source: std::io::Error,
    },
    /// The file was read and has problems.
    #[error("{} problem(s) in {}", problems.len(), path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Every problem, in the order they were found.
        problems: Vec<Problem>,
    },
}

/// What reading a config gave: the typed config, where each key was written, and every
/// problem. The config is complete and valid only when `problems` is empty; otherwise it
/// holds what could be read, for the checks of later stages that still apply.
#[derive(Debug, Clone)]
pub struct Reading {
    /// The typed config (partial when there are problems).
    pub config: Config,
    /// Where each key and table was written.
    pub places: Places,
    /// Every problem found, in the order found.
    pub problems: Vec<Problem>,
}

impl Reading {
    /// The config and its places when there is no problem, otherwise the problems.
    pub fn into_result(self) -> Result<(Config, Places), Vec<Problem>> {
        if self.problems.is_empty() {
            Ok((self.config, self.places))
        } else {
            Err(self.problems)
        }
    }
}

impl Default for Global {
    fn default() -> Self {
        Global {
            max_conns: None,
            grace: DEFAULT_GRACE,
            workers: 0,
            copy_mode: CopyMode::default(),
        }
    }
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            format: LogFormat::Text,
            level: "info".into(),
            connections: true,
        }
    }
}

/// Default shutdown grace: long enough for ordinary API requests to finish, short enough for
/// systemd's default 90 s stop timeout.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(30);

/// Default admin address (when `[admin]` is present without `listen`).
pub const DEFAULT_ADMIN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8404);

/// Read the file at `path` (see [`read`]); only a file that cannot be read is an error here.
pub fn read_file(path: &Path) -> Result<Reading, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(read(path, &text))
}

/// Parse and validate config text; `path` is only used in problem reports.
pub fn parse(path: &Path, text: &str) -> Result<Config, Vec<Problem>> {
    read(path, text).into_result().map(|(config, _)| config)
}

/// Read config text into typed settings, recording where each key was written and every
/// problem; `path` is only used in places.
pub fn read(path: &Path, text: &str) -> Reading {
    let mut p = Record::new(path, text);
    let doc = match toml::de::DeTable::parse(text) {
        Ok(doc) => doc,
        Err(e) => {
            // A syntax error leaves no tree to read; report it and stop.
            let span = e.span().unwrap_or(0..0);
            p.add(&span, "(syntax)", e.message().trim().to_string());
            return Reading {
                config: Config::default(),
                places: p.places,
                problems: p.problems,
            };
        }
    };
    let mut root = TableReader::new("", doc.get_ref(), doc.span(), keys::ROOT.keys);
    let global = read_global(&mut p, &mut root);
    let log = read_log(&mut p, &mut root);
    let admin = read_admin(&mut p, &mut root);
    let has_vrrp = root.has("vrrp");
    let services = read_services(&mut p, &mut root, has_vrrp);
    let trackers = vrrp::read_trackers(&mut p, &mut root, &services);
    let vrrp = vrrp::read_vrrp_instances(&mut p, &mut root, &trackers);
    root.finish(&mut p);
    Reading {
        config: Config {
            global,
            log,
            admin,
            services,
            vrrp,
            trackers,
        },
        places: p.places,
        problems: p.problems,
    }
}

fn read_global(p: &mut Record, root: &mut TableReader<'_, '_>) -> Global {
    let mut global = Global::default();
    let Some(mut t) = root.table(p, "global", keys::GLOBAL.keys) else {
        return global;
    };
    global.max_conns = t.u32(p, "max_conns", 1..=10_000_000);
    if let Some(grace) = t.duration(p, "grace") {
        global.grace = grace.value;
    }
    if let Some(workers) = t.u32(p, "workers", 0..=1024) {
        global.workers = workers as usize;
    }
    let pipe_size = Some(
        t.u32(p, "pipe_size", 4096..=(64 << 20))
            .map_or(DEFAULT_PIPE_SIZE, |n| n as usize),
    );
    let buffer_size = t
        .u32(p, "buffer_size", 1024..=(16 << 20))
        .map_or(DEFAULT_BUFFER_SIZE, |n| n as usize);
    global.copy_mode = match t.string(p, "copy") {
        None => CopyMode::Splice { pipe_size },
        Some(Written { value, span }) => match value.as_str() {
            "splice" => CopyMode::Splice { pipe_size },
            "buffered" => CopyMode::Buffered { buffer_size },
            other => {
                p.add(
                    &span,
                    t.key("copy"),
                    not_one_of(
                        other,
                        "a copy mode",
                        &["splice", "buffered"],
                        "use \"splice\" or \"buffered\"",
                    ),
                );
                CopyMode::default()
            }
        },
    };
    t.finish(p);
    global
}

fn read_log(p: &mut Record, root: &mut TableReader<'_, '_>) -> LogSettings {
    let mut log = LogSettings::default();
    let Some(mut t) = root.table(p, "log", keys::LOG.keys) else {
        return log;
    };
    if let Some(Written { value, span }) = t.string(p, "format") {
        match value.as_str() {
            "text" => log.format = LogFormat::Text,
            "json" => log.format = LogFormat::Json,
            other => p.add(
                &span,
                t.key("format"),
                not_one_of(
                    other,
                    "a log format",
                    &["text", "json"],
                    "use \"text\" or \"json\"",
                ),
            ),
        }
    }
    if let Some(Written { value, span }) = t.string(p, "level") {
        match tracing_subscriber::EnvFilter::try_new(&value) {
            Ok(_) => log.level = value,
            Err(e) => p.add(&span, t.key("level"), format!("not a log filter: {e}")),
        }
    }
    if let Some(b) = t.bool(p, "connections") {
        log.connections = b;
    }
    t.finish(p);
    log
}

fn read_admin(p: &mut Record, root: &mut TableReader<'_, '_>) -> Option<AdminSettings> {
    let mut t = root.table(p, "admin", keys::ADMIN.keys)?;
    let listen = match t.string(p, "listen") {
        None => DEFAULT_ADMIN,
        Some(at) => parse_socket_addr(p, &t.key("listen"), &at).unwrap_or(DEFAULT_ADMIN),
    };
    let mut auth = Vec::new();
    for at in t.strings(p, "auth").unwrap_or_default() {
        match at.value.split_once(':') {
            Some((user, _)) if !user.is_empty() && !at.value.chars().any(char::is_control) => {
                auth.push(at.value)
            }
            _ => p.add(
                &at.span,
                t.key("auth"),
                "expected \"user:password\" (as HAProxy's stats auth)",
            ),
        }
    }
    let commands = t.bool(p, "commands").unwrap_or(false);
    t.finish(p);
    Some(AdminSettings {
        listen,
        auth,
        commands,
    })
}

/// `IP:port`, `[IPv6]:port`, or `*:port` (all IPv4 addresses, as in HAProxy's `bind *:port`).
fn parse_socket_addr(p: &mut Record, key: &str, at: &Written<String>) -> Option<SocketAddr> {
    let text = at.value.trim();
    let text = match text.strip_prefix("*:") {
        Some(port) => format!("0.0.0.0:{port}"),
        None => text.to_string(),
    };
    match text.parse::<SocketAddr>() {
        Ok(addr) => Some(addr),
        Err(_) => {
            p.add(
                &at.span,
                key,
                format!(
                    "{:?} is not an address; write IP:port, [IPv6]:port or *:port (hostnames are not resolved)",
                    at.value
                ),
            );
            None
        }
    }
}

fn read_services(
    p: &mut Record,
    root: &mut TableReader<'_, '_>,
    has_vrrp: bool,
) -> Vec<ServiceSpec> {
    let tables = root.tables(p, "service", keys::SERVICE.keys);
    if tables.is_empty() && !root.has("service") && !has_vrrp {
        p.add(
            &(0..0),
            "service",
            "nothing to do: define at least one [[service]] to balance or [[vrrp]] instance",
        );
    }
    let mut services = Vec::new();
    let mut names: HashMap<String, Span> = HashMap::new();
    let mut listeners: Vec<(SocketAddr, String)> = Vec::new();
    for mut t in tables {
        let service = read_service(p, &mut t);
        let name_span = t.span();
        if names
            .insert(service.name.clone(), name_span.clone())
            .is_some()
        {
            p.add(
                &name_span,
                t.key("name"),
                format!("a service named {:?} is already defined", service.name),
            );
        }
        for addr in &service.listen {
            for (other, owner) in &listeners {
                if listen_conflict(*addr, *other) {
                    p.add(
                        &name_span,
                        t.key("listen"),
                        format!("{addr} overlaps {other} of service {owner:?}"),
                    );
                }
            }
        }
        listeners.extend(service.listen.iter().map(|a| (*a, service.name.clone())));
        t.finish(p);
        services.push(service);
    }
    services
}

/// Two listeners that cannot both be bound: same port and family, and the same address or
/// either one the wildcard.
fn listen_conflict(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port()
        && a.is_ipv4() == b.is_ipv4()
        && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

/// Read one service. With problems the spec is partial, but it is still returned so the
/// checks across services (duplicate names, overlapping listeners) report everything.
fn read_service(p: &mut Record, t: &mut TableReader<'_, '_>) -> ServiceSpec {
    let name = match t.string(p, "name") {
        Some(Written { value, span }) => {
            if !valid_name(&value) {
                p.add(
                    &span,
                    t.key("name"),
                    "use letters, digits, '-', '_' and '.' only (it names metrics and logs)",
                );
            }
            value
        }
        None => {
            p.add(
                &t.span(),
                t.key("name"),
                "missing: every service needs a name",
            );
            String::new()
        }
    };
    let mut listen = Vec::new();
    match t.strings(p, "listen") {
        Some(list) if !list.is_empty() => {
            for at in &list {
                if let Some(addr) = parse_socket_addr(p, &t.key("listen"), at) {
                    if listen.contains(&addr) {
                        p.add(&at.span, t.key("listen"), format!("{addr} is listed twice"));
                    }
                    listen.push(addr);
                }
            }
        }
        _ => p.add(
            &t.span(),
            t.key("listen"),
            "missing: give at least one address, e.g. listen = [\"0.0.0.0:8443\"]",
        ),
    }
    let mut spec = ServiceSpec::new(name, listen, &[]);
    if let Some(Written { value, span }) = t.string(p, "balance") {
        match parse_algorithm(&value) {
            Some(a) => spec.balance = a,
            None => p.add(
                &span,
                t.key("balance"),
                not_one_of(
                    &value,
                    "a balance algorithm",
                    ALGORITHMS,
                    "use round_robin, least_conn, source_hash or random_two",
                ),
            ),
        }
    }
    if let Some(n) = t.u32(p, "retries", 0..=100) {
        spec.retries = n;
    }
    if let Some(d) = t.duration(p, "slow_start") {
        spec.slow_start = (!d.value.is_zero()).then_some(d.value);
    }
    if let Some(b) = t.bool(p, "slow_start_at_boot") {
        spec.slow_start_at_boot = b;
    }
    if let Some(b) = t.bool(p, "close_on_down") {
        spec.close_on_down = b;
    }
    if let Some(mut tt) = t.table(p, "timeouts", keys::TIMEOUTS.keys) {
        spec.timeouts = read_timeouts(p, &mut tt);
        tt.finish(p);
    }
    if let Some(mut lt) = t.table(p, "limits", keys::LIMITS.keys) {
        spec.limits = read_limits(p, &mut lt);
        lt.finish(p);
    }
    spec.health = HealthSpec {
        check: Some(default_check()),
        ..HealthSpec::default()
    };
    if let Some(mut ht) = t.table(p, "health", keys::HEALTH.keys) {
        spec.health = read_health(p, &mut ht);
        ht.finish(p);
    }
    if let Some(mut pt) = t.table(p, "passive", keys::PASSIVE.keys) {
        spec.passive = read_passive(p, &mut pt);
        pt.finish(p);
    }
    let backend_tables = t.tables(p, "backend", keys::BACKEND.keys);
    if backend_tables.is_empty() {
        p.add(
            &t.span(),
            t.key("backend"),
            "missing: add at least one [[service.backend]] with an address",
        );
    }
    let mut seen_names: HashMap<String, ()> = HashMap::new();
    let mut seen_addrs: Vec<SocketAddr> = Vec::new();
    for mut bt in backend_tables {
        if let Some(backend) = read_backend(p, &mut bt) {
            if seen_names.insert(backend.name.clone(), ()).is_some() {
                p.add(
                    &bt.span(),
                    bt.key("name"),
                    format!(
                        "backend name {:?} is used twice in this service",
                        backend.name
                    ),
                );
            }
            if seen_addrs.contains(&backend.addr) {
                p.add(
                    &bt.span(),
                    bt.key("address"),
                    format!("{} is listed twice in this service", backend.addr),
                );
            }
            seen_addrs.push(backend.addr);
            spec.backends.push(backend);
        }
        bt.finish(p);
    }
    spec
}

pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The balance algorithms by their names (the aliases HAProxy and nginx use are accepted too).
const ALGORITHMS: &[&str] = &["round_robin", "least_conn", "source_hash", "random_two"];

fn parse_algorithm(text: &str) -> Option<Algorithm> {
    match text {
        "round_robin" | "roundrobin" => Some(Algorithm::RoundRobin),
        "least_conn" | "leastconn" => Some(Algorithm::LeastConn),
        "source_hash" | "source" => Some(Algorithm::SourceHash),
        "random_two" | "random" => Some(Algorithm::RandomTwo),
        _ => None,
    }
}

/// The default active check: what the kubeadm HA guide configures in HAProxy
/// (`option httpchk GET /healthz` + `check-ssl verify none`), on `/readyz`, the endpoint
/// meant for load balancers. Certificate verification is off by default because the
/// apiserver's certificate is issued by the cluster CA, which the LB host rarely has.
pub fn default_check() -> CheckKind {
    CheckKind::Http(HttpCheck {
        path: defaults::READYZ_PATH.to_string(),
        host: None,
        expect_status: vec![(200, 200)],
        tls: Some(TlsCheck {
            verify: false,
            ca_file: None,
            client_cert: None,
            client_key: None,
            sni: None,
        }),
    })
}

fn read_timeouts(p: &mut Record, t: &mut TableReader<'_, '_>) -> Timeouts {
    let mut out = Timeouts::default();
    if let Some(d) = t.positive_duration(p, "connect") {
        out.connect = d;
    }
    if let Some(d) = t.duration(p, "queue") {
        out.queue = d.value;
    }
    if let Some(d) = t.positive_duration(p, "client_idle") {
        out.client_idle = d;
    }
    if let Some(d) = t.positive_duration(p, "server_idle") {
        out.server_idle = d;
    }
    match t.duration_or_off(p, "tunnel") {
        Some(None) => out.tunnel = None,
        Some(Some(d)) if d.value.is_zero() => p.add(
            &d.span,
            t.key("tunnel"),
            "must be longer than 0, or \"off\"",
        ),
        Some(Some(d)) => out.tunnel = Some(d.value),
        None => {}
    }
    out
}

fn read_limits(p: &mut Record, t: &mut TableReader<'_, '_>) -> Limits {
    let mut out = Limits {
        max_conns: t.u32(p, "max_conns", 1..=10_000_000),
        ..Limits::default()
    };
    if let Some(n) = t.u32(p, "max_queue", 0..=10_000_000) {
        out.max_queue = n;
    }
    if let Some(n) = t.u32(p, "backlog", 1..=65_535) {
        out.backlog = n;
    }
    out
}

fn read_passive(p: &mut Record, t: &mut TableReader<'_, '_>) -> PassiveSpec {
    let mut out = PassiveSpec::default();
    if let Some(n) = t.u32(p, "max_fails", 0..=1000) {
        out.max_fails = n;
    }
    if let Some(d) = t.positive_duration(p, "fail_timeout") {
        out.fail_timeout = d;
    }
    out
}

/// The shortest interval and timeout of an active check.
const MIN_CHECK_INTERVAL: Duration = Duration::from_millis(10);

fn read_health(p: &mut Record, t: &mut TableReader<'_, '_>) -> HealthSpec {
    let mut out = HealthSpec::default();
    let kind = t.string(p, "check");
    let kind_name = kind
        .as_ref()
        .map_or("https", |k| k.value.as_str())
        .to_string();
    match kind_name.as_str() {
        "none" | "tcp" => {
            for key in keys::HTTP_CHECK.iter().chain(&["tls"]) {
                if let Some(span) = t.consume(p, key) {
                    p.add(
                        &span,
                        t.key(key),
                        format!("only applies to check = \"http\" or \"https\", not {kind_name:?}"),
                    );
                }
            }
            out.check = (kind_name == "tcp").then_some(CheckKind::Tcp);
        }
        _ => {
            if !matches!(kind_name.as_str(), "http" | "https") {
                if let Some(k) = &kind {
                    p.add(
                        &k.span,
                        t.key("check"),
                        not_one_of(
                            &kind_name,
                            "a check",
                            &["https", "http", "tcp", "none"],
                            "use \"https\", \"http\", \"tcp\" or \"none\"",
                        ),
                    );
                }
            }
            let mut http = HttpCheck {
                path: defaults::READYZ_PATH.to_string(),
                host: None,
                expect_status: vec![(200, 200)],
                tls: None,
            };
            if let Some(Written { value, span }) = t.string(p, "path") {
                if value.starts_with('/') && !value.contains(char::is_whitespace) {
                    http.path = value;
                } else {
                    p.add(
                        &span,
                        t.key("path"),
                        "must start with '/' and contain no spaces",
                    );
                }
            }
            http.host = t.string(p, "host").map(|h| h.value);
            if let Some(items) = t.array(p, "expect_status") {
                http.expect_status = read_status_set(p, &t.key("expect_status"), &items);
            }
            if kind_name != "http" {
                let mut tls = TlsCheck {
                    verify: false,
                    ca_file: None,
                    client_cert: None,
                    client_key: None,
                    sni: None,
                };
                if let Some(mut tt) = t.table(p, "tls", keys::TLS.keys) {
                    read_tls(p, &mut tt, &mut tls);
                    tt.finish(p);
                }
                http.tls = Some(tls);
            } else if let Some(span) = t.consume(p, "tls") {
                p.add(&span, t.key("tls"), "only applies to check = \"https\"");
            }
            out.check = Some(CheckKind::Http(http));
        }
    }
    if let Some(d) = t.duration_at_least(p, "interval", MIN_CHECK_INTERVAL) {
        out.interval = d;
        // Unless set, the down interval follows the interval (as HAProxy's `downinter`).
        out.down_interval = d;
    }
    if let Some(d) = t.duration_at_least(p, "fast_interval", MIN_CHECK_INTERVAL) {
        out.fast_interval = d;
    }
    if let Some(d) = t.duration_at_least(p, "down_interval", MIN_CHECK_INTERVAL) {
        out.down_interval = d;
    }
    if let Some(d) = t.duration_at_least(p, "timeout", MIN_CHECK_INTERVAL) {
        out.timeout = d;
    }
    if let Some(n) = t.u32(p, "rise", 1..=100) {
        out.rise = n;
    }
    if let Some(n) = t.u32(p, "fall", 1..=100) {
        out.fall = n;
    }
    out.port = t.u32(p, "port", 1..=65_535).map(|n| n as u16);
    out
}

fn read_tls(p: &mut Record, t: &mut TableReader<'_, '_>, tls: &mut TlsCheck) {
    if let Some(b) = t.bool(p, "verify") {
        tls.verify = b;
    }
    let file = |p: &mut Record, t: &mut TableReader<'_, '_>, key: &str| {
        let at = t.string(p, key)?;
        let path = PathBuf::from(&at.value);
        if let Err(e) = std::fs::metadata(&path) {
            p.add(
                &at.span,
                t.key(key),
                format!("cannot read {}: {e}", path.display()),
            );
        }
        Some((path, at.span))
    };
    let ca = file(p, t, "ca_file");
    let cert = file(p, t, "client_cert");
    let key = file(p, t, "client_key");
    if let (Some((_, span)), false) = (&ca, tls.verify) {
        p.add(
            span,
            t.key("ca_file"),
            "has no effect while verify = false; set verify = true to check the server certificate",
        );
    }
    match (&cert, &key) {
        (Some(_), None) => {
            let span = t.span();
            p.add(
                &span,
                t.key("client_key"),
                "missing: client_cert needs its client_key",
            );
        }
        (None, Some((_, span))) => {
            p.add(
                span,
                t.key("client_cert"),
                "missing: client_key needs its client_cert",
            );
        }
        _ => {}
    }
    tls.ca_file = ca.map(|(path, _)| path);
    tls.client_cert = cert.map(|(path, _)| path);
    tls.client_key = key.map(|(path, _)| path);
    tls.sni = t.string(p, "sni").map(|s| s.value);
}

/// `[200, 204, "300-399"]` into inclusive ranges.
fn read_status_set(
    p: &mut Record,
    key: &str,
    items: &[&toml::Spanned<toml::de::DeValue<'_>>],
) -> Vec<(u16, u16)> {
    let mut out = Vec::new();
    for item in items {
        let span = item.span();
        let parsed = match item.get_ref() {
            toml::de::DeValue::Integer(i) => i.as_str().parse::<u16>().ok().map(|n| (n, n)),
            toml::de::DeValue::String(s) => match s.split_once('-') {
                Some((a, b)) => a.trim().parse().ok().zip(b.trim().parse().ok()),
                None => s.trim().parse().ok().map(|n| (n, n)),
            },
            _ => None,
        };
        match parsed {
            Some((lo, hi)) if (100..=599).contains(&lo) && (lo..=599).contains(&hi) => {
                out.push((lo, hi))
            }
            _ => p.add(
                &span,
                key,
                "expected a status code (100-599) or a range like \"200-299\"",
            ),
        }
    }
    if out.is_empty() && items.is_empty() {
        p.add(&(0..0), key, "must list at least one status");
    }
    out
}

fn read_backend(p: &mut Record, t: &mut TableReader<'_, '_>) -> Option<BackendSpec> {
    let before = p.count();
    let addr = match t.string(p, "address") {
        Some(at) => parse_socket_addr(p, &t.key("address"), &at),
        None => {
            p.add(
                &t.span(),
                t.key("address"),
                "missing: every backend needs an address",
            );
            None
        }
    };
    let addr = addr?;
    let mut b = BackendSpec::new(addr);
    if let Some(Written { value, span }) = t.string(p, "name") {
        if valid_name(&value) {
            b.name = value;
        } else {
            p.add(
                &span,
                t.key("name"),
                "use letters, digits, '-', '_' and '.' only",
            );
        }
    }
    if let Some(w) = t.u32(p, "weight", 0..=10_000) {
        b.weight = w;
    }
    b.max_conns = t.u32(p, "max_conns", 1..=10_000_000);
    if let Some(backup) = t.bool(p, "backup") {
        b.backup = backup;
    }
    (p.count() == before).then_some(b)
}

#[cfg(test)]
mod tests;
