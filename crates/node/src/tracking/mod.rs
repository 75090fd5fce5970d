//! Trackers: what moves an instance's priority (issue #5). One model for everything:
//! each tracker produces observations (good, bad, or unknown), a [`Debounce`] turns them into
//! a state with `rise`/`fall`, and the instances that track it get a new effective priority
//! (`havip_vrrp::priority::evaluate`, keepalived's rules) whenever a state changes.
//!
//! - In-process trackers read the balancer directly, every [`IN_PROCESS_PERIOD`]: `service`
//!   (enough backends up), `listener` (every listener accepting). No admin polling, no fork.
//! - `interface` follows the node's netlink monitor (no polling), repeating its state every
//!   [`IN_PROCESS_PERIOD`] so that `rise`/`fall` mean the same as for the others.
//! - `process` walks /proc, `file` reads a number: every `interval`, off the async threads.
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

pub mod observe;

use std::sync::Arc;
use std::time::Duration;

use havip_config::vrrp::{TrackerSettings, VrrpSettings};
use havip_proxy::ServiceTable;
use havip_vrrp::{TrackerState, Tracking};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use crate::vrrp::monitor::LinkStates;
pub use observe::{pidfile_alive, process_running, read_number, service_healthy};

/// How often in-process trackers (and `interface`) look.
pub const IN_PROCESS_PERIOD: Duration = Duration::from_millis(100);

/// One observation of a tracker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observation {
    /// The tracked object is fine (check passed, process running, link up).
    Good,
    /// The tracked object failed.
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
    /// A damper that needs `rise` good or `fall` bad observations in a row to change state;
    /// 0 counts as 1.
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
    /// The debounced state: whether the tracker counts as healthy.
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
        let Some(index) = trackers
            .iter()
            .position(|tracker| tracker.name == reference.tracker)
        else {
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

/// A tracker's observation, sent to the tracking loop.
#[derive(Debug)]
pub struct Report {
    /// The observer's id (see [`Tracked::id`]); reports of a tracker a reload replaced are
    /// ignored.
    pub tracker: u64,
    /// What it saw.
    pub observation: Observation,
}

/// What the trackers of a node work from.
pub struct Inputs {
    /// The configured trackers.
    pub trackers: Vec<TrackerSettings>,
    /// The VRRP instances whose priorities they move.
    pub instances: Vec<VrrpSettings>,
    /// The node's services, read in-process (the current generations, across reloads).
    pub services: Arc<ServiceTable>,
    /// Link changes from the node's netlink monitor.
    pub links: watch::Receiver<LinkStates>,
}

/// The running trackers, for a reload.
#[derive(Debug, Clone)]
pub struct TrackingHandle {
    reloads: mpsc::Sender<(Inputs, oneshot::Sender<Vec<Tracking>>)>,
}

impl std::fmt::Debug for Inputs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inputs")
            .field("trackers", &self.trackers)
            .field("instances", &self.instances)
            .finish_non_exhaustive()
    }
}

impl TrackingHandle {
    /// New trackers and instances: trackers with the same name and settings keep their state
    /// and observer, others start afresh or stop. Answers with every instance's tracking now
    /// (in `inputs.instances` order), which the caller hands to the instances with their new
    /// settings; `on_change` only reports changes after that.
    pub async fn reload(&self, inputs: Inputs) -> Option<Vec<Tracking>> {
        let (reply, answer) = oneshot::channel();
        self.reloads.send((inputs, reply)).await.ok()?;
        answer.await.ok()
    }
}

/// Start the trackers for the instances. `on_change` receives (instance name, tracking)
/// with each instance's first tracking and every change after.
pub fn spawn(
    inputs: Inputs,
    on_change: mpsc::Sender<(String, Tracking)>,
    stop: CancellationToken,
) -> TrackingHandle {
    let (report_tx, reports) = mpsc::channel(256);
    let (reloads_tx, reloads) = mpsc::channel(4);
    let mut task = TrackingTask {
        trackers: Vec::new(),
        instances: Vec::new(),
        sent: Vec::new(),
        next_id: 0,
        report_tx,
        stop: stop.clone(),
        on_change,
    };
    task.replace(inputs);
    tokio::spawn(async move {
        tokio::select! {
            () = task.run(reports, reloads) => {}
            () = stop.cancelled() => {}
        }
    });
    TrackingHandle {
        reloads: reloads_tx,
    }
}

/// One running tracker: its settings, its damped state and its observer task.
#[derive(Debug)]
pub struct Tracked {
    settings: TrackerSettings,
    /// Tells its reports apart from those of a tracker a reload replaced.
    id: u64,
    debounce: Debounce,
    value: TrackerValue,
    observer: tokio::task::JoinHandle<()>,
}

struct TrackingTask {
    trackers: Vec<Tracked>,
    instances: Vec<VrrpSettings>,
    /// The tracking last sent to each instance (by name).
    sent: Vec<(String, Tracking)>,
    next_id: u64,
    report_tx: mpsc::Sender<Report>,
    stop: CancellationToken,
    on_change: mpsc::Sender<(String, Tracking)>,
    // The services and links of the latest inputs live in the observers.
}

impl TrackingTask {
    async fn run(
        &mut self,
        mut reports: mpsc::Receiver<Report>,
        mut reloads: mpsc::Receiver<(Inputs, oneshot::Sender<Vec<Tracking>>)>,
    ) {
        loop {
            tokio::select! {
                report = reports.recv() => match report {
                    Some(report) => {
                        if !self.on_report(report).await {
                            return;
                        }
                    }
                    None => return,
                },
                reload = reloads.recv() => match reload {
                    Some((inputs, reply)) => {
                        let trackings = self.replace(inputs);
                        let _ = reply.send(trackings);
                    }
                    None => std::future::pending::<()>().await,
                },
            }
        }
    }

    /// Take new inputs (at start, and on a reload); returns every instance's tracking now.
    fn replace(&mut self, inputs: Inputs) -> Vec<Tracking> {
        let sources = observe::Sources {
            services: inputs.services,
            links: inputs.links,
        };
        let mut old = std::mem::take(&mut self.trackers);
        for settings in inputs.trackers {
            match old.iter().position(|t| t.settings == settings) {
                Some(kept) => self.trackers.push(old.swap_remove(kept)),
                None => {
                    let id = self.next_id;
                    self.next_id += 1;
                    let observing = observe::observe_forever(
                        id,
                        settings.clone(),
                        sources.clone(),
                        self.report_tx.clone(),
                    );
                    let stop = self.stop.clone();
                    let observer = tokio::spawn(async move {
                        tokio::select! {
                            () = observing => {}
                            () = stop.cancelled() => {}
                        }
                    });
                    self.trackers.push(Tracked {
                        debounce: Debounce::new(settings.rise, settings.fall),
                        settings,
                        id,
                        value: TrackerValue::Pending,
                        observer,
                    });
                }
            }
        }
        for gone in old {
            tracing::info!(tracker = %gone.settings.name, "tracker removed");
            gone.observer.abort();
        }
        self.instances = inputs.instances;
        let trackings: Vec<Tracking> = self
            .instances
            .iter()
            .map(|instance| self.tracking_of(instance))
            .collect();
        self.sent = self
            .instances
            .iter()
            .zip(&trackings)
            .map(|(instance, tracking)| (instance.name.clone(), *tracking))
            .collect();
        trackings
    }

    fn tracking_of(&self, instance: &VrrpSettings) -> Tracking {
        let settings: Vec<TrackerSettings> =
            self.trackers.iter().map(|t| t.settings.clone()).collect();
        let values: Vec<TrackerValue> = self.trackers.iter().map(|t| t.value).collect();
        instance_tracking(instance, &settings, &values)
    }

    /// Apply one report; false once nobody listens for changes any more.
    async fn on_report(&mut self, report: Report) -> bool {
        let Some(tracked) = self.trackers.iter_mut().find(|t| t.id == report.tracker) else {
            return true; // from a tracker a reload replaced
        };
        if !tracked.observe(report.observation) {
            return true;
        }
        let name = tracked.settings.name.clone();
        let instances: Vec<VrrpSettings> = self
            .instances
            .iter()
            .filter(|instance| instance.track.iter().any(|r| r.tracker == name))
            .cloned()
            .collect();
        for instance in instances {
            let tracking = self.tracking_of(&instance);
            let Some(slot) = self.sent.iter_mut().find(|(n, _)| *n == instance.name) else {
                continue;
            };
            if slot.1 == tracking {
                continue;
            }
            slot.1 = tracking;
            tracing::info!(
                instance = %instance.name,
                priority = tracking.priority,
                fault = tracking.fault,
                "effective priority changed"
            );
            if self
                .on_change
                .send((instance.name.clone(), tracking))
                .await
                .is_err()
            {
                return false;
            }
        }
        true
    }
}

impl Tracked {
    /// Take one observation; true when the tracker's value changed.
    fn observe(&mut self, observation: Observation) -> bool {
        let settings = &self.settings;
        match observation {
            Observation::Unknown => false,
            Observation::Value(value) => {
                let new = TrackerValue::Number(value);
                let changed = self.value != new;
                if changed {
                    tracing::info!(tracker = %settings.name, value, "tracked file value changed");
                }
                self.value = new;
                changed
            }
            Observation::Good | Observation::Bad => {
                let good = observation == Observation::Good;
                let changed = self.debounce.observe(good);
                if changed {
                    let healthy = self.debounce.healthy().unwrap_or(good);
                    self.value = TrackerValue::Healthy(healthy);
                    if healthy {
                        tracing::info!(tracker = %settings.name, "tracker healthy");
                    } else {
                        tracing::warn!(tracker = %settings.name, weight = settings.weight, "tracker failing");
                    }
                }
                changed
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use havip_config::vrrp::{CommandSpec, TrackRef, TrackerKind};
    use std::path::Path;

    #[test]
    fn debounce_needs_rise_and_fall_in_a_row() {
        let mut debounce = Debounce::new(2, 3);
        assert!(
            debounce.observe(true),
            "the first observation sets the state"
        );
        assert_eq!(debounce.healthy(), Some(true));
        assert!(!debounce.observe(false));
        assert!(!debounce.observe(false));
        assert!(!debounce.observe(true), "a good one breaks the streak");
        assert!(!debounce.observe(false));
        assert!(!debounce.observe(false));
        assert!(debounce.observe(false), "three in a row");
        assert_eq!(debounce.healthy(), Some(false));
        assert!(!debounce.observe(true));
        assert!(debounce.observe(true), "two in a row to rise");
    }

    #[test]
    fn alternating_observations_never_flip_a_damped_state() {
        let mut debounce = Debounce::new(2, 2);
        debounce.observe(true);
        for i in 0..100 {
            assert!(!debounce.observe(i % 2 == 0), "flapped at {i}");
        }
    }

    fn instance(priority: u8, track: Vec<TrackRef>) -> VrrpSettings {
        let text = format!(
            "[[vrrp]]\nname = \"v\"\ninterface = \"eth0\"\nvrid = 1\npriority = {priority}\nvirtual_addresses = [\"10.0.0.1\"]\n"
        );
        let mut config = havip_config::parse(Path::new("t.toml"), &text).unwrap();
        let mut vrrp = config.vrrp.remove(0);
        vrrp.track = track;
        vrrp
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
        let vrrp = instance(
            100,
            vec![track("a", None), track("b", None), track("f", None)],
        );
        let values = [
            TrackerValue::Healthy(false),
            TrackerValue::Healthy(true),
            TrackerValue::Number(5),
        ];
        assert_eq!(
            instance_tracking(&vrrp, &trackers, &values),
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
            instance_tracking(&vrrp, &trackers, &values),
            Tracking {
                priority: 1,
                fault: true
            }
        );
        let vrrp = instance(100, vec![track("a", Some(-60))]);
        assert_eq!(
            instance_tracking(&vrrp, &trackers, &[TrackerValue::Healthy(false)]).priority,
            40
        );
        // Not observed yet: no effect.
        assert_eq!(
            instance_tracking(&vrrp, &trackers, &[TrackerValue::Pending]).priority,
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

    fn script(name: &str, weight: i32, program: &str) -> TrackerSettings {
        let mut settings = tracker(name, weight);
        settings.kind = TrackerKind::Script {
            command: CommandSpec::Argv(vec![program.into()]),
            timeout: Duration::from_secs(1),
            user: None,
            timeout_is_failure: false,
        };
        settings
    }

    fn inputs(trackers: Vec<TrackerSettings>, track: Vec<TrackRef>) -> Inputs {
        Inputs {
            trackers,
            instances: vec![instance(100, track)],
            services: Arc::default(),
            links: watch::channel(crate::vrrp::monitor::LinkStates::default()).1,
        }
    }

    #[tokio::test]
    async fn a_reload_keeps_the_state_of_unchanged_trackers_and_applies_new_ones() {
        let (on_change, mut changes) = mpsc::channel(16);
        let stop = CancellationToken::new();
        let failing = script("down", -30, "/bin/false");
        let handle = spawn(
            inputs(vec![failing.clone()], vec![track("down", None)]),
            on_change,
            stop.clone(),
        );
        let limit = Duration::from_secs(5);
        let first = loop {
            let (_, tracking) = tokio::time::timeout(limit, changes.recv())
                .await
                .unwrap()
                .unwrap();
            if tracking.priority != 100 {
                break tracking;
            }
        };
        assert_eq!(first.priority, 70, "the failing tracker counts");
        // A reload that adds a tracker and keeps "down" as it was: "down" keeps its state (a
        // restarted tracker would be pending and count for nothing until its first run).
        let passing = script("up", -20, "/bin/true");
        let now = handle
            .reload(inputs(
                vec![failing.clone(), passing.clone()],
                vec![track("down", None), track("up", None)],
            ))
            .await
            .unwrap();
        assert_eq!(now[0].priority, 70, "kept state, at once");
        // A reload that stops tracking "down": the priority comes back at once.
        let now = handle
            .reload(inputs(vec![failing, passing], vec![track("up", None)]))
            .await
            .unwrap();
        assert_eq!(now[0].priority, 100);
        stop.cancel();
    }
}
