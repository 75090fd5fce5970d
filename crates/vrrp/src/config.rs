//! The configuration of one VRRP instance (one virtual router on one interface and address
//! family), its defaults and its validation.
//!
//! An [`Instance`](crate::Instance) is built from an `InstanceConfig` that passed [`InstanceConfig::validate`];
//! the configuration does not change afterwards (a reload builds a new instance).

use std::collections::HashSet;
use std::net::IpAddr;
use std::time::Duration;

use thiserror::Error;

use crate::packet::{AddressFamily, Authentication, V3Ipv4Checksum, Version};
use crate::timers::AdvertInterval;

/// The priority of the router that owns the virtual addresses (RFC 5798 5.2.4).
pub const OWNER_PRIORITY: u8 = 255;
/// The RFC default priority of a backup (RFC 5798 6.1).
pub const DEFAULT_PRIORITY: u8 = 100;
/// The most announcement rounds one burst may have: a burst with no spacing is emitted as that
/// many actions at once.
pub const MAX_ANNOUNCEMENT_ROUNDS: u32 = 100;

/// How the new master announces the virtual addresses' new location: gratuitous ARP for IPv4,
/// unsolicited Neighbor Advertisement for IPv6 (RFC 5798 6.4.1 / 6.4.2). The fields mirror
/// keepalived's `vrrp_garp_*` settings and default to keepalived's defaults.
///
/// An announcement *round* is one message per virtual address; a *burst* is `burst_count`
/// rounds, `burst_spacing` apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnouncementConfig {
    /// Rounds per burst on becoming master (keepalived `vrrp_garp_master_repeat`, default 5).
    /// 0 sends none.
    pub burst_count: u32,
    /// Time between the rounds of a burst (keepalived `vrrp_garp_interval` /
    /// `vrrp_gna_interval`, default 0: all rounds at once).
    pub burst_spacing: Duration,
    /// A second burst this long after becoming master (keepalived `vrrp_garp_master_delay`,
    /// default 5 s); `None` for no second burst (keepalived's 0).
    pub second_burst_delay: Option<Duration>,
    /// While master, a burst of `refresh_count` rounds this often (keepalived
    /// `vrrp_garp_master_refresh`, default off).
    pub refresh_interval: Option<Duration>,
    /// Rounds per refresh (keepalived `vrrp_garp_master_refresh_repeat`, default 1).
    pub refresh_count: u32,
    /// Rounds sent by a master that hears a lower-priority advertisement, followed by a second
    /// burst after `second_burst_delay` (keepalived `vrrp_garp_lower_prio_repeat` and
    /// `_delay`, which default to the master values). 0 sends none; the advertisement that
    /// answers a lower priority is sent regardless.
    pub lower_priority_burst_count: u32,
}

impl Default for AnnouncementConfig {
    fn default() -> Self {
        AnnouncementConfig {
            burst_count: 5,
            burst_spacing: Duration::ZERO,
            second_burst_delay: Some(Duration::from_secs(5)),
            refresh_interval: None,
            refresh_count: 1,
            lower_priority_burst_count: 5,
        }
    }
}

/// The configuration of one VRRP instance. Build it with [`InstanceConfig::new`] and adjust fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceConfig {
    /// Virtual Router Identifier, 1..=255 (RFC 5798 5.2.3).
    pub vrid: u8,
    /// Protocol version. VRRPv2 is IPv4 only.
    pub version: Version,
    /// Configured priority: 255 for the address owner, else 1..=254 (RFC 5798 5.2.4). Trackers
    /// move the effective priority (see [`crate::priority`]), never an owner's.
    pub priority: u8,
    /// Advertisement_Interval: whole seconds for VRRPv2, 0.01..=40.95 s for VRRPv3.
    pub advert_interval: AdvertInterval,
    /// Preempt_Mode (RFC 5798 6.1): whether a backup takes over from a lower-priority master.
    /// `false` is keepalived's `nopreempt`, honoured whatever keepalived's `state` said (see the
    /// crate docs). The address owner always preempts.
    pub preempt: bool,
    /// How much longer than usual a backup waits before preempting a live lower-priority
    /// master (keepalived `preempt_delay`). Zero preempts as the RFC says.
    pub preempt_delay: Duration,
    /// Accept_Mode (RFC 5798 6.1): whether a non-owner master accepts packets addressed to the
    /// virtual addresses. The RFC default is false; havip's default is true, because its proxy
    /// listens on the virtual address. Carried to the shell in
    /// [`Action::AddAddresses`](crate::Action::AddAddresses).
    pub accept_mode: bool,
    /// This router's primary address on the interface: the source of its advertisements and
    /// the tie-breaker between equal priorities (RFC 5798 6.4.3). For IPv6 the RFC wants the
    /// link-local address.
    pub primary_address: IpAddr,
    /// The virtual addresses, all of the primary address's family; 1..=255 of them. For IPv6,
    /// RFC 9568 5.2.9 wants a link-local one first; keepalived does not insist and neither do we.
    pub virtual_addresses: Vec<IpAddr>,
    /// Unicast peers. Empty: advertise to the multicast group. Otherwise one advertisement per
    /// peer per interval (keepalived `unicast_peer`).
    pub unicast_peers: Vec<IpAddr>,
    /// In unicast mode, drop advertisements whose source is not a configured peer (keepalived
    /// `check_unicast_src`, which keepalived leaves off by default; we turn it on).
    pub check_unicast_source: bool,
    /// In unicast mode, accept any TTL / hop limit instead of requiring 255. keepalived 2.2.7
    /// sends IPv6 unicast advertisements with hop limit 64 (see `tests/golden`), so a havip node
    /// in an IPv6 unicast pair with keepalived needs this. Multicast always requires 255.
    pub accept_any_unicast_ttl: bool,
    /// VRRPv2 authentication; must be `None` for VRRPv3.
    pub authentication: Authentication,
    /// The VRRPv3-over-IPv4 checksum form; keepalived 2.2.7 uses the pseudo-header.
    pub v3_ipv4_checksum: V3Ipv4Checksum,
    /// Gratuitous ARP / unsolicited NA behaviour.
    pub announcements: AnnouncementConfig,
    /// How a master lets go on shutdown or step-down. `false` is RFC 5798 6.4.3 (and
    /// keepalived): remove the addresses and send priority 0 at once, so clients have no
    /// router for the virtual addresses until a backup takes over after its Skew_Time. `true`
    /// sends priority 0 but keeps the addresses (and havip's proxy keeps serving on them) until
    /// another router's advertisement shows it is master, bounded by
    /// [`Instance::handover_bound`](crate::Instance::handover_bound): the gap shrinks from
    /// Skew_Time to one network delay.
    pub graceful_release: bool,
    /// Safe boot. `Some(limit)`: after Startup (and after a fault clears while it still
    /// waits) the instance does not become master, neither when its Master_Down_Timer fires
    /// nor by preempting, until the shell reports [`Input::TrackersReady`](crate::Input) (every
    /// tracker it follows has a first result), or `limit` has passed; then it proceeds with
    /// what it knows. A booting node whose health is not known yet so never takes the VIP only
    /// to give it back a moment later. `None`: RFC 5798 behaviour.
    pub startup_limit: Option<Duration>,
}

impl InstanceConfig {
    /// A VRRPv3 instance with the RFC defaults (priority 100, 1 s, preempt), havip's Accept_Mode
    /// default (true), multicast, and keepalived's announcement defaults.
    pub fn new(
        vrid: u8,
        primary_address: IpAddr,
        virtual_addresses: Vec<IpAddr>,
    ) -> InstanceConfig {
        InstanceConfig {
            vrid,
            version: Version::V3,
            priority: DEFAULT_PRIORITY,
            advert_interval: AdvertInterval::ONE_SECOND,
            preempt: true,
            preempt_delay: Duration::ZERO,
            accept_mode: true,
            primary_address,
            virtual_addresses,
            unicast_peers: Vec::new(),
            check_unicast_source: true,
            accept_any_unicast_ttl: false,
            authentication: Authentication::None,
            v3_ipv4_checksum: V3Ipv4Checksum::PseudoHeader,
            announcements: AnnouncementConfig::default(),
            graceful_release: false,
            startup_limit: None,
        }
    }

    /// The address family of the instance.
    pub fn family(&self) -> AddressFamily {
        AddressFamily::of(&self.primary_address)
    }

    /// Whether this router owns the virtual addresses (priority 255).
    pub fn is_owner(&self) -> bool {
        self.priority == OWNER_PRIORITY
    }

    /// Whether advertisements go to unicast peers instead of the multicast group.
    pub fn is_unicast(&self) -> bool {
        !self.unicast_peers.is_empty()
    }

    /// Whether `other` is the same virtual router, so that a running instance can take it in
    /// place: the same VRID, version, primary address (so family and link), the same virtual
    /// addresses (in any order) and the same ownership (priority 255 or not). Anything else is
    /// another instance: the shell stops this one (handing over as on shutdown) and starts
    /// the new one.
    pub fn is_same_router(&self, other: &InstanceConfig) -> bool {
        let mut ours = self.virtual_addresses.clone();
        let mut theirs = other.virtual_addresses.clone();
        ours.sort();
        theirs.sort();
        self.vrid == other.vrid
            && self.version == other.version
            && self.primary_address == other.primary_address
            && ours == theirs
            && self.is_owner() == other.is_owner()
    }

    /// Checks everything the protocol and the wire format require.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.vrid == 0 {
            return Err(ConfigError::VridZero);
        }
        if self.priority == 0 {
            return Err(ConfigError::PriorityZero);
        }
        let family = self.family();
        if self.version == Version::V2 && family != AddressFamily::Ipv4 {
            return Err(ConfigError::V2RequiresIpv4);
        }
        if !self.advert_interval.fits(self.version) {
            return Err(ConfigError::IntervalOutOfRange {
                interval: self.advert_interval,
                version: self.version,
            });
        }
        if self.virtual_addresses.is_empty() {
            return Err(ConfigError::NoVirtualAddresses);
        }
        if self.virtual_addresses.len() > usize::from(u8::MAX) {
            return Err(ConfigError::TooManyVirtualAddresses(
                self.virtual_addresses.len(),
            ));
        }
        let mut seen = HashSet::new();
        for address in &self.virtual_addresses {
            if AddressFamily::of(address) != family {
                return Err(ConfigError::VirtualAddressFamily {
                    address: *address,
                    family,
                });
            }
            if !seen.insert(address) {
                return Err(ConfigError::DuplicateVirtualAddress(*address));
            }
        }
        for peer in &self.unicast_peers {
            if AddressFamily::of(peer) != family {
                return Err(ConfigError::UnicastPeerFamily {
                    peer: *peer,
                    family,
                });
            }
            if *peer == self.primary_address {
                return Err(ConfigError::UnicastPeerIsSelf(*peer));
            }
        }
        if self.version == Version::V3 && self.authentication != Authentication::None {
            return Err(ConfigError::AuthenticationRequiresV2);
        }
        let announcements = &self.announcements;
        if announcements.second_burst_delay == Some(Duration::ZERO) {
            return Err(ConfigError::ZeroAnnouncementDelay("second_burst_delay"));
        }
        if announcements.refresh_interval == Some(Duration::ZERO) {
            return Err(ConfigError::ZeroAnnouncementDelay("refresh_interval"));
        }
        for (name, rounds) in [
            ("burst_count", announcements.burst_count),
            ("refresh_count", announcements.refresh_count),
            (
                "lower_priority_burst_count",
                announcements.lower_priority_burst_count,
            ),
        ] {
            if rounds > MAX_ANNOUNCEMENT_ROUNDS {
                return Err(ConfigError::TooManyAnnouncementRounds { name, rounds });
            }
        }
        Ok(())
    }
}

/// Why a [`InstanceConfig`] cannot run.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    /// VRID 0 is not a valid Virtual Router Identifier (RFC 5798 5.2.3).
    #[error("VRID 0 is not valid; use 1 to 255")]
    VridZero,
    /// Priority 0 only signals a master that stops (RFC 5798 5.2.4); no router is configured
    /// with it.
    #[error("priority 0 is reserved for a master that stops; use 1 to 254, or 255 for the address owner")]
    PriorityZero,
    /// VRRPv2 (RFC 3768) is defined for IPv4 only; IPv6 needs VRRPv3.
    #[error("VRRPv2 runs over IPv4 only; use VRRPv3 for IPv6")]
    V2RequiresIpv4,
    /// The interval has no encoding in this version's Adver Int field (RFC 3768 5.3.7:
    /// seconds; RFC 5798 5.2.7: 12-bit centiseconds).
    #[error("advertisement interval {interval} cannot be sent in {version} (v2: whole seconds 1-255, v3: 0.01-40.95 s)")]
    IntervalOutOfRange {
        /// The configured interval.
        interval: AdvertInterval,
        /// The configured version.
        version: Version,
    },
    /// An instance with no virtual address would protect nothing.
    #[error("at least one virtual address is required")]
    NoVirtualAddresses,
    /// The Count IPvX Addr field is one byte (RFC 5798 5.2.5); carries the count configured.
    #[error("{0} virtual addresses do not fit in one advertisement (at most 255)")]
    TooManyVirtualAddresses(usize),
    /// One instance carries one address family (RFC 5798 5.2.9).
    #[error("virtual address {address} is not {family} like the primary address")]
    VirtualAddressFamily {
        /// The virtual address of the other family.
        address: IpAddr,
        /// The primary address's family.
        family: AddressFamily,
    },
    /// The same virtual address appears twice in the list.
    #[error("virtual address {0} is listed twice")]
    DuplicateVirtualAddress(IpAddr),
    /// A unicast peer cannot be reached over the instance's address family.
    #[error("unicast peer {peer} is not {family} like the primary address")]
    UnicastPeerFamily {
        /// The peer of the other family.
        peer: IpAddr,
        /// The primary address's family.
        family: AddressFamily,
    },
    /// A router listed as its own peer would hear its own advertisements.
    #[error("unicast peer {0} is this router's own primary address")]
    UnicastPeerIsSelf(IpAddr),
    /// VRRPv3 has no authentication field (RFC 5798 9: it was removed).
    #[error("authentication exists only in VRRPv2 (RFC 5798 removed it)")]
    AuthenticationRequiresV2,
    /// A zero announcement delay or refresh interval; carries the field's name.
    #[error("announcement {0} of 0 would repeat without pause; leave it unset to disable")]
    ZeroAnnouncementDelay(&'static str),
    /// A burst longer than [`MAX_ANNOUNCEMENT_ROUNDS`].
    #[error("announcement {name} of {rounds} is more than {MAX_ANNOUNCEMENT_ROUNDS} rounds")]
    TooManyAnnouncementRounds {
        /// The field's name in [`AnnouncementConfig`].
        name: &'static str,
        /// The rounds configured.
        rounds: u32,
    },
    /// A reload asked an instance to become another one (other VRID, version, addresses or
    /// ownership); the shell replaces the instance instead.
    #[error("not the same virtual router: replace the instance instead")]
    NotTheSameInstance,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::Password;

    fn base() -> InstanceConfig {
        InstanceConfig::new(
            51,
            "192.0.2.1".parse().expect("address"),
            vec!["192.0.2.100".parse().expect("address")],
        )
    }

    #[test]
    fn defaults_follow_the_rfc_and_keepalived() {
        let config = base();
        assert_eq!(config.validate(), Ok(()));
        assert_eq!(config.version, Version::V3);
        assert_eq!(config.priority, 100);
        assert_eq!(config.advert_interval.centiseconds(), 100);
        assert!(config.preempt);
        assert!(config.accept_mode, "havip's default, not the RFC's");
        assert!(!config.is_unicast());
        assert_eq!(config.announcements.burst_count, 5);
        assert_eq!(
            config.announcements.second_burst_delay,
            Some(Duration::from_secs(5))
        );
    }

    #[test]
    fn validation_names_each_problem() {
        type Change = Box<dyn Fn(&mut InstanceConfig)>;
        let cases: Vec<(Change, ConfigError)> = vec![
            (Box::new(|c| c.vrid = 0), ConfigError::VridZero),
            (Box::new(|c| c.priority = 0), ConfigError::PriorityZero),
            (
                Box::new(|c| c.virtual_addresses.clear()),
                ConfigError::NoVirtualAddresses,
            ),
            (
                Box::new(|c| {
                    c.version = Version::V2;
                    c.advert_interval = AdvertInterval::from_centiseconds(50).expect("non-zero");
                }),
                ConfigError::IntervalOutOfRange {
                    interval: AdvertInterval::from_centiseconds(50).expect("non-zero"),
                    version: Version::V2,
                },
            ),
            (
                Box::new(|c| {
                    c.virtual_addresses
                        .push("2001:db8::1".parse().expect("address"))
                }),
                ConfigError::VirtualAddressFamily {
                    address: "2001:db8::1".parse().expect("address"),
                    family: AddressFamily::Ipv4,
                },
            ),
            (
                Box::new(|c| {
                    c.virtual_addresses
                        .push("192.0.2.100".parse().expect("address"))
                }),
                ConfigError::DuplicateVirtualAddress("192.0.2.100".parse().expect("address")),
            ),
            (
                Box::new(|c| c.unicast_peers.push("192.0.2.1".parse().expect("address"))),
                ConfigError::UnicastPeerIsSelf("192.0.2.1".parse().expect("address")),
            ),
            (
                Box::new(|c| c.unicast_peers.push("fe80::2".parse().expect("address"))),
                ConfigError::UnicastPeerFamily {
                    peer: "fe80::2".parse().expect("address"),
                    family: AddressFamily::Ipv4,
                },
            ),
            (
                Box::new(|c| {
                    c.authentication =
                        Authentication::SimplePassword(Password::from_keepalived_auth_pass("x"))
                }),
                ConfigError::AuthenticationRequiresV2,
            ),
            (
                Box::new(|c| c.announcements.refresh_interval = Some(Duration::ZERO)),
                ConfigError::ZeroAnnouncementDelay("refresh_interval"),
            ),
            (
                Box::new(|c| c.announcements.burst_count = 101),
                ConfigError::TooManyAnnouncementRounds {
                    name: "burst_count",
                    rounds: 101,
                },
            ),
        ];
        for (change, expected) in cases {
            let mut config = base();
            change(&mut config);
            assert_eq!(config.validate(), Err(expected));
        }
        let mut v2_over_ipv6 = InstanceConfig::new(
            1,
            "fe80::1".parse().expect("address"),
            vec!["fe80::100".parse().expect("address")],
        );
        v2_over_ipv6.version = Version::V2;
        assert_eq!(v2_over_ipv6.validate(), Err(ConfigError::V2RequiresIpv4));
    }
}
