//! The VRRP advertisement codec: pure functions from an [`Advertisement`] to bytes and back,
//! including the checksum and VRRPv2 authentication.
//!
//! What is encoded and decoded is the VRRP message only (the IP payload); the IP header belongs
//! to the socket. The VRRPv3 checksum covers an IP pseudo-header, so both directions take the
//! source and destination addresses in a [`ChecksumContext`].
//!
//! Wire formats:
//!
//! ```text
//! VRRPv2 (RFC 3768 5.1), IPv4 only        VRRPv3 (RFC 5798 5.1, RFC 9568 5.1)
//!  0      4      8             16            0      4      8             16
//! +------+------+-------------+----------+  +------+------+-------------+----------+
//! | ver 2|type 1| VRID        | Priority |  | ver 3|type 1| VRID        | Priority |
//! +------+------+-------------+----------+  +------+------+-------------+----------+
//! | Count IP Addrs | Auth Type| Adver Int|  | Count IPvX  | rsvd | Max Adver Int   |
//! +----------------+----------+----------+  +-------------+------+-----------------+
//! | Checksum                             |  | Checksum                             |
//! | IPv4 addresses (4 bytes each) ...    |  | IPv4 or IPv6 addresses ...           |
//! | Authentication Data (8 bytes)        |  +--------------------------------------+
//! +--------------------------------------+
//! ```
//!
//! Checksums (the Internet checksum of RFC 1071):
//! - VRRPv2: over the VRRP message (RFC 3768 5.3.8).
//! - VRRPv3 over IPv6: over an RFC 8200 8.1 pseudo-header and the message (RFC 5798 5.2.8).
//! - VRRPv3 over IPv4: RFC 5798 5.2.8 includes an IPv4 pseudo-header, and keepalived does so by
//!   default; RFC 9568 5.2.8 changed it to the message alone, which is what keepalived's
//!   `v3_checksum_as_v2` and some router vendors do. [`V3Ipv4Checksum`] picks one.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use thiserror::Error;

use crate::timers::AdvertInterval;

/// The IP protocol number of VRRP (RFC 5798 5.1.1.4).
pub const IP_PROTOCOL: u8 = 112;
/// The TTL / hop limit every VRRP packet is sent with and must arrive with (RFC 5798 5.1.1.3,
/// 5.1.2.3; RFC 3768 5.2.3): 255 proves the sender is on the link (RFC 5082).
pub const REQUIRED_TTL: u8 = 255;
/// The IPv4 multicast group adverts are sent to (RFC 5798 5.1.1.2).
pub const MULTICAST_GROUP_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// The IPv6 multicast group adverts are sent to (RFC 5798 5.1.2.2).
pub const MULTICAST_GROUP_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);

/// The only VRRP packet type (RFC 5798 5.2.2).
const TYPE_ADVERTISEMENT: u8 = 1;
/// Bytes before the address list, in both versions.
const HEADER_LEN: usize = 8;
/// The VRRPv2 Authentication Data field (RFC 3768 5.3.10).
const V2_AUTH_DATA_LEN: usize = 8;
/// VRRPv2 Auth Type values (RFC 3768 5.3.6).
const AUTH_TYPE_NONE: u8 = 0;
const AUTH_TYPE_SIMPLE_TEXT: u8 = 1;
const AUTH_TYPE_IP_AH: u8 = 2;
/// The 12-bit mask of the VRRPv3 Max Adver Int field; the 4 bits above it are reserved.
const V3_INTERVAL_MASK: u16 = 0x0fff;

/// VRRP protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// VRRPv2, RFC 3768: IPv4 only, interval in seconds, optional simple-password auth.
    V2,
    /// VRRPv3, RFC 5798 / RFC 9568: IPv4 and IPv6, interval in centiseconds, no auth.
    V3,
}

impl Version {
    /// The number in the Version field.
    pub const fn number(self) -> u8 {
        match self {
            Version::V2 => 2,
            Version::V3 => 3,
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VRRPv{}", self.number())
    }
}

/// IPv4 or IPv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressFamily {
    /// IPv4: VRRPv2 or VRRPv3, 4-byte addresses.
    Ipv4,
    /// IPv6: VRRPv3 only, 16-byte addresses.
    Ipv6,
}

impl AddressFamily {
    /// The family of `address`.
    pub const fn of(address: &IpAddr) -> AddressFamily {
        match address {
            IpAddr::V4(_) => AddressFamily::Ipv4,
            IpAddr::V6(_) => AddressFamily::Ipv6,
        }
    }

    /// The VRRP multicast group of this family.
    pub const fn multicast_group(self) -> IpAddr {
        match self {
            AddressFamily::Ipv4 => IpAddr::V4(MULTICAST_GROUP_V4),
            AddressFamily::Ipv6 => IpAddr::V6(MULTICAST_GROUP_V6),
        }
    }

    const fn address_len(self) -> usize {
        match self {
            AddressFamily::Ipv4 => 4,
            AddressFamily::Ipv6 => 16,
        }
    }
}

impl fmt::Display for AddressFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddressFamily::Ipv4 => "IPv4",
            AddressFamily::Ipv6 => "IPv6",
        })
    }
}

/// The addresses an advertisement carries: all of one family (RFC 9568 5.2.9), in wire order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AddressList {
    /// The IPv4 addresses of an advertisement sent over IPv4.
    V4(Vec<Ipv4Addr>),
    /// The IPv6 addresses of an advertisement sent over IPv6.
    V6(Vec<Ipv6Addr>),
}

impl AddressList {
    /// The family of the list.
    pub fn family(&self) -> AddressFamily {
        match self {
            AddressList::V4(_) => AddressFamily::Ipv4,
            AddressList::V6(_) => AddressFamily::Ipv6,
        }
    }

    /// How many addresses the list holds.
    pub fn len(&self) -> usize {
        match self {
            AddressList::V4(list) => list.len(),
            AddressList::V6(list) => list.len(),
        }
    }

    /// Whether the list is empty (never true for a decoded advertisement).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The addresses as `IpAddr`s, in wire order.
    pub fn to_ip_addrs(&self) -> Vec<IpAddr> {
        match self {
            AddressList::V4(list) => list.iter().copied().map(IpAddr::V4).collect(),
            AddressList::V6(list) => list.iter().copied().map(IpAddr::V6).collect(),
        }
    }

    /// Builds a list from `addresses`, which must all be of one family and not be empty.
    pub fn from_ip_addrs(addresses: &[IpAddr]) -> Option<AddressList> {
        match addresses.first()? {
            IpAddr::V4(_) => addresses
                .iter()
                .map(|address| match address {
                    IpAddr::V4(v4) => Some(*v4),
                    IpAddr::V6(_) => None,
                })
                .collect::<Option<Vec<_>>>()
                .map(AddressList::V4),
            IpAddr::V6(_) => addresses
                .iter()
                .map(|address| match address {
                    IpAddr::V6(v6) => Some(*v6),
                    IpAddr::V4(_) => None,
                })
                .collect::<Option<Vec<_>>>()
                .map(AddressList::V6),
        }
    }
}

/// A VRRPv2 simple-text password: exactly the 8 bytes of the Authentication Data field.
///
/// Debug output hides the bytes so passwords do not end up in logs.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Password([u8; V2_AUTH_DATA_LEN]);

impl Password {
    /// The password as keepalived derives it from `auth_pass`: the first 8 bytes, zero-padded
    /// when shorter. keepalived truncates longer passwords silently, so `K8SHA_KA_AUTH` and
    /// `K8SHA_KA` are the same password on the wire.
    pub fn from_keepalived_auth_pass(auth_pass: &str) -> Password {
        let mut bytes = [0u8; V2_AUTH_DATA_LEN];
        for (slot, byte) in bytes.iter_mut().zip(auth_pass.as_bytes()) {
            *slot = *byte;
        }
        Password(bytes)
    }

    /// The password from the raw field bytes.
    pub const fn from_bytes(bytes: [u8; V2_AUTH_DATA_LEN]) -> Password {
        Password(bytes)
    }

    /// The raw field bytes.
    pub const fn as_bytes(&self) -> &[u8; V2_AUTH_DATA_LEN] {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<8 bytes, hidden>)")
    }
}

/// VRRPv2 authentication (RFC 3768 5.3.6 / 10). VRRPv3 has none (RFC 5798 removed it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Authentication {
    /// Auth Type 0: the Authentication Data field is sent as zeros and ignored on receipt.
    None,
    /// Auth Type 1: the 8-byte password in clear text (keepalived `auth_type PASS`).
    SimplePassword(Password),
}

/// A decoded VRRP advertisement: the fields both versions share, normalised.
///
/// `interval` is the VRRPv2 Adver Int (seconds, stored as centiseconds) or the VRRPv3 Max
/// Adver Int (centiseconds). `authentication` is always [`Authentication::None`] in VRRPv3.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Advertisement {
    /// The Version field (RFC 5798 5.2.1).
    pub version: Version,
    /// The Virtual Router Identifier, 1..=255 (RFC 5798 5.2.3).
    pub vrid: u8,
    /// The sender's priority: 255 owner, 1..=254 backup-capable, 0 master stopping
    /// (RFC 5798 5.2.4).
    pub priority: u8,
    /// The advertisement interval, held in centiseconds for both versions.
    pub interval: AdvertInterval,
    /// The virtual addresses the sender protects (RFC 5798 5.2.9).
    pub addresses: AddressList,
    /// The VRRPv2 Auth Type and data (RFC 3768 5.3.6 / 5.3.10).
    pub authentication: Authentication,
}

impl Advertisement {
    /// The length of the encoded message in bytes.
    pub fn encoded_len(&self) -> usize {
        message_len(self.version, self.addresses.family(), self.addresses.len())
    }
}

/// How a VRRPv3-over-IPv4 checksum is computed; the per-instance setting keepalived calls
/// `v3_checksum_as_v2`. VRRPv2 and VRRPv3-over-IPv6 have only one form each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum V3Ipv4Checksum {
    /// Include the IPv4 pseudo-header (source, destination, zero, protocol 112, length), as RFC
    /// 5798 5.2.8 says and keepalived does by default.
    #[default]
    PseudoHeader,
    /// The VRRP message alone, as in VRRPv2: RFC 9568 5.2.8, keepalived `v3_checksum_as_v2`, and
    /// some router vendors.
    MessageOnly,
}

/// The IP-level facts a checksum needs: the packet's source and destination addresses (the
/// VRRPv3 pseudo-header) and the VRRPv3-over-IPv4 checksum form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChecksumContext {
    /// The IP source address of the packet.
    pub source: IpAddr,
    /// The IP destination address: the multicast group or a unicast peer.
    pub destination: IpAddr,
    /// Which VRRPv3-over-IPv4 checksum form to compute and accept.
    pub v3_ipv4_checksum: V3Ipv4Checksum,
}

impl ChecksumContext {
    /// The address family of the IP packet, or `None` when source and destination disagree.
    fn family(&self) -> Option<AddressFamily> {
        let family = AddressFamily::of(&self.source);
        (family == AddressFamily::of(&self.destination)).then_some(family)
    }
}

/// Why bytes are not a valid VRRP advertisement.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// Fewer bytes than the fixed header (RFC 5798 7.1: the message must be complete).
    #[error("packet of {length} bytes is shorter than the 8-byte VRRP header")]
    TooShort {
        /// The payload's length in bytes.
        length: usize,
    },
    /// A Version field other than 2 or 3; carries the number found (RFC 5798 5.2.1).
    #[error("VRRP version {0} is not supported (only 2 and 3 exist)")]
    UnsupportedVersion(u8),
    /// A Type other than ADVERTISEMENT; carries the type found (RFC 5798 5.2.2).
    #[error("VRRP packet type {0} is unknown (1 = ADVERTISEMENT is the only type)")]
    UnknownType(u8),
    /// The [`ChecksumContext`] pairs an IPv4 with an IPv6 address, so no pseudo-header exists.
    #[error("IP source and destination addresses are of different families")]
    MixedAddressFamilies,
    /// A version 2 message arrived over IPv6 (RFC 3768 is IPv4 only).
    #[error("VRRPv2 is defined for IPv4 only, but the packet arrived over IPv6")]
    V2OverIpv6,
    /// The payload is shorter or longer than its Count IPvX Addr field implies (RFC 5798 7.1).
    #[error("VRRP message is {actual} bytes but its address count implies {expected}")]
    LengthMismatch {
        /// The length in bytes the header implies.
        expected: usize,
        /// The payload's length in bytes.
        actual: usize,
    },
    /// The checksum is wrong in every form this instance accepts (RFC 5798 7.1).
    #[error("checksum {found:#06x} is wrong, expected {expected:#06x}")]
    ChecksumMismatch {
        /// The checksum the message should carry.
        expected: u16,
        /// The checksum the message carries.
        found: u16,
    },
    /// A VRRPv3-over-IPv4 checksum that is right in the other form (RFC 5798 vs RFC 9568
    /// 5.2.8): the two routers disagree on `v3_checksum_as_v2`.
    #[error(
        "VRRPv3 over IPv4 checksum {found:#06x} is valid only {other_form}; \
         the sender uses the other checksum form (keepalived v3_checksum_as_v2)"
    )]
    ChecksumOtherForm {
        /// The checksum the message carries.
        found: u16,
        /// The form under which it is right.
        other_form: ChecksumFormName,
    },
    /// A Count IPvX Addr of 0 (RFC 9568 5.2.5).
    #[error("advertisement carries no addresses (RFC 9568 5.2.5: a count of 0 is ignored)")]
    NoAddresses,
    /// An advertisement interval of 0 (RFC 9568 7.1).
    #[error("advertisement interval is 0 (RFC 9568 7.1)")]
    ZeroInterval,
    /// VRRPv2 Auth Type 2, IP Authentication Header, which RFC 3768 5.3.6.3 removed.
    #[error("VRRPv2 Auth Type 2 (IP Authentication Header) is not supported: RFC 3768 removed it")]
    AuthenticationHeaderUnsupported,
    /// A VRRPv2 Auth Type outside 0..=2; carries the type found (RFC 3768 5.3.6).
    #[error("VRRPv2 Auth Type {0} is unknown (0 = none, 1 = simple password)")]
    UnknownAuthType(u8),
}

/// Names a checksum form in an error message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumFormName {
    /// Computed over the IPv4 pseudo-header and the message (RFC 5798 5.2.8).
    WithPseudoHeader,
    /// Computed over the message alone (RFC 9568 5.2.8).
    MessageOnly,
}

impl fmt::Display for ChecksumFormName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ChecksumFormName::WithPseudoHeader => "with the IPv4 pseudo-header",
            ChecksumFormName::MessageOnly => "over the VRRP message alone",
        })
    }
}

/// Why an advertisement cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EncodeError {
    /// A VRRPv2 advertisement with IPv6 addresses (RFC 3768 is IPv4 only).
    #[error("VRRPv2 is defined for IPv4 only")]
    V2RequiresIpv4,
    /// The interval has no encoding in this version's interval field (RFC 3768 5.3.7,
    /// RFC 5798 5.2.7); carries the interval and the version.
    #[error("interval {0} cannot be sent in {1}")]
    IntervalOutOfRange(AdvertInterval, Version),
    /// A VRRPv3 advertisement with authentication, which VRRPv3 has no field for.
    #[error("VRRPv3 has no authentication (RFC 5798 removed it)")]
    AuthenticationInV3,
    /// An address count the one-byte Count field cannot carry, or 0 (RFC 5798 5.2.5).
    #[error("an advertisement carries 1 to 255 addresses, not {0}")]
    AddressCount(usize),
    /// The [`ChecksumContext`] is not of the addresses' family (RFC 9568 5.2.9); carries the
    /// addresses' family.
    #[error("the IP source and destination must be of the advertised addresses' family ({0})")]
    AddressFamilyMismatch(AddressFamily),
}

/// The VRID of a VRRP message without decoding it, so a shell with several instances on one
/// interface can hand the bytes to the right one (RFC 5798 7.1: the VRID must be configured on
/// the receiving interface).
pub fn peek_vrid(payload: &[u8]) -> Option<u8> {
    payload.get(1).copied()
}

/// Decodes one VRRP message and verifies its checksum.
///
/// Checks, in the order of RFC 5798 / RFC 9568 7.1 where they concern the bytes alone: version
/// and type, completeness, checksum, then the field values (address count, interval, VRRPv2 auth
/// type). Checks that depend on the configuration (VRID, auth data, interval match, TTL) are
/// made by the instance.
pub fn decode(payload: &[u8], context: &ChecksumContext) -> Result<Advertisement, DecodeError> {
    let [version_type, vrid, priority, count, v2_auth_type, v2_interval, checksum_high, checksum_low] =
        match payload.first_chunk::<HEADER_LEN>() {
            Some(header) => *header,
            None => {
                return Err(DecodeError::TooShort {
                    length: payload.len(),
                })
            }
        };

    // RFC 5798 7.1: the version must be 3 (RFC 3768 7.1: 2); the instance compares it with the
    // configured one.
    let version = match version_type >> 4 {
        2 => Version::V2,
        3 => Version::V3,
        other => return Err(DecodeError::UnsupportedVersion(other)),
    };
    // RFC 5798 5.2.2 / RFC 9568 7.1: a packet of unknown type is discarded.
    let packet_type = version_type & 0x0f;
    if packet_type != TYPE_ADVERTISEMENT {
        return Err(DecodeError::UnknownType(packet_type));
    }

    let family = context.family().ok_or(DecodeError::MixedAddressFamilies)?;
    if version == Version::V2 && family == AddressFamily::Ipv6 {
        return Err(DecodeError::V2OverIpv6);
    }

    // RFC 5798 7.1: the packet must contain the complete VRRP message. Trailing bytes are refused
    // too: the IP length says where the message ends, and no implementation pads it.
    let expected = message_len(version, family, usize::from(count));
    if payload.len() != expected {
        return Err(DecodeError::LengthMismatch {
            expected,
            actual: payload.len(),
        });
    }

    verify_checksum(
        payload,
        u16::from_be_bytes([checksum_high, checksum_low]),
        version,
        family,
        context,
    )?;

    // RFC 9568 5.2.5 (erratum 8299): an advertisement with a count of 0 is ignored.
    if count == 0 {
        return Err(DecodeError::NoAddresses);
    }

    let interval = match version {
        Version::V2 => AdvertInterval::from_seconds(v2_interval),
        // RFC 5798 5.2.6: the 4 reserved bits are ignored on reception.
        Version::V3 => AdvertInterval::from_centiseconds(
            u16::from_be_bytes([v2_auth_type, v2_interval]) & V3_INTERVAL_MASK,
        ),
    }
    // RFC 9568 7.1 (erratum 8301): the Max Advertise Interval must be non-zero.
    .ok_or(DecodeError::ZeroInterval)?;

    let address_bytes = payload
        .get(HEADER_LEN..HEADER_LEN + usize::from(count) * family.address_len())
        .unwrap_or_default();
    let addresses = match family {
        AddressFamily::Ipv4 => AddressList::V4(
            address_bytes
                .chunks_exact(4)
                .filter_map(|chunk| <[u8; 4]>::try_from(chunk).ok())
                .map(Ipv4Addr::from)
                .collect(),
        ),
        AddressFamily::Ipv6 => AddressList::V6(
            address_bytes
                .chunks_exact(16)
                .filter_map(|chunk| <[u8; 16]>::try_from(chunk).ok())
                .map(Ipv6Addr::from)
                .collect(),
        ),
    };

    let authentication = match version {
        Version::V3 => Authentication::None,
        Version::V2 => match v2_auth_type {
            // RFC 3768 5.3.10: with type 0 the data field is ignored on reception.
            AUTH_TYPE_NONE => Authentication::None,
            AUTH_TYPE_SIMPLE_TEXT => {
                let data = payload
                    .last_chunk::<V2_AUTH_DATA_LEN>()
                    .copied()
                    .unwrap_or_default();
                Authentication::SimplePassword(Password::from_bytes(data))
            }
            // RFC 3768 5.3.6.3: type 2 (IP AH, RFC 2338) was removed.
            AUTH_TYPE_IP_AH => return Err(DecodeError::AuthenticationHeaderUnsupported),
            other => return Err(DecodeError::UnknownAuthType(other)),
        },
    };

    Ok(Advertisement {
        version,
        vrid,
        priority,
        interval,
        addresses,
        authentication,
    })
}

/// Encodes `advertisement` for sending from `context.source` to `context.destination`,
/// checksum included.
pub fn encode(
    advertisement: &Advertisement,
    context: &ChecksumContext,
) -> Result<Vec<u8>, EncodeError> {
    let family = advertisement.addresses.family();
    let count = advertisement.addresses.len();
    if advertisement.version == Version::V2 && family != AddressFamily::Ipv4 {
        return Err(EncodeError::V2RequiresIpv4);
    }
    // RFC 9568 5.2.9: the addresses are of the IP header's family.
    if context.family() != Some(family) {
        return Err(EncodeError::AddressFamilyMismatch(family));
    }
    let count_byte = match u8::try_from(count) {
        Ok(0) | Err(_) => return Err(EncodeError::AddressCount(count)),
        Ok(byte) => byte,
    };
    if !advertisement.interval.fits(advertisement.version) {
        return Err(EncodeError::IntervalOutOfRange(
            advertisement.interval,
            advertisement.version,
        ));
    }
    if advertisement.version == Version::V3 && advertisement.authentication != Authentication::None
    {
        return Err(EncodeError::AuthenticationInV3);
    }

    let mut bytes = Vec::with_capacity(advertisement.encoded_len());
    bytes.push((advertisement.version.number() << 4) | TYPE_ADVERTISEMENT);
    bytes.push(advertisement.vrid);
    bytes.push(advertisement.priority);
    bytes.push(count_byte);
    match advertisement.version {
        Version::V2 => {
            let auth_type = match advertisement.authentication {
                Authentication::None => AUTH_TYPE_NONE,
                Authentication::SimplePassword(_) => AUTH_TYPE_SIMPLE_TEXT,
            };
            bytes.push(auth_type);
            // fits() checked that the interval is a whole number of seconds up to 255.
            bytes.push(advertisement.interval.whole_seconds().unwrap_or(0));
        }
        Version::V3 => {
            // RFC 5798 5.2.6: the reserved bits are sent as zero.
            let field = advertisement.interval.centiseconds() & V3_INTERVAL_MASK;
            bytes.extend_from_slice(&field.to_be_bytes());
        }
    }
    // Checksum placeholder, filled in below (RFC 5798 5.2.8: computed with the field zeroed).
    bytes.extend_from_slice(&[0, 0]);
    match &advertisement.addresses {
        AddressList::V4(list) => list
            .iter()
            .for_each(|a| bytes.extend_from_slice(&a.octets())),
        AddressList::V6(list) => list
            .iter()
            .for_each(|a| bytes.extend_from_slice(&a.octets())),
    }
    if advertisement.version == Version::V2 {
        match advertisement.authentication {
            // RFC 3768 5.3.10: zero on transmission when there is no authentication.
            Authentication::None => bytes.extend_from_slice(&[0; V2_AUTH_DATA_LEN]),
            Authentication::SimplePassword(password) => {
                bytes.extend_from_slice(password.as_bytes())
            }
        }
    }

    let checksum = checksum(
        &bytes,
        pseudo_header_for(advertisement.version, family, context),
        context,
    );
    if let Some(field) = bytes.get_mut(6..8) {
        field.copy_from_slice(&checksum.to_be_bytes());
    }
    Ok(bytes)
}

/// The length of a message of `version` carrying `count` addresses of `family`.
fn message_len(version: Version, family: AddressFamily, count: usize) -> usize {
    let auth = match version {
        Version::V2 => V2_AUTH_DATA_LEN,
        Version::V3 => 0,
    };
    HEADER_LEN + count * family.address_len() + auth
}

/// Whether the checksum of a message of `version` and `family` covers a pseudo-header.
fn pseudo_header_for(version: Version, family: AddressFamily, context: &ChecksumContext) -> bool {
    match (version, family) {
        // RFC 3768 5.3.8: the VRRP message only.
        (Version::V2, _) => false,
        // RFC 5798 5.2.8 and RFC 9568 5.2.8 agree for IPv6.
        (Version::V3, AddressFamily::Ipv6) => true,
        (Version::V3, AddressFamily::Ipv4) => {
            context.v3_ipv4_checksum == V3Ipv4Checksum::PseudoHeader
        }
    }
}

fn verify_checksum(
    payload: &[u8],
    found: u16,
    version: Version,
    family: AddressFamily,
    context: &ChecksumContext,
) -> Result<(), DecodeError> {
    let with_pseudo_header = pseudo_header_for(version, family, context);
    // A correct message sums, checksum field included, to 0xffff; the checksum over the
    // message with the field read as zero is what the sender should have written.
    if checksum(payload, with_pseudo_header, context) == 0 {
        return Ok(());
    }
    if version == Version::V3
        && family == AddressFamily::Ipv4
        && checksum(payload, !with_pseudo_header, context) == 0
    {
        return Err(DecodeError::ChecksumOtherForm {
            found,
            other_form: if with_pseudo_header {
                ChecksumFormName::MessageOnly
            } else {
                ChecksumFormName::WithPseudoHeader
            },
        });
    }
    let mut zeroed = payload.to_vec();
    if let Some(field) = zeroed.get_mut(6..8) {
        field.fill(0);
    }
    Err(DecodeError::ChecksumMismatch {
        expected: checksum(&zeroed, with_pseudo_header, context),
        found,
    })
}

/// The Internet checksum (RFC 1071) of `message`, preceded by the IP pseudo-header of
/// `context` when `with_pseudo_header` is set. Over a message whose checksum field holds a
/// correct checksum the result is 0.
pub(crate) fn checksum(message: &[u8], with_pseudo_header: bool, context: &ChecksumContext) -> u16 {
    let mut sum = 0u32;
    if with_pseudo_header {
        match (context.source, context.destination) {
            // The IPv4 pseudo-header of RFC 768 / RFC 793: source, destination, zero, protocol,
            // length (what keepalived and RFC 5798 5.2.8 use).
            (IpAddr::V4(source), IpAddr::V4(destination)) => {
                sum = add_words(sum, &source.octets());
                sum = add_words(sum, &destination.octets());
                sum = add_words(sum, &[0, IP_PROTOCOL]);
                // The message is at most 8 + 255 × 4 + 8 bytes, far below u16::MAX.
                let length = u16::try_from(message.len()).unwrap_or(u16::MAX);
                sum = add_words(sum, &length.to_be_bytes());
            }
            // RFC 8200 8.1: source, destination, upper-layer length (32 bits), 3 zero bytes,
            // next header.
            (IpAddr::V6(source), IpAddr::V6(destination)) => {
                sum = add_words(sum, &source.octets());
                sum = add_words(sum, &destination.octets());
                let length = u32::try_from(message.len()).unwrap_or(u32::MAX);
                sum = add_words(sum, &length.to_be_bytes());
                sum = add_words(sum, &[0, 0, 0, IP_PROTOCOL]);
            }
            // Mixed families never reach here: decode and encode refuse them first.
            _ => {}
        }
    }
    sum = add_words(sum, message);
    !fold(sum)
}

/// Adds `bytes` as big-endian 16-bit words to a one's-complement running sum; an odd final
/// byte is padded with a zero byte (RFC 1071). Folds as it goes so the sum never overflows.
fn add_words(mut sum: u32, bytes: &[u8]) -> u32 {
    let mut words = bytes.chunks_exact(2);
    for word in &mut words {
        if let [high, low] = word {
            sum += u32::from(u16::from_be_bytes([*high, *low]));
            sum = fold_once(sum);
        }
    }
    if let [last] = words.remainder() {
        sum += u32::from(u16::from_be_bytes([*last, 0]));
        sum = fold_once(sum);
    }
    sum
}

fn fold_once(sum: u32) -> u32 {
    (sum & 0xffff) + (sum >> 16)
}

fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = fold_once(sum);
    }
    // The loop leaves at most 0xffff.
    u16::try_from(sum).unwrap_or(u16::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(a, b, c, d))
    }

    fn interval(centiseconds: u16) -> AdvertInterval {
        AdvertInterval::from_centiseconds(centiseconds).expect("non-zero")
    }

    fn multicast_v4_context() -> ChecksumContext {
        ChecksumContext {
            source: v4(192, 0, 2, 1),
            destination: IpAddr::V4(MULTICAST_GROUP_V4),
            v3_ipv4_checksum: V3Ipv4Checksum::PseudoHeader,
        }
    }

    fn v2_advert() -> Advertisement {
        Advertisement {
            version: Version::V2,
            vrid: 51,
            priority: 100,
            interval: interval(100),
            addresses: AddressList::V4(vec![Ipv4Addr::new(192, 0, 2, 100)]),
            authentication: Authentication::None,
        }
    }

    #[test]
    fn v2_encoding_is_byte_exact() {
        let bytes = encode(&v2_advert(), &multicast_v4_context()).expect("encodes");
        // version 2 type 1, vrid 51, priority 100, 1 address, auth 0, interval 1 s,
        // checksum, 192.0.2.100, 8 zero bytes of auth data.
        // Checksum by hand: 0x2133 + 0x6401 + 0x0001 + 0xc000 + 0x0264 = 0x1_4799
        // -> 0x4799 + 1 = 0x479a -> !0x479a = 0xb865
        assert_eq!(
            bytes,
            [
                0x21, 0x33, 0x64, 0x01, 0x00, 0x01, 0xb8, 0x65, 192, 0, 2, 100, 0, 0, 0, 0, 0, 0,
                0, 0
            ]
        );
    }

    #[test]
    fn v2_checksum_ignores_the_ip_addresses() {
        let multicast = encode(&v2_advert(), &multicast_v4_context()).expect("encodes");
        let other = ChecksumContext {
            source: v4(10, 9, 9, 9),
            destination: v4(10, 9, 9, 8),
            ..multicast_v4_context()
        };
        assert_eq!(multicast, encode(&v2_advert(), &other).expect("encodes"));
    }

    #[test]
    fn simple_password_is_truncated_and_padded_like_keepalived() {
        let long = Password::from_keepalived_auth_pass("K8SHA_KA_AUTH");
        assert_eq!(long.as_bytes(), b"K8SHA_KA");
        let short = Password::from_keepalived_auth_pass("1111");
        assert_eq!(short.as_bytes(), b"1111\0\0\0\0");
        assert_eq!(format!("{long:?}"), "Password(<8 bytes, hidden>)");
    }

    #[test]
    fn v2_with_password_round_trips_and_carries_the_password_last() {
        let mut advert = v2_advert();
        advert.authentication =
            Authentication::SimplePassword(Password::from_keepalived_auth_pass("secret"));
        let bytes = encode(&advert, &multicast_v4_context()).expect("encodes");
        assert_eq!(bytes[4], 1, "auth type 1");
        assert_eq!(&bytes[12..], b"secret\0\0");
        assert_eq!(decode(&bytes, &multicast_v4_context()), Ok(advert));
    }

    #[test]
    fn v2_auth_data_is_ignored_when_auth_type_is_none() {
        let mut bytes = encode(&v2_advert(), &multicast_v4_context()).expect("encodes");
        // Put garbage in the auth data and fix the checksum up by hand: the sum of the new
        // words must stay the same, so add 0x0102 and subtract it elsewhere in the auth data.
        bytes[12] = 0x01;
        bytes[13] = 0x02;
        bytes[14] = 0xfe;
        bytes[15] = 0xfd;
        assert_eq!(decode(&bytes, &multicast_v4_context()), Ok(v2_advert()));
    }

    #[test]
    fn v3_ipv4_checksum_covers_the_pseudo_header_unless_message_only() {
        let advert = Advertisement {
            version: Version::V3,
            interval: interval(10),
            ..v2_advert()
        };
        let pseudo = multicast_v4_context();
        let message_only = ChecksumContext {
            v3_ipv4_checksum: V3Ipv4Checksum::MessageOnly,
            ..pseudo
        };
        let with = encode(&advert, &pseudo).expect("encodes");
        let without = encode(&advert, &message_only).expect("encodes");
        assert_eq!(with.len(), 12);
        assert_eq!(&with[..6], &[0x31, 51, 100, 1, 0x00, 0x0a]);
        assert_ne!(with[6..8], without[6..8]);
        // Message only: 0x3133 + 0x6401 + 0x000a + 0xc000 + 0x0264 = 0x1_57a2 -> 0x57a3 -> 0xa85c
        assert_eq!(&without[6..8], &[0xa8, 0x5c]);
        assert_eq!(decode(&with, &pseudo), Ok(advert.clone()));
        assert_eq!(decode(&without, &message_only), Ok(advert.clone()));

        // Each form, read with the other setting, is reported as the other form.
        assert_eq!(
            decode(&with, &message_only),
            Err(DecodeError::ChecksumOtherForm {
                found: u16::from_be_bytes([with[6], with[7]]),
                other_form: ChecksumFormName::WithPseudoHeader,
            })
        );
        assert!(matches!(
            decode(&without, &pseudo),
            Err(DecodeError::ChecksumOtherForm {
                other_form: ChecksumFormName::MessageOnly,
                ..
            })
        ));

        // A different destination breaks the pseudo-header checksum only.
        let unicast = ChecksumContext {
            destination: v4(192, 0, 2, 2),
            ..pseudo
        };
        assert!(matches!(
            decode(&with, &unicast),
            Err(DecodeError::ChecksumMismatch { .. })
        ));
        assert_eq!(
            decode(
                &without,
                &ChecksumContext {
                    destination: v4(192, 0, 2, 2),
                    ..message_only
                }
            ),
            Ok(advert)
        );
    }

    #[test]
    fn v3_ipv6_round_trips_and_depends_on_the_pseudo_header() {
        let source: Ipv6Addr = "fe80::1".parse().expect("address");
        let advert = Advertisement {
            version: Version::V3,
            vrid: 7,
            priority: 255,
            interval: interval(4095),
            addresses: AddressList::V6(vec![
                "fe80::100".parse().expect("address"),
                "2001:db8::100".parse().expect("address"),
            ]),
            authentication: Authentication::None,
        };
        let context = ChecksumContext {
            source: IpAddr::V6(source),
            destination: IpAddr::V6(MULTICAST_GROUP_V6),
            v3_ipv4_checksum: V3Ipv4Checksum::PseudoHeader,
        };
        let bytes = encode(&advert, &context).expect("encodes");
        assert_eq!(bytes.len(), 8 + 32);
        assert_eq!(&bytes[4..6], &[0x0f, 0xff]);
        assert_eq!(decode(&bytes, &context), Ok(advert.clone()));
        // The v3 IPv4 setting has no effect on IPv6.
        let message_only = ChecksumContext {
            v3_ipv4_checksum: V3Ipv4Checksum::MessageOnly,
            ..context
        };
        assert_eq!(decode(&bytes, &message_only), Ok(advert));
        let other_source = ChecksumContext {
            source: "fe80::2".parse().expect("address"),
            ..context
        };
        assert!(matches!(
            decode(&bytes, &other_source),
            Err(DecodeError::ChecksumMismatch { .. })
        ));
    }

    #[test]
    fn v3_reserved_bits_are_ignored_on_receipt() {
        let advert = Advertisement {
            version: Version::V3,
            ..v2_advert()
        };
        let context = multicast_v4_context();
        let mut bytes = encode(&advert, &context).expect("encodes");
        // Set the reserved nibble and keep the checksum right by subtracting 0xf000.
        bytes[4] |= 0xf0;
        let old = u16::from_be_bytes([bytes[6], bytes[7]]);
        let sum = u32::from(!old) + 0xf000;
        let new = !fold(sum);
        bytes[6..8].copy_from_slice(&new.to_be_bytes());
        assert_eq!(decode(&bytes, &context), Ok(advert));
    }

    #[test]
    fn decode_reports_each_defect_with_its_own_error() {
        let context = multicast_v4_context();
        let good = encode(&v2_advert(), &context).expect("encodes");
        assert_eq!(
            decode(&good[..7], &context),
            Err(DecodeError::TooShort { length: 7 })
        );

        let mut bad_version = good.clone();
        bad_version[0] = 0x41;
        assert_eq!(
            decode(&bad_version, &context),
            Err(DecodeError::UnsupportedVersion(4))
        );

        let mut bad_type = good.clone();
        bad_type[0] = 0x22;
        assert_eq!(
            decode(&bad_type, &context),
            Err(DecodeError::UnknownType(2))
        );

        assert_eq!(
            decode(&good[..19], &context),
            Err(DecodeError::LengthMismatch {
                expected: 20,
                actual: 19
            })
        );
        let mut long = good.clone();
        long.push(0);
        assert_eq!(
            decode(&long, &context),
            Err(DecodeError::LengthMismatch {
                expected: 20,
                actual: 21
            })
        );

        let mut bad_checksum = good.clone();
        bad_checksum[7] ^= 0x01;
        assert_eq!(
            decode(&bad_checksum, &context),
            Err(DecodeError::ChecksumMismatch {
                expected: 0xb865,
                found: 0xb864
            })
        );

        let mixed = ChecksumContext {
            destination: IpAddr::V6(MULTICAST_GROUP_V6),
            ..context
        };
        assert_eq!(
            decode(&good, &mixed),
            Err(DecodeError::MixedAddressFamilies)
        );
        let v6 = ChecksumContext {
            source: "fe80::1".parse().expect("address"),
            destination: IpAddr::V6(MULTICAST_GROUP_V6),
            ..context
        };
        assert_eq!(decode(&good, &v6), Err(DecodeError::V2OverIpv6));
    }

    /// Builds a v2 message with arbitrary header bytes and a correct checksum.
    fn v2_with_header(count: u8, auth_type: u8, seconds: u8) -> Vec<u8> {
        let mut bytes = vec![0x21, 51, 100, count, auth_type, seconds, 0, 0];
        for _ in 0..count {
            bytes.extend_from_slice(&[192, 0, 2, 100]);
        }
        bytes.extend_from_slice(&[0; 8]);
        let sum = checksum(&bytes, false, &multicast_v4_context());
        bytes[6..8].copy_from_slice(&sum.to_be_bytes());
        bytes
    }

    #[test]
    fn decode_refuses_field_values_that_the_rfcs_discard() {
        let context = multicast_v4_context();
        assert!(decode(&v2_with_header(1, 0, 1), &context).is_ok());
        assert_eq!(
            decode(&v2_with_header(0, 0, 1), &context),
            Err(DecodeError::NoAddresses)
        );
        assert_eq!(
            decode(&v2_with_header(1, 0, 0), &context),
            Err(DecodeError::ZeroInterval)
        );
        let ah = decode(&v2_with_header(1, 2, 1), &context);
        assert_eq!(ah, Err(DecodeError::AuthenticationHeaderUnsupported));
        assert!(ah
            .expect_err("refused")
            .to_string()
            .contains("IP Authentication Header"));
        assert_eq!(
            decode(&v2_with_header(1, 3, 1), &context),
            Err(DecodeError::UnknownAuthType(3))
        );
    }

    #[test]
    fn encode_refuses_what_the_wire_cannot_carry() {
        let context = multicast_v4_context();
        let mut advert = v2_advert();
        advert.interval = interval(150);
        assert_eq!(
            encode(&advert, &context),
            Err(EncodeError::IntervalOutOfRange(interval(150), Version::V2))
        );
        let mut advert = v2_advert();
        advert.version = Version::V3;
        advert.interval = interval(4096);
        assert!(matches!(
            encode(&advert, &context),
            Err(EncodeError::IntervalOutOfRange(..))
        ));
        advert.interval = interval(100);
        advert.authentication =
            Authentication::SimplePassword(Password::from_keepalived_auth_pass("x"));
        assert_eq!(
            encode(&advert, &context),
            Err(EncodeError::AuthenticationInV3)
        );
        let mut advert = v2_advert();
        advert.addresses = AddressList::V4(vec![]);
        assert_eq!(encode(&advert, &context), Err(EncodeError::AddressCount(0)));
        advert.addresses = AddressList::V4(vec![Ipv4Addr::LOCALHOST; 256]);
        assert_eq!(
            encode(&advert, &context),
            Err(EncodeError::AddressCount(256))
        );
        let mut advert = v2_advert();
        advert.addresses = AddressList::V6(vec![Ipv6Addr::LOCALHOST]);
        assert_eq!(encode(&advert, &context), Err(EncodeError::V2RequiresIpv4));
        advert.version = Version::V3;
        assert_eq!(
            encode(&advert, &context),
            Err(EncodeError::AddressFamilyMismatch(AddressFamily::Ipv6))
        );
    }

    #[test]
    fn checksum_handles_odd_lengths_and_carries() {
        // RFC 1071 example words: 0x0001 0xf203 0xf4f5 0xf6f7 sum to 0x2_ddf0 -> 0xddf2.
        let context = multicast_v4_context();
        let sum = checksum(
            &[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7],
            false,
            &context,
        );
        assert_eq!(sum, !0xddf2);
        // An odd trailing byte counts as the high byte of a word.
        assert_eq!(checksum(&[0x12], false, &context), !0x1200);
    }

    #[test]
    fn address_list_conversions() {
        let list =
            AddressList::from_ip_addrs(&[v4(10, 0, 0, 1), v4(10, 0, 0, 2)]).expect("one family");
        assert_eq!(list.family(), AddressFamily::Ipv4);
        assert_eq!(list.to_ip_addrs(), vec![v4(10, 0, 0, 1), v4(10, 0, 0, 2)]);
        assert_eq!(
            AddressList::from_ip_addrs(&[v4(10, 0, 0, 1), "::1".parse().expect("address")]),
            None
        );
        assert_eq!(AddressList::from_ip_addrs(&[]), None);
        assert_eq!(peek_vrid(&[0x31, 42]), Some(42));
        assert_eq!(peek_vrid(&[0x31]), None);
    }
}
