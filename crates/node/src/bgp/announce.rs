//! One announcement's task: it follows the node's tracker values and keeps the host routes of
//! its VIPs in the table while [`decide`] says so, takes them out when it does not, and, once
//! told to stop, takes them out for good.
//!
//! Lifecycle: spawned by `super::BgpNode::start`, one per `[[bgp]]`; it ends after the
//! withdrawal that `stop` asks for. Every [`VERIFY_PERIOD`]
//! it also reads the table back: a route someone else removed (`ip route flush table 100`)
//! is put back while announced, and a failed installation is retried.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use havip_config::bgp::BgpSettings;
use havip_config::vrrp::TrackerSettings;
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use super::decide::{decide, tracker_state, Withheld};
use super::routes::Routes;
use super::status::StatusSlot;
use crate::tracking::{TrackerValue, Values};
use crate::vrrp::status::EventLog;

/// How often an announced table is read back, and a failed installation retried.
pub const VERIFY_PERIOD: Duration = Duration::from_secs(1);

/// One announcement and what it writes to.
pub struct Announcement<R: Routes> {
    /// Its settings.
    pub settings: BgpSettings,
    /// The node's trackers, in config order (the index of the values).
    pub trackers: Vec<TrackerSettings>,
    /// The table it writes.
    pub routes: R,
    /// Its status, read by the admin endpoint.
    pub slot: StatusSlot,
    /// The node's event log.
    pub events: Arc<EventLog>,
}

impl<R: Routes> Announcement<R> {
    /// Follow `values` until `stop`, then withdraw and return.
    pub async fn run(mut self, mut values: watch::Receiver<Values>, stop: CancellationToken) {
        let mut verify = tokio::time::interval(VERIFY_PERIOD);
        verify.set_missed_tick_behavior(MissedTickBehavior::Delay);
        verify.tick().await;
        // The values' sender is gone once every tracker stopped, at once for a node with no
        // tracker at all: the last values stand (they cannot change any more) until `stop`.
        let mut open = true;
        loop {
            let current = values.borrow_and_update().clone();
            let wanted = decide(&self.settings.track, &self.trackers, &current);
            self.show_trackers(&current);
            self.apply(wanted);
            tokio::select! {
                changed = values.changed(), if open => open = changed.is_ok(),
                () = stop.cancelled() => break,
                _ = verify.tick() => self.verify(),
            }
        }
        self.update(|status| status.stopping = true);
        self.apply(Err(Withheld::Stopping));
    }

    /// Make the table what `wanted` says.
    fn apply(&mut self, wanted: Result<(), Withheld>) {
        let announced = self.status().announced;
        match wanted {
            Ok(()) if !announced => self.announce(),
            Ok(()) => {}
            Err(reason) if announced => self.withdraw(reason),
            Err(reason) => self.update(|status| {
                // A route error stays shown until an installation works.
                if status.reason.as_ref().map(|(_, kind)| *kind) != Some("route_error")
                    || reason.kind() != "not_observed"
                {
                    status.reason = Some((reason.to_string(), reason.kind()));
                }
            }),
        }
    }

    fn announce(&mut self) {
        let mut failed = None;
        for vip in self.settings.virtual_addresses.clone() {
            if let Err(error) = self.routes.add(vip) {
                failed = Some(format!("{vip}: {error}"));
                break;
            }
        }
        if let Some(why) = failed {
            // All or nothing: a half-announced instance would draw traffic for some VIPs only.
            self.remove_all();
            let reason = Withheld::RouteError(why);
            // Retried every period: logged and recorded once per run of failures.
            let first = self.status().reason.as_ref().map(|(_, kind)| *kind) != Some("route_error");
            if first {
                tracing::error!(announcement = %self.settings.name, %reason, "not announced");
                self.events.push(
                    &self.settings.name,
                    "route_error",
                    None,
                    None,
                    reason.to_string(),
                );
            }
            self.update(|status| {
                status.route_errors += 1;
                status.reason = Some((reason.to_string(), reason.kind()));
            });
            return;
        }
        let detail = format!(
            "{} in table {}",
            join(&self.settings.virtual_addresses),
            self.settings.table
        );
        tracing::info!(announcement = %self.settings.name, %detail, "announced");
        self.events.push(
            &self.settings.name,
            "announced",
            Some("withdrawn"),
            Some("announced"),
            detail,
        );
        self.update(|status| {
            status.announced = true;
            status.reason = None;
            status.since_unix_ms = Some(now_ms());
            status.announcements += 1;
        });
    }

    fn withdraw(&mut self, reason: Withheld) {
        self.remove_all();
        tracing::warn!(announcement = %self.settings.name, %reason, "withdrawn");
        self.events.push(
            &self.settings.name,
            "withdrawn",
            Some("announced"),
            Some("withdrawn"),
            reason.to_string(),
        );
        self.update(|status| {
            status.announced = false;
            status.since_unix_ms = Some(now_ms());
            *status.withdrawals.entry(reason.kind()).or_insert(0) += 1;
            status.reason = Some((reason.to_string(), reason.kind()));
        });
    }

    /// Take every route out; an error is logged and counted (the route may linger, which
    /// the next start's stale-route sweep removes).
    fn remove_all(&mut self) {
        for vip in self.settings.virtual_addresses.clone() {
            if let Err(error) = self.routes.remove(vip) {
                tracing::error!(announcement = %self.settings.name, %vip, %error, "cannot remove the route");
                self.update(|status| status.route_errors += 1);
            }
        }
    }

    /// Read the table back: put back what someone removed while announced.
    fn verify(&mut self) {
        if !self.status().announced {
            return;
        }
        let present = match self.routes.present() {
            Ok(present) => present,
            Err(error) => {
                tracing::warn!(announcement = %self.settings.name, %error, "cannot read the table");
                return;
            }
        };
        for vip in self.settings.virtual_addresses.clone() {
            if present.contains(&vip) {
                continue;
            }
            match self.routes.add(vip) {
                Ok(_) => {
                    let detail = format!("{vip} was removed from table {}", self.settings.table);
                    tracing::warn!(announcement = %self.settings.name, %detail, "route restored");
                    self.events
                        .push(&self.settings.name, "route_restored", None, None, detail);
                    self.update(|status| status.routes_restored += 1);
                }
                Err(error) => {
                    tracing::error!(announcement = %self.settings.name, %vip, %error, "cannot restore the route");
                    self.update(|status| status.route_errors += 1);
                }
            }
        }
    }

    fn show_trackers(&self, values: &[TrackerValue]) {
        let states: Vec<(String, &'static str)> = self
            .settings
            .track
            .iter()
            .map(|name| {
                let state =
                    self.trackers
                        .iter()
                        .position(|t| &t.name == name)
                        .map_or("pending", |i| {
                            let value = values.get(i).copied().unwrap_or(TrackerValue::Pending);
                            tracker_state(&self.trackers[i], value)
                        });
                (name.clone(), state)
            })
            .collect();
        self.update(|status| status.trackers = states);
    }

    fn status(&self) -> std::sync::MutexGuard<'_, super::status::AnnouncementStatus> {
        self.slot.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn update(&self, f: impl FnOnce(&mut super::status::AnnouncementStatus)) {
        f(&mut self.status());
    }
}

fn join(vips: &[std::net::IpAddr]) -> String {
    vips.iter()
        .map(|vip| vip.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64)
}

#[cfg(test)]
mod tests;
