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
use havip_proxy::service::Service;
use havip_vrrp::{TrackerState, Tracking};
use tokio::sync::{mpsc, watch};
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
    /// The tracker's index in the config.
    pub tracker: usize,
    /// What it saw.
    pub observation: Observation,
}

/// What each tracker is now, for `/api/status`, `havip status` and the stats page: written
/// by the tracking loop on every change, read by the admin API.
#[derive(Debug)]
pub struct TrackerBoard {
    trackers: Vec<TrackerSettings>,
    instances: Vec<VrrpSettings>,
    values: std::sync::Mutex<Vec<TrackerValue>>,
}

impl TrackerBoard {
    /// A board for `trackers` as `instances` reference them, every value pending.
    pub fn new(trackers: &[TrackerSettings], instances: &[VrrpSettings]) -> TrackerBoard {
        TrackerBoard {
            trackers: trackers.to_vec(),
            instances: instances.to_vec(),
            values: std::sync::Mutex::new(vec![TrackerValue::Pending; trackers.len()]),
        }
    }

    fn publish(&self, values: &[TrackerValue]) {
        let mut board = self.values.lock().unwrap_or_else(|e| e.into_inner());
        board.clear();
        board.extend_from_slice(values);
    }

    /// The trackers instance `index` (config order) tracks: name, kind, the weight it
    /// applies, and `state` (`healthy`, `failing`, `pending`, or the number a `file` read).
    pub fn instance_json(&self, index: usize) -> serde_json::Value {
        let values = self.values.lock().unwrap_or_else(|e| e.into_inner());
        let Some(instance) = self.instances.get(index) else {
            return serde_json::Value::Array(Vec::new());
        };
        let trackers = instance.track.iter().filter_map(|reference| {
            let position = self
                .trackers
                .iter()
                .position(|t| t.name == reference.tracker)?;
            let tracker = &self.trackers[position];
            let state = match values
                .get(position)
                .copied()
                .unwrap_or(TrackerValue::Pending)
            {
                TrackerValue::Pending => serde_json::json!("pending"),
                TrackerValue::Healthy(true) => serde_json::json!("healthy"),
                TrackerValue::Healthy(false) => serde_json::json!("failing"),
                TrackerValue::Number(n) => serde_json::json!(n),
            };
            Some(serde_json::json!({
                "name": tracker.name,
                "kind": kind_name(&tracker.kind),
                "weight": reference.weight.unwrap_or(tracker.weight),
                "state": state,
            }))
        });
        serde_json::Value::Array(trackers.collect())
    }
}

/// The `kind` a config writes for a tracker.
fn kind_name(kind: &havip_config::vrrp::TrackerKind) -> &'static str {
    use havip_config::vrrp::TrackerKind;
    match kind {
        TrackerKind::Script { .. } => "script",
        TrackerKind::Service { .. } => "service",
        TrackerKind::Listener { .. } => "listener",
        TrackerKind::Interface { .. } => "interface",
        TrackerKind::Process(_) => "process",
        TrackerKind::File { .. } => "file",
    }
}

/// What the trackers of a node work from.
pub struct Inputs {
    /// The configured trackers.
    pub trackers: Vec<TrackerSettings>,
    /// The VRRP instances whose priorities they move.
    pub instances: Vec<VrrpSettings>,
    /// The node's services, read in-process.
    pub services: Vec<Arc<Service>>,
    /// Link changes from the node's netlink monitor.
    pub links: watch::Receiver<LinkStates>,
    /// Where the tracking loop publishes every tracker's state.
    pub board: Arc<TrackerBoard>,
}

/// Start the trackers for the instances. `on_change` receives (instance index, tracking)
/// with each instance's first tracking and every change after.
pub fn spawn(inputs: Inputs, on_change: mpsc::Sender<(usize, Tracking)>, stop: CancellationToken) {
    if inputs.trackers.is_empty() {
        return;
    }
    let sources = observe::Sources {
        services: inputs.services,
        links: inputs.links,
    };
    let (report_tx, report_rx) = mpsc::channel(256);
    for (index, tracker) in inputs.trackers.iter().enumerate() {
        let observing =
            observe::observe_forever(index, tracker.clone(), sources.clone(), report_tx.clone());
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = observing => {}
                () = stop.cancelled() => {}
            }
        });
    }
    drop(report_tx);
    tokio::spawn(tracking_loop(
        inputs.trackers,
        inputs.instances,
        report_rx,
        on_change,
        inputs.board,
    ));
}

async fn tracking_loop(
    trackers: Vec<TrackerSettings>,
    instances: Vec<VrrpSettings>,
    mut reports: mpsc::Receiver<Report>,
    on_change: mpsc::Sender<(usize, Tracking)>,
    board: Arc<TrackerBoard>,
) {
    let mut debounce: Vec<Debounce> = trackers
        .iter()
        .map(|settings| Debounce::new(settings.rise, settings.fall))
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
            Observation::Value(value) => {
                let new = TrackerValue::Number(value);
                let changed = values[tracker] != new;
                if changed {
                    tracing::info!(tracker = %settings.name, value, "tracked file value changed");
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
        board.publish(&values);
        for (index, instance) in instances.iter().enumerate() {
            if !instance
                .track
                .iter()
                .any(|reference| reference.tracker == settings.name)
            {
                continue;
            }
            let tracking = instance_tracking(instance, &trackers, &values);
            if sent[index] != Some(tracking) {
                sent[index] = Some(tracking);
                tracing::info!(
                    instance = %instance.name,
                    priority = tracking.priority,
                    fault = tracking.fault,
                    "effective priority changed"
                );
                if on_change.send((index, tracking)).await.is_err() {
                    return;
                }
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
    fn the_board_shows_each_instances_trackers_with_their_weights() {
        let trackers = vec![tracker("a", -30), tracker("unused", 5), tracker("f", 2)];
        let vrrp = instance(100, vec![track("a", Some(-50)), track("f", None)]);
        let board = TrackerBoard::new(&trackers, std::slice::from_ref(&vrrp));
        let pending = board.instance_json(0);
        assert_eq!(pending[0]["state"], "pending");
        board.publish(&[
            TrackerValue::Healthy(false),
            TrackerValue::Healthy(true),
            TrackerValue::Number(7),
        ]);
        assert_eq!(
            board.instance_json(0),
            serde_json::json!([
                {"name": "a", "kind": "script", "weight": -50, "state": "failing"},
                {"name": "f", "kind": "script", "weight": 2, "state": 7},
            ])
        );
        assert_eq!(board.instance_json(5), serde_json::json!([]));
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
}
