//! What goes into an [`Instance`](crate::Instance) and what comes out: the inputs the shell
//! feeds it, the actions it asks the shell to perform, and the events it reports (state
//! changes with their reasons, hand-overs, rate-limited warnings).
//!
//! The shell stays thin: it hands over received bytes with their IP metadata, timer firings,
//! tracker results, link and address changes and operator commands, and executes the actions
//! in order. It decodes nothing and decides nothing. Timers are not actions: after each
//! [`Instance::handle`](crate::Instance::handle) the shell sleeps until
//! [`Instance::next_timer`](crate::Instance::next_timer) and feeds [`Input::TimerFired`].

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use crate::counters::DropReason;
use crate::packet::{Advertisement, DecodeError, Version};
use crate::priority::Tracking;
use crate::time::Timestamp;
use crate::timers::{AdvertInterval, TimerKind};

/// The RFC 5798 6.4 states, plus Fault (keepalived's FAULT: a weight-0 tracker fails or the
/// interface is down; the instance neither advertises nor listens until it clears).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Not started, or shut down (RFC 5798 6.4.1).
    Initialize,
    /// Monitoring the master (RFC 5798 6.4.2).
    Backup,
    /// Forwarding for the virtual addresses and advertising (RFC 5798 6.4.3).
    Master,
    /// Cannot serve: see [`FaultCause`].
    Fault,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Initialize => "Initialize",
            State::Backup => "Backup",
            State::Master => "Master",
            State::Fault => "Fault",
        })
    }
}

/// Why an instance is in Fault. Several can hold at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FaultCause {
    /// The interface is down or has no carrier.
    pub interface_down: bool,
    /// A tracker with weight 0 is failing.
    pub tracker_failed: bool,
    /// An operator stepped the instance down ([`Input::StepDown`]) and has not restored it.
    pub stepped_down: bool,
}

/// A VRRP packet as received, with the IP metadata the checks and the checksum need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceivedPacket<'a> {
    /// IP source address.
    pub source: IpAddr,
    /// IP destination address (the multicast group, or this router in unicast mode).
    pub destination: IpAddr,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
    /// The IP payload: the VRRP message.
    pub payload: &'a [u8],
}

/// Something that happened, fed to [`Instance::handle`](crate::Instance::handle).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input<'a> {
    /// Start the protocol (RFC 5798 6.4.1 Startup event).
    Startup,
    /// Stop the protocol; a master sends priority 0 first (RFC 5798 6.4.3 Shutdown event).
    Shutdown,
    /// A VRRP packet arrived.
    Packet(ReceivedPacket<'a>),
    /// The timer [`Instance::next_timer`](crate::Instance::next_timer) named reached its
    /// deadline. A firing of a timer that is not armed, or not yet due, is ignored and counted
    /// as stale.
    TimerFired(TimerKind),
    /// The trackers changed the effective priority or the fault condition
    /// (see [`crate::priority::evaluate`]).
    TrackingChanged(Tracking),
    /// The interface came up.
    InterfaceUp,
    /// The interface went down: the instance goes to Fault.
    InterfaceDown,
    /// One of the virtual addresses disappeared from its interface, removed by someone else.
    /// While this router holds them (Master, or a graceful release in progress) it adds the
    /// address back and announces it (keepalived does the same).
    AddressRemoved(IpAddr),
    /// An operator asks a master to hand over (a failover drill, or before maintenance): it
    /// leaves Master as on shutdown (priority 0, a graceful release when configured) and then
    /// stays out of the election, in Fault, until [`Input::Restore`]. Ignored by a non-master.
    StepDown,
    /// Ends a step-down: back in the election with the trackers' priority.
    Restore,
    /// Start in a process that takes over from a predecessor on the same node (a binary
    /// upgrade). `was_master`: the predecessor was master and the addresses are still on the
    /// interface. A master resumes at once: it advertises now and keeps the addresses, with no
    /// announcement burst (nothing moved, so no neighbour cache is wrong), so peers see no
    /// transition and no gap longer than one interval. Otherwise it starts as at
    /// [`Input::Startup`]. Ignored unless in Initialize.
    Resume {
        /// Whether the predecessor was master.
        was_master: bool,
    },
    /// Stop because a successor process on this node has taken over this instance (a binary
    /// upgrade): back to Initialize silently, with no priority 0 and the addresses left where
    /// they are, since the successor holds them now.
    HandOff,
    /// Safe boot: every tracker the instance follows has its first result, so it may become
    /// master from now on (see [`crate::InstanceConfig::startup_limit`]). Ignored when the
    /// instance is not waiting.
    TrackersReady,
}

/// An advertisement to send: the shell writes `payload` from `source` to `destination` with
/// IP protocol 112 and TTL / hop limit `ttl`. The checksum in `payload` was computed over
/// `source` and `destination` (VRRPv3 pseudo-header), so the socket must send from exactly that
/// source and must not recompute it (no `IPV6_CHECKSUM`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingAdvertisement {
    /// The IP source to send from: the primary address the checksum was computed over.
    pub source: IpAddr,
    /// The multicast group (224.0.0.18 / ff02::12, RFC 5798 5.1.1.2 / 5.1.2.2) or a unicast
    /// peer.
    pub destination: IpAddr,
    /// The IPv4 TTL / IPv6 hop limit to send with: always 255 (RFC 5798 5.1.1.3 / 5.1.2.3).
    pub ttl: u8,
    /// The encoded VRRP message, checksum included: the IP payload, sent as is.
    pub payload: Vec<u8>,
    /// What `payload` says, for logs and tests.
    pub advertisement: Advertisement,
}

/// Something the shell must do, returned by [`Instance::handle`](crate::Instance::handle) in
/// the order to do it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send one advertisement (several of these in unicast mode, one per peer).
    SendAdvertisement(OutgoingAdvertisement),
    /// Add the virtual addresses to the interface. With `accept_mode` false (RFC 5798 6.1
    /// Accept_Mode off and not the owner) the router must not accept packets addressed to them,
    /// only forward; with true, local services (havip's proxy) may listen on them. IPv6
    /// addresses should be added without duplicate address detection (`IFA_F_NODAD`), which
    /// also joins their Solicited-Node groups (RFC 5798 6.4.2).
    AddAddresses {
        /// The virtual addresses to add, in configuration order.
        addresses: Vec<IpAddr>,
        /// Whether local sockets may accept traffic to them (RFC 5798 6.1 Accept_Mode).
        accept_mode: bool,
    },
    /// Remove the virtual addresses from the interface.
    RemoveAddresses {
        /// The virtual addresses to remove.
        addresses: Vec<IpAddr>,
    },
    /// One announcement round: a gratuitous ARP for each IPv4 address, or an unsolicited
    /// Neighbor Advertisement (router and override flags, target link-layer address option,
    /// to ff02::1, hop limit 255) for each IPv6 address (RFC 5798 6.4.2, RFC 9568 6.4.2).
    Announce {
        /// The addresses to announce, each by ARP or NA according to its family.
        addresses: Vec<IpAddr>,
    },
    /// A graceful release ended (see [`crate::InstanceConfig::graceful_release`]); any
    /// [`Action::RemoveAddresses`] it needed comes just before this. For logs, events and the
    /// operator who asked for a step-down.
    HandoverFinished(HandoverOutcome),
    /// A safe-boot wait ended; for logs and the status (which showed "waiting for first
    /// health results" until now).
    StartupWaitEnded(StartupWaitEnd),
    /// A virtual address removed by someone else was added back ([`Input::AddressRemoved`]);
    /// for logs, events and metrics.
    AddressRestored {
        /// The virtual address that was put back.
        address: IpAddr,
    },
    /// The state changed; for logs, notifications and metrics.
    StateChanged {
        /// The state left.
        from: State,
        /// The state entered.
        to: State,
        /// The event that caused the change.
        reason: Reason,
    },
    /// Something worth logging (already rate-limited per kind).
    Warning(Warning),
}

/// A graceful release in progress: the master sent priority 0 at `started` and keeps the
/// addresses until another router's advertisement arrives, or until `deadline`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handover {
    /// When priority 0 was sent.
    pub started: Timestamp,
    /// When the addresses go even if nobody took over.
    pub deadline: Timestamp,
}

/// How a graceful release ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandoverOutcome {
    /// A fully checked advertisement with a non-zero priority from `new_master` arrived
    /// `waited` after our priority 0; the addresses were removed.
    HandedOver {
        /// The IP source of the new master's advertisement.
        new_master: IpAddr,
        /// From our priority 0 to the new master's advertisement.
        waited: Duration,
    },
    /// Nobody took over within the bound, or the interface went down so that nobody could
    /// be heard; the addresses were removed.
    NobodyTookOver {
        /// From our priority 0 to giving up the addresses.
        waited: Duration,
    },
    /// This router became master again (a restored step-down whose backup timer ran out
    /// first) before anyone took over; it keeps the addresses.
    Resumed {
        /// From our priority 0 to becoming master again.
        waited: Duration,
    },
}

/// Why the state changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Startup of a non-owner: wait as backup for Master_Down_Interval (RFC 5798 6.4.1).
    Startup,
    /// Startup of the address owner: master at once (RFC 5798 6.4.1).
    StartupAsOwner,
    /// Master_Down_Timer fired: no advertisement from a master of at least our priority.
    MasterDown,
    /// Master_Down_Timer fired Skew_Time after the master sent priority 0 (RFC 5798 6.4.2).
    MasterReleased,
    /// Took over from a live master of lower priority (preemption, after any preempt delay).
    Preempted {
        /// The IP source of the master we took over from.
        master: IpAddr,
        /// The priority it last advertised.
        master_priority: u8,
    },
    /// A master heard a higher priority and stepped down (RFC 5798 6.4.3).
    HigherPriority {
        /// The IP source of the advertisement with the higher priority.
        source: IpAddr,
        /// The priority it advertised.
        priority: u8,
    },
    /// A master heard its own priority from a higher primary address (RFC 5798 6.4.3
    /// tie-break, compared as unsigned integers in network byte order per RFC 9568).
    EqualPriorityHigherAddress {
        /// The higher primary address that won the tie.
        source: IpAddr,
    },
    /// Shutdown event.
    Shutdown,
    /// Entered Fault.
    Fault(FaultCause),
    /// Fault cleared: the protocol starts again as at Startup.
    FaultCleared,
    /// Took over the state of a predecessor process on this node ([`Input::Resume`]).
    Resumed,
    /// A successor process on this node took over ([`Input::HandOff`]).
    HandedOff,
}

/// How a safe-boot wait ended (see [`crate::InstanceConfig::startup_limit`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartupWaitEnd {
    /// Every tracker has a first result.
    TrackersReady,
    /// The limit passed first: the instance goes on with what it knows.
    LimitReached,
}

/// Conditions worth an operator's attention. Each kind (and each drop reason) is reported at
/// most once per [`WARNING_HOLDOFF`](crate::instance::WARNING_HOLDOFF); the counters count
/// every occurrence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Warning {
    /// An advertisement was dropped (RFC 5798 7.1: "SHOULD log the event").
    Dropped {
        /// The IP source of the dropped packet.
        source: IpAddr,
        /// Which check it failed; also the counter it was counted in.
        reason: DropReason,
        /// What exactly was wrong, where there is more to say than the reason.
        detail: Option<DropDetail>,
    },
    /// The advertised addresses differ from ours (RFC 5798 7.1 / RFC 3768 7.1). VRRPv2 drops
    /// such an advertisement unless it comes from the owner; VRRPv3 only logs it.
    AddressListMismatch {
        /// The IP source of the advertisement.
        source: IpAddr,
        /// The addresses it carried.
        advertised: Vec<IpAddr>,
        /// Whether the advertisement was dropped for it (VRRPv2, not from the owner).
        dropped: bool,
    },
    /// VRRPv3: the master advertises another interval than ours; backups adopt it (RFC 5798
    /// 6.4.2), but differing configurations are usually a mistake.
    AdvertIntervalDiffers {
        /// The IP source of the master's advertisement.
        source: IpAddr,
        /// The interval the master advertises.
        theirs: AdvertInterval,
        /// The interval configured here.
        ours: AdvertInterval,
    },
    /// We own the addresses (priority 255) and another router advertises this VRID
    /// (RFC 5798 7.1; RFC 9568 8.3.2: at most one owner per VRID).
    OwnerConflict {
        /// The IP source of the other router's advertisement.
        source: IpAddr,
        /// The priority it advertised (255 when it claims ownership too).
        priority: u8,
    },
}

/// The specifics of a drop, for the log line. Kept typed (and cheap: no allocation) because
/// drops can arrive at line rate while warnings are rate-limited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DropDetail {
    /// The decoder's error.
    Decode(DecodeError),
    /// The TTL / hop limit that arrived instead of 255.
    Ttl(u8),
    /// The version that arrived, and ours.
    Version {
        /// The version field of the packet.
        received: Version,
        /// The version this instance runs.
        configured: Version,
    },
    /// The VRID that arrived, and ours.
    Vrid {
        /// The VRID field of the packet.
        received: u8,
        /// This instance's VRID.
        configured: u8,
    },
    /// The VRRPv2 interval that arrived, and ours (RFC 3768 7.1: they must match).
    Interval {
        /// The interval the packet advertises.
        received: AdvertInterval,
        /// The interval configured here.
        configured: AdvertInterval,
    },
}

impl fmt::Display for DropDetail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DropDetail::Decode(error) => write!(f, "{error}"),
            DropDetail::Ttl(ttl) => write!(f, "TTL {ttl} instead of 255"),
            DropDetail::Version {
                received,
                configured,
            } => write!(f, "{received} instead of {configured}"),
            DropDetail::Vrid {
                received,
                configured,
            } => write!(f, "VRID {received} instead of {configured}"),
            DropDetail::Interval {
                received,
                configured,
            } => write!(f, "interval {received} instead of {configured}"),
        }
    }
}
