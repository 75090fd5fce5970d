//! VRRP as a pure library: the packet codec and the per-instance state machine of VRRPv2
//! (RFC 3768) and VRRPv3 (RFC 5798, updated by RFC 9568), over IPv4 and IPv6, with no sockets,
//! no clock, no threads and no async runtime.
//!
//! # Shape
//!
//! An [`Instance`] is one virtual router. The shell (the socket side of havip) feeds it
//! [`Input`]s with the current time and performs the [`Action`]s it returns, in order:
//!
//! ```text
//!  received bytes + IP metadata ─┐                         ┌─> SendAdvertisement (bytes, to, TTL 255)
//!  timer fired (kind)            │                         ├─> Add/RemoveAddresses (+ Accept_Mode)
//!  tracking (priority, fault)    ├─> Instance::handle(now) ├─> Announce (gratuitous ARP / NA round)
//!  interface up / down           │                         ├─> StateChanged (from, to, reason)
//!  address removed by others     │                         ├─> HandoverFinished, AddressRestored
//!  step-down / restore           │                         └─> Warning
//!  startup / shutdown           ─┘
//!                                  Instance::next_timer() ──> the one deadline to sleep until
//! ```
//!
//! The shell decodes nothing: every receive check of RFC 5798 7.1 happens here, each drop
//! reason with its own counter ([`Counters`]). Time is a [`Timestamp`] the shell derives from
//! its clock; tests drive a virtual one.
//!
//! ```
//! use havip_vrrp::{Action, InstanceConfig, Input, Instance, State, TimerKind, Timestamp};
//!
//! let config = InstanceConfig::new(
//!     51,
//!     "192.0.2.1".parse().expect("address"),
//!     vec!["192.0.2.100".parse().expect("address")],
//! );
//! let mut vrrp = Instance::new(config).expect("valid configuration");
//! vrrp.handle(Timestamp::ZERO, Input::Startup);
//! assert_eq!(vrrp.state(), State::Backup);
//! // Nobody advertises: Master_Down_Interval later (3 s + 156/256 s for priority 100) ...
//! let deadline = vrrp.timer_deadline(TimerKind::MasterDown).expect("armed");
//! assert_eq!(deadline, Timestamp::from_nanos(3_609_375_000));
//! // ... the shell sleeps until next_timer() and the instance becomes master.
//! assert_eq!(vrrp.next_timer(), Some((TimerKind::MasterDown, deadline)));
//! let actions = vrrp.handle(deadline, Input::TimerFired(TimerKind::MasterDown));
//! assert_eq!(vrrp.state(), State::Master);
//! assert!(actions.iter().any(|a| matches!(a, Action::AddAddresses { .. })));
//! ```
//!
//! # Modules
//!
//! - [`packet`]: the codec, checksums and VRRPv2 authentication.
//! - [`instance`]: the state machine.
//! - [`event`]: inputs, actions, states, reasons and warnings.
//! - [`config`]: the instance configuration and its validation.
//! - [`priority`]: effective priority and fault from trackers (keepalived's rules).
//! - [`timers`]: advertisement intervals, timer kinds, Skew_Time and Master_Down_Interval.
//! - [`counters`]: per-instance counters and drop reasons.
//! - [`time`]: the timestamp type.
//!
//! # Decisions worth knowing
//!
//! - **Startup and `nopreempt`.** Only the address owner (priority 255) becomes master at
//!   startup; everyone else waits as backup for Master_Down_Interval (RFC 5798 6.4.1). There is
//!   no "initial state MASTER": keepalived 2.2.7 itself waits Master_Down_Interval with
//!   `state MASTER` (measured), so the setting only ever mattered because keepalived then
//!   clears `nopreempt` (also measured). We always honour `nopreempt`: a node configured
//!   `state MASTER` + `nopreempt` that restarts while another node is master stays backup.
//! - **Accept_Mode** defaults to true (the RFC says false) because havip's proxy listens on the
//!   virtual address; it reaches the shell in [`Action::AddAddresses`].
//! - **VRRPv3 over IPv4 checksum**: with the pseudo-header by default, as RFC 5798 and
//!   keepalived 2.2.7; RFC 9568's message-only form (`v3_checksum_as_v2` in later keepalived) is
//!   [`V3Ipv4Checksum::MessageOnly`].
//! - **Graceful release** ([`InstanceConfig::graceful_release`], on in havip): on shutdown or an
//!   operator's step-down a master sends priority 0 but keeps its addresses until a fully
//!   checked advertisement of the new master arrives, at most [`Instance::handover_bound`]; so
//!   clients never find the virtual address without a router. Off, it is RFC 5798 6.4.3.
//! - **A master hearing a lower priority** answers at once with an advertisement and an
//!   announcement burst (RFC 9568 6.4.3, keepalived's default), at most once per interval.
//!
//! `docs/vrrp.md` in the repository explains these and the timing formulas with worked numbers.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod config;
pub mod counters;
pub mod event;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
pub mod instance;
pub mod packet;
pub mod priority;
pub mod screen;
pub mod time;
pub mod timers;

pub use config::{AnnouncementConfig, ConfigError, InstanceConfig};
pub use counters::{Counters, DropReason};
pub use event::{
    Action, DropDetail, FaultCause, Handover, HandoverOutcome, Input, OutgoingAdvertisement,
    Reason, ReceivedPacket, StartupWaitEnd, State, Warning,
};
pub use instance::Instance;
pub use packet::{
    AddressFamily, AddressList, Advertisement, Authentication, ChecksumContext, DecodeError,
    EncodeError, Password, V3Ipv4Checksum, Version,
};
pub use priority::{TrackerState, Tracking};
pub use screen::Screen;
pub use time::Timestamp;
pub use timers::{AdvertInterval, TimerKind};
