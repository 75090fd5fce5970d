//! VRRP (RFC 3768 v2, RFC 5798 / RFC 9568 v3) as a pure library: the packet codec and the
//! per-instance state machine, with no sockets, no clock and no async runtime.
#![forbid(unsafe_code)]

pub mod packet;
pub mod time;
pub mod timers;

pub use packet::{
    AddressFamily, AddressList, Advertisement, Authentication, ChecksumContext, DecodeError,
    EncodeError, Password, V3Ipv4Checksum, Version,
};
pub use time::Timestamp;
pub use timers::{AdvertInterval, TimerKind};
