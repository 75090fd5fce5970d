//! The havip config an import drafts, before it is written as TOML: the same tables and keys
//! as `docs/config.md`, each value with the place it came from ([`Sourced`]).
//!
//! Only what the sources set is `Some`; the emitter writes nothing for `None`, so havip's
//! defaults apply there. Each field is documented by the key it becomes.

use std::net::IpAddr;
use std::time::Duration;

use havip_config::place::{At, Place};

/// A value, the place in the source it came from, and a short note written beside it.
#[derive(Debug, Clone, PartialEq)]
pub struct Sourced<T> {
    /// The value as havip reads it.
    pub value: T,
    /// Where the source wrote it (its key: the directive).
    pub place: Place,
    /// Why the import chose this value, when it is not what the source says word for word.
    pub note: Option<String>,
}

impl<T> Sourced<T> {
    /// `value`, written at `place`.
    pub fn new(value: T, place: &Place) -> Sourced<T> {
        Sourced {
            value,
            place: place.clone(),
            note: None,
        }
    }

    /// `value`, written at `place`, with a note.
    pub fn noted(value: T, place: &Place, note: impl Into<String>) -> Sourced<T> {
        Sourced {
            value,
            place: place.clone(),
            note: Some(note.into()),
        }
    }

    /// The same value and place with (another) note.
    pub fn with_note(self, note: impl Into<String>) -> Sourced<T> {
        Sourced {
            note: Some(note.into()),
            ..self
        }
    }

    /// Another value at the same place, without the note.
    pub fn map<U>(&self, f: impl FnOnce(&T) -> U) -> Sourced<U> {
        Sourced::new(f(&self.value), &self.place)
    }

    /// The value and its place, for the lints.
    pub fn at<U>(&self, f: impl FnOnce(&T) -> U) -> At<U> {
        At::new(f(&self.value), self.place.clone())
    }
}

/// One node's havip config: `docs/config.md` from top to bottom.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Draft {
    /// The files it was made from, for the header.
    pub inputs: Vec<String>,
    /// `[global]`.
    pub global: Global,
    /// `[log]`.
    pub log: Log,
    /// `[admin]`.
    pub admin: Option<Admin>,
    /// `[[service]]`.
    pub services: Vec<Service>,
    /// `[[vrrp]]`.
    pub vrrp: Vec<Vrrp>,
    /// `[[tracker]]`.
    pub trackers: Vec<Tracker>,
}

/// `[global]`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Global {
    /// `max_conns`.
    pub max_conns: Option<Sourced<u32>>,
    /// `workers`.
    pub workers: Option<Sourced<u32>>,
}

/// `[log]`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Log {
    /// `connections`.
    pub connections: Option<Sourced<bool>>,
}

/// `[admin]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Admin {
    /// The section it was made from, for the table's comment.
    pub from: Place,
    /// `listen`.
    pub listen: Sourced<String>,
    /// `auth`: `user:password` pairs for HTTP basic authentication.
    pub auth: Vec<Sourced<String>>,
}

/// `[service.health] check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// `"https"`.
    Https,
    /// `"http"`.
    Http,
    /// `"tcp"`.
    Tcp,
    /// `"none"`.
    None,
}

impl Check {
    /// The TOML value.
    pub fn as_str(self) -> &'static str {
        match self {
            Check::Https => "https",
            Check::Http => "http",
            Check::Tcp => "tcp",
            Check::None => "none",
        }
    }
}

/// `[[service]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    /// The section it was made from, for the table's comment.
    pub from: Place,
    /// Other sections it was made from (a frontend's backend, an nginx upstream).
    pub also_from: Vec<Place>,
    /// `name`.
    pub name: Sourced<String>,
    /// `listen`.
    pub listen: Vec<Sourced<String>>,
    /// `balance`.
    pub balance: Option<Sourced<&'static str>>,
    /// `retries`.
    pub retries: Option<Sourced<u32>>,
    /// `slow_start`.
    pub slow_start: Option<Sourced<Duration>>,
    /// `close_on_down`.
    pub close_on_down: Option<Sourced<bool>>,
    /// `[service.timeouts]`.
    pub timeouts: Timeouts,
    /// `[service.limits]`.
    pub limits: Limits,
    /// `[service.health]`.
    pub health: Health,
    /// `[service.passive]`.
    pub passive: Passive,
    /// `[[service.backend]]`.
    pub backends: Vec<Backend>,
}

impl Service {
    /// A service with only a name, made from `from`.
    pub fn new(name: Sourced<String>, from: Place) -> Service {
        Service {
            from,
            also_from: Vec::new(),
            name,
            listen: Vec::new(),
            balance: None,
            retries: None,
            slow_start: None,
            close_on_down: None,
            timeouts: Timeouts::default(),
            limits: Limits::default(),
            health: Health::default(),
            passive: Passive::default(),
            backends: Vec::new(),
        }
    }

    /// The ports this service listens on.
    pub fn listen_ports(&self) -> Vec<u16> {
        self.listen
            .iter()
            .filter_map(|l| l.value.rsplit_once(':').and_then(|(_, p)| p.parse().ok()))
            .collect()
    }
}

/// A timeout that may be turned off (`tunnel = "off"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrOff {
    /// `"off"`.
    Off,
    /// A duration.
    On(Duration),
}

/// `[service.timeouts]`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Timeouts {
    /// `connect`.
    pub connect: Option<Sourced<Duration>>,
    /// `queue`.
    pub queue: Option<Sourced<Duration>>,
    /// `client_idle`.
    pub client_idle: Option<Sourced<Duration>>,
    /// `server_idle`.
    pub server_idle: Option<Sourced<Duration>>,
    /// `tunnel`.
    pub tunnel: Option<Sourced<OrOff>>,
}

/// `[service.limits]`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Limits {
    /// `max_conns`.
    pub max_conns: Option<Sourced<u32>>,
    /// `max_queue`.
    pub max_queue: Option<Sourced<u32>>,
    /// `backlog`.
    pub backlog: Option<Sourced<u32>>,
}

/// `[service.health]`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Health {
    /// `check`.
    pub check: Option<Sourced<Check>>,
    /// `path`.
    pub path: Option<Sourced<String>>,
    /// `host`.
    pub host: Option<Sourced<String>>,
    /// `expect_status`: inclusive ranges.
    pub expect_status: Option<Sourced<Vec<(u16, u16)>>>,
    /// `interval`.
    pub interval: Option<Sourced<Duration>>,
    /// `fast_interval`.
    pub fast_interval: Option<Sourced<Duration>>,
    /// `down_interval`.
    pub down_interval: Option<Sourced<Duration>>,
    /// `timeout`.
    pub timeout: Option<Sourced<Duration>>,
    /// `rise`.
    pub rise: Option<Sourced<u32>>,
    /// `fall`.
    pub fall: Option<Sourced<u32>>,
    /// `port`.
    pub port: Option<Sourced<u16>>,
    /// `[service.health.tls]`.
    pub tls: Tls,
}

/// `[service.health.tls]`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tls {
    /// `verify`.
    pub verify: Option<Sourced<bool>>,
    /// `ca_file`.
    pub ca_file: Option<Sourced<String>>,
    /// `client_cert`.
    pub client_cert: Option<Sourced<String>>,
    /// `client_key`.
    pub client_key: Option<Sourced<String>>,
    /// `sni`.
    pub sni: Option<Sourced<String>>,
}

impl Tls {
    /// Whether nothing is set (the table is not written).
    pub fn is_empty(&self) -> bool {
        self.verify.is_none()
            && self.ca_file.is_none()
            && self.client_cert.is_none()
            && self.client_key.is_none()
            && self.sni.is_none()
    }
}

/// `[service.passive]`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Passive {
    /// `max_fails`.
    pub max_fails: Option<Sourced<u32>>,
    /// `fail_timeout`.
    pub fail_timeout: Option<Sourced<Duration>>,
}

/// `[[service.backend]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Backend {
    /// The line it was made from, for the table's comment.
    pub from: Place,
    /// `name`.
    pub name: Option<Sourced<String>>,
    /// `address`.
    pub address: Sourced<String>,
    /// `weight`.
    pub weight: Option<Sourced<u32>>,
    /// `max_conns`.
    pub max_conns: Option<Sourced<u32>>,
    /// `backup`.
    pub backup: Option<Sourced<bool>>,
}

impl Backend {
    /// A backend with only its address, made from `from`.
    pub fn new(address: Sourced<String>, from: Place) -> Backend {
        Backend {
            from,
            name: None,
            address,
            weight: None,
            max_conns: None,
            backup: None,
        }
    }

    /// The port of its address.
    pub fn port(&self) -> Option<u16> {
        self.address
            .value
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse().ok())
    }
}

/// A `virtual_addresses` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vip {
    /// `address` (without the prefix).
    pub address: IpAddr,
    /// The prefix length of `address`.
    pub prefix: u8,
    /// `interface`.
    pub interface: Option<String>,
    /// `label`.
    pub label: Option<String>,
}

impl Vip {
    /// `ADDRESS/PREFIX`.
    pub fn cidr(&self) -> String {
        format!("{}/{}", self.address, self.prefix)
    }
}

/// A `track` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackRef {
    /// `tracker`.
    pub tracker: String,
    /// `weight`.
    pub weight: Option<i32>,
}

/// `[vrrp.announce]`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Announce {
    /// `burst_count`.
    pub burst_count: Option<Sourced<u32>>,
    /// `burst_spacing`.
    pub burst_spacing: Option<Sourced<Duration>>,
    /// `second_burst_delay`.
    pub second_burst_delay: Option<Sourced<Duration>>,
    /// `refresh_interval`.
    pub refresh_interval: Option<Sourced<Duration>>,
    /// `refresh_count`.
    pub refresh_count: Option<Sourced<u32>>,
    /// `lower_priority_burst_count`.
    pub lower_priority_burst_count: Option<Sourced<u32>>,
}

impl Announce {
    /// Whether nothing is set (the table is not written).
    pub fn is_empty(&self) -> bool {
        self.burst_count.is_none()
            && self.burst_spacing.is_none()
            && self.second_burst_delay.is_none()
            && self.refresh_interval.is_none()
            && self.refresh_count.is_none()
            && self.lower_priority_burst_count.is_none()
    }
}

/// `[vrrp.notify]`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Notify {
    /// `command`.
    pub command: Option<Sourced<Vec<String>>>,
    /// `master`.
    pub master: Option<Sourced<Vec<String>>>,
    /// `backup`.
    pub backup: Option<Sourced<Vec<String>>>,
    /// `fault`.
    pub fault: Option<Sourced<Vec<String>>>,
    /// `stop`.
    pub stop: Option<Sourced<Vec<String>>>,
    /// `user`.
    pub user: Option<Sourced<String>>,
}

impl Notify {
    /// Whether no command is set (the table is not written).
    pub fn is_empty(&self) -> bool {
        self.command.is_none()
            && self.master.is_none()
            && self.backup.is_none()
            && self.fault.is_none()
            && self.stop.is_none()
    }
}

/// `[[vrrp]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Vrrp {
    /// The instance it was made from, for the table's comment.
    pub from: Place,
    /// `name`.
    pub name: Sourced<String>,
    /// `interface`.
    pub interface: Option<Sourced<String>>,
    /// `vrid`.
    pub vrid: Option<Sourced<u8>>,
    /// `version`.
    pub version: Option<Sourced<u8>>,
    /// `priority`.
    pub priority: Option<Sourced<u8>>,
    /// `advert_interval`.
    pub advert_interval: Option<Sourced<Duration>>,
    /// `preempt`.
    pub preempt: Option<Sourced<bool>>,
    /// `preempt_delay`.
    pub preempt_delay: Option<Sourced<Duration>>,
    /// `accept`.
    pub accept: Option<Sourced<bool>>,
    /// `virtual_addresses`.
    pub virtual_addresses: Vec<Sourced<Vip>>,
    /// `source`.
    pub source: Option<Sourced<IpAddr>>,
    /// `unicast_peers`; `Some(empty)` when the source has an empty peer list (multicast in
    /// fact).
    pub unicast_peers: Option<Sourced<Vec<IpAddr>>>,
    /// `check_unicast_source`.
    pub check_unicast_source: Option<Sourced<bool>>,
    /// `auth_pass`.
    pub auth_pass: Option<Sourced<String>>,
    /// `track`.
    pub track: Vec<Sourced<TrackRef>>,
    /// `[vrrp.announce]`.
    pub announce: Announce,
    /// `[vrrp.notify]`.
    pub notify: Notify,
    /// keepalived's `state MASTER`: not carried (havip has no initial state), kept for lints.
    pub initial_master: Option<Place>,
}

impl Vrrp {
    /// An instance with only a name, made from `from`.
    pub fn new(name: Sourced<String>, from: Place) -> Vrrp {
        Vrrp {
            from,
            name,
            interface: None,
            vrid: None,
            version: None,
            priority: None,
            advert_interval: None,
            preempt: None,
            preempt_delay: None,
            accept: None,
            virtual_addresses: Vec::new(),
            source: None,
            unicast_peers: None,
            check_unicast_source: None,
            auth_pass: None,
            track: Vec::new(),
            announce: Announce::default(),
            notify: Notify::default(),
            initial_master: None,
        }
    }
}

/// `[[tracker]] kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackerKind {
    /// `"script"`.
    Script,
    /// `"service"`.
    Service,
    /// `"listener"`.
    Listener,
    /// `"interface"`.
    Interface,
    /// `"process"`.
    Process,
    /// `"file"`.
    File,
}

impl TrackerKind {
    /// The TOML value.
    pub fn as_str(self) -> &'static str {
        match self {
            TrackerKind::Script => "script",
            TrackerKind::Service => "service",
            TrackerKind::Listener => "listener",
            TrackerKind::Interface => "interface",
            TrackerKind::Process => "process",
            TrackerKind::File => "file",
        }
    }
}

/// `[[tracker]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Tracker {
    /// The definition it was made from, for the table's comment.
    pub from: Place,
    /// `name`.
    pub name: Sourced<String>,
    /// `kind`.
    pub kind: Sourced<TrackerKind>,
    /// `weight`.
    pub weight: Option<Sourced<i32>>,
    /// `rise`.
    pub rise: Option<Sourced<u32>>,
    /// `fall`.
    pub fall: Option<Sourced<u32>>,
    /// `interval`.
    pub interval: Option<Sourced<Duration>>,
    /// `command`.
    pub command: Option<Sourced<Vec<String>>>,
    /// `timeout`.
    pub timeout: Option<Sourced<Duration>>,
    /// `user`.
    pub user: Option<Sourced<String>>,
    /// `service`.
    pub service: Option<Sourced<String>>,
    /// `min_healthy`.
    pub min_healthy: Option<Sourced<u32>>,
    /// `interface`.
    pub interface: Option<Sourced<String>>,
    /// `process`.
    pub process: Option<Sourced<String>>,
    /// `path`.
    pub path: Option<Sourced<String>>,
}

impl Tracker {
    /// A tracker with only a name and a kind, made from `from`.
    pub fn new(name: Sourced<String>, kind: Sourced<TrackerKind>, from: Place) -> Tracker {
        Tracker {
            from,
            name,
            kind,
            weight: None,
            rise: None,
            fall: None,
            interval: None,
            command: None,
            timeout: None,
            user: None,
            service: None,
            min_healthy: None,
            interface: None,
            process: None,
            path: None,
        }
    }
}
