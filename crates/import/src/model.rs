//! The havip config an import produces, before it is written as TOML: the same tables and
//! keys as `docs/config.md`, each value with the source line it came from ([`V`]).
//!
//! Only what the sources set is `Some`; the emitter writes nothing for `None`, so havip's
//! defaults apply there.

use std::net::IpAddr;
use std::time::Duration;

use super::{Loc, Src};

/// A value and where it came from; `note` is a short explanation written beside it.
#[derive(Debug, Clone, PartialEq)]
pub struct V<T> {
    pub value: T,
    pub src: Option<Src>,
    pub note: Option<String>,
}

impl<T> V<T> {
    pub fn new(value: T, src: &Src) -> V<T> {
        V {
            value,
            src: Some(src.clone()),
            note: None,
        }
    }

    pub fn noted(value: T, src: &Src, note: impl Into<String>) -> V<T> {
        V {
            value,
            src: Some(src.clone()),
            note: Some(note.into()),
        }
    }

    pub fn loc(&self) -> Option<&Loc> {
        self.src.as_ref().map(|s| &s.loc)
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config {
    /// The files this config was made from, for the header.
    pub inputs: Vec<String>,
    pub global: Global,
    pub log: Log,
    pub admin: Option<Admin>,
    pub services: Vec<Service>,
    pub vrrp: Vec<Vrrp>,
    pub trackers: Vec<Tracker>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Global {
    pub max_conns: Option<V<u32>>,
    pub workers: Option<V<u32>>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Log {
    pub connections: Option<V<bool>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Admin {
    pub from: Src,
    pub listen: V<String>,
    /// `user:password` pairs for HTTP basic authentication.
    pub auth: Vec<V<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    Https,
    Http,
    Tcp,
    None,
}

impl Check {
    pub fn as_str(self) -> &'static str {
        match self {
            Check::Https => "https",
            Check::Http => "http",
            Check::Tcp => "tcp",
            Check::None => "none",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    /// The section(s) it was made from, for the table's comment.
    pub from: Src,
    pub also_from: Vec<Src>,
    pub name: V<String>,
    pub listen: Vec<V<String>>,
    pub balance: Option<V<&'static str>>,
    pub retries: Option<V<u32>>,
    pub slow_start: Option<V<Duration>>,
    pub close_on_down: Option<V<bool>>,
    pub timeouts: Timeouts,
    pub limits: Limits,
    pub health: Health,
    pub passive: Passive,
    pub backends: Vec<Backend>,
}

impl Service {
    pub fn new(name: V<String>, from: Src) -> Service {
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
    Off,
    On(Duration),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Timeouts {
    pub connect: Option<V<Duration>>,
    pub queue: Option<V<Duration>>,
    pub client_idle: Option<V<Duration>>,
    pub server_idle: Option<V<Duration>>,
    pub tunnel: Option<V<OrOff>>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Limits {
    pub max_conns: Option<V<u32>>,
    pub max_queue: Option<V<u32>>,
    pub backlog: Option<V<u32>>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Health {
    pub check: Option<V<Check>>,
    pub path: Option<V<String>>,
    pub host: Option<V<String>>,
    pub expect_status: Option<V<Vec<(u16, u16)>>>,
    pub interval: Option<V<Duration>>,
    pub fast_interval: Option<V<Duration>>,
    pub down_interval: Option<V<Duration>>,
    pub timeout: Option<V<Duration>>,
    pub rise: Option<V<u32>>,
    pub fall: Option<V<u32>>,
    pub port: Option<V<u16>>,
    pub tls: Tls,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tls {
    pub verify: Option<V<bool>>,
    pub ca_file: Option<V<String>>,
    pub client_cert: Option<V<String>>,
    pub client_key: Option<V<String>>,
    pub sni: Option<V<String>>,
}

impl Tls {
    pub fn is_empty(&self) -> bool {
        self.verify.is_none()
            && self.ca_file.is_none()
            && self.client_cert.is_none()
            && self.client_key.is_none()
            && self.sni.is_none()
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Passive {
    pub max_fails: Option<V<u32>>,
    pub fail_timeout: Option<V<Duration>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Backend {
    pub from: Src,
    pub name: Option<V<String>>,
    pub address: V<String>,
    pub weight: Option<V<u32>>,
    pub max_conns: Option<V<u32>>,
    pub backup: Option<V<bool>>,
}

impl Backend {
    pub fn port(&self) -> Option<u16> {
        self.address
            .value
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse().ok())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vip {
    pub address: IpAddr,
    pub prefix: u8,
    pub interface: Option<String>,
    pub label: Option<String>,
}

impl Vip {
    pub fn cidr(&self) -> String {
        format!("{}/{}", self.address, self.prefix)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackRef {
    pub tracker: String,
    pub weight: Option<i32>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Announce {
    pub burst_count: Option<V<u32>>,
    pub burst_spacing: Option<V<Duration>>,
    pub second_burst_delay: Option<V<Duration>>,
    pub refresh_interval: Option<V<Duration>>,
    pub refresh_count: Option<V<u32>>,
    pub lower_priority_burst_count: Option<V<u32>>,
}

impl Announce {
    pub fn is_empty(&self) -> bool {
        self.burst_count.is_none()
            && self.burst_spacing.is_none()
            && self.second_burst_delay.is_none()
            && self.refresh_interval.is_none()
            && self.refresh_count.is_none()
            && self.lower_priority_burst_count.is_none()
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Notify {
    pub command: Option<V<Vec<String>>>,
    pub master: Option<V<Vec<String>>>,
    pub backup: Option<V<Vec<String>>>,
    pub fault: Option<V<Vec<String>>>,
    pub stop: Option<V<Vec<String>>>,
    pub user: Option<V<String>>,
}

impl Notify {
    pub fn is_empty(&self) -> bool {
        self.command.is_none()
            && self.master.is_none()
            && self.backup.is_none()
            && self.fault.is_none()
            && self.stop.is_none()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Vrrp {
    pub from: Src,
    pub name: V<String>,
    pub interface: Option<V<String>>,
    pub vrid: Option<V<u8>>,
    pub version: Option<V<u8>>,
    pub priority: Option<V<u8>>,
    pub advert_interval: Option<V<Duration>>,
    pub preempt: Option<V<bool>>,
    pub preempt_delay: Option<V<Duration>>,
    pub accept: Option<V<bool>>,
    pub virtual_addresses: Vec<V<Vip>>,
    pub source: Option<V<IpAddr>>,
    /// `Some(empty)` when the source has an empty peer list (multicast in fact).
    pub unicast_peers: Option<V<Vec<IpAddr>>>,
    pub check_unicast_source: Option<V<bool>>,
    pub auth_pass: Option<V<String>>,
    pub track: Vec<V<TrackRef>>,
    pub announce: Announce,
    pub notify: Notify,
    /// keepalived's `state MASTER`: not carried (havip has no initial state), kept for lints.
    pub initial_master: Option<Src>,
}

impl Vrrp {
    pub fn new(name: V<String>, from: Src) -> Vrrp {
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackerKind {
    Script,
    Service,
    Listener,
    Interface,
    Process,
    File,
}

impl TrackerKind {
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

#[derive(Debug, Clone, PartialEq)]
pub struct Tracker {
    pub from: Src,
    pub name: V<String>,
    pub kind: V<TrackerKind>,
    pub weight: Option<V<i32>>,
    pub rise: Option<V<u32>>,
    pub fall: Option<V<u32>>,
    pub interval: Option<V<Duration>>,
    pub command: Option<V<Vec<String>>>,
    pub timeout: Option<V<Duration>>,
    pub user: Option<V<String>>,
    pub service: Option<V<String>>,
    pub min_healthy: Option<V<u32>>,
    pub interface: Option<V<String>>,
    pub process: Option<V<String>>,
    pub path: Option<V<String>>,
}

impl Tracker {
    pub fn new(name: V<String>, kind: V<TrackerKind>, from: Src) -> Tracker {
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
