//! havip's configuration: one TOML file (default `/etc/havip/havip.toml`), read into typed
//! settings — the proxy's [`service::ServiceSpec`]s, the [`vrrp`] instances and trackers, the
//! [`bgp`] announcements —
//! and validated as a whole before anything starts. This crate reads files only: what needs
//! the running machine or the proxy (preparing health checks, this host's interfaces) is the
//! node's load stage.
//!
//! [`read`] returns a [`Reading`]: the typed [`Config`], the [`place::Places`] where each key
//! was written, and every [`Problem`] with file, line, column and key; `havip check` prints
//! them all and exits 1. [`lint`] finds valid settings that are traps. The keys are listed once,
//! in [`keys`]; the schema and every default are documented in `docs/config.md` (tests hold
//! the page and the code together); the defaults suit a kube-apiserver behind the balancer.

#![warn(missing_docs)]

pub mod address;
pub mod bgp;
pub mod copy_mode;
pub mod duration;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
pub mod keys;
pub mod lint;
pub mod place;
mod reader;
pub mod service;
pub mod vrrp;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use copy_mode::{CopyMode, DEFAULT_BUFFER_SIZE, DEFAULT_PIPE_SIZE};
use place::{Place, Places};
use reader::{not_one_of, Record, TableReader, Written};
use service::ServiceSpec;

pub use service::default_check;

/// Where `havip` looks for its config unless told otherwise.
pub const DEFAULT_PATH: &str = "/etc/havip/havip.toml";

/// The whole configuration, validated.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config {
    /// Process-wide settings (`[global]`).
    pub global: Global,
    /// Logging (`[log]`).
    pub log: LogSettings,
    /// The admin HTTP endpoint; off unless configured.
    pub admin: Option<AdminSettings>,
    /// The local control socket (`[control]`); on by default in a config file.
    pub control: ControlSettings,
    /// The load-balanced services (`[[service]]`).
    pub services: Vec<ServiceSpec>,
    /// VRRP instances: the floating addresses this node may hold.
    pub vrrp: Vec<vrrp::VrrpSettings>,
    /// Trackers that move the instances' priorities (and withdraw BGP announcements).
    pub trackers: Vec<vrrp::TrackerSettings>,
    /// VIPs announced by BGP through the routing daemon (`[[bgp]]`).
    pub bgp: Vec<bgp::BgpSettings>,
}

/// `[global]`: process-wide settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Global {
    /// Client connections across all services.
    pub max_conns: Option<u32>,
    /// How long SIGTERM/SIGINT waits for open connections before closing them.
    pub grace: Duration,
    /// Worker threads; 0 means one per CPU this process may run on.
    pub workers: usize,
    /// How bytes move (`copy`, `pipe_size`, `buffer_size`).
    pub copy_mode: CopyMode,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// `[log]`.
#[derive(Debug, Clone, PartialEq)]
pub struct LogSettings {
    /// Text or JSON lines.
    pub format: LogFormat,
    /// A `tracing` filter: "info", "warn", "havip=debug,info"…
    pub level: String,
    /// One line per closed connection (like HAProxy's `option tcplog`).
    pub connections: bool,
}

/// `[admin]`: the admin HTTP endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct AdminSettings {
    /// Where it listens.
    pub listen: SocketAddr,
    /// `user:password` pairs for HTTP basic authentication (HAProxy's `stats auth`); the
    /// password may be a crypt(3) hash (`$6$`, `$5$`, `$y$`) or an argon2 PHC string
    /// ([`is_password_hash`]). Empty: open. `/healthz` never needs them.
    pub auth: Vec<String>,
    /// Accept runtime commands (POST: backend state and weight, VRRP step-down and restore).
    pub commands: bool,
    /// Serve HTTPS with this certificate chain and key (PEM files), when both are given.
    pub tls: Option<AdminTls>,
}

/// `[admin] tls_cert` and `tls_key`: the admin endpoint over TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminTls {
    /// PEM certificate chain, the server's own certificate first.
    pub cert: PathBuf,
    /// PEM private key of that certificate.
    pub key: PathBuf,
}

/// The schemes of password hashes `[admin] auth` accepts, as their strings begin.
pub const PASSWORD_HASH_SCHEMES: &[&str] =
    &["$6$", "$5$", "$y$", "$argon2id$", "$argon2i$", "$argon2d$"];

/// Whether an `[admin] auth` password is a hash (see [`PASSWORD_HASH_SCHEMES`]) rather
/// than plaintext.
pub fn is_password_hash(password: &str) -> bool {
    PASSWORD_HASH_SCHEMES
        .iter()
        .any(|scheme| password.starts_with(scheme))
}

/// `[control]`: the Unix socket the CLI (`havip status`, `havip backend`) talks to; file
/// permissions are its access control, as for HAProxy's `stats socket`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlSettings {
    /// Where the socket is; `None`: no control socket. A config file gets
    /// [`DEFAULT_CONTROL_SOCKET`] unless it says `socket = ""`; a config built in code
    /// (tests, the demo) gets none unless it sets one.
    pub socket: Option<PathBuf>,
    /// The socket file's permission bits.
    pub mode: u32,
    /// The socket file's group (a name or a number), so its members may use it.
    pub group: Option<String>,
}

impl Default for ControlSettings {
    fn default() -> Self {
        ControlSettings {
            socket: None,
            mode: DEFAULT_CONTROL_MODE,
            group: None,
        }
    }
}

/// Where the control socket is unless `[control] socket` says otherwise (systemd's
/// `RuntimeDirectory=havip`).
pub const DEFAULT_CONTROL_SOCKET: &str = "/run/havip/havip.sock";

/// The control socket's default permissions: owner and group read and write.
pub const DEFAULT_CONTROL_MODE: u32 = 0o660;

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
    let control = read_control(&mut p, &mut root);
    let has_vrrp = root.has("vrrp");
    let services = service::read_services(&mut p, &mut root, has_vrrp);
    let trackers = vrrp::read_trackers(&mut p, &mut root, &services);
    let mut vrrp = vrrp::read_vrrp_instances(&mut p, &mut root, &trackers);
    for instance in &mut vrrp {
        instance.resolve_startup_limit(&trackers, &services);
    }
    let bgp = bgp::read_bgp(&mut p, &mut root, &trackers);
    root.finish(&mut p);
    Reading {
        config: Config {
            global,
            log,
            admin,
            control,
            services,
            vrrp,
            trackers,
            bgp,
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
        Some(at) => p
            .parsed(&t.key("listen"), &at, address::parse_socket_addr)
            .unwrap_or(DEFAULT_ADMIN),
    };
    let mut auth = Vec::new();
    for at in t.strings(p, "auth").unwrap_or_default() {
        match at.value.split_once(':') {
            Some((user, password))
                if !user.is_empty() && !at.value.chars().any(char::is_control) =>
            {
                match password_hash_problem(password) {
                    None => auth.push(at.value),
                    Some(problem) => p.add(&at.span, t.key("auth"), problem),
                }
            }
            _ => p.add(
                &at.span,
                t.key("auth"),
                "expected \"user:password\" (as HAProxy's stats auth)",
            ),
        }
    }
    let commands = t.bool(p, "commands").unwrap_or(false);
    let cert = t.string(p, "tls_cert");
    let key = t.string(p, "tls_key");
    let tls = match (cert, key) {
        (Some(cert), Some(key)) => Some(AdminTls {
            cert: cert.value.into(),
            key: key.value.into(),
        }),
        (None, None) => None,
        (Some(_), None) | (None, Some(_)) => {
            p.add(
                &t.span(),
                t.key("tls_cert"),
                "give both tls_cert and tls_key, or neither",
            );
            None
        }
    };
    t.finish(p);
    Some(AdminSettings {
        listen,
        auth,
        commands,
        tls,
    })
}

/// What is wrong with a password that looks like a hash, if anything: an unknown scheme, or
/// characters a crypt(3) or PHC string never holds.
fn password_hash_problem(password: &str) -> Option<String> {
    if !password.starts_with('$') {
        return None;
    }
    if !is_password_hash(password) {
        return Some(format!(
            "a password starting with '$' is read as a hash; known schemes: {} (sha-crypt, yescrypt, argon2)",
            PASSWORD_HASH_SCHEMES.join(" ")
        ));
    }
    let valid = |c: char| c.is_ascii_alphanumeric() || "$./=,+-".contains(c);
    let fields = password
        .split('$')
        .filter(|field| !field.is_empty())
        .count();
    if !password.chars().all(valid) || fields < 3 {
        return Some(
            "not a complete hash: expected $scheme$[parameters$]salt$hash, as mkpasswd or argon2 print it"
                .into(),
        );
    }
    None
}

fn read_control(p: &mut Record, root: &mut TableReader<'_, '_>) -> ControlSettings {
    let mut control = ControlSettings {
        socket: Some(PathBuf::from(DEFAULT_CONTROL_SOCKET)),
        ..ControlSettings::default()
    };
    let Some(mut t) = root.table(p, "control", keys::CONTROL.keys) else {
        return control;
    };
    if let Some(Written { value, span }) = t.string(p, "socket") {
        if value.is_empty() {
            control.socket = None;
        } else if !value.starts_with('/') {
            p.add(
                &span,
                t.key("socket"),
                "expected an absolute path, or \"\" for no control socket",
            );
        } else {
            control.socket = Some(PathBuf::from(value));
        }
    }
    if let Some(Written { value, span }) = t.string(p, "mode") {
        match u32::from_str_radix(&value, 8) {
            Ok(mode) if mode <= 0o777 && !value.is_empty() => control.mode = mode,
            _ => p.add(
                &span,
                t.key("mode"),
                "expected octal permission bits as a string, like \"0660\"",
            ),
        }
    }
    if let Some(Written { value, span }) = t.string(p, "group") {
        if value.is_empty() || value.chars().any(|c| c.is_control() || c == ':') {
            p.add(&span, t.key("group"), "expected a group name or number");
        } else {
            control.group = Some(value);
        }
    }
    t.finish(p);
    control
}

#[cfg(test)]
mod tests;
