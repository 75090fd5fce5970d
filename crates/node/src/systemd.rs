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
//! pings, and systemd restarts the process. They also stop when a VRRP instance's own loop
//! is stuck (a blocked task on a runtime that otherwise runs): a master or backup shows
//! progress at least every Master_Down_Interval (a master sends adverts every interval, a
//! backup hears them or becomes master, RFC 5798 6.4.2), so one that shows none for twice
//! that is wedged while the kernel may still hold its VIP, and a restart (which removes
//! stale VIPs) beats a silent split brain. [`Notifier::stopping`] sends `STOPPING=1` on
//! SIGTERM; the pings go on while the VIPs are handed over and connections drain, so a long
//! `grace` does not trip the watchdog. Dropping the notifier ends the task.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use havip_proxy::ServiceTable;
use havip_vrrp::counters::Counters;
use havip_vrrp::event::State;
use sd_notify::NotifyState;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::run::Running;
use crate::vrrp::status::{state_name, InstanceStatus, VrrpView};

/// How often the status line is recomputed (it is sent only when it changed).
const STATUS_EVERY: Duration = Duration::from_secs(1);

/// How long READY waits for the VRRP instances to leave INIT (they do within milliseconds
/// of starting; this only bounds a wedged one).
pub const STARTUP_WAIT: Duration = Duration::from_secs(2);

/// What the status line is made of.
struct Sources {
    services: Arc<ServiceTable>,
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
            .load()
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
            services: running.service_table(),
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

/// What one VRRP instance shows of its loop's progress, from its status.
#[derive(Debug, Clone)]
struct Progress {
    name: String,
    /// Whether progress is expected now: Master or Backup, not stepped down, not handing
    /// over, not stopping (Init and Fault wait for something outside).
    expected: bool,
    /// Changes whenever the instance's loop handles an advert, a timer or a transition.
    signature: (State, Counters, u64),
    /// How long without a change means the loop is stuck.
    limit: Duration,
}

impl Progress {
    fn of(status: &InstanceStatus) -> Progress {
        Progress {
            name: status.name.clone(),
            expected: matches!(status.state, State::Master | State::Backup)
                && !status.stepped_down
                && !status.handing_over
                && !status.stopping,
            signature: (status.state, status.counters.clone(), status.send_errors),
            limit: status.master_down_interval * 2 + Duration::from_secs(1),
        }
    }
}

/// Tracks when each VRRP instance last showed progress; pure, on the `now` it is given.
#[derive(Debug, Default)]
struct Liveness {
    /// Per instance (by position): the last signature and when it changed.
    last: Vec<(Progress, Instant)>,
}

impl Liveness {
    /// The first instance that is stuck at `now`, with how long it has shown nothing.
    fn stuck(&mut self, now: Instant, instances: Vec<Progress>) -> Option<(String, Duration)> {
        if self.last.len() != instances.len() {
            self.last = instances.into_iter().map(|p| (p, now)).collect();
            return None;
        }
        let mut stuck = None;
        for ((last, since), progress) in self.last.iter_mut().zip(instances) {
            if !progress.expected || progress.signature != last.signature {
                *since = now;
            }
            let quiet = now.saturating_duration_since(*since);
            if stuck.is_none() && progress.expected && quiet > progress.limit {
                stuck = Some((progress.name.clone(), quiet));
            }
            *last = progress;
        }
        stuck
    }
}

/// Resend `STATUS=` when it changes and ping the watchdog at half its interval, as
/// sd_watchdog_enabled(3) advises, unless a VRRP instance's loop is stuck.
async fn keep_informed(sources: Sources, mut last: String, watchdog: Option<Duration>) {
    let mut status = tokio::time::interval(STATUS_EVERY);
    // Without a watchdog this ticker still runs, rarely, and sends nothing.
    let ping_every = watchdog.map_or(Duration::from_secs(3600), |w| w / 2);
    let mut ping = tokio::time::interval(ping_every);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut liveness = Liveness::default();
    let mut reported = false;
    loop {
        tokio::select! {
            _ = ping.tick() => {
                let snapshot = sources.vrrp.as_ref().map(|v| v.snapshot()).unwrap_or_default();
                let progress = snapshot.iter().map(Progress::of).collect();
                match liveness.stuck(Instant::now(), progress) {
                    Some((instance, quiet)) => {
                        if !reported {
                            tracing::error!(
                                %instance,
                                quiet_ms = quiet.as_millis() as u64,
                                "VRRP instance shows no progress: no more watchdog pings, \
                                 so systemd restarts havip"
                            );
                            reported = true;
                        }
                    }
                    None => {
                        reported = false;
                        if watchdog.is_some() {
                            send(&[NotifyState::Watchdog]);
                        }
                    }
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

/// For a node that runs a config built in memory (the demo): SIGHUP has no file to re-read,
/// so it is logged and otherwise ignored instead of killing the process as its default
/// action would. `havip run` reloads on SIGHUP instead (`crate::run::reload`).
pub fn keep_running_on_hangup() {
    let Ok(mut hangup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
    else {
        tracing::warn!("cannot handle SIGHUP; a reload would stop havip");
        return;
    };
    tokio::spawn(async move {
        while hangup.recv().await.is_some() {
            tracing::warn!("SIGHUP: this node runs a built-in config; there is no file to reload");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(state: State, sent: u64) -> Progress {
        let mut counters = Counters::default();
        counters.adverts_sent = sent;
        Progress {
            name: "VI_1".into(),
            expected: matches!(state, State::Master | State::Backup),
            signature: (state, counters, 0),
            limit: Duration::from_secs(8),
        }
    }

    #[test]
    fn a_master_that_keeps_advertising_is_alive_and_one_that_stops_is_stuck() {
        let start = Instant::now();
        let at = |s: u64| start + Duration::from_secs(s);
        let mut liveness = Liveness::default();
        assert_eq!(
            liveness.stuck(at(0), vec![progress(State::Master, 1)]),
            None
        );
        for s in 1..30 {
            assert_eq!(
                liveness.stuck(at(s), vec![progress(State::Master, 1 + s)]),
                None
            );
        }
        // The loop stops: the counters freeze at what they were at 29 s.
        for s in 30..=37 {
            assert_eq!(
                liveness.stuck(at(s), vec![progress(State::Master, 30)]),
                None,
                "{s}"
            );
        }
        let stuck = liveness.stuck(at(39), vec![progress(State::Master, 30)]);
        assert_eq!(stuck, Some(("VI_1".to_string(), Duration::from_secs(10))));
        // It moves again: alive.
        assert_eq!(
            liveness.stuck(at(40), vec![progress(State::Master, 31)]),
            None
        );
    }

    #[test]
    fn init_and_fault_are_not_expected_to_move_and_a_state_change_is_progress() {
        let start = Instant::now();
        let at = |s: u64| start + Duration::from_secs(s);
        let mut liveness = Liveness::default();
        liveness.stuck(at(0), vec![progress(State::Fault, 0)]);
        // An interface down for a minute: no adverts either way, nothing stuck.
        assert_eq!(
            liveness.stuck(at(60), vec![progress(State::Fault, 0)]),
            None
        );
        // Back to Backup: the quiet time counts from the change.
        assert_eq!(
            liveness.stuck(at(61), vec![progress(State::Backup, 0)]),
            None
        );
        assert_eq!(
            liveness.stuck(at(69), vec![progress(State::Backup, 0)]),
            None
        );
        assert!(liveness
            .stuck(at(70), vec![progress(State::Backup, 0)])
            .is_some());
    }

    #[test]
    fn a_changed_set_of_instances_starts_over() {
        let start = Instant::now();
        let mut liveness = Liveness::default();
        liveness.stuck(start, vec![progress(State::Master, 1)]);
        let two = vec![progress(State::Master, 1), progress(State::Backup, 0)];
        let later = start + Duration::from_secs(60);
        assert_eq!(liveness.stuck(later, two.clone()), None);
        assert_eq!(liveness.stuck(later + Duration::from_secs(1), two), None);
    }
}
