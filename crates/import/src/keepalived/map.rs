//! keepalived's tree into one node's `[[vrrp]]` and `[[tracker]]` tables: `global_defs`
//! ([`global`]), the definitions instances track (`vrrp_script`, `track_file`,
//! `vrrp_track_process`: [`track`], [`track_script`]), and each `vrrp_instance`
//! ([`instance`]) with the trackers it references.

mod address;
mod global;
mod instance;
mod set;
mod track;
mod track_script;
mod value;

pub use set::check_set;

use self::global::Globals;
use self::track::Definitions;
use super::Tree;
use crate::model::{Service, Tracker, Vrrp};
use crate::syntax::Directive;
use crate::text::sanitize_name;
use crate::{Balancer, Report, ScriptFile};

/// What the mapping needs to know about the imported balancer.
pub struct Context<'a> {
    /// The imported services.
    pub services: &'a [Service],
    /// For each service, the balancer it was imported from.
    pub origins: &'a [Balancer],
    /// Track scripts given on the command line.
    pub scripts: &'a [ScriptFile],
}

/// One node's VRRP part.
#[derive(Debug, Clone, Default)]
pub struct VrrpPart {
    /// `[[vrrp]]`.
    pub vrrp: Vec<Vrrp>,
    /// `[[tracker]]`.
    pub trackers: Vec<Tracker>,
    /// Script files read to decide how to import a track script.
    pub read_scripts: Vec<String>,
}

/// Top-level keywords with nothing to carry, and why.
const SKIPPED: &[(&[&str], &str)] = &[
    (
        &["vrrp_sync_group"],
        "sync groups are not supported: each [[vrrp]] instance fails over on its own",
    ),
    (
        &["virtual_server", "virtual_server_group", "real_server"],
        "LVS virtual servers are not imported; havip's [[service]] balances TCP itself",
    ),
    (
        &["static_ipaddress", "static_routes", "static_rules"],
        "static addresses, routes and rules are not managed by havip; configure them in the OS",
    ),
    (
        &[
            "linkbeat_use_polling",
            "net_namespace",
            "net_namespace_ipvs",
            "instance",
            "use_pid_dir",
            "child_wait_time",
            "namespace_with_ipsets",
        ],
        "process setting with no havip equivalent",
    ),
    (&["bfd_instance"], "BFD is not supported"),
    (
        &["garp_group"],
        "announcement settings are per [[vrrp]] instance ([vrrp.announce])",
    ),
];

/// Map one keepalived config (one node).
pub fn map(tree: &Tree, context: &Context<'_>, report: &mut Report) -> VrrpPart {
    let mut globals = Globals::default();
    let mut definitions = Definitions::default();
    let mut instances: Vec<&Directive> = Vec::new();
    for directive in &tree.directives {
        match directive.name() {
            "global_defs" => global::global_defs(directive, &mut globals, report),
            "vrrp_script" | "track_file" | "vrrp_track_file" | "vrrp_track_process" => {
                definitions.define(directive, report)
            }
            "vrrp_instance" => instances.push(directive),
            keyword => {
                let reason = SKIPPED
                    .iter()
                    .find(|(names, _)| names.contains(&keyword))
                    .map_or("not supported by the importer", |(_, r)| r);
                report.skip(&directive.place(), reason);
            }
        }
    }
    let mut out = VrrpPart::default();
    let mut tracking = track::Tracking {
        definitions: &definitions,
        globals: &globals,
        context,
        made: Vec::new(),
    };
    for block in instances {
        let Some(mut vrrp) = instance::instance(block, &globals, report) else {
            continue;
        };
        vrrp.track = tracking.references(block, &vrrp, &mut out, report);
        out.vrrp.push(vrrp);
    }
    for (name, def) in &definitions.scripts {
        let tracked = out.trackers.iter().any(|t| t.from == def.place)
            || tracking.made.iter().any(|m| *m == sanitize_name(name));
        if !tracked {
            report.skip(
                &def.place.with_key("vrrp_script"),
                format!("{name}: not tracked by any vrrp_instance, not imported"),
            );
        }
    }
    out
}
