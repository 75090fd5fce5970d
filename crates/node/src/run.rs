//! `havip run`: load, validate and prepare the config ([`crate::load`]), start the proxy, the
//! VRRP instances and the admin endpoint, and serve until SIGTERM, SIGINT or SIGQUIT; then
//! hand the VIPs over, stop accepting, drain open connections for up to `global.grace`, and
//! exit 0.
//!
//! Signals, each documented in docs/operations.md:
//! - SIGHUP: reload the config file ([`Running::reload`]): all of it is validated first; an
//!   invalid file, or one that cannot be applied whole, changes nothing.
//! - SIGTERM, SIGINT, SIGQUIT: stop gracefully.
//! - SIGUSR1: log one line per service, backend and VRRP instance (what `/api/status` says).
//! - SIGUSR2: hand over to a new binary ([`crate::upgrade`]).
//!
//! Lifecycle of a reload: [`Running::reload`] loads and validates the file, asks the proxy and
//! the VRRP side to prepare the difference (binding new addresses, resolving interfaces,
//! opening sockets: everything that can fail), binds a moved admin endpoint, and only when all
//! of that succeeded applies it, which cannot fail. A failure drops what was prepared.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, Context};
use arc_swap::ArcSwap;
use havip_proxy::service::DataPath;
use havip_proxy::{Prepared, Proxy, ProxyConfig};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::admin::{self, AdminState};
use crate::load;
use crate::logging;
use crate::upgrade::{self, Inheritance, Inherited, Offer, UpgradeError};
use crate::vrrp::{PreparedVrrp, VrrpNode};
use havip_config::{AdminSettings, Config, ConfigError};

/// `havip run`: load the config at `path`, start everything, and serve until a signal.
pub fn run(path: &Path) -> anyhow::Result<()> {
    let loaded = match load::load(path) {
        Ok(loaded) => loaded,
        Err(ConfigError::Invalid { path, problems }) => {
            let list: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
            return Err(anyhow!(
                "{} is not valid:\n{}",
                path.display(),
                list.join("\n")
            ));
        }
        Err(e) => return Err(e.into()),
    };
    logging::init(&loaded.config.log);
    match havip_sys::raise_nofile_limit() {
        Ok(limit) => tracing::debug!(limit, "open file limit"),
        Err(error) => tracing::warn!(%error, "cannot raise the open file limit"),
    }
    let relaunch = Relaunch::of_this_process();
    // A process started by a binary upgrade validated its config above (an invalid one
    // exits here, and the predecessor runs on); now it asks for the sockets.
    let inheritance = match Inheritance::receive() {
        None => None,
        Some(Ok(inheritance)) => Some(inheritance),
        Some(Err(error)) => return Err(anyhow!("upgrade: {error}")),
    };
    let runtime = build_runtime(loaded.config.global.workers)?;
    let source = ConfigSource::of_file(path)?;
    // tokio's signal handlers need the runtime's reactor.
    let signals = {
        let _entered = runtime.enter();
        Signals::install()
    };
    runtime.block_on(serve_file(
        loaded.config,
        source,
        signals,
        Start {
            relaunch,
            inheritance,
        },
    ))
}

/// A tokio runtime with `workers` threads (0: one per CPU this process may use).
pub fn build_runtime(workers: usize) -> anyhow::Result<tokio::runtime::Runtime> {
    let workers = if workers == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        workers
    };
    // One worker: a current-thread runtime does the same work without the work-stealing
    // scheduler's cross-thread bookkeeping.
    let mut builder = if workers == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut multi_thread = tokio::runtime::Builder::new_multi_thread();
        multi_thread.worker_threads(workers);
        multi_thread
    };
    builder
        .thread_name("havip-worker")
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Completes on the first SIGTERM, SIGINT or SIGQUIT.
pub async fn shutdown_signal() {
    Signals::install().stop().await;
}

/// What the operator (or a unit file) asked for with a signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// SIGTERM, SIGINT or SIGQUIT: stop gracefully.
    Stop(&'static str),
    /// SIGHUP: reload the config file.
    Reload,
    /// SIGUSR1: log the status.
    LogStatus,
    /// SIGUSR2: hand over to a new binary.
    Upgrade,
}

/// How a running process starts its successor for a binary upgrade: the binary at the path
/// it was started from (a package upgrade has put the new one there) with the same arguments.
#[derive(Debug, Clone)]
pub struct Relaunch {
    /// The binary.
    pub exe: PathBuf,
    /// Its arguments (`run --config PATH`).
    pub args: Vec<std::ffi::OsString>,
}

impl Relaunch {
    /// This process's binary and arguments, read now (before any upgrade replaces the file,
    /// `/proc/self/exe` still names the path).
    pub fn of_this_process() -> Option<Relaunch> {
        Some(Relaunch {
            exe: std::env::current_exe().ok()?,
            args: std::env::args_os().skip(1).collect(),
        })
    }
}

/// How `havip run` starts: how to relaunch itself, and what a predecessor handed over.
pub struct Start {
    /// How to start a successor; `None`: no upgrade possible.
    pub relaunch: Option<Relaunch>,
    /// The predecessor's sockets and states (a binary upgrade).
    pub inheritance: Option<Inheritance>,
}

/// What an upgrade did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpgradeOutcome {
    /// The new process runs everything; this one is stopping.
    TookOver {
        /// The new process's ID.
        pid: u32,
    },
    /// No upgrade: this process runs on as before.
    Failed {
        /// Why.
        error: String,
    },
}

/// An upgrade asked over the admin API: the answer goes back on the sender.
pub type UpgradeRequest = oneshot::Sender<UpgradeOutcome>;

/// The signals havip handles; every one an operator may send does something documented.
pub struct Signals {
    streams: Option<[tokio::signal::unix::Signal; 6]>,
}

impl Signals {
    /// Install the handlers (at once, so a signal that arrives during the start is not lost).
    pub fn install() -> Signals {
        let kinds = [
            SignalKind::terminate(),
            SignalKind::interrupt(),
            SignalKind::quit(),
            SignalKind::hangup(),
            SignalKind::user_defined1(),
            SignalKind::user_defined2(),
        ];
        let streams: Option<Vec<_>> = kinds.iter().map(|kind| signal(*kind).ok()).collect();
        let streams = streams.and_then(|streams| streams.try_into().ok());
        if streams.is_none() {
            tracing::error!("cannot install signal handlers; stop havip with SIGKILL");
        }
        Signals { streams }
    }

    /// The next request.
    pub async fn next(&mut self) -> Request {
        let Some([term, int, quit, hup, usr1, usr2]) = self.streams.as_mut() else {
            std::future::pending::<()>().await;
            return Request::Stop("none");
        };
        tokio::select! {
            _ = term.recv() => Request::Stop("SIGTERM"),
            _ = int.recv() => Request::Stop("SIGINT"),
            _ = quit.recv() => Request::Stop("SIGQUIT"),
            _ = hup.recv() => Request::Reload,
            _ = usr1.recv() => Request::LogStatus,
            _ = usr2.recv() => Request::Upgrade,
        }
    }

    /// Wait for a stop request, ignoring (and logging) the others.
    pub async fn stop(mut self) {
        loop {
            match self.next().await {
                Request::Stop(name) => {
                    tracing::info!(signal = name, "shutting down");
                    return;
                }
                other => tracing::info!(request = ?other, "ignored here"),
            }
        }
    }
}

/// Where the running config came from and what it was, for `/api/status` and the reload
/// answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigSource {
    /// The file; `None` for a config built in memory (the demo, tests).
    pub path: Option<PathBuf>,
    /// SHA-256 of the file's bytes, in hex (compare with `sha256sum`).
    pub checksum: String,
    /// When it was loaded, in seconds since the Unix epoch.
    pub loaded_at_unix: f64,
}

impl ConfigSource {
    /// The config file at `path` as it is now.
    pub fn of_file(path: &Path) -> anyhow::Result<ConfigSource> {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        Ok(ConfigSource {
            path: Some(path.to_path_buf()),
            checksum: hex(&Sha256::digest(&bytes)),
            loaded_at_unix: unix_now(),
        })
    }

    /// A config that did not come from a file.
    pub fn in_memory(config: &Config) -> ConfigSource {
        ConfigSource {
            path: None,
            checksum: hex(&Sha256::digest(format!("{config:?}").as_bytes())),
            loaded_at_unix: unix_now(),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Reloads counted by result, for `/metrics`.
#[derive(Debug, Default)]
pub struct ReloadStats {
    /// Reloads applied.
    pub applied: AtomicU64,
    /// Reloads refused because the file was invalid.
    pub rejected: AtomicU64,
    /// Reloads that could not be applied whole (rolled back: nothing changed).
    pub failed: AtomicU64,
    /// When the last reload was applied, in milliseconds since the Unix epoch (0: never).
    pub last_success_unix_ms: AtomicU64,
    /// Whether the last reload attempt was applied (1) or not (0); 1 before any.
    pub last_successful: AtomicU64,
}

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// The new config runs; `changes` says what changed, `kept` what needs a restart.
    Applied {
        /// One line per change.
        changes: Vec<String>,
        /// Settings that differ but only take effect on a restart or an upgrade.
        kept: Vec<String>,
        /// SHA-256 of the file now running.
        checksum: String,
    },
    /// The file is invalid: every problem, as `file:line:column: key: message`.
    Rejected {
        /// The problems.
        problems: Vec<String>,
    },
    /// The file is valid but could not be applied (an address that cannot be bound, an
    /// interface that is missing); nothing changed.
    Failed {
        /// Why.
        error: String,
    },
}

/// A reload asked over the admin API: the answer goes back on the sender.
pub type ReloadRequest = oneshot::Sender<ReloadOutcome>;

/// A running proxy, its VRRP instances and its admin endpoint.
pub struct Running {
    proxy: Proxy,
    vrrp: Option<VrrpNode>,
    admin: Option<AdminEndpoint>,
    admin_state: Arc<ArcSwap<AdminState>>,
    config: Config,
    source: ConfigSource,
    started: Instant,
    draining: Arc<AtomicBool>,
    reloads: Arc<ReloadStats>,
    reload_requests: mpsc::Sender<ReloadRequest>,
    reload_inbox: Option<mpsc::Receiver<ReloadRequest>>,
    upgrade_requests: mpsc::Sender<UpgradeRequest>,
    upgrade_inbox: Option<mpsc::Receiver<UpgradeRequest>>,
    relaunch: Option<Relaunch>,
}

/// The admin endpoint as it runs: where, its socket (for a binary upgrade to hand over), and
/// how to stop it.
struct AdminEndpoint {
    listen: std::net::SocketAddr,
    socket: Option<std::os::fd::OwnedFd>,
    stop: CancellationToken,
}

impl Running {
    /// Start the proxy, VRRP and (when configured) the admin endpoint of `config`.
    pub async fn start(config: &Config) -> anyhow::Result<Running> {
        Running::start_from(config.clone(), ConfigSource::in_memory(config)).await
    }

    /// [`Running::start`] for a config that came from `source`.
    pub async fn start_from(config: Config, source: ConfigSource) -> anyhow::Result<Running> {
        Running::start_inherited(config, source, Inherited::default()).await
    }

    /// [`Running::start_from`] with what a predecessor handed over (a binary upgrade): its
    /// listening sockets are adopted instead of bound, its VRRP instances resumed.
    pub async fn start_inherited(
        config: Config,
        source: ConfigSource,
        inherited: Inherited,
    ) -> anyhow::Result<Running> {
        let started = Instant::now();
        let mut sockets = std::collections::HashMap::new();
        for (addr, listener) in inherited.listeners {
            listener.set_nonblocking(true)?;
            sockets.insert(addr, TcpListener::from_std(listener)?);
        }
        let handed = havip_proxy::Inherited {
            sockets,
            down: inherited.down.into_iter().collect(),
        };
        let proxy = Proxy::start_with(proxy_config(&config), handed).await?;
        // The listeners are bound first (with IP_FREEBIND, also on a VIP this node does not
        // hold yet), so a node that becomes master serves at once.
        let vrrp = if config.vrrp.is_empty() {
            None
        } else {
            let node = VrrpNode::start_resuming(
                &config.vrrp,
                &config.trackers,
                proxy.table(),
                inherited.vrrp,
            );
            Some(node.await?)
        };
        let (reload_requests, reload_inbox) = mpsc::channel(4);
        let (upgrade_requests, upgrade_inbox) = mpsc::channel(1);
        let mut running = Running {
            proxy,
            vrrp,
            admin: None,
            admin_state: Arc::new(ArcSwap::from_pointee(AdminState::placeholder(started))),
            config,
            source,
            started,
            draining: Arc::new(AtomicBool::new(false)),
            reloads: Arc::default(),
            reload_requests,
            reload_inbox: Some(reload_inbox),
            upgrade_requests,
            upgrade_inbox: Some(upgrade_inbox),
            relaunch: None,
        };
        running.reloads.last_successful.store(1, Relaxed);
        running.publish_admin_state();
        if let Some(settings) = running.config.admin.clone() {
            let listener = match inherited.admin {
                Some((addr, listener)) if addr == settings.listen => {
                    listener.set_nonblocking(true)?;
                    TcpListener::from_std(listener)?
                }
                _ => bind_admin(&settings).await?,
            };
            running.start_admin(listener, &settings);
        }
        Ok(running)
    }

    /// The running services, current generations in config order.
    pub fn services(&self) -> Arc<Vec<Arc<havip_proxy::service::Service>>> {
        self.proxy.services()
    }

    /// The config that runs now.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Re-read the config file and apply the difference in place (see the module docs).
    pub async fn reload(&mut self) -> ReloadOutcome {
        let outcome = self.try_reload().await;
        let stats = &self.reloads;
        match &outcome {
            ReloadOutcome::Applied { changes, kept, .. } => {
                stats.applied.fetch_add(1, Relaxed);
                stats
                    .last_success_unix_ms
                    .store((unix_now() * 1000.0) as u64, Relaxed);
                stats.last_successful.store(1, Relaxed);
                tracing::info!(changes = changes.len(), "config reloaded");
                for change in changes {
                    tracing::info!(%change, "reload");
                }
                for setting in kept {
                    tracing::warn!(%setting, "changed, but takes effect only on a restart or an upgrade");
                }
            }
            ReloadOutcome::Rejected { problems } => {
                stats.rejected.fetch_add(1, Relaxed);
                stats.last_successful.store(0, Relaxed);
                for problem in problems {
                    tracing::error!(%problem, "reload refused: the running config stays");
                }
            }
            ReloadOutcome::Failed { error } => {
                stats.failed.fetch_add(1, Relaxed);
                stats.last_successful.store(0, Relaxed);
                tracing::error!(%error, "reload could not be applied; nothing changed");
            }
        }
        outcome
    }

    async fn try_reload(&mut self) -> ReloadOutcome {
        let Some(path) = self.source.path.clone() else {
            return ReloadOutcome::Failed {
                error: "this config did not come from a file; nothing to re-read".into(),
            };
        };
        let loaded = match load::load(&path) {
            Ok(loaded) => loaded,
            Err(ConfigError::Invalid { problems, .. }) => {
                return ReloadOutcome::Rejected {
                    problems: problems.iter().map(|p| p.to_string()).collect(),
                }
            }
            Err(error) => {
                return ReloadOutcome::Rejected {
                    problems: vec![error.to_string()],
                }
            }
        };
        let source = match ConfigSource::of_file(&path) {
            Ok(source) => source,
            Err(error) => {
                return ReloadOutcome::Failed {
                    error: format!("{error:#}"),
                }
            }
        };
        let new = loaded.config;
        let prepared = match self.prepare(&new).await {
            Ok(prepared) => prepared,
            Err(error) => {
                return ReloadOutcome::Failed {
                    error: format!("{error:#}"),
                }
            }
        };
        let changes = self.apply(prepared, &new).await;
        let kept = restart_only_changes(&self.config, &new);
        self.config = new;
        self.source = source;
        self.publish_admin_state();
        ReloadOutcome::Applied {
            changes,
            kept,
            checksum: self.source.checksum.clone(),
        }
    }

    /// Everything a reload to `new` needs that can fail; nothing changes.
    async fn prepare(&self, new: &Config) -> anyhow::Result<PreparedReload> {
        let proxy = self.proxy.prepare(proxy_config(new))?;
        let vrrp = match (&self.vrrp, new.vrrp.is_empty()) {
            (Some(node), _) => Some(PreparedVrrpSide::Running(
                node.prepare(&new.vrrp, &new.trackers)?,
            )),
            (None, false) => Some(PreparedVrrpSide::New(Box::new(VrrpNode::start_later(
                &new.vrrp,
                &new.trackers,
                self.proxy.table(),
            )?))),
            (None, true) => None,
        };
        let admin_listener = match (&new.admin, &self.admin) {
            (Some(settings), Some(running)) if running.listen == settings.listen => None,
            (Some(settings), _) => Some(bind_admin(settings).await?),
            (None, _) => None,
        };
        Ok(PreparedReload {
            proxy,
            vrrp,
            admin_listener,
        })
    }

    /// Apply a prepared reload (cannot fail); returns one line per change.
    async fn apply(&mut self, prepared: PreparedReload, new: &Config) -> Vec<String> {
        let mut changes = Vec::new();
        let report = self.proxy.apply(prepared.proxy, new.global.grace);
        describe_proxy(&report, &mut changes);
        match prepared.vrrp {
            Some(PreparedVrrpSide::Running(vrrp)) => {
                if let Some(node) = self.vrrp.as_mut() {
                    describe_vrrp(&node.apply(vrrp).await, &mut changes);
                }
            }
            Some(PreparedVrrpSide::New(mut node)) => {
                let report = node.finish_start().await;
                describe_vrrp(&report, &mut changes);
                self.vrrp = Some(*node);
            }
            None => {}
        }
        self.apply_admin(prepared.admin_listener, new, &mut changes);
        changes
    }

    fn apply_admin(
        &mut self,
        listener: Option<TcpListener>,
        new: &Config,
        changes: &mut Vec<String>,
    ) {
        if self.config.admin != new.admin {
            changes.push("admin endpoint settings".into());
        }
        match (&new.admin, listener) {
            (Some(settings), Some(listener)) => {
                if let Some(old) = self.admin.take() {
                    old.stop.cancel();
                    changes.push(format!(
                        "admin endpoint moved from {} to {}",
                        old.listen, settings.listen
                    ));
                }
                self.start_admin(listener, settings);
            }
            (None, _) => {
                if let Some(old) = self.admin.take() {
                    old.stop.cancel();
                    changes.push(format!("admin endpoint on {} stopped", old.listen));
                }
            }
            (Some(_), None) => {}
        }
    }

    fn start_admin(&mut self, listener: TcpListener, settings: &AdminSettings) {
        let addr = listener.local_addr().unwrap_or(settings.listen);
        tracing::info!(%addr, "admin endpoint: /metrics /api/status /healthz");
        let stop = CancellationToken::new();
        let socket = std::os::fd::AsFd::as_fd(&listener)
            .try_clone_to_owned()
            .ok();
        tokio::spawn(admin::serve(
            listener,
            self.admin_state.clone(),
            stop.clone(),
        ));
        self.admin = Some(AdminEndpoint {
            listen: settings.listen,
            socket,
            stop,
        });
    }

    /// The admin endpoint's view of the node, rebuilt after a start or a reload.
    fn publish_admin_state(&self) {
        let admin = self.config.admin.as_ref();
        let commands_on = admin.is_some_and(|a| a.commands);
        self.admin_state.store(Arc::new(AdminState {
            services: self.proxy.table(),
            started: self.started,
            draining: self.draining.clone(),
            vrrp: self.vrrp.as_ref().map(VrrpNode::view),
            auth: admin::auth::BasicAuth::new(admin.map_or(&[][..], |a| &a.auth)),
            commands: self
                .vrrp
                .as_ref()
                .filter(|_| commands_on)
                .map(VrrpNode::commands),
            reload: commands_on.then(|| self.reload_requests.clone()),
            upgrade: commands_on.then(|| self.upgrade_requests.clone()),
            config: self.source.clone(),
            reloads: self.reloads.clone(),
        }));
    }

    /// Log one line per service, backend and VRRP instance (SIGUSR1).
    pub fn log_status(&self) {
        for service in self.proxy.services().iter() {
            for backend in &service.backends {
                tracing::info!(
                    service = %service.spec.name,
                    backend = %backend.spec().name,
                    health = backend.health().as_str(),
                    weight = backend.weight(),
                    active = backend.stats.active.load(Relaxed),
                    "status"
                );
            }
        }
        if let Some(node) = &self.vrrp {
            for instance in node.view().snapshot() {
                tracing::info!(
                    instance = %instance.name,
                    state = crate::vrrp::status::state_name(instance.state),
                    priority = instance.effective_priority,
                    master = ?instance.master,
                    "status"
                );
            }
        }
        tracing::info!(config = ?self.source.path, checksum = %self.source.checksum, "status");
    }

    /// Release the VIPs (a master keeps serving until the new master is heard), then stop
    /// accepting, drain open connections for up to the grace period, stop the admin
    /// endpoint (it answers `/healthz` with 503 while draining).
    pub async fn stop(self) {
        self.draining.store(true, Relaxed);
        if let Some(vrrp) = self.vrrp {
            vrrp.shutdown().await;
        }
        let report = self.proxy.shutdown(self.config.global.grace).await;
        if let Some(admin) = self.admin {
            admin.stop.cancel();
        }
        tracing::info!(
            open_at_stop = report.open_at_stop,
            cut = report.cut,
            "stopped"
        );
    }

    /// Serve requests from `signals` and the admin API until a stop request (then stop) or
    /// an upgrade that a successor took over (then retire).
    pub async fn serve(mut self, mut signals: Signals) {
        let mut reloads = self.reload_inbox.take();
        let mut upgrades = self.upgrade_inbox.take();
        loop {
            let request = tokio::select! {
                request = signals.next() => request,
                Some(reply) = recv(&mut reloads) => {
                    let outcome = self.reload().await;
                    let _ = reply.send(outcome);
                    continue;
                }
                Some(reply) = recv(&mut upgrades) => {
                    let outcome = self.upgrade().await;
                    let took_over = matches!(outcome, UpgradeOutcome::TookOver { .. });
                    let _ = reply.send(outcome);
                    if took_over {
                        return self.retire().await;
                    }
                    continue;
                }
            };
            match request {
                Request::Stop(name) => {
                    tracing::info!(signal = name, "shutting down");
                    break;
                }
                Request::Reload => {
                    tracing::info!(signal = "SIGHUP", "reloading the config");
                    self.reload().await;
                }
                Request::LogStatus => self.log_status(),
                Request::Upgrade => {
                    tracing::info!(signal = "SIGUSR2", "upgrading: starting the new binary");
                    if let UpgradeOutcome::TookOver { .. } = self.upgrade().await {
                        return self.retire().await;
                    }
                }
            }
        }
        self.stop().await;
    }

    /// Start a successor and hand it the sockets and VRRP states ([`crate::upgrade`]).
    /// Nothing here changes unless it took over.
    pub async fn upgrade(&mut self) -> UpgradeOutcome {
        let Some(relaunch) = self.relaunch.clone() else {
            return UpgradeOutcome::Failed {
                error: "this node was not started by `havip run`; nothing to relaunch".into(),
            };
        };
        let outcome = match self.offer() {
            Ok(offer) => upgrade::hand_over(relaunch.exe, relaunch.args, offer).await,
            Err(error) => Err(UpgradeError::Io(error)),
        };
        match outcome {
            Ok(pid) => {
                tracing::info!(
                    pid,
                    "upgrade: the new process took over; draining and exiting"
                );
                UpgradeOutcome::TookOver { pid }
            }
            Err(error) => {
                tracing::error!(%error, "upgrade failed; this process runs on as before");
                UpgradeOutcome::Failed {
                    error: error.to_string(),
                }
            }
        }
    }

    fn offer(&self) -> std::io::Result<Offer> {
        let mut listeners = Vec::new();
        for (addr, socket) in self.proxy.sockets() {
            listeners.push((
                addr,
                std::os::fd::AsFd::as_fd(&*socket).try_clone_to_owned()?,
            ));
        }
        let admin = match &self.admin {
            Some(AdminEndpoint {
                listen,
                socket: Some(socket),
                ..
            }) => Some((*listen, socket.try_clone()?)),
            _ => None,
        };
        let mut down = Vec::new();
        for service in self.proxy.services().iter() {
            for backend in &service.backends {
                if backend.health() == havip_proxy::backend::Health::Down {
                    let key = (service.spec.name.clone(), backend.name(), backend.addr());
                    down.push(key);
                }
            }
        }
        Ok(Offer {
            listeners,
            admin,
            vrrp: self.vrrp.as_ref().map(VrrpNode::states).unwrap_or_default(),
            down,
        })
    }

    /// After a successor took over: stop the VRRP instances without a word on the wire (the
    /// successor advertises and holds the addresses), stop accepting (the listening sockets
    /// live on in the successor), and let open connections finish for up to the grace period.
    pub async fn retire(self) {
        if let Some(admin) = &self.admin {
            admin.stop.cancel();
        }
        if let Some(vrrp) = self.vrrp {
            vrrp.hand_off().await;
        }
        let report = self.proxy.shutdown(self.config.global.grace).await;
        tracing::info!(
            open_at_stop = report.open_at_stop,
            cut = report.cut,
            "handed over to the new process; stopped"
        );
    }
}

async fn recv<T>(inbox: &mut Option<mpsc::Receiver<T>>) -> Option<T> {
    match inbox {
        Some(inbox) => inbox.recv().await,
        None => std::future::pending().await,
    }
}

/// What a reload prepared, before it is applied.
struct PreparedReload {
    proxy: Prepared,
    vrrp: Option<PreparedVrrpSide>,
    admin_listener: Option<TcpListener>,
}

/// The VRRP side of a prepared reload: the running node's difference, or a node to start
/// because the config had no VRRP before.
enum PreparedVrrpSide {
    Running(PreparedVrrp),
    New(Box<VrrpNode>),
}

fn proxy_config(config: &Config) -> ProxyConfig {
    ProxyConfig {
        services: config.services.clone(),
        max_conns: config.global.max_conns,
        data_path: DataPath {
            copy_mode: config.global.copy_mode,
            log_connections: config.log.connections,
        },
    }
}

async fn bind_admin(settings: &AdminSettings) -> anyhow::Result<TcpListener> {
    TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("admin: cannot listen on {}", settings.listen))
}

/// Settings that differ between `old` and `new` but only take effect on a restart.
fn restart_only_changes(old: &Config, new: &Config) -> Vec<String> {
    let mut kept = Vec::new();
    if old.global.workers != new.global.workers {
        kept.push(format!(
            "global.workers ({} -> {})",
            old.global.workers, new.global.workers
        ));
    }
    if old.log.format != new.log.format {
        kept.push("log.format".into());
    }
    if old.log.level != new.log.level {
        kept.push(format!(
            "log.level ({} -> {})",
            old.log.level, new.log.level
        ));
    }
    kept
}

fn describe_proxy(report: &havip_proxy::ApplyReport, changes: &mut Vec<String>) {
    let lists: [(&str, Vec<String>); 7] = [
        ("service added", report.services_added.clone()),
        ("service removed", report.services_removed.clone()),
        ("service changed", report.services_changed.clone()),
        ("backend added", report.backends_added.clone()),
        (
            "backend removed (draining)",
            report.backends_removed.clone(),
        ),
        (
            "listening on",
            report
                .listeners_added
                .iter()
                .map(|a| a.to_string())
                .collect(),
        ),
        (
            "no longer listening on",
            report
                .listeners_removed
                .iter()
                .map(|a| a.to_string())
                .collect(),
        ),
    ];
    for (what, items) in lists {
        changes.extend(items.into_iter().map(|item| format!("{what}: {item}")));
    }
}

fn describe_vrrp(report: &crate::vrrp::VrrpReport, changes: &mut Vec<String>) {
    let lists = [
        ("VRRP instance added", &report.added),
        ("VRRP instance removed (handing over)", &report.removed),
        ("VRRP instance changed in place", &report.changed),
        (
            "VRRP instance replaced (handing over, then starting anew)",
            &report.replaced,
        ),
    ];
    for (what, items) in lists {
        changes.extend(items.iter().map(|item| format!("{what}: {item}")));
    }
}

/// Run `config` until `stop` completes, then drain and return (the demo and tests).
pub async fn serve(
    config: Config,
    stop: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let running = Running::start(&config).await?;
    stop.await;
    running.stop().await;
    Ok(())
}

/// Run the config file's `config` until a stop signal, reloading on SIGHUP, upgrading on
/// SIGUSR2; when `start` carries a predecessor's sockets, take over from it.
pub async fn serve_file(
    config: Config,
    source: ConfigSource,
    signals: Signals,
    start: Start,
) -> anyhow::Result<()> {
    let (inherited, handshake) = match start.inheritance {
        Some(inheritance) => (inheritance.inherited, Some(inheritance.handshake)),
        None => (Inherited::default(), None),
    };
    let mut running = match Running::start_inherited(config, source, inherited).await {
        Ok(running) => running,
        Err(error) => {
            if let Some(handshake) = handshake {
                handshake.fail(&format!("{error:#}"));
            }
            return Err(error);
        }
    };
    running.relaunch = start.relaunch;
    if let Some(handshake) = handshake {
        tokio::task::spawn_blocking(move || handshake.ready())
            .await
            .map_err(|e| anyhow!("upgrade: {e}"))?
            .map_err(|e| anyhow!("upgrade: {e}"))?;
        upgrade::notify_systemd_main_pid();
        tracing::info!(
            pid = std::process::id(),
            "upgrade: took over from the previous process"
        );
    }
    running.serve(signals).await;
    Ok(())
}

/// How long a reload requested over the admin API may take before the caller gives up
/// (applying waits for nothing slow; preparing may bind and resolve).
pub const RELOAD_TIMEOUT: Duration = Duration::from_secs(30);
