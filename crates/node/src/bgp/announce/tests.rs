//! The announcement task on tokio's paused clock, writing to a recorded table.

use std::collections::BTreeSet;
use std::io;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use havip_config::bgp::{BgpSettings, RoutingDaemon};
use havip_config::vrrp::{TrackerKind, TrackerSettings};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::bgp::status::AnnouncementStatus;

/// A table in memory; `fail` makes every add fail.
#[derive(Clone, Default)]
struct Table {
    routes: Arc<Mutex<BTreeSet<IpAddr>>>,
    fail: Arc<Mutex<bool>>,
}

impl Table {
    fn routes(&self) -> Vec<IpAddr> {
        self.routes.lock().unwrap().iter().copied().collect()
    }
}

impl Routes for Table {
    fn add(&mut self, vip: IpAddr) -> io::Result<bool> {
        if *self.fail.lock().unwrap() {
            return Err(io::Error::from_raw_os_error(1)); // EPERM
        }
        Ok(self.routes.lock().unwrap().insert(vip))
    }
    fn remove(&mut self, vip: IpAddr) -> io::Result<bool> {
        Ok(self.routes.lock().unwrap().remove(&vip))
    }
    fn present(&mut self) -> io::Result<Vec<IpAddr>> {
        Ok(self.routes())
    }
}

fn tracker(name: &str) -> TrackerSettings {
    TrackerSettings {
        name: name.into(),
        weight: 0,
        rise: 1,
        fall: 1,
        interval: Duration::from_secs(1),
        kind: TrackerKind::File {
            path: "/run/x".into(),
        },
    }
}

struct Harness {
    table: Table,
    slot: StatusSlot,
    events: Arc<EventLog>,
    values: watch::Sender<Values>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

fn vips() -> Vec<IpAddr> {
    vec!["10.88.88.70".parse().unwrap(), "fd88::70".parse().unwrap()]
}

fn start(track: &[&str]) -> Harness {
    let settings = BgpSettings {
        name: "api".into(),
        virtual_addresses: vips(),
        table: 100,
        track: track.iter().map(|s| s.to_string()).collect(),
        shutdown_delay: Duration::from_secs(2),
        daemon: RoutingDaemon::Frr { instance: None },
    };
    let trackers = vec![tracker("apiservers"), tracker("listener")];
    let table = Table::default();
    let slot = Arc::new(Mutex::new(AnnouncementStatus::initial(&settings)));
    let events = Arc::new(EventLog::default());
    let (values, rx) = watch::channel(Arc::new(vec![TrackerValue::Pending; 2]));
    let stop = CancellationToken::new();
    let task = tokio::spawn(
        Announcement {
            settings,
            trackers,
            routes: table.clone(),
            slot: slot.clone(),
            events: events.clone(),
        }
        .run(rx, stop.clone()),
    );
    Harness {
        table,
        slot,
        events,
        values,
        stop,
        task,
    }
}

impl Harness {
    fn set(&self, values: [TrackerValue; 2]) {
        self.values.send_replace(Arc::new(values.to_vec()));
    }
    fn status(&self) -> AnnouncementStatus {
        self.slot.lock().unwrap().clone()
    }
    fn kinds(&self) -> Vec<&'static str> {
        self.events.since(0).iter().map(|e| e.kind).collect()
    }
}

async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

use TrackerValue::{Healthy, Pending};

#[tokio::test(start_paused = true)]
async fn routes_follow_the_trackers_and_leave_on_stop() {
    let mut h = start(&["apiservers", "listener"]);
    settle().await;
    assert!(h.table.routes().is_empty(), "nothing before observation");
    assert_eq!(h.status().reason.unwrap().1, "not_observed");
    h.set([Healthy(true), Pending]);
    settle().await;
    assert!(h.table.routes().is_empty(), "one tracker still pending");
    h.set([Healthy(true), Healthy(true)]);
    settle().await;
    assert_eq!(h.table.routes(), vips());
    let status = h.status();
    assert!(status.announced);
    assert_eq!(status.reason, None);
    assert_eq!(
        status.trackers,
        vec![
            ("apiservers".into(), "healthy"),
            ("listener".into(), "healthy")
        ]
    );
    h.set([Healthy(false), Healthy(true)]);
    settle().await;
    assert!(h.table.routes().is_empty(), "a failing tracker withdraws");
    let status = h.status();
    assert!(!status.announced);
    assert_eq!(
        status.reason,
        Some(("tracker failing: apiservers".into(), "tracker"))
    );
    assert_eq!(status.withdrawals.get("tracker"), Some(&1));
    h.set([Healthy(true), Healthy(true)]);
    settle().await;
    assert_eq!(h.table.routes(), vips(), "announced again");
    h.stop.cancel();
    (&mut h.task).await.unwrap();
    assert!(h.table.routes().is_empty(), "withdrawn on stop");
    let status = h.status();
    assert!(status.stopping);
    assert_eq!(status.reason.unwrap().1, "stopping");
    assert_eq!(status.announcements, 2);
    assert_eq!(
        h.kinds(),
        vec!["announced", "withdrawn", "announced", "withdrawn"]
    );
}

#[tokio::test(start_paused = true)]
async fn no_trackers_announces_at_once_and_until_stopped() {
    let h = start(&[]);
    settle().await;
    assert_eq!(h.table.routes(), vips());
    // A node with no tracker has no tracker loop: its values' sender goes at once.
    drop(h.values);
    tokio::time::sleep(VERIFY_PERIOD * 3).await;
    settle().await;
    assert_eq!(h.table.routes(), vips(), "still announced");
    h.stop.cancel();
    h.task.await.unwrap();
    assert!(h.table.routes().is_empty(), "withdrawn on stop");
}

#[tokio::test(start_paused = true)]
async fn a_removed_route_is_put_back_and_a_failed_add_retried() {
    let h = start(&["listener"]);
    *h.table.fail.lock().unwrap() = true;
    h.set([Pending, Healthy(true)]);
    settle().await;
    assert!(h.table.routes().is_empty(), "all or nothing");
    let status = h.status();
    assert!(!status.announced);
    assert_eq!(status.reason.as_ref().unwrap().1, "route_error");
    assert!(status.route_errors >= 1);
    *h.table.fail.lock().unwrap() = false;
    tokio::time::sleep(VERIFY_PERIOD + Duration::from_millis(10)).await;
    settle().await;
    assert_eq!(h.table.routes(), vips(), "retried on the next look");
    // Someone flushes the table: it is put back within a period.
    h.table.routes.lock().unwrap().clear();
    tokio::time::sleep(VERIFY_PERIOD + Duration::from_millis(10)).await;
    settle().await;
    assert_eq!(h.table.routes(), vips());
    assert_eq!(h.status().routes_restored, 2);
    assert!(h.kinds().contains(&"route_restored"));
    assert!(h.kinds().contains(&"route_error"));
}
