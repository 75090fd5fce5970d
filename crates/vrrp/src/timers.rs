//! The protocol's clocks: the advertisement interval type, the timer kinds an instance arms, and
//! the Skew_Time / Master_Down_Interval formulas of RFC 3768 6.1 and RFC 5798 6.1.
//!
//! Every formula here is exact: nothing is truncated to whole centiseconds, milliseconds or
//! seconds. Durations are computed in nanoseconds, where a VRRPv2 skew is always a whole number
//! (1/256 s = 3,906,250 ns) and a VRRPv3 skew is a whole number or ends in exactly half a
//! nanosecond (1/256 cs = 39,062.5 ns). That half nanosecond is rounded *up*, so a backup never
//! declares the master down early; it is the only rounding anywhere in the crate.

use std::fmt;
use std::time::Duration;

use crate::packet::Version;

/// Nanoseconds in one centisecond, the unit of VRRPv3 intervals on the wire.
const NANOS_PER_CENTISECOND: u64 = 10_000_000;

/// A VRRP advertisement interval, kept in centiseconds (the VRRPv3 wire unit).
///
/// VRRPv3 carries 1..=4095 centiseconds (12 bits, 0.01 s to 40.95 s); VRRPv2 carries whole
/// seconds 1..=255, which are stored here as multiples of 100. Which range applies is checked
/// where the version is known: [`crate::InstanceConfig`] validation and the packet encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AdvertInterval(u16);

impl AdvertInterval {
    /// The largest VRRPv3 interval: the Max Advert Int field has 12 bits (RFC 5798 5.2.7).
    pub const MAX_V3_CENTISECONDS: u16 = 4095;
    /// The largest VRRPv2 interval: the Adver Int field is one byte of seconds (RFC 3768 5.3.7).
    pub const MAX_V2_SECONDS: u8 = 255;
    /// The RFC default of one second.
    pub const ONE_SECOND: AdvertInterval = AdvertInterval(100);

    /// An interval of `centiseconds`; `None` for zero, which no version allows
    /// (RFC 9568 7.1, erratum 8301: the Max Advertise Interval must be non-zero).
    pub const fn from_centiseconds(centiseconds: u16) -> Option<AdvertInterval> {
        if centiseconds == 0 {
            None
        } else {
            Some(AdvertInterval(centiseconds))
        }
    }

    /// An interval of whole `seconds` (the VRRPv2 unit); `None` for zero.
    pub const fn from_seconds(seconds: u8) -> Option<AdvertInterval> {
        // 255 s = 25,500 cs fits in u16.
        AdvertInterval::from_centiseconds(seconds as u16 * 100)
    }

    /// The interval in centiseconds.
    pub const fn centiseconds(self) -> u16 {
        self.0
    }

    /// The interval in whole seconds, or `None` when it is not a whole number of seconds (and
    /// so cannot be sent in a VRRPv2 advertisement) or exceeds 255 s.
    pub fn whole_seconds(self) -> Option<u8> {
        if self.0 % 100 == 0 {
            u8::try_from(self.0 / 100).ok()
        } else {
            None
        }
    }

    /// Whether `version` can carry this interval on the wire.
    pub fn fits(self, version: Version) -> bool {
        match version {
            Version::V2 => self.whole_seconds().is_some(),
            Version::V3 => self.0 <= AdvertInterval::MAX_V3_CENTISECONDS,
        }
    }

    /// The interval as a duration (exact: 1 cs = 10 ms).
    pub fn as_duration(self) -> Duration {
        Duration::from_nanos(u64::from(self.0) * NANOS_PER_CENTISECOND)
    }
}

impl fmt::Display for AdvertInterval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}s", self.0 / 100, self.0 % 100)
    }
}

/// The timers one instance can have armed. Arming a kind replaces its previous deadline; at most
/// one deadline per kind exists at any time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TimerKind {
    /// Master: time to send the next periodic advertisement (RFC 5798 6.2 Adver_Timer).
    Advert,
    /// Backup: the master is declared down when this fires (RFC 5798 6.2 Master_Down_Timer,
    /// RFC 9568 Active_Down_Timer).
    MasterDown,
    /// Backup with a preempt delay: a lower-priority master has been tolerated long enough.
    PreemptDelay,
    /// Master: the next round of the current gratuitous ARP / unsolicited NA burst.
    AnnounceBurst,
    /// Master: the second burst, some seconds after becoming master (keepalived
    /// `vrrp_garp_master_delay`).
    AnnounceRepeat,
    /// Master: periodic refresh of the announcements (keepalived `vrrp_garp_master_refresh`).
    AnnounceRefresh,
    /// A graceful release is waiting for a new master: when this fires nobody took over and
    /// the addresses go (see [`crate::InstanceConfig::graceful_release`]).
    Handover,
    /// Safe boot: the longest a starting instance waits for its trackers' first results
    /// before it may become master (see [`crate::InstanceConfig::startup_limit`]).
    StartupLimit,
}

impl TimerKind {
    /// Every timer kind, in declaration order, for code that visits each one.
    pub const ALL: [TimerKind; 8] = [
        TimerKind::Advert,
        TimerKind::MasterDown,
        TimerKind::PreemptDelay,
        TimerKind::AnnounceBurst,
        TimerKind::AnnounceRepeat,
        TimerKind::AnnounceRefresh,
        TimerKind::Handover,
        TimerKind::StartupLimit,
    ];
}

/// Skew_Time for a backup of `priority` whose master advertises every `master_interval`.
///
/// - VRRPv2 (RFC 3768 6.1): `(256 − Priority) / 256` seconds; the interval plays no part.
/// - VRRPv3 (RFC 5798 6.1, RFC 9568 6.1): `((256 − Priority) × Master_Adver_Interval) / 256`
///   with the interval in centiseconds.
pub fn skew_time(version: Version, priority: u8, master_interval: AdvertInterval) -> Duration {
    let weight = 256 - u64::from(priority);
    match version {
        // 10^9 / 256 = 3,906,250 exactly.
        Version::V2 => Duration::from_nanos(weight * (1_000_000_000 / 256)),
        Version::V3 => {
            // weight × cs × 10^7 / 256 ns. 10^7 / 256 = 39,062.5, so the product is a whole
            // number of nanoseconds or a whole number plus one half; round the half up.
            let numerator =
                weight * u64::from(master_interval.centiseconds()) * NANOS_PER_CENTISECOND;
            Duration::from_nanos(numerator.div_ceil(256))
        }
    }
}

/// Master_Down_Interval = 3 × Master_Adver_Interval + Skew_Time (RFC 3768 6.1, RFC 5798 6.1).
///
/// For VRRPv2 the Master_Adver_Interval is the locally configured interval: RFC 3768 7.1 drops
/// advertisements whose interval differs, so the master's and ours are equal.
pub fn master_down_interval(
    version: Version,
    priority: u8,
    master_interval: AdvertInterval,
) -> Duration {
    master_interval.as_duration() * 3 + skew_time(version, priority, master_interval)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cs(centiseconds: u16) -> AdvertInterval {
        AdvertInterval::from_centiseconds(centiseconds).expect("non-zero interval")
    }

    #[test]
    fn v2_skew_is_exact_in_nanoseconds() {
        // (256 - 90) / 256 s = 0.6484375 s
        assert_eq!(
            skew_time(Version::V2, 90, cs(100)),
            Duration::from_nanos(648_437_500)
        );
        // (256 - 100) / 256 s = 0.609375 s
        assert_eq!(
            skew_time(Version::V2, 100, cs(100)),
            Duration::from_nanos(609_375_000)
        );
        // (256 - 254) / 256 s = 7.8125 ms
        assert_eq!(
            skew_time(Version::V2, 254, cs(100)),
            Duration::from_nanos(7_812_500)
        );
        // the v2 skew does not depend on the interval
        assert_eq!(
            skew_time(Version::V2, 90, cs(500)),
            skew_time(Version::V2, 90, cs(100))
        );
    }

    #[test]
    fn v2_master_down_interval_matches_the_measured_keepalived_failover() {
        // DESIGN.md: priorities 100/90/80, v2 1 s: RFC says 3648 ms for the priority-90 backup.
        assert_eq!(
            master_down_interval(Version::V2, 90, cs(100)),
            Duration::from_nanos(3_648_437_500)
        );
    }

    #[test]
    fn v3_skew_scales_with_the_master_interval() {
        // (256 - 90) × 10 cs / 256 = 6.484375 cs = 64.84375 ms
        assert_eq!(
            skew_time(Version::V3, 90, cs(10)),
            Duration::from_nanos(64_843_750)
        );
        assert_eq!(
            master_down_interval(Version::V3, 90, cs(10)),
            Duration::from_nanos(364_843_750)
        );
        // (256 - 100) × 100 cs / 256 = 60.9375 cs
        assert_eq!(
            skew_time(Version::V3, 100, cs(100)),
            Duration::from_nanos(609_375_000)
        );
    }

    #[test]
    fn v3_skew_rounds_only_an_exact_half_nanosecond_up() {
        // (256 - 255) × 1 cs / 256 = 39,062.5 ns -> 39,063 ns
        assert_eq!(
            skew_time(Version::V3, 255, cs(1)),
            Duration::from_nanos(39_063)
        );
        // (256 - 254) × 1 cs / 256 = 78,125 ns exactly
        assert_eq!(
            skew_time(Version::V3, 254, cs(1)),
            Duration::from_nanos(78_125)
        );
    }

    #[test]
    fn v3_skew_is_never_below_the_exact_value_and_at_most_half_a_nanosecond_above() {
        for priority in 1..=255u8 {
            for centiseconds in [1u16, 2, 3, 7, 10, 99, 100, 101, 255, 4095] {
                let skew = skew_time(Version::V3, priority, cs(centiseconds));
                // exact value × 2 in nanoseconds (twice to stay in integers)
                let exact_twice =
                    (256 - u128::from(priority)) * u128::from(centiseconds) * 10_000_000 * 2 / 256;
                let exact_twice_remainder =
                    (256 - u128::from(priority)) * u128::from(centiseconds) * 10_000_000 * 2 % 256;
                assert_eq!(
                    exact_twice_remainder, 0,
                    "twice the skew is a whole nanosecond count"
                );
                let got_twice = skew.as_nanos() * 2;
                assert!(got_twice >= exact_twice, "p={priority} cs={centiseconds}");
                assert!(
                    got_twice - exact_twice <= 1,
                    "p={priority} cs={centiseconds}"
                );
            }
        }
    }

    #[test]
    fn interval_units() {
        assert_eq!(cs(250).as_duration(), Duration::from_millis(2500));
        assert_eq!(cs(250).whole_seconds(), None);
        assert_eq!(cs(300).whole_seconds(), Some(3));
        assert_eq!(
            AdvertInterval::from_seconds(255).map(|i| i.centiseconds()),
            Some(25_500)
        );
        assert_eq!(AdvertInterval::from_centiseconds(0), None);
        assert!(cs(4095).fits(Version::V3));
        assert!(!cs(4096).fits(Version::V3));
        assert!(cs(25_500).fits(Version::V2));
        assert!(!cs(150).fits(Version::V2));
        assert_eq!(cs(10).to_string(), "0.10s");
    }
}
