//! systemd's notify protocol (sd_notify(3), through the `sd-notify` crate), for the unit's
//! `Type=notify` and `WatchdogSec=`. Without `NOTIFY_SOCKET` in the environment (not started
//! by systemd) every call here does nothing.
//!
//! Lifecycle: [`Notifier::ready`] is called once `Running::start` has returned, that is once
//! every listener (and the admin endpoint) is bound and every VRRP instance has started; it
//! waits for each instance to leave INIT (milliseconds), sends `READY=1` with a first
//! `STATUS=` line ("VI_1 BACKUP; kube-apiserver 3/3 up"), then a task on the runtime keeps `STATUS=`
//! current (one line: "VI_1 MASTER; kube-apiserver 3/3 up") and, when `WATCHDOG_USEC` is set,
//! pings `WATCHDOG=1` every half interval. The pings come from that task, on the same
//! runtime as the proxy and the VRRP instances: a runtime that stops running tasks stops the
//! pings, and systemd restarts the process. [`Notifier::stopping`] sends `STOPPING=1` on
//! SIGTERM; the pings go on while the VIPs are handed over and connections drain, so a long
//! `grace` does not trip the watchdog. Dropping the notifier ends the task.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use havip_proxy::service::Service;
use havip_vrrp::event::State;
use sd_notify::NotifyState;
use tokio::task::JoinHandle;

use crate::run::Running;
use crate::vrrp::status::{state_name, VrrpView};

/// How often the status line is recomputed (it is sent only when it changed).
const STATUS_EVERY: Duration = Duration::from_secs(1);

/// How long READY waits for the VRRP instances to leave INIT (they do within milliseconds
/// of starting; this only bounds a wedged one).
pub const STARTUP_WAIT: Duration = Duration::from_secs(2);

/// What the status line is made of.
struct Sources {
    services: Vec<Arc<Service>>,
    vrrp: Option<Arc<VrrpView>>,
    stopping: Arc<AtomicBool>,
}

impl Sources {
    /// "VI_1 MASTER, VI_2 BACKUP; kube-apiserver 3/3 up", or a stopping line.
    fn line(&self) -> String {
        let mut parts = Vec::new();
        if let Some(view) = &self.vrrp {
            let instances: Vec<String> = view
                .snapshot()
                .iter()
                .map(|i| format!("{} {}", i.name, state_name(i.state)))
                .collect();
            parts.push(instances.join(", "));
        }
        let services: Vec<String> = self
            .services
            .iter()
            .map(|service| {
                let up = service.backends.iter().filter(|b| b.is_up()).count();
                format!("{} {up}/{} up", service.spec.name, service.backends.len())
            })
            .collect();
        if !services.is_empty() {
            parts.push(services.join(", "));
        }
        let line = parts.join("; ");
        if self.stopping.load(Relaxed) {
            format!("stopping: handing over the VIPs, draining connections; {line}")
        } else {
            line
        }
    }
}

/// Keeps systemd informed while havip runs; see the module documentation.
pub struct Notifier {
    stopping: Arc<AtomicBool>,
    task: Option<JoinHandle<()>>,
}

impl Notifier {
    /// Send `READY=1` and start the status and watchdog task. Call it on the runtime, once
    /// `running` has started everything; it waits (at most [`STARTUP_WAIT`]) until every
    /// VRRP instance has taken its Startup event (RFC 5798 6.4.1: INIT becomes BACKUP, or
    /// MASTER for an address owner), so the first status line shows where each one stands.
    pub async fn ready(running: &Running) -> Notifier {
        let stopping = Arc::new(AtomicBool::new(false));
        let sources = Sources {
            services: running.services().to_vec(),
            vrrp: running.vrrp_view(),
            stopping: stopping.clone(),
        };
        if std::env::var_os("NOTIFY_SOCKET").is_none() {
            return Notifier {
                stopping,
                task: None,
            };
        }
        if let Some(view) = &sources.vrrp {
            let deadline = tokio::time::Instant::now() + STARTUP_WAIT;
            while view.snapshot().iter().any(|i| i.state == State::Initialize)
                && tokio::time::Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        let status = sources.line();
        send(&[NotifyState::Ready, NotifyState::Status(&status)]);
        let watchdog = sd_notify::watchdog_enabled();
        if let Some(interval) = watchdog {
            tracing::info!(
                interval_ms = interval.as_millis() as u64,
                "systemd watchdog on"
            );
        }
        let task = tokio::spawn(keep_informed(sources, status, watchdog));
        Notifier {
            stopping,
            task: Some(task),
        }
    }

    /// Tell systemd the service is stopping (`STOPPING=1`), on SIGTERM, before the VIPs are
    /// handed over and connections drain.
    pub fn stopping(&self) {
        self.stopping.store(true, Relaxed);
        if self.task.is_some() {
            send(&[
                NotifyState::Stopping,
                NotifyState::Status("stopping: handing over the VIPs, draining connections"),
            ]);
        }
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Resend `STATUS=` when it changes and ping the watchdog at half its interval, as
/// sd_watchdog_enabled(3) advises.
async fn keep_informed(sources: Sources, mut last: String, watchdog: Option<Duration>) {
    let mut status = tokio::time::interval(STATUS_EVERY);
    // Without a watchdog this ticker still runs, rarely, and sends nothing.
    let ping_every = watchdog.map_or(Duration::from_secs(3600), |w| w / 2);
    let mut ping = tokio::time::interval(ping_every);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ping.tick() => {
                if watchdog.is_some() {
                    send(&[NotifyState::Watchdog]);
                }
            }
            _ = status.tick() => {
                let line = sources.line();
                if line != last {
                    send(&[NotifyState::Status(&line)]);
                    last = line;
                }
            }
        }
    }
}

/// One notify datagram; a failure is logged, never fatal (systemd may be restarting).
fn send(states: &[NotifyState<'_>]) {
    if let Err(error) = sd_notify::notify(states) {
        tracing::warn!(%error, "cannot notify systemd");
    }
}

/// Until live reload lands, SIGHUP (the unit's `ExecReload=` sends it after `havip check`
/// passed) is logged and otherwise ignored, instead of killing the process as its default
/// action would.
pub fn keep_running_on_hangup() {
    let Ok(mut hangup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
    else {
        tracing::warn!("cannot handle SIGHUP; a reload would stop havip");
        return;
    };
    tokio::spawn(async move {
        while hangup.recv().await.is_some() {
            tracing::warn!(
                "SIGHUP: live reload is not available yet; the running config stays in effect \
                 (restart havip to apply a changed file)"
            );
        }
    });
}
