//! One VRRP instance on the wire: a task that owns a `havip_vrrp::Instance`, feeds it what
//! happens (packets from the interface's receive path, its timers, link and tracker changes,
//! shutdown) and performs the actions it returns (send adverts, add and remove the virtual
//! addresses through netlink, announce them, run notify commands, publish status).
//!
//! Lifecycle: [`InstanceTask::run`] removes addresses a crashed run left behind, sends the
//! Startup input and loops until [`Control::Shutdown`]. On shutdown a master sends priority 0
//! but keeps the addresses, and keeps serving, until it hears the new master's first advert
//! (or the longest time a backup can take), so clients see no gap (issue #4; keepalived
//! removes them at once, which costs clients the Skew_Time).

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use havip_sys::announce::Announcer;
use havip_sys::netlink::Netlink;
use havip_sys::vrrp_socket::VrrpSender;
use havip_vrrp::packet::{decode, ChecksumContext};
use havip_vrrp::{
    Action, Input, Instance, Reason, ReceivedPacket, State, Timestamp, Tracking, V3Ipv4Checksum,
    Warning,
};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::notify::Notification;
use super::status::{state_name, EventLog, StatusSlot};
use havip_config::vrrp::VrrpSettings;

/// A VRRP packet as the receive path hands it over.
#[derive(Debug, Clone)]
pub struct OwnedPacket {
    pub source: IpAddr,
    pub destination: IpAddr,
    pub ttl: u8,
    pub payload: Vec<u8>,
}

/// What an instance task is told.
#[derive(Debug)]
pub enum Control {
    Packet(OwnedPacket),
    /// The instance's interface changed (up = IFF_UP with carrier).
    Link {
        up: bool,
    },
    /// An address went away from some interface.
    AddressRemoved {
        ifindex: u32,
        address: IpAddr,
    },
    /// The trackers moved the priority or the fault condition.
    Tracking(Tracking),
    /// Netlink lost events: re-read link state and our addresses.
    Resync,
    /// Stop: release the VIP gracefully, then answer.
    Shutdown(oneshot::Sender<()>),
    /// A failover drill: a master releases the VIP gracefully (as on shutdown) and stays in
    /// Fault until [`Control::Restore`]. Answers with what happened.
    StepDown(oneshot::Sender<StepDownResult>),
    /// End a step-down: back to the trackers' priority.
    Restore(oneshot::Sender<()>),
}

/// What a step-down did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepDownResult {
    /// The VIP was released after `new_master` was heard `waited` after priority 0.
    HandedOver {
        new_master: IpAddr,
        waited: Duration,
    },
    /// No new master was heard within the bound; the VIP was released anyway.
    NobodyTookOver { waited: Duration },
    /// This instance is not master; nothing to do.
    NotMaster,
}

/// A virtual address resolved to the interface it goes on.
#[derive(Debug, Clone)]
pub struct ResolvedVip {
    pub address: IpAddr,
    pub prefix_len: u8,
    pub ifindex: u32,
    pub interface: String,
    pub label: Option<String>,
}

/// What the task needs from the node.
pub struct InstanceTask {
    pub settings: VrrpSettings,
    pub instance: Instance,
    pub ifindex: u32,
    pub vips: Vec<ResolvedVip>,
    pub sender: Arc<VrrpSender>,
    /// Announcers by interface index (the instance's and those of VIPs on other interfaces).
    pub announcers: Arc<Vec<(u32, Announcer)>>,
    pub netlink: Arc<Mutex<Netlink>>,
    pub status: StatusSlot,
    pub events: Arc<EventLog>,
    pub notify: mpsc::UnboundedSender<Notification>,
    /// The origin of the instance's timestamps.
    pub base: Instant,
    pub link_up: bool,
    /// The trackers' latest verdict (applied unless a drill stepped the instance down).
    pub tracked: Tracking,
    pub stepped_down: bool,
}

impl InstanceTask {
    fn now(&self) -> Timestamp {
        Timestamp::from_elapsed(self.base.elapsed())
    }

    fn instant_of(&self, ts: Timestamp) -> Instant {
        self.base + ts.elapsed_since_origin()
    }

    pub async fn run(mut self, mut inbox: mpsc::Receiver<Control>) {
        // A crashed run may have left our addresses behind; as a fresh backup we hold nothing.
        self.remove_stale_addresses();
        let now = self.now();
        let actions = self.instance.handle(now, Input::Startup);
        self.execute(actions, false);
        if !self.link_up {
            let now = self.now();
            let actions = self.instance.handle(now, Input::InterfaceDown);
            self.execute(actions, false);
        }
        loop {
            let deadline = self
                .instance
                .next_timer()
                .map(|(_, ts)| self.instant_of(ts));
            let message = tokio::select! {
                message = inbox.recv() => message,
                () = sleep_until_opt(deadline) => {
                    self.fire_due_timers();
                    continue;
                }
            };
            let Some(message) = message else { return };
            match message {
                Control::Shutdown(done) => {
                    self.shutdown(&mut inbox).await;
                    let _ = done.send(());
                    return;
                }
                Control::StepDown(reply) => {
                    let result = self.step_down(&mut inbox).await;
                    let _ = reply.send(result);
                }
                Control::Restore(reply) => {
                    if self.stepped_down {
                        self.stepped_down = false;
                        tracing::info!(instance = %self.settings.name, "drill over: back to the trackers' priority");
                        self.events.push(
                            &self.settings.name,
                            "restore",
                            None,
                            None,
                            "drill over".into(),
                        );
                        let now = self.now();
                        let actions = self
                            .instance
                            .handle(now, Input::TrackingChanged(self.tracked));
                        self.execute(actions, false);
                    }
                    let _ = reply.send(());
                }
                other => self.handle_control(other),
            }
        }
    }

    fn fire_due_timers(&mut self) {
        // Several timers may be due at once; each firing may re-arm others.
        for _ in 0..16 {
            let Some((kind, deadline)) = self.instance.next_timer() else {
                return;
            };
            let now = self.now();
            if deadline > now {
                return;
            }
            let actions = self.instance.handle(now, Input::TimerFired(kind));
            self.execute(actions, false);
        }
    }

    fn handle_control(&mut self, message: Control) {
        let now = self.now();
        let actions = match message {
            Control::Packet(packet) => self.instance.handle(
                now,
                Input::Packet(ReceivedPacket {
                    source: packet.source,
                    destination: packet.destination,
                    ttl: packet.ttl,
                    payload: &packet.payload,
                }),
            ),
            Control::Link { up } => {
                if up == self.link_up {
                    return;
                }
                self.link_up = up;
                tracing::warn!(
                    instance = %self.settings.name,
                    interface = %self.settings.interface,
                    up,
                    "interface {}",
                    if up { "up" } else { "down" }
                );
                let input = if up {
                    Input::InterfaceUp
                } else {
                    Input::InterfaceDown
                };
                self.instance.handle(now, input)
            }
            Control::AddressRemoved { ifindex, address } => {
                self.restore_if_ours(ifindex, address);
                return;
            }
            Control::Tracking(tracking) => {
                self.instance.handle(now, Input::TrackingChanged(tracking))
            }
            Control::Resync => {
                self.resync();
                return;
            }
            Control::Shutdown(_) | Control::StepDown(_) | Control::Restore(_) => return,
        };
        self.execute(actions, false);
    }

    /// Perform `actions` in order. With `keep_addresses`, RemoveAddresses is skipped (the
    /// graceful shutdown removes them itself once the new master is heard).
    fn execute(&mut self, actions: Vec<Action>, keep_addresses: bool) {
        let master_before = self.instance_master_before();
        for action in actions {
            match action {
                Action::SendAdvertisement(advert) => {
                    if let Err(error) = self.sender.send(
                        advert.source,
                        advert.destination,
                        advert.ttl,
                        &advert.payload,
                    ) {
                        self.with_status(|s| s.send_errors += 1);
                        tracing::warn!(
                            instance = %self.settings.name,
                            to = %advert.destination,
                            %error,
                            "cannot send advertisement"
                        );
                    }
                }
                Action::AddAddresses { .. } => self.add_addresses(),
                Action::RemoveAddresses { .. } => {
                    if !keep_addresses {
                        self.remove_addresses();
                    }
                }
                Action::Announce { addresses } => self.announce(&addresses),
                // `next_timer()` is the task's single source of truth for timers.
                Action::ArmTimer { .. } | Action::DisarmTimer { .. } => {}
                Action::StateChanged { from, to, reason } => self.state_changed(from, to, reason),
                Action::Warning(warning) => self.warn(warning),
            }
        }
        let master_after = self.instance.master_address();
        let changed = master_after.is_some() && master_after != master_before;
        self.publish(changed);
    }

    fn instance_master_before(&self) -> Option<IpAddr> {
        self.status.lock().unwrap_or_else(|e| e.into_inner()).master
    }

    fn with_status(&self, f: impl FnOnce(&mut super::status::InstanceStatus)) {
        let mut guard = self.status.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut guard);
    }

    fn publish(&self, master_changed: bool) {
        let state = self.instance.state();
        let priority = self.instance.priority();
        let master = self.instance.master_address();
        let counters = self.instance.counters().clone();
        let master_down_interval = self.instance.master_down_interval();
        self.with_status(|s| {
            s.master_down_interval = master_down_interval;
            s.state = state;
            s.effective_priority = priority;
            s.master = master;
            s.counters = counters;
            if master_changed {
                s.master_changes += 1;
            }
        });
    }

    fn state_changed(&mut self, from: State, to: State, reason: Reason) {
        let (from_name, to_name) = (state_name(from), state_name(to));
        let detail = describe(reason);
        if to == State::Master || from == State::Master || to == State::Fault {
            tracing::warn!(instance = %self.settings.name, from = from_name, to = to_name, reason = %detail, "VRRP state change");
        } else {
            tracing::info!(instance = %self.settings.name, from = from_name, to = to_name, reason = %detail, "VRRP state change");
        }
        let unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        self.with_status(|s| {
            *s.transitions.entry((from_name, to_name)).or_insert(0) += 1;
            s.last_change_unix_ms = Some(unix_ms);
        });
        self.events.push(
            &self.settings.name,
            "state_change",
            Some(from_name),
            Some(to_name),
            detail,
        );
        // Initialize is where a stopped instance ends: keepalived calls that STOP.
        let to_notify = if to == State::Initialize {
            "STOP"
        } else {
            to_name
        };
        let _ = self.notify.send(Notification {
            instance: self.settings.name.clone(),
            from: from_name,
            to: to_notify,
        });
    }

    fn warn(&self, warning: Warning) {
        let name = &self.settings.name;
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

    fn add_addresses(&mut self) {
        let netlink = self.netlink.lock().unwrap_or_else(|e| e.into_inner());
        let mut errors = 0;
        for vip in &self.vips {
            match netlink.add_address(
                vip.ifindex,
                vip.address,
                vip.prefix_len,
                vip.label.as_deref(),
            ) {
                Ok(_) => {}
                Err(error) => {
                    errors += 1;
                    tracing::error!(instance = %self.settings.name, address = %vip.address, interface = %vip.interface, %error, "cannot add virtual address");
                }
            }
        }
        drop(netlink);
        self.with_status(|s| {
            s.holding_addresses = true;
            s.address_errors += errors;
        });
    }

    fn remove_addresses(&mut self) {
        let netlink = self.netlink.lock().unwrap_or_else(|e| e.into_inner());
        let mut errors = 0;
        for vip in &self.vips {
            if let Err(error) = netlink.remove_address(vip.ifindex, vip.address, vip.prefix_len) {
                errors += 1;
                tracing::error!(instance = %self.settings.name, address = %vip.address, interface = %vip.interface, %error, "cannot remove virtual address");
            }
        }
        drop(netlink);
        self.with_status(|s| {
            s.holding_addresses = false;
            s.address_errors += errors;
        });
    }

    fn remove_stale_addresses(&mut self) {
        let netlink = self.netlink.lock().unwrap_or_else(|e| e.into_inner());
        for vip in &self.vips {
            match netlink.remove_address(vip.ifindex, vip.address, vip.prefix_len) {
                Ok(true) => {
                    tracing::warn!(instance = %self.settings.name, address = %vip.address, interface = %vip.interface, "removed a virtual address left behind by an earlier run")
                }
                Ok(false) => {}
                Err(error) => {
                    tracing::error!(instance = %self.settings.name, address = %vip.address, %error, "cannot remove a left-behind virtual address")
                }
            }
        }
    }

    fn announce(&self, addresses: &[IpAddr]) {
        for address in addresses {
            let Some(vip) = self.vips.iter().find(|v| v.address == *address) else {
                continue;
            };
            let Some((_, announcer)) = self.announcers.iter().find(|(i, _)| *i == vip.ifindex)
            else {
                continue;
            };
            let result = match address {
                IpAddr::V4(v4) => announcer.gratuitous_arp(*v4),
                // RFC 5798 6.4.2: unsolicited NA with the Router flag set.
                IpAddr::V6(v6) => announcer.unsolicited_na(*v6, true),
            };
            if let Err(error) = result {
                tracing::warn!(instance = %self.settings.name, %address, %error, "cannot announce virtual address");
            }
        }
    }

    /// Someone removed one of our addresses while we hold them: put it back (keepalived does
    /// the same), and say so.
    fn restore_if_ours(&mut self, ifindex: u32, address: IpAddr) {
        let holding = self
            .status
            .lock()
            .map(|s| s.holding_addresses)
            .unwrap_or(false);
        if !holding || self.instance.state() != State::Master {
            return;
        }
        let Some(vip) = self
            .vips
            .iter()
            .find(|v| v.address == address && v.ifindex == ifindex)
            .cloned()
        else {
            return;
        };
        let result = self
            .netlink
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .add_address(
                vip.ifindex,
                vip.address,
                vip.prefix_len,
                vip.label.as_deref(),
            );
        match result {
            Ok(_) => {
                tracing::warn!(instance = %self.settings.name, %address, interface = %vip.interface, "virtual address was removed by someone else while master; added it again");
                self.with_status(|s| s.addresses_restored += 1);
                self.events.push(
                    &self.settings.name,
                    "address_restored",
                    None,
                    None,
                    format!(
                        "{address} on {} was removed externally and added again",
                        vip.interface
                    ),
                );
                self.announce(&[address]);
            }
            Err(error) => {
                tracing::error!(instance = %self.settings.name, %address, %error, "cannot add back a removed virtual address");
            }
        }
    }

    /// After a netlink overrun: compare what we know with what the kernel says.
    fn resync(&mut self) {
        let link = self
            .netlink
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .link_by_index(self.ifindex);
        match link {
            Ok(Some(link)) => self.handle_control(Control::Link { up: link.up }),
            Ok(None) => self.handle_control(Control::Link { up: false }),
            Err(error) => tracing::warn!(%error, "cannot read link state"),
        }
        let present = self
            .netlink
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .addresses(None);
        if let Ok(present) = present {
            for vip in self.vips.clone() {
                if !present
                    .iter()
                    .any(|a| a.ifindex == vip.ifindex && a.address == vip.address)
                {
                    self.restore_if_ours(vip.ifindex, vip.address);
                }
            }
        }
    }

    /// Graceful stop (issue #4 item 5): priority 0 goes out at once, but the addresses stay
    /// and the proxy keeps serving on them until the new master's first advert is heard, so
    /// that clients are never without an owner of the VIP. Bounded by the longest
    /// Master_Down_Interval a backup can have; with no peer at all, that is how long it takes.
    async fn shutdown(&mut self, inbox: &mut mpsc::Receiver<Control>) {
        self.with_status(|s| s.stopping = true);
        let was_master = self.instance.state() == State::Master;
        let now = self.now();
        let actions = self.instance.handle(now, Input::Shutdown);
        self.execute(actions, was_master);
        if was_master {
            self.release_when_new_master_heard(inbox).await;
        }
        self.publish(false);
    }

    /// A drill: leave Master as a fault would (priority 0), but hand the VIP over as on
    /// shutdown; stay out of the election until restored.
    async fn step_down(&mut self, inbox: &mut mpsc::Receiver<Control>) -> StepDownResult {
        if self.instance.state() != State::Master {
            return StepDownResult::NotMaster;
        }
        self.stepped_down = true;
        tracing::warn!(instance = %self.settings.name, "drill: stepping down");
        self.events
            .push(&self.settings.name, "step_down", None, None, "drill".into());
        let now = self.now();
        let forced = Tracking {
            priority: self.tracked.priority,
            fault: true,
        };
        let actions = self.instance.handle(now, Input::TrackingChanged(forced));
        self.execute(actions, true);
        let result = self.release_when_new_master_heard(inbox).await;
        self.publish(false);
        result
    }

    /// Wait for another router's advert of our VRID with a non-zero priority (the new
    /// master), at most [`longest_takeover`]; then remove the addresses.
    async fn release_when_new_master_heard(
        &mut self,
        inbox: &mut mpsc::Receiver<Control>,
    ) -> StepDownResult {
        let bound = longest_takeover(&self.settings, &self.instance);
        let deadline = Instant::now() + bound;
        let started = Instant::now();
        let heard = loop {
            let message = tokio::select! {
                m = inbox.recv() => m,
                () = tokio::time::sleep_until(deadline) => break None,
            };
            match message {
                Some(Control::Packet(packet)) => {
                    if let Some(priority) = self.new_master_priority(&packet) {
                        break Some((packet.source, priority));
                    }
                }
                // Keep the latest tracker verdict for later; other requests wait their turn
                // (a drill or shutdown is at most one Master_Down_Interval).
                Some(Control::Tracking(tracking)) => self.tracked = tracking,
                Some(_) => {}
                None => break None,
            }
        };
        let waited = started.elapsed();
        let result = match heard {
            Some((source, priority)) => {
                tracing::info!(
                    instance = %self.settings.name,
                    new_master = %source,
                    priority,
                    waited_ms = waited.as_millis() as u64,
                    "new master heard; releasing the virtual addresses"
                );
                StepDownResult::HandedOver {
                    new_master: source,
                    waited,
                }
            }
            None => {
                tracing::warn!(
                    instance = %self.settings.name,
                    waited_ms = bound.as_millis() as u64,
                    "no new master heard; releasing the virtual addresses anyway"
                );
                StepDownResult::NobodyTookOver { waited }
            }
        };
        self.remove_addresses();
        result
    }

    /// The priority of a valid advert of our VRID from another router that is taking over.
    fn new_master_priority(&self, packet: &OwnedPacket) -> Option<u8> {
        if packet.source == self.instance.config().primary_address {
            return None;
        }
        let context = ChecksumContext {
            source: packet.source,
            destination: packet.destination,
            v3_ipv4_checksum: if self.settings.v3_checksum_as_v2 {
                V3Ipv4Checksum::MessageOnly
            } else {
                V3Ipv4Checksum::PseudoHeader
            },
        };
        let advert = decode(&packet.payload, &context).ok()?;
        (advert.vrid == self.settings.vrid && advert.priority > 0).then_some(advert.priority)
    }
}

/// The longest a backup can take to become master after our priority 0: its
/// Master_Down_Interval at the lowest priority (RFC 5798 6.1), when it missed the priority-0
/// advert and waits for the full timer.
pub fn longest_takeover(settings: &VrrpSettings, instance: &Instance) -> Duration {
    havip_vrrp::timers::master_down_interval(settings.version, 1, instance.master_adver_interval())
}

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
            format!("fault: {}", why.join(", "))
        }
        Reason::FaultCleared => "fault cleared".into(),
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
