//! What an instance tracks: the definitions (`vrrp_script`, `track_file`,
//! `vrrp_track_process`), and each instance's `track_script`, `track_interface`,
//! `track_file` and `track_process` references, which become havip trackers (made once, each
//! instance referencing them with its own weight).

use std::net::IpAddr;

use havip_config::place::Place;

use super::global::Globals;
use super::track_script::{script_def, script_trackers, ScriptDef};
use super::value::number;
use super::{Context, VrrpPart};
use crate::model::{Sourced, TrackRef, Tracker, TrackerKind, Vrrp};
use crate::syntax::Directive;
use crate::text::{did_you_mean, sanitize_name};
use crate::Report;

/// `track_file NAME { file PATH weight N }`.
#[derive(Debug, Clone)]
pub struct FileDef {
    pub place: Place,
    pub path: Option<Sourced<String>>,
    pub weight: Option<Sourced<i32>>,
}

/// `vrrp_track_process NAME { process NAME weight N }`.
#[derive(Debug, Clone)]
pub struct ProcessDef {
    pub place: Place,
    pub process: Option<Sourced<String>>,
    pub weight: Option<Sourced<i32>>,
}

/// The definitions of a config, by name, in file order.
#[derive(Debug, Default)]
pub struct Definitions {
    pub scripts: Vec<(String, ScriptDef)>,
    pub files: Vec<(String, FileDef)>,
    pub processes: Vec<(String, ProcessDef)>,
}

impl Definitions {
    /// A top-level `vrrp_script`, `track_file` / `vrrp_track_file` or `vrrp_track_process`.
    pub fn define(&mut self, directive: &Directive, report: &mut Report) {
        let Some(name) = directive.arg(0) else {
            if directive.name() == "vrrp_script" {
                report.error(&directive.place(), "missing the script's name");
            }
            return;
        };
        let place = directive.place_as(format!("{} {name}", directive.name()));
        match directive.name() {
            "vrrp_script" => self
                .scripts
                .push((name.to_string(), script_def(directive, report))),
            "vrrp_track_process" => self
                .processes
                .push((name.to_string(), process_def(directive, place, report))),
            _ => self
                .files
                .push((name.to_string(), file_def(directive, place, report))),
        }
    }
}

fn weight(directive: &Directive, report: &mut Report) -> Option<Sourced<i32>> {
    number::<i32>(directive, 0, report).map(|w| Sourced::new(w, &directive.arg_place(0)))
}

fn file_def(block: &Directive, place: Place, report: &mut Report) -> FileDef {
    let mut def = FileDef {
        place,
        path: None,
        weight: None,
    };
    for directive in block.children() {
        match directive.name() {
            "file" => {
                def.path = directive
                    .arg(0)
                    .map(|p| Sourced::new(p.to_string(), &directive.arg_place(0)))
            }
            "weight" => {
                def.weight = weight(directive, report);
                if directive.arg(1) == Some("reverse") {
                    report.skip(
                        &directive.place_as("weight reverse"),
                        "reversed weights are not supported",
                    );
                }
            }
            "init_file" => report.skip(
                &directive.place(),
                "havip does not create the tracked file; a missing file counts as 0",
            ),
            _ => report.skip(&directive.place(), "not supported by the importer"),
        }
    }
    def
}

fn process_def(block: &Directive, place: Place, report: &mut Report) -> ProcessDef {
    let mut def = ProcessDef {
        place,
        process: None,
        weight: None,
    };
    for directive in block.children() {
        match directive.name() {
            "process" => {
                def.process = directive
                    .arg(0)
                    .map(|p| Sourced::new(p.to_string(), &directive.arg_place(0)));
                if directive.args.len() > 1 {
                    report.skip(
                        &directive.place(),
                        "matching process parameters is not supported; the name is matched",
                    );
                }
            }
            "weight" => def.weight = weight(directive, report),
            "quorum" => {
                if directive.arg(0) != Some("1") {
                    report.skip(
                        &directive.place(),
                        "havip checks that at least one process runs",
                    );
                }
            }
            _ => report.skip(&directive.place(), "not supported by the importer"),
        }
    }
    def
}

/// What resolving references needs, and the trackers made so far (each made once).
pub struct Tracking<'a> {
    pub definitions: &'a Definitions,
    pub globals: &'a Globals,
    pub context: &'a Context<'a>,
    /// The names of the trackers made.
    pub made: Vec<String>,
}

/// The kinds of `track_*` blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RefKind {
    Script,
    Interface,
    File,
    Process,
}

impl Tracking<'_> {
    /// The `track` entries of an instance; the trackers they need go into `out`.
    pub fn references(
        &mut self,
        block: &Directive,
        vrrp: &Vrrp,
        out: &mut VrrpPart,
        report: &mut Report,
    ) -> Vec<Sourced<TrackRef>> {
        let vips: Vec<IpAddr> = vrrp
            .virtual_addresses
            .iter()
            .map(|a| a.value.address)
            .collect();
        let mut refs = Vec::new();
        for group in block.children() {
            let kind = match group.name() {
                "track_script" => RefKind::Script,
                "track_interface" => RefKind::Interface,
                "track_file" => RefKind::File,
                "track_process" => RefKind::Process,
                _ => continue,
            };
            for entry in group.children() {
                let place = entry.place_as(format!("{} {}", group.name(), entry.name()));
                let weight = reference_weight(entry, report);
                let Some(trackers) = self.trackers(kind, group, entry, &vips, out, report) else {
                    continue;
                };
                for tracker in trackers {
                    if refs
                        .iter()
                        .any(|r: &Sourced<TrackRef>| r.value.tracker == tracker.name.value)
                    {
                        report.skip(
                            &place,
                            "tracked twice in this instance: keepalived ignores the second (it logs a duplicate)",
                        );
                        continue;
                    }
                    refs.push(Sourced::new(
                        TrackRef {
                            tracker: tracker.name.value.clone(),
                            weight,
                        },
                        &place,
                    ));
                    if !self.made.contains(&tracker.name.value) {
                        self.made.push(tracker.name.value.clone());
                        out.trackers.push(tracker);
                    }
                }
            }
        }
        refs
    }

    /// The trackers one reference stands for; None when it names no definition (reported).
    fn trackers(
        &self,
        kind: RefKind,
        group: &Directive,
        entry: &Directive,
        vips: &[IpAddr],
        out: &mut VrrpPart,
        report: &mut Report,
    ) -> Option<Vec<Tracker>> {
        let name = entry.name();
        let definitions = self.definitions;
        let missing = |what: &str, names: Vec<&str>, report: &mut Report| {
            report.error(
                &entry.place_as(group.name()),
                format!("no {what} named {name:?}{}", did_you_mean(name, names)),
            );
        };
        match kind {
            RefKind::Script => match definitions.scripts.iter().find(|(n, _)| n == name) {
                Some((_, def)) => Some(script_trackers(
                    name,
                    def,
                    self.globals,
                    vips,
                    self.context,
                    report,
                    &mut out.read_scripts,
                )),
                None => {
                    let names = definitions.scripts.iter().map(|(n, _)| n.as_str());
                    missing("vrrp_script", names.collect(), report);
                    None
                }
            },
            RefKind::Interface => Some(vec![interface_tracker(group, entry)]),
            RefKind::File => match definitions.files.iter().find(|(n, _)| n == name) {
                Some((_, def)) => Some(vec![file_tracker(name, def, report)]),
                None => {
                    let names = definitions.files.iter().map(|(n, _)| n.as_str());
                    missing("track_file", names.collect(), report);
                    None
                }
            },
            RefKind::Process => match definitions.processes.iter().find(|(n, _)| n == name) {
                Some((_, def)) => Some(vec![process_tracker(name, def)]),
                None => {
                    let names = definitions.processes.iter().map(|(n, _)| n.as_str());
                    missing("vrrp_track_process", names.collect(), report);
                    None
                }
            },
        }
    }
}

/// `NAME [weight N] [reverse]` of a reference: its weight.
fn reference_weight(entry: &Directive, report: &mut Report) -> Option<i32> {
    let mut weight = None;
    let mut i = 0;
    while let Some(word) = entry.arg(i) {
        match word {
            "weight" => {
                weight = number::<i32>(entry, i + 1, report);
                i += 2;
            }
            "reverse" => {
                report.skip(
                    &entry.place_as("reverse"),
                    "reversed weights are not supported",
                );
                i += 1;
            }
            "noreverse" | "no_reverse" => i += 1,
            other => {
                report.skip(&entry.place_as(other), "not supported");
                i += 1;
            }
        }
    }
    weight
}

/// `track_interface { IF }`: an interface tracker.
fn interface_tracker(group: &Directive, entry: &Directive) -> Tracker {
    let name = entry.name();
    let place = entry.place_as(format!("{} {name}", group.name()));
    let mut tracker = Tracker::new(
        Sourced::noted(
            sanitize_name(&format!("if_{name}")),
            &place,
            format!("track_interface {name}"),
        ),
        Sourced::new(TrackerKind::Interface, &place),
        place.clone(),
    );
    tracker.interface = Some(Sourced::new(name.to_string(), &place));
    // keepalived: an unweighted tracked interface puts the instance in Fault, which is
    // havip's default weight 0; a weight here is per instance, so it goes on the reference.
    tracker
}

fn file_tracker(name: &str, def: &FileDef, report: &mut Report) -> Tracker {
    let mut tracker = Tracker::new(
        Sourced::new(sanitize_name(name), &def.place),
        Sourced::new(TrackerKind::File, &def.place),
        def.place.clone(),
    );
    tracker.path = def.path.clone();
    tracker.weight = def.weight.clone();
    if tracker.path.is_none() {
        report.error(&def.place.with_key("track_file"), "no file given");
    }
    tracker
}

fn process_tracker(name: &str, def: &ProcessDef) -> Tracker {
    let mut tracker = Tracker::new(
        Sourced::new(sanitize_name(name), &def.place),
        Sourced::new(TrackerKind::Process, &def.place),
        def.place.clone(),
    );
    tracker.process = def.process.clone();
    tracker.weight = Some(def.weight.clone().unwrap_or_else(|| {
        Sourced::noted(1, &def.place, "keepalived's default weight for a process")
    }));
    tracker
}
