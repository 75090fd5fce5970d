//! How each kind of tracker looks at what it tracks, one function per kind. Each runs as its
//! own task and sends one [`Observation`] per period to the tracking loop; none blocks the
//! async threads (the /proc walk and file reads run on tokio's blocking pool).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use havip_config::vrrp::{CommandSpec, MinHealthy, ProcessMatch, TrackerKind, TrackerSettings};
use havip_proxy::backend::{AdminState, Backend, CheckOutcome};
use havip_proxy::service::Service;
use havip_proxy::ServiceTable;
use tokio::sync::{mpsc, watch};
use tokio::time::{Interval, MissedTickBehavior};

use super::LinkStates;
use super::{Observation, Report, IN_PROCESS_PERIOD};
use crate::command::{self, Outcome};

/// What a tracker may need to look at.
#[derive(Clone)]
pub struct Sources {
    /// The node's services (for `service` and `listener`), current across reloads.
    pub services: Arc<ServiceTable>,
    /// Link changes from the node's netlink monitor (for `interface`).
    pub links: watch::Receiver<LinkStates>,
}

/// Observe `tracker` forever (until the tracking loop goes away), as tracker `index`.
pub async fn observe_forever(
    index: usize,
    tracker: TrackerSettings,
    sources: Sources,
    reports: mpsc::Sender<Report>,
) {
    let out = Out {
        index,
        name: tracker.name.clone(),
        reports,
    };
    match &tracker.kind {
        TrackerKind::Service {
            service,
            min_healthy,
            drain_counts_as_down,
        } => {
            // Looked up at every observation: a reload may replace the service.
            let (table, name, min) = (sources.services.clone(), service.clone(), *min_healthy);
            let drain_is_down = *drain_counts_as_down;
            in_process(out, move || match table.find(&name) {
                Some(s) => service_observation(&s, min, drain_is_down),
                None => Observation::Bad,
            })
            .await
        }
        TrackerKind::Listener { service } => {
            let (table, name) = (sources.services.clone(), service.clone());
            in_process(out, move || match table.find(&name) {
                Some(s) => good(s.stats.all_listeners_accepting(s.spec.listen.len())),
                None => Observation::Bad,
            })
            .await
        }
        TrackerKind::Interface { interface } => {
            observe_interface(out, interface.clone(), sources.links).await
        }
        TrackerKind::Process(process) => {
            observe_process(out, process.clone(), tracker.interval).await
        }
        TrackerKind::File { path } => observe_file(out, path.clone(), tracker.interval).await,
        TrackerKind::Script {
            command,
            timeout,
            user,
            timeout_is_failure,
        } => {
            let script = Script {
                command: command.clone(),
                timeout: *timeout,
                user: user.clone(),
                timeout_is_failure: *timeout_is_failure,
            };
            observe_script(out, script, tracker.interval).await
        }
    }
}

/// Where a tracker's observations go.
struct Out {
    index: usize,
    name: String,
    reports: mpsc::Sender<Report>,
}

impl Out {
    /// Send one observation; false once nobody listens any more.
    async fn send(&self, observation: Observation) -> bool {
        self.reports
            .send(Report {
                tracker: self.index,
                observation,
            })
            .await
            .is_ok()
    }
}

fn ticker(period: Duration) -> Interval {
    let mut ticker = tokio::time::interval(period);
    // A slow observation delays the next one instead of causing a burst of catch-up runs.
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    ticker
}

/// `service` and `listener`: read the balancer's own state every [`IN_PROCESS_PERIOD`].
async fn in_process(out: Out, look: impl Fn() -> Observation) {
    let mut ticker = ticker(IN_PROCESS_PERIOD);
    loop {
        ticker.tick().await;
        if !out.send(look()).await {
            return;
        }
    }
}

/// `interface`: its state at start from netlink, then every change the node's netlink
/// monitor sees, at once; the current state is repeated every [`IN_PROCESS_PERIOD`] so that
/// `rise`/`fall` count periods as for the other in-process trackers.
async fn observe_interface(out: Out, interface: String, links: watch::Receiver<LinkStates>) {
    let mut overruns = links.borrow().overruns;
    let mut links = Some(links);
    let mut up = read_link(&interface).await;
    let mut ticker = ticker(IN_PROCESS_PERIOD);
    loop {
        let observation = match up {
            Some(up) => good(up),
            None => Observation::Unknown,
        };
        if !out.send(observation).await {
            return;
        }
        let Some(watch) = links.as_mut() else {
            // The monitor stopped (the node is stopping): repeat the last state.
            ticker.tick().await;
            continue;
        };
        tokio::select! {
            _ = ticker.tick() => {}
            changed = watch.changed() => {
                if changed.is_err() {
                    links = None;
                    continue;
                }
                let states = watch.borrow_and_update().clone();
                if states.overruns != overruns {
                    // Events were lost: ask the kernel again.
                    overruns = states.overruns;
                    up = read_link(&interface).await;
                } else if let Some(now) = states.by_name.get(&interface) {
                    up = Some(*now);
                }
            }
        }
    }
}

/// The link's state from netlink: `Some(false)` when it does not exist, `None` when netlink
/// cannot be asked.
async fn read_link(interface: &str) -> Option<bool> {
    let name = interface.to_string();
    let read = tokio::task::spawn_blocking(move || {
        let netlink = havip_sys::netlink::Netlink::open()?;
        netlink.link_by_name(&name)
    });
    match read.await {
        Ok(Ok(link)) => Some(link.is_some_and(|l| l.up)),
        Ok(Err(error)) => {
            tracing::warn!(%interface, %error, "cannot read the interface state");
            None
        }
        Err(_) => None,
    }
}

/// `process`: a walk of /proc (or one pidfile) every `interval`, on the blocking pool.
async fn observe_process(out: Out, process: ProcessMatch, interval: Duration) {
    let mut ticker = ticker(interval);
    loop {
        ticker.tick().await;
        let process = process.clone();
        let running = tokio::task::spawn_blocking(move || match &process {
            ProcessMatch::Name(name) => process_running(name),
            ProcessMatch::Pidfile(path) => pidfile_alive(path),
        })
        .await;
        let observation = running.map_or(Observation::Unknown, good);
        if !out.send(observation).await {
            return;
        }
    }
}

/// `file`: the number in the file every `interval`; unreadable counts as 0, said once.
async fn observe_file(out: Out, path: PathBuf, interval: Duration) {
    let mut ticker = ticker(interval);
    let mut last_error: Option<String> = None;
    loop {
        ticker.tick().await;
        let read_path = path.clone();
        let read = tokio::task::spawn_blocking(move || read_number(&read_path)).await;
        let observation = match read {
            Ok(Ok(n)) => {
                last_error = None;
                Observation::Value(n)
            }
            Ok(Err(why)) => {
                if last_error.as_ref() != Some(&why) {
                    tracing::warn!(tracker = %out.name, %why, "tracked file unreadable; counting 0");
                    last_error = Some(why);
                }
                Observation::Value(0)
            }
            Err(_) => Observation::Unknown,
        };
        if !out.send(observation).await {
            return;
        }
    }
}

/// A `script` tracker's command and how to judge it.
struct Script {
    command: CommandSpec,
    timeout: Duration,
    user: Option<String>,
    timeout_is_failure: bool,
}

/// `script`: run the command every `interval`, never two at once.
async fn observe_script(out: Out, script: Script, interval: Duration) {
    let mut ticker = ticker(interval);
    loop {
        ticker.tick().await;
        let (outcome, output) =
            command::run(&script.command, &[], script.user.as_deref(), script.timeout).await;
        let observation = match outcome {
            Outcome::Exited(0) => Observation::Good,
            Outcome::TimedOut if !script.timeout_is_failure => {
                tracing::warn!(tracker = %out.name, timeout_ms = script.timeout.as_millis() as u64, "track script timed out; state unchanged (timeout_counts_as = \"unknown\")");
                Observation::Unknown
            }
            other => {
                tracing::debug!(tracker = %out.name, outcome = %other, %output, "track script failed");
                Observation::Bad
            }
        };
        if !out.send(observation).await {
            return;
        }
    }
}

fn good(ok: bool) -> Observation {
    if ok {
        Observation::Good
    } else {
        Observation::Bad
    }
}

/// Whether a service has enough backends up. Backup backends do not count: the service is
/// degraded when it runs on them. A backend an operator set to `drain` or `maint` counts by
/// its health unless `drain_counts_as_down`: draining one of three masters for an upgrade
/// should not lower the VRRP priority.
pub fn service_healthy(service: &Service, min: MinHealthy, drain_counts_as_down: bool) -> bool {
    let primaries: Vec<_> = service
        .backends
        .iter()
        .filter(|b| !b.spec().backup)
        .collect();
    let up = primaries
        .iter()
        .filter(|backend| counts_up(backend, drain_counts_as_down))
        .count();
    up >= needed(min, primaries.len())
}

fn counts_up(backend: &Backend, drain_counts_as_down: bool) -> bool {
    backend.is_up() && (!drain_counts_as_down || backend.admin_state() == AdminState::Ready)
}

fn needed(min: MinHealthy, primaries: usize) -> usize {
    match min {
        MinHealthy::Count(n) => n as usize,
        MinHealthy::Fraction(f) => (f * primaries as f64).ceil().max(1.0) as usize,
    }
}

/// A `service` tracker's observation. A backend starts up on probation (as in HAProxy) until
/// its first health check: while the answer depends on such backends it is unknown, so that
/// a node whose backends are all dead at start is never judged healthy on faith (a BGP
/// announcement waits for it; a VRRP instance is unaffected, as a tracker not yet observed
/// does not move its priority).
pub fn service_observation(
    service: &Service,
    min: MinHealthy,
    drain_counts_as_down: bool,
) -> Observation {
    let checked = service.spec.health.check.is_some();
    let primaries: Vec<_> = service
        .backends
        .iter()
        .filter(|b| !b.spec().backup)
        .collect();
    let needed = needed(min, primaries.len());
    let up: Vec<_> = primaries
        .iter()
        .filter(|b| counts_up(b, drain_counts_as_down))
        .collect();
    let proven = up
        .iter()
        .filter(|b| !checked || b.last_check().0 != CheckOutcome::None)
        .count();
    if proven >= needed {
        Observation::Good
    } else if up.len() < needed {
        Observation::Bad
    } else {
        Observation::Unknown
    }
}

/// Whether a process with this name (the kernel's `comm`, as pgrep matches) runs.
pub fn process_running(name: &str) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    // comm is truncated to 15 bytes by the kernel.
    let wanted: String = name.chars().take(15).collect();
    entries.flatten().any(|entry| {
        let file_name = entry.file_name();
        let Some(pid) = file_name.to_str() else {
            return false;
        };
        if !pid.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
        std::fs::read_to_string(entry.path().join("comm"))
            .map(|comm| comm.trim_end() == wanted)
            .unwrap_or(false)
            && alive(&entry.path())
    })
}

/// Whether the process at `/proc/<pid>` is alive: it exists and is not a zombie (a dead
/// process its parent has not reaped still has a /proc entry).
fn alive(proc_dir: &Path) -> bool {
    let Ok(stat) = std::fs::read_to_string(proc_dir.join("stat")) else {
        return false;
    };
    // The state follows the command name, which is in parentheses and may contain spaces.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    !matches!(state, Some("Z") | Some("X") | None)
}

/// Whether the PID in `pidfile` is alive.
pub fn pidfile_alive(pidfile: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(pidfile) else {
        return false;
    };
    match text.trim().parse::<u32>() {
        Ok(pid) if pid > 0 => alive(&Path::new("/proc").join(pid.to_string())),
        _ => false,
    }
}

/// The number in a `file` tracker's file: unreadable or not a number counts as 0 (keepalived
/// does the same), with the reason logged by the caller.
pub fn read_number(path: &Path) -> Result<i64, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.split_whitespace()
        .next()
        .unwrap_or("0")
        .parse::<i64>()
        .map_err(|_| format!("{}: not an integer", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use havip_config::copy_mode::CopyMode;
    use havip_config::service::ServiceSpec;
    use havip_proxy::backend::Health;
    use havip_proxy::service::DataPath;
    use tokio::time::Instant;

    fn three_masters() -> Service {
        let backends: Vec<std::net::SocketAddr> = (1..=3)
            .map(|i| std::net::SocketAddr::from(([127, 0, 0, i], 6443)))
            .collect();
        let spec = ServiceSpec::new(
            "kube-apiserver",
            vec!["127.0.0.1:0".parse().expect("address")],
            &backends,
        );
        let data_path = DataPath {
            copy_mode: CopyMode::default(),
            log_connections: false,
        };
        let epoch = Instant::now();
        let backends = spec
            .backends
            .iter()
            .map(|b| std::sync::Arc::new(Backend::new(b.clone(), epoch, false).0))
            .collect();
        Service::new(spec, backends, std::sync::Arc::default(), data_path)
    }

    #[tokio::test]
    async fn drained_backends_count_by_their_health_unless_asked() {
        let service = three_masters();
        let all = MinHealthy::Fraction(1.0);
        service.backends[1].set_admin_state(AdminState::Drain, Instant::now());
        service.backends[2].set_admin_state(AdminState::Maint, Instant::now());
        // By default draining a master for its upgrade changes nothing for VRRP.
        assert!(service_healthy(&service, all, false));
        assert!(service_healthy(&service, MinHealthy::Count(3), false));
        // Asked for: drain and maint count as down.
        assert!(!service_healthy(&service, MinHealthy::Count(2), true));
        assert!(service_healthy(&service, MinHealthy::Count(1), true));
        // A drained backend that is down is down either way.
        service.backends[1].set_health(Health::Down, Instant::now());
        assert!(!service_healthy(&service, all, false));
    }
}
