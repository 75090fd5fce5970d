//! The VRRP shell in-process, without root: conformance cases as data. Each file under
//! `tests/vrrp_shell/` names an instance config (the `[[vrrp]]` table of a real havip.toml),
//! a list of timed inputs (packets from peers, link and address changes, tracking, operator
//! commands, shutdown) and the expected outcome: every I/O call the instance task made, with
//! its virtual time, the answers to commands, the events, the notify calls and the final
//! status. The task runs with a recording [`InstanceIo`] on tokio's paused clock, so a case
//! that spans seconds runs in microseconds and its times are exact.
//!
//! Input lines (`<time> <input> [key=value ...]`):
//! - `packet from=IP priority=N [ttl=N] [vrid=N] [password=S] [interval=D] [to=IP]`: an
//!   advertisement encoded by the codec, as a peer on the link would send it;
//! - `link down|up`, `tracking priority=N [fault]`, `resync`;
//! - `address-removed IP`: the netlink monitor reports one of the addresses gone;
//! - `vanish IP`: the address disappears from the recorder's "kernel" without an event
//!   (as when netlink notifications were lost; a later `resync` finds it missing);
//! - `step-down`, `restore`, `shutdown`: operator commands and SIGTERM.
//!
//! Set `HAVIP_SHELL_PRINT=1` to print what a case produced, for writing a new one; the
//! expectations are written by hand and reviewed, never generated into the files.

#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

use std::collections::BTreeSet;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use havip_config::duration::parse_duration;
use havip_node::vrrp::instance::{
    Control, InstanceParts, InstanceTask, OwnedPacket, StepDownResult,
};
use havip_node::vrrp::io::{InstanceIo, ResolvedVip};
use havip_node::vrrp::status::{EventLog, InstanceStatus};
use havip_vrrp::packet::{encode, AddressList, Advertisement, ChecksumContext, Password};
use havip_vrrp::{AdvertInterval, Authentication, Instance, OutgoingAdvertisement, Tracking};
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// The instance's interface in every case.
const IFINDEX: u32 = 2;
const INTERFACE: &str = "eth0";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    /// What the case shows, in a sentence.
    description: String,
    /// A havip.toml with one `[[vrrp]]` instance; its `source` is the node's address.
    config: String,
    /// `<time> <input> ...`, in time order.
    inputs: Vec<String>,
    /// How long the case runs (inputs included).
    run_for: String,
    /// `"master"` or `"backup"`: the task takes over from a predecessor process in that
    /// state (a binary upgrade); a master's addresses are on the interface already.
    #[serde(default)]
    resume: Option<String>,
    expect: Expect,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    /// Every I/O call, `<time> <call>`.
    io: Vec<String>,
    /// Answers to step-down and shutdown, `<time> <answer>`.
    #[serde(default)]
    replies: Vec<String>,
    /// The event log, `<kind> [from -> to]`, in order.
    #[serde(default)]
    events: Vec<String>,
    /// Notify calls, `<from> -> <to>`.
    #[serde(default)]
    notify: Vec<String>,
    /// Selected fields of the final `/api/status` entry, as `key = value` (JSON values).
    #[serde(default)]
    status: toml::Table,
}

/// The log every part of a run writes to, with virtual times.
#[derive(Clone)]
struct Log {
    base: Instant,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Log {
    fn push(&self, line: String) {
        let at = self.base.elapsed();
        let ms = at.as_micros() as f64 / 1000.0;
        self.lines.lock().unwrap().push(format!("{ms}ms {line}"));
    }

    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.lines.lock().unwrap())
    }
}

/// A recording "kernel": which addresses are on the interface, whether the link is up.
#[derive(Default)]
struct Kernel {
    present: BTreeSet<IpAddr>,
    link_up: bool,
}

struct RecordingIo {
    log: Log,
    kernel: Arc<Mutex<Kernel>>,
}

impl InstanceIo for RecordingIo {
    fn send(&mut self, advert: &OutgoingAdvertisement) -> io::Result<()> {
        let ttl = if advert.ttl == 255 {
            String::new()
        } else {
            format!(" ttl {}", advert.ttl)
        };
        self.log.push(format!(
            "send to {} priority {}{ttl}",
            advert.destination, advert.advertisement.priority
        ));
        Ok(())
    }

    fn add_address(&mut self, vip: &ResolvedVip) -> io::Result<bool> {
        let added = self.kernel.lock().unwrap().present.insert(vip.address);
        let note = if added { "" } else { " (was there)" };
        self.log.push(format!(
            "add {}/{} on {}{note}",
            vip.address, vip.prefix_len, vip.interface
        ));
        Ok(added)
    }

    fn remove_address(&mut self, vip: &ResolvedVip) -> io::Result<bool> {
        let removed = self.kernel.lock().unwrap().present.remove(&vip.address);
        let note = if removed { "" } else { " (was not there)" };
        self.log.push(format!(
            "remove {}/{} on {}{note}",
            vip.address, vip.prefix_len, vip.interface
        ));
        Ok(removed)
    }

    fn announce(&mut self, vip: &ResolvedVip) -> io::Result<()> {
        self.log
            .push(format!("announce {} on {}", vip.address, vip.interface));
        Ok(())
    }

    fn link_up(&mut self) -> io::Result<Option<bool>> {
        Ok(Some(self.kernel.lock().unwrap().link_up))
    }

    fn present(&mut self, vips: &[ResolvedVip]) -> io::Result<Vec<bool>> {
        let kernel = self.kernel.lock().unwrap();
        Ok(vips
            .iter()
            .map(|v| kernel.present.contains(&v.address))
            .collect())
    }
}

/// What a run produced, in the case's terms.
#[derive(Debug, PartialEq)]
struct Outcome {
    io: Vec<String>,
    replies: Vec<String>,
    events: Vec<String>,
    notify: Vec<String>,
}

fn ms(text: &str) -> Duration {
    parse_duration(text).unwrap_or_else(|e| panic!("time {text:?}: {e}"))
}

fn words(line: &str) -> (Duration, &str, Vec<(&str, &str)>, Vec<&str>) {
    let mut parts = line.split_whitespace();
    let at = ms(parts.next().expect("time"));
    let input = parts.next().expect("input");
    let mut options = Vec::new();
    let mut rest = Vec::new();
    for part in parts {
        match part.split_once('=') {
            Some((k, v)) => options.push((k, v)),
            None => rest.push(part),
        }
    }
    (at, input, options, rest)
}

/// An advertisement as a peer would send it for `config`'s instance.
fn peer_packet(config: &havip_vrrp::InstanceConfig, options: &[(&str, &str)]) -> OwnedPacket {
    let get = |key: &str| options.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
    let source: IpAddr = get("from").expect("packet from=").parse().unwrap();
    let priority: u8 = get("priority").expect("packet priority=").parse().unwrap();
    let interval = match get("interval") {
        Some(text) => {
            let cs = u16::try_from(ms(text).as_millis() / 10).unwrap();
            AdvertInterval::from_centiseconds(cs).unwrap()
        }
        None => config.advert_interval,
    };
    let authentication = match get("password") {
        Some(password) => {
            Authentication::SimplePassword(Password::from_keepalived_auth_pass(password))
        }
        None => config.authentication,
    };
    let advert = Advertisement {
        version: config.version,
        vrid: get("vrid").map_or(config.vrid, |v| v.parse().unwrap()),
        priority,
        interval,
        addresses: AddressList::from_ip_addrs(&config.virtual_addresses).unwrap(),
        authentication,
    };
    let destination = match get("to") {
        Some(to) => to.parse().unwrap(),
        None if config.is_unicast() => config.primary_address,
        None => config.family().multicast_group(),
    };
    let context = ChecksumContext {
        source,
        destination,
        v3_ipv4_checksum: config.v3_ipv4_checksum,
    };
    OwnedPacket {
        source,
        destination,
        ttl: get("ttl").map_or(255, |t| t.parse().unwrap()),
        payload: encode(&advert, &context).unwrap(),
    }
}

fn describe(result: &StepDownResult) -> String {
    match result {
        StepDownResult::HandedOver { new_master, waited } => {
            format!("handed over to {new_master} after {}ms", waited.as_millis())
        }
        StepDownResult::NobodyTookOver { waited } => {
            format!("nobody took over within {}ms", waited.as_millis())
        }
        StepDownResult::NotMaster => "not master".into(),
    }
}

/// One case's instance task and everything it is watched through.
struct Harness {
    settings: havip_config::vrrp::VrrpSettings,
    protocol: havip_vrrp::InstanceConfig,
    log: Log,
    replies: Log,
    kernel: Arc<Mutex<Kernel>>,
    status: Arc<Mutex<InstanceStatus>>,
    events: Arc<EventLog>,
    notify: mpsc::UnboundedReceiver<havip_node::vrrp::notify::Notification>,
    inbox: mpsc::Sender<Control>,
    task: tokio::task::JoinHandle<()>,
    waiting: Vec<tokio::task::JoinHandle<()>>,
}

impl Harness {
    /// Start the instance task of the case's config with a recording I/O.
    fn start(path: &Path, case: &Case) -> Harness {
        let config = havip_config::parse(path, &case.config)
            .unwrap_or_else(|problems| panic!("{}: config: {problems:?}", path.display()));
        let settings = config.vrrp.first().expect("one [[vrrp]]").clone();
        let primary = settings.source.expect("the case's [[vrrp]] sets source");
        let mut protocol = settings.protocol_config(primary);
        protocol.graceful_release = true;
        let instance = Instance::new(protocol.clone()).unwrap();
        let vips: Vec<ResolvedVip> = settings
            .virtual_addresses
            .iter()
            .map(|v| ResolvedVip {
                address: v.address,
                prefix_len: v.prefix_len,
                ifindex: IFINDEX,
                interface: INTERFACE.into(),
                label: v.label.clone(),
            })
            .collect();
        let base = Instant::now();
        let log = Log {
            base,
            lines: Arc::default(),
        };
        let resume = case.resume.as_deref().map(|state| state == "master");
        let present = match resume {
            Some(true) => vips.iter().map(|v| v.address).collect(),
            _ => BTreeSet::new(),
        };
        let kernel = Arc::new(Mutex::new(Kernel {
            link_up: true,
            present,
        }));
        let names = vips
            .iter()
            .map(|v| format!("{}/{}", v.address, v.prefix_len))
            .collect();
        let mdi = instance.master_down_interval();
        let status = Arc::new(Mutex::new(InstanceStatus::initial(
            &settings, INTERFACE, primary, names, mdi,
        )));
        let events = Arc::new(EventLog::default());
        let (notify_tx, notify) = mpsc::unbounded_channel();
        let (inbox, inbox_rx) = mpsc::channel(64);
        let task = InstanceTask::new(InstanceParts {
            name: settings.name.clone(),
            interface: INTERFACE.into(),
            instance,
            vips,
            link_up: true,
            resume,
            io: RecordingIo {
                log: log.clone(),
                kernel: kernel.clone(),
            },
            status: status.clone(),
            events: events.clone(),
            notify: notify_tx,
        });
        Harness {
            settings,
            protocol,
            log,
            replies: Log {
                base,
                lines: Arc::default(),
            },
            kernel,
            status,
            events,
            notify,
            inbox,
            task: tokio::spawn(task.run(inbox_rx)),
            waiting: Vec::new(),
        }
    }

    /// The message for one input line, or None when the input acts on the "kernel" only.
    fn control(&mut self, input: &str, options: &[(&str, &str)], rest: &[&str]) -> Option<Control> {
        let message = match input {
            "packet" => Control::Packet(peer_packet(&self.protocol, options)),
            "link" => {
                let up = rest == ["up"];
                self.kernel.lock().unwrap().link_up = up;
                Control::Link { up }
            }
            "tracking" => Control::Tracking(Tracking {
                priority: options
                    .iter()
                    .find(|(k, _)| *k == "priority")
                    .map_or(self.settings.priority, |(_, v)| v.parse().unwrap()),
                fault: rest.contains(&"fault"),
            }),
            "address-removed" => {
                let address: IpAddr = rest[0].parse().unwrap();
                self.kernel.lock().unwrap().present.remove(&address);
                Control::AddressRemoved {
                    ifindex: IFINDEX,
                    address,
                }
            }
            "vanish" => {
                let address: IpAddr = rest[0].parse().unwrap();
                self.kernel.lock().unwrap().present.remove(&address);
                return None;
            }
            "resync" => Control::Resync,
            "step-down" => {
                let (tx, rx) = oneshot::channel();
                self.answer_with(rx, |result| format!("step-down: {}", describe(&result)));
                Control::StepDown(tx)
            }
            "restore" => {
                let (tx, rx) = oneshot::channel();
                self.answer_with(rx, |()| "restore: done".into());
                Control::Restore(tx)
            }
            "shutdown" => {
                let (tx, rx) = oneshot::channel();
                self.answer_with(rx, |()| "shutdown: done".into());
                Control::Shutdown(tx)
            }
            "hand-off" => {
                let (tx, rx) = oneshot::channel();
                self.answer_with(rx, |()| "hand-off: done".into());
                Control::HandOff(tx)
            }
            other => panic!("unknown input {other:?}"),
        };
        Some(message)
    }

    /// Record the answer to a command, when it comes.
    fn answer_with<T: Send + 'static>(
        &mut self,
        answer: oneshot::Receiver<T>,
        describe: impl FnOnce(T) -> String + Send + 'static,
    ) {
        let replies = self.replies.clone();
        self.waiting.push(tokio::spawn(async move {
            if let Ok(value) = answer.await {
                replies.push(describe(value));
            }
        }));
    }

    /// Stop feeding, let the task end, and collect what it did.
    async fn finish(mut self) -> (Outcome, serde_json::Value) {
        drop(self.inbox);
        // Bounded on the virtual clock, so that a task that never ends, or a command that is
        // never answered, fails the case instead of hanging it.
        let bound = Duration::from_secs(600);
        if tokio::time::timeout(bound, self.task).await.is_err() {
            self.replies.push("the task did not end".into());
        }
        for wait in self.waiting {
            if tokio::time::timeout(bound, wait).await.is_err() {
                self.replies.push("a command was never answered".into());
            }
        }
        let mut notify = Vec::new();
        while let Ok(n) = self.notify.try_recv() {
            notify.push(format!("{} -> {}", n.from, n.to));
        }
        let events = self
            .events
            .since(0)
            .iter()
            .map(|e| match (e.from, e.to) {
                (Some(from), Some(to)) => format!("{} {from} -> {to}", e.kind),
                _ => e.kind.to_string(),
            })
            .collect();
        let status = self.status.lock().unwrap().to_json();
        let outcome = Outcome {
            io: self.log.take(),
            replies: self.replies.take(),
            events,
            notify,
        };
        (outcome, status)
    }
}

/// Run `case` on the paused clock; returns what happened and the final status.
async fn run(path: &Path, case: &Case) -> (Outcome, serde_json::Value) {
    let mut harness = Harness::start(path, case);
    for line in &case.inputs {
        let (at, input, options, rest) = words(line);
        tokio::time::sleep_until(harness.log.base + at).await;
        if let Some(message) = harness.control(input, &options, &rest) {
            // A task that ended (after shutdown) no longer reads its inbox.
            let _ = harness.inbox.send(message).await;
        }
    }
    tokio::time::sleep_until(harness.log.base + ms(&case.run_for)).await;
    harness.finish().await
}

fn cases() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vrrp_shell");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

fn check(path: &Path) {
    let text = std::fs::read_to_string(path).unwrap();
    let case: Case = toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    let (outcome, status) = runtime.block_on(run(path, &case));
    if std::env::var("HAVIP_SHELL_PRINT").is_ok() {
        eprintln!("{}:\n{outcome:#?}\n{status:#}", path.display());
    }
    let name = path.file_name().unwrap().to_string_lossy();
    let expected = Outcome {
        io: case.expect.io.clone(),
        replies: case.expect.replies.clone(),
        events: case.expect.events.clone(),
        notify: case.expect.notify.clone(),
    };
    assert_eq!(outcome, expected, "{name}: {}", case.description);
    for (key, want) in &case.expect.status {
        let want = serde_json::to_value(want).unwrap();
        assert_eq!(status.get(key), Some(&want), "{name}: status.{key}");
    }
}

#[test]
fn every_conformance_case_produces_exactly_its_expected_io() {
    let cases = cases();
    for path in &cases {
        check(path);
    }
    assert!(cases.len() >= 10, "cases went missing: {cases:?}");
}

#[test]
fn a_case_with_a_wrong_expectation_fails() {
    // The harness must be able to fail: the first case with one expected line changed.
    let path = cases().into_iter().next().unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let mut case: Case = toml::from_str(&text).unwrap();
    case.expect
        .io
        .push("999ms send to 192.0.2.1 priority 1".into());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    let (outcome, _) = runtime.block_on(run(&path, &case));
    assert_ne!(outcome.io, case.expect.io);
}
