//! The health state machine of one backend, as plain values: no I/O, no clock of its own.
//!
//! The backend's monitor task (see [`super::monitor`]) owns one [`HealthMachine`], feeds it every
//! active check result and every passive connect failure together with the current time, and
//! publishes the [`Transition`]s it returns. It also asks the machine how long to wait before
//! the next check ([`HealthMachine::next_interval`]) and, when only passive health is configured,
//! when a passively downed backend may be tried again ([`HealthMachine::wake_at`] / [`HealthMachine::poll`]).
//!
//! Rules (HAProxy for active checks, nginx for passive ones):
//! - A backend starts up but on probation: the first failed check marks it down at once
//!   (HAProxy starts a server's health counter at `rise`, one step above down). The first
//!   passing check ends probation; from then on `fall` consecutive failures are needed.
//! - An up backend goes down after `fall` consecutive failed checks; a down backend comes up
//!   after `rise` consecutive passing checks. Counting is strictly consecutive (a pass resets
//!   the failure count and vice versa), unlike HAProxy's counter that climbs back one step per
//!   pass; strict counting is easier to reason about and to explain in a log line.
//! - Passive: `max_fails` connect failures within `fail_timeout` mark an up backend down
//!   (`max_fails == 0` disables this). With active checks it then needs `rise` passing checks
//!   like any down backend; without them it is up again `fail_timeout` after it went down,
//!   as nginx tries a server again after `fail_timeout`.

use std::fmt;
use std::time::Duration;

use tokio::time::Instant;

use crate::backend::Health;
use havip_config::service::{HealthSpec, PassiveSpec};

/// A change of a backend's health, with the reason a human reads in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The state left.
    pub from: Health,
    /// The state entered, which the monitor publishes on the backend.
    pub to: Health,
    /// Why, for the log line and the status API.
    pub reason: Reason,
}

/// Why a backend changed state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// The first check since start failed, ending probation.
    FirstCheckFailed {
        /// Why the check failed, as the log shows it.
        last: String,
    },
    /// `count` checks in a row failed; `last` says why the last one did.
    ChecksFailed {
        /// Consecutive failed checks: the `fall` setting.
        count: u32,
        /// Why the last check failed, as the log shows it.
        last: String,
    },
    /// `count` checks in a row passed.
    ChecksPassed {
        /// Consecutive passing checks: the `rise` setting.
        count: u32,
    },
    /// `count` client connects failed within `window` (passive health).
    ConnectFailures {
        /// Failed connects counted: at least `max_fails`.
        count: u32,
        /// The `fail_timeout` window they fell in.
        window: Duration,
    },
    /// Without active checks: `fail_timeout` has passed since connect failures marked the
    /// backend down, so it is tried again.
    FailTimeoutElapsed {
        /// The `fail_timeout` that elapsed.
        after: Duration,
    },
    /// A reload turned active checks off while they held the backend down.
    ChecksTurnedOff,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::FirstCheckFailed { last } => write!(f, "first check failed: {last}"),
            Reason::ChecksFailed { count: 1, last } => write!(f, "1 check failed: {last}"),
            Reason::ChecksFailed { count, last } => {
                write!(f, "{count} consecutive checks failed, last: {last}")
            }
            Reason::ChecksPassed { count: 1 } => write!(f, "1 check passed"),
            Reason::ChecksPassed { count } => write!(f, "{count} consecutive checks passed"),
            Reason::ConnectFailures { count, window } => {
                let plural = if *count == 1 { "" } else { "s" };
                write!(f, "{count} connect failure{plural} in {}", Secs(*window))
            }
            Reason::FailTimeoutElapsed { after } => write!(
                f,
                "fail_timeout {} elapsed since connect failures marked it down",
                Secs(*after)
            ),
            Reason::ChecksTurnedOff => f.write_str("active checks turned off by a reload"),
        }
    }
}

/// Formats a duration the way the config writes it: "10s", "500ms", "1.5s".
struct Secs(Duration);

impl fmt::Display for Secs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let duration = self.0;
        if duration.subsec_nanos() == 0 {
            write!(f, "{}s", duration.as_secs())
        } else if duration < Duration::from_secs(1) && duration.subsec_nanos() % 1_000_000 == 0 {
            write!(f, "{}ms", duration.as_millis())
        } else {
            write!(f, "{:?}", duration)
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Up since start with no check result yet: the first failed check marks it down.
    Probation,
    /// Up; `failures` checks in a row have failed (fewer than `fall`).
    Up { failures: u32 },
    /// Down; `successes` checks in a row have passed (fewer than `rise`).
    Down { cause: DownCause, successes: u32 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DownCause {
    Checks,
    /// Connect failures marked it down at `since`.
    Passive {
        since: Instant,
    },
}

/// Health state of one backend; see the module docs for the rules.
#[derive(Debug, Clone)]
pub struct HealthMachine {
    /// Active checks run; decides how a passively downed backend comes back.
    active: bool,
    rise: u32,
    fall: u32,
    interval: Duration,
    fast_interval: Duration,
    down_interval: Duration,
    passive: PassiveSpec,
    state: State,
    /// Times of recent connect failures that still count (within `fail_timeout`).
    connect_failures: Vec<Instant>,
    /// When the backend last came up: failures that happened before are from an earlier
    /// up period (reported late through the queue) and do not count against this one.
    up_since: Option<Instant>,
}

impl HealthMachine {
    /// The machine of a backend that starts up, on probation. `active` says whether active
    /// checks will be fed to it (the monitor has a probe); the spec's intervals, `rise` and
    /// `fall` matter only then. `rise`/`fall` of 0 are treated as 1.
    pub fn new(spec: &HealthSpec, passive: PassiveSpec, active: bool) -> Self {
        HealthMachine {
            active,
            rise: spec.rise.max(1),
            fall: spec.fall.max(1),
            interval: spec.interval,
            fast_interval: spec.fast_interval,
            down_interval: spec.down_interval,
            passive,
            state: State::Probation,
            connect_failures: Vec::new(),
            up_since: None,
        }
    }

    /// The machine of a backend a reload added: with active checks it starts down and comes
    /// up after `rise` passing checks (nothing is known of it yet); without, it is up.
    pub fn new_added(spec: &HealthSpec, passive: PassiveSpec, active: bool) -> Self {
        let mut machine = HealthMachine::new(spec, passive, active);
        if active {
            machine.state = State::Down {
                cause: DownCause::Checks,
                successes: 0,
            };
        }
        machine
    }

    /// New settings from a reload. The health and the counts so far are kept (a backend that
    /// was up stays up, with no new probation); the new `rise` and `fall` apply from the next
    /// result. Turning active checks off brings back a backend that checks held down, since
    /// nothing would ever bring it back otherwise.
    pub fn reconfigure(
        &mut self,
        spec: &HealthSpec,
        passive: PassiveSpec,
        active: bool,
        now: Instant,
    ) -> Option<Transition> {
        self.rise = spec.rise.max(1);
        self.fall = spec.fall.max(1);
        self.interval = spec.interval;
        self.fast_interval = spec.fast_interval;
        self.down_interval = spec.down_interval;
        self.passive = passive;
        self.active = active;
        match self.state {
            State::Down {
                cause: DownCause::Checks,
                ..
            } if !active => Some(self.come_up(now, Reason::ChecksTurnedOff)),
            _ => None,
        }
    }

    /// The backend's health by these rules; on probation it counts as up.
    pub fn health(&self) -> Health {
        match self.state {
            State::Probation | State::Up { .. } => Health::Up,
            State::Down { .. } => Health::Down,
        }
    }

    /// Record a passing active check completed at `now`.
    pub fn check_passed(&mut self, now: Instant) -> Option<Transition> {
        match self.state {
            State::Probation | State::Up { .. } => {
                self.state = State::Up { failures: 0 };
                None
            }
            State::Down { cause, successes } => {
                let successes = successes + 1;
                if successes < self.rise {
                    self.state = State::Down { cause, successes };
                    return None;
                }
                Some(self.come_up(now, Reason::ChecksPassed { count: successes }))
            }
        }
    }

    /// Record a failed active check; `why` is the check error as the log should show it.
    pub fn check_failed(&mut self, why: &str) -> Option<Transition> {
        match self.state {
            State::Probation => Some(self.go_down(
                DownCause::Checks,
                Reason::FirstCheckFailed {
                    last: why.to_owned(),
                },
            )),
            State::Up { failures } => {
                let failures = failures + 1;
                if failures < self.fall {
                    self.state = State::Up { failures };
                    return None;
                }
                Some(self.go_down(
                    DownCause::Checks,
                    Reason::ChecksFailed {
                        count: failures,
                        last: why.to_owned(),
                    },
                ))
            }
            State::Down { cause, .. } => {
                self.state = State::Down {
                    cause,
                    successes: 0,
                };
                None
            }
        }
    }

    /// Record a client connect failure that happened at `at`, reported at `now`.
    pub fn connect_failed(&mut self, at: Instant, now: Instant) -> Option<Transition> {
        if self.passive.max_fails == 0 || self.health() == Health::Down {
            return None;
        }
        if self.up_since.is_some_and(|since| at < since) {
            return None;
        }
        let window = self.passive.fail_timeout;
        self.connect_failures.push(at);
        self.connect_failures
            .retain(|failed_at| now.saturating_duration_since(*failed_at) < window);
        let count = self.connect_failures.len() as u32;
        if count < self.passive.max_fails {
            return None;
        }
        Some(self.go_down(
            DownCause::Passive { since: now },
            Reason::ConnectFailures { count, window },
        ))
    }

    /// Without active checks, a passively downed backend comes back `fail_timeout` after it
    /// went down; call this at (or after) [`HealthMachine::wake_at`].
    pub fn poll(&mut self, now: Instant) -> Option<Transition> {
        let since = self.passive_recovery_from()?;
        let after = self.passive.fail_timeout;
        if now < since + after {
            return None;
        }
        Some(self.come_up(now, Reason::FailTimeoutElapsed { after }))
    }

    /// When [`HealthMachine::poll`] will next have something to do, if ever.
    pub fn wake_at(&self) -> Option<Instant> {
        self.passive_recovery_from()
            .map(|since| since + self.passive.fail_timeout)
    }

    /// Time to wait before the next active check: `interval` while stably up, `fast_interval`
    /// while a change is pending, `down_interval` while down with no pass yet.
    pub fn next_interval(&self) -> Duration {
        match self.state {
            State::Probation | State::Up { failures: 0 } => self.interval,
            State::Up { .. } => self.fast_interval,
            State::Down { successes: 0, .. } => self.down_interval,
            State::Down { .. } => self.fast_interval,
        }
    }

    fn passive_recovery_from(&self) -> Option<Instant> {
        match self.state {
            State::Down {
                cause: DownCause::Passive { since },
                ..
            } if !self.active => Some(since),
            _ => None,
        }
    }

    fn go_down(&mut self, cause: DownCause, reason: Reason) -> Transition {
        self.state = State::Down {
            cause,
            successes: 0,
        };
        self.connect_failures.clear();
        Transition {
            from: Health::Up,
            to: Health::Down,
            reason,
        }
    }

    fn come_up(&mut self, now: Instant, reason: Reason) -> Transition {
        self.state = State::Up { failures: 0 };
        self.up_since = Some(now);
        self.connect_failures.clear();
        Transition {
            from: Health::Down,
            to: Health::Up,
            reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use havip_config::service::CheckKind;

    const MS: Duration = Duration::from_millis(1);

    fn spec(rise: u32, fall: u32) -> HealthSpec {
        HealthSpec {
            check: Some(CheckKind::Tcp),
            interval: 2000 * MS,
            fast_interval: 500 * MS,
            down_interval: 3000 * MS,
            timeout: 1000 * MS,
            rise,
            fall,
            port: None,
        }
    }

    fn no_passive() -> PassiveSpec {
        PassiveSpec {
            max_fails: 0,
            fail_timeout: Duration::from_secs(10),
        }
    }

    fn passive(max_fails: u32, secs: u64) -> PassiveSpec {
        PassiveSpec {
            max_fails,
            fail_timeout: Duration::from_secs(secs),
        }
    }

    fn down(reason: Reason) -> Option<Transition> {
        Some(Transition {
            from: Health::Up,
            to: Health::Down,
            reason,
        })
    }

    fn up(reason: Reason) -> Option<Transition> {
        Some(Transition {
            from: Health::Down,
            to: Health::Up,
            reason,
        })
    }

    /// A machine that has passed its first check (probation over).
    fn settled(rise: u32, fall: u32, now: Instant) -> HealthMachine {
        let mut machine = HealthMachine::new(&spec(rise, fall), no_passive(), true);
        assert_eq!(machine.check_passed(now), None);
        machine
    }

    #[test]
    fn starts_up_and_first_failure_marks_down() {
        let mut machine = HealthMachine::new(&spec(2, 3), no_passive(), true);
        assert_eq!(machine.health(), Health::Up);
        assert_eq!(
            machine.check_failed("connection refused"),
            down(Reason::FirstCheckFailed {
                last: "connection refused".into()
            })
        );
        assert_eq!(machine.health(), Health::Down);
    }

    #[test]
    fn first_pass_ends_probation() {
        let now = Instant::now();
        let mut machine = settled(2, 3, now);
        assert_eq!(machine.check_failed("x"), None);
        assert_eq!(machine.check_failed("x"), None);
        assert_eq!(machine.health(), Health::Up);
    }

    #[test]
    fn fall_consecutive_failures_mark_down() {
        let now = Instant::now();
        let mut machine = settled(2, 3, now);
        assert_eq!(machine.check_failed("a"), None);
        assert_eq!(machine.check_failed("b"), None);
        assert_eq!(
            machine.check_failed("HTTP status 500"),
            down(Reason::ChecksFailed {
                count: 3,
                last: "HTTP status 500".into()
            })
        );
        assert_eq!(machine.health(), Health::Down);
    }

    #[test]
    fn a_pass_resets_the_failure_count() {
        let now = Instant::now();
        let mut machine = settled(2, 3, now);
        assert_eq!(machine.check_failed("a"), None);
        assert_eq!(machine.check_failed("b"), None);
        assert_eq!(machine.check_passed(now), None);
        assert_eq!(machine.check_failed("c"), None);
        assert_eq!(machine.check_failed("d"), None);
        assert_eq!(machine.health(), Health::Up);
        assert!(machine.check_failed("e").is_some());
    }

    #[test]
    fn rise_consecutive_passes_mark_up_and_a_failure_resets_them() {
        let now = Instant::now();
        let mut machine = HealthMachine::new(&spec(3, 2), no_passive(), true);
        assert!(machine.check_failed("refused").is_some());
        assert_eq!(machine.check_passed(now), None);
        assert_eq!(machine.check_passed(now), None);
        assert_eq!(machine.check_failed("refused"), None);
        assert_eq!(machine.check_passed(now), None);
        assert_eq!(machine.check_passed(now), None);
        assert_eq!(machine.health(), Health::Down);
        assert_eq!(
            machine.check_passed(now),
            up(Reason::ChecksPassed { count: 3 })
        );
        assert_eq!(machine.health(), Health::Up);
    }

    #[test]
    fn rise_and_fall_of_one() {
        let now = Instant::now();
        let mut machine = settled(1, 1, now);
        assert_eq!(
            machine.check_failed("x"),
            down(Reason::ChecksFailed {
                count: 1,
                last: "x".into()
            })
        );
        assert_eq!(
            machine.check_passed(now),
            up(Reason::ChecksPassed { count: 1 })
        );
    }

    #[test]
    fn zero_rise_and_fall_count_as_one() {
        let now = Instant::now();
        let mut machine = settled(0, 0, now);
        assert!(machine.check_failed("x").is_some());
        assert!(machine.check_passed(now).is_some());
    }

    #[test]
    fn interval_in_each_state() {
        let now = Instant::now();
        let mut machine = HealthMachine::new(&spec(2, 3), no_passive(), true);
        // Probation counts as stable up.
        assert_eq!(machine.next_interval(), 2000 * MS);
        machine.check_passed(now);
        assert_eq!(machine.next_interval(), 2000 * MS);
        // A failure makes a change pending.
        machine.check_failed("x");
        assert_eq!(machine.next_interval(), 500 * MS);
        machine.check_failed("x");
        assert_eq!(machine.next_interval(), 500 * MS);
        // Down with no pass yet.
        machine.check_failed("x");
        assert_eq!(machine.health(), Health::Down);
        assert_eq!(machine.next_interval(), 3000 * MS);
        // A pass while down makes a change pending.
        machine.check_passed(now);
        assert_eq!(machine.next_interval(), 500 * MS);
        // A failure while down resets to down_interval.
        machine.check_failed("x");
        assert_eq!(machine.next_interval(), 3000 * MS);
        machine.check_passed(now);
        machine.check_passed(now);
        assert_eq!(machine.health(), Health::Up);
        assert_eq!(machine.next_interval(), 2000 * MS);
    }

    #[test]
    fn passive_failures_within_the_window_mark_down() {
        let t0 = Instant::now();
        let mut machine = HealthMachine::new(&spec(2, 3), passive(3, 10), true);
        assert_eq!(machine.connect_failed(t0, t0), None);
        assert_eq!(machine.connect_failed(t0 + 4000 * MS, t0 + 4000 * MS), None);
        assert_eq!(
            machine.connect_failed(t0 + 9999 * MS, t0 + 9999 * MS),
            down(Reason::ConnectFailures {
                count: 3,
                window: Duration::from_secs(10)
            })
        );
        assert_eq!(machine.health(), Health::Down);
    }

    #[test]
    fn passive_failures_older_than_fail_timeout_do_not_count() {
        let t0 = Instant::now();
        let mut machine = HealthMachine::new(&spec(2, 3), passive(3, 10), true);
        assert_eq!(machine.connect_failed(t0, t0), None);
        assert_eq!(machine.connect_failed(t0 + 5000 * MS, t0 + 5000 * MS), None);
        // The first failure is exactly fail_timeout old now: it no longer counts.
        assert_eq!(
            machine.connect_failed(t0 + 10_000 * MS, t0 + 10_000 * MS),
            None
        );
        assert_eq!(machine.health(), Health::Up);
        assert!(machine
            .connect_failed(t0 + 10_001 * MS, t0 + 10_001 * MS)
            .is_some());
    }

    #[test]
    fn late_reported_failure_is_judged_by_when_it_happened() {
        let t0 = Instant::now();
        let mut machine = HealthMachine::new(&spec(2, 3), passive(2, 10), true);
        assert_eq!(machine.connect_failed(t0, t0), None);
        // Happened at t0 + 1s, reported 12 s later: the t0 failure is out of the window.
        assert_eq!(
            machine.connect_failed(t0 + 1000 * MS, t0 + 10_500 * MS),
            None
        );
    }

    #[test]
    fn max_fails_zero_disables_passive() {
        let t0 = Instant::now();
        let mut machine = HealthMachine::new(&spec(2, 3), passive(0, 10), true);
        for i in 0..100 {
            assert_eq!(machine.connect_failed(t0 + i * MS, t0 + i * MS), None);
        }
        assert_eq!(machine.health(), Health::Up);
    }

    #[test]
    fn passive_down_with_active_checks_needs_rise_passes() {
        let t0 = Instant::now();
        let mut machine = HealthMachine::new(&spec(2, 3), passive(1, 10), true);
        assert!(machine.connect_failed(t0, t0).is_some());
        // No timed recovery when checks run.
        assert_eq!(machine.wake_at(), None);
        assert_eq!(machine.poll(t0 + Duration::from_secs(60)), None);
        assert_eq!(machine.health(), Health::Down);
        assert_eq!(machine.next_interval(), 3000 * MS);
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(machine.check_passed(t1), None);
        assert_eq!(
            machine.check_passed(t1),
            up(Reason::ChecksPassed { count: 2 })
        );
    }

    #[test]
    fn passive_down_without_active_checks_returns_after_fail_timeout() {
        let t0 = Instant::now();
        let mut machine = HealthMachine::new(&spec(2, 3), passive(2, 10), false);
        assert_eq!(machine.wake_at(), None);
        assert_eq!(machine.connect_failed(t0, t0), None);
        let t1 = t0 + 100 * MS;
        assert!(machine.connect_failed(t1, t1).is_some());
        let back = t1 + Duration::from_secs(10);
        assert_eq!(machine.wake_at(), Some(back));
        assert_eq!(machine.poll(back - MS), None);
        assert_eq!(machine.health(), Health::Down);
        assert_eq!(
            machine.poll(back),
            up(Reason::FailTimeoutElapsed {
                after: Duration::from_secs(10)
            })
        );
        assert_eq!(machine.health(), Health::Up);
        assert_eq!(machine.wake_at(), None);
    }

    #[test]
    fn failures_from_before_coming_up_do_not_count() {
        let t0 = Instant::now();
        let mut machine = HealthMachine::new(&spec(2, 3), passive(1, 10), false);
        assert!(machine.connect_failed(t0, t0).is_some());
        let back = t0 + Duration::from_secs(10);
        assert!(machine.poll(back).is_some());
        // Happened while it was down (reported late): ignored.
        assert_eq!(machine.connect_failed(back - MS, back + MS), None);
        assert_eq!(machine.health(), Health::Up);
        // A fresh one counts.
        assert!(machine.connect_failed(back + MS, back + MS).is_some());
    }

    #[test]
    fn connect_failures_while_down_are_ignored_and_do_not_carry_over() {
        let t0 = Instant::now();
        let mut machine = HealthMachine::new(&spec(1, 3), passive(2, 10), true);
        assert!(machine.check_failed("refused").is_some());
        assert_eq!(machine.connect_failed(t0, t0), None);
        assert_eq!(machine.connect_failed(t0, t0), None);
        let t1 = t0 + MS;
        assert!(machine.check_passed(t1).is_some());
        // The two failures while down were not kept: one more is not enough.
        assert_eq!(machine.connect_failed(t1 + MS, t1 + MS), None);
        assert_eq!(machine.health(), Health::Up);
    }

    #[test]
    fn reasons_read_well() {
        let cases = [
            (
                Reason::ChecksFailed {
                    count: 3,
                    last: "HTTP status 500".into(),
                },
                "3 consecutive checks failed, last: HTTP status 500",
            ),
            (
                Reason::FirstCheckFailed {
                    last: "connection refused".into(),
                },
                "first check failed: connection refused",
            ),
            (
                Reason::ChecksPassed { count: 2 },
                "2 consecutive checks passed",
            ),
            (Reason::ChecksPassed { count: 1 }, "1 check passed"),
            (
                Reason::ConnectFailures {
                    count: 3,
                    window: Duration::from_secs(10),
                },
                "3 connect failures in 10s",
            ),
            (
                Reason::ConnectFailures {
                    count: 1,
                    window: 500 * MS,
                },
                "1 connect failure in 500ms",
            ),
            (
                Reason::FailTimeoutElapsed {
                    after: Duration::from_secs(10),
                },
                "fail_timeout 10s elapsed since connect failures marked it down",
            ),
        ];
        for (reason, text) in cases {
            assert_eq!(reason.to_string(), text);
        }
    }
}
