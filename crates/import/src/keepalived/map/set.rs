//! Checks across the nodes of one generated set (several keepalived files): instances with
//! the same name should agree on VRID, advert interval, version and password, and should
//! not all have the same priority.

use havip_config::duration::fmt_duration;

use crate::model::Vrrp;
use crate::Report;

/// Warn about instances that will not form one group across the nodes `sets`.
pub fn check_set(sets: &[Vec<Vrrp>], report: &mut Report) {
    let mut names: Vec<&str> = Vec::new();
    for instance in sets.iter().flatten() {
        if !names.contains(&instance.name.value.as_str()) {
            names.push(&instance.name.value);
        }
    }
    for name in names {
        let same: Vec<&Vrrp> = sets
            .iter()
            .filter_map(|set| set.iter().find(|v| v.name.value == name))
            .collect();
        if same.len() < 2 {
            continue;
        }
        equal_priorities(name, &same, report);
        differ(name, &same, "virtual_router_id", report, |v| {
            v.vrid.as_ref().map_or("-".into(), |x| x.value.to_string())
        });
        differ(name, &same, "advert_int", report, |v| {
            v.advert_interval
                .as_ref()
                .map_or("1s".into(), |x| fmt_duration(x.value))
        });
        differ(name, &same, "version", report, |v| {
            v.version
                .as_ref()
                .map_or("-".into(), |x| x.value.to_string())
        });
        differ(name, &same, "auth_pass", report, |v| {
            v.auth_pass
                .as_ref()
                .map_or("(none)".into(), |x| x.value.chars().take(8).collect())
        });
    }
}

/// Every node with one priority: the highest address decides the election.
fn equal_priorities(name: &str, same: &[&Vrrp], report: &mut Report) {
    let priority = |v: &Vrrp| v.priority.as_ref().map_or(100, |p| p.value);
    let first = priority(same[0]);
    if !same.iter().all(|v| priority(v) == first) {
        return;
    }
    for v in same {
        let place = v.priority.as_ref().map_or(&v.from, |p| &p.place);
        report.warn(
            &place.with_key("priority"),
            format!(
                "every node of instance {name} has priority {first}: the election is decided by the highest IP address, not by you; give each node its own priority"
            ),
        );
    }
}

/// A setting (as `value` shows it) that differs from the first node's.
fn differ(
    name: &str,
    same: &[&Vrrp],
    what: &str,
    report: &mut Report,
    value: impl Fn(&Vrrp) -> String,
) {
    let first = value(same[0]);
    for v in same.iter().skip(1) {
        let this = value(v);
        if this != first {
            // Passwords are compared, not printed.
            let values = if what == "auth_pass" {
                String::new()
            } else {
                format!(" ({first} vs {this})")
            };
            report.warn(
                &v.from.with_key(what),
                format!("instance {name}: {what} differs between the nodes{values}; they will not form one group"),
            );
        }
    }
}
