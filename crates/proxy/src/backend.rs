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
//!
//! Besides health, a backend carries what an operator set at run time: its administrative
//! state ([`AdminState`]: `ready`, `drain`, `maint`, HAProxy's `set server ... state`) and a
//! runtime weight. Both live on the backend object, so a reload that keeps the backend keeps
//! them; [`Backend::runtime_state`] and [`Backend::restore_runtime_state`] carry them over to
//! a backend object built anew.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering::Relaxed};
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

/// What an operator allows the balancer to do with a backend (HAProxy's `set server
/// <backend>/<server> state ready|drain|maint`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum AdminState {
    /// Picked for new connections whenever it is up with a weight above 0.
    Ready = 0,
    /// No new connections; open ones go on, health checks go on.
    Drain = 1,
    /// Maintenance: no new connections, open ones go on, health checks stopped.
    Maint = 2,
}

impl AdminState {
    /// The lower-case name used by the API, the CLI, metrics labels and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            AdminState::Ready => "ready",
            AdminState::Drain => "drain",
            AdminState::Maint => "maint",
        }
    }

    /// Every state, in the order metrics list them.
    pub const ALL: [AdminState; 3] = [AdminState::Ready, AdminState::Drain, AdminState::Maint];

    fn from_u8(value: u8) -> AdminState {
        match value {
            1 => AdminState::Drain,
            2 => AdminState::Maint,
            _ => AdminState::Ready,
        }
    }
}

impl std::str::FromStr for AdminState {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "ready" => Ok(AdminState::Ready),
            "drain" => Ok(AdminState::Drain),
            "maint" => Ok(AdminState::Maint),
            other => Err(format!(
                "unknown state {other:?}; expected ready, drain or maint"
            )),
        }
    }
}

/// What an operator set on a backend at run time, to carry over to a backend object built
/// anew by a reload (see [`Backend::restore_runtime_state`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuntimeState {
    /// The administrative state.
    pub admin: AdminState,
    /// The runtime weight, when the operator set one (otherwise the config's applies).
    pub weight: Option<u32>,
}

/// The largest runtime weight: the same bound as a configured `weight` (the config reader's
/// `0..=10000`), so a runtime weight can express any share a config can.
pub const MAX_WEIGHT: u32 = 10_000;

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
    /// Weight in effect; starts at `spec.weight`, changed by the runtime API.
    weight: AtomicU32,
    /// Whether an operator set `weight` (a reload that changes the configured weight then
    /// keeps the operator's).
    weight_set: AtomicBool,
    /// [`AdminState`], written by runtime commands.
    admin: AtomicU8,
    /// Woken on every change of the administrative state (the monitor stops and resumes its
    /// checks on maint).
    admin_changed: Notify,
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
            weight_set: AtomicBool::new(false),
            admin: AtomicU8::new(AdminState::Ready as u8),
            admin_changed: Notify::new(),
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
        // An operator's runtime weight wins over a changed configured one until they set it
        // back (see `set_weight`).
        if spec.weight != old.weight && !self.weight_set.load(Relaxed) {
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

    /// Whether the balancer may give it new connections: up, `ready`, weight above 0, not
    /// removed by a reload.
    pub fn is_available(&self) -> bool {
        self.is_up()
            && self.admin_state() == AdminState::Ready
            && self.weight() > 0
            && !self.is_removed()
    }

    /// The administrative state an operator set (`ready` unless one did).
    pub fn admin_state(&self) -> AdminState {
        AdminState::from_u8(self.admin.load(Relaxed))
    }

    /// Set the administrative state; returns the previous one. Open connections are never
    /// touched: `drain` and `maint` only stop new ones. Leaving `maint` restarts the
    /// slow-start ramp (the backend was out of the pool, as if it had been down), and the
    /// monitor checks at once before the balancer relies on an old result.
    pub fn set_admin_state(&self, state: AdminState, now: Instant) -> AdminState {
        let old = AdminState::from_u8(self.admin.swap(state as u8, Relaxed));
        if old != state {
            if old == AdminState::Maint && self.is_up() {
                self.up_since_ms
                    .store(millis_since(self.epoch, now), Relaxed);
            }
            self.admin_changed.notify_waiters();
        }
        old
    }

    /// Completes at the next change of the administrative state. As with
    /// [`Backend::interrupted`], enable it before looking at the state.
    pub fn admin_changed(&self) -> Notified<'_> {
        self.admin_changed.notified()
    }

    /// What an operator set at run time, to hand to a backend built anew by a reload.
    pub fn runtime_state(&self) -> RuntimeState {
        RuntimeState {
            admin: self.admin_state(),
            weight: self.weight_set.load(Relaxed).then(|| self.weight()),
        }
    }

    /// Apply what an operator set on the backend this one replaces (same service, same
    /// name). An operator's weight wins over a changed configured weight until they set
    /// another.
    pub fn restore_runtime_state(&self, state: RuntimeState, now: Instant) {
        self.set_admin_state(state.admin, now);
        if let Some(weight) = state.weight {
            self.set_weight(weight);
        }
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

    /// Runtime weight change (at most [`MAX_WEIGHT`]; larger values are capped); 0 takes no
    /// new connections. Returns the previous weight. Setting the configured weight again
    /// hands the weight back to the config: a reload that changes it then applies.
    pub fn set_weight(&self, weight: u32) -> u32 {
        let weight = weight.min(MAX_WEIGHT);
        self.weight_set.store(weight != self.spec().weight, Relaxed);
        self.weight.swap(weight, Relaxed)
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

/// A reload that builds its backends anew calls this with the old and the new backends of
/// one service: each new backend takes the runtime state of the old one with the same name
/// (HAProxy needs a `server-state-file` for this). Backends without a namesake start `ready`
/// with their configured weight.
pub fn carry_runtime_state(
    old: &[std::sync::Arc<Backend>],
    new: &[std::sync::Arc<Backend>],
    now: Instant,
) {
    for backend in new {
        if let Some(previous) = old.iter().find(|b| b.spec().name == backend.spec().name) {
            backend.restore_runtime_state(previous.runtime_state(), now);
        }
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
    async fn drain_and_maint_stop_new_connections_and_leaving_maint_ramps_again() {
        let epoch = Instant::now();
        let (backend, _) = Backend::new(spec(), epoch, false);
        assert!(backend.is_available());
        assert_eq!(
            backend.set_admin_state(AdminState::Drain, Instant::now()),
            AdminState::Ready
        );
        assert!(backend.is_up() && !backend.is_available());
        backend.set_admin_state(AdminState::Ready, Instant::now());
        assert!(backend.is_available());
        // Leaving drain does not restart slow start: the backend never left the pool's health.
        assert_eq!(backend.up_for(Instant::now()), Duration::MAX);
        backend.set_admin_state(AdminState::Maint, Instant::now());
        assert!(!backend.is_available());
        tokio::time::advance(Duration::from_secs(4)).await;
        backend.set_admin_state(AdminState::Ready, Instant::now());
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(backend.up_for(Instant::now()), Duration::from_secs(1));
        // A weight of 0 takes no new connections either.
        assert_eq!(backend.set_weight(0), 100);
        assert!(!backend.is_available());
        assert_eq!(backend.set_weight(u32::MAX), 0);
        assert_eq!(backend.weight(), MAX_WEIGHT);
    }

    #[tokio::test(start_paused = true)]
    async fn runtime_state_carries_over_to_a_backend_built_anew() {
        let epoch = Instant::now();
        let (old, _) = Backend::new(spec(), epoch, false);
        assert_eq!(
            old.runtime_state(),
            RuntimeState {
                admin: AdminState::Ready,
                weight: None
            }
        );
        old.set_admin_state(AdminState::Drain, Instant::now());
        old.set_weight(7);
        let (new, _) = Backend::new(spec(), epoch, false);
        new.restore_runtime_state(old.runtime_state(), Instant::now());
        assert_eq!(new.admin_state(), AdminState::Drain);
        assert_eq!(new.weight(), 7);
        // Set back to the configured weight: the config decides again.
        old.set_weight(100);
        assert_eq!(old.runtime_state().weight, None);
        // Nothing set: the new backend keeps its configured weight.
        let (plain, _) = Backend::new(spec(), epoch, false);
        let mut configured = spec();
        configured.weight = 40;
        let (reloaded, _) = Backend::new(configured, epoch, false);
        reloaded.restore_runtime_state(plain.runtime_state(), Instant::now());
        assert_eq!(reloaded.weight(), 40);
        assert_eq!("maint".parse::<AdminState>(), Ok(AdminState::Maint));
        assert!("down".parse::<AdminState>().is_err());
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
