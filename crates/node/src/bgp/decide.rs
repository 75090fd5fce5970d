//! Whether an announcement is made: a pure judgement of the tracker values it follows, so
//! that every rule is tested without a kernel or a clock.
//!
//! An announcement is made while every tracker it names has been observed and is healthy.
//! Weights do not apply (they move VRRP priorities; a route is either in the table or not),
//! except that a `file` tracker's number counts through its weight, as for VRRP: it fails
//! while number × weight is negative.

use havip_config::vrrp::TrackerSettings;

use crate::tracking::TrackerValue;

/// Why an announcement is not made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Withheld {
    /// These trackers have not been observed yet (the node just started).
    NotObserved(Vec<String>),
    /// These trackers are failing.
    Failing(Vec<String>),
    /// The node is stopping.
    Stopping,
    /// The route could not be put in the table.
    RouteError(String),
}

impl Withheld {
    /// The reason as a metric label and a status field: `not_observed`, `tracker`,
    /// `stopping`, `route_error`.
    pub fn kind(&self) -> &'static str {
        match self {
            Withheld::NotObserved(_) => "not_observed",
            Withheld::Failing(_) => "tracker",
            Withheld::Stopping => "stopping",
            Withheld::RouteError(_) => "route_error",
        }
    }
}

impl std::fmt::Display for Withheld {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Withheld::NotObserved(names) => {
                write!(
                    f,
                    "waiting for the first observation of {}",
                    names.join(", ")
                )
            }
            Withheld::Failing(names) => write!(
                f,
                "tracker{} failing: {}",
                if names.len() == 1 { "" } else { "s" },
                names.join(", ")
            ),
            Withheld::Stopping => f.write_str("havip is stopping"),
            Withheld::RouteError(why) => write!(f, "cannot install the route: {why}"),
        }
    }
}

/// A tracker's state as the status shows it: `healthy`, `failing` or `pending`.
pub fn tracker_state(settings: &TrackerSettings, value: TrackerValue) -> &'static str {
    match value {
        TrackerValue::Pending => "pending",
        TrackerValue::Healthy(true) => "healthy",
        TrackerValue::Healthy(false) => "failing",
        TrackerValue::Number(n) if n.saturating_mul(i64::from(settings.weight)) < 0 => "failing",
        TrackerValue::Number(_) => "healthy",
    }
}

/// `Ok(())` when the announcement following `track` is to be made, given every tracker's
/// settings and value (by config index); otherwise why not. Failing trackers outrank
/// trackers not yet observed: the first is known to be bad, the second only unknown.
pub fn decide(
    track: &[String],
    trackers: &[TrackerSettings],
    values: &[TrackerValue],
) -> Result<(), Withheld> {
    let mut pending = Vec::new();
    let mut failing = Vec::new();
    for name in track {
        let Some(index) = trackers.iter().position(|t| &t.name == name) else {
            // The reader checked every name; an unknown one cannot be healthy.
            failing.push(name.clone());
            continue;
        };
        let value = values.get(index).copied().unwrap_or(TrackerValue::Pending);
        match tracker_state(&trackers[index], value) {
            "pending" => pending.push(name.clone()),
            "failing" => failing.push(name.clone()),
            _ => {}
        }
    }
    if !failing.is_empty() {
        Err(Withheld::Failing(failing))
    } else if !pending.is_empty() {
        Err(Withheld::NotObserved(pending))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use havip_config::vrrp::{TrackerKind, TrackerSettings};

    use super::*;

    fn tracker(name: &str, weight: i32) -> TrackerSettings {
        TrackerSettings {
            name: name.into(),
            weight,
            rise: 1,
            fall: 1,
            interval: Duration::from_secs(1),
            kind: TrackerKind::File {
                path: "/run/x".into(),
            },
        }
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn announced_only_while_every_tracker_is_observed_and_healthy() {
        let trackers = [tracker("a", 0), tracker("b", -50), tracker("file", 1)];
        let track = names(&["a", "b"]);
        use TrackerValue::*;
        assert_eq!(
            decide(&track, &trackers, &[Pending, Pending, Pending]),
            Err(Withheld::NotObserved(names(&["a", "b"])))
        );
        assert_eq!(
            decide(&track, &trackers, &[Healthy(true), Pending, Pending]),
            Err(Withheld::NotObserved(names(&["b"])))
        );
        assert_eq!(
            decide(&track, &trackers, &[Healthy(true), Healthy(true), Pending]),
            Ok(()),
            "a tracker not followed does not matter"
        );
        // Weights do not soften a failure: a negative-weight tracker failing withdraws too.
        assert_eq!(
            decide(&track, &trackers, &[Pending, Healthy(false), Pending]),
            Err(Withheld::Failing(names(&["b"]))),
            "failing outranks not observed"
        );
        assert_eq!(decide(&[], &trackers, &[Pending; 3]), Ok(()));
    }

    #[test]
    fn a_file_number_fails_through_its_weight() {
        let trackers = [tracker("file", 1), tracker("inverted", -1)];
        use TrackerValue::*;
        let file = names(&["file"]);
        assert_eq!(decide(&file, &trackers, &[Number(0), Pending]), Ok(()));
        assert_eq!(decide(&file, &trackers, &[Number(5), Pending]), Ok(()));
        assert_eq!(
            decide(&file, &trackers, &[Number(-5), Pending]),
            Err(Withheld::Failing(file.clone()))
        );
        let inverted = names(&["inverted"]);
        assert!(decide(&inverted, &trackers, &[Pending, Number(5)]).is_err());
        assert_eq!(tracker_state(&trackers[1], Number(-5)), "healthy");
    }

    #[test]
    fn reasons_read_as_sentences_and_labels() {
        let failing = Withheld::Failing(names(&["apiservers", "listener"]));
        assert_eq!(
            failing.to_string(),
            "trackers failing: apiservers, listener"
        );
        assert_eq!(failing.kind(), "tracker");
        assert_eq!(
            Withheld::NotObserved(names(&["a"])).to_string(),
            "waiting for the first observation of a"
        );
        assert_eq!(Withheld::Stopping.kind(), "stopping");
        assert_eq!(
            Withheld::RouteError("Operation not permitted".into()).to_string(),
            "cannot install the route: Operation not permitted"
        );
    }
}
