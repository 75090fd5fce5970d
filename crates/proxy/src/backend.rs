//! A backend at run time: its spec, its counters, and the health state that its monitor task
//! publishes. Every connection reads this on the hot path, so the state is plain atomics;
//! exactly one task (the backend's health monitor, see [`crate::health`]) writes the health
//! state, and everyone else reports to it through [`Backend::report_connect_failure`].
//!
//! Lifecycle: created when a service starts, or when a reload adds it; shared as
//! `Arc<Backend>` by the service generations that list it, its monitor and every connection
//! to it. A reload that keeps a backend (same name and address) keeps this object, so its
//! health, counters, slow-start progress and runtime weight carry over; only its settings
//! ([`Backend::spec`]) are swapped. A reload that removes it [`Backend::retire`]s it once its
//! connections had their grace period.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::{ArcSwap, Guard};

use tokio::sync::futures::Notified;
use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;

use havip_config::service::BackendSpec;

/// Health as the balancer sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Health {
    /// Eligible for new connections (if its weight is not 0).
    Up = 1,
    /// Skipped by the balancer; its connections close if the service says `close_on_down`.
    Down = 2,
}

impl Health {
    /// The lower-case name used in metrics labels, the status API and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Up => "up",
            Health::Down => "down",
        }
    }
}

/// What connection tasks tell a backend's health monitor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthEvent {
    /// A client connection's connect attempt to this backend failed (refused, timed out,
    /// unreachable): counts towards passive `max_fails`.
    ConnectFailed {
        /// When the attempt failed, so the monitor can count it in the `fail_timeout` window.
        at: Instant,
    },
}

/// Result of the most recent active check, for metrics and the status API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum CheckOutcome {
    /// No check has completed yet (or checks are disabled).
    None = 0,
    /// The most recent check succeeded.
    Passed = 1,
    /// The most recent check failed (refused, timed out, or a wrong answer).
    Failed = 2,
}

/// Counters of one backend; monotonic except `active`.
#[derive(Debug, Default)]
pub struct BackendStats {
    /// Connections established to the backend and not yet closed.
    pub active: AtomicU32,
    /// Connections established to the backend since start.
    pub total: AtomicU64,
    /// Bytes from clients to this backend.
    pub bytes_to_backend: AtomicU64,
    /// Bytes from this backend to clients.
    pub bytes_from_backend: AtomicU64,
    /// Connect attempts to this backend that failed.
    pub connect_errors: AtomicU64,
    /// Connections that gave up on this backend after a failed connect and tried another.
    pub retries: AtomicU64,
    /// Active checks that passed.
    pub checks_passed: AtomicU64,
    /// Active checks that failed.
    pub checks_failed: AtomicU64,
    /// Duration of the most recent completed check, in microseconds.
    pub last_check_micros: AtomicU64,
    /// [`CheckOutcome`] of the most recent check.
    pub last_check_outcome: AtomicU8,
    /// Times the backend was marked down.
    pub went_down: AtomicU64,
}

/// One backend of a running service.
#[derive(Debug)]
pub struct Backend {
    /// The configured name, address, weight and options; name and address never change (a
    /// reload that changes them adds another backend), the rest may.
    spec: ArcSwap<BackendSpec>,
    /// Traffic and check counters, read by metrics and the status API.
    pub stats: BackendStats,
    /// [`Health`], written only by the monitor.
    health: AtomicU8,
    /// When the backend last became up, in ms since `epoch` (drives slow start).
    up_since_ms: AtomicU64,
    /// Weight in effect; starts at `spec.weight`, changed by the runtime API (0 = drain).
    weight: AtomicU32,
    epoch: Instant,
    events: mpsc::Sender<HealthEvent>,
    /// Wakes this backend's connections: when it is marked down (they close if the service
    /// says `close_on_down`) and when the service cuts every connection at shutdown.
    interrupt: Notify,
    /// Where the backend is in a reload's removal, see [`Backend::remove`].
    removal: AtomicU8,
}

/// [`Backend::removal`] values.
const IN_SERVICE: u8 = 0;
const REMOVED: u8 = 1;
const RETIRED: u8 = 2;

/// The receiving end of a backend's health events, owned by its monitor task.
pub type HealthInbox = mpsc::Receiver<HealthEvent>;

/// Passive failures are rare and summarised by count; a small bound is plenty, and when it is
/// full the monitor is already going to mark the backend down.
const EVENT_QUEUE: usize = 64;

/// `up_since_ms` value of a backend that has been up since before the process started.
const UP_FOREVER: u64 = u64::MAX;

impl Backend {
    /// A backend that starts up (as HAProxy does: the first failed check marks it down).
    /// With `ramp_from_epoch` its slow-start ramp begins at `epoch` (slow start at boot);
    /// otherwise it counts as up for ever, so slow start applies only after it next comes up.
    pub fn new(spec: BackendSpec, epoch: Instant, ramp_from_epoch: bool) -> (Self, HealthInbox) {
        let up_since = if ramp_from_epoch { 0 } else { UP_FOREVER };
        Backend::with_health(spec, epoch, Health::Up, up_since)
    }

    /// A backend a reload adds while the process runs: down until its health checks pass
    /// `rise` times when `checked` (it has never been checked), up at once otherwise; its
    /// slow-start ramp, if any, starts when it comes up.
    pub fn added(
        spec: BackendSpec,
        epoch: Instant,
        checked: bool,
        now: Instant,
    ) -> (Self, HealthInbox) {
        if checked {
            Backend::with_health(spec, epoch, Health::Down, UP_FOREVER)
        } else {
            Backend::with_health(spec, epoch, Health::Up, millis_since(epoch, now))
        }
    }

    fn with_health(
        spec: BackendSpec,
        epoch: Instant,
        health: Health,
        up_since_ms: u64,
    ) -> (Self, HealthInbox) {
        let (tx, rx) = mpsc::channel(EVENT_QUEUE);
        let weight = spec.weight;
        let backend = Backend {
            spec: ArcSwap::from_pointee(spec),
            stats: BackendStats::default(),
            health: AtomicU8::new(health as u8),
            up_since_ms: AtomicU64::new(up_since_ms),
            weight: AtomicU32::new(weight),
            epoch,
            events: tx,
            interrupt: Notify::new(),
            removal: AtomicU8::new(IN_SERVICE),
        };
        (backend, rx)
    }

    /// The backend's settings now. Cheap (no reference count), for the hot path; hold it
    /// only briefly.
    pub fn spec(&self) -> Guard<Arc<BackendSpec>> {
        self.spec.load()
    }

    /// The backend's name (never changes).
    pub fn name(&self) -> String {
        self.spec.load().name.clone()
    }

    /// The backend's address (never changes).
    pub fn addr(&self) -> std::net::SocketAddr {
        self.spec.load().addr
    }

    /// New settings from a reload, for a backend with the same name and address. A new
    /// configured weight takes effect unless the runtime weight was changed away from the
    /// old configured one (an operator's change survives the reload).
    pub fn reconfigure(&self, spec: BackendSpec) {
        let old = self.spec.load_full();
        if spec.weight != old.weight {
            let _ = self
                .weight
                .compare_exchange(old.weight, spec.weight, Relaxed, Relaxed);
        }
        self.spec.store(Arc::new(spec));
    }

    /// A reload removed this backend: no new connections, open ones go on (until
    /// [`Backend::retire`]).
    pub fn remove(&self) {
        let _ = self
            .removal
            .compare_exchange(IN_SERVICE, REMOVED, Relaxed, Relaxed);
    }

    /// Whether a reload removed this backend: the balancer never picks it again.
    pub fn is_removed(&self) -> bool {
        self.removal.load(Relaxed) != IN_SERVICE
    }

    /// A removed backend's grace period is over: its connections end now (with
    /// `backend_removed` in the log).
    pub fn retire(&self) {
        self.removal.store(RETIRED, Relaxed);
        self.interrupt.notify_waiters();
    }

    /// Whether [`Backend::retire`] was called.
    pub fn is_retired(&self) -> bool {
        self.removal.load(Relaxed) == RETIRED
    }

    /// The health state the monitor last published.
    pub fn health(&self) -> Health {
        if self.health.load(Relaxed) == Health::Down as u8 {
            Health::Down
        } else {
            Health::Up
        }
    }

    /// Whether the balancer may pick this backend (weight aside).
    pub fn is_up(&self) -> bool {
        self.health() == Health::Up
    }

    /// Publish a new health state; only the backend's monitor calls this.
    pub fn set_health(&self, health: Health, now: Instant) {
        let old = self.health.swap(health as u8, Relaxed);
        if old == health as u8 {
            return;
        }
        match health {
            Health::Up => self
                .up_since_ms
                .store(millis_since(self.epoch, now), Relaxed),
            Health::Down => {
                self.stats.went_down.fetch_add(1, Relaxed);
                self.interrupt.notify_waiters();
            }
        }
    }

    /// How long the backend has been up at `now` (for slow start).
    pub fn up_for(&self, now: Instant) -> Duration {
        let since_ms = self.up_since_ms.load(Relaxed);
        if since_ms == UP_FOREVER {
            return Duration::MAX;
        }
        let since = self.epoch + Duration::from_millis(since_ms);
        now.saturating_duration_since(since)
    }

    /// The weight in effect now: the configured one unless the runtime API changed it; 0 means
    /// drained.
    pub fn weight(&self) -> u32 {
        self.weight.load(Relaxed)
    }

    /// Runtime weight change; 0 drains the backend.
    pub fn set_weight(&self, weight: u32) {
        self.weight.store(weight, Relaxed);
    }

    /// Tell the monitor a client connect to this backend failed. Never blocks; if the
    /// monitor's queue is full the failure is counted only in `connect_errors`.
    pub fn report_connect_failure(&self, at: Instant) {
        let _ = self.events.try_send(HealthEvent::ConnectFailed { at });
    }

    /// Completes when the backend's connections are next interrupted (see `interrupt`). The
    /// caller enables it before checking why it might already be time to close, so a wake in
    /// between is not lost.
    pub fn interrupted(&self) -> Notified<'_> {
        self.interrupt.notified()
    }

    /// Wake every connection waiting in [`Backend::interrupted`].
    pub fn interrupt_connections(&self) {
        self.interrupt.notify_waiters();
    }

    /// Counts one completed active check and remembers its outcome and duration; only the
    /// backend's monitor calls this.
    pub fn record_check(&self, passed: bool, took: Duration) {
        let stats = &self.stats;
        if passed {
            stats.checks_passed.fetch_add(1, Relaxed);
        } else {
            stats.checks_failed.fetch_add(1, Relaxed);
        }
        let outcome = if passed {
            CheckOutcome::Passed
        } else {
            CheckOutcome::Failed
        };
        stats.last_check_outcome.store(outcome as u8, Relaxed);
        stats
            .last_check_micros
            .store(took.as_micros().min(u64::MAX as u128) as u64, Relaxed);
    }

    /// The outcome and duration of the most recent completed check, for metrics and status.
    pub fn last_check(&self) -> (CheckOutcome, Duration) {
        let outcome = match self.stats.last_check_outcome.load(Relaxed) {
            1 => CheckOutcome::Passed,
            2 => CheckOutcome::Failed,
            _ => CheckOutcome::None,
        };
        let micros = self.stats.last_check_micros.load(Relaxed);
        (outcome, Duration::from_micros(micros))
    }
}

fn millis_since(epoch: Instant, t: Instant) -> u64 {
    t.saturating_duration_since(epoch).as_millis() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    fn spec() -> BackendSpec {
        BackendSpec::new(SocketAddr::from(([127, 0, 0, 1], 1)))
    }

    #[tokio::test(start_paused = true)]
    async fn slow_start_at_boot_ramps_from_the_epoch_otherwise_not_at_all() {
        let epoch = Instant::now();
        tokio::time::advance(Duration::from_secs(3)).await;
        let (at_boot, _) = Backend::new(spec(), epoch, true);
        assert_eq!(at_boot.up_for(Instant::now()), Duration::from_secs(3));
        let (not_at_boot, _) = Backend::new(spec(), epoch, false);
        assert_eq!(not_at_boot.up_for(Instant::now()), Duration::MAX);
    }

    #[tokio::test(start_paused = true)]
    async fn coming_up_restarts_the_ramp_and_going_down_counts() {
        let epoch = Instant::now();
        let (backend, _) = Backend::new(spec(), epoch, false);
        tokio::time::advance(Duration::from_secs(10)).await;
        backend.set_health(Health::Down, Instant::now());
        assert_eq!(backend.stats.went_down.load(Relaxed), 1);
        tokio::time::advance(Duration::from_secs(5)).await;
        backend.set_health(Health::Up, Instant::now());
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(backend.up_for(Instant::now()), Duration::from_secs(2));
        // Publishing the same state again changes nothing.
        backend.set_health(Health::Up, Instant::now());
        assert_eq!(backend.up_for(Instant::now()), Duration::from_secs(2));
        assert_eq!(backend.stats.went_down.load(Relaxed), 1);
    }
}
