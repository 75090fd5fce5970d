//! `havip run`: load, validate and prepare the config ([`crate::load`]), start the proxy
//! and the admin endpoint, and run until SIGTERM or SIGINT; then stop accepting, drain open
//! connections for up to `global.grace`, and exit 0.

use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use anyhow::{anyhow, Context};
use havip_proxy::service::DataPath;
use havip_proxy::{Proxy, ProxyConfig};
use tokio::signal::unix::{signal, SignalKind};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::admin::{self, AdminState};
use crate::load;
use crate::logging;
use crate::vrrp::VrrpNode;
use havip_config::{Config, ConfigError};

/// `havip run`: load the config at `path`, start everything, and serve until a signal.
pub fn run(path: &Path) -> anyhow::Result<()> {
    let config = match load::load(path) {
        Ok(loaded) => loaded.config,
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
    logging::init(&config.log);
    match havip_sys::raise_nofile_limit() {
        Ok(limit) => tracing::debug!(limit, "open file limit"),
        Err(error) => tracing::warn!(%error, "cannot raise the open file limit"),
    }
    let runtime = build_runtime(config.global.workers)?;
    runtime.block_on(serve(config, shutdown_signal()))
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

/// Completes on the first SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop havip with SIGKILL");
        std::future::pending::<()>().await;
        return;
    };
    let name = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    tracing::info!(signal = name, "shutting down");
}

/// A running proxy, its VRRP instances and its admin endpoint.
pub struct Running {
    proxy: Proxy,
    vrrp: Option<VrrpNode>,
    admin_state: Arc<AdminState>,
    admin_stop: CancellationToken,
    grace: std::time::Duration,
}

impl Running {
    /// Start the proxy and (when configured) the admin endpoint of `config`.
    pub async fn start(config: &Config) -> anyhow::Result<Running> {
        let started = Instant::now();
        let proxy = Proxy::start(ProxyConfig {
            services: config.services.clone(),
            max_conns: config.global.max_conns,
            data_path: DataPath {
                copy_mode: config.global.copy_mode,
                log_connections: config.log.connections,
            },
        })
        .await?;
        // The listeners are bound first (with IP_FREEBIND, also on a VIP this node does not
        // hold yet), so a node that becomes master serves at once.
        let vrrp = if config.vrrp.is_empty() {
            None
        } else {
            Some(VrrpNode::start(&config.vrrp, &config.trackers, proxy.services()).await?)
        };
        let admin_stop = CancellationToken::new();
        let admin_state = Arc::new(AdminState::new(
            config,
            proxy.services().to_vec(),
            vrrp.as_ref().map(|node| (node.view(), node.commands())),
            started,
        )?);
        admin::start(config, admin_state.clone(), admin_stop.clone()).await?;
        Ok(Running {
            proxy,
            vrrp,
            admin_state,
            admin_stop,
            grace: config.global.grace,
        })
    }

    /// The running services, in config order.
    pub fn services(&self) -> &[Arc<havip_proxy::service::Service>] {
        self.proxy.services()
    }

    /// Release the VIPs (a master keeps serving until the new master is heard), then stop
    /// accepting, drain open connections for up to the grace period, stop the admin
    /// endpoint (it answers `/healthz` with 503 while draining).
    pub async fn stop(self) {
        self.admin_state.draining.store(true, Relaxed);
        if let Some(vrrp) = self.vrrp {
            vrrp.shutdown().await;
        }
        let report = self.proxy.shutdown(self.grace).await;
        self.admin_stop.cancel();
        tracing::info!(
            open_at_stop = report.open_at_stop,
            cut = report.cut,
            "stopped"
        );
    }
}

/// Run `config` until `stop` completes, then drain and return.
pub async fn serve(
    config: Config,
    stop: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let running = Running::start(&config).await?;
    stop.await;
    running.stop().await;
    Ok(())
}
