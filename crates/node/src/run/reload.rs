//! Live reload: re-read the config file and apply the difference in place.
//!
//! Lifecycle: [`Running::reload`] loads and validates the file, asks the proxy and the VRRP
//! side to prepare the difference (binding new addresses, resolving interfaces, opening
//! sockets: everything that can fail), binds a moved admin endpoint, and only when all of that
//! succeeded applies it, which cannot fail. A failure drops what was prepared: nothing that
//! runs has changed.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use havip_config::{Config, ConfigError};
use havip_proxy::Prepared;
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use super::{proxy_config, Running};
use crate::admin;
use crate::load;
use crate::tracking::Trackers;
use crate::vrrp::{PreparedVrrp, VrrpNode};

/// Where the running config came from and what it was, for `/api/status` and the reload
/// answer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConfigSource {
    /// The file; `None` for a config built in memory (the demo, tests).
    pub path: Option<PathBuf>,
    /// SHA-256 of the file's bytes, in hex (compare with `sha256sum`).
    pub checksum: String,
    /// When it was loaded, in seconds since the Unix epoch.
    pub loaded_at_unix: f64,
}

impl ConfigSource {
    /// The config file at `path` as it is now.
    pub fn of_file(path: &Path) -> anyhow::Result<ConfigSource> {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        Ok(ConfigSource {
            path: Some(path.to_path_buf()),
            checksum: hex(&Sha256::digest(&bytes)),
            loaded_at_unix: unix_now(),
        })
    }

    /// A config that did not come from a file.
    pub fn in_memory(config: &Config) -> ConfigSource {
        ConfigSource {
            path: None,
            checksum: hex(&Sha256::digest(format!("{config:?}").as_bytes())),
            loaded_at_unix: unix_now(),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Reloads counted by result, for `/metrics`.
#[derive(Debug, Default)]
pub struct ReloadStats {
    /// Reloads applied.
    pub applied: AtomicU64,
    /// Reloads refused because the file was invalid.
    pub rejected: AtomicU64,
    /// Reloads that could not be applied whole (rolled back: nothing changed).
    pub failed: AtomicU64,
    /// When the last reload was applied, in milliseconds since the Unix epoch (0: never).
    pub last_success_unix_ms: AtomicU64,
    /// Whether the last reload attempt was applied (1) or not (0); 1 before any.
    pub last_successful: AtomicU64,
}

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// The new config runs; `changes` says what changed, `kept` what needs a restart.
    Applied {
        /// One line per change.
        changes: Vec<String>,
        /// Settings that differ but only take effect on a restart or an upgrade.
        kept: Vec<String>,
        /// SHA-256 of the file now running.
        checksum: String,
    },
    /// The file is invalid: every problem, as `file:line:column: key: message`.
    Rejected {
        /// The problems.
        problems: Vec<String>,
    },
    /// The file is valid but could not be applied (an address that cannot be bound, an
    /// interface that is missing); nothing changed.
    Failed {
        /// Why.
        error: String,
    },
}

/// A reload asked over the admin API: the answer goes back on the sender.
pub type ReloadRequest = oneshot::Sender<ReloadOutcome>;

impl Running {
    /// Re-read the config file and apply the difference in place (see the module docs).
    pub async fn reload(&mut self) -> ReloadOutcome {
        let outcome = self.try_reload().await;
        let stats = &self.reloads;
        match &outcome {
            ReloadOutcome::Applied { changes, kept, .. } => {
                stats.applied.fetch_add(1, Relaxed);
                stats
                    .last_success_unix_ms
                    .store((unix_now() * 1000.0) as u64, Relaxed);
                stats.last_successful.store(1, Relaxed);
                tracing::info!(changes = changes.len(), "config reloaded");
                for change in changes {
                    tracing::info!(%change, "reload");
                }
                for setting in kept {
                    tracing::warn!(%setting, "changed, but takes effect only on a restart or an upgrade");
                }
            }
            ReloadOutcome::Rejected { problems } => {
                stats.rejected.fetch_add(1, Relaxed);
                stats.last_successful.store(0, Relaxed);
                for problem in problems {
                    tracing::error!(%problem, "reload refused: the running config stays");
                }
            }
            ReloadOutcome::Failed { error } => {
                stats.failed.fetch_add(1, Relaxed);
                stats.last_successful.store(0, Relaxed);
                tracing::error!(%error, "reload could not be applied; nothing changed");
            }
        }
        outcome
    }

    async fn try_reload(&mut self) -> ReloadOutcome {
        let Some(path) = self.source.path.clone() else {
            return ReloadOutcome::Failed {
                error: "this config did not come from a file; nothing to re-read".into(),
            };
        };
        let loaded = match load::load(&path) {
            Ok(loaded) => loaded,
            Err(ConfigError::Invalid { problems, .. }) => {
                return ReloadOutcome::Rejected {
                    problems: problems.iter().map(|p| p.to_string()).collect(),
                }
            }
            Err(error) => {
                return ReloadOutcome::Rejected {
                    problems: vec![error.to_string()],
                }
            }
        };
        let source = match ConfigSource::of_file(&path) {
            Ok(source) => source,
            Err(error) => {
                return ReloadOutcome::Failed {
                    error: format!("{error:#}"),
                }
            }
        };
        let new = loaded.config;
        let prepared = match self.prepare(&new).await {
            Ok(prepared) => prepared,
            Err(error) => {
                return ReloadOutcome::Failed {
                    error: format!("{error:#}"),
                }
            }
        };
        let changes = self.apply(prepared, &new).await;
        let kept = restart_only_changes(&self.config, &new);
        self.config = new;
        self.source = source;
        if let Err(error) = self.admin_state.reconfigure(&self.config) {
            tracing::error!(%error, "admin: the new auth cannot be used; the old stays");
        }
        self.admin_state.config_reloaded(self.source.clone());
        ReloadOutcome::Applied {
            changes,
            kept,
            checksum: self.source.checksum.clone(),
        }
    }

    /// Everything a reload to `new` needs that can fail; nothing changes.
    async fn prepare(&self, new: &Config) -> anyhow::Result<PreparedReload> {
        let proxy = self.proxy.prepare(proxy_config(new))?;
        // Unchanged trackers run on untouched; changed ones start a new generation in which a
        // tracker whose own settings stayed keeps its state.
        let trackers = if new.trackers == self.config.trackers {
            None
        } else {
            let services = self.proxy.table();
            Some(Trackers::start_after(
                &new.trackers,
                services,
                Some(&self.trackers),
            )?)
        };
        let following = trackers.as_ref().unwrap_or(&self.trackers);
        let vrrp = match (&self.vrrp, new.vrrp.is_empty()) {
            (Some(node), _) => Some(PreparedVrrpSide::Running(
                node.prepare(&new.vrrp, following)?,
            )),
            (None, false) => Some(PreparedVrrpSide::New(Box::new(VrrpNode::start_later(
                &new.vrrp,
                following,
                self.events.clone(),
            )?))),
            (None, true) => None,
        };
        let admin_listener = match (&new.admin, &self.admin) {
            (Some(settings), Some(running)) if running.listen == settings.listen => None,
            (Some(settings), _) => Some(admin::bind(settings).await?),
            (None, _) => None,
        };
        Ok(PreparedReload {
            proxy,
            trackers,
            vrrp,
            admin_listener,
        })
    }

    /// Apply a prepared reload (cannot fail); returns one line per change.
    async fn apply(&mut self, prepared: PreparedReload, new: &Config) -> Vec<String> {
        let mut changes = Vec::new();
        let report = self.proxy.apply(prepared.proxy, new.global.grace);
        describe_proxy(&report, &mut changes);
        if let Some(trackers) = prepared.trackers {
            changes.push("trackers".into());
            let previous = std::mem::replace(&mut self.trackers, trackers);
            // The BGP announcements follow the trackers they started with (see
            // `restart_only_changes`): keep that generation running for them.
            if self.bgp.is_some() && self.bgp_trackers.is_none() {
                self.bgp_trackers = Some(previous);
            }
        }
        match prepared.vrrp {
            Some(PreparedVrrpSide::Running(vrrp)) => {
                if let Some(node) = self.vrrp.as_mut() {
                    describe_vrrp(&node.apply(vrrp).await, &mut changes);
                }
            }
            Some(PreparedVrrpSide::New(mut node)) => {
                let report = node.finish_start().await;
                describe_vrrp(&report, &mut changes);
                self.vrrp = Some(*node);
            }
            None => {}
        }
        self.apply_admin(prepared.admin_listener, new, &mut changes);
        changes
    }

    fn apply_admin(
        &mut self,
        listener: Option<TcpListener>,
        new: &Config,
        changes: &mut Vec<String>,
    ) {
        if self.config.admin != new.admin {
            changes.push("admin endpoint settings".into());
        }
        match (&new.admin, listener) {
            (Some(settings), Some(listener)) => {
                if let Some(old) = self.admin.take() {
                    old.stop.cancel();
                    changes.push(format!(
                        "admin endpoint moved from {} to {}",
                        old.listen, settings.listen
                    ));
                }
                if let Err(error) = self.start_admin(listener, settings) {
                    tracing::error!(%error, "admin endpoint cannot start on its new address");
                }
            }
            (None, _) => {
                if let Some(old) = self.admin.take() {
                    old.stop.cancel();
                    changes.push(format!("admin endpoint on {} stopped", old.listen));
                }
            }
            (Some(_), None) => {}
        }
    }
}

/// What a reload prepared, before it is applied.
struct PreparedReload {
    proxy: Prepared,
    trackers: Option<Trackers>,
    vrrp: Option<PreparedVrrpSide>,
    admin_listener: Option<TcpListener>,
}

/// The VRRP side of a prepared reload: the running node's difference, or a node to start
/// because the config had no VRRP before.
enum PreparedVrrpSide {
    Running(PreparedVrrp),
    New(Box<VrrpNode>),
}

/// Settings that differ between `old` and `new` but only take effect on a restart.
fn restart_only_changes(old: &Config, new: &Config) -> Vec<String> {
    let mut kept = Vec::new();
    if old.global.workers != new.global.workers {
        kept.push(format!(
            "global.workers ({} -> {})",
            old.global.workers, new.global.workers
        ));
    }
    if old.log.format != new.log.format {
        kept.push("log.format".into());
    }
    if old.log.level != new.log.level {
        kept.push(format!(
            "log.level ({} -> {})",
            old.log.level, new.log.level
        ));
    }
    // The announcements own kernel routes the routers follow: changing them in place is not
    // built yet, so they keep what they started with.
    if old.bgp != new.bgp {
        kept.push("bgp (the announcements)".into());
    } else if !old.bgp.is_empty() && old.trackers != new.trackers {
        kept.push("tracker settings as the bgp announcements follow them".into());
    }
    kept
}

fn describe_proxy(report: &havip_proxy::ApplyReport, changes: &mut Vec<String>) {
    let lists: [(&str, Vec<String>); 7] = [
        ("service added", report.services_added.clone()),
        ("service removed", report.services_removed.clone()),
        ("service changed", report.services_changed.clone()),
        ("backend added", report.backends_added.clone()),
        (
            "backend removed (draining)",
            report.backends_removed.clone(),
        ),
        (
            "listening on",
            report
                .listeners_added
                .iter()
                .map(|a| a.to_string())
                .collect(),
        ),
        (
            "no longer listening on",
            report
                .listeners_removed
                .iter()
                .map(|a| a.to_string())
                .collect(),
        ),
    ];
    for (what, items) in lists {
        changes.extend(items.into_iter().map(|item| format!("{what}: {item}")));
    }
}

fn describe_vrrp(report: &crate::vrrp::VrrpReport, changes: &mut Vec<String>) {
    let lists = [
        ("VRRP instance added", &report.added),
        ("VRRP instance removed (handing over)", &report.removed),
        ("VRRP instance changed in place", &report.changed),
        (
            "VRRP instance replaced (handing over, then starting anew)",
            &report.replaced,
        ),
    ];
    for (what, items) in lists {
        changes.extend(items.iter().map(|item| format!("{what}: {item}")));
    }
}

/// How long a reload requested over the admin API may take before the caller gives up
/// (applying waits for nothing slow; preparing may bind and resolve).
pub const RELOAD_TIMEOUT: Duration = Duration::from_secs(30);
