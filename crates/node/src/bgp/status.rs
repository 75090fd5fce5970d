//! What the BGP side shows the outside: one status snapshot per announcement, for
//! `/api/status` and `/metrics`. Announcement tasks write; the admin endpoint reads; both take
//! a short `std` mutex that nothing on the proxy's data path touches. Changes also go to the
//! node's event log (`announced`, `withdrawn`, `route_restored`, `route_error`).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use havip_config::bgp::BgpSettings;
use serde_json::{json, Value};

/// One announcement's current view.
#[derive(Debug, Clone, PartialEq)]
pub struct AnnouncementStatus {
    /// The `[[bgp]]` name.
    pub name: String,
    /// The VIPs it announces.
    pub virtual_addresses: Vec<IpAddr>,
    /// The kernel table the host routes go in.
    pub table: u32,
    /// `frr` or `bird`.
    pub daemon: &'static str,
    /// Every route is in the table now.
    pub announced: bool,
    /// Why not, while withdrawn: a sentence, and its label (`not_observed`, `tracker`,
    /// `stopping`, `route_error`).
    pub reason: Option<(String, &'static str)>,
    /// When `announced` last changed (Unix time, milliseconds).
    pub since_unix_ms: Option<u64>,
    /// The trackers it follows with their state (`healthy`, `failing`, `pending`).
    pub trackers: Vec<(String, &'static str)>,
    /// Times it was announced.
    pub announcements: u64,
    /// Times it was withdrawn, by reason label.
    pub withdrawals: BTreeMap<&'static str, u64>,
    /// Route operations that failed.
    pub route_errors: u64,
    /// Routes someone else removed from the table while announced, put back.
    pub routes_restored: u64,
    /// Shutdown has begun.
    pub stopping: bool,
}

impl AnnouncementStatus {
    /// The status before the first decision: withdrawn, waiting for the trackers.
    pub fn initial(settings: &BgpSettings) -> AnnouncementStatus {
        AnnouncementStatus {
            name: settings.name.clone(),
            virtual_addresses: settings.virtual_addresses.clone(),
            table: settings.table,
            daemon: settings.daemon.as_str(),
            announced: false,
            reason: Some(("starting".into(), "not_observed")),
            since_unix_ms: None,
            trackers: settings
                .track
                .iter()
                .map(|name| (name.clone(), "pending"))
                .collect(),
            announcements: 0,
            withdrawals: BTreeMap::new(),
            route_errors: 0,
            routes_restored: 0,
            stopping: false,
        }
    }

    /// The announcement as one object of `/api/status`.
    pub fn to_json(&self) -> Value {
        let trackers: Vec<Value> = self
            .trackers
            .iter()
            .map(|(name, state)| json!({ "name": name, "state": state }))
            .collect();
        json!({
            "name": self.name,
            "virtual_addresses": self.virtual_addresses.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            "table": self.table,
            "daemon": self.daemon,
            "state": if self.announced { "announced" } else { "withdrawn" },
            "reason": self.reason.as_ref().map(|(text, _)| text.clone()),
            "reason_kind": self.reason.as_ref().map(|(_, kind)| *kind),
            "since_unix_ms": self.since_unix_ms,
            "trackers": trackers,
            "announcements": self.announcements,
            "withdrawals": self.withdrawals,
            "route_errors": self.route_errors,
            "routes_restored": self.routes_restored,
            "stopping": self.stopping,
        })
    }
}

/// One announcement's status, written by its task and read by the admin endpoint.
pub type StatusSlot = Arc<Mutex<AnnouncementStatus>>;

/// Everything the admin endpoint needs from the BGP side.
#[derive(Debug, Default)]
pub struct BgpView {
    /// One slot per announcement, in config order.
    pub announcements: Vec<StatusSlot>,
}

impl BgpView {
    /// A copy of every announcement's status, one lock at a time.
    pub fn snapshot(&self) -> Vec<AnnouncementStatus> {
        self.announcements
            .iter()
            .map(|slot| slot.lock().unwrap_or_else(|e| e.into_inner()).clone())
            .collect()
    }

    /// The BGP part of `/api/status`: one object per announcement.
    pub fn status_json(&self) -> Value {
        Value::Array(
            self.snapshot()
                .iter()
                .map(AnnouncementStatus::to_json)
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use havip_config::bgp::RoutingDaemon;

    use super::*;
    use crate::vrrp::status::EventLog;

    #[tokio::test]
    async fn the_status_events_and_metrics_show_the_announcements() {
        let settings = BgpSettings {
            name: "api".into(),
            virtual_addresses: vec!["10.88.88.70".parse().unwrap()],
            table: 100,
            track: vec!["backends".into()],
            shutdown_delay: Duration::from_secs(2),
            daemon: RoutingDaemon::Frr { instance: None },
        };
        let mut status = AnnouncementStatus::initial(&settings);
        status.reason = Some(("tracker failing: backends".into(), "tracker"));
        status.trackers = vec![("backends".into(), "failing")];
        let events = Arc::new(EventLog::default());
        events.push(
            "api",
            "withdrawn",
            Some("announced"),
            Some("withdrawn"),
            "tracker failing: backends".into(),
        );
        let view = BgpView {
            announcements: vec![Arc::new(Mutex::new(status))],
        };
        let bgp = &view.status_json()[0];
        assert_eq!(bgp["state"], "withdrawn");
        assert_eq!(bgp["reason_kind"], "tracker");
        assert_eq!(bgp["trackers"][0]["state"], "failing");
        assert_eq!(bgp["virtual_addresses"][0], "10.88.88.70");
        let logged = events.since(0);
        assert_eq!(logged[0].to_json()["instance"], "api");
        assert_eq!(logged[0].to_json()["kind"], "withdrawn");
        let mut body = String::new();
        crate::bgp::metrics::render(&mut body, &view);
        assert!(
            body.contains("havip_bgp_announced{announcement=\"api\",table=\"100\"} 0\n"),
            "{body}"
        );
    }
}
