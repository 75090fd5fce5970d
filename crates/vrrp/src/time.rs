//! Time as the state machine sees it: a point on a monotonic clock, passed in by the caller.
//!
//! The crate never reads a clock. The async shell converts its clock (for example
//! `tokio::time::Instant` minus a start instant) into a [`Timestamp`] and hands it to
//! [`Instance::handle`](crate::Instance::handle); tests drive a virtual clock the same way.
//! Durations are plain [`std::time::Duration`]s.
//!
//! A `Timestamp` counts nanoseconds from an origin the caller chooses. Nanoseconds make every
//! VRRPv2 skew exact ((256 − p) / 256 s = (256 − p) × 3,906,250 ns) and every VRRPv3 skew exact
//! to half a nanosecond (see [`crate::timers`]); `u64` nanoseconds last 584 years.

use std::fmt;
use std::ops::{Add, Sub};
use std::time::Duration;

/// A point in time: nanoseconds since an arbitrary origin chosen by the caller.
///
/// Only differences between timestamps carry meaning, so every timestamp handed to one
/// [`Instance`](crate::Instance) must come from the same clock and origin, and must never go
/// backwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The origin of the clock.
    pub const ZERO: Timestamp = Timestamp(0);

    /// A timestamp `nanos` nanoseconds after the origin.
    pub const fn from_nanos(nanos: u64) -> Timestamp {
        Timestamp(nanos)
    }

    /// A timestamp `elapsed` after the origin, saturating at the far end of the clock
    /// (584 years), which is what a shell converting `now - start` needs.
    pub fn from_elapsed(elapsed: Duration) -> Timestamp {
        Timestamp(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX))
    }

    /// Nanoseconds since the origin.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// Time since the origin, which a shell adds to its start instant to sleep until a deadline.
    pub const fn elapsed_since_origin(self) -> Duration {
        Duration::from_nanos(self.0)
    }

    /// `self - earlier`, or `None` when `earlier` is later than `self`.
    pub fn checked_duration_since(self, earlier: Timestamp) -> Option<Duration> {
        self.0.checked_sub(earlier.0).map(Duration::from_nanos)
    }

    /// `self - earlier`, or zero when `earlier` is later than `self`.
    pub fn saturating_duration_since(self, earlier: Timestamp) -> Duration {
        self.checked_duration_since(earlier)
            .unwrap_or(Duration::ZERO)
    }
}

impl Add<Duration> for Timestamp {
    type Output = Timestamp;

    /// Saturates at the end of the clock instead of overflowing: a deadline 584 years away is
    /// as good as never.
    fn add(self, rhs: Duration) -> Timestamp {
        let rhs = u64::try_from(rhs.as_nanos()).unwrap_or(u64::MAX);
        Timestamp(self.0.saturating_add(rhs))
    }
}

impl Sub<Timestamp> for Timestamp {
    type Output = Duration;

    /// Saturates at zero: a caller asking how long ago a later time was gets "no time".
    fn sub(self, rhs: Timestamp) -> Duration {
        self.saturating_duration_since(rhs)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0 / 1_000_000_000;
        let nanos = self.0 % 1_000_000_000;
        write!(f, "{secs}.{nanos:09}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adding_and_subtracting_is_exact_in_nanoseconds() {
        let start = Timestamp::from_nanos(1_500_000_000);
        let later = start + Duration::from_nanos(3_906_250);
        assert_eq!(later.as_nanos(), 1_503_906_250);
        assert_eq!(later - start, Duration::from_nanos(3_906_250));
        assert_eq!(start - later, Duration::ZERO);
        assert_eq!(start.checked_duration_since(later), None);
    }

    #[test]
    fn adding_saturates_instead_of_wrapping() {
        let start = Timestamp::from_nanos(u64::MAX - 5);
        assert_eq!((start + Duration::from_secs(1)).as_nanos(), u64::MAX);
        assert_eq!(Timestamp::from_elapsed(Duration::MAX).as_nanos(), u64::MAX);
    }

    #[test]
    fn display_shows_seconds_with_nanoseconds() {
        assert_eq!(
            Timestamp::from_nanos(3_648_437_500).to_string(),
            "3.648437500s"
        );
    }
}
