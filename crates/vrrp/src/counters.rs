//! Per-instance counters: what was received, sent and dropped, with one counter per reason to
//! drop an advertisement (RFC 5798 7.1, named after the VRRP MIBs, RFC 2787 and RFC 6527,
//! where one exists). The shell exports them, for example as Prometheus metrics.

use crate::packet::DecodeError;

/// Why a received advertisement was dropped. Each reason has its own counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DropReason {
    /// TTL / hop limit is not 255 (RFC 5798 5.1.1.3, 5.1.2.3; RFC 3768 7.1).
    IpTtl,
    /// The IP family differs from the instance's, or v2 arrived over IPv6.
    AddressFamily,
    /// Unicast mode: the source is not a configured peer.
    UnknownUnicastSource,
    /// The source is this router's own primary address (a looped-back packet).
    OwnAdvertisement,
    /// Shorter than the header, or not the length the address count implies (RFC 5798 7.1).
    PacketLength,
    /// Version not 2 or 3, or not the configured one (RFC 5798 7.1, RFC 3768 7.1).
    Version,
    /// Packet type is not ADVERTISEMENT (RFC 5798 5.2.2).
    PacketType,
    /// Checksum wrong (RFC 5798 7.1).
    Checksum,
    /// VRRPv3 over IPv4: the checksum is right only in the other form (pseudo-header or not).
    ChecksumForm,
    /// Address count 0 (RFC 9568 5.2.5).
    AddressCountZero,
    /// Advertisement interval 0 (RFC 9568 7.1).
    IntervalZero,
    /// VRID not the one configured (RFC 5798 7.1).
    VrId,
    /// VRRPv2 Auth Type 2, IP Authentication Header, removed by RFC 3768.
    AuthTypeUnsupported,
    /// VRRPv2 Auth Type unknown.
    AuthTypeInvalid,
    /// VRRPv2 Auth Type differs from the configured one (RFC 3768 7.1).
    AuthTypeMismatch,
    /// VRRPv2 password differs (RFC 3768 7.1).
    AuthFailure,
    /// VRRPv2 Adver Int differs from the configured one (RFC 3768 7.1).
    IntervalMismatch,
    /// VRRPv2: the address list differs and the sender is not the owner (RFC 3768 7.1).
    AddressList,
}

impl DropReason {
    /// Every reason, in a stable order (the order of the receive checks).
    pub const ALL: [DropReason; 18] = [
        DropReason::IpTtl,
        DropReason::AddressFamily,
        DropReason::UnknownUnicastSource,
        DropReason::OwnAdvertisement,
        DropReason::PacketLength,
        DropReason::Version,
        DropReason::PacketType,
        DropReason::Checksum,
        DropReason::ChecksumForm,
        DropReason::AddressCountZero,
        DropReason::IntervalZero,
        DropReason::VrId,
        DropReason::AuthTypeUnsupported,
        DropReason::AuthTypeInvalid,
        DropReason::AuthTypeMismatch,
        DropReason::AuthFailure,
        DropReason::IntervalMismatch,
        DropReason::AddressList,
    ];

    /// A stable snake_case name, for metric labels.
    pub const fn name(self) -> &'static str {
        match self {
            DropReason::IpTtl => "ip_ttl",
            DropReason::AddressFamily => "address_family",
            DropReason::UnknownUnicastSource => "unknown_unicast_source",
            DropReason::OwnAdvertisement => "own_advertisement",
            DropReason::PacketLength => "packet_length",
            DropReason::Version => "version",
            DropReason::PacketType => "packet_type",
            DropReason::Checksum => "checksum",
            DropReason::ChecksumForm => "checksum_form",
            DropReason::AddressCountZero => "address_count_zero",
            DropReason::IntervalZero => "interval_zero",
            DropReason::VrId => "vrid",
            DropReason::AuthTypeUnsupported => "auth_type_unsupported",
            DropReason::AuthTypeInvalid => "auth_type_invalid",
            DropReason::AuthTypeMismatch => "auth_type_mismatch",
            DropReason::AuthFailure => "auth_failure",
            DropReason::IntervalMismatch => "interval_mismatch",
            DropReason::AddressList => "address_list",
        }
    }

    const fn index(self) -> usize {
        self as usize
    }
}

impl From<&DecodeError> for DropReason {
    fn from(error: &DecodeError) -> DropReason {
        match error {
            DecodeError::TooShort { .. } | DecodeError::LengthMismatch { .. } => {
                DropReason::PacketLength
            }
            DecodeError::UnsupportedVersion(_) => DropReason::Version,
            DecodeError::UnknownType(_) => DropReason::PacketType,
            DecodeError::MixedAddressFamilies | DecodeError::V2OverIpv6 => {
                DropReason::AddressFamily
            }
            DecodeError::ChecksumMismatch { .. } => DropReason::Checksum,
            DecodeError::ChecksumOtherForm { .. } => DropReason::ChecksumForm,
            DecodeError::NoAddresses => DropReason::AddressCountZero,
            DecodeError::ZeroInterval => DropReason::IntervalZero,
            DecodeError::AuthenticationHeaderUnsupported => DropReason::AuthTypeUnsupported,
            DecodeError::UnknownAuthType(_) => DropReason::AuthTypeInvalid,
        }
    }
}

/// The counters of one instance. All start at zero and only grow.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Advertisements that passed every receive check.
    pub adverts_received: u64,
    /// Advertisements sent (one per destination in unicast mode).
    pub adverts_sent: u64,
    /// Accepted advertisements with priority 0 (a master stopping).
    pub priority_zero_received: u64,
    /// Priority-0 advertisements sent (shutdown, fault).
    pub priority_zero_sent: u64,
    /// Transitions into Master.
    pub became_master: u64,
    /// Advertisements whose address list differed from ours, dropped or not (RFC 5798 7.1).
    pub address_list_mismatches: u64,
    /// Gratuitous ARP / unsolicited NA rounds requested.
    pub announcement_rounds: u64,
    /// Timer firings ignored because the timer had been re-armed or cancelled since.
    pub stale_timer_firings: u64,
    /// Virtual addresses someone else removed that were added back.
    pub addresses_restored: u64,
    /// Graceful releases that ended when a new master was heard.
    pub handovers_completed: u64,
    /// Graceful releases that ended with nobody taking over.
    pub handovers_timed_out: u64,
    drops: [u64; DropReason::ALL.len()],
}

impl Counters {
    /// How many advertisements were dropped for `reason`.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.drops.get(reason.index()).copied().unwrap_or(0)
    }

    /// Every drop reason with its count, in [`DropReason::ALL`] order.
    pub fn drops(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL
            .iter()
            .map(move |reason| (*reason, self.dropped(*reason)))
    }

    /// All drops together.
    pub fn total_dropped(&self) -> u64 {
        self.drops.iter().sum()
    }

    /// Add `count` drops for `reason` that a shell's [`Screen`](crate::Screen) made before
    /// the packets reached the instance, so that one set of counters shows every drop.
    pub fn add_dropped(&mut self, reason: DropReason, count: u64) {
        if let Some(slot) = self.drops.get_mut(reason.index()) {
            *slot += count;
        }
    }

    pub(crate) fn count_drop(&mut self, reason: DropReason) {
        if let Some(slot) = self.drops.get_mut(reason.index()) {
            *slot += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_has_its_own_slot_and_name() {
        let mut counters = Counters::default();
        for (n, reason) in DropReason::ALL.iter().enumerate() {
            assert_eq!(reason.index(), n, "ALL is in declaration order");
            for _ in 0..=n {
                counters.count_drop(*reason);
            }
        }
        for (n, (reason, count)) in counters.drops().enumerate() {
            assert_eq!(count, n as u64 + 1, "{}", reason.name());
        }
        let names: std::collections::HashSet<_> =
            DropReason::ALL.iter().map(|r| r.name()).collect();
        assert_eq!(names.len(), DropReason::ALL.len());
        assert_eq!(counters.total_dropped(), (1..=18).sum::<u64>());
    }
}
