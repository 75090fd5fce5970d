//! The BGP announcements' metric families, appended to `/metrics` by `crate::metrics`.

use super::status::{AnnouncementStatus, BgpView};
use crate::metrics::Family;

/// The reason labels of `havip_bgp_withdrawals_total`, each always present (0 until used),
/// so that `rate()` sees the series from the start. (A route error keeps an announcement
/// from being made; it never withdraws one.)
const REASONS: [&str; 2] = ["tracker", "stopping"];

/// Every BGP family, appended to `out`.
pub fn render(out: &mut String, view: &BgpView) {
    let announcements = view.snapshot();
    {
        let name = "havip_bgp_announced";
        let mut family = Family::new(
            out,
            name,
            "gauge",
            "1 while the announcement's host routes are in its table (the routing daemon announces them).",
        );
        for a in &announcements {
            let table = a.table.to_string();
            family.sample(
                name,
                &[("announcement", &a.name), ("table", &table)],
                u8::from(a.announced),
            );
        }
    }
    {
        let name = "havip_bgp_withdrawn_reason";
        let mut family = Family::new(
            out,
            name,
            "gauge",
            "1 for the reason the announcement is withdrawn now (not_observed, tracker, stopping, route_error).",
        );
        for a in &announcements {
            for reason in ["not_observed", "tracker", "stopping", "route_error"] {
                let now = !a.announced && a.reason.as_ref().is_some_and(|(_, k)| *k == reason);
                family.sample(
                    name,
                    &[("announcement", &a.name), ("reason", reason)],
                    u8::from(now),
                );
            }
        }
    }
    {
        let name = "havip_bgp_withdrawals_total";
        let mut family = Family::new(
            out,
            name,
            "counter",
            "Times the announcement was withdrawn, by reason.",
        );
        for a in &announcements {
            for reason in REASONS {
                let count = a.withdrawals.get(reason).copied().unwrap_or(0);
                family.sample(
                    name,
                    &[("announcement", &a.name), ("reason", reason)],
                    count,
                );
            }
        }
    }
    {
        let name = "havip_bgp_last_change_timestamp_seconds";
        let mut family = Family::new(
            out,
            name,
            "gauge",
            "When the announcement was last made or withdrawn (Unix time; absent before the first change).",
        );
        for a in &announcements {
            if let Some(ms) = a.since_unix_ms {
                let seconds = format!("{:.3}", ms as f64 / 1000.0);
                family.sample(name, &[("announcement", &a.name)], seconds);
            }
        }
    }
    counters(out, &announcements);
}

fn counters(out: &mut String, announcements: &[AnnouncementStatus]) {
    type Getter = fn(&AnnouncementStatus) -> u64;
    let families: [(&str, &str, Getter); 3] = [
        (
            "havip_bgp_announcements_total",
            "Times the announcement's routes were put in its table.",
            |a| a.announcements,
        ),
        (
            "havip_bgp_route_errors_total",
            "Route operations on the announcement's table that failed.",
            |a| a.route_errors,
        ),
        (
            "havip_bgp_routes_restored_total",
            "Routes someone else removed from the table while announced, put back.",
            |a| a.routes_restored,
        ),
    ];
    for (name, help, get) in families {
        let mut family = Family::new(out, name, "counter", help);
        for a in announcements {
            family.sample(name, &[("announcement", &a.name)], get(a));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use havip_config::bgp::{BgpSettings, RoutingDaemon};

    use super::*;

    #[test]
    fn families_show_state_reason_and_counts() {
        let settings = BgpSettings {
            name: "api".into(),
            virtual_addresses: vec!["10.88.88.70".parse().unwrap()],
            table: 100,
            track: vec!["apiservers".into()],
            shutdown_delay: Duration::from_secs(2),
            daemon: RoutingDaemon::Frr { instance: None },
        };
        let mut status = AnnouncementStatus::initial(&settings);
        status.reason = Some(("trackers failing: apiservers".into(), "tracker"));
        status.withdrawals.insert("tracker", 2);
        status.announcements = 3;
        status.since_unix_ms = Some(1_700_000_000_250);
        let view = BgpView {
            announcements: vec![Arc::new(Mutex::new(status))],
        };
        let mut out = String::new();
        render(&mut out, &view);
        for line in [
            "havip_bgp_announced{announcement=\"api\",table=\"100\"} 0",
            "havip_bgp_withdrawn_reason{announcement=\"api\",reason=\"tracker\"} 1",
            "havip_bgp_withdrawn_reason{announcement=\"api\",reason=\"stopping\"} 0",
            "havip_bgp_withdrawals_total{announcement=\"api\",reason=\"tracker\"} 2",
            "havip_bgp_withdrawals_total{announcement=\"api\",reason=\"stopping\"} 0",
            "havip_bgp_announcements_total{announcement=\"api\"} 3",
            "havip_bgp_route_errors_total{announcement=\"api\"} 0",
            "havip_bgp_last_change_timestamp_seconds{announcement=\"api\"} 1700000000.250",
        ] {
            assert!(out.lines().any(|l| l == line), "missing {line} in\n{out}");
        }
    }
}
