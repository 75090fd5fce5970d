//! The monitor task of one backend: the only writer of that backend's health.
//!
//! Lifecycle: the proxy spawns one [`Monitor`] per backend when it starts, or when a reload
//! adds the backend, and keeps the returned `JoinHandle`; it aborts the handle when the
//! service stops or the backend is removed. A reload that changes the service's checks sends
//! the new [`Checks`] on the watch every monitor of the service holds: the monitor applies
//! them at once and keeps the backend's health and counts (no new probation). The task does not end on its own: the backend holds the sending side
//! of its own inbox, and the monitor holds the backend, so the inbox never closes while the
//! monitor runs. Aborting is safe at any point; an in-flight check is simply dropped.
//!
//! The loop waits for whichever comes first: the next active check, a passive
//! [`HealthEvent::ConnectFailed`], or (passive health only) the end of a passive downtime.
//! It feeds the result to its [`HealthMachine`], publishes transitions with
//! [`Backend::set_health`], and records every check with [`Backend::record_check`]. A check
//! runs inline: passive events that arrive meanwhile wait in the inbox (at most the check
//! timeout) and are judged by the time they happened, not the time they are read.
//!
//! Maintenance: while the backend's administrative state is `maint` the monitor runs no
//! check and ignores passive failures (nothing new goes to the backend, and an operator has
//! taken it out knowing it may fail); the health it published last stays. When the backend
//! leaves `maint` the next check runs at once, so the balancer does not rely for long on a
//! result from before. `drain` changes nothing here: its checks go on.
//!
//! Spreading: the first check of backend `i` of `n` fires at a random point of the `i`-th
//! `n`th of the first interval, and every later wait is jittered by ±10%, so the checks of
//! many backends and services never line up into bursts.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::machine::{HealthMachine, Transition};
use super::probe::Probe;
use crate::backend::{AdminState, Backend, Health, HealthEvent, HealthInbox};
use havip_config::service::{HealthSpec, PassiveSpec};

/// A service's health checking, as its monitors apply it: shared by every monitor of the
/// service and swapped by a reload.
#[derive(Debug, Clone)]
pub struct Checks {
    /// Intervals, `rise` and `fall` of the active checks.
    pub spec: HealthSpec,
    /// `max_fails` / `fail_timeout` of the passive checks.
    pub passive: PassiveSpec,
    /// The service's prepared check, as [`Probe::new`] returned it for `spec`; `None` means
    /// no active checks, so only passive failures change the health.
    pub probe: Option<Arc<Probe>>,
}

/// Everything one backend's monitor task needs; [`Monitor::spawn`] starts it.
#[derive(Debug)]
pub struct Monitor {
    /// Service name, for the log.
    pub service: Arc<str>,
    /// The backend whose health this monitor owns and publishes.
    pub backend: Arc<Backend>,
    /// The receiving end returned by [`Backend::new`].
    pub inbox: HealthInbox,
    /// The service's checks now, and every change a reload makes.
    pub checks: watch::Receiver<Arc<Checks>>,
    /// Whether the backend was added by a reload: it starts down until checks pass.
    pub added: bool,
    /// Position of this backend among the service's `count` backends, to spread the first
    /// checks over the first interval.
    pub index: usize,
    /// How many backends the service has.
    pub count: usize,
}

impl Monitor {
    /// Start the task on the current tokio runtime. Keep the handle and abort it to stop
    /// the monitor (see the module docs).
    pub fn spawn(self) -> JoinHandle<()> {
        tokio::spawn(self.run())
    }

    /// The task body; runs until aborted.
    pub async fn run(self) {
        let Monitor {
            service,
            backend,
            mut inbox,
            mut checks,
            added,
            index,
            count,
        } = self;
        let mut current = checks.borrow_and_update().clone();
        let mut machine = if added {
            HealthMachine::new_added(&current.spec, current.passive, current.probe.is_some())
        } else {
            HealthMachine::new(&current.spec, current.passive, current.probe.is_some())
        };
        let mut next_check = current.probe.as_ref().map(|_| {
            Instant::now() + first_check_delay(current.spec.interval, index, count, fastrand::f64())
        });
        let mut watching = true;
        loop {
            if backend.admin_state() == AdminState::Maint {
                wait_out_maintenance(&backend, &mut inbox).await;
                info!(
                    service = %service,
                    backend = %backend.name(),
                    "maintenance over, health checks resume"
                );
                next_check = next_check.map(|_| Instant::now());
            }
            let wake = earliest(next_check, machine.wake_at());
            let admin_changed = backend.admin_changed();
            tokio::pin!(admin_changed);
            admin_changed.as_mut().enable();
            if backend.admin_state() == AdminState::Maint {
                continue;
            }
            tokio::select! {
                // Put in maintenance: stop before the next check.
                () = &mut admin_changed => {}
                event = inbox.recv() => match event {
                    Some(HealthEvent::ConnectFailed { at }) => {
                        if let Some(transition) = machine.connect_failed(at, Instant::now()) {
                            publish(&service, &backend, &transition);
                        }
                    }
                    // Unreachable while we hold the backend (it owns the sender); if it ever
                    // happens nobody can report to us any more, so there is nothing to do.
                    None => return,
                },
                changed = checks.changed(), if watching => {
                    if changed.is_err() {
                        // The service is gone; keep checking until aborted.
                        watching = false;
                        continue;
                    }
                    current = checks.borrow_and_update().clone();
                    next_check = reconfigured(&mut machine, &current, next_check, &service, &backend);
                }
                () = sleep_until(wake) => {
                    if let Some(transition) = machine.poll(Instant::now()) {
                        publish(&service, &backend, &transition);
                    }
                    let due = next_check.is_some_and(|at| Instant::now() >= at);
                    if let (true, Some(probe)) = (due, &current.probe) {
                        let done = check_once(probe, &backend, &service, &mut machine).await;
                        // Measured from the end of the check, so checks never overlap.
                        next_check = Some(done + jitter(machine.next_interval(), fastrand::f64()));
                    }
                }
            }
        }
    }
}

/// Run one active check, record it on the backend and feed it to the machine; returns when it
/// ended.
async fn check_once(
    probe: &Probe,
    backend: &Backend,
    service: &str,
    machine: &mut HealthMachine,
) -> Instant {
    let started = Instant::now();
    let result = probe.check(backend.addr()).await;
    let done = Instant::now();
    backend.record_check(result.is_ok(), done - started);
    let transition = match &result {
        Ok(()) => machine.check_passed(done),
        Err(error) => {
            let why = error.to_string();
            debug!(
                service = %service,
                backend = %backend.name(),
                error = %why,
                "health check failed"
            );
            machine.check_failed(&why)
        }
    };
    if let Some(transition) = transition {
        publish(service, backend, &transition);
    }
    done
}

/// Apply a reload's new checks: the machine keeps its state; a check turned on is scheduled
/// after one interval, one turned off is cancelled. Returns the next check time.
fn reconfigured(
    machine: &mut HealthMachine,
    checks: &Checks,
    next_check: Option<Instant>,
    service: &str,
    backend: &Backend,
) -> Option<Instant> {
    let now = Instant::now();
    let active = checks.probe.is_some();
    if let Some(transition) = machine.reconfigure(&checks.spec, checks.passive, active, now) {
        publish(service, backend, &transition);
    }
    match (active, next_check) {
        (false, _) => None,
        (true, Some(at)) => Some(at.min(now + checks.spec.interval)),
        (true, None) => Some(now + jitter(checks.spec.interval, fastrand::f64())),
    }
}

/// Wait while the backend is in maintenance, dropping passive failures that arrive (from
/// connections picked just before).
async fn wait_out_maintenance(backend: &Backend, inbox: &mut HealthInbox) {
    loop {
        let changed = backend.admin_changed();
        tokio::pin!(changed);
        changed.as_mut().enable();
        if backend.admin_state() != AdminState::Maint {
            return;
        }
        tokio::select! {
            () = &mut changed => {}
            event = inbox.recv() => {
                if event.is_none() {
                    // See the loop above: nobody can report any more; wait for the state.
                    changed.await;
                }
            }
        }
    }
}

fn publish(service: &str, backend: &Backend, transition: &Transition) {
    backend.set_health(transition.to, Instant::now());
    let spec = backend.spec();
    let name = spec.name.as_str();
    match transition.to {
        Health::Up => info!(
            service,
            backend = name,
            from = transition.from.as_str(),
            to = transition.to.as_str(),
            reason = %transition.reason,
            "backend is up"
        ),
        Health::Down => warn!(
            service,
            backend = name,
            from = transition.from.as_str(),
            to = transition.to.as_str(),
            reason = %transition.reason,
            "backend is down"
        ),
    }
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

/// Sleeps until `at`, or for ever when there is nothing to wait for.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Delay of the first check of backend `index` of `count`: a point in the `index`-th of
/// `count` equal slices of `interval`, placed by `random` (in `[0, 1)`). Backends of one
/// service are spread evenly; the random place within the slice keeps services apart.
pub fn first_check_delay(interval: Duration, index: usize, count: usize, random: f64) -> Duration {
    let count = count.max(1);
    let index = index.min(count - 1);
    let random = random.clamp(0.0, 1.0);
    interval.mul_f64((index as f64 + random) / count as f64)
}

/// `interval` scaled by a factor in `[0.9, 1.1)` chosen by `random` (in `[0, 1)`), so
/// checks that happen to line up drift apart again.
pub fn jitter(interval: Duration, random: f64) -> Duration {
    interval.mul_f64(0.9 + 0.2 * random.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn first_checks_are_spread_over_the_interval() {
        let interval = 1000 * MS;
        // Each backend gets its own slice of the interval.
        assert_eq!(first_check_delay(interval, 0, 4, 0.0), Duration::ZERO);
        assert_eq!(first_check_delay(interval, 1, 4, 0.0), 250 * MS);
        assert_eq!(first_check_delay(interval, 3, 4, 0.0), 750 * MS);
        assert_eq!(first_check_delay(interval, 1, 4, 0.5), 375 * MS);
        // Never past the first interval.
        assert!(first_check_delay(interval, 3, 4, 0.999_999) < interval);
        // Out-of-range inputs stay inside it too.
        assert!(first_check_delay(interval, 9, 4, 5.0) <= interval);
        assert!(first_check_delay(interval, 0, 0, 0.5) <= interval);
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        let interval = 2000 * MS;
        assert_eq!(jitter(interval, 0.0), 1800 * MS);
        assert_eq!(jitter(interval, 0.5), 2000 * MS);
        assert!(jitter(interval, 0.999_999) < 2200 * MS);
        for _ in 0..1000 {
            let jittered = jitter(interval, fastrand::f64());
            assert!(
                jittered >= 1800 * MS && jittered < 2200 * MS,
                "{jittered:?}"
            );
        }
    }

    #[test]
    fn earliest_of_two_optional_deadlines() {
        let now = Instant::now();
        assert_eq!(earliest(None, None), None);
        assert_eq!(earliest(Some(now), None), Some(now));
        assert_eq!(earliest(None, Some(now)), Some(now));
        assert_eq!(earliest(Some(now + MS), Some(now)), Some(now));
    }
}
