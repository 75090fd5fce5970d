//! Reading `[[tracker]]` tables: the keys every kind has, then the keys of its kind (a key
//! of another kind is an error, not silently ignored; [`keys::TRACKER_KINDS`] says which
//! are whose).

use std::time::Duration;

use toml::de::DeValue;

use super::command::read_command;
use super::{
    check_interface_name, MinHealthy, ProcessMatch, TrackerKind, TrackerSettings,
    DEFAULT_TRACKER_INTERVAL,
};
use crate::keys;
use crate::reader::{closest, not_one_of, Record, TableReader, Written};
use crate::service::ServiceSpec;

/// The shortest interval and script timeout of a tracker.
const MIN_INTERVAL: Duration = Duration::from_millis(10);

/// Trackers that name a service are checked against `services` (read first).
pub(crate) fn read_trackers(
    p: &mut Record,
    root: &mut TableReader<'_, '_>,
    services: &[ServiceSpec],
) -> Vec<TrackerSettings> {
    let mut out: Vec<TrackerSettings> = Vec::new();
    for mut t in root.tables(p, "tracker", keys::TRACKER.keys) {
        if let Some(tracker) = read_tracker(p, &mut t, services) {
            if out.iter().any(|o| o.name == tracker.name) {
                p.add(
                    &t.span(),
                    t.key("name"),
                    format!("a tracker named {:?} is already defined", tracker.name),
                );
            }
            out.push(tracker);
        }
        t.finish(p);
    }
    out
}

/// Returns the tracker even when some of its keys had problems (the load fails anyway), so
/// that instances naming it do not report it as undefined too.
fn read_tracker(
    p: &mut Record,
    t: &mut TableReader<'_, '_>,
    services: &[ServiceSpec],
) -> Option<TrackerSettings> {
    let name = t.required_name(p, "tracker");
    let kind_at = t.string(p, "kind");
    let weight = t
        .int(p, "weight", -253..=253)
        .and_then(|w| i32::try_from(w.value).ok())
        // A file's number is the priority change itself unless a weight scales it.
        .unwrap_or(if kind_at.as_ref().is_some_and(|k| k.value == "file") {
            1
        } else {
            0
        });
    let rise = t.u32(p, "rise", 1..=100).unwrap_or(1);
    let fall = t.u32(p, "fall", 1..=100).unwrap_or(1);
    let interval = t
        .duration_at_least(p, "interval", MIN_INTERVAL)
        .unwrap_or(DEFAULT_TRACKER_INTERVAL);
    let Some(kind_at) = kind_at else {
        p.add(
            &t.span(),
            t.key("kind"),
            "missing: one of script, service, listener, interface, process, file",
        );
        return None;
    };
    reject_other_kinds(p, t, &kind_at)?;
    let kind = match kind_at.value.as_str() {
        "script" => read_script(p, t, interval)?,
        "service" | "listener" => read_service_kind(p, t, &kind_at.value, services)?,
        "interface" => read_interface(p, t)?,
        "process" => read_process(p, t)?,
        _ => read_file(p, t)?,
    };
    Some(TrackerSettings {
        name,
        weight,
        rise,
        fall,
        interval,
        kind,
    })
}

/// Reports every key that belongs to another kind; `None` when the kind is none of them.
fn reject_other_kinds(
    p: &mut Record,
    t: &mut TableReader<'_, '_>,
    kind: &Written<String>,
) -> Option<()> {
    let Some(own) = keys::TRACKER_KINDS
        .iter()
        .find(|(name, _)| *name == kind.value)
        .map(|(_, own)| *own)
    else {
        let kinds: Vec<&'static str> = keys::TRACKER_KINDS.iter().map(|(k, _)| *k).collect();
        p.add(
            &kind.span,
            t.key("kind"),
            not_one_of(
                &kind.value,
                "a tracker kind",
                &kinds,
                "use script, service, listener, interface, process or file",
            ),
        );
        return None;
    };
    let mut reported: Vec<&str> = Vec::new();
    for key in keys::TRACKER_KINDS.iter().flat_map(|(_, keys)| keys.iter()) {
        // `service` belongs to two kinds: look at each key once.
        if own.contains(key) || reported.contains(key) {
            continue;
        }
        reported.push(key);
        if let Some(span) = t.consume(p, key) {
            p.add(
                &span,
                t.key(key),
                format!("does not apply to kind = {:?}", kind.value),
            );
        }
    }
    Some(())
}

fn read_script(
    p: &mut Record,
    t: &mut TableReader<'_, '_>,
    interval: Duration,
) -> Option<TrackerKind> {
    let command = read_command(p, t, "command", false);
    let timeout = t.duration_at_least(p, "timeout", MIN_INTERVAL);
    let user = t.string(p, "user").map(|u| u.value);
    let timeout_is_failure = match t.string(p, "timeout_counts_as") {
        None => false,
        Some(Written { value, span }) => match value.as_str() {
            "unknown" => false,
            "failure" => true,
            other => {
                let message = match closest(other, &["unknown", "failure"]) {
                    Some(near) => format!("{other:?}: did you mean {near:?}?"),
                    None => format!("{other:?}: use \"unknown\" or \"failure\""),
                };
                p.add(&span, t.key("timeout_counts_as"), message);
                false
            }
        },
    };
    let Some(command) = command else {
        p.add(&t.span(), t.key("command"), "missing: the command to run");
        return None;
    };
    Some(TrackerKind::Script {
        command,
        timeout: timeout.unwrap_or(interval),
        user,
        timeout_is_failure,
    })
}

/// `service` and `listener`: both name a `[[service]]` that must exist.
fn read_service_kind(
    p: &mut Record,
    t: &mut TableReader<'_, '_>,
    kind: &str,
    services: &[ServiceSpec],
) -> Option<TrackerKind> {
    let Some(service) = t.string(p, "service") else {
        p.add(&t.span(), t.key("service"), "missing: the [[service]] name");
        return None;
    };
    if !services.iter().any(|s| s.name == service.value) {
        p.add(
            &service.span,
            t.key("service"),
            format!("no [[service]] is named {:?}", service.value),
        );
    }
    if kind == "listener" {
        return Some(TrackerKind::Listener {
            service: service.value,
        });
    }
    let count = t.u32(p, "min_healthy", 1..=10_000);
    let fraction = read_fraction(p, t, "min_healthy_fraction");
    let min_healthy = match (count, fraction) {
        (Some(_), Some(_)) => {
            p.add(
                &t.span(),
                t.key("min_healthy"),
                "give min_healthy or min_healthy_fraction, not both",
            );
            MinHealthy::Count(1)
        }
        (Some(n), None) => MinHealthy::Count(n),
        (None, Some(f)) => MinHealthy::Fraction(f),
        (None, None) => MinHealthy::Count(1),
    };
    let drain_counts_as_down = t.bool(p, "drain_counts_as_down").unwrap_or(false);
    Some(TrackerKind::Service {
        service: service.value,
        min_healthy,
        drain_counts_as_down,
    })
}

fn read_interface(p: &mut Record, t: &mut TableReader<'_, '_>) -> Option<TrackerKind> {
    let Some(interface) = t.string(p, "interface") else {
        p.add(&t.span(), t.key("interface"), "missing: the interface name");
        return None;
    };
    check_interface_name(p, t, "interface", &interface);
    Some(TrackerKind::Interface {
        interface: interface.value,
    })
}

fn read_process(p: &mut Record, t: &mut TableReader<'_, '_>) -> Option<TrackerKind> {
    let name = t.string(p, "process");
    let pidfile = t.string(p, "pidfile");
    match (name, pidfile) {
        (Some(n), None) => Some(TrackerKind::Process(ProcessMatch::Name(n.value))),
        (None, Some(f)) => Some(TrackerKind::Process(ProcessMatch::Pidfile(f.value.into()))),
        _ => {
            p.add(
                &t.span(),
                t.key("process"),
                "give exactly one of process (a name) or pidfile",
            );
            None
        }
    }
}

fn read_file(p: &mut Record, t: &mut TableReader<'_, '_>) -> Option<TrackerKind> {
    let Some(path) = t.string(p, "path") else {
        p.add(&t.span(), t.key("path"), "missing: the file to read");
        return None;
    };
    Some(TrackerKind::File {
        path: path.value.into(),
    })
}

fn read_fraction(p: &mut Record, t: &mut TableReader<'_, '_>, key: &str) -> Option<f64> {
    let v = t.raw_value(p, key)?;
    let value = match v.get_ref() {
        DeValue::Float(f) => f.as_str().parse::<f64>().ok(),
        _ => None,
    };
    match value {
        Some(f) if f > 0.0 && f <= 1.0 => Some(f),
        _ => {
            p.add(
                &v.span(),
                t.key(key),
                "expected a fraction above 0 and at most 1, like 0.5",
            );
            None
        }
    }
}
