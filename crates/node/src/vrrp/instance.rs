//! One VRRP instance on the wire: a task that owns a `havip_vrrp::Instance`, feeds it what
//! happens (packets from the interface's receive path, its timer, link, address and tracker
//! changes, operator commands, shutdown) and carries out the actions it returns through an
//! [`InstanceIo`] (send adverts, add, remove and announce the virtual addresses), besides
//! logging, notify commands, events and status. Every protocol decision is the core's: the
//! task decodes nothing and keeps no protocol state of its own.
//!
//! Lifecycle: [`InstanceTask::run`] removes addresses a crashed run left behind, feeds
//! Startup, then loops over its inbox and the core's next timer. [`Control::Shutdown`] feeds
//! Shutdown; the task ends once the core holds no address any more, which with graceful
//! release is when the new master has been heard or the hand-over bound has passed (issue #4:
//! keepalived removes the addresses at once, which costs clients the Skew_Time).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use havip_vrrp::{
    Action, HandoverOutcome, Input, Instance, Reason, ReceivedPacket, StartupWaitEnd, State,
    Timestamp, Tracking, Warning,
};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::io::{InstanceIo, ResolvedVip};
use super::notify::Notification;
use super::status::{state_name, EventLog, InstanceStatus, StatusSlot};

/// A VRRP packet as the receive path hands it over.
#[derive(Debug, Clone)]
pub struct OwnedPacket {
    /// IP source address: the sender's primary address.
    pub source: IpAddr,
    /// IP destination address: the VRRP group, or our address in unicast mode.
    pub destination: IpAddr,
    /// IPv4 TTL or IPv6 hop limit as received; the core checks it is 255 (RFC 5798 7.1).
    pub ttl: u8,
    /// The VRRP message (the IP payload), not yet decoded.
    pub payload: Vec<u8>,
}

/// What an instance task is told.
#[derive(Debug)]
pub enum Control {
    /// A packet of this instance's VRID.
    Packet(OwnedPacket),
    /// The instance's interface changed (up = IFF_UP with carrier).
    Link {
        /// Whether it is up now.
        up: bool,
    },
    /// An address went away from some interface.
    AddressRemoved {
        /// The interface it was on.
        ifindex: u32,
        /// The address.
        address: IpAddr,
    },
    /// The trackers moved the priority or the fault condition.
    Tracking(Tracking),
    /// Netlink lost events: re-read link state and our addresses.
    Resync,
    /// Stop: release the VIP (gracefully), then answer.
    Shutdown(oneshot::Sender<()>),
    /// Stop because a successor process took this instance over (a binary upgrade): no
    /// priority 0, the VIP stays where it is; then answer.
    HandOff(oneshot::Sender<()>),
    /// Safe boot: every tracker this instance follows has its first result.
    TrackersReady,
    /// A failover drill: a master hands the VIP over as on shutdown and stays out of the
    /// election until [`Control::Restore`]. Answers with what happened.
    StepDown(oneshot::Sender<StepDownResult>),
    /// End a step-down: back to the trackers' priority.
    Restore(oneshot::Sender<()>),
    /// A reload's new settings for this instance (the same virtual router, see
    /// `havip_vrrp::Instance::can_reconfigure`), with the trackers' verdict under them.
    Reconfigure {
        /// The new protocol configuration.
        config: Box<havip_vrrp::InstanceConfig>,
        /// The trackers' verdict with the new settings.
        tracking: Tracking,
    },
}

/// What a step-down did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepDownResult {
    /// The VIP was released after `new_master` was heard `waited` after priority 0.
    HandedOver {
        /// The router whose advertisement ended the hand-over.
        new_master: IpAddr,
        /// From priority 0 to that advertisement.
        waited: Duration,
    },
    /// No new master was heard within the bound; the VIP was released anyway.
    NobodyTookOver {
        /// How long the release waited.
        waited: Duration,
    },
    /// This instance is not master; nothing to do.
    NotMaster,
}

/// The task of one instance.
pub struct InstanceTask<Io> {
    name: String,
    interface: String,
    instance: Instance,
    vips: Vec<ResolvedVip>,
    link_up_at_start: bool,
    resume: Option<bool>,
    io: Io,
    status: StatusSlot,
    events: Arc<EventLog>,
    notify: mpsc::UnboundedSender<Notification>,
    /// The origin of the instance's timestamps.
    base: Instant,
    /// The operator waiting for the step-down in progress.
    step_down_reply: Option<oneshot::Sender<StepDownResult>>,
    /// Set by [`Control::Shutdown`]: answered when the task ends.
    shutdown_reply: Option<oneshot::Sender<()>>,
}

/// What an instance task is made of (see [`InstanceTask::new`]).
pub struct InstanceParts<Io> {
    /// The instance's name, for logs, events and notify commands.
    pub name: String,
    /// The instance's interface, for logs.
    pub interface: String,
    /// The protocol core, in Initialize.
    pub instance: Instance,
    /// The virtual addresses with their interfaces.
    pub vips: Vec<ResolvedVip>,
    /// Whether the interface was up when the node started.
    pub link_up: bool,
    /// `Some(was_master)` when a predecessor process on this node ran this instance (a
    /// binary upgrade): resume its state instead of starting afresh.
    pub resume: Option<bool>,
    /// Sockets and netlink, or a recorder in tests.
    pub io: Io,
    /// Where the task publishes its status.
    pub status: StatusSlot,
    /// The node's event log.
    pub events: Arc<EventLog>,
    /// The instance's notify worker.
    pub notify: mpsc::UnboundedSender<Notification>,
}

impl<Io: InstanceIo> InstanceTask<Io> {
    /// A task from its parts; nothing happens until [`InstanceTask::run`].
    pub fn new(parts: InstanceParts<Io>) -> Self {
        InstanceTask {
            name: parts.name,
            interface: parts.interface,
            instance: parts.instance,
            vips: parts.vips,
            link_up_at_start: parts.link_up,
            resume: parts.resume,
            io: parts.io,
            status: parts.status,
            events: parts.events,
            notify: parts.notify,
            base: Instant::now(),
            step_down_reply: None,
            shutdown_reply: None,
        }
    }

    /// Run until shut down (or until the inbox closes).
    pub async fn run(mut self, mut inbox: mpsc::Receiver<Control>) {
        self.base = Instant::now();
        // A crashed run may have left our addresses behind; as a fresh backup we hold nothing.
        // A master resumed from its predecessor holds them and keeps them.
        if self.resume != Some(true) {
            self.remove_stale_addresses();
        }
        if !self.link_up_at_start {
            self.handle(Input::InterfaceDown);
        }
        match self.resume {
            Some(was_master) => self.handle(Input::Resume { was_master }),
            None => self.handle(Input::Startup),
        }
        loop {
            if self.shutdown_reply.is_some() && !self.instance.holds_addresses() {
                break;
            }
            let deadline = self
                .instance
                .next_timer()
                .map(|(_, at)| self.base + at.elapsed_since_origin());
            tokio::select! {
                message = inbox.recv() => match message {
                    Some(message) => self.on_control(message),
                    None => return,
                },
                () = sleep_until(deadline) => self.fire_due_timers(),
            }
        }
        self.publish();
        if let Some(done) = self.shutdown_reply.take() {
            let _ = done.send(());
        }
    }

    fn now(&self) -> Timestamp {
        Timestamp::from_elapsed(self.base.elapsed())
    }

    /// Feed one input to the core and carry out what it says.
    fn handle(&mut self, input: Input<'_>) {
        let now = self.now();
        let actions = self.instance.handle(now, input);
        self.execute(actions);
    }

    fn fire_due_timers(&mut self) {
        // Several timers may be due at once; each firing may re-arm others.
        for _ in 0..16 {
            let Some((kind, deadline)) = self.instance.next_timer() else {
                return;
            };
            if deadline > self.now() {
                return;
            }
            self.handle(Input::TimerFired(kind));
        }
    }

    fn on_control(&mut self, message: Control) {
        match message {
            Control::Packet(packet) => self.handle(Input::Packet(ReceivedPacket {
                source: packet.source,
                destination: packet.destination,
                ttl: packet.ttl,
                payload: &packet.payload,
            })),
            Control::Link { up } => self.link_changed(up),
            Control::AddressRemoved { ifindex, address } => {
                if self
                    .vips
                    .iter()
                    .any(|v| v.address == address && v.ifindex == ifindex)
                {
                    self.handle(Input::AddressRemoved(address));
                }
            }
            Control::Tracking(tracking) => self.handle(Input::TrackingChanged(tracking)),
            Control::Resync => self.resync(),
            Control::Shutdown(done) => {
                self.with_status(|status| status.stopping = true);
                self.shutdown_reply = Some(done);
                self.handle(Input::Shutdown);
            }
            Control::HandOff(done) => {
                self.with_status(|status| status.stopping = true);
                self.shutdown_reply = Some(done);
                self.handle(Input::HandOff);
            }
            Control::StepDown(reply) => self.step_down(reply),
            Control::TrackersReady => self.handle(Input::TrackersReady),
            Control::Reconfigure { config, tracking } => self.reconfigure(*config, tracking),
            Control::Restore(reply) => {
                if self.instance.fault_cause().is_some_and(|c| c.stepped_down) {
                    tracing::info!(instance = %self.name, "drill over: back to the trackers' priority");
                    self.event("restore", "drill over".into());
                }
                self.handle(Input::Restore);
                let _ = reply.send(());
            }
        }
    }

    fn reconfigure(&mut self, config: havip_vrrp::InstanceConfig, tracking: Tracking) {
        let now = self.now();
        let priority = config.priority;
        match self.instance.reconfigure(now, config, tracking) {
            Ok(actions) => {
                tracing::info!(instance = %self.name, priority, "settings reloaded in place");
                self.with_status(|s| s.configured_priority = priority);
                self.execute(actions);
            }
            // The node checks this before it asks; the running settings stay if it happens.
            Err(error) => {
                tracing::error!(instance = %self.name, %error, "reload refused by the instance")
            }
        }
    }

    fn link_changed(&mut self, up: bool) {
        let was_down = self.link_down();
        self.handle(if up {
            Input::InterfaceUp
        } else {
            Input::InterfaceDown
        });
        if was_down != self.link_down() {
            tracing::warn!(instance = %self.name, interface = %self.interface, up, "interface {}", if up { "up" } else { "down" });
        }
    }

    fn link_down(&self) -> bool {
        self.instance
            .fault_cause()
            .is_some_and(|cause| cause.interface_down)
    }

    fn step_down(&mut self, reply: oneshot::Sender<StepDownResult>) {
        if self.instance.state() != State::Master || self.step_down_reply.is_some() {
            let _ = reply.send(StepDownResult::NotMaster);
            return;
        }
        tracing::warn!(instance = %self.name, "drill: stepping down");
        self.event("step_down", "drill".into());
        self.step_down_reply = Some(reply);
        self.handle(Input::StepDown);
        if self.instance.handover().is_none() {
            // Released at once (no graceful release configured).
            self.answer_step_down(StepDownResult::NobodyTookOver {
                waited: Duration::ZERO,
            });
        }
    }

    fn answer_step_down(&mut self, result: StepDownResult) {
        if let Some(reply) = self.step_down_reply.take() {
            let _ = reply.send(result);
        }
    }

    /// After a netlink overrun: compare what we know with what the kernel says.
    fn resync(&mut self) {
        match self.io.link_up() {
            Ok(up) => self.link_changed(up.unwrap_or(false)),
            Err(error) => tracing::warn!(instance = %self.name, %error, "cannot read link state"),
        }
        match self.io.present(&self.vips) {
            Ok(present) => {
                let missing: Vec<IpAddr> = self
                    .vips
                    .iter()
                    .zip(present)
                    .filter(|(_, here)| !here)
                    .map(|(vip, _)| vip.address)
                    .collect();
                for address in missing {
                    self.handle(Input::AddressRemoved(address));
                }
            }
            Err(error) => tracing::warn!(instance = %self.name, %error, "cannot list addresses"),
        }
    }

    /// Perform `actions` in order, then publish the status.
    fn execute(&mut self, actions: Vec<Action>) {
        let master_before = self.instance_master_before();
        for action in actions {
            match action {
                Action::SendAdvertisement(advert) => {
                    if let Err(error) = self.io.send(&advert) {
                        self.with_status(|status| status.send_errors += 1);
                        tracing::warn!(instance = %self.name, to = %advert.destination, %error, "cannot send advertisement");
                    }
                }
                Action::AddAddresses { addresses, .. } => self.add_addresses(&addresses),
                Action::RemoveAddresses { addresses } => self.remove_addresses(&addresses),
                Action::Announce { addresses } => self.announce(&addresses),
                Action::StateChanged { from, to, reason } => self.state_changed(from, to, reason),
                Action::HandoverFinished(outcome) => self.handover_finished(outcome),
                Action::AddressRestored { address } => self.address_restored(address),
                Action::Warning(warning) => self.warn(warning),
                Action::StartupWaitEnded(end) => self.startup_wait_ended(end),
            }
        }
        let master_after = self.instance.master_address();
        if master_after.is_some() && master_after != master_before {
            self.with_status(|status| status.master_changes += 1);
        }
        self.publish();
    }

    fn instance_master_before(&self) -> Option<IpAddr> {
        self.status.lock().unwrap_or_else(|e| e.into_inner()).master
    }

    fn with_status(&self, update: impl FnOnce(&mut InstanceStatus)) {
        let mut guard = self.status.lock().unwrap_or_else(|e| e.into_inner());
        update(&mut guard);
    }

    fn publish(&self) {
        let instance = &self.instance;
        let (state, priority, master) = (
            instance.state(),
            instance.priority(),
            instance.master_address(),
        );
        let counters = instance.counters().clone();
        let master_down_interval = instance.master_down_interval();
        let holding = instance.holds_addresses();
        let handing_over = instance.handover().is_some();
        let stepped_down = instance.fault_cause().is_some_and(|c| c.stepped_down);
        let waiting = instance.awaiting_trackers();
        self.with_status(|status| {
            status.waiting_for_trackers = waiting;
            status.master_down_interval = master_down_interval;
            status.state = state;
            status.effective_priority = priority;
            status.master = master;
            status.counters = counters;
            status.holding_addresses = holding;
            status.handing_over = handing_over;
            status.stepped_down = stepped_down;
        });
    }

    fn startup_wait_ended(&self, end: StartupWaitEnd) {
        let detail = match end {
            StartupWaitEnd::TrackersReady => {
                tracing::info!(instance = %self.name, "every tracker has a first result; may become master now");
                "every tracker has a first result"
            }
            StartupWaitEnd::LimitReached => {
                tracing::warn!(instance = %self.name, "startup_limit passed before every tracker had a first result; going on with what is known");
                "startup_limit passed before every tracker had a first result"
            }
        };
        self.event("startup_wait_over", detail.into());
    }

    fn event(&self, kind: &'static str, detail: String) {
        self.events.push(&self.name, kind, None, None, detail);
    }

    fn state_changed(&mut self, from: State, to: State, reason: Reason) {
        let (from_name, to_name) = (state_name(from), state_name(to));
        let detail = describe(reason);
        if to == State::Master || from == State::Master || to == State::Fault {
            tracing::warn!(instance = %self.name, from = from_name, to = to_name, reason = %detail, "VRRP state change");
        } else {
            tracing::info!(instance = %self.name, from = from_name, to = to_name, reason = %detail, "VRRP state change");
        }
        let unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        self.with_status(|status| {
            *status.transitions.entry((from_name, to_name)).or_insert(0) += 1;
            status.last_change_unix_ms = Some(unix_ms);
        });
        self.events.push(
            &self.name,
            "state_change",
            Some(from_name),
            Some(to_name),
            detail,
        );
        // Across a binary upgrade nothing changed for the outside world: the scripts that
        // follow the state (moving a route, starting a service) have nothing to do.
        if matches!(reason, Reason::Resumed | Reason::HandedOff) {
            return;
        }
        // Initialize is where a stopped instance ends: keepalived calls that STOP.
        let to_notify = if to == State::Initialize {
            "STOP"
        } else {
            to_name
        };
        let _ = self.notify.send(Notification {
            instance: self.name.clone(),
            from: from_name,
            to: to_notify,
        });
    }

    fn handover_finished(&mut self, outcome: HandoverOutcome) {
        let result = match outcome {
            HandoverOutcome::HandedOver { new_master, waited } => {
                tracing::info!(instance = %self.name, %new_master, waited_ms = waited.as_millis() as u64, "new master heard; released the virtual addresses");
                self.event(
                    "handed_over",
                    format!(
                        "new master {new_master} heard {} ms after priority 0",
                        waited.as_millis()
                    ),
                );
                StepDownResult::HandedOver { new_master, waited }
            }
            HandoverOutcome::NobodyTookOver { waited } => {
                tracing::warn!(instance = %self.name, waited_ms = waited.as_millis() as u64, "no new master heard; released the virtual addresses anyway");
                self.event(
                    "released",
                    format!("no new master within {} ms", waited.as_millis()),
                );
                StepDownResult::NobodyTookOver { waited }
            }
            HandoverOutcome::Resumed { waited } => {
                tracing::warn!(instance = %self.name, waited_ms = waited.as_millis() as u64, "master again before anyone took over; kept the virtual addresses");
                self.event(
                    "resumed",
                    format!(
                        "master again {} ms after priority 0, nobody took over",
                        waited.as_millis()
                    ),
                );
                StepDownResult::NobodyTookOver { waited }
            }
        };
        self.answer_step_down(result);
    }

    fn address_restored(&mut self, address: IpAddr) {
        let interface = self
            .vips
            .iter()
            .find(|v| v.address == address)
            .map_or(self.interface.as_str(), |v| v.interface.as_str());
        tracing::warn!(instance = %self.name, %address, %interface, "virtual address was removed by someone else while held; added it again");
        self.events.push(
            &self.name,
            "address_restored",
            None,
            None,
            format!("{address} on {interface} was removed externally and added again"),
        );
        self.with_status(|status| status.addresses_restored += 1);
    }

    fn warn(&self, warning: Warning) {
        let name = &self.name;
        match warning {
            Warning::Dropped {
                source,
                reason,
                detail,
            } => {
                let detail = detail.map(|d| d.to_string()).unwrap_or_default();
                tracing::warn!(instance = %name, %source, reason = reason.name(), %detail, "advertisement dropped");
            }
            Warning::AddressListMismatch {
                source,
                advertised,
                dropped,
            } => {
                let advertised: Vec<String> = advertised.iter().map(|a| a.to_string()).collect();
                tracing::warn!(instance = %name, %source, advertised = %advertised.join(","), dropped, "advertised addresses differ from ours (RFC 5798 7.1)");
            }
            Warning::AdvertIntervalDiffers {
                source,
                theirs,
                ours,
            } => {
                tracing::warn!(instance = %name, %source, %theirs, %ours, "master advertises another interval; adopting it (RFC 5798 6.4.2)");
            }
            Warning::OwnerConflict { source, priority } => {
                tracing::warn!(instance = %name, %source, priority, "another router advertises our VRID while we own the addresses");
            }
        }
    }

    /// The virtual addresses among `addresses`, with their interfaces.
    fn resolved(&self, addresses: &[IpAddr]) -> Vec<ResolvedVip> {
        self.vips
            .iter()
            .filter(|v| addresses.contains(&v.address))
            .cloned()
            .collect()
    }

    fn add_addresses(&mut self, addresses: &[IpAddr]) {
        let mut errors = 0;
        for vip in self.resolved(addresses) {
            if let Err(error) = self.io.add_address(&vip) {
                errors += 1;
                tracing::error!(instance = %self.name, address = %vip.address, interface = %vip.interface, %error, "cannot add virtual address");
            }
        }
        self.with_status(|status| status.address_errors += errors);
    }

    fn remove_addresses(&mut self, addresses: &[IpAddr]) {
        let mut errors = 0;
        for vip in self.resolved(addresses) {
            if let Err(error) = self.io.remove_address(&vip) {
                errors += 1;
                tracing::error!(instance = %self.name, address = %vip.address, interface = %vip.interface, %error, "cannot remove virtual address");
            }
        }
        self.with_status(|status| status.address_errors += errors);
    }

    fn remove_stale_addresses(&mut self) {
        for vip in self.vips.clone() {
            match self.io.remove_address(&vip) {
                Ok(true) => {
                    tracing::warn!(instance = %self.name, address = %vip.address, interface = %vip.interface, "removed a virtual address left behind by an earlier run")
                }
                Ok(false) => {}
                Err(error) => {
                    tracing::error!(instance = %self.name, address = %vip.address, %error, "cannot remove a left-behind virtual address")
                }
            }
        }
    }

    fn announce(&mut self, addresses: &[IpAddr]) {
        for vip in self.resolved(addresses) {
            if let Err(error) = self.io.announce(&vip) {
                tracing::warn!(instance = %self.name, address = %vip.address, %error, "cannot announce virtual address");
            }
        }
    }
}

/// A state change's reason, in words, for logs and events.
fn describe(reason: Reason) -> String {
    match reason {
        Reason::Startup => "startup: waiting Master_Down_Interval as backup".into(),
        Reason::StartupAsOwner => "startup as address owner (priority 255)".into(),
        Reason::MasterDown => "no advertisement from a master within Master_Down_Interval".into(),
        Reason::MasterReleased => "master sent priority 0; took over after Skew_Time".into(),
        Reason::Preempted {
            master,
            master_priority,
        } => format!("preempted master {master} of lower priority {master_priority}"),
        Reason::HigherPriority { source, priority } => {
            format!("heard higher priority {priority} from {source}")
        }
        Reason::EqualPriorityHigherAddress { source } => {
            format!("heard equal priority from higher address {source}")
        }
        Reason::Shutdown => "shutdown".into(),
        Reason::Fault(cause) => {
            let mut why = Vec::new();
            if cause.interface_down {
                why.push("interface down");
            }
            if cause.tracker_failed {
                why.push("a tracker with weight 0 failed");
            }
            if cause.stepped_down {
                why.push("stepped down by an operator");
            }
            format!("fault: {}", why.join(", "))
        }
        Reason::FaultCleared => "fault cleared".into(),
        Reason::Resumed => "resumed the state of the process it replaced (binary upgrade)".into(),
        Reason::HandedOff => "handed off to the process that replaces it (binary upgrade)".into(),
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
