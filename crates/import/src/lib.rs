//! `havip import`: turn the configs users arrive with (haproxy.cfg, keepalived.conf, an nginx
//! stream config) into havip's TOML, and list, line by line, what could not be carried over.
//!
//! Each source format is read in three steps, one module each: a lexer (text into words
//! that remember their [`Place`]), a parser (words into the format's tree: HAProxy's
//! sections, keepalived's and nginx's blocks, with includes read), and a mapping from that
//! tree into a [`model::Draft`], where every value remembers the place it came from. Lexers
//! and parsers are pure (text in, tree out, never a panic on any input) apart from reading
//! included files. [`emit`] writes a draft as TOML, deterministically, each value commented
//! with its source line. The [`Report`] collects what was not carried over, warnings about
//! traps (see [`havip_config::lint`]) and syntax errors.
//!
//! A havip config is per node, as a keepalived config is: given several keepalived files (one
//! per node), [`import`] returns one config per file, each with the balancer's services.
//! Each config is read back by havip's own reader before it is returned: what havip would
//! refuse is an error at the source line it came from, so nothing invalid is written.

#![warn(missing_docs)]

pub mod emit;
pub mod facts;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
pub mod glob;
pub mod haproxy;
mod input;
pub mod keepalived;
pub mod model;
pub mod nginx;
mod output;
mod report;
pub mod syntax;
pub mod text;
mod validate;

use std::path::PathBuf;
use std::sync::Arc;

use havip_config::lint;
use havip_config::place::Place;

pub use facts::facts;
pub use input::{display, read_input, Inputs, ScriptFile};
pub use output::{node_names, output_paths, OutputError};
pub use report::{Note, Report, Severity};

/// One generated havip config.
#[derive(Debug, Clone)]
pub struct Node {
    /// The keepalived file this node's VRRP part came from, if any.
    pub keepalived: Option<PathBuf>,
    /// File-name-friendly node name (the keepalived file's stem), when there are several.
    pub name: Option<String>,
    /// The config.
    pub draft: model::Draft,
}

/// The result of an import: one config per node and the report.
#[derive(Debug, Clone)]
pub struct Imported {
    /// One per keepalived file (one without keepalived).
    pub nodes: Vec<Node>,
    /// Everything not carried over, warned about, or invalid.
    pub report: Report,
}

impl Imported {
    /// The report lines that concern one node: those about its input files.
    pub fn notes_for(&self, node: &Node) -> Vec<Note> {
        self.report
            .sorted()
            .into_iter()
            .filter(|n| node.draft.inputs.iter().any(|i| **i == *n.place.file))
            .collect()
    }
}

/// The balancer a service was imported from: a track script that checks that balancer's
/// process becomes a check of havip's own listeners, since havip replaces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Balancer {
    /// HAProxy.
    Haproxy,
    /// nginx.
    Nginx,
}

impl Balancer {
    /// The process names a track script may check it by.
    pub fn process_names(self) -> &'static [&'static str] {
        match self {
            Balancer::Haproxy => &["haproxy"],
            Balancer::Nginx => &["nginx", "kube-nginx"],
        }
    }
}

/// Import the given inputs: parse each, map the balancer configs into services (shared by
/// every node) and each keepalived config into one node's VRRP instances and trackers.
pub fn import(inputs: &Inputs, interfaces: &dyn lint::Interfaces) -> Imported {
    let mut report = Report::default();
    let balanced = balancers(inputs, &mut report);
    let sources = balanced.sources.clone();
    let mut nodes = Vec::new();
    if inputs.keepalived.is_empty() {
        let mut draft = balanced.shared.clone();
        draft.inputs = sources;
        nodes.push(Node {
            keepalived: None,
            name: None,
            draft,
        });
    } else {
        nodes = keepalived_nodes(inputs, &balanced, &sources, &mut report);
    }
    // Errors so far leave the drafts incomplete: havip's reader would only repeat them.
    let clean = !report.has_errors();
    for node in &nodes {
        if clean && !nothing_to_do(&node.draft, &mut report) {
            validate::refusals(&node.draft, &mut report);
        }
        for warning in lint::lint(&facts(&node.draft), interfaces) {
            report.warn(&warning.place, warning.message);
        }
    }
    Imported { nodes, report }
}

/// havip refuses a config without a service or a VRRP instance: when the inputs made
/// neither, that is an error (at the start of the first input), not a config to write.
/// True when it reported that.
fn nothing_to_do(draft: &model::Draft, report: &mut Report) -> bool {
    if !draft.services.is_empty() || !draft.vrrp.is_empty() {
        return false;
    }
    let file = draft.inputs.first().map_or("(no input)", String::as_str);
    report.error(
        &Place::new(&Arc::from(file), 1, 1, "import"),
        "nothing to import: none of the inputs made a [[service]] or a [[vrrp]] instance, and havip needs one (see what was not carried over)",
    );
    true
}

/// The haproxy and nginx inputs, read and mapped into the services every node shares.
fn balancers(inputs: &Inputs, report: &mut Report) -> Balanced {
    let mut balanced = Balanced::default();
    if let Some(path) = &inputs.haproxy {
        balanced.sources.push(display(path).to_string());
        if let Some(text) = read_input(path, "haproxy", report) {
            let cfg = haproxy::parse(&display(path), &text, report);
            balanced.add(haproxy::map(&cfg, report), Balancer::Haproxy);
        }
    }
    if let Some(path) = &inputs.nginx {
        match read_input(path, "nginx", report) {
            Some(text) => {
                let tree = nginx::parse_file(path, &text, report);
                balanced
                    .sources
                    .extend(tree.files.iter().map(|f| f.to_string()));
                balanced.add(nginx::map(&tree, report), Balancer::Nginx);
            }
            None => balanced.sources.push(display(path).to_string()),
        }
    }
    balanced.dedup_names(report);
    balanced
}

/// One node per keepalived file: the shared services and that file's VRRP part.
fn keepalived_nodes(
    inputs: &Inputs,
    balanced: &Balanced,
    sources: &[String],
    report: &mut Report,
) -> Vec<Node> {
    let context = keepalived::Context {
        services: &balanced.shared.services,
        origins: &balanced.origins,
        scripts: &inputs.scripts,
    };
    let several = inputs.keepalived.len() > 1;
    let mut nodes = Vec::new();
    for (path, name) in inputs.keepalived.iter().zip(node_names(&inputs.keepalived)) {
        let Some(tree) = keepalived::load(path, report) else {
            continue;
        };
        let part = keepalived::map(&tree, &context, report);
        let mut draft = balanced.shared.clone();
        draft.inputs = sources.to_vec();
        draft
            .inputs
            .extend(tree.files.iter().map(|f| f.to_string()));
        draft.inputs.extend(part.read_scripts.iter().cloned());
        draft.vrrp = part.vrrp;
        draft.trackers = part.trackers;
        nodes.push(Node {
            keepalived: Some(path.clone()),
            name: several.then_some(name),
            draft,
        });
    }
    if several {
        let sets: Vec<Vec<model::Vrrp>> = nodes.iter().map(|n| n.draft.vrrp.clone()).collect();
        keepalived::check_set(&sets, report);
    }
    nodes
}

/// The services of the balancer inputs, shared by every node.
#[derive(Debug, Default)]
struct Balanced {
    /// The services and the process-wide settings that came with them.
    shared: model::Draft,
    /// For each service, the balancer it came from.
    origins: Vec<Balancer>,
    /// The files read (nginx's includes too), for each config's header.
    sources: Vec<String>,
}

impl Balanced {
    fn add(&mut self, mapped: model::Draft, balancer: Balancer) {
        let shared = &mut self.shared;
        if shared.global.max_conns.is_none() {
            shared.global.max_conns = mapped.global.max_conns;
        }
        if shared.global.workers.is_none() {
            shared.global.workers = mapped.global.workers;
        }
        if shared.log.connections.is_none() {
            shared.log.connections = mapped.log.connections;
        }
        if shared.admin.is_none() {
            shared.admin = mapped.admin;
        }
        self.origins
            .extend(std::iter::repeat_n(balancer, mapped.services.len()));
        shared.services.extend(mapped.services);
    }

    /// Service names must be unique; a name used by both inputs gets a suffix.
    fn dedup_names(&mut self, report: &mut Report) {
        let mut seen: Vec<String> = Vec::new();
        for service in &mut self.shared.services {
            let mut name = service.name.value.clone();
            let mut n = 2;
            while seen.contains(&name) {
                name = format!("{}-{n}", service.name.value);
                n += 1;
            }
            if name != service.name.value {
                report.skip(
                    &service.name.place.with_key("name"),
                    format!(
                        "another imported service is already named {:?}; this one is named {name:?}",
                        service.name.value
                    ),
                );
                service.name.value = name.clone();
            }
            seen.push(name);
        }
    }
}

#[cfg(test)]
mod tests;
