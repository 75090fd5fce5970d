//! A deterministic network simulator for VRRP instances: a virtual clock, an event queue, a
//! shared segment with a delivery delay, partitions, crashes and restarts.
//!
//! Each router is an [`Instance`]; the simulator plays the shell: it delivers the bytes of
//! every advertisement to the routers that can hear it (multicast: every router on the same
//! side of a partition; unicast: the addressed one), schedules a timer event whenever a
//! step arms a timer (stale firings are delivered too: the instance must ignore them), keeps a
//! stopping router running until its graceful release ends, and records state changes,
//! virtual-address ownership and accepted advertisements so tests can assert exact timings.
//!
//! Same inputs, same seed, same run: events at equal times are processed in scheduling order.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::Duration;

use havip_vrrp::packet::AddressFamily;
use havip_vrrp::{
    Action, Input, Instance, InstanceConfig, Reason, ReceivedPacket, State, TimerKind, Timestamp,
    Tracking,
};

/// splitmix64: a tiny, well-mixed PRNG, enough for reproducible schedules.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..bound` (bound > 0; the modulo bias is irrelevant here).
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound
    }

    /// Uniform in `low..=high`.
    pub fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.below(high - low + 1)
    }

    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// A state change seen in the simulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    pub at: Timestamp,
    pub router: usize,
    pub from: State,
    pub to: State,
    pub reason: Reason,
}

/// An advertisement a router accepted (it passed every receive check).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    pub at: Timestamp,
    pub router: usize,
    pub from: IpAddr,
    pub priority: u8,
}

#[derive(Debug)]
enum Event {
    Deliver {
        to: usize,
        incarnation: u32,
        source: IpAddr,
        destination: IpAddr,
        payload: Vec<u8>,
    },
    Timer {
        router: usize,
        incarnation: u32,
        kind: TimerKind,
    },
}

#[derive(Debug)]
struct Scheduled {
    at: Timestamp,
    sequence: u64,
    event: Event,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.sequence) == (other.at, other.sequence)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.sequence).cmp(&(other.at, other.sequence))
    }
}

struct Router {
    config: InstanceConfig,
    /// `None` while crashed or stopped.
    instance: Option<Instance>,
    /// Bumped on every crash / restart so events of an earlier life are dropped.
    incarnation: u32,
    holds_addresses: bool,
    segment: u32,
    /// The deadline each timer kind was last scheduled for (this incarnation).
    scheduled: BTreeMap<TimerKind, Timestamp>,
    /// Shut down, but a graceful release is still waiting for the new master.
    stopping: bool,
}

/// The simulated network.
pub struct Sim {
    now: Timestamp,
    routers: Vec<Router>,
    queue: BinaryHeap<Reverse<Scheduled>>,
    sequence: u64,
    delay: Duration,
    jitter: Option<(Rng, Duration)>,
    pub transitions: Vec<Transition>,
    pub accepted: Vec<Accepted>,
    /// Routers that took the virtual addresses while another held them, with the time.
    pub overlaps: Vec<(Timestamp, usize, usize)>,
    /// How many routers held the virtual addresses, after each change, with its time.
    pub holder_counts: Vec<(Timestamp, usize)>,
    /// Everything that happened, for failure reports.
    pub trace: Vec<String>,
}

impl Sim {
    /// Routers with `configs` on one segment, every packet delayed by `delay`. Nothing starts
    /// until [`Sim::start`].
    pub fn new(configs: Vec<InstanceConfig>, delay: Duration) -> Sim {
        Sim {
            now: Timestamp::ZERO,
            routers: configs
                .into_iter()
                .map(|config| Router {
                    config,
                    instance: None,
                    incarnation: 0,
                    holds_addresses: false,
                    segment: 0,
                    scheduled: BTreeMap::new(),
                    stopping: false,
                })
                .collect(),
            queue: BinaryHeap::new(),
            sequence: 0,
            delay,
            jitter: None,
            transitions: Vec::new(),
            accepted: Vec::new(),
            overlaps: Vec::new(),
            holder_counts: Vec::new(),
            trace: Vec::new(),
        }
    }

    /// Adds a random extra delay of up to `max` to every packet (reordering allowed).
    pub fn with_jitter(mut self, rng: Rng, max: Duration) -> Sim {
        self.jitter = Some((rng, max));
        self
    }

    pub fn now(&self) -> Timestamp {
        self.now
    }

    pub fn len(&self) -> usize {
        self.routers.len()
    }

    pub fn instance(&self, router: usize) -> Option<&Instance> {
        self.routers[router].instance.as_ref()
    }

    pub fn is_up(&self, router: usize) -> bool {
        self.routers[router].instance.is_some()
    }

    pub fn state(&self, router: usize) -> Option<State> {
        self.instance(router).map(Instance::state)
    }

    /// How many times `router` was started or stopped: identifies one life of the router.
    pub fn incarnation(&self, router: usize) -> u32 {
        self.routers[router].incarnation
    }

    pub fn segment(&self, router: usize) -> u32 {
        self.routers[router].segment
    }

    /// Routers that are up and in Master, in index order.
    pub fn masters(&self) -> Vec<usize> {
        (0..self.len())
            .filter(|r| self.state(*r) == Some(State::Master))
            .collect()
    }

    /// Routers holding the virtual addresses (added and not removed since).
    pub fn holders(&self) -> Vec<usize> {
        (0..self.len())
            .filter(|r| self.routers[*r].holds_addresses)
            .collect()
    }

    /// Starts (or restarts after a crash) `router` now.
    pub fn start(&mut self, router: usize) {
        let mut instance =
            Instance::new(self.routers[router].config.clone()).expect("valid config");
        let actions = instance.handle(self.now, Input::Startup);
        let entry = &mut self.routers[router];
        entry.instance = Some(instance);
        entry.incarnation += 1;
        entry.scheduled.clear();
        entry.stopping = false;
        self.note(format!("start r{router}"));
        self.perform(router, actions);
    }

    pub fn start_all(&mut self) {
        for router in 0..self.len() {
            self.start(router);
        }
    }

    /// Kills `router` without a word (kill -9 / power loss): no priority 0, addresses gone.
    pub fn crash(&mut self, router: usize) {
        self.note(format!("crash r{router}"));
        let entry = &mut self.routers[router];
        entry.instance = None;
        entry.incarnation += 1;
        entry.holds_addresses = false;
        entry.stopping = false;
        self.count_holders();
    }

    /// Stops `router` cleanly (SIGTERM): a master sends priority 0 and releases the addresses,
    /// at once or (graceful release) once the new master is heard, as a shell would.
    pub fn shutdown(&mut self, router: usize) {
        self.note(format!("shutdown r{router}"));
        self.routers[router].stopping = true;
        self.input(router, Input::Shutdown);
        self.end_if_stopped(router);
    }

    /// An operator's step-down of `router` (a drill).
    pub fn step_down(&mut self, router: usize) {
        self.note(format!("step-down r{router}"));
        self.input(router, Input::StepDown);
    }

    /// Ends a step-down of `router`.
    pub fn restore(&mut self, router: usize) {
        self.note(format!("restore r{router}"));
        self.input(router, Input::Restore);
    }

    /// Safe boot: every tracker of `router` has reported.
    pub fn trackers_ready(&mut self, router: usize) {
        self.note(format!("trackers ready r{router}"));
        self.input(router, Input::TrackersReady);
    }

    fn input(&mut self, router: usize, input: Input<'_>) {
        let actions = match self.routers[router].instance.as_mut() {
            Some(instance) => instance.handle(self.now, input),
            None => return,
        };
        self.perform(router, actions);
    }

    /// A stopping router ends once it holds nothing any more.
    fn end_if_stopped(&mut self, router: usize) {
        let entry = &mut self.routers[router];
        let releasing = entry
            .instance
            .as_ref()
            .is_some_and(|instance| instance.handover().is_some());
        if entry.stopping && !releasing && entry.instance.is_some() {
            entry.instance = None;
            entry.incarnation += 1;
            entry.stopping = false;
            self.note(format!("r{router} stopped"));
        }
    }

    /// Feeds new tracking results to `router`.
    pub fn track(&mut self, router: usize, tracking: Tracking) {
        self.note(format!("track r{router} {tracking:?}"));
        let actions = match self.routers[router].instance.as_mut() {
            Some(instance) => instance.handle(self.now, Input::TrackingChanged(tracking)),
            None => return,
        };
        self.perform(router, actions);
    }

    /// Splits the network: routers hear each other only within a group. Routers not listed
    /// stay in segment 0.
    pub fn partition(&mut self, groups: &[&[usize]]) {
        self.note(format!("partition {groups:?}"));
        for router in &mut self.routers {
            router.segment = 0;
        }
        for (index, group) in groups.iter().enumerate() {
            for router in *group {
                self.routers[*router].segment = u32::try_from(index).expect("few groups") + 1;
            }
        }
    }

    /// Puts every router back on one segment.
    pub fn heal(&mut self) {
        self.note("heal".to_owned());
        for router in &mut self.routers {
            router.segment = 0;
        }
    }

    pub fn run_for(&mut self, duration: Duration) {
        self.run_until(self.now + duration);
    }

    /// Processes every event due up to and including `until`, then sets the clock to `until`.
    pub fn run_until(&mut self, until: Timestamp) {
        while let Some(Reverse(next)) = self.queue.peek() {
            if next.at > until {
                break;
            }
            let Some(Reverse(scheduled)) = self.queue.pop() else {
                break;
            };
            self.now = scheduled.at;
            self.dispatch(scheduled.event);
        }
        self.now = until;
    }

    /// The last time `router` became master, if ever.
    pub fn became_master_at(&self, router: usize) -> Option<Timestamp> {
        self.transitions
            .iter()
            .rev()
            .find(|t| t.router == router && t.to == State::Master)
            .map(|t| t.at)
    }

    /// The last time `router` left master, if ever.
    pub fn left_master_at(&self, router: usize) -> Option<Timestamp> {
        self.transitions
            .iter()
            .rev()
            .find(|t| t.router == router && t.from == State::Master)
            .map(|t| t.at)
    }

    /// The last advertisement `router` accepted at or before `at`.
    pub fn last_accepted_before(&self, router: usize, at: Timestamp) -> Option<Accepted> {
        self.accepted
            .iter()
            .rev()
            .find(|a| a.router == router && a.at <= at)
            .copied()
    }

    /// Every transition of `router`.
    pub fn transitions_of(&self, router: usize) -> Vec<Transition> {
        self.transitions
            .iter()
            .filter(|t| t.router == router)
            .copied()
            .collect()
    }

    /// The trace as text, for assertion messages.
    pub fn report(&self) -> String {
        let mut text = String::new();
        let skip = self.trace.len().saturating_sub(80);
        for line in &self.trace[skip..] {
            let _ = writeln!(text, "{line}");
        }
        text
    }

    fn note(&mut self, what: String) {
        self.trace.push(format!("{} {what}", self.now));
    }

    fn schedule(&mut self, at: Timestamp, event: Event) {
        self.sequence += 1;
        self.queue.push(Reverse(Scheduled {
            at,
            sequence: self.sequence,
            event,
        }));
    }

    fn dispatch(&mut self, event: Event) {
        match event {
            Event::Timer {
                router,
                incarnation,
                kind,
            } => {
                if self.routers[router].incarnation != incarnation {
                    return;
                }
                let now = self.now;
                let Some(instance) = self.routers[router].instance.as_mut() else {
                    return;
                };
                let actions = instance.handle(now, Input::TimerFired(kind));
                self.perform(router, actions);
            }
            Event::Deliver {
                to,
                incarnation,
                source,
                destination,
                payload,
            } => {
                if self.routers[to].incarnation != incarnation {
                    return;
                }
                // A link cut while the packet was in flight loses it.
                let sender_segment = self
                    .routers
                    .iter()
                    .find(|r| r.config.primary_address == source)
                    .map(|r| r.segment);
                if sender_segment != Some(self.routers[to].segment) {
                    return;
                }
                let now = self.now;
                let Some(instance) = self.routers[to].instance.as_mut() else {
                    return;
                };
                let before = instance.counters().adverts_received;
                let actions = instance.handle(
                    now,
                    Input::Packet(ReceivedPacket {
                        source,
                        destination,
                        ttl: 255,
                        payload: &payload,
                    }),
                );
                if instance.counters().adverts_received > before {
                    let priority = payload.get(2).copied().unwrap_or(0);
                    self.accepted.push(Accepted {
                        at: now,
                        router: to,
                        from: source,
                        priority,
                    });
                }
                self.perform(to, actions);
            }
        }
    }

    fn perform(&mut self, router: usize, actions: Vec<Action>) {
        let incarnation = self.routers[router].incarnation;
        for action in actions {
            match action {
                Action::SendAdvertisement(advert) => {
                    let segment = self.routers[router].segment;
                    let multicast =
                        advert.destination == AddressFamily::of(&advert.source).multicast_group();
                    let receivers: Vec<(usize, u32)> = self
                        .routers
                        .iter()
                        .enumerate()
                        .filter(|(index, other)| {
                            *index != router
                                && other.instance.is_some()
                                && other.segment == segment
                                && (multicast || other.config.primary_address == advert.destination)
                        })
                        .map(|(index, other)| (index, other.incarnation))
                        .collect();
                    self.note(format!(
                        "r{router} sends priority {} to {}",
                        advert.advertisement.priority, advert.destination
                    ));
                    for (to, incarnation) in receivers {
                        let mut delay = self.delay;
                        if let Some((rng, max)) = self.jitter.as_mut() {
                            let nanos = u64::try_from(max.as_nanos()).expect("small jitter");
                            delay += Duration::from_nanos(rng.below(nanos + 1));
                        }
                        let at = self.now + delay;
                        self.schedule(
                            at,
                            Event::Deliver {
                                to,
                                incarnation,
                                source: advert.source,
                                destination: advert.destination,
                                payload: advert.payload.clone(),
                            },
                        );
                    }
                }
                Action::AddAddresses { .. } => {
                    for other in self.holders() {
                        if other != router {
                            self.overlaps.push((self.now, router, other));
                        }
                    }
                    self.routers[router].holds_addresses = true;
                    self.count_holders();
                }
                Action::RemoveAddresses { .. } => {
                    self.routers[router].holds_addresses = false;
                    self.count_holders();
                }
                Action::StateChanged { from, to, reason } => {
                    self.transitions.push(Transition {
                        at: self.now,
                        router,
                        from,
                        to,
                        reason,
                    });
                    self.note(format!("r{router} {from} -> {to} ({reason:?})"));
                }
                Action::HandoverFinished(outcome) => {
                    self.note(format!("r{router} hand-over finished: {outcome:?}"));
                }
                Action::Announce { .. }
                | Action::AddressRestored { .. }
                | Action::Warning(_)
                | Action::StartupWaitEnded(_) => {}
            }
        }
        self.schedule_timers(router, incarnation);
        self.end_if_stopped(router);
    }

    fn count_holders(&mut self) {
        let count = self.holders().len();
        if self.holder_counts.last().map(|(_, c)| *c) != Some(count) {
            self.holder_counts.push((self.now, count));
        }
    }

    /// The longest time within `from..=until` during which nobody held the virtual addresses.
    pub fn longest_time_without_holder(&self, from: Timestamp, until: Timestamp) -> Duration {
        let mut longest = Duration::ZERO;
        let mut empty_since: Option<Timestamp> = None;
        let before = self.holder_counts.iter().rev().find(|(at, _)| *at < from);
        if before.is_some_and(|(_, count)| *count == 0) {
            empty_since = Some(from);
        }
        for (at, count) in self
            .holder_counts
            .iter()
            .filter(|(at, _)| (from..=until).contains(at))
        {
            match (empty_since, *count) {
                (None, 0) => empty_since = Some(*at),
                (Some(since), c) if c > 0 => {
                    longest = longest.max(at.saturating_duration_since(since));
                    empty_since = None;
                }
                _ => {}
            }
        }
        if let Some(since) = empty_since {
            longest = longest.max(until.saturating_duration_since(since));
        }
        longest
    }

    /// Schedules a firing for every timer the last step armed (or re-armed).
    fn schedule_timers(&mut self, router: usize, incarnation: u32) {
        let Some(instance) = self.routers[router].instance.as_ref() else {
            return;
        };
        let armed: Vec<(TimerKind, Timestamp)> = TimerKind::ALL
            .iter()
            .filter_map(|kind| instance.timer_deadline(*kind).map(|at| (*kind, at)))
            .collect();
        for (kind, at) in armed {
            if self.routers[router].scheduled.insert(kind, at) != Some(at) {
                self.schedule(
                    at,
                    Event::Timer {
                        router,
                        incarnation,
                        kind,
                    },
                );
            }
        }
    }
}
