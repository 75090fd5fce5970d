//! Notify commands on state changes (keepalived `notify`, `notify_master`, ...): one worker
//! per instance runs them in the order the changes happened, one at a time, so a slow script
//! delays later notifications of its instance but never the protocol.

use tokio::sync::mpsc;

use super::status::StatusSlot;
use crate::command::{self, Outcome};
use havip_config::vrrp::NotifySettings;

/// One state change to tell the configured commands about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub instance: String,
    pub from: &'static str,
    /// `MASTER`, `BACKUP`, `FAULT` or `STOP`.
    pub to: &'static str,
}

/// Run the notifications of one instance until the sender side is dropped.
pub async fn worker(
    settings: NotifySettings,
    mut inbox: mpsc::UnboundedReceiver<Notification>,
    status: StatusSlot,
) {
    while let Some(n) = inbox.recv().await {
        let specific = match n.to {
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
                vec![n.instance.as_str(), n.from, n.to]
            } else {
                Vec::new()
            };
            let (outcome, output) =
                command::run(spec, &extra, settings.user.as_deref(), settings.timeout).await;
            if outcome.is_success() {
                tracing::debug!(instance = %n.instance, to = n.to, "notify command done");
            } else {
                if let Ok(mut s) = status.lock() {
                    s.notify_failures += 1;
                }
                match outcome {
                    Outcome::TimedOut => {
                        tracing::warn!(instance = %n.instance, to = n.to, timeout_ms = settings.timeout.as_millis() as u64, "notify command timed out and was killed")
                    }
                    other => {
                        tracing::warn!(instance = %n.instance, to = n.to, outcome = %other, %output, "notify command failed")
                    }
                }
            }
        }
    }
}
