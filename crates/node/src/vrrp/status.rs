//! What the VRRP side shows the outside: a status snapshot per instance (for `/api/status`
//! and `/metrics`), the event log of state changes (for `/api/events`), and receive-path
//! counters of packets dropped before they reach an instance.
//!
//! Instance tasks write; the admin endpoint reads. Both take a short `std` mutex; nothing on
//! the proxy's data path touches these.

use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use havip_vrrp::{Counters, DropReason, State};
use serde_json::{json, Value};

/// How many events `/api/events` keeps.
pub const EVENT_LOG_CAPACITY: usize = 512;

/// Protocol names for states, as keepalived prints them (and passes to notify scripts).
pub fn state_name(state: State) -> &'static str {
    match state {
        State::Initialize => "INIT",
        State::Backup => "BACKUP",
        State::Master => "MASTER",
        State::Fault => "FAULT",
    }
}

/// One instance's current view.
#[derive(Debug, Clone)]
pub struct InstanceStatus {
    /// The instance's name (keepalived's `vrrp_instance` name).
    pub name: String,
    /// The interface its adverts go out on.
    pub interface: String,
    /// Its Virtual Router Identifier (RFC 5798 5.2.3).
    pub vrid: u8,
    /// VRRP version, 2 or 3.
    pub version: u8,
    /// Where it is in the state machine (RFC 5798 6.4, plus Fault).
    pub state: State,
    /// The priority in the config.
    pub configured_priority: u8,
    /// The priority advertised now (trackers applied).
    pub effective_priority: u8,
    /// The address adverts are sent from.
    pub source: IpAddr,
    /// The master this node follows (itself when master).
    pub master: Option<IpAddr>,
    /// The virtual addresses as `address/prefix`.
    pub virtual_addresses: Vec<String>,
    /// Whether the virtual addresses are on the interface now.
    pub holding_addresses: bool,
    /// A graceful release is waiting for the new master.
    pub handing_over: bool,
    /// An operator stepped the instance down (a drill) and has not restored it.
    pub stepped_down: bool,
    /// The protocol core's counters: adverts sent and received, drops by reason (as the
    /// instance counted them; [`VrrpView::snapshot`] adds the [`EarlyDrops`]).
    pub counters: Counters,
    /// Drops the receive path made with the instance's screen before queueing.
    pub early_drops: Arc<EarlyDrops>,
    /// Transitions by (from, to) state name.
    pub transitions: BTreeMap<(&'static str, &'static str), u64>,
    /// How often the master this node follows changed.
    pub master_changes: u64,
    /// Adverts that could not be sent.
    pub send_errors: u64,
    /// Virtual addresses that could not be added or removed.
    pub address_errors: u64,
    /// Virtual addresses someone else removed that were added back.
    pub addresses_restored: u64,
    /// Notify commands that failed or timed out.
    pub notify_failures: u64,
    /// Shutdown has begun.
    pub stopping: bool,
    /// Safe boot: waiting for the first health results of its trackers before it may become
    /// master (`[[vrrp]] startup_limit`).
    pub waiting_for_trackers: bool,
    /// When the state last changed (Unix time, milliseconds).
    pub last_change_unix_ms: Option<u64>,
    /// Master_Down_Interval with the current priority and interval (RFC 5798 6.1).
    pub master_down_interval: std::time::Duration,
}

impl InstanceStatus {
    /// The status of an instance that has not started yet.
    pub fn initial(
        settings: &havip_config::vrrp::VrrpSettings,
        interface: &str,
        source: IpAddr,
        virtual_addresses: Vec<String>,
        master_down_interval: std::time::Duration,
    ) -> InstanceStatus {
        InstanceStatus {
            name: settings.name.clone(),
            interface: interface.to_string(),
            vrid: settings.vrid,
            version: settings.version.number(),
            state: State::Initialize,
            configured_priority: settings.priority,
            effective_priority: settings.priority,
            source,
            master: None,
            virtual_addresses,
            holding_addresses: false,
            handing_over: false,
            stepped_down: false,
            counters: Counters::default(),
            early_drops: Arc::default(),
            transitions: BTreeMap::new(),
            master_changes: 0,
            send_errors: 0,
            address_errors: 0,
            addresses_restored: 0,
            notify_failures: 0,
            stopping: false,
            waiting_for_trackers: false,
            last_change_unix_ms: None,
            master_down_interval,
        }
    }

    /// The instance as one object of `/api/status`.
    pub fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "interface": self.interface,
            "vrid": self.vrid,
            "version": self.version,
            "state": state_name(self.state),
            "priority": self.effective_priority,
            "configured_priority": self.configured_priority,
            "source": self.source.to_string(),
            "master": self.master.map(|m| m.to_string()),
            "virtual_addresses": self.virtual_addresses,
            "holding_addresses": self.holding_addresses,
            "handing_over": self.handing_over,
            "stepped_down": self.stepped_down,
            "stopping": self.stopping,
            "waiting_for_trackers": self.waiting_for_trackers,
            "waiting": self.waiting_for_trackers.then_some("waiting for first health results"),
            "adverts_sent": self.counters.adverts_sent,
            "adverts_received": self.counters.adverts_received,
            "dropped": self.counters.total_dropped(),
            "master_changes": self.master_changes,
            "addresses_restored": self.addresses_restored,
            "last_change_unix_ms": self.last_change_unix_ms,
            "master_down_interval_ms": self.master_down_interval.as_millis() as u64,
        })
    }
}

/// Packets of one instance that the receive path dropped with the instance's screen (the
/// core's configuration-only checks, see `havip_vrrp::Screen`) instead of queueing them, by
/// the reason the instance would have counted.
#[derive(Debug, Default)]
pub struct EarlyDrops([AtomicU64; DropReason::ALL.len()]);

impl EarlyDrops {
    fn slot(&self, reason: DropReason) -> Option<&AtomicU64> {
        let index = DropReason::ALL.iter().position(|r| *r == reason)?;
        self.0.get(index)
    }

    /// One more drop for `reason`.
    pub fn add(&self, reason: DropReason) {
        if let Some(slot) = self.slot(reason) {
            slot.fetch_add(1, Relaxed);
        }
    }

    /// The drops for `reason` so far.
    pub fn get(&self, reason: DropReason) -> u64 {
        self.slot(reason).map_or(0, |slot| slot.load(Relaxed))
    }
}

/// One instance's status, written by its task and read by the admin endpoint.
pub type StatusSlot = Arc<Mutex<InstanceStatus>>;

/// A state change or another event worth showing an operator.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Position in the log, from 1; a poller passes the last one it saw as `after`.
    pub seq: u64,
    /// When it happened, in milliseconds since the Unix epoch.
    pub unix_ms: u64,
    /// The VRRP instance's name.
    pub instance: String,
    /// What happened: `state_change`, `handed_over`, `released`, `resumed`,
    /// `address_restored`, ...
    pub kind: &'static str,
    /// The state left ([`state_name`]), for state changes.
    pub from: Option<&'static str>,
    /// The state entered ([`state_name`]), for state changes.
    pub to: Option<&'static str>,
    /// A sentence for the operator: the reason, the address, the wait.
    pub detail: String,
}

impl Event {
    /// The event as one element of the `/api/events` array.
    pub fn to_json(&self) -> Value {
        json!({
            "seq": self.seq,
            "unix_ms": self.unix_ms,
            "instance": self.instance,
            "kind": self.kind,
            "from": self.from,
            "to": self.to,
            "detail": self.detail,
        })
    }
}

/// The last [`EVENT_LOG_CAPACITY`] events, numbered from 1 so a poller can ask for what
/// came after the last one it saw.
#[derive(Debug, Default)]
pub struct EventLog {
    inner: Mutex<(u64, VecDeque<Event>)>,
}

impl EventLog {
    /// Appends an event stamped now, dropping the oldest once the log is full.
    pub fn push(
        &self,
        instance: &str,
        kind: &'static str,
        from: Option<&'static str>,
        to: Option<&'static str>,
        detail: String,
    ) {
        let unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since_epoch| since_epoch.as_millis() as u64);
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (next, events) = &mut *guard;
        *next += 1;
        if events.len() == EVENT_LOG_CAPACITY {
            events.pop_front();
        }
        events.push_back(Event {
            seq: *next,
            unix_ms,
            instance: instance.to_string(),
            kind,
            from,
            to,
            detail,
        });
    }

    /// Events with a sequence number above `after`.
    pub fn since(&self, after: u64) -> Vec<Event> {
        let guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        guard
            .1
            .iter()
            .filter(|event| event.seq > after)
            .cloned()
            .collect()
    }
}

/// Packets dropped by an interface's receive path before any instance saw them.
#[derive(Debug, Default)]
pub struct ReceiveCounters {
    /// The interface the receive path reads.
    pub interface: String,
    /// `ipv4` or `ipv6`, as the metrics label it.
    pub family: &'static str,
    /// The VRID has no instance on this interface and family.
    pub unknown_vrid: AtomicU64,
    /// The IP header was malformed or the packet too short to carry a VRID.
    pub malformed: AtomicU64,
    /// An instance's inbox was full (it is far behind).
    pub inbox_full: AtomicU64,
    /// The kernel dropped packets because the socket's receive queue was full (a flood
    /// outran the reader): real adverts may be among them.
    pub socket_overflow: AtomicU64,
    /// Packets read from the socket, before any of the drops above.
    pub received: AtomicU64,
}

/// A snapshot of one receive path's counters.
pub struct ReceiveTotals {
    /// The interface the receive path reads.
    pub interface: String,
    /// `ipv4` or `ipv6`.
    pub family: &'static str,
    /// Each drop reason with its count: `unknown_vrid`, `malformed_ip`, `inbox_full`,
    /// `socket_overflow`.
    pub drops: [(&'static str, u64); 4],
    /// Packets read from the socket.
    pub received: u64,
}

/// Everything the admin endpoint needs from the VRRP side.
#[derive(Debug, Default)]
pub struct VrrpView {
    /// One status slot per instance, in configuration order (a reload replaces the list).
    pub instances: Mutex<Vec<StatusSlot>>,
    /// One set of counters per (interface, family) receive path.
    pub receivers: Mutex<Vec<Arc<ReceiveCounters>>>,
    /// The event log every instance writes to.
    pub events: Arc<EventLog>,
    /// What each tracker is now, as the instances follow them (a reload replaces it).
    pub trackers: Mutex<Option<Arc<crate::tracking::TrackerBoard>>>,
}

impl VrrpView {
    /// A copy of every instance's status, taken one lock at a time, its counters with the
    /// receive path's early drops added.
    pub fn snapshot(&self) -> Vec<InstanceStatus> {
        let slots = self
            .instances
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        slots
            .iter()
            .map(|slot| {
                let mut status = slot.lock().unwrap_or_else(|e| e.into_inner()).clone();
                for reason in DropReason::ALL {
                    let early = status.early_drops.get(reason);
                    status.counters.add_dropped(reason, early);
                }
                status
            })
            .collect()
    }

    /// The VRRP part of `/api/status`: one object per instance.
    pub fn status_json(&self) -> Value {
        Value::Array(
            self.snapshot()
                .iter()
                .map(|instance| {
                    let mut json = instance.to_json();
                    let board = self
                        .trackers
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .clone();
                    json["trackers"] = board.map_or(Value::Array(Vec::new()), |board| {
                        board.instance_json(&instance.name)
                    });
                    json
                })
                .collect(),
        )
    }

    /// Every receive path's counters as read now, for `/metrics`.
    pub fn receive_totals(&self) -> Vec<ReceiveTotals> {
        let receivers = self
            .receivers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        receivers
            .iter()
            .map(|counters| ReceiveTotals {
                interface: counters.interface.clone(),
                family: counters.family,
                drops: [
                    ("unknown_vrid", counters.unknown_vrid.load(Relaxed)),
                    ("malformed_ip", counters.malformed.load(Relaxed)),
                    ("inbox_full", counters.inbox_full.load(Relaxed)),
                    ("socket_overflow", counters.socket_overflow.load(Relaxed)),
                ],
                received: counters.received.load(Relaxed),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_event_log_keeps_the_newest_and_numbers_them() {
        let log = EventLog::default();
        for i in 0..(EVENT_LOG_CAPACITY + 10) {
            log.push(
                "VI_1",
                "state",
                Some("BACKUP"),
                Some("MASTER"),
                i.to_string(),
            );
        }
        let all = log.since(0);
        assert_eq!(all.len(), EVENT_LOG_CAPACITY);
        assert_eq!(all[0].seq, 11);
        assert_eq!(
            all.last().map(|e| e.seq),
            Some(EVENT_LOG_CAPACITY as u64 + 10)
        );
        assert_eq!(log.since(EVENT_LOG_CAPACITY as u64 + 8).len(), 2);
    }
}
