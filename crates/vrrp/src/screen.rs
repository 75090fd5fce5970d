//! The receive checks of RFC 5798 7.1 / RFC 3768 7.1 that depend on the configuration only,
//! not on the instance's state: the instance runs them first on every packet, and a shell
//! may run the very same checks before it queues a packet for the instance, so that a flood
//! of junk on the segment cannot fill the instance's inbox and push real advertisements out
//! (issue 15). What a [`Screen`] rejects, the instance would have dropped for the same reason;
//! what it admits still goes through the instance's own checks.
//!
//! Lifecycle: [`Instance::screen`](crate::Instance::screen) gives the screen of the current
//! configuration; a shell keeps a copy and replaces it when it reconfigures the instance.

use std::net::IpAddr;

use crate::config::{InstanceConfig, OWNER_PRIORITY};
use crate::counters::DropReason;
use crate::event::{DropDetail, ReceivedPacket};
use crate::packet::{
    self, AddressFamily, Advertisement, Authentication, ChecksumContext, Version, REQUIRED_TTL,
};

/// Why a packet was rejected: the counter it belongs to and what to log.
pub type Rejection = (DropReason, Option<DropDetail>);

/// The configuration-only receive checks of one instance; see the module documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Screen {
    config: InstanceConfig,
    /// The virtual addresses sorted, to compare with received lists.
    sorted_addresses: Vec<IpAddr>,
}

impl Screen {
    /// The screen of `config`.
    pub fn new(config: &InstanceConfig) -> Screen {
        let mut sorted_addresses = config.virtual_addresses.clone();
        sorted_addresses.sort();
        Screen {
            config: config.clone(),
            sorted_addresses,
        }
    }

    /// Every check the instance makes before it looks at its state, the address list included
    /// (VRRPv2 drops a foreign list unless the owner sent it; VRRPv3 only logs it, so it
    /// passes here). `Err` carries the reason the instance would count.
    pub fn admit(&self, packet: &ReceivedPacket<'_>) -> Result<(), DropReason> {
        let advert = self.check(packet).map_err(|(reason, _)| reason)?;
        if self.drops_address_list(&advert) {
            return Err(DropReason::AddressList);
        }
        Ok(())
    }

    /// The checks up to the address list, in the RFC's order where it matters: family, TTL,
    /// unicast source, our own packet, then the decoder (version, type, length, checksum,
    /// count, interval, auth type), our version, our VRID, the password, the v2 interval.
    pub fn check(&self, packet: &ReceivedPacket<'_>) -> Result<Advertisement, Rejection> {
        let config = &self.config;
        if AddressFamily::of(&packet.source) != config.family() {
            return Err((DropReason::AddressFamily, None));
        }
        // RFC 5798 5.1.1.3 / 5.1.2.3 / 7.1, RFC 3768 7.1: TTL / hop limit must be 255, proof
        // that the sender is on the link. keepalived's IPv6 unicast sends 64, hence the opt-out.
        let ttl_exempt = config.is_unicast() && config.accept_any_unicast_ttl;
        if packet.ttl != REQUIRED_TTL && !ttl_exempt {
            return Err((DropReason::IpTtl, Some(DropDetail::Ttl(packet.ttl))));
        }
        if config.is_unicast()
            && config.check_unicast_source
            && !config.unicast_peers.contains(&packet.source)
        {
            return Err((DropReason::UnknownUnicastSource, None));
        }
        if packet.source == config.primary_address {
            return Err((DropReason::OwnAdvertisement, None));
        }
        let context = ChecksumContext {
            source: packet.source,
            destination: packet.destination,
            v3_ipv4_checksum: config.v3_ipv4_checksum,
        };
        // Version, type, completeness, checksum, address count, interval, auth type.
        let advert = packet::decode(packet.payload, &context)
            .map_err(|error| (DropReason::from(&error), Some(DropDetail::Decode(error))))?;
        if advert.version != config.version {
            let detail = DropDetail::Version {
                received: advert.version,
                configured: config.version,
            };
            return Err((DropReason::Version, Some(detail)));
        }
        // RFC 5798 7.1: the VRID must be configured on the receiving interface.
        if advert.vrid != config.vrid {
            let detail = DropDetail::Vrid {
                received: advert.vrid,
                configured: config.vrid,
            };
            return Err((DropReason::VrId, Some(detail)));
        }
        // RFC 3768 7.1: perform the configured authentication (v3 has none; decode gives None).
        match (config.authentication, advert.authentication) {
            (Authentication::None, Authentication::None) => {}
            (Authentication::SimplePassword(ours), Authentication::SimplePassword(theirs)) => {
                if ours != theirs {
                    return Err((DropReason::AuthFailure, None));
                }
            }
            _ => return Err((DropReason::AuthTypeMismatch, None)),
        }
        // RFC 3768 7.1: the Adver Interval must be the locally configured one.
        if config.version == Version::V2 && advert.interval != config.advert_interval {
            let detail = DropDetail::Interval {
                received: advert.interval,
                configured: config.advert_interval,
            };
            return Err((DropReason::IntervalMismatch, Some(detail)));
        }
        Ok(advert)
    }

    /// RFC 5798 7.1 / RFC 3768 7.1 MAY check: the advertised list is not ours.
    pub fn address_list_differs(&self, advert: &Advertisement) -> bool {
        let mut advertised = advert.addresses.to_ip_addrs();
        advertised.sort();
        advertised != self.sorted_addresses
    }

    /// RFC 3768 7.1: a VRRPv2 list that differs is dropped unless the owner (priority 255)
    /// sent it; RFC 5798 only logs it.
    pub fn drops_address_list(&self, advert: &Advertisement) -> bool {
        self.config.version == Version::V2
            && advert.priority != OWNER_PRIORITY
            && self.address_list_differs(advert)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{encode, AddressList, Password, V3Ipv4Checksum};
    use crate::{AdvertInterval, Input, Instance, Timestamp};

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("address")
    }

    fn v2_config() -> InstanceConfig {
        let mut config = InstanceConfig::new(51, ip("192.0.2.1"), vec![ip("192.0.2.100")]);
        config.version = Version::V2;
        config.authentication =
            Authentication::SimplePassword(Password::from_keepalived_auth_pass("secret"));
        config
    }

    fn advert(config: &InstanceConfig, change: impl FnOnce(&mut Advertisement)) -> Vec<u8> {
        let mut advert = Advertisement {
            version: config.version,
            vrid: config.vrid,
            priority: 200,
            interval: config.advert_interval,
            addresses: AddressList::from_ip_addrs(&config.virtual_addresses).expect("list"),
            authentication: config.authentication,
        };
        change(&mut advert);
        let context = ChecksumContext {
            source: ip("192.0.2.2"),
            destination: ip("224.0.0.18"),
            v3_ipv4_checksum: V3Ipv4Checksum::PseudoHeader,
        };
        encode(&advert, &context).expect("encodes")
    }

    fn packet(payload: &[u8], ttl: u8) -> ReceivedPacket<'_> {
        ReceivedPacket {
            source: ip("192.0.2.2"),
            destination: ip("224.0.0.18"),
            ttl,
            payload,
        }
    }

    /// Each kind of junk a flood carries is rejected by the screen for the reason the
    /// instance counts it under, and a real advert is admitted.
    #[test]
    fn the_screen_rejects_what_the_instance_drops_and_admits_real_adverts() {
        let config = v2_config();
        let screen = Screen::new(&config);
        let mut instance = Instance::new(config.clone()).expect("valid");
        let _ = instance.handle(Timestamp::ZERO, Input::Startup);
        let good = advert(&config, |_| {});
        let mut bad_checksum = good.clone();
        bad_checksum[7] ^= 1;
        let other_list = advert(&config, |a| {
            a.addresses = AddressList::V4(vec!["198.51.100.1".parse().expect("v4")]);
        });
        let owner_list = advert(&config, |a| {
            a.priority = 255;
            a.addresses = AddressList::V4(vec!["198.51.100.1".parse().expect("v4")]);
        });
        let wrong_password = advert(&config, |a| {
            a.authentication =
                Authentication::SimplePassword(Password::from_keepalived_auth_pass("guess"));
        });
        let slow = advert(&config, |a| {
            a.interval = AdvertInterval::from_seconds(2).expect("2 s");
        });
        let cases: [(&[u8], u8, Result<(), DropReason>); 8] = [
            (&good, 255, Ok(())),
            (&good, 64, Err(DropReason::IpTtl)),
            (&good[..6], 255, Err(DropReason::PacketLength)),
            (&bad_checksum, 255, Err(DropReason::Checksum)),
            (&other_list, 255, Err(DropReason::AddressList)),
            // RFC 3768 7.1: the owner's list is taken even when it differs.
            (&owner_list, 255, Ok(())),
            (&wrong_password, 255, Err(DropReason::AuthFailure)),
            (&slow, 255, Err(DropReason::IntervalMismatch)),
        ];
        for (n, (payload, ttl, expected)) in cases.into_iter().enumerate() {
            let packet = packet(payload, ttl);
            assert_eq!(screen.admit(&packet), expected, "case {n}");
            let before = instance.counters().total_dropped();
            let _ = instance.handle(Timestamp::ZERO, Input::Packet(packet));
            let dropped = instance.counters().total_dropped() - before;
            assert_eq!(dropped, u64::from(expected.is_err()), "case {n}");
            if let Err(reason) = expected {
                assert!(instance.counters().dropped(reason) >= 1, "case {n}");
            }
        }
    }

    /// VRRPv3 only logs a foreign address list (RFC 5798 7.1), so the screen admits it.
    #[test]
    fn a_v3_foreign_address_list_is_admitted() {
        let mut config = v2_config();
        config.version = Version::V3;
        config.authentication = Authentication::None;
        config.advert_interval = AdvertInterval::from_centiseconds(10).expect("100 ms");
        let screen = Screen::new(&config);
        let other_list = advert(&config, |a| {
            a.addresses = AddressList::V4(vec!["198.51.100.1".parse().expect("v4")]);
        });
        assert_eq!(screen.admit(&packet(&other_list, 255)), Ok(()));
    }
}
