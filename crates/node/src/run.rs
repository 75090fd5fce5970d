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
//! Its parts: [`signals`] (what each signal asks for), [`reload`] (the difference applied in
//! place), [`handover`] (the running side of a binary upgrade).

use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use anyhow::{anyhow, Context};
use arc_swap::ArcSwap;
use havip_proxy::service::DataPath;
use havip_proxy::{Proxy, ProxyConfig};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::admin::{self, AdminState};
use crate::bgp::BgpNode;
use crate::load;
use crate::logging;
use crate::tracking::Trackers;
use crate::upgrade::{self, Inheritance, Inherited};
use crate::vrrp::status::EventLog;
use crate::vrrp::VrrpNode;
use havip_config::{AdminSettings, Config, ConfigError};

pub mod handover;
pub mod reload;
pub mod signals;

pub use handover::{Relaunch, Start, UpgradeOutcome, UpgradeRequest};
pub use reload::{ConfigSource, ReloadOutcome, ReloadRequest, ReloadStats, RELOAD_TIMEOUT};
pub use signals::{shutdown_signal, Request, Signals};

/// `havip run`: load the config at `path`, start everything, and serve until a signal.
pub fn run(path: &Path) -> anyhow::Result<()> {
    let loaded = match load::load(path) {
        Ok(loaded) => {
            crate::privileges::require(&loaded, &path.display().to_string())?;
            loaded
        }
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

/// A running proxy, its trackers, VRRP instances, BGP announcements and admin endpoint.
pub struct Running {
    proxy: Proxy,
    trackers: Trackers,
    vrrp: Option<VrrpNode>,
    bgp: Option<BgpNode>,
    /// The trackers the BGP announcements follow: those of the start (a reload does not
    /// change announcements yet, see `reload`).
    bgp_trackers: Option<Trackers>,
    /// The node's one event log (VRRP and BGP).
    events: Arc<EventLog>,
    admin: Option<AdminEndpoint>,
    admin_state: Arc<AdminState>,
    /// Stops the control socket (the TCP endpoint has its own, in `admin`).
    control_stop: CancellationToken,
    config: Config,
    source: ConfigSource,
    reloads: Arc<ReloadStats>,
    reload_inbox: Option<mpsc::Receiver<ReloadRequest>>,
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
        let mut inherited = inherited;
        // A predecessor handed something over: this is a binary upgrade's successor.
        let handed_over = !inherited.listeners.is_empty() || !inherited.vrrp.is_empty();
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
        let trackers = Trackers::start(&config.trackers, proxy.table())?;
        let events = Arc::new(EventLog::default());
        let vrrp = if config.vrrp.is_empty() {
            None
        } else {
            let resumed = std::mem::take(&mut inherited.vrrp);
            let node = VrrpNode::start_resuming(&config.vrrp, &trackers, events.clone(), resumed);
            Some(node.await?)
        };
        let bgp = if config.bgp.is_empty() {
            None
        } else {
            Some(BgpNode::start(&config.bgp, &trackers, events.clone())?)
        };
        let (reload_requests, reload_inbox) = mpsc::channel(4);
        let (upgrade_requests, upgrade_inbox) = mpsc::channel(1);
        let reloads: Arc<ReloadStats> = Arc::default();
        reloads.last_successful.store(1, Relaxed);
        let link = admin::NodeLink {
            bgp: bgp.as_ref().map(BgpNode::view),
            events: events.clone(),
            config: ArcSwap::from_pointee(source.clone()),
            reloads: reloads.clone(),
            reload: Some(reload_requests.clone()),
            upgrade: Some(upgrade_requests.clone()),
        };
        let vrrp_api = vrrp.as_ref().map(|node| (node.view(), node.commands()));
        let admin_state = Arc::new(AdminState::new(
            &config,
            proxy.table(),
            vrrp_api,
            started,
            link,
        )?);
        let mut running = Running {
            proxy,
            trackers,
            vrrp,
            bgp,
            bgp_trackers: None,
            events,
            admin: None,
            admin_state,
            control_stop: CancellationToken::new(),
            config,
            source,
            reloads,
            reload_inbox: Some(reload_inbox),
            upgrade_inbox: Some(upgrade_inbox),
            relaunch: None,
        };
        let upgrading = inherited.admin.is_some() || handed_over;
        if let Some(settings) = running.config.admin.clone() {
            let listener = match inherited.admin {
                Some((addr, listener)) if addr == settings.listen => {
                    listener.set_nonblocking(true)?;
                    TcpListener::from_std(listener)?
                }
                _ => admin::bind(&settings).await?,
            };
            running.start_admin(listener, &settings)?;
        }
        admin::start_control(
            &running.config,
            running.admin_state.clone(),
            running.control_stop.clone(),
            upgrading,
        );
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

    fn start_admin(
        &mut self,
        listener: TcpListener,
        settings: &AdminSettings,
    ) -> Result<(), admin::AdminError> {
        let stop = CancellationToken::new();
        let socket = std::os::fd::AsFd::as_fd(&listener)
            .try_clone_to_owned()
            .ok();
        admin::start_tcp(settings, listener, self.admin_state.clone(), stop.clone())?;
        self.admin = Some(AdminEndpoint {
            listen: settings.listen,
            socket,
            stop,
        });
        Ok(())
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

    /// The VRRP instances' status, when the config has any.
    pub fn vrrp_view(&self) -> Option<Arc<crate::vrrp::status::VrrpView>> {
        self.vrrp.as_ref().map(VrrpNode::view)
    }

    /// The service table itself, current across reloads (for the systemd status line).
    pub fn service_table(&self) -> Arc<havip_proxy::ServiceTable> {
        self.proxy.table()
    }

    /// Release the VIPs (a master keeps serving until the new master is heard), then stop
    /// accepting, drain open connections for up to the grace period, stop the admin
    /// endpoint (it answers `/healthz` with 503 while draining).
    pub async fn stop(mut self) {
        self.admin_state.draining.store(true, Relaxed);
        let release = async {
            if let Some(vrrp) = self.vrrp {
                vrrp.shutdown().await;
            }
        };
        let withdraw = async {
            if let Some(bgp) = &mut self.bgp {
                bgp.withdraw().await;
            }
        };
        tokio::join!(release, withdraw);
        let report = self.proxy.shutdown(self.config.global.grace).await;
        // Only now are the VIPs no longer local: the drained connections needed them.
        drop(self.bgp);
        if let Some(admin) = self.admin {
            admin.stop.cancel();
        }
        self.control_stop.cancel();
        tracing::info!(
            open_at_stop = report.open_at_stop,
            cut = report.cut,
            "stopped"
        );
    }

    /// Serve requests from `signals` and the admin API until a stop request (then stop) or
    /// an upgrade that a successor took over (then retire).
    pub async fn serve(mut self, mut signals: Signals, systemd: crate::systemd::Notifier) {
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
                        // The successor is systemd's main process now: no STOPPING from here.
                        drop(systemd);
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
                        drop(systemd);
                        return self.retire().await;
                    }
                }
            }
        }
        systemd.stopping();
        self.stop().await;
    }
}

async fn recv<T>(inbox: &mut Option<mpsc::Receiver<T>>) -> Option<T> {
    match inbox {
        Some(inbox) => inbox.recv().await,
        None => std::future::pending().await,
    }
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

/// Run `config` until `stop` completes, then drain and return (the demo and tests).
pub async fn serve(
    config: Config,
    stop: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    // Poll `stop` once before anything starts, so its signal handlers exist before the first
    // listener answers and before systemd hears READY=1: a SIGTERM from then on stops havip
    // gracefully instead of killing it (one sent during start is kept and acted on below).
    let mut stop = std::pin::pin!(stop);
    let stopped =
        tokio::select! { biased; () = &mut stop => true, () = std::future::ready(()) => false };
    crate::systemd::keep_running_on_hangup();
    let running = Running::start(&config).await?;
    let systemd = crate::systemd::Notifier::ready(&running).await;
    if !stopped {
        stop.await;
    }
    systemd.stopping();
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
        // MAINPID first: systemd takes READY and the watchdog from the main process.
        upgrade::notify_systemd_main_pid();
        tracing::info!(
            pid = std::process::id(),
            "upgrade: took over from the previous process"
        );
    }
    let systemd = crate::systemd::Notifier::ready(&running).await;
    running.serve(signals, systemd).await;
    Ok(())
}
