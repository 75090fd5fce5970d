//! The running node's side of a binary upgrade ([`crate::upgrade`] has the protocol): what it
//! offers its successor, and how it retires once the successor took over.

use std::path::PathBuf;

use tokio::sync::oneshot;

use super::{AdminEndpoint, Running};
use crate::upgrade::{self, Inheritance, Offer, UpgradeError};
use crate::vrrp::VrrpNode;

/// How a running process starts its successor for a binary upgrade: the binary at the path
/// it was started from (a package upgrade has put the new one there) with the same arguments.
#[derive(Debug, Clone)]
pub struct Relaunch {
    /// The binary.
    pub exe: PathBuf,
    /// Its arguments (`run --config PATH`).
    pub args: Vec<std::ffi::OsString>,
}

impl Relaunch {
    /// This process's binary and arguments, read now (before any upgrade replaces the file,
    /// `/proc/self/exe` still names the path).
    pub fn of_this_process() -> Option<Relaunch> {
        Some(Relaunch {
            exe: std::env::current_exe().ok()?,
            args: std::env::args_os().skip(1).collect(),
        })
    }
}

/// How `havip run` starts: how to relaunch itself, and what a predecessor handed over.
pub struct Start {
    /// How to start a successor; `None`: no upgrade possible.
    pub relaunch: Option<Relaunch>,
    /// The predecessor's sockets and states (a binary upgrade).
    pub inheritance: Option<Inheritance>,
}

/// What an upgrade did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpgradeOutcome {
    /// The new process runs everything; this one is stopping.
    TookOver {
        /// The new process's ID.
        pid: u32,
    },
    /// No upgrade: this process runs on as before.
    Failed {
        /// Why.
        error: String,
    },
}

/// An upgrade asked over the admin API: the answer goes back on the sender.
pub type UpgradeRequest = oneshot::Sender<UpgradeOutcome>;

impl Running {
    /// Start a successor and hand it the sockets and VRRP states ([`crate::upgrade`]).
    /// Nothing here changes unless it took over.
    pub async fn upgrade(&mut self) -> UpgradeOutcome {
        let Some(relaunch) = self.relaunch.clone() else {
            return UpgradeOutcome::Failed {
                error: "this node was not started by `havip run`; nothing to relaunch".into(),
            };
        };
        if self.bgp.is_some() {
            // The new process would sweep the routes as a killed run's leftovers and the old
            // one would remove its local VIPs when it ends: a route flap at every router.
            return UpgradeOutcome::Failed {
                error: "a binary upgrade of a node with [[bgp]] announcements is not supported \
                        yet; restart it instead (SIGTERM withdraws the routes first)"
                    .into(),
            };
        }
        let outcome = match self.offer() {
            Ok(offer) => upgrade::hand_over(relaunch.exe, relaunch.args, offer).await,
            Err(error) => Err(UpgradeError::Io(error)),
        };
        match outcome {
            Ok(pid) => {
                tracing::info!(
                    pid,
                    "upgrade: the new process took over; draining and exiting"
                );
                UpgradeOutcome::TookOver { pid }
            }
            Err(error) => {
                tracing::error!(%error, "upgrade failed; this process runs on as before");
                UpgradeOutcome::Failed {
                    error: error.to_string(),
                }
            }
        }
    }

    fn offer(&self) -> std::io::Result<Offer> {
        let mut listeners = Vec::new();
        for (addr, socket) in self.proxy.sockets() {
            listeners.push((
                addr,
                std::os::fd::AsFd::as_fd(&*socket).try_clone_to_owned()?,
            ));
        }
        let admin = match &self.admin {
            Some(AdminEndpoint {
                listen,
                socket: Some(socket),
                ..
            }) => Some((*listen, socket.try_clone()?)),
            _ => None,
        };
        let mut down = Vec::new();
        for service in self.proxy.services().iter() {
            for backend in &service.backends {
                if backend.health() == havip_proxy::backend::Health::Down {
                    let key = (service.spec.name.clone(), backend.name(), backend.addr());
                    down.push(key);
                }
            }
        }
        Ok(Offer {
            listeners,
            admin,
            vrrp: self.vrrp.as_ref().map(VrrpNode::states).unwrap_or_default(),
            down,
        })
    }

    /// After a successor took over: stop the VRRP instances without a word on the wire (the
    /// successor advertises and holds the addresses), stop accepting (the listening sockets
    /// live on in the successor), and let open connections finish for up to the grace period.
    pub async fn retire(self) {
        if let Some(admin) = &self.admin {
            admin.stop.cancel();
        }
        // The successor took the control socket's path over; this one only stops listening.
        self.control_stop.cancel();
        if let Some(vrrp) = self.vrrp {
            vrrp.hand_off().await;
        }
        let report = self.proxy.shutdown(self.config.global.grace).await;
        tracing::info!(
            open_at_stop = report.open_at_stop,
            cut = report.cut,
            "handed over to the new process; stopped"
        );
    }
}
