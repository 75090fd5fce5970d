//! The signals havip handles, as requests to the running node. Each one an operator or a unit
//! file may send does something documented (docs/operations.md); none ends the process
//! without the priority-0 hand-over.

use tokio::signal::unix::{signal, SignalKind};

/// Completes on the first SIGTERM, SIGINT or SIGQUIT.
pub async fn shutdown_signal() {
    Signals::install().stop().await;
}

/// What the operator (or a unit file) asked for with a signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// SIGTERM, SIGINT or SIGQUIT: stop gracefully.
    Stop(&'static str),
    /// SIGHUP: reload the config file.
    Reload,
    /// SIGUSR1: log the status.
    LogStatus,
    /// SIGUSR2: hand over to a new binary.
    Upgrade,
}

/// The signals havip handles; every one an operator may send does something documented.
pub struct Signals {
    streams: Option<[tokio::signal::unix::Signal; 6]>,
}

impl Signals {
    /// Install the handlers (at once, so a signal that arrives during the start is not lost).
    pub fn install() -> Signals {
        let kinds = [
            SignalKind::terminate(),
            SignalKind::interrupt(),
            SignalKind::quit(),
            SignalKind::hangup(),
            SignalKind::user_defined1(),
            SignalKind::user_defined2(),
        ];
        let streams: Option<Vec<_>> = kinds.iter().map(|kind| signal(*kind).ok()).collect();
        let streams = streams.and_then(|streams| streams.try_into().ok());
        if streams.is_none() {
            tracing::error!("cannot install signal handlers; stop havip with SIGKILL");
        }
        Signals { streams }
    }

    /// The next request.
    pub async fn next(&mut self) -> Request {
        let Some([term, int, quit, hup, usr1, usr2]) = self.streams.as_mut() else {
            std::future::pending::<()>().await;
            return Request::Stop("none");
        };
        tokio::select! {
            _ = term.recv() => Request::Stop("SIGTERM"),
            _ = int.recv() => Request::Stop("SIGINT"),
            _ = quit.recv() => Request::Stop("SIGQUIT"),
            _ = hup.recv() => Request::Reload,
            _ = usr1.recv() => Request::LogStatus,
            _ = usr2.recv() => Request::Upgrade,
        }
    }

    /// Wait for a stop request, ignoring (and logging) the others.
    pub async fn stop(mut self) {
        loop {
            match self.next().await {
                Request::Stop(name) => {
                    tracing::info!(signal = name, "shutting down");
                    return;
                }
                other => tracing::info!(request = ?other, "ignored here"),
            }
        }
    }
}
