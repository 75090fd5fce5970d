//! Notify commands on state changes (keepalived `notify`, `notify_master`, ...): one worker
//! per instance runs them in the order the changes happened, one at a time, so a slow script
//! delays later notifications of its instance but never the protocol.

use tokio::sync::{mpsc, watch};

use super::status::StatusSlot;
use crate::command::{self, Outcome};
use havip_config::vrrp::NotifySettings;

/// One state change to tell the configured commands about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The VRRP instance's name, the first argument of the generic `notify` command.
    pub instance: String,
    /// The state left, as keepalived names it (`INIT`, `BACKUP`, ...).
    pub from: &'static str,
    /// `MASTER`, `BACKUP`, `FAULT` or `STOP`.
    pub to: &'static str,
}

/// Run the notifications of one instance until the sender side is dropped.
pub async fn worker(
    settings: watch::Receiver<NotifySettings>,
    mut inbox: mpsc::UnboundedReceiver<Notification>,
    status: StatusSlot,
) {
    while let Some(notification) = inbox.recv().await {
        // The commands configured when the change is handled (a reload may change them).
        let settings = settings.borrow().clone();
        let specific = match notification.to {
            "MASTER" => settings.master.as_ref(),
            "BACKUP" => settings.backup.as_ref(),
            "FAULT" => settings.fault.as_ref(),
            "STOP" => settings.stop.as_ref(),
            _ => None,
        };
        let runs = [(settings.command.as_ref(), true), (specific, false)];
        for (spec, with_arguments) in runs {
            let Some(spec) = spec else { continue };
            let extra: Vec<&str> = if with_arguments {
                vec![
                    notification.instance.as_str(),
                    notification.from,
                    notification.to,
                ]
            } else {
                Vec::new()
            };
            let (outcome, output) =
                command::run(spec, &extra, settings.user.as_deref(), settings.timeout).await;
            if outcome.is_success() {
                tracing::debug!(instance = %notification.instance, to = notification.to, "notify command done");
            } else {
                if let Ok(mut status) = status.lock() {
                    status.notify_failures += 1;
                }
                match outcome {
                    Outcome::TimedOut => {
                        tracing::warn!(instance = %notification.instance, to = notification.to, timeout_ms = settings.timeout.as_millis() as u64, "notify command timed out and was killed")
                    }
                    other => {
                        tracing::warn!(instance = %notification.instance, to = notification.to, outcome = %other, %output, "notify command failed")
                    }
                }
            }
        }
    }
}
