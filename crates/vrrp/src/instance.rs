//! The per-instance state machine of RFC 5798 section 6 (VRRPv3, as updated by RFC 9568) and
//! RFC 3768 section 6 (VRRPv2), plus keepalived's Fault state, preempt delay and
//! announcement repeats.
//!
//! Lifecycle: [`Instance::new`] validates the configuration and starts in Initialize;
//! [`Input::Startup`] starts the protocol; from then on every input (packet, timer, tracking,
//! link) goes through [`Instance::handle`], which returns the [`Action`]s to perform;
//! [`Input::Shutdown`] returns it to Initialize (a master first sends priority 0).
//!
//! Timers: the instance keeps the deadline of each [`TimerKind`]; the shell sleeps until
//! [`Instance::next_timer`] and feeds [`Input::TimerFired`]. A firing is acted on only if that
//! timer is armed and its deadline has passed, so a firing that raced with a re-arm or a
//! cancel is harmless.
//!
//! Graceful release ([`InstanceConfig::graceful_release`]): on shutdown or step-down a master sends
//! priority 0 but keeps its addresses while a [`Handover`] runs: the first fully checked
//! advertisement with a non-zero priority from another router ends it (that router is the new
//! master), and so does the [`TimerKind::Handover`] deadline, [`Instance::handover_bound`]
//! after priority 0. Either way the addresses go then, reported by
//! [`Action::HandoverFinished`].

use std::net::IpAddr;
use std::time::Duration;

use crate::config::{ConfigError, InstanceConfig, OWNER_PRIORITY};
use crate::counters::{Counters, DropReason};
use crate::event::{
    Action, DropDetail, FaultCause, Handover, HandoverOutcome, Input, OutgoingAdvertisement,
    Reason, ReceivedPacket, StartupWaitEnd, State, Warning,
};
use crate::packet::{self, AddressList, Advertisement, ChecksumContext, Version, REQUIRED_TTL};
use crate::priority::Tracking;
use crate::screen::Screen;
use crate::time::Timestamp;
use crate::timers::{self, AdvertInterval, TimerKind};

/// Each kind of [`Warning`] (and each drop reason) is reported at most once per this period.
/// RFC 9568 7.1 asks for rate-limited logging of receive errors.
pub const WARNING_HOLDOFF: Duration = Duration::from_secs(60);

/// One deadline per timer kind; `None` when disarmed.
#[derive(Debug, Clone, Default)]
struct Timers {
    advert: Option<Timestamp>,
    master_down: Option<Timestamp>,
    preempt_delay: Option<Timestamp>,
    announce_burst: Option<Timestamp>,
    announce_repeat: Option<Timestamp>,
    announce_refresh: Option<Timestamp>,
    handover: Option<Timestamp>,
    startup_limit: Option<Timestamp>,
}

impl Timers {
    fn slot(&mut self, kind: TimerKind) -> &mut Option<Timestamp> {
        match kind {
            TimerKind::Advert => &mut self.advert,
            TimerKind::MasterDown => &mut self.master_down,
            TimerKind::PreemptDelay => &mut self.preempt_delay,
            TimerKind::AnnounceBurst => &mut self.announce_burst,
            TimerKind::AnnounceRepeat => &mut self.announce_repeat,
            TimerKind::AnnounceRefresh => &mut self.announce_refresh,
            TimerKind::Handover => &mut self.handover,
            TimerKind::StartupLimit => &mut self.startup_limit,
        }
    }

    fn get(&self, kind: TimerKind) -> Option<Timestamp> {
        match kind {
            TimerKind::Advert => self.advert,
            TimerKind::MasterDown => self.master_down,
            TimerKind::PreemptDelay => self.preempt_delay,
            TimerKind::AnnounceBurst => self.announce_burst,
            TimerKind::AnnounceRepeat => self.announce_repeat,
            TimerKind::AnnounceRefresh => self.announce_refresh,
            TimerKind::Handover => self.handover,
            TimerKind::StartupLimit => self.startup_limit,
        }
    }
}

/// A router heard advertising, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Heard {
    address: IpAddr,
    priority: u8,
    at: Timestamp,
}

/// What a warning is rate-limited by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WarningKind {
    Dropped(DropReason),
    AddressList,
    IntervalDiffers,
    OwnerConflict,
}

/// One VRRP instance: a virtual router on one interface and address family.
#[derive(Debug, Clone)]
pub struct Instance {
    config: InstanceConfig,
    /// The virtual addresses in advertisement form.
    advertised_addresses: AddressList,
    /// The configuration-only receive checks (and the address-list comparison).
    screen: Screen,
    state: State,
    tracking: Tracking,
    interface_up: bool,
    /// An operator stepped this instance down and has not restored it (a fault cause).
    stepped_down: bool,
    /// A graceful release waiting for a new master; the addresses are still ours meanwhile.
    handover: Option<Handover>,
    /// RFC 5798 6.1 Master_Adver_Interval: the master's interval as a backup learned it (v3),
    /// our own interval otherwise.
    master_adver_interval: AdvertInterval,
    timers: Timers,
    /// Backup: the master whose advertisements reset our Master_Down_Timer.
    master: Option<Heard>,
    /// Backup with preemption: the last lower-priority master heard (its adverts are discarded).
    lower_master: Option<Heard>,
    /// Backup: the Master_Down_Timer was shortened to Skew_Time by a priority-0 advert.
    master_released: bool,
    /// Master: rounds left in the current announcement burst.
    announce_rounds_left: u32,
    /// Master: when we last answered a lower-priority advertisement.
    last_lower_priority_answer: Option<Timestamp>,
    warnings_sent: Vec<(WarningKind, Timestamp)>,
    counters: Counters,
    /// Safe boot: waiting for the trackers' first results (see
    /// [`InstanceConfig::startup_limit`]).
    awaiting_trackers: bool,
    /// The Master_Down_Timer fired during that wait; acted on when it ends.
    deferred_master_down: bool,
}

impl Instance {
    /// An instance in Initialize, or the reason `config` cannot run.
    pub fn new(config: InstanceConfig) -> Result<Instance, ConfigError> {
        config.validate()?;
        let advertised_addresses = AddressList::from_ip_addrs(&config.virtual_addresses)
            .ok_or(ConfigError::NoVirtualAddresses)?;
        Ok(Instance {
            advertised_addresses,
            screen: Screen::new(&config),
            state: State::Initialize,
            tracking: Tracking::untracked(config.priority),
            interface_up: true,
            stepped_down: false,
            handover: None,
            master_adver_interval: config.advert_interval,
            timers: Timers::default(),
            master: None,
            lower_master: None,
            master_released: false,
            announce_rounds_left: 0,
            last_lower_priority_answer: None,
            warnings_sent: Vec::new(),
            counters: Counters::default(),
            awaiting_trackers: false,
            deferred_master_down: false,
            config,
        })
    }

    /// Whether [`Instance::reconfigure`] can take `new` in place (see
    /// [`InstanceConfig::is_same_router`]).
    pub fn can_reconfigure(&self, new: &InstanceConfig) -> bool {
        self.config.is_same_router(new)
    }

    /// A reload's new settings for this running instance, with the trackers' verdict under
    /// them: nothing transitions now. A master advertises the new priority with its next
    /// advertisement and a backup uses it from its next Master_Down_Timer reset, so the normal
    /// preemption rules (RFC 5798 6.4.2) decide what happens; a new interval applies from the
    /// next advertisement or timer reset. Errors when `new` is invalid or is another
    /// instance (see [`Instance::can_reconfigure`]); nothing changes then.
    pub fn reconfigure(
        &mut self,
        now: Timestamp,
        new: InstanceConfig,
        tracking: Tracking,
    ) -> Result<Vec<Action>, ConfigError> {
        new.validate()?;
        if !self.can_reconfigure(&new) {
            return Err(ConfigError::NotTheSameInstance);
        }
        // RFC 5798 6.4.2: a v3 backup follows the interval of the master it hears; otherwise
        // (v2, a master, nobody heard yet) Master_Adver_Interval is our own.
        let follows_master =
            self.state == State::Backup && self.master.is_some() && new.version == Version::V3;
        if !follows_master {
            self.master_adver_interval = new.advert_interval;
        }
        self.screen = Screen::new(&new);
        self.config = new;
        let mut out = Vec::new();
        self.tracking_changed(now, tracking, &mut out);
        Ok(out)
    }

    /// Processes one input at time `now` and returns what the shell must do, in order.
    /// `now` must never go backwards between calls.
    pub fn handle(&mut self, now: Timestamp, input: Input<'_>) -> Vec<Action> {
        let mut out = Vec::new();
        match input {
            Input::Startup => self.startup(now, &mut out),
            Input::Shutdown => self.shutdown(now, &mut out),
            Input::Packet(packet) => self.receive(now, &packet, &mut out),
            Input::TimerFired(kind) => self.timer_fired(now, kind, &mut out),
            Input::TrackingChanged(tracking) => self.tracking_changed(now, tracking, &mut out),
            Input::InterfaceUp => {
                self.interface_up = true;
                self.reevaluate_fault(now, &mut out);
            }
            Input::InterfaceDown => {
                self.interface_up = false;
                // Nobody can be heard on a dead link: a release in progress ends now.
                self.finish_handover(now, None, &mut out);
                self.reevaluate_fault(now, &mut out);
            }
            Input::AddressRemoved(address) => self.address_removed(address, &mut out),
            Input::StepDown => self.step_down(now, &mut out),
            Input::Restore => {
                if self.stepped_down {
                    self.stepped_down = false;
                    self.reevaluate_fault(now, &mut out);
                }
            }
            Input::Resume { was_master } => self.resume(now, was_master, &mut out),
            Input::HandOff => self.hand_off(&mut out),
            Input::TrackersReady => {
                self.end_startup_wait(now, StartupWaitEnd::TrackersReady, &mut out)
            }
        }
        out
    }

    /// Where the instance is in the RFC 5798 6.4 state machine (or Fault), for the shell's
    /// status and metrics.
    pub fn state(&self) -> State {
        self.state
    }

    /// The priority this instance advertises: the tracked priority, or 255 for the owner.
    pub fn priority(&self) -> u8 {
        if self.config.is_owner() {
            OWNER_PRIORITY
        } else {
            self.tracking.priority
        }
    }

    /// Why the instance is (or would be, before Startup) in Fault, if it is.
    pub fn fault_cause(&self) -> Option<FaultCause> {
        let cause = FaultCause {
            interface_down: !self.interface_up,
            tracker_failed: self.tracking.fault,
            stepped_down: self.stepped_down,
        };
        (cause.interface_down || cause.tracker_failed || cause.stepped_down).then_some(cause)
    }

    /// The configuration-only receive checks of the current configuration, for a shell that
    /// screens packets before it queues them (see [`Screen`]).
    pub fn screen(&self) -> &Screen {
        &self.screen
    }

    /// The configuration in effect: the one the instance was built from, or the last one
    /// [`Instance::reconfigure`] took (a reload that keeps the same virtual router).
    pub fn config(&self) -> &InstanceConfig {
        &self.config
    }

    /// What was received, sent and dropped since the instance was built, for metrics.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Master_Adver_Interval: in Backup, the interval of the master being followed (VRRPv3
    /// adopts it, RFC 5798 6.4.2); otherwise our own.
    pub fn master_adver_interval(&self) -> AdvertInterval {
        self.master_adver_interval
    }

    /// Skew_Time (RFC 5798 6.1) with the current priority and Master_Adver_Interval.
    pub fn skew_time(&self) -> Duration {
        timers::skew_time(
            self.config.version,
            self.priority(),
            self.master_adver_interval,
        )
    }

    /// Master_Down_Interval (RFC 5798 6.1) with the current priority and Master_Adver_Interval:
    /// how long a backup waits without advertisements before it takes over.
    pub fn master_down_interval(&self) -> Duration {
        timers::master_down_interval(
            self.config.version,
            self.priority(),
            self.master_adver_interval,
        )
    }

    /// In Backup, the address of the master whose advertisements we accept, once one was heard.
    pub fn master_address(&self) -> Option<IpAddr> {
        match self.state {
            State::Master => Some(self.config.primary_address),
            State::Backup => self.master.map(|heard| heard.address),
            State::Initialize | State::Fault => None,
        }
    }

    /// The graceful release in progress, if any.
    pub fn handover(&self) -> Option<Handover> {
        self.handover
    }

    /// Whether the virtual addresses should be on the interface now: in Master, and while a
    /// graceful release waits for the new master.
    pub fn holds_addresses(&self) -> bool {
        self.state == State::Master || self.handover.is_some()
    }

    /// The longest a graceful release waits: the Master_Down_Interval of a backup of the
    /// lowest priority (RFC 5798 6.1), the time the slowest backup takes to become master if
    /// it missed the priority-0 advertisement. Past it nobody is coming.
    pub fn handover_bound(&self) -> Duration {
        timers::master_down_interval(self.config.version, 1, self.master_adver_interval)
    }

    /// The deadline of `timer`, if armed.
    pub fn timer_deadline(&self, timer: TimerKind) -> Option<Timestamp> {
        self.timers.get(timer)
    }

    /// The earliest armed timer: the shell sleeps until its deadline, then feeds
    /// [`Input::TimerFired`] with its kind.
    pub fn next_timer(&self) -> Option<(TimerKind, Timestamp)> {
        TimerKind::ALL
            .iter()
            .filter_map(|kind| self.timers.get(*kind).map(|deadline| (*kind, deadline)))
            .min_by_key(|(_, deadline)| *deadline)
    }

    // --- inputs ------------------------------------------------------------------------------

    fn startup(&mut self, now: Timestamp, out: &mut Vec<Action>) {
        if self.state != State::Initialize {
            return;
        }
        if let Some(limit) = self.config.startup_limit.filter(|l| !l.is_zero()) {
            self.awaiting_trackers = true;
            self.arm(TimerKind::StartupLimit, now + limit);
        }
        match self.fault_cause() {
            Some(cause) => self.set_state(State::Fault, Reason::Fault(cause), out),
            None => self.start_running(now, Reason::Startup, out),
        }
    }

    /// Whether a safe-boot wait is on: the instance will not become master until its
    /// trackers have reported or the limit passed.
    pub fn awaiting_trackers(&self) -> bool {
        self.awaiting_trackers
    }

    fn end_startup_wait(&mut self, now: Timestamp, end: StartupWaitEnd, out: &mut Vec<Action>) {
        if !self.awaiting_trackers {
            return;
        }
        self.awaiting_trackers = false;
        self.disarm(TimerKind::StartupLimit);
        out.push(Action::StartupWaitEnded(end));
        if self.state == State::Backup && self.deferred_master_down {
            if self.config.is_owner() {
                self.deferred_master_down = false;
                self.become_master(now, Reason::StartupAsOwner, out);
            } else {
                // The timer fired during the wait. Let it fire again after Skew_Time rather
                // than at once: when every node boots together (a power loss) their waits end
                // together, and this way the highest priority speaks first and the others hear
                // it before their own Skew_Time is over, as at an RFC 5798 startup.
                self.arm(TimerKind::MasterDown, now + self.skew_time());
            }
        }
    }

    fn resume(&mut self, now: Timestamp, was_master: bool, out: &mut Vec<Action>) {
        if self.state != State::Initialize {
            return;
        }
        if !was_master || self.fault_cause().is_some() {
            return self.startup(now, out);
        }
        // RFC 5798 6.4.1's Master entry minus the announcements: the predecessor sent them
        // when the addresses arrived, and they have not moved since.
        self.master_adver_interval = self.config.advert_interval;
        self.set_state(State::Master, Reason::Resumed, out);
        self.send_advertisement(self.priority(), out);
        // Already on the interface; adding is idempotent and makes sure of it.
        out.push(self.add_addresses(self.config.virtual_addresses.clone()));
        if let Some(refresh) = self.config.announcements.refresh_interval {
            self.arm(TimerKind::AnnounceRefresh, now + refresh);
        }
        self.arm(
            TimerKind::Advert,
            now + self.config.advert_interval.as_duration(),
        );
    }

    fn hand_off(&mut self, out: &mut Vec<Action>) {
        if self.state == State::Initialize {
            return;
        }
        for kind in TimerKind::ALL {
            self.disarm(kind);
        }
        self.handover = None;
        self.announce_rounds_left = 0;
        self.awaiting_trackers = false;
        self.set_state(State::Initialize, Reason::HandedOff, out);
    }

    fn shutdown(&mut self, now: Timestamp, out: &mut Vec<Action>) {
        self.awaiting_trackers = false;
        self.disarm(TimerKind::StartupLimit);
        match self.state {
            // RFC 5798 6.4.3: cancel the Adver_Timer, send priority 0, go to Initialize.
            State::Master => {
                let release = self.release_with_priority_zero(now);
                self.leave_master(State::Initialize, Reason::Shutdown, release, out);
            }
            // RFC 5798 6.4.2: cancel the Master_Down_Timer, go to Initialize.
            State::Backup => {
                self.stop_backup_timers();
                self.set_state(State::Initialize, Reason::Shutdown, out);
            }
            State::Fault => self.set_state(State::Initialize, Reason::Shutdown, out),
            State::Initialize => {}
        }
    }

    fn tracking_changed(&mut self, now: Timestamp, tracking: Tracking, out: &mut Vec<Action>) {
        // The owner's priority is fixed (RFC 5798 5.2.4); anyone else stays within 1..=254 so a
        // tracker can never make a router claim ownership or advertise the reserved 0.
        let priority = if self.config.is_owner() {
            OWNER_PRIORITY
        } else {
            tracking.priority.clamp(1, OWNER_PRIORITY - 1)
        };
        // A new priority needs no action now: a master advertises it with its next
        // advertisement, a backup uses it from its next Master_Down_Timer reset.
        self.tracking = Tracking {
            priority,
            fault: tracking.fault,
        };
        self.reevaluate_fault(now, out);
    }

    fn reevaluate_fault(&mut self, now: Timestamp, out: &mut Vec<Action>) {
        match (self.state, self.fault_cause()) {
            (State::Master, Some(cause)) => {
                // Like keepalived, a master that faults sends priority 0 so a backup takes over
                // after Skew_Time, unless the interface is down and nothing can be sent.
                let release = if cause.interface_down {
                    Release::Silently
                } else {
                    Release::WithPriorityZero
                };
                self.leave_master(State::Fault, Reason::Fault(cause), release, out);
            }
            (State::Backup, Some(cause)) => {
                self.stop_backup_timers();
                self.set_state(State::Fault, Reason::Fault(cause), out);
            }
            (State::Fault, None) => self.start_running(now, Reason::FaultCleared, out),
            _ => {}
        }
    }

    fn timer_fired(&mut self, now: Timestamp, kind: TimerKind, out: &mut Vec<Action>) {
        let slot = self.timers.slot(kind);
        match *slot {
            Some(deadline) if now >= deadline => *slot = None,
            // Re-armed for later, or cancelled, since this firing was scheduled.
            _ => {
                self.counters.stale_timer_firings += 1;
                return;
            }
        }
        if kind == TimerKind::StartupLimit {
            self.end_startup_wait(now, StartupWaitEnd::LimitReached, out);
            return;
        }
        if kind == TimerKind::Handover {
            // Nobody took over within the bound: let go anyway.
            self.finish_handover(now, None, out);
            return;
        }
        match (self.state, kind) {
            (State::Master, TimerKind::Advert) => {
                // RFC 5798 6.4.3: send an ADVERTISEMENT, reset the Adver_Timer.
                self.send_advertisement(self.priority(), out);
                self.arm(
                    TimerKind::Advert,
                    now + self.config.advert_interval.as_duration(),
                );
            }
            (State::Backup, TimerKind::MasterDown) => self.master_down_fired(now, out),
            (State::Backup, TimerKind::PreemptDelay) => {
                // The lower master's adverts kept the Master_Down_Timer armed through the delay,
                // so it is alive; report it as preempted.
                let reason = match self.lower_master {
                    Some(lower) => Reason::Preempted {
                        master: lower.address,
                        master_priority: lower.priority,
                    },
                    None => Reason::MasterDown,
                };
                self.become_master(now, reason, out);
            }
            (State::Master, TimerKind::AnnounceBurst) => {
                self.announce(out);
                self.announce_rounds_left = self.announce_rounds_left.saturating_sub(1);
                if self.announce_rounds_left > 0 {
                    let spacing = self.config.announcements.burst_spacing;
                    self.arm(TimerKind::AnnounceBurst, now + spacing);
                }
            }
            (State::Master, TimerKind::AnnounceRepeat) => {
                self.start_burst(now, self.config.announcements.burst_count, out);
            }
            (State::Master, TimerKind::AnnounceRefresh) => {
                self.start_burst(now, self.config.announcements.refresh_count, out);
                if let Some(refresh) = self.config.announcements.refresh_interval {
                    self.arm(TimerKind::AnnounceRefresh, now + refresh);
                }
            }
            // Leaving a state disarms its timers, so these cannot be armed here; count them as
            // stale rather than act on them.
            _ => self.counters.stale_timer_firings += 1,
        }
    }

    fn master_down_fired(&mut self, now: Timestamp, out: &mut Vec<Action>) {
        if self.awaiting_trackers {
            // Safe boot: whatever the timer says, health comes first. Any advert that would
            // have reset the timer re-arms it and clears this (see `arm`).
            self.deferred_master_down = true;
            return;
        }
        let preempt_delay = self.config.preempt_delay;
        let live_lower = self.live_lower_master(now);
        if let Some(lower) = live_lower {
            if !preempt_delay.is_zero() && self.timers.preempt_delay.is_none() {
                // keepalived preempt_delay: preempting a live lower-priority master happens
                // that much later than it otherwise would. Meanwhile its adverts keep proving it
                // alive; if it goes silent we take over at once when this timer fires again.
                self.arm(TimerKind::PreemptDelay, now + preempt_delay);
                let liveness = lower.at + self.master_down_interval();
                self.arm(TimerKind::MasterDown, liveness);
                return;
            }
        }
        let reason = match live_lower {
            Some(lower) => Reason::Preempted {
                master: lower.address,
                master_priority: lower.priority,
            },
            None if self.master_released => Reason::MasterReleased,
            None => Reason::MasterDown,
        };
        // RFC 5798 6.4.2: Master_Down_Timer fired: become master.
        self.become_master(now, reason, out);
    }

    /// A lower-priority master heard within the last Master_Down_Interval.
    fn live_lower_master(&self, now: Timestamp) -> Option<Heard> {
        let window = self.master_down_interval();
        self.lower_master
            .filter(|heard| now.saturating_duration_since(heard.at) < window)
    }

    // --- receiving ---------------------------------------------------------------------------

    fn receive(&mut self, now: Timestamp, packet: &ReceivedPacket<'_>, out: &mut Vec<Action>) {
        let advert = match self.check(now, packet, out) {
            Ok(advert) => advert,
            Err((reason, detail)) => {
                self.counters.count_drop(reason);
                // The address-list check already reported itself with its own warning.
                if reason != DropReason::AddressList
                    && self.warning_due(now, WarningKind::Dropped(reason))
                {
                    out.push(Action::Warning(Warning::Dropped {
                        source: packet.source,
                        reason,
                        detail,
                    }));
                }
                return;
            }
        };
        self.counters.adverts_received += 1;
        if advert.priority == 0 {
            self.counters.priority_zero_received += 1;
        } else if self.handover.is_some() {
            // Another router advertises: it is the new master; our release is complete.
            self.finish_handover(now, Some(packet.source), out);
        }
        match self.state {
            State::Backup => self.backup_receive(now, &advert, packet.source),
            State::Master => self.master_receive(now, &advert, packet.source, out),
            // Not participating: checked and counted, nothing else.
            State::Initialize | State::Fault => {}
        }
    }

    /// The receive checks of RFC 5798 7.1 / RFC 3768 7.1, in their order where it matters:
    /// the configuration-only ones of the [`Screen`], then the address list with its
    /// warnings, the v3 interval and owner conflicts, which report themselves.
    fn check(
        &mut self,
        now: Timestamp,
        packet: &ReceivedPacket<'_>,
        out: &mut Vec<Action>,
    ) -> Result<Advertisement, (DropReason, Option<DropDetail>)> {
        let advert = self.screen.check(packet)?;
        // RFC 5798 7.1 / RFC 3768 7.1: MAY check the address list. Both log a mismatch; only
        // RFC 3768 drops the packet, and only when it is not from the owner (priority 255).
        if self.screen.address_list_differs(&advert) {
            self.counters.address_list_mismatches += 1;
            let dropped = self.screen.drops_address_list(&advert);
            let warning = Warning::AddressListMismatch {
                source: packet.source,
                advertised: advert.addresses.to_ip_addrs(),
                dropped,
            };
            self.warn(now, WarningKind::AddressList, warning, out);
            if dropped {
                return Err((DropReason::AddressList, None));
            }
        }
        let config = &self.config;
        if config.version == Version::V3 && advert.interval != config.advert_interval {
            let warning = Warning::AdvertIntervalDiffers {
                source: packet.source,
                theirs: advert.interval,
                ours: config.advert_interval,
            };
            self.warn(now, WarningKind::IntervalDiffers, warning, out);
        }
        // RFC 5798 7.1 drops advertisements received by the owner; RFC 9568 (erratum 8298)
        // turns that into a log. We follow RFC 9568: processing them lets two misconfigured
        // owners settle on one master by the address tie-break instead of both staying master.
        if self.config.is_owner() {
            let warning = Warning::OwnerConflict {
                source: packet.source,
                priority: advert.priority,
            };
            self.warn(now, WarningKind::OwnerConflict, warning, out);
        }
        Ok(advert)
    }

    /// RFC 5798 6.4.2 (RFC 9568 6.4.2): an ADVERTISEMENT received in Backup.
    fn backup_receive(&mut self, now: Timestamp, advert: &Advertisement, source: IpAddr) {
        if advert.priority == 0 {
            // The master is stepping down: take over after Skew_Time instead of
            // Master_Down_Interval, without waiting for any preempt delay.
            self.master_released = true;
            self.lower_master = None;
            self.disarm(TimerKind::PreemptDelay);
            self.arm(TimerKind::MasterDown, now + self.skew_time());
            return;
        }
        let ours = self.priority();
        if !self.preempts() || advert.priority >= ours {
            // RFC 5798 6.4.2: Master_Adver_Interval = the advertised interval (VRRPv3 only:
            // VRRPv2 dropped any other interval already), recompute Skew_Time and
            // Master_Down_Interval (RFC 9568 names both), reset the Master_Down_Timer.
            if self.config.version == Version::V3 {
                self.master_adver_interval = advert.interval;
            }
            self.master = Some(Heard {
                address: source,
                priority: advert.priority,
                at: now,
            });
            self.master_released = false;
            if advert.priority >= ours {
                self.lower_master = None;
                self.disarm(TimerKind::PreemptDelay);
            }
            self.arm(TimerKind::MasterDown, now + self.master_down_interval());
        } else {
            // RFC 5798 6.4.2: Preempt_Mode and a lower priority: discard, so the
            // Master_Down_Timer runs out and we preempt. Remember the master to report it
            // and to apply a preempt delay.
            self.lower_master = Some(Heard {
                address: source,
                priority: advert.priority,
                at: now,
            });
            if self.timers.preempt_delay.is_some() {
                // During a preempt delay the lower master's adverts prove it alive.
                self.arm(TimerKind::MasterDown, now + self.master_down_interval());
            }
        }
    }

    /// RFC 5798 6.4.3 (RFC 9568 6.4.3): an ADVERTISEMENT received in Master.
    fn master_receive(
        &mut self,
        now: Timestamp,
        advert: &Advertisement,
        source: IpAddr,
        out: &mut Vec<Action>,
    ) {
        if advert.priority == 0 {
            // Another master stepped down: assert ourselves at once, reset the Adver_Timer.
            self.send_advertisement(self.priority(), out);
            self.arm(
                TimerKind::Advert,
                now + self.config.advert_interval.as_duration(),
            );
            return;
        }
        let ours = self.priority();
        let reason = if advert.priority > ours {
            Some(Reason::HigherPriority {
                source,
                priority: advert.priority,
            })
        } else if advert.priority == ours && address_greater(source, self.config.primary_address) {
            Some(Reason::EqualPriorityHigherAddress { source })
        } else {
            None
        };
        match reason {
            Some(reason) => {
                // Cancel the Adver_Timer, adopt the master's interval, recompute Skew_Time and
                // Master_Down_Interval, arm the Master_Down_Timer, go to Backup.
                self.leave_master(State::Backup, reason, Release::Silently, out);
                if self.config.version == Version::V3 {
                    self.master_adver_interval = advert.interval;
                }
                self.master = Some(Heard {
                    address: source,
                    priority: advert.priority,
                    at: now,
                });
                self.arm(TimerKind::MasterDown, now + self.master_down_interval());
            }
            None => self.answer_lower_priority(now, out),
        }
    }

    /// RFC 9568 6.4.3: a master that hears a lower priority discards it and sends an
    /// advertisement immediately, so the other router (two masters after a partition heals)
    /// steps down within one network delay and learning bridges relearn our path. keepalived
    /// also re-announces the addresses (`garp_lower_prio_repeat`) so hosts that followed the
    /// other master come back. Rate-limited to once per advertisement interval, which is enough
    /// (every router hears the answer) and stops a ping-pong with a misconfigured peer.
    fn answer_lower_priority(&mut self, now: Timestamp, out: &mut Vec<Action>) {
        let interval = self.config.advert_interval.as_duration();
        let due = self
            .last_lower_priority_answer
            .is_none_or(|last| now.saturating_duration_since(last) >= interval);
        if !due {
            return;
        }
        self.last_lower_priority_answer = Some(now);
        self.send_advertisement(self.priority(), out);
        let rounds = self.config.announcements.lower_priority_burst_count;
        if rounds > 0 {
            self.start_burst(now, rounds, out);
            if let Some(delay) = self.config.announcements.second_burst_delay {
                self.arm(TimerKind::AnnounceRepeat, now + delay);
            }
        }
    }

    // --- transitions -------------------------------------------------------------------------

    /// Startup, or the end of a fault: RFC 5798 6.4.1.
    fn start_running(&mut self, now: Timestamp, reason: Reason, out: &mut Vec<Action>) {
        if self.priority() == OWNER_PRIORITY && self.awaiting_trackers {
            // Safe boot for the owner: a backup that would be master at once, as soon as its
            // trackers have reported.
            self.master = None;
            self.lower_master = None;
            self.set_state(State::Backup, reason, out);
            self.deferred_master_down = true;
        } else if self.priority() == OWNER_PRIORITY {
            // The owner becomes master at once.
            let reason = if reason == Reason::Startup {
                Reason::StartupAsOwner
            } else {
                reason
            };
            self.become_master(now, reason, out);
        } else {
            // Everyone else waits as backup for Master_Down_Interval, with our own interval as
            // Master_Adver_Interval until a master is heard.
            self.master_adver_interval = self.config.advert_interval;
            self.master = None;
            self.lower_master = None;
            self.master_released = false;
            self.set_state(State::Backup, reason, out);
            self.arm(TimerKind::MasterDown, now + self.master_down_interval());
        }
    }

    /// RFC 5798 6.4.1 / 6.4.2: send an ADVERTISEMENT, announce the addresses, set the
    /// Adver_Timer, become Master.
    fn become_master(&mut self, now: Timestamp, reason: Reason, out: &mut Vec<Action>) {
        self.stop_backup_timers();
        self.master = None;
        self.lower_master = None;
        self.master_released = false;
        self.last_lower_priority_answer = None;
        // A release still waiting for a new master leaves the addresses in place: keep them.
        let holding = self.handover.is_some();
        if let Some(handover) = self.handover.take() {
            self.disarm(TimerKind::Handover);
            let waited = now.saturating_duration_since(handover.started);
            out.push(Action::HandoverFinished(HandoverOutcome::Resumed {
                waited,
            }));
        }
        self.set_state(State::Master, reason, out);
        self.send_advertisement(self.priority(), out);
        if !holding {
            out.push(self.add_addresses(self.config.virtual_addresses.clone()));
        }
        let announcements = self.config.announcements.clone();
        self.start_burst(now, announcements.burst_count, out);
        if let Some(delay) = announcements.second_burst_delay {
            self.arm(TimerKind::AnnounceRepeat, now + delay);
        }
        if let Some(refresh) = announcements.refresh_interval {
            self.arm(TimerKind::AnnounceRefresh, now + refresh);
        }
        self.arm(
            TimerKind::Advert,
            now + self.config.advert_interval.as_duration(),
        );
    }

    /// Leaves Master for `to`: cancel the master's timers, then let the addresses go as
    /// `release` says (RFC 5798 6.4.3: a shutdown sends priority 0).
    fn leave_master(&mut self, to: State, reason: Reason, release: Release, out: &mut Vec<Action>) {
        for timer in [
            TimerKind::Advert,
            TimerKind::AnnounceBurst,
            TimerKind::AnnounceRepeat,
            TimerKind::AnnounceRefresh,
        ] {
            self.disarm(timer);
        }
        self.announce_rounds_left = 0;
        self.last_lower_priority_answer = None;
        self.set_state(to, reason, out);
        match release {
            Release::Silently => self.remove_addresses(out),
            Release::WithPriorityZero => {
                self.remove_addresses(out);
                self.send_advertisement(0, out);
            }
            Release::Gracefully { now } => {
                // Keep the addresses until the new master is heard (see the module docs).
                self.send_advertisement(0, out);
                let deadline = now + self.handover_bound();
                self.handover = Some(Handover {
                    started: now,
                    deadline,
                });
                self.arm(TimerKind::Handover, deadline);
            }
        }
    }

    /// How a master that sends priority 0 lets go of the addresses.
    fn release_with_priority_zero(&self, now: Timestamp) -> Release {
        if self.config.graceful_release {
            Release::Gracefully { now }
        } else {
            Release::WithPriorityZero
        }
    }

    /// An operator's step-down: leave Master as on shutdown, then stay in Fault until
    /// restored, so the trackers cannot bring this router back meanwhile.
    fn step_down(&mut self, now: Timestamp, out: &mut Vec<Action>) {
        if self.state != State::Master {
            return;
        }
        self.stepped_down = true;
        let Some(cause) = self.fault_cause() else {
            return;
        };
        let release = self.release_with_priority_zero(now);
        self.leave_master(State::Fault, Reason::Fault(cause), release, out);
    }

    /// Ends the graceful release in progress, if any: `new_master` was heard, or (None)
    /// nobody will be. The addresses go unless this router is master again.
    fn finish_handover(
        &mut self,
        now: Timestamp,
        new_master: Option<IpAddr>,
        out: &mut Vec<Action>,
    ) {
        let Some(handover) = self.handover.take() else {
            return;
        };
        self.disarm(TimerKind::Handover);
        let waited = now.saturating_duration_since(handover.started);
        if self.state != State::Master {
            self.remove_addresses(out);
        }
        let outcome = match new_master {
            Some(new_master) => {
                self.counters.handovers_completed += 1;
                HandoverOutcome::HandedOver { new_master, waited }
            }
            None => {
                self.counters.handovers_timed_out += 1;
                HandoverOutcome::NobodyTookOver { waited }
            }
        };
        out.push(Action::HandoverFinished(outcome));
    }

    /// Someone removed one of our addresses while we hold them: put it back and announce it.
    fn address_removed(&mut self, address: IpAddr, out: &mut Vec<Action>) {
        if !self.holds_addresses() || !self.config.virtual_addresses.contains(&address) {
            return;
        }
        self.counters.addresses_restored += 1;
        out.push(self.add_addresses(vec![address]));
        self.counters.announcement_rounds += 1;
        out.push(Action::Announce {
            addresses: vec![address],
        });
        out.push(Action::AddressRestored { address });
    }

    fn add_addresses(&self, addresses: Vec<IpAddr>) -> Action {
        Action::AddAddresses {
            addresses,
            // RFC 5798 6.4.3: the owner always accepts packets for its addresses.
            accept_mode: self.config.accept_mode || self.config.is_owner(),
        }
    }

    fn remove_addresses(&self, out: &mut Vec<Action>) {
        out.push(Action::RemoveAddresses {
            addresses: self.config.virtual_addresses.clone(),
        });
    }

    fn stop_backup_timers(&mut self) {
        self.disarm(TimerKind::MasterDown);
        self.disarm(TimerKind::PreemptDelay);
    }

    fn set_state(&mut self, to: State, reason: Reason, out: &mut Vec<Action>) {
        let from = self.state;
        self.state = to;
        if to == State::Master {
            self.counters.became_master += 1;
        }
        out.push(Action::StateChanged { from, to, reason });
    }

    /// The owner preempts whatever Preempt_Mode says (RFC 5798 6.1).
    fn preempts(&self) -> bool {
        self.config.preempt || self.priority() == OWNER_PRIORITY
    }

    // --- output helpers ----------------------------------------------------------------------

    /// One advertisement with `priority` to the multicast group, or one per unicast peer.
    fn send_advertisement(&mut self, priority: u8, out: &mut Vec<Action>) {
        let advertisement = Advertisement {
            version: self.config.version,
            vrid: self.config.vrid,
            priority,
            interval: self.config.advert_interval,
            addresses: self.advertised_addresses.clone(),
            authentication: self.config.authentication,
        };
        let destinations = if self.config.is_unicast() {
            self.config.unicast_peers.clone()
        } else {
            vec![self.config.family().multicast_group()]
        };
        for destination in destinations {
            let context = ChecksumContext {
                source: self.config.primary_address,
                destination,
                v3_ipv4_checksum: self.config.v3_ipv4_checksum,
            };
            // InstanceConfig::validate guarantees an encodable advertisement (family, interval range,
            // address count, auth only in v2), so this never skips; it just cannot panic.
            let Ok(payload) = packet::encode(&advertisement, &context) else {
                continue;
            };
            self.counters.adverts_sent += 1;
            if priority == 0 {
                self.counters.priority_zero_sent += 1;
            }
            out.push(Action::SendAdvertisement(OutgoingAdvertisement {
                source: self.config.primary_address,
                destination,
                ttl: REQUIRED_TTL,
                payload,
                advertisement: advertisement.clone(),
            }));
        }
    }

    /// Starts a burst of `rounds` announcement rounds, replacing any burst in progress.
    fn start_burst(&mut self, now: Timestamp, rounds: u32, out: &mut Vec<Action>) {
        if rounds == 0 {
            return;
        }
        let spacing = self.config.announcements.burst_spacing;
        if spacing.is_zero() {
            for _ in 0..rounds {
                self.announce(out);
            }
            self.announce_rounds_left = 0;
            self.disarm(TimerKind::AnnounceBurst);
        } else {
            self.announce(out);
            self.announce_rounds_left = rounds - 1;
            if self.announce_rounds_left > 0 {
                self.arm(TimerKind::AnnounceBurst, now + spacing);
            } else {
                self.disarm(TimerKind::AnnounceBurst);
            }
        }
    }

    fn announce(&mut self, out: &mut Vec<Action>) {
        self.counters.announcement_rounds += 1;
        out.push(Action::Announce {
            addresses: self.config.virtual_addresses.clone(),
        });
    }

    fn arm(&mut self, timer: TimerKind, deadline: Timestamp) {
        if timer == TimerKind::MasterDown {
            self.deferred_master_down = false;
        }
        *self.timers.slot(timer) = Some(deadline);
    }

    fn disarm(&mut self, timer: TimerKind) {
        *self.timers.slot(timer) = None;
    }

    fn warn(&mut self, now: Timestamp, kind: WarningKind, warning: Warning, out: &mut Vec<Action>) {
        if self.warning_due(now, kind) {
            out.push(Action::Warning(warning));
        }
    }

    /// Whether a warning of `kind` may be reported now (and if so, notes that it is).
    fn warning_due(&mut self, now: Timestamp, kind: WarningKind) -> bool {
        match self
            .warnings_sent
            .iter_mut()
            .find(|(sent, _)| *sent == kind)
        {
            Some((_, last)) => {
                if now.saturating_duration_since(*last) < WARNING_HOLDOFF {
                    return false;
                }
                *last = now;
            }
            None => self.warnings_sent.push((kind, now)),
        }
        true
    }
}

/// How a master leaving its state lets go of the addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Release {
    /// Remove them, send nothing (a higher priority was heard, or the link is down).
    Silently,
    /// Remove them and send priority 0 (RFC 5798 6.4.3).
    WithPriorityZero,
    /// Send priority 0, keep them until the new master is heard ([`Handover`]).
    Gracefully { now: Timestamp },
}

/// RFC 5798 6.4.3 tie-break: whether `theirs` is greater than `ours`, compared as unsigned
/// integers in network byte order (RFC 9568 6.4.3 spells this out).
fn address_greater(theirs: IpAddr, ours: IpAddr) -> bool {
    match (theirs, ours) {
        (IpAddr::V4(theirs), IpAddr::V4(ours)) => u32::from(theirs) > u32::from(ours),
        (IpAddr::V6(theirs), IpAddr::V6(ours)) => u128::from(theirs) > u128::from(ours),
        // The receive checks drop other families before this is reached.
        _ => false,
    }
}

#[cfg(test)]
mod tests;
