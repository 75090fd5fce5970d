//! Priority tracking: the effective priority and the fault condition that follow from the
//! configured priority and the current state of the trackers (health checks, scripts,
//! interfaces), with keepalived's semantics.
//!
//! The shell evaluates trackers, calls [`evaluate`] whenever one changes, and hands the result
//! to the instance as [`Input::TrackingChanged`](crate::Input::TrackingChanged). A new
//! priority takes effect with the next advertisement the instance sends (and may make a backup
//! elsewhere preempt); a fault takes the instance to the Fault state at once.

use crate::config::OWNER_PRIORITY;

/// The lowest and highest priority a non-owner can have (RFC 5798 5.2.4).
const MIN_BACKUP_PRIORITY: i64 = 1;
const MAX_BACKUP_PRIORITY: i64 = 254;

/// One tracked object as keepalived sees it: a weight and whether it is currently healthy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackerState {
    /// keepalived `weight`: positive weights are added while the tracker is healthy, negative
    /// weights while it is failing; weight 0 puts the instance in Fault while failing.
    pub weight: i32,
    /// Whether the tracked object is healthy now.
    pub healthy: bool,
}

/// The outcome of tracking: the priority to advertise and whether the instance is in fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tracking {
    /// Effective priority: 1..=254, or 255 for the owner.
    pub priority: u8,
    /// A weight-0 tracker is failing: the instance must not be master.
    pub fault: bool,
}

impl Tracking {
    /// No trackers: the configured priority, no fault.
    pub const fn untracked(configured_priority: u8) -> Tracking {
        Tracking {
            priority: configured_priority,
            fault: false,
        }
    }
}

/// Effective priority = configured priority + the weights of the trackers in their current
/// state, clamped to 1..=254; an owner's 255 never changes (keepalived's rules, which keep a
/// tracked router from ever claiming to be the owner or advertising the reserved 0).
pub fn evaluate(
    configured_priority: u8,
    trackers: impl IntoIterator<Item = TrackerState>,
) -> Tracking {
    let mut total = i64::from(configured_priority);
    let mut fault = false;
    for tracker in trackers {
        match (tracker.weight, tracker.healthy) {
            (0, false) => fault = true,
            (weight, true) if weight > 0 => total += i64::from(weight),
            (weight, false) if weight < 0 => total += i64::from(weight),
            _ => {}
        }
    }
    let priority = if configured_priority == OWNER_PRIORITY {
        OWNER_PRIORITY
    } else {
        // The clamp keeps the value in 1..=254, so the conversion cannot fail.
        u8::try_from(total.clamp(MIN_BACKUP_PRIORITY, MAX_BACKUP_PRIORITY)).unwrap_or(1)
    };
    Tracking { priority, fault }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracker(weight: i32, healthy: bool) -> TrackerState {
        TrackerState { weight, healthy }
    }

    #[test]
    fn positive_weights_count_while_healthy() {
        // docker seed: weight 11 on a healthy check
        assert_eq!(evaluate(100, [tracker(11, true)]).priority, 111);
        assert_eq!(evaluate(100, [tracker(11, false)]).priority, 100);
    }

    #[test]
    fn negative_weights_count_while_failing() {
        // rke2 seed: weight -15; nginx seed: weight -5
        assert_eq!(evaluate(100, [tracker(-15, false)]).priority, 85);
        assert_eq!(evaluate(100, [tracker(-15, true)]).priority, 100);
        assert_eq!(
            evaluate(90, [tracker(-5, false), tracker(2, true)]).priority,
            87
        );
    }

    #[test]
    fn weight_zero_means_fault_while_failing() {
        assert_eq!(
            evaluate(100, [tracker(0, false)]),
            Tracking {
                priority: 100,
                fault: true
            }
        );
        assert!(!evaluate(100, [tracker(0, true)]).fault);
    }

    #[test]
    fn result_is_clamped_to_backup_range() {
        assert_eq!(evaluate(250, [tracker(50, true)]).priority, 254);
        assert_eq!(evaluate(10, [tracker(-50, false)]).priority, 1);
        assert_eq!(
            evaluate(1, [tracker(i32::MIN, false), tracker(i32::MIN, false)]).priority,
            1
        );
    }

    #[test]
    fn owner_priority_never_changes_but_can_fault() {
        assert_eq!(
            evaluate(255, [tracker(-100, false), tracker(0, false)]),
            Tracking {
                priority: 255,
                fault: true
            }
        );
        assert_eq!(evaluate(255, [tracker(10, true)]).priority, 255);
        assert_eq!(Tracking::untracked(42).priority, 42);
    }
}
