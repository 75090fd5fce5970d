//! Trackers: what moves an instance's priority (issue #5) and withdraws a BGP announcement
//! (issue #16). One model for everything: each tracker produces observations (good, bad, or
//! unknown), a [`Debounce`] turns them into a state with `rise`/`fall`, and the node's
//! [`Trackers`] publish every tracker's value on one channel. Each consumer judges them its
//! own way: a VRRP instance gets a new effective priority ([`follow_instances`],
//! `havip_vrrp::priority::evaluate`, keepalived's rules), a BGP announcement is made or
//! withdrawn (`crate::bgp`).
//!
//! - In-process trackers read the balancer directly, every [`IN_PROCESS_PERIOD`]: `service`
//!   (enough backends up), `listener` (every listener accepting). No admin polling, no fork.
//! - `interface` follows a netlink monitor of links ([`links`], no polling), repeating its
//!   state every [`IN_PROCESS_PERIOD`] so that `rise`/`fall` mean the same as for the others.
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

pub mod links;
pub mod observe;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use havip_config::vrrp::{TrackerKind, TrackerSettings, VrrpSettings};
use havip_proxy::ServiceTable;
use havip_vrrp::{TrackerState, Tracking};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::{CancellationToken, DropGuard};

pub use links::LinkStates;
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

    /// A damper that starts in a known state (a reload keeps an unchanged tracker's state).
    pub fn known(rise: u32, fall: u32, healthy: bool) -> Self {
        Debounce {
            healthy: Some(healthy),
            ..Debounce::new(rise, fall)
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

/// Every tracker's value, by its index in the config, as the tracking loop last published it.
pub type Values = Arc<Vec<TrackerValue>>;

/// The running trackers of a node. Every consumer (the VRRP instances, the BGP
/// announcements) reads the same debounced values through [`Trackers::subscribe`], so a
/// tracker is observed once however many follow it. Dropping it stops the trackers.
pub struct Trackers {
    settings: Vec<TrackerSettings>,
    values: watch::Receiver<Values>,
    _stop: DropGuard,
}

impl Trackers {
    /// Start observing `trackers` (reading `services` in-process, current across reloads; an
    /// `interface` tracker opens a netlink monitor of links). Values start
    /// [`TrackerValue::Pending`].
    pub fn start(
        trackers: &[TrackerSettings],
        services: Arc<ServiceTable>,
    ) -> anyhow::Result<Trackers> {
        Trackers::start_after(trackers, services, None)
    }

    /// The trackers of a reload: one whose settings did not change starts from the value
    /// `previous` has for it now (a failing tracker stays failing, a healthy one healthy, and
    /// nothing that follows them moves); the others start pending. `previous` runs on until
    /// it is dropped.
    pub fn start_after(
        trackers: &[TrackerSettings],
        services: Arc<ServiceTable>,
        previous: Option<&Trackers>,
    ) -> anyhow::Result<Trackers> {
        let stop = CancellationToken::new();
        let initial: Vec<TrackerValue> = trackers
            .iter()
            .map(|tracker| previous.map_or(TrackerValue::Pending, |p| p.value_of(tracker)))
            .collect();
        let (values_tx, values) = watch::channel(Arc::new(initial.clone()));
        let links = if trackers
            .iter()
            .any(|tracker| matches!(tracker.kind, TrackerKind::Interface { .. }))
        {
            links::spawn(stop.clone()).context("trackers: cannot watch the links")?
        } else {
            // Nobody follows a link: a closed channel, which the interface observer (absent
            // here) would read as "repeat the last state".
            watch::channel(LinkStates::default()).1
        };
        let sources = observe::Sources { services, links };
        let (report_tx, report_rx) = mpsc::channel(256);
        for (index, tracker) in trackers.iter().enumerate() {
            let observing = observe::observe_forever(
                index,
                tracker.clone(),
                sources.clone(),
                report_tx.clone(),
            );
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
            trackers.to_vec(),
            initial,
            report_rx,
            values_tx,
        ));
        Ok(Trackers {
            settings: trackers.to_vec(),
            values,
            _stop: stop.drop_guard(),
        })
    }

    /// The configured trackers, in config order (the index of [`Values`]).
    pub fn settings(&self) -> &[TrackerSettings] {
        &self.settings
    }

    /// The value of a tracker with exactly `settings` now; pending when there is none.
    fn value_of(&self, settings: &TrackerSettings) -> TrackerValue {
        let values = self.values.borrow();
        self.settings
            .iter()
            .position(|s| s == settings)
            .and_then(|i| values.get(i).copied())
            .unwrap_or(TrackerValue::Pending)
    }

    /// What a consumer follows: the settings and a subscription to their values.
    pub fn feed(&self) -> Feed {
        Feed {
            settings: self.settings.clone(),
            values: self.subscribe(),
        }
    }

    /// Every tracker's value now.
    pub fn values(&self) -> Values {
        self.values.borrow().clone()
    }

    /// The values, marked seen as they are now: `changed()` wakes on the next change.
    pub fn subscribe(&self) -> watch::Receiver<Values> {
        let mut values = self.values.clone();
        values.mark_unchanged();
        values
    }
}

/// One generation of trackers as a consumer follows it: the settings (the index of the
/// values) and the values themselves. It stays valid while the [`Trackers`] it came from run.
#[derive(Debug, Clone)]
pub struct Feed {
    /// The trackers, in config order.
    pub settings: Vec<TrackerSettings>,
    /// Their values.
    pub values: watch::Receiver<Values>,
}

/// What each tracker is now, as the VRRP instances follow them, for `/api/status`, `havip
/// status` and the stats page. It reads the current values of one tracker generation on
/// demand; a reload makes a new board with the new generation.
#[derive(Debug)]
pub struct TrackerBoard {
    trackers: Vec<TrackerSettings>,
    instances: Vec<VrrpSettings>,
    values: watch::Receiver<Values>,
}

impl TrackerBoard {
    /// A board for `instances` following `feed`.
    pub fn new(feed: &Feed, instances: &[VrrpSettings]) -> TrackerBoard {
        TrackerBoard {
            trackers: feed.settings.clone(),
            instances: instances.to_vec(),
            values: feed.values.clone(),
        }
    }

    /// The trackers instance `name` tracks: name, kind, the weight it applies, and `state`
    /// (`healthy`, `failing`, `pending`, or the number a `file` read).
    pub fn instance_json(&self, name: &str) -> serde_json::Value {
        let values = self.values.borrow().clone();
        let Some(instance) = self.instances.iter().find(|i| i.name == name) else {
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
fn kind_name(kind: &TrackerKind) -> &'static str {
    match kind {
        TrackerKind::Script { .. } => "script",
        TrackerKind::Service { .. } => "service",
        TrackerKind::Listener { .. } => "listener",
        TrackerKind::Interface { .. } => "interface",
        TrackerKind::Process(_) => "process",
        TrackerKind::File { .. } => "file",
    }
}

/// Debounce the observations and publish every change of a tracker's value.
async fn tracking_loop(
    trackers: Vec<TrackerSettings>,
    mut values: Vec<TrackerValue>,
    mut reports: mpsc::Receiver<Report>,
    published: watch::Sender<Values>,
) {
    let mut debounce: Vec<Debounce> = trackers
        .iter()
        .zip(&values)
        .map(|(settings, value)| match value {
            TrackerValue::Healthy(healthy) => {
                Debounce::known(settings.rise, settings.fall, *healthy)
            }
            _ => Debounce::new(settings.rise, settings.fall),
        })
        .collect();
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
        if changed {
            published.send_replace(Arc::new(values.clone()));
        }
    }
}

/// Whether any tracker `instance` follows has a value yet.
pub fn any_observed(
    instance: &VrrpSettings,
    trackers: &[TrackerSettings],
    values: &[TrackerValue],
) -> bool {
    instance.track.iter().any(|reference| {
        trackers
            .iter()
            .position(|tracker| tracker.name == reference.tracker)
            .and_then(|i| values.get(i))
            .is_some_and(|value| *value != TrackerValue::Pending)
    })
}

/// Whether every tracker `instance` follows has a value (safe boot: the instance may become
/// master from then on).
pub fn all_observed(
    instance: &VrrpSettings,
    trackers: &[TrackerSettings],
    values: &[TrackerValue],
) -> bool {
    instance.track.iter().all(|reference| {
        trackers
            .iter()
            .position(|tracker| tracker.name == reference.tracker)
            .and_then(|i| values.get(i))
            .is_none_or(|value| *value != TrackerValue::Pending)
    })
}

/// What the trackers tell an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Its effective priority and fault now.
    Tracking(Tracking),
    /// Every tracker it follows has a first result (safe boot, `[[vrrp]] startup_limit`).
    Ready,
}

/// Feed the VRRP instances: each instance's effective priority and fault, sent to
/// `on_change` with its name once one of its trackers has been observed, and on every change
/// after (a reload starts a new follower with what it already told the instances in `sent`).
/// Ends when the trackers stop or nobody listens.
pub async fn follow_instances(
    instances: Vec<VrrpSettings>,
    trackers: Vec<TrackerSettings>,
    mut values: watch::Receiver<Values>,
    on_change: mpsc::Sender<(String, Verdict)>,
    mut sent: Vec<Option<Tracking>>,
) {
    sent.resize(instances.len(), None);
    let mut ready = vec![false; instances.len()];
    loop {
        let current = values.borrow_and_update().clone();
        for (index, instance) in instances.iter().enumerate() {
            // After the tracking it implies, so the wait ends with the right priority.
            let newly_ready = !ready[index] && all_observed(instance, &trackers, &current);
            if !any_observed(instance, &trackers, &current) && !newly_ready {
                continue;
            }
            let tracking = instance_tracking(instance, &trackers, &current);
            if newly_ready {
                ready[index] = true;
                let name = instance.name.clone();
                let mut verdicts = vec![(name.clone(), Verdict::Ready)];
                if sent[index] != Some(tracking) && any_observed(instance, &trackers, &current) {
                    sent[index] = Some(tracking);
                    verdicts.insert(0, (name, Verdict::Tracking(tracking)));
                }
                for verdict in verdicts {
                    if on_change.send(verdict).await.is_err() {
                        return;
                    }
                }
                continue;
            }
            if sent[index] == Some(tracking) {
                continue;
            }
            sent[index] = Some(tracking);
            tracing::info!(
                instance = %instance.name,
                priority = tracking.priority,
                fault = tracking.fault,
                "effective priority changed"
            );
            if on_change
                .send((instance.name.clone(), Verdict::Tracking(tracking)))
                .await
                .is_err()
            {
                return;
            }
        }
        if values.changed().await.is_err() {
            return;
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

    #[tokio::test]
    async fn a_reload_keeps_the_state_of_unchanged_trackers_and_starts_new_ones_pending() {
        let failing = script("down", -30, "/bin/false");
        let first = Trackers::start(std::slice::from_ref(&failing), Arc::default()).unwrap();
        let mut values = first.subscribe();
        tokio::time::timeout(Duration::from_secs(5), async {
            while values.borrow_and_update()[0] != TrackerValue::Healthy(false) {
                values.changed().await.unwrap();
            }
        })
        .await
        .expect("the script fails");
        // The reload adds a tracker before it and keeps "down" as it was.
        let passing = script("up", -20, "/bin/true");
        let trackers = [passing, failing.clone()];
        let second = Trackers::start_after(&trackers, Arc::default(), Some(&first)).unwrap();
        assert_eq!(
            *second.values(),
            [TrackerValue::Pending, TrackerValue::Healthy(false)],
            "the kept tracker's state at once, the new one pending"
        );
        let vrrp = instance(100, vec![track("down", None), track("up", None)]);
        assert_eq!(
            instance_tracking(&vrrp, second.settings(), &second.values()).priority,
            70
        );
        // A changed tracker is a new one: its state starts over.
        let mut changed = failing;
        changed.fall = 5;
        let third = Trackers::start_after(&[changed], Arc::default(), Some(&second)).unwrap();
        assert_eq!(*third.values(), [TrackerValue::Pending]);
    }
}
