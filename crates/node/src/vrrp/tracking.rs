//! Trackers: what moves an instance's priority (issue #5). One model for everything:
//! each tracker produces observations (good, bad, or unknown), a [`Debounce`] turns them into
//! a state with `rise`/`fall`, and the instances that track it get a new effective priority
//! (`havip_vrrp::priority::evaluate`, keepalived's rules) whenever a state changes.
//!
//! - In-process trackers read the balancer directly, every [`IN_PROCESS_PERIOD`]: `service`
//!   (enough backends up), `listener` (every listener accepting). No admin polling, no fork.
//! - `interface` asks netlink, `process` reads /proc, `file` reads a number: every `interval`.
//! - `script` runs a command every `interval`, never two at once; a run that times out is
//!   "unknown" unless `timeout_counts_as = "failure"`, so a loaded machine alone does not
//!   cause a failover.
//!
//! Damping against flapping has three layers, each a count of consecutive observations:
//! a backend's health check (`rise`/`fall`, HAProxy's 2/3 by default) decides whether it is
//! up; the tracker's own `rise`/`fall` decides whether the service is healthy; and on the
//! VRRP side `preempt_delay` (or `preempt = false`) decides whether a recovered node takes
//! the VIP back. A backend that flaps every second never fails `fall` checks in a row, so
//! it never reaches the tracker; the test `a_flapping_backend_does_not_move_the_vip` shows it.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use havip_proxy::service::Service;
use havip_vrrp::{TrackerState, Tracking};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::command::{self, Outcome};
use havip_config::vrrp::{MinHealthy, ProcessMatch, TrackerKind, TrackerSettings, VrrpSettings};

/// How often in-process trackers (and `interface`) look.
pub const IN_PROCESS_PERIOD: Duration = Duration::from_millis(100);

/// One observation of a tracker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observation {
    Good,
    Bad,
    /// Nothing learnt (a script that timed out): the state stays.
    Unknown,
    /// A `file` tracker's number.
    Value(i64),
}

/// Consecutive-observation damping (keepalived's and HAProxy's rise/fall).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Debounce {
    rise: u32,
    fall: u32,
    healthy: Option<bool>,
    streak: u32,
}

impl Debounce {
    pub fn new(rise: u32, fall: u32) -> Self {
        Debounce {
            rise: rise.max(1),
            fall: fall.max(1),
            healthy: None,
            streak: 0,
        }
    }

    /// The state, once known.
    pub fn healthy(&self) -> Option<bool> {
        self.healthy
    }

    /// Take one observation; returns true when the state changed. The first observation sets
    /// the state at once (there is nothing to damp yet).
    pub fn observe(&mut self, good: bool) -> bool {
        match self.healthy {
            None => {
                self.healthy = Some(good);
                self.streak = 0;
                true
            }
            Some(current) if current == good => {
                self.streak = 0;
                false
            }
            Some(_) => {
                self.streak += 1;
                let needed = if good { self.rise } else { self.fall };
                if self.streak >= needed {
                    self.healthy = Some(good);
                    self.streak = 0;
                    true
                } else {
                    false
                }
            }
        }
    }
}

/// The state of one tracker as the instances see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackerValue {
    /// Not observed yet: counts as healthy, so a node does not start in Fault before its
    /// first check ran.
    Pending,
    Healthy(bool),
    /// `file`: the number read (already known to be an integer).
    Number(i64),
}

/// The effective priority and fault of an instance from its trackers' values.
pub fn instance_tracking(
    instance: &VrrpSettings,
    trackers: &[TrackerSettings],
    values: &[TrackerValue],
) -> Tracking {
    let mut states = Vec::new();
    for reference in &instance.track {
        let Some(index) = trackers.iter().position(|t| t.name == reference.tracker) else {
            continue;
        };
        let weight = reference.weight.unwrap_or(trackers[index].weight);
        match values.get(index).copied().unwrap_or(TrackerValue::Pending) {
            TrackerValue::Pending => {}
            TrackerValue::Healthy(healthy) => states.push(TrackerState { weight, healthy }),
            // keepalived track_file: value × weight is added; a positive contribution counts
            // as a healthy positive weight, a negative one as a failing negative weight.
            TrackerValue::Number(value) => {
                let contribution = value.saturating_mul(i64::from(weight)).clamp(-254, 254) as i32;
                if contribution > 0 {
                    states.push(TrackerState {
                        weight: contribution,
                        healthy: true,
                    });
                } else if contribution < 0 {
                    states.push(TrackerState {
                        weight: contribution,
                        healthy: false,
                    });
                }
            }
        }
    }
    havip_vrrp::priority::evaluate(instance.priority, states)
}

/// Whether a service has enough backends up.
pub fn service_healthy(service: &Service, min: MinHealthy) -> bool {
    let primaries: Vec<_> = service.backends.iter().filter(|b| !b.spec.backup).collect();
    let up = primaries.iter().filter(|b| b.is_up()).count();
    match min {
        MinHealthy::Count(n) => up >= n as usize,
        MinHealthy::Fraction(f) => {
            let needed = (f * primaries.len() as f64).ceil().max(1.0) as usize;
            up >= needed
        }
    }
}

/// Whether a process with this name (the kernel's `comm`, as pgrep matches) runs.
pub fn process_running(name: &str) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    // comm is truncated to 15 bytes by the kernel.
    let wanted: String = name.chars().take(15).collect();
    entries.flatten().any(|entry| {
        let file_name = entry.file_name();
        let Some(pid) = file_name.to_str() else {
            return false;
        };
        if !pid.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
        std::fs::read_to_string(entry.path().join("comm"))
            .map(|comm| comm.trim_end() == wanted)
            .unwrap_or(false)
            && alive(&entry.path())
    })
}

/// Whether the process at `/proc/<pid>` is alive: it exists and is not a zombie (a dead
/// process its parent has not reaped still has a /proc entry).
fn alive(proc_dir: &Path) -> bool {
    let Ok(stat) = std::fs::read_to_string(proc_dir.join("stat")) else {
        return false;
    };
    // The state follows the command name, which is in parentheses and may contain spaces.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    !matches!(state, Some("Z") | Some("X") | None)
}

/// Whether the PID in `pidfile` is alive.
pub fn pidfile_alive(pidfile: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(pidfile) else {
        return false;
    };
    match text.trim().parse::<u32>() {
        Ok(pid) if pid > 0 => alive(&Path::new("/proc").join(pid.to_string())),
        _ => false,
    }
}

/// The number in a `file` tracker's file: unreadable or not a number counts as 0 (keepalived
/// does the same), with the reason logged by the caller.
pub fn read_number(path: &Path) -> Result<i64, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.split_whitespace()
        .next()
        .unwrap_or("0")
        .parse::<i64>()
        .map_err(|_| format!("{}: not an integer", path.display()))
}

/// A tracker's observation, sent to the tracking loop.
#[derive(Debug)]
struct Report {
    tracker: usize,
    observation: Observation,
}

/// Start the trackers of `trackers` for `instances`. `on_change(instance index, tracking)`
/// is called with each instance's first tracking and every change after.
pub fn spawn(
    trackers: Vec<TrackerSettings>,
    instances: Vec<VrrpSettings>,
    services: Vec<Arc<Service>>,
    on_change: mpsc::Sender<(usize, Tracking)>,
    stop: CancellationToken,
) {
    if trackers.is_empty() {
        return;
    }
    let (report_tx, report_rx) = mpsc::channel(256);
    for (index, tracker) in trackers.iter().enumerate() {
        let tracker = tracker.clone();
        let tx = report_tx.clone();
        let stop = stop.clone();
        let services = services.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = observe_forever(index, tracker, services, tx) => {}
                () = stop.cancelled() => {}
            }
        });
    }
    drop(report_tx);
    tokio::spawn(tracking_loop(trackers, instances, report_rx, on_change));
}

async fn tracking_loop(
    trackers: Vec<TrackerSettings>,
    instances: Vec<VrrpSettings>,
    mut reports: mpsc::Receiver<Report>,
    on_change: mpsc::Sender<(usize, Tracking)>,
) {
    let mut debounce: Vec<Debounce> = trackers
        .iter()
        .map(|t| Debounce::new(t.rise, t.fall))
        .collect();
    let mut values = vec![TrackerValue::Pending; trackers.len()];
    let mut sent: Vec<Option<Tracking>> = vec![None; instances.len()];
    while let Some(Report {
        tracker,
        observation,
    }) = reports.recv().await
    {
        let Some(settings) = trackers.get(tracker) else {
            continue;
        };
        let changed = match observation {
            Observation::Unknown => false,
            Observation::Value(n) => {
                let new = TrackerValue::Number(n);
                let changed = values[tracker] != new;
                if changed {
                    tracing::info!(tracker = %settings.name, value = n, "tracked file value changed");
                }
                values[tracker] = new;
                changed
            }
            Observation::Good | Observation::Bad => {
                let good = observation == Observation::Good;
                let changed = debounce[tracker].observe(good);
                if changed {
                    let healthy = debounce[tracker].healthy().unwrap_or(good);
                    values[tracker] = TrackerValue::Healthy(healthy);
                    if healthy {
                        tracing::info!(tracker = %settings.name, "tracker healthy");
                    } else {
                        tracing::warn!(tracker = %settings.name, weight = settings.weight, "tracker failing");
                    }
                }
                changed
            }
        };
        if !changed {
            continue;
        }
        for (i, instance) in instances.iter().enumerate() {
            if !instance.track.iter().any(|r| r.tracker == settings.name) {
                continue;
            }
            let tracking = instance_tracking(instance, &trackers, &values);
            if sent[i] != Some(tracking) {
                sent[i] = Some(tracking);
                tracing::info!(
                    instance = %instance.name,
                    priority = tracking.priority,
                    fault = tracking.fault,
                    "effective priority changed"
                );
                if on_change.send((i, tracking)).await.is_err() {
                    return;
                }
            }
        }
    }
}

async fn observe_forever(
    index: usize,
    tracker: TrackerSettings,
    services: Vec<Arc<Service>>,
    tx: mpsc::Sender<Report>,
) {
    let period = match &tracker.kind {
        TrackerKind::Service { .. }
        | TrackerKind::Listener { .. }
        | TrackerKind::Interface { .. } => IN_PROCESS_PERIOD,
        _ => tracker.interval,
    };
    let service = match &tracker.kind {
        TrackerKind::Service { service, .. } | TrackerKind::Listener { service } => {
            services.iter().find(|s| &s.spec.name == service).cloned()
        }
        _ => None,
    };
    let netlink = match &tracker.kind {
        TrackerKind::Interface { .. } => havip_sys::netlink::Netlink::open().ok(),
        _ => None,
    };
    let mut ticker = tokio::time::interval(period);
    // A slow script delays the next run instead of causing a burst of catch-up runs.
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_error: Option<String> = None;
    loop {
        ticker.tick().await;
        let observation = match &tracker.kind {
            TrackerKind::Service { min_healthy, .. } => match &service {
                Some(s) => good(service_healthy(s, *min_healthy)),
                None => Observation::Bad,
            },
            TrackerKind::Listener { .. } => match &service {
                Some(s) => good(s.stats.all_listeners_accepting(s.spec.listen.len())),
                None => Observation::Bad,
            },
            TrackerKind::Interface { interface } => match &netlink {
                Some(n) => match n.link_by_name(interface) {
                    Ok(Some(link)) => good(link.up),
                    Ok(None) => Observation::Bad,
                    Err(_) => Observation::Unknown,
                },
                None => Observation::Unknown,
            },
            TrackerKind::Process(ProcessMatch::Name(name)) => good(process_running(name)),
            TrackerKind::Process(ProcessMatch::Pidfile(path)) => good(pidfile_alive(path)),
            TrackerKind::File { path } => match read_number(path) {
                Ok(n) => {
                    last_error = None;
                    Observation::Value(n)
                }
                Err(why) => {
                    if last_error.as_ref() != Some(&why) {
                        tracing::warn!(tracker = %tracker.name, %why, "tracked file unreadable; counting 0");
                        last_error = Some(why);
                    }
                    Observation::Value(0)
                }
            },
            TrackerKind::Script {
                command,
                timeout,
                user,
                timeout_is_failure,
            } => {
                let (outcome, output) = command::run(command, &[], user.as_deref(), *timeout).await;
                match outcome {
                    Outcome::Exited(0) => Observation::Good,
                    Outcome::TimedOut if !timeout_is_failure => {
                        tracing::warn!(tracker = %tracker.name, timeout_ms = timeout.as_millis() as u64, "track script timed out; state unchanged (timeout_counts_as = \"unknown\")");
                        Observation::Unknown
                    }
                    other => {
                        tracing::debug!(tracker = %tracker.name, outcome = %other, %output, "track script failed");
                        Observation::Bad
                    }
                }
            }
        };
        if tx
            .send(Report {
                tracker: index,
                observation,
            })
            .await
            .is_err()
        {
            return;
        }
    }
}

fn good(ok: bool) -> Observation {
    if ok {
        Observation::Good
    } else {
        Observation::Bad
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use havip_config::vrrp::{CommandSpec, TrackRef};

    #[test]
    fn debounce_needs_rise_and_fall_in_a_row() {
        let mut d = Debounce::new(2, 3);
        assert!(d.observe(true), "the first observation sets the state");
        assert_eq!(d.healthy(), Some(true));
        assert!(!d.observe(false));
        assert!(!d.observe(false));
        assert!(!d.observe(true), "a good one breaks the streak");
        assert!(!d.observe(false));
        assert!(!d.observe(false));
        assert!(d.observe(false), "three in a row");
        assert_eq!(d.healthy(), Some(false));
        assert!(!d.observe(true));
        assert!(d.observe(true), "two in a row to rise");
    }

    #[test]
    fn alternating_observations_never_flip_a_damped_state() {
        let mut d = Debounce::new(2, 2);
        d.observe(true);
        for i in 0..100 {
            assert!(!d.observe(i % 2 == 0), "flapped at {i}");
        }
    }

    fn instance(priority: u8, track: Vec<TrackRef>) -> VrrpSettings {
        let text = format!(
            "[[vrrp]]\nname = \"v\"\ninterface = \"eth0\"\nvrid = 1\npriority = {priority}\nvirtual_addresses = [\"10.0.0.1\"]\n"
        );
        let mut config = havip_config::parse(Path::new("t.toml"), &text).unwrap();
        let mut v = config.vrrp.remove(0);
        v.track = track;
        v
    }

    fn tracker(name: &str, weight: i32) -> TrackerSettings {
        TrackerSettings {
            name: name.into(),
            weight,
            rise: 1,
            fall: 1,
            interval: Duration::from_secs(1),
            kind: TrackerKind::Script {
                command: CommandSpec::Argv(vec!["/bin/true".into()]),
                timeout: Duration::from_secs(1),
                user: None,
                timeout_is_failure: false,
            },
        }
    }

    fn track(name: &str, weight: Option<i32>) -> TrackRef {
        TrackRef {
            tracker: name.into(),
            weight,
        }
    }

    #[test]
    fn weights_follow_keepalived_and_overrides_apply() {
        let trackers = vec![tracker("a", -30), tracker("b", 0), tracker("f", 2)];
        let v = instance(
            100,
            vec![track("a", None), track("b", None), track("f", None)],
        );
        let values = [
            TrackerValue::Healthy(false),
            TrackerValue::Healthy(true),
            TrackerValue::Number(5),
        ];
        assert_eq!(
            instance_tracking(&v, &trackers, &values),
            Tracking {
                priority: 80,
                fault: false
            }
        );
        let values = [
            TrackerValue::Healthy(true),
            TrackerValue::Healthy(false),
            TrackerValue::Number(-100),
        ];
        assert_eq!(
            instance_tracking(&v, &trackers, &values),
            Tracking {
                priority: 1,
                fault: true
            }
        );
        let v = instance(100, vec![track("a", Some(-60))]);
        assert_eq!(
            instance_tracking(&v, &trackers, &[TrackerValue::Healthy(false)]).priority,
            40
        );
        // Not observed yet: no effect.
        assert_eq!(
            instance_tracking(&v, &trackers, &[TrackerValue::Pending]).priority,
            100
        );
    }

    #[test]
    fn files_hold_numbers_and_pidfiles_pids() {
        let dir = std::env::temp_dir().join(format!("havip-track-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("value");
        std::fs::write(&file, "-7\n").unwrap();
        assert_eq!(read_number(&file), Ok(-7));
        std::fs::write(&file, "x").unwrap();
        assert!(read_number(&file).is_err());
        let pidfile = dir.join("pid");
        std::fs::write(&pidfile, format!("{}\n", std::process::id())).unwrap();
        assert!(pidfile_alive(&pidfile));
        std::fs::write(&pidfile, "999999999\n").unwrap();
        assert!(!pidfile_alive(&pidfile));
        std::fs::remove_dir_all(&dir).unwrap();
        // This test binary runs; its comm is the first 15 bytes of its file name.
        let comm = std::fs::read_to_string("/proc/self/comm").unwrap();
        assert!(process_running(comm.trim_end()));
        assert!(!process_running("no-such-process-havip"));
    }
}
