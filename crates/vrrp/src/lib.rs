//! VRRP (RFC 3768 v2, RFC 5798 / RFC 9568 v3) as a pure library: the packet codec and the
//! per-instance state machine, with no sockets, no clock and no async runtime.
#![forbid(unsafe_code)]

pub mod config;
pub mod counters;
pub mod event;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
pub mod instance;
pub mod packet;
pub mod priority;
pub mod time;
pub mod timers;

pub use config::{AnnouncementConfig, Config, ConfigError};
pub use counters::{Counters, DropReason};
pub use event::{
    Action, FaultCause, Input, OutgoingAdvertisement, Reason, ReceivedPacket, State, Warning,
};
pub use instance::Instance;
pub use packet::{
    AddressFamily, AddressList, Advertisement, Authentication, ChecksumContext, DecodeError,
    EncodeError, Password, V3Ipv4Checksum, Version,
};
pub use priority::{TrackerState, Tracking};
pub use time::Timestamp;
pub use timers::{AdvertInterval, TimerKind};
