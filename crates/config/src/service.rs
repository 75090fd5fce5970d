//! What a service is, as plain data: the `[[service]]` part of the schema. The reader builds
//! these from the TOML config (or an importer does) and validates them as a whole; the proxy
//! runs them. Nothing here does I/O; the defaults are chosen for a kube-apiserver behind the
//! balancer and are listed in `docs/config.md` (a test holds the two together).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

mod health;
mod read;

pub(crate) use read::read_services;

/// One load-balanced TCP service: where it listens and where it sends connections.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceSpec {
    /// Unique; names metrics and log lines.
    pub name: String,
    /// The addresses it accepts clients on.
    pub listen: Vec<SocketAddr>,
    /// Where clients are sent.
    pub backends: Vec<BackendSpec>,
    /// How a backend is chosen for each client.
    pub balance: Algorithm,
    /// Active health checks.
    pub health: HealthSpec,
    /// Failed connects counted against a backend.
    pub passive: PassiveSpec,
    /// Connect, queue and idle timeouts.
    pub timeouts: Timeouts,
    /// Connection, queue and backlog limits.
    pub limits: Limits,
    /// Connect attempts after the first failed one, each on another backend where one exists.
    pub retries: u32,
    /// Ramp a backend's weight from ~0 to its full value over this time after it comes up.
    pub slow_start: Option<Duration>,
    /// Also ramp at process start (HAProxy does not; useful when every LB node restarts at once).
    pub slow_start_at_boot: bool,
    /// Close established connections to a backend when it is marked down (HAProxy
    /// `on-marked-down shutdown-sessions`). Off by default: a kube-apiserver that fails
    /// `/readyz` during `--shutdown-delay-duration` still serves the requests it has.
    pub close_on_down: bool,
}

/// One backend of a service.
#[derive(Debug, Clone, PartialEq)]
pub struct BackendSpec {
    /// Unique within the service; defaults to the address.
    pub name: String,
    /// Where it is connected to.
    pub addr: SocketAddr,
    /// Relative share of new connections; 0 drains (no new connections, existing ones kept).
    pub weight: u32,
    /// Concurrent connections to this backend; further clients wait in the service's queue.
    pub max_conns: Option<u32>,
    /// Used only while no primary (non-backup) backend is usable.
    pub backup: bool,
}

/// How a service picks the backend of a new client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// Smooth weighted round robin (nginx's algorithm): exact proportions, interleaved.
    RoundRobin,
    /// Fewest active connections relative to weight.
    LeastConn,
    /// Ketama-style consistent hash of the client address.
    SourceHash,
    /// Two random backends (weighted), the less loaded one wins.
    RandomTwo,
}

impl Algorithm {
    /// The name a config writes it by.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::RoundRobin => "round_robin",
            Algorithm::LeastConn => "least_conn",
            Algorithm::SourceHash => "source_hash",
            Algorithm::RandomTwo => "random_two",
        }
    }
}

/// Active health checking of every backend of a service.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthSpec {
    /// `None` disables active checks: backends are up unless passive failures mark them down.
    pub check: Option<CheckKind>,
    /// Time between checks while the state is stable and up.
    pub interval: Duration,
    /// Time between checks while a state change is pending (some but not yet `rise`/`fall`
    /// results in a row).
    pub fast_interval: Duration,
    /// Time between checks while the backend is down.
    pub down_interval: Duration,
    /// One check attempt, connect plus (for HTTP) the response status line.
    pub timeout: Duration,
    /// Consecutive successes to mark a down backend up.
    pub rise: u32,
    /// Consecutive failures to mark an up backend down.
    pub fall: u32,
    /// Check this port instead of the backend's traffic port.
    pub port: Option<u16>,
}

/// What an active check does.
#[derive(Debug, Clone, PartialEq)]
pub enum CheckKind {
    /// The backend accepts a TCP connection.
    Tcp,
    /// An HTTP/1.1 GET answers with an expected status; over TLS when `tls` is set.
    Http(HttpCheck),
}

/// An HTTP(S) check.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpCheck {
    /// The request path.
    pub path: String,
    /// `Host` header; defaults to the backend address.
    pub host: Option<String>,
    /// Statuses counted as healthy (inclusive ranges).
    pub expect_status: Vec<(u16, u16)>,
    /// Check over TLS (HTTPS) with these settings.
    pub tls: Option<TlsCheck>,
}

/// The TLS side of an HTTPS check.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TlsCheck {
    /// Verify the server certificate chain and name.
    pub verify: bool,
    /// Trust anchors for verification (PEM); without it the system store is used.
    pub ca_file: Option<PathBuf>,
    /// Client certificate chain (PEM), for apiservers with anonymous auth off.
    pub client_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    pub client_key: Option<PathBuf>,
    /// Server name sent in the ClientHello and verified; defaults to the backend host.
    pub sni: Option<String>,
}

/// Passive health: failed connects mark a backend down like nginx `max_fails`/`fail_timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PassiveSpec {
    /// Failed connects within `fail_timeout` that mark the backend down; 0 disables.
    pub max_fails: u32,
    /// The window failures are counted in, and (without active checks) how long the backend
    /// then stays down before it is tried again.
    pub fail_timeout: Duration,
}

/// A service's timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// One TCP connect attempt to one backend.
    pub connect: Duration,
    /// Longest wait in the queue for a backend with a free connection slot.
    pub queue: Duration,
    /// No bytes from the client for this long closes the connection; applies while
    /// `tunnel` is off, and to the direction still open after the backend half-closed.
    pub client_idle: Duration,
    /// No bytes from the backend for this long closes the connection; applies while
    /// `tunnel` is off, and to the direction still open after the client half-closed.
    pub server_idle: Duration,
    /// Once connected with both directions open: close only after no bytes moved either way
    /// for this long (HAProxy `timeout tunnel`). `None` applies client/server idle instead.
    pub tunnel: Option<Duration>,
}

/// A service's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Clients waiting for a free backend slot; beyond it new clients are closed at once.
    pub max_queue: u32,
    /// Concurrent client connections of this service; `None` means only the global limit.
    pub max_conns: Option<u32>,
    /// Listen backlog passed to listen(2) (the kernel caps it at net.core.somaxconn).
    pub backlog: u32,
}

pub mod defaults {
    //! Defaults for a kube-apiserver behind the balancer; `docs/config.md` explains each
    //! (and `tests/docs.rs` holds the two together).
    use std::time::Duration;

    /// A backend's `weight`.
    pub const WEIGHT: u32 = 100;
    /// A service's `retries`.
    pub const RETRIES: u32 = 3;
    /// `timeouts.connect`.
    pub const CONNECT: Duration = Duration::from_secs(3);
    /// `timeouts.queue`.
    pub const QUEUE: Duration = Duration::from_secs(30);
    /// Watches and `kubectl logs -f` stay open for a long time with no client bytes; an idle
    /// limit under that breaks them (the kubeadm guide's 20 s does). TCP keepalive finds
    /// dead peers long before this.
    pub const CLIENT_IDLE: Duration = Duration::from_secs(3600);
    /// `timeouts.server_idle`, as long as the client's for the same reason.
    pub const SERVER_IDLE: Duration = Duration::from_secs(3600);
    /// `timeouts.tunnel`.
    pub const TUNNEL: Duration = Duration::from_secs(3600);
    /// `limits.max_queue`.
    pub const MAX_QUEUE: u32 = 1024;
    /// `limits.backlog`.
    pub const BACKLOG: u32 = 4096;
    /// `health.interval`, HAProxy's `inter`.
    pub const CHECK_INTERVAL: Duration = Duration::from_secs(2);
    /// `health.fast_interval`, HAProxy's `fastinter`.
    pub const CHECK_FAST_INTERVAL: Duration = Duration::from_millis(500);
    /// `health.down_interval`, HAProxy's `downinter`.
    pub const CHECK_DOWN_INTERVAL: Duration = Duration::from_secs(2);
    /// `health.timeout`.
    pub const CHECK_TIMEOUT: Duration = Duration::from_secs(1);
    /// `health.rise`, HAProxy's.
    pub const RISE: u32 = 2;
    /// `health.fall`, HAProxy's.
    pub const FALL: u32 = 3;
    /// `passive.max_fails`.
    pub const MAX_FAILS: u32 = 3;
    /// `passive.fail_timeout`, nginx's.
    pub const FAIL_TIMEOUT: Duration = Duration::from_secs(10);
    /// `health.path`: the apiserver's load-balancer signal.
    pub const READYZ_PATH: &str = "/readyz";
}

impl Default for HealthSpec {
    fn default() -> Self {
        HealthSpec {
            check: Some(CheckKind::Tcp),
            interval: defaults::CHECK_INTERVAL,
            fast_interval: defaults::CHECK_FAST_INTERVAL,
            down_interval: defaults::CHECK_DOWN_INTERVAL,
            timeout: defaults::CHECK_TIMEOUT,
            rise: defaults::RISE,
            fall: defaults::FALL,
            port: None,
        }
    }
}

impl Default for PassiveSpec {
    fn default() -> Self {
        PassiveSpec {
            max_fails: defaults::MAX_FAILS,
            fail_timeout: defaults::FAIL_TIMEOUT,
        }
    }
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: defaults::CONNECT,
            queue: defaults::QUEUE,
            client_idle: defaults::CLIENT_IDLE,
            server_idle: defaults::SERVER_IDLE,
            tunnel: Some(defaults::TUNNEL),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_queue: defaults::MAX_QUEUE,
            max_conns: None,
            backlog: defaults::BACKLOG,
        }
    }
}

impl ServiceSpec {
    /// A service with kube-apiserver defaults and the given backends (all weight 100).
    pub fn new(name: impl Into<String>, listen: Vec<SocketAddr>, backends: &[SocketAddr]) -> Self {
        ServiceSpec {
            name: name.into(),
            listen,
            backends: backends.iter().map(|a| BackendSpec::new(*a)).collect(),
            balance: Algorithm::RoundRobin,
            health: HealthSpec::default(),
            passive: PassiveSpec::default(),
            timeouts: Timeouts::default(),
            limits: Limits::default(),
            retries: defaults::RETRIES,
            slow_start: None,
            slow_start_at_boot: false,
            close_on_down: false,
        }
    }
}

impl BackendSpec {
    /// A backend at `addr`, named after it, with the default weight.
    pub fn new(addr: SocketAddr) -> Self {
        BackendSpec {
            name: addr.to_string(),
            addr,
            weight: defaults::WEIGHT,
            max_conns: None,
            backup: false,
        }
    }
}

impl HttpCheck {
    /// A GET of `/readyz` expecting 200, without TLS: the apiserver's load-balancer signal.
    pub(crate) fn readyz() -> HttpCheck {
        HttpCheck {
            path: defaults::READYZ_PATH.to_string(),
            host: None,
            expect_status: vec![(200, 200)],
            tls: None,
        }
    }
}

/// The default active check: what the kubeadm HA guide configures in HAProxy
/// (`option httpchk GET /healthz` + `check-ssl verify none`), on `/readyz`, the endpoint
/// meant for load balancers. Certificate verification is off by default because the
/// apiserver's certificate is issued by the cluster CA, which the LB host rarely has.
pub fn default_check() -> CheckKind {
    CheckKind::Http(HttpCheck {
        tls: Some(TlsCheck::default()),
        ..HttpCheck::readyz()
    })
}
