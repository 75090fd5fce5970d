//! The admin API: one HTTP/1.1 API (axum on hyper, JSON bodies) served on the TCP admin
//! endpoint (`[admin]`, optionally over TLS) and on the local control socket
//! ([`crate::control`]). Paths, bodies and answers are documented in `docs/operations.md`.
//!
//! - [`api`]: the router and its handlers (status, events, metrics, health, the stats page,
//!   backend state and weight, VRRP step-down and restore). Another part of the node adds its
//!   own routes by merging into [`router`]'s result before serving.
//! - [`guard`]: what a request from the network needs (credentials, commands on, a JSON body,
//!   the same origin); requests on the control socket skip it.
//! - [`http`]: serving connections: a cap on concurrent connections, header and body limits,
//!   timeouts, keep-alive, TLS.
//! - [`auth`]: basic authentication with plaintext or hashed passwords.
//! - [`status`]: the JSON of `/api/status`. [`page`]: the stats page, inside the binary.
//!
//! Lifecycle: [`AdminState`] is built once when the node starts ([`AdminState::new`]) and
//! shared by every connection; [`start`] binds the TCP endpoint and the control socket and
//! spawns their accept loops, which end when the token given to them is cancelled.

pub mod api;
pub mod auth;
pub mod guard;
pub mod http;
pub mod page;
pub mod status;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use havip_config::Config;
use havip_proxy::service::Service;
use havip_proxy::ServiceTable;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::bgp::status::BgpView;
use crate::run::{ConfigSource, ReloadRequest, ReloadStats, UpgradeRequest};
use crate::vrrp::status::{EventLog, VrrpView};
use crate::vrrp::VrrpCommands;

pub use api::router;

/// Who is asking: decides which checks a request goes through ([`guard`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// The TCP admin endpoint: credentials when configured, commands only with
    /// `[admin] commands = true`, JSON bodies, same origin.
    Network,
    /// The control socket: whoever could open it may do everything (file permissions are the
    /// access control, as for HAProxy's `stats socket`).
    Local,
}

/// What the API reports on and acts on.
#[derive(Debug)]
pub struct AdminState {
    /// The proxy's running services, for `/metrics`, `/api/status` and backend commands;
    /// current across reloads (a backend a reload kept is the same object, so what an
    /// operator set on it is what the API shows and changes).
    services: Arc<ServiceTable>,
    /// When the node started, for the uptime.
    pub started: Instant,
    /// The same moment in Unix milliseconds, for the stats page and `process_start_time_seconds`.
    pub started_unix_ms: u64,
    /// When the running config was loaded (Unix milliseconds); a reload sets it again.
    pub config_loaded_unix_ms: AtomicU64,
    /// Set once shutdown began: `/healthz` then answers 503 so an upstream LB stops sending.
    pub draining: AtomicBool,
    /// The VRRP instances, when the config has any.
    pub vrrp: Option<Arc<VrrpView>>,
    /// Step-down and restore, when there are VRRP instances.
    pub vrrp_commands: Option<VrrpCommands>,
    /// `[admin] commands`: whether the TCP endpoint accepts commands ([`AdminState::reconfigure`]
    /// changes it).
    network_commands: AtomicBool,
    /// `[admin] auth`: credentials every request on the TCP endpoint but `/healthz` carries
    /// ([`AdminState::reconfigure`] swaps them).
    auth: ArcSwap<auth::BasicAuth>,
    /// The rest of the node: BGP, events, the running config, reloads and upgrades.
    pub node: NodeLink,
}

/// What the API needs of the rest of the node beyond services and VRRP.
#[derive(Debug, Default)]
pub struct NodeLink {
    /// The BGP announcements' status, when there are any.
    pub bgp: Option<Arc<BgpView>>,
    /// The node's event log (VRRP and BGP), for `/api/events`.
    pub events: Arc<EventLog>,
    /// The running config: file, checksum, when loaded; a reload swaps it.
    pub config: ArcSwap<ConfigSource>,
    /// Reloads by result, for `/metrics`.
    pub reloads: Arc<ReloadStats>,
    /// Where `POST /api/reload` goes (`havip run` only: a built-in config has no file).
    pub reload: Option<mpsc::Sender<ReloadRequest>>,
    /// Where `POST /api/upgrade` goes (`havip run` only).
    pub upgrade: Option<mpsc::Sender<UpgradeRequest>>,
}

/// Why the admin endpoint or the control socket cannot start.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// `[admin] auth` holds a hash that cannot be read.
    #[error(transparent)]
    Auth(#[from] auth::AuthConfigError),
    /// The TCP endpoint cannot listen.
    #[error("admin: cannot listen on {addr}: {source}")]
    Bind {
        /// The configured `[admin] listen`.
        addr: std::net::SocketAddr,
        /// What bind(2) said.
        source: std::io::Error,
    },
    /// The TLS certificate or key cannot be used.
    #[error("admin: TLS: {0}")]
    Tls(#[from] http::TlsError),
}

/// Unix time now, in milliseconds.
pub fn unix_ms_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64)
}

impl AdminState {
    /// The state for `config`'s running `services` and VRRP node.
    pub fn new(
        config: &Config,
        services: Arc<ServiceTable>,
        vrrp: Option<(Arc<VrrpView>, VrrpCommands)>,
        started: Instant,
        node: NodeLink,
    ) -> Result<AdminState, AdminError> {
        let pairs = config.admin.as_ref().map_or(&[][..], |a| &a.auth);
        let now = unix_ms_now();
        let started_unix_ms = now.saturating_sub(started.elapsed().as_millis() as u64);
        let (view, commands) = match vrrp {
            Some((view, commands)) => (Some(view), Some(commands)),
            None => (None, None),
        };
        Ok(AdminState {
            services,
            node,
            started,
            started_unix_ms,
            config_loaded_unix_ms: AtomicU64::new(now),
            draining: AtomicBool::new(false),
            vrrp: view,
            vrrp_commands: commands,
            network_commands: AtomicBool::new(config.admin.as_ref().is_some_and(|a| a.commands)),
            auth: ArcSwap::from_pointee(auth::BasicAuth::new(pairs)?),
        })
    }

    /// After a reload: `[admin] auth` and `commands` of the new config take effect for the
    /// next request. A hash that cannot be read is an error and changes nothing (what runs
    /// stays). `listen` and the TLS files are bound at start: a change there needs the
    /// endpoint started again.
    pub fn reconfigure(&self, config: &Config) -> Result<(), AdminError> {
        let pairs = config.admin.as_ref().map_or(&[][..], |a| &a.auth);
        let auth = auth::BasicAuth::new(pairs)?;
        self.auth.store(Arc::new(auth));
        self.network_commands
            .store(config.admin.as_ref().is_some_and(|a| a.commands), Relaxed);
        Ok(())
    }

    /// Whether the TCP endpoint accepts commands now (`[admin] commands`).
    pub fn network_commands(&self) -> bool {
        self.network_commands.load(Relaxed)
    }

    /// The credentials the TCP endpoint asks for now.
    pub fn auth(&self) -> Arc<auth::BasicAuth> {
        self.auth.load_full()
    }

    /// Record that a config was (re)loaded now.
    pub fn config_loaded(&self) {
        self.config_loaded_unix_ms.store(unix_ms_now(), Relaxed);
    }

    /// The running services now (a snapshot: a reload swaps the list, requests in flight
    /// keep the one they took).
    pub fn services(&self) -> Arc<Vec<Arc<Service>>> {
        self.services.load()
    }

    /// After a reload: the config that runs now and its load time.
    pub fn config_reloaded(&self, source: ConfigSource) {
        self.node.config.store(Arc::new(source));
        self.config_loaded();
    }

    /// The running service named `name`.
    pub fn service(&self, name: &str) -> Option<Arc<Service>> {
        self.services.find(name)
    }
}

/// Bind the TCP admin endpoint's address (a reload binds a moved endpoint before it stops
/// the old one).
pub async fn bind(
    settings: &havip_config::AdminSettings,
) -> Result<tokio::net::TcpListener, AdminError> {
    tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|source| AdminError::Bind {
            addr: settings.listen,
            source,
        })
}

/// Serve the TCP admin endpoint on `listener` (bound by [`bind`], or handed over by a
/// binary upgrade) until `stop` is cancelled; returns the address it listens on.
pub fn start_tcp(
    settings: &havip_config::AdminSettings,
    listener: tokio::net::TcpListener,
    state: Arc<AdminState>,
    stop: CancellationToken,
) -> Result<std::net::SocketAddr, AdminError> {
    let tls = match &settings.tls {
        Some(files) => Some(http::tls_acceptor(files)?),
        None => None,
    };
    let addr = listener.local_addr().unwrap_or(settings.listen);
    tracing::info!(
        %addr,
        tls = tls.is_some(),
        commands = settings.commands,
        "admin endpoint: / /metrics /api/status /healthz"
    );
    let app = router(state, Access::Network);
    tokio::spawn(http::serve_tcp(listener, tls, app, stop));
    Ok(addr)
}

/// Start the control socket (unless `[control] socket = ""`) until `stop` is cancelled.
/// Failing to start is logged, not returned: the VIP and the balancer matter more.
/// `replace_live`: a binary upgrade's successor takes the path over from its predecessor,
/// which still answers on it.
pub fn start_control(
    config: &Config,
    state: Arc<AdminState>,
    stop: CancellationToken,
    replace_live: bool,
) {
    let Some(path) = &config.control.socket else {
        return;
    };
    let control = &config.control;
    match crate::control::bind(path, control.mode, control.group.as_deref(), replace_live) {
        Ok(socket) => {
            tracing::info!(path = %path.display(), "control socket");
            let app = router(state, Access::Local);
            tokio::spawn(crate::control::serve(socket, app, stop));
        }
        Err(error) => {
            tracing::error!(path = %path.display(), %error, "no control socket; `havip status` and `havip backend` need --admin");
        }
    }
}

/// Start the TCP admin endpoint (when `[admin]` is configured) and the control socket;
/// both stop when `stop` is cancelled (the demo and tests; `havip run` starts each itself).
pub async fn start(
    config: &Config,
    state: Arc<AdminState>,
    stop: CancellationToken,
) -> Result<Option<std::net::SocketAddr>, AdminError> {
    let mut bound = None;
    if let Some(settings) = &config.admin {
        let listener = bind(settings).await?;
        bound = Some(start_tcp(settings, listener, state.clone(), stop.clone())?);
    }
    start_control(config, state, stop, false);
    Ok(bound)
}
