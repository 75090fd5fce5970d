//! `havip import`: turn the configs users arrive with (haproxy.cfg, keepalived.conf, an nginx
//! stream config) into havip's TOML, and list, line by line, what could not be carried over.
//!
//! Each source format has its own module: a small lexer and parser into a line-numbered tree
//! (pure: text in, tree out, never a panic on any input) and a mapping from that tree into
//! [`model::Config`], where every value remembers the file and line it came from. [`emit`]
//! writes the model as TOML, deterministically, each value commented with its source line.
//! [`Report`] collects what was not carried over, warnings about traps (see [`havip_config::lint`])
//! and syntax errors.
//!
//! A havip config is per node, as a keepalived config is: given several keepalived files (one
//! per node), [`import`] returns one config per file, each with the balancer's services.

pub mod emit;
pub mod glob;
pub mod haproxy;
pub mod keepalived;
pub mod model;
pub mod nginx;
pub mod script;
pub mod text;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use havip_config::lint;
use havip_config::place::{At, Place};

/// Where something was written: file (as given on the command line, or resolved from an
/// include), 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Loc {
    pub file: Arc<str>,
    pub line: u32,
    pub col: u32,
}

impl Loc {
    pub fn new(file: &Arc<str>, line: u32, col: u32) -> Loc {
        Loc {
            file: file.clone(),
            line,
            col,
        }
    }
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.col)
    }
}

/// A source value's origin: its location and the directive it was written with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Src {
    pub loc: Loc,
    pub directive: String,
}

impl Src {
    pub fn new(loc: Loc, directive: impl Into<String>) -> Src {
        Src {
            loc,
            directive: directive.into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// A directive (or part of one) that the havip config does not carry.
    Skipped,
    /// A trap: the config will not do what its author probably thinks (see [`havip_config::lint`]).
    Warning,
    /// The input is not valid; nothing is written.
    Error,
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub loc: Loc,
    pub directive: String,
    pub severity: Severity,
    pub message: String,
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.severity {
            Severity::Skipped => "not carried over",
            Severity::Warning => "warning",
            Severity::Error => "error",
        };
        write!(
            f,
            "{}: {}: {what}: {}",
            self.loc, self.directive, self.message
        )
    }
}

/// Everything the import did not carry over, warned about, or could not read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub notes: Vec<Note>,
}

impl Report {
    pub fn add(
        &mut self,
        severity: Severity,
        loc: &Loc,
        directive: &str,
        message: impl Into<String>,
    ) {
        let note = Note {
            loc: loc.clone(),
            directive: directive.to_string(),
            severity,
            message: message.into(),
        };
        if !self.notes.contains(&note) {
            self.notes.push(note);
        }
    }

    pub fn skip(&mut self, loc: &Loc, directive: &str, message: impl Into<String>) {
        self.add(Severity::Skipped, loc, directive, message);
    }

    pub fn warn(&mut self, loc: &Loc, directive: &str, message: impl Into<String>) {
        self.add(Severity::Warning, loc, directive, message);
    }

    pub fn error(&mut self, loc: &Loc, directive: &str, message: impl Into<String>) {
        self.add(Severity::Error, loc, directive, message);
    }

    pub fn has_errors(&self) -> bool {
        self.notes.iter().any(|n| n.severity == Severity::Error)
    }

    pub fn count(&self, severity: Severity) -> usize {
        self.notes.iter().filter(|n| n.severity == severity).count()
    }

    /// `N not carried over, M warning(s)`: the end of `havip import`'s report.
    pub fn summary(&self) -> String {
        format!(
            "{} not carried over, {} warning(s)",
            self.count(Severity::Skipped),
            self.count(Severity::Warning)
        )
    }

    /// Notes in a stable order: by file (in the order files were first mentioned), line and
    /// column; notes at the same place keep the order they were added in.
    pub fn sorted(&self) -> Vec<Note> {
        let mut files: Vec<Arc<str>> = Vec::new();
        for n in &self.notes {
            if !files.contains(&n.loc.file) {
                files.push(n.loc.file.clone());
            }
        }
        let mut out = self.notes.clone();
        out.sort_by_key(|n| {
            let rank = files.iter().position(|f| *f == n.loc.file).unwrap_or(0);
            (rank, n.loc.line, n.loc.col)
        });
        out
    }
}

/// What to import; any subset.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    pub haproxy: Option<PathBuf>,
    pub keepalived: Vec<PathBuf>,
    pub nginx: Option<PathBuf>,
    /// Track scripts to read instead of the path keepalived would run: `(script path as
    /// written in keepalived.conf or None to match by file name, file to read)`.
    pub scripts: Vec<ScriptFile>,
}

/// A track script's content given on the command line (`--script [PATH=]FILE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptFile {
    /// The script path as keepalived.conf names it; `None`: match by file name.
    pub path_in_config: Option<String>,
    pub file: PathBuf,
}

impl ScriptFile {
    /// `PATH=FILE` or `FILE`.
    pub fn parse(arg: &str) -> ScriptFile {
        match arg.split_once('=') {
            Some((path, file)) if !path.is_empty() && !file.is_empty() => ScriptFile {
                path_in_config: Some(path.to_string()),
                file: PathBuf::from(file),
            },
            _ => ScriptFile {
                path_in_config: None,
                file: PathBuf::from(arg),
            },
        }
    }
}

/// One generated havip config.
#[derive(Debug, Clone)]
pub struct Node {
    /// The keepalived file this node's VRRP part came from, if any.
    pub keepalived: Option<PathBuf>,
    /// File-name-friendly node name (the keepalived file's stem), when there are several.
    pub name: Option<String>,
    pub config: model::Config,
}

/// The result of an import: one config per node and the report.
#[derive(Debug, Clone)]
pub struct Imported {
    pub nodes: Vec<Node>,
    pub report: Report,
}

/// The display name of a path given on the command line: as given.
pub fn display(path: &Path) -> Arc<str> {
    Arc::from(path.to_string_lossy().as_ref())
}

/// Read one input file; a failure is reported as an error at line 1 of that file.
pub fn read_input(path: &Path, what: &str, report: &mut Report) -> Option<String> {
    match std::fs::read(path) {
        Ok(bytes) => Some(String::from_utf8_lossy(&bytes).into_owned()),
        Err(e) => {
            report.error(
                &Loc::new(&display(path), 1, 1),
                what,
                format!("cannot read: {e}"),
            );
            None
        }
    }
}

/// Import the given inputs: parse each, map the balancer configs into services (shared by
/// every node) and each keepalived config into one node's VRRP instances and trackers.
pub fn import(inputs: &Inputs, interfaces: &dyn lint::Interfaces) -> Imported {
    let mut report = Report::default();
    let mut services = ServicesOut::default();
    let mut sources: Vec<Arc<str>> = Vec::new();

    if let Some(path) = &inputs.haproxy {
        sources.push(display(path));
        if let Some(text) = read_input(path, "haproxy", &mut report) {
            let cfg = haproxy::parse(&display(path), &text, &mut report);
            let mapped = haproxy::map(&cfg, &mut report);
            services.add(mapped, Proxy::Haproxy);
        }
    }
    if let Some(path) = &inputs.nginx {
        sources.push(display(path));
        if let Some(text) = read_input(path, "nginx", &mut report) {
            let tree = nginx::parse_file(path, &text, &mut report);
            let mapped = nginx::map(&tree, &mut report);
            services.add(mapped, Proxy::Nginx);
        }
    }
    services.dedup_names(&mut report);

    let mut nodes = Vec::new();
    if inputs.keepalived.is_empty() {
        let mut config = services.base.clone();
        config.inputs = sources.iter().map(|s| s.to_string()).collect();
        nodes.push(Node {
            keepalived: None,
            name: None,
            config,
        });
    } else {
        let names = node_names(&inputs.keepalived);
        let ctx = keepalived::Context {
            services: &services.base.services,
            origins: &services.origin,
            scripts: &inputs.scripts,
        };
        let several = inputs.keepalived.len() > 1;
        let mut vrrp_sets = Vec::new();
        for (path, name) in inputs.keepalived.iter().zip(names) {
            let Some(tree) = keepalived::load(path, &mut report) else {
                continue;
            };
            let mapped = keepalived::map(&tree, &ctx, &mut report);
            let mut config = services.base.clone();
            let mut list: Vec<String> = sources.iter().map(|s| s.to_string()).collect();
            list.extend(tree.files.iter().map(|f| f.to_string()));
            list.extend(mapped.read_scripts.iter().cloned());
            config.inputs = list;
            config.vrrp = mapped.vrrp;
            config.trackers = mapped.trackers;
            vrrp_sets.push(config.vrrp.clone());
            nodes.push(Node {
                keepalived: Some(path.clone()),
                name: several.then_some(name),
                config,
            });
        }
        if several {
            keepalived::check_set(&vrrp_sets, &mut report);
        }
    }
    for node in &nodes {
        for w in lint::lint(&facts(&node.config), interfaces) {
            let loc = Loc {
                file: w.place.file.clone(),
                line: w.place.line,
                col: w.place.column,
            };
            report.warn(&loc, &w.place.key, w.message);
        }
    }
    Imported { nodes, report }
}

impl Imported {
    /// The report lines that concern one node: those about its input files.
    pub fn notes_for(&self, node: &Node) -> Vec<Note> {
        self.report
            .sorted()
            .into_iter()
            .filter(|n| node.config.inputs.iter().any(|i| **i == *n.loc.file))
            .collect()
    }
}

fn place(src: &Option<Src>, fallback: &Src) -> Place {
    let s = src.as_ref().unwrap_or(fallback);
    Place::new(&s.loc.file, s.loc.line, s.loc.col, s.directive.clone())
}

fn at<T: Clone, U>(v: &model::V<T>, fallback: &Src, f: impl Fn(&T) -> U) -> At<U> {
    At::new(f(&v.value), place(&v.src, fallback))
}

/// What the lints need from an imported config, each value placed at its source line.
pub fn facts(config: &model::Config) -> lint::Facts {
    let mut facts = lint::Facts::default();
    for s in &config.services {
        let mut ports = s.listen_ports();
        ports.extend(s.backends.iter().filter_map(|b| b.port()));
        let http = matches!(
            s.health.check.as_ref().map(|c| c.value),
            Some(model::Check::Http | model::Check::Https)
        );
        facts.services.push(lint::ServiceFacts {
            name: s.name.value.clone(),
            place: place(&Some(s.from.clone()), &s.from),
            ports,
            client_idle: s
                .timeouts
                .client_idle
                .as_ref()
                .map(|v| at(v, &s.from, |d| *d)),
            server_idle: s
                .timeouts
                .server_idle
                .as_ref()
                .map(|v| at(v, &s.from, |d| *d)),
            tunnel: s.timeouts.tunnel.as_ref().map(|v| {
                at(v, &s.from, |t| match t {
                    model::OrOff::Off => None,
                    model::OrOff::On(d) => Some(*d),
                })
            }),
            http_path: if http {
                s.health
                    .path
                    .as_ref()
                    .map(|v| at(v, &s.from, String::clone))
            } else {
                None
            },
        });
    }
    for v in &config.vrrp {
        facts.vrrp.push(lint::VrrpFacts {
            name: v.name.value.clone(),
            place: place(&Some(v.from.clone()), &v.from),
            interface: v.interface.as_ref().map(|x| at(x, &v.from, String::clone)),
            vrid: v.vrid.as_ref().map(|x| at(x, &v.from, |n| *n)),
            version: v.version.as_ref().map_or(3, |x| x.value),
            advert: v.advert_interval.as_ref().map(|x| at(x, &v.from, |d| *d)),
            auth_pass: v.auth_pass.as_ref().map(|x| at(x, &v.from, String::clone)),
            unicast_peers: v.unicast_peers.as_ref().map(|x| at(x, &v.from, Vec::clone)),
            source: v.source.as_ref().map(|x| at(x, &v.from, |a| *a)),
            vips: v
                .virtual_addresses
                .iter()
                .map(|a| {
                    at(a, &v.from, |vip| {
                        (vip.address, vip.prefix, vip.interface.clone())
                    })
                })
                .collect(),
        });
    }
    facts
}

/// Which proxy a service was imported from (a track script checking that proxy's process
/// becomes a check of havip's own listeners).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proxy {
    Haproxy,
    Nginx,
}

impl Proxy {
    pub fn process_names(self) -> &'static [&'static str] {
        match self {
            Proxy::Haproxy => &["haproxy"],
            Proxy::Nginx => &["nginx", "kube-nginx"],
        }
    }
}

#[derive(Debug, Default)]
struct ServicesOut {
    base: model::Config,
    /// For each service, the proxy it came from.
    origin: Vec<Proxy>,
}

impl ServicesOut {
    fn add(&mut self, mapped: model::Config, proxy: Proxy) {
        let base = &mut self.base;
        if base.global.max_conns.is_none() {
            base.global.max_conns = mapped.global.max_conns;
        }
        if base.global.workers.is_none() {
            base.global.workers = mapped.global.workers;
        }
        if base.log.connections.is_none() {
            base.log.connections = mapped.log.connections;
        }
        if base.admin.is_none() {
            base.admin = mapped.admin;
        }
        self.origin
            .extend(std::iter::repeat_n(proxy, mapped.services.len()));
        base.services.extend(mapped.services);
    }

    /// Service names must be unique; a name used by both inputs gets a suffix.
    fn dedup_names(&mut self, report: &mut Report) {
        let mut seen: Vec<String> = Vec::new();
        for s in &mut self.base.services {
            let mut name = s.name.value.clone();
            let mut n = 2;
            while seen.contains(&name) {
                name = format!("{}-{n}", s.name.value);
                n += 1;
            }
            if name != s.name.value {
                let loc = s
                    .name
                    .src
                    .as_ref()
                    .map_or_else(|| s.from.loc.clone(), |src| src.loc.clone());
                report.skip(
                    &loc,
                    "name",
                    format!(
                        "another imported service is already named {:?}; this one is named {name:?}",
                        s.name.value
                    ),
                );
                s.name.value = name.clone();
            }
            seen.push(name);
        }
    }
}

/// Where each node's config goes: `None` is standard output.
///
/// One node: `OUT` as given (a directory gets `havip.toml`, or the keepalived file's name),
/// or standard output. Several nodes: `OUT` must be given; a directory (existing, or ending
/// in `/`) gets `<node>.toml` each, a file name gets the node's name inserted before its
/// extension (`havip.toml` -> `havip.master1.toml`).
pub fn output_paths(nodes: &[Node], out: Option<&Path>) -> Result<Vec<Option<PathBuf>>, String> {
    let is_dir = |p: &Path| p.is_dir() || p.to_string_lossy().ends_with('/');
    match (nodes.len(), out) {
        (_, None) if nodes.len() <= 1 => Ok(vec![None; nodes.len()]),
        (_, None) => Err(format!(
            "{} keepalived files make {} configs, one per node: give -o DIR (or -o FILE.toml for FILE.<node>.toml)",
            nodes.len(),
            nodes.len()
        )),
        (1, Some(p)) if !is_dir(p) => Ok(vec![Some(p.to_path_buf())]),
        (_, Some(p)) if is_dir(p) => Ok(nodes
            .iter()
            .map(|n| {
                let name = n.name.clone().or_else(|| {
                    n.keepalived
                        .as_ref()
                        .and_then(|k| k.file_stem())
                        .map(|s| s.to_string_lossy().into_owned())
                });
                Some(p.join(format!("{}.toml", name.unwrap_or_else(|| "havip".into()))))
            })
            .collect()),
        (_, Some(p)) => {
            let stem = p
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "havip".into());
            let ext = p
                .extension()
                .map(|e| e.to_string_lossy().into_owned())
                .unwrap_or_else(|| "toml".into());
            Ok(nodes
                .iter()
                .map(|n| {
                    let node = n.name.clone().unwrap_or_else(|| "node".into());
                    Some(p.with_file_name(format!("{stem}.{node}.{ext}")))
                })
                .collect())
        }
    }
}

/// A name per keepalived file, for output file names: its stem; when stems collide, the
/// parent directory's name goes in front (`master1/keepalived.conf` is
/// `master1-keepalived`), then a number makes it unique.
fn node_names(paths: &[PathBuf]) -> Vec<String> {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                    c
                } else {
                    '-'
                }
            })
            .collect()
    };
    let stem = |p: &PathBuf| -> String {
        p.file_stem()
            .map(|s| clean(&s.to_string_lossy()))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "node".to_string())
    };
    let stems: Vec<String> = paths.iter().map(stem).collect();
    let mut out: Vec<String> = Vec::new();
    for (p, s) in paths.iter().zip(&stems) {
        let mut base = s.clone();
        if stems.iter().filter(|o| *o == s).count() > 1 {
            if let Some(parent) = p
                .parent()
                .and_then(|d| d.file_name())
                .map(|d| clean(&d.to_string_lossy()))
                .filter(|d| !d.is_empty())
            {
                base = format!("{parent}-{s}");
            }
        }
        let mut name = base.clone();
        let mut n = 2;
        while out.contains(&name) {
            name = format!("{base}-{n}");
            n += 1;
        }
        out.push(name);
    }
    out
}

/// Make a name fit havip's rule for names (letters, digits, `-`, `_`, `.`).
pub fn sanitize_name(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    if s.is_empty() {
        "unnamed".to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests;
