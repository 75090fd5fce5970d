//! The one builder of havip node configs for tests, the benchmark and the cluster demo. It
//! writes TOML text, which the node under test reads with its real reader (`havip run
//! --config`), so a test exercises the same path as an operator's file. Named setters cover
//! what the tests use; [`Table::set`]-style `set` methods take any other key.
//!
//! ```
//! use havip_test_support::node_config::{Health, NodeConfig, Service, Tracker, Vrrp};
//! let text = NodeConfig::new()
//!     .grace("1s")
//!     .log_connections(false)
//!     .service(
//!         Service::new("api", "10.77.0.200:80")
//!             .health(Health::tcp().interval("200ms"))
//!             .backend("127.0.0.1:9000"),
//!     )
//!     .tracker(Tracker::service("backends", "api").min_healthy(1).weight(-50))
//!     .vrrp(
//!         Vrrp::new("VI_1", 42)
//!             .priority(100)
//!             .advert_interval("100ms")
//!             .vip("10.77.0.200/24")
//!             .track(&["backends"]),
//!     )
//!     .to_toml();
//! assert!(text.contains("[[vrrp]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvrid = 42\n"));
//! ```

use std::fmt::{self, Display, Write as _};
use std::time::Duration;

/// A TOML value as the node configs use them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A string (durations are strings: "100ms", "1s").
    Str(String),
    /// An integer.
    Int(i64),
    /// A boolean.
    Bool(bool),
    /// An array of strings.
    List(Vec<String>),
    /// A float, kept as its TOML text so that the value stays comparable (`0.5`).
    Float(String),
}

impl From<f64> for Value {
    fn from(x: f64) -> Self {
        // `{:?}` always writes a decimal point or an exponent: a TOML float, never an integer.
        Value::Float(format!("{x:?}"))
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(s.to_string())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(s)
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}
impl From<i64> for Value {
    fn from(n: i64) -> Self {
        Value::Int(n)
    }
}
impl From<i32> for Value {
    fn from(n: i32) -> Self {
        Value::Int(i64::from(n))
    }
}
impl From<u32> for Value {
    fn from(n: u32) -> Self {
        Value::Int(i64::from(n))
    }
}
impl From<u16> for Value {
    fn from(n: u16) -> Self {
        Value::Int(i64::from(n))
    }
}
impl From<u8> for Value {
    fn from(n: u8) -> Self {
        Value::Int(i64::from(n))
    }
}
impl From<&[&str]> for Value {
    fn from(items: &[&str]) -> Self {
        Value::List(items.iter().map(|s| s.to_string()).collect())
    }
}
impl From<Vec<String>> for Value {
    fn from(items: Vec<String>) -> Self {
        Value::List(items)
    }
}
impl From<Duration> for Value {
    /// Whole seconds as "Ns", else whole milliseconds as "Nms".
    fn from(d: Duration) -> Self {
        if d.subsec_nanos() == 0 {
            Value::Str(format!("{}s", d.as_secs()))
        } else {
            Value::Str(format!("{}ms", d.as_millis()))
        }
    }
}

impl Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Str(s) => write!(f, "{}", quote(s)),
            Value::Int(n) => write!(f, "{n}"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Float(x) => f.write_str(x),
            Value::List(items) => {
                let items: Vec<String> = items.iter().map(|s| quote(s)).collect();
                write!(f, "[{}]", items.join(", "))
            }
        }
    }
}

/// A TOML basic string.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The keys of one table, in the order they were set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    entries: Vec<(String, Value)>,
}

impl Table {
    /// Set `key` (replacing an earlier value of it).
    pub fn set(mut self, key: &str, value: impl Into<Value>) -> Table {
        let value = value.into();
        match self.entries.iter_mut().find(|(k, _)| k == key) {
            Some(entry) => entry.1 = value,
            None => self.entries.push((key.to_string(), value)),
        }
        self
    }

    fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn push_to(&self, out: &mut Vec<String>) {
        for (key, value) in &self.entries {
            out.push(format!("{key} = {value}"));
        }
    }

    fn list_mut(&mut self, key: &str) -> &mut Vec<String> {
        if !self.entries.iter().any(|(k, _)| k == key) {
            self.entries
                .push((key.to_string(), Value::List(Vec::new())));
        }
        match self.entries.iter_mut().find(|(k, _)| k == key) {
            Some((_, Value::List(items))) => items,
            _ => panic!("`{key}` is not a list"),
        }
    }
}

/// A whole node config.
#[derive(Debug, Clone, Default)]
pub struct NodeConfig {
    comment: Option<String>,
    global: Table,
    log: Table,
    admin: Table,
    control: Table,
    services: Vec<Service>,
    trackers: Vec<Tracker>,
    vrrp: Vec<Vrrp>,
}

impl NodeConfig {
    /// An empty config (everything at its default).
    pub fn new() -> NodeConfig {
        NodeConfig::default()
    }

    /// A comment line at the top of the file.
    pub fn comment(mut self, text: &str) -> NodeConfig {
        self.comment = Some(text.to_string());
        self
    }

    /// `[global] grace`: how long SIGTERM lets connections finish.
    pub fn grace(self, grace: impl Into<Value>) -> NodeConfig {
        self.global("grace", grace)
    }

    /// Any key of `[global]`.
    pub fn global(mut self, key: &str, value: impl Into<Value>) -> NodeConfig {
        self.global = self.global.set(key, value);
        self
    }

    /// `[log] level`.
    pub fn log_level(self, level: &str) -> NodeConfig {
        self.log("level", level)
    }

    /// `[log] connections`: one line per connection.
    pub fn log_connections(self, on: bool) -> NodeConfig {
        self.log("connections", on)
    }

    /// Any key of `[log]`.
    pub fn log(mut self, key: &str, value: impl Into<Value>) -> NodeConfig {
        self.log = self.log.set(key, value);
        self
    }

    /// `[admin] listen`: the admin endpoint (metrics, status).
    pub fn admin(self, listen: impl Display) -> NodeConfig {
        self.admin_key("listen", listen.to_string())
    }

    /// `[admin] commands = true`: the runtime commands the drill uses.
    pub fn admin_commands(self) -> NodeConfig {
        self.admin_key("commands", true)
    }

    /// Any key of `[admin]`.
    pub fn admin_key(mut self, key: &str, value: impl Into<Value>) -> NodeConfig {
        self.admin = self.admin.set(key, value);
        self
    }

    /// `[control] socket`: where the control socket goes. Without it the config says
    /// `socket = ""` (no control socket), so a test never touches `/run/havip`.
    pub fn control_socket(self, path: impl Display) -> NodeConfig {
        self.control("socket", path.to_string())
    }

    /// Any key of `[control]`.
    pub fn control(mut self, key: &str, value: impl Into<Value>) -> NodeConfig {
        self.control = self.control.set(key, value);
        self
    }

    /// One more `[[service]]`.
    pub fn service(mut self, service: Service) -> NodeConfig {
        self.services.push(service);
        self
    }

    /// One more `[[tracker]]`.
    pub fn tracker(mut self, tracker: Tracker) -> NodeConfig {
        self.trackers.push(tracker);
        self
    }

    /// One more `[[vrrp]]` instance.
    pub fn vrrp(mut self, vrrp: Vrrp) -> NodeConfig {
        self.vrrp.push(vrrp);
        self
    }

    /// The TOML text.
    pub fn to_toml(&self) -> String {
        let mut lines = Vec::new();
        if let Some(comment) = &self.comment {
            lines.push(format!("# {comment}"));
        }
        for (name, table) in [
            ("global", &self.global),
            ("log", &self.log),
            ("admin", &self.admin),
        ] {
            if !table.is_empty() {
                lines.push(format!("[{name}]"));
                table.push_to(&mut lines);
                lines.push(String::new());
            }
        }
        lines.push("[control]".into());
        if self.control.is_empty() {
            lines.push("socket = \"\"".into());
        } else {
            self.control.push_to(&mut lines);
        }
        lines.push(String::new());
        for service in &self.services {
            service.push_to(&mut lines);
        }
        for tracker in &self.trackers {
            lines.push("[[tracker]]".into());
            tracker.0.push_to(&mut lines);
            lines.push(String::new());
        }
        for vrrp in &self.vrrp {
            vrrp.push_to(&mut lines);
        }
        lines.join("\n") + "\n"
    }
}

impl Display for NodeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_toml())
    }
}

/// A `[[service]]`: a listener in front of backends.
#[derive(Debug, Clone)]
pub struct Service {
    table: Table,
    limits: Table,
    health: Option<Health>,
    backends: Vec<Table>,
}

impl Service {
    /// Service `name` listening on `listen` (e.g. `10.77.0.200:80`, `[fd77::200]:80`).
    pub fn new(name: &str, listen: impl Display) -> Service {
        Service {
            table: Table::default()
                .set("name", name)
                .set("listen", listen.to_string()),
            limits: Table::default(),
            health: None,
            backends: Vec::new(),
        }
    }

    /// `[service.health]`.
    pub fn health(mut self, health: Health) -> Service {
        self.health = Some(health);
        self
    }

    /// `[service.limits] max_conns`.
    pub fn max_conns(mut self, max: u32) -> Service {
        self.limits = self.limits.set("max_conns", max);
        self
    }

    /// One more `[[service.backend]]` at `address`.
    pub fn backend(mut self, address: impl Display) -> Service {
        self.backends
            .push(Table::default().set("address", address.to_string()));
        self
    }

    /// One more `[[service.backend]]` with a name.
    pub fn named_backend(mut self, name: &str, address: impl Display) -> Service {
        self.backends.push(
            Table::default()
                .set("name", name)
                .set("address", address.to_string()),
        );
        self
    }

    /// One more `[[service.backend]]` with a name and `backup = true` (used only while no
    /// primary is available).
    pub fn backup_backend(mut self, name: &str, address: impl Display) -> Service {
        self.backends.push(
            Table::default()
                .set("name", name)
                .set("address", address.to_string())
                .set("backup", true),
        );
        self
    }

    /// Any key of the `[[service]]` table.
    pub fn set(mut self, key: &str, value: impl Into<Value>) -> Service {
        self.table = self.table.set(key, value);
        self
    }

    fn push_to(&self, lines: &mut Vec<String>) {
        lines.push("[[service]]".into());
        self.table.push_to(lines);
        if !self.limits.is_empty() {
            lines.push("[service.limits]".into());
            self.limits.push_to(lines);
        }
        if let Some(health) = &self.health {
            lines.push("[service.health]".into());
            health.0.push_to(lines);
        }
        for backend in &self.backends {
            lines.push("[[service.backend]]".into());
            backend.push_to(lines);
        }
        lines.push(String::new());
    }
}

/// A `[service.health]` table: the active checks.
#[derive(Debug, Clone)]
pub struct Health(Table);

impl Health {
    /// `check = "tcp"`.
    pub fn tcp() -> Health {
        Health(Table::default().set("check", "tcp"))
    }

    /// `check = "http"` with `path`.
    pub fn http(path: &str) -> Health {
        Health(Table::default().set("check", "http").set("path", path))
    }

    /// `interval`: between checks of a backend in a steady state.
    pub fn interval(self, interval: impl Into<Value>) -> Health {
        self.set("interval", interval)
    }

    /// `fast_interval`: between checks while a transition is under way.
    pub fn fast_interval(self, interval: impl Into<Value>) -> Health {
        self.set("fast_interval", interval)
    }

    /// `timeout` of one check.
    pub fn timeout(self, timeout: impl Into<Value>) -> Health {
        self.set("timeout", timeout)
    }

    /// `rise`: passing checks that mark a backend up.
    pub fn rise(self, n: u32) -> Health {
        self.set("rise", n)
    }

    /// `fall`: failed checks that mark a backend down.
    pub fn fall(self, n: u32) -> Health {
        self.set("fall", n)
    }

    /// Any key of `[service.health]`.
    pub fn set(self, key: &str, value: impl Into<Value>) -> Health {
        Health(self.0.set(key, value))
    }
}

/// A `[[tracker]]`: something that moves a VRRP instance's priority.
#[derive(Debug, Clone)]
pub struct Tracker(Table);

impl Tracker {
    fn kind(name: &str, kind: &str) -> Tracker {
        Tracker(Table::default().set("name", name).set("kind", kind))
    }

    /// `kind = "service"`: how many of `service`'s backends are up.
    pub fn service(name: &str, service: &str) -> Tracker {
        Tracker::kind(name, "service").set("service", service)
    }

    /// `kind = "listener"`: whether `service`'s listener accepts.
    pub fn listener(name: &str, service: &str) -> Tracker {
        Tracker::kind(name, "listener").set("service", service)
    }

    /// `kind = "script"` running `command` (a string for the shell-free split, or a list).
    pub fn script(name: &str, command: impl Into<Value>) -> Tracker {
        Tracker::kind(name, "script").set("command", command)
    }

    /// `kind = "process"` watching the PID in `pidfile`.
    pub fn process(name: &str, pidfile: impl Display) -> Tracker {
        Tracker::kind(name, "process").set("pidfile", pidfile.to_string())
    }

    /// `kind = "file"` reading a number from `path`.
    pub fn file(name: &str, path: impl Display) -> Tracker {
        Tracker::kind(name, "file").set("path", path.to_string())
    }

    /// `kind = "interface"` watching `interface`'s link.
    pub fn interface(name: &str, interface: &str) -> Tracker {
        Tracker::kind(name, "interface").set("interface", interface)
    }

    /// `weight`: what it adds to (or takes from) the priority.
    pub fn weight(self, weight: i32) -> Tracker {
        self.set("weight", weight)
    }

    /// `min_healthy` (service trackers).
    pub fn min_healthy(self, n: u32) -> Tracker {
        self.set("min_healthy", n)
    }

    /// `interval` between looks.
    pub fn interval(self, interval: impl Into<Value>) -> Tracker {
        self.set("interval", interval)
    }

    /// `timeout` of one look (scripts).
    pub fn timeout(self, timeout: impl Into<Value>) -> Tracker {
        self.set("timeout", timeout)
    }

    /// Any key of the `[[tracker]]` table.
    pub fn set(self, key: &str, value: impl Into<Value>) -> Tracker {
        Tracker(self.0.set(key, value))
    }
}

/// A `[[vrrp]]` instance.
#[derive(Debug, Clone)]
pub struct Vrrp {
    table: Table,
    notify: Table,
}

impl Vrrp {
    /// Instance `name` of VRID `vrid` on `eth0` (the lab's interface).
    pub fn new(name: &str, vrid: u8) -> Vrrp {
        Vrrp {
            table: Table::default()
                .set("name", name)
                .set("interface", "eth0")
                .set("vrid", vrid),
            notify: Table::default(),
        }
    }

    /// `interface`.
    pub fn interface(self, interface: &str) -> Vrrp {
        self.set("interface", interface)
    }

    /// `version`: 2 or 3.
    pub fn version(self, version: u8) -> Vrrp {
        self.set("version", version)
    }

    /// `priority`.
    pub fn priority(self, priority: u8) -> Vrrp {
        self.set("priority", priority)
    }

    /// `advert_interval`.
    pub fn advert_interval(self, interval: impl Into<Value>) -> Vrrp {
        self.set("advert_interval", interval)
    }

    /// One more of `virtual_addresses` ("10.77.0.200/24").
    pub fn vip(mut self, cidr: impl Display) -> Vrrp {
        self.table
            .list_mut("virtual_addresses")
            .push(cidr.to_string());
        self
    }

    /// `track`: the trackers that move its priority.
    pub fn track(self, trackers: &[&str]) -> Vrrp {
        self.set("track", trackers)
    }

    /// `auth_pass` (v2 PASS authentication).
    pub fn auth_pass(self, password: &str) -> Vrrp {
        self.set("auth_pass", password)
    }

    /// `source` and `unicast_peers`: unicast adverts.
    pub fn unicast(self, source: impl Display, peers: &[String]) -> Vrrp {
        self.set("source", source.to_string())
            .set("unicast_peers", peers.to_vec())
    }

    /// `preempt_delay`.
    pub fn preempt_delay(self, delay: impl Into<Value>) -> Vrrp {
        self.set("preempt_delay", delay)
    }

    /// Any key of `[vrrp.notify]`.
    pub fn notify(mut self, key: &str, value: impl Into<Value>) -> Vrrp {
        self.notify = self.notify.set(key, value);
        self
    }

    /// Any key of the `[[vrrp]]` table.
    pub fn set(mut self, key: &str, value: impl Into<Value>) -> Vrrp {
        self.table = self.table.set(key, value);
        self
    }

    fn push_to(&self, lines: &mut Vec<String>) {
        lines.push("[[vrrp]]".into());
        self.table.push_to(lines);
        if !self.notify.is_empty() {
            lines.push("[vrrp.notify]".into());
            self.notify.push_to(lines);
        }
        lines.push(String::new());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_comes_out_in_toml_order_with_strings_escaped() {
        let text = NodeConfig::new()
            .comment("a test node")
            .grace(Duration::from_secs(1))
            .log_connections(false)
            .admin("127.0.0.1:8404")
            .service(
                Service::new("api", "[fd77::200]:80")
                    .max_conns(1)
                    .health(Health::tcp().interval(Duration::from_millis(200)).rise(1))
                    .named_backend("b1", "127.0.0.1:9000")
                    .backend("127.0.0.1:9001"),
            )
            .tracker(Tracker::script("s", &["/bin/sh", "-c", "test -e x"][..]).weight(-10))
            .vrrp(
                Vrrp::new("VI_1", 42)
                    .vip("fd77::200/64")
                    .vip("fd77::201/64")
                    .notify("command", r#"echo "$1" >> C:\notes"#),
            )
            .to_toml();
        assert_eq!(
            text,
            r#"# a test node
[global]
grace = "1s"

[log]
connections = false

[admin]
listen = "127.0.0.1:8404"

[control]
socket = ""

[[service]]
name = "api"
listen = "[fd77::200]:80"
[service.limits]
max_conns = 1
[service.health]
check = "tcp"
interval = "200ms"
rise = 1
[[service.backend]]
name = "b1"
address = "127.0.0.1:9000"
[[service.backend]]
address = "127.0.0.1:9001"

[[tracker]]
name = "s"
kind = "script"
command = ["/bin/sh", "-c", "test -e x"]
weight = -10

[[vrrp]]
name = "VI_1"
interface = "eth0"
vrid = 42
virtual_addresses = ["fd77::200/64", "fd77::201/64"]
[vrrp.notify]
command = "echo \"$1\" >> C:\\notes"

"#
        );
    }

    #[test]
    fn setting_a_key_again_replaces_it() {
        let vrrp = Vrrp::new("VI_1", 1).priority(100).priority(90);
        let mut lines = Vec::new();
        vrrp.push_to(&mut lines);
        assert_eq!(
            lines.iter().filter(|l| l.starts_with("priority")).count(),
            1
        );
        assert!(lines.contains(&"priority = 90".to_string()));
    }
}
