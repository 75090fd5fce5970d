//! `vrrp_script` definitions, and the tracker(s) each becomes: a script tracker, or, when
//! the script only checks the local proxy ([`crate::keepalived::shell`]), built-in trackers
//! that read the balancer in-process (no fork every few seconds, no timeout under load).

use std::net::IpAddr;

use havip_config::place::Place;

use super::global::Globals;
use super::value::{number, script_argv, seconds};
use super::Context;
use crate::keepalived::shell::{self, Analysis, Probe};
use crate::model::{Service, Sourced, Tracker, TrackerKind};
use crate::syntax::Directive;
use crate::text::sanitize_name;
use crate::{Report, ScriptFile};

/// `vrrp_script NAME { script CMD interval T timeout T weight N rise N fall N user U }`.
#[derive(Debug, Clone)]
pub struct ScriptDef {
    /// `vrrp_script NAME`.
    pub place: Place,
    pub argv: Option<Sourced<Vec<String>>>,
    pub interval: Option<Sourced<std::time::Duration>>,
    pub timeout: Option<Sourced<std::time::Duration>>,
    pub weight: Option<Sourced<i32>>,
    pub rise: Option<Sourced<u32>>,
    pub fall: Option<Sourced<u32>>,
    pub user: Option<Sourced<String>>,
}

/// The definition of a `vrrp_script` block.
pub fn script_def(block: &Directive, report: &mut Report) -> ScriptDef {
    let name = block.arg(0).unwrap_or("");
    let mut def = ScriptDef {
        place: block.place_as(format!("vrrp_script {name}")),
        argv: None,
        interval: None,
        timeout: None,
        weight: None,
        rise: None,
        fall: None,
        user: None,
    };
    for directive in block.children() {
        let place = directive.arg_place(0);
        match directive.name() {
            "script" => {
                def.argv = script_argv(&directive.args, report).map(|a| Sourced::new(a, &place));
                if def.argv.is_none() {
                    report.error(&directive.place(), "missing the command");
                }
            }
            "interval" => {
                def.interval = seconds(directive, 0, report).map(|d| Sourced::new(d, &place))
            }
            "timeout" => {
                def.timeout = seconds(directive, 0, report).map(|d| Sourced::new(d, &place))
            }
            "weight" => {
                def.weight = number::<i32>(directive, 0, report).map(|w| Sourced::new(w, &place));
                if directive.arg(1) == Some("reverse") {
                    report.skip(
                        &directive.place_as("weight reverse"),
                        "reversed weights are not supported",
                    );
                }
            }
            "rise" => {
                def.rise = number::<u32>(directive, 0, report).map(|r| Sourced::new(r, &place))
            }
            "fall" => {
                def.fall = number::<u32>(directive, 0, report).map(|f| Sourced::new(f, &place))
            }
            "user" => {
                def.user = directive
                    .arg(0)
                    .map(|u| Sourced::new(u.to_string(), &place));
                if directive.args.len() > 1 {
                    report.skip(
                        &directive.place(),
                        "the group is the user's own group in havip",
                    );
                }
            }
            "init_fail" => report.skip(
                &directive.place(),
                "havip trackers start unknown and count rise/fall from the first result",
            ),
            _ => report.skip(&directive.place(), "not supported by the importer"),
        }
    }
    def
}

/// Track scripts larger than this are not read (a script is a few lines; anything this big
/// is not one).
const MAX_SCRIPT_BYTES: u64 = 1 << 20;

/// A track script's bytes: a regular file, at most [`MAX_SCRIPT_BYTES`]. A config that names
/// `/dev/zero`, `/dev/stdin` or a FIFO as its script must not make the import read forever
/// or block (issue 15: found reviewing the importers for fuzzing).
fn read_script(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    if meta.len() > MAX_SCRIPT_BYTES {
        return Err(std::io::Error::other(format!(
            "{} bytes, more than a track script ({MAX_SCRIPT_BYTES} at most)",
            meta.len()
        )));
    }
    let mut bytes = Vec::new();
    file.take(MAX_SCRIPT_BYTES).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The text of a track script, from `--script` or its path; with the name it is shown as.
fn script_text(
    path: &str,
    context: &Context<'_>,
    report: &mut Report,
    at: &Place,
) -> Option<(String, String)> {
    let base = shell::basename(path);
    let explicit = context
        .scripts
        .iter()
        .find(|s| s.path_in_config.as_deref() == Some(path));
    let by_name = || {
        let matching: Vec<&ScriptFile> = context
            .scripts
            .iter()
            .filter(|s| s.path_in_config.is_none())
            .filter(|s| {
                let file = s
                    .file
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default();
                file == base
                    || file.ends_with(&format!("-{base}"))
                    || file.ends_with(&format!("_{base}"))
            })
            .collect();
        match matching.as_slice() {
            [only] => Some(*only),
            _ => None,
        }
    };
    if let Some(script) = explicit.or_else(by_name) {
        return match read_script(&script.file) {
            Ok(bytes) => Some((
                String::from_utf8_lossy(&bytes).into_owned(),
                script.file.to_string_lossy().into_owned(),
            )),
            Err(e) => {
                report.error(
                    &at.with_key("script"),
                    format!("{}: {e}", script.file.display()),
                );
                None
            }
        };
    }
    if path.starts_with('/') {
        if let Ok(bytes) = read_script(std::path::Path::new(path)) {
            return Some((
                String::from_utf8_lossy(&bytes).into_owned(),
                path.to_string(),
            ));
        }
    }
    None
}

/// The definition as it is: a script tracker.
fn plain_tracker(name: &str, def: &ScriptDef, globals: &Globals) -> Tracker {
    let mut tracker = Tracker::new(
        Sourced::new(sanitize_name(name), &def.place),
        Sourced::new(TrackerKind::Script, &def.place),
        def.place.clone(),
    );
    tracker.command = def.argv.clone();
    tracker.weight = def.weight.clone();
    tracker.rise = def.rise.clone();
    tracker.fall = def.fall.clone();
    tracker.interval = def.interval.clone();
    tracker.timeout = def.timeout.clone();
    tracker.user = def.user.clone().or_else(|| globals.script_user.clone());
    tracker
}

/// What the script checks, and the script file's name when it was read (its lines are cited
/// as `FILE:LINE`; a command line is cited at the `script` keyword).
struct Reading {
    analysis: Analysis,
    shown: Option<String>,
    script_place: Place,
}

impl Reading {
    /// `FILE:LINE` of line `line` of what was read.
    fn at(&self, line: u32) -> String {
        match &self.shown {
            Some(file) => format!("{file}:{line}"),
            None => format!("{}:{}", self.script_place.file, self.script_place.line),
        }
    }
}

/// What the built-in trackers would watch.
struct Targets {
    kind: TrackerKind,
    /// The services (listener or service trackers).
    services: Vec<String>,
    /// A process that is not the imported balancer.
    process: Option<String>,
    /// Why the script can be replaced, for the tracker's note.
    reason: String,
}

/// The tracker(s) a vrrp_script becomes: built-in when the script only checks the local
/// proxy, else a script tracker.
pub fn script_trackers(
    name: &str,
    def: &ScriptDef,
    globals: &Globals,
    vips: &[IpAddr],
    context: &Context<'_>,
    report: &mut Report,
    read_scripts: &mut Vec<String>,
) -> Vec<Tracker> {
    let Some(argv) = &def.argv else {
        return vec![plain_tracker(name, def, globals)];
    };
    let Some(reading) = read(argv, context, report, read_scripts) else {
        return vec![plain_tracker(name, def, globals)];
    };
    let kept = |why: String, report: &mut Report| {
        report.skip(
            &reading.script_place.with_key("script"),
            format!("kept as a script tracker: {why}"),
        );
        vec![plain_tracker(name, def, globals)]
    };
    if !reading.analysis.is_replaceable() {
        let why = match reading.analysis.unknown.first() {
            Some((command, line)) => format!(
                "it runs `{command}` ({}), which is not a check of the local proxy",
                reading.at(*line)
            ),
            None => "no check of the local proxy was recognised".to_string(),
        };
        return kept(why, report);
    }
    let targets = match targets(&reading, vips, context) {
        Ok(targets) => targets,
        Err(why) => return kept(why, report),
    };
    if !targets.services.is_empty() && targets.process.is_some() {
        return kept(
            "it checks both the proxy and another process".to_string(),
            report,
        );
    }
    let weight = weight(def, &reading, report);
    for (service, line) in &reading.analysis.restarts {
        report.skip(
            &reading.script_place.with_key("script"),
            format!(
                "it also starts {service} ({}); havip restarts nothing (use systemd's Restart=)",
                reading.at(*line)
            ),
        );
    }
    if let Some(interval) = def.interval.as_ref().filter(|_| targets.process.is_none()) {
        report.skip(
            &interval.place.with_key("interval"),
            "built-in listener and service trackers follow the balancer's state as it changes; no polling interval",
        );
    }
    let note = format!("was script {}: {}", argv.value.join(" "), targets.reason);
    built_in(name, def, targets, weight, &note, &reading, report)
}

/// The script's analysis: from its command line, or from the script file it runs when that
/// can be read (None, reported, when it cannot).
fn read(
    argv: &Sourced<Vec<String>>,
    context: &Context<'_>,
    report: &mut Report,
    read_scripts: &mut Vec<String>,
) -> Option<Reading> {
    let script_place = argv.place.clone();
    if let Some(analysis) = shell::analyze_argv(&argv.value) {
        return Some(Reading {
            analysis,
            shown: None,
            script_place,
        });
    }
    let command = &argv.value[0];
    match script_text(command, context, report, &script_place) {
        Some((text, shown)) => {
            if !read_scripts.contains(&shown) {
                read_scripts.push(shown.clone());
            }
            Some(Reading {
                analysis: shell::analyze_script(&text),
                shown: Some(shown),
                script_place,
            })
        }
        None => {
            report.skip(
                &script_place.with_key("script"),
                format!(
                    "{command}: not readable here, so kept as a script tracker; give it with --script {command}=FILE to let the importer read it"
                ),
            );
            None
        }
    }
}

/// The services or process each probe of the script checks; the reason it stays a script
/// when a probe is not of the local balancer.
fn targets(reading: &Reading, vips: &[IpAddr], context: &Context<'_>) -> Result<Targets, String> {
    let local = |host: &str| -> bool {
        matches!(host, "localhost" | "127.0.0.1" | "::1" | "0.0.0.0")
            || host.parse::<IpAddr>().is_ok_and(|ip| vips.contains(&ip))
    };
    let listening_on = |port: u16| -> Vec<&Service> {
        context
            .services
            .iter()
            .filter(|s| s.listen_ports().contains(&port))
            .collect()
    };
    let mut targets = Targets {
        kind: TrackerKind::Listener,
        services: Vec::new(),
        process: None,
        reason: String::new(),
    };
    for (probe, line) in &reading.analysis.probes {
        let at = reading.at(*line);
        let services = match probe {
            Probe::Http {
                host, port, path, ..
            } => {
                let services = listening_on(*port);
                if !local(host) || services.is_empty() {
                    return Err(format!(
                        "its request to {host}:{port}{path} ({at}) is not to an imported service"
                    ));
                }
                targets.kind = TrackerKind::Service;
                targets.reason = format!("its request to {host}:{port} ({at}) checks the balancer");
                services
            }
            Probe::Listen(port) => {
                let services = listening_on(*port);
                if services.is_empty() {
                    return Err(format!("no imported service listens on port {port} ({at})"));
                }
                if targets.kind != TrackerKind::Service {
                    targets.reason = format!("it checks that port {port} listens ({at})");
                }
                services
            }
            Probe::Process(process) => {
                let services = balancer_services(process, context);
                if services.is_empty() {
                    if targets.process.as_ref().is_some_and(|q| q != process) {
                        return Err("it checks several processes".to_string());
                    }
                    targets.process = Some(process.clone());
                    targets.reason = format!("it checks that {process} runs ({at})");
                } else if targets.kind != TrackerKind::Service && targets.reason.is_empty() {
                    targets.reason = format!(
                        "it checks that {process} runs ({at}); havip replaces {process}, so its listeners are checked"
                    );
                }
                services
            }
        };
        for service in services {
            if !targets.services.contains(&service.name.value) {
                targets.services.push(service.name.value.clone());
            }
        }
    }
    Ok(targets)
}

/// The imported services of the balancer whose process is `process` (havip replaces it).
fn balancer_services<'a>(process: &str, context: &Context<'a>) -> Vec<&'a Service> {
    context
        .origins
        .iter()
        .zip(context.services)
        .filter(|(origin, _)| origin.process_names().contains(&process))
        .map(|(_, service)| service)
        .collect()
}

/// The tracker's weight. A script that stops keepalived on failure makes the node give up
/// the VIP whatever its weight, which is havip's weight 0 (Fault).
fn weight(def: &ScriptDef, reading: &Reading, report: &mut Report) -> Option<Sourced<i32>> {
    let Some(line) = reading.analysis.stops_keepalived else {
        return def.weight.clone();
    };
    let was = def.weight.as_ref().map_or(0, |w| w.value);
    if was != 0 {
        report.skip(
            &reading.script_place.with_key("weight"),
            format!(
                "the script stops keepalived when its check fails ({}), so the node gives up the VIP whatever the weight: imported with weight 0 (failing means Fault) instead of {was}",
                reading.at(line)
            ),
        );
    }
    Some(Sourced::noted(
        0,
        &def.place,
        format!(
            "the script stopped keepalived on failure ({})",
            reading.at(line)
        ),
    ))
}

/// The built-in trackers: one process tracker, or one tracker per service.
fn built_in(
    name: &str,
    def: &ScriptDef,
    targets: Targets,
    weight: Option<Sourced<i32>>,
    note: &str,
    reading: &Reading,
    report: &mut Report,
) -> Vec<Tracker> {
    let tracker = |name: String, kind: TrackerKind| {
        let mut tracker = Tracker::new(
            Sourced::new(name, &def.place),
            Sourced::noted(kind, &def.place, note),
            def.place.clone(),
        );
        tracker.weight = weight.clone();
        tracker.rise = def.rise.clone();
        tracker.fall = def.fall.clone();
        tracker
    };
    if let Some(process) = targets.process {
        let mut process_tracker = tracker(sanitize_name(name), TrackerKind::Process);
        process_tracker.process = Some(Sourced::new(process, &def.place));
        process_tracker.interval = def.interval.clone();
        return vec![process_tracker];
    }
    let several = targets.services.len() > 1;
    if several {
        report.skip(
            &reading.script_place.with_key("script"),
            format!(
                "one tracker per service ({}): the weight applies for each failing service",
                targets.services.join(", ")
            ),
        );
    }
    targets
        .services
        .into_iter()
        .map(|service| {
            let tracker_name = if several {
                sanitize_name(&format!("{name}_{service}"))
            } else {
                sanitize_name(name)
            };
            let mut t = tracker(tracker_name, targets.kind);
            t.service = Some(Sourced::new(service, &def.place));
            if targets.kind == TrackerKind::Service {
                t.min_healthy = Some(Sourced::noted(
                    1,
                    &def.place,
                    "the balancer reaches at least one healthy backend",
                ));
            }
            t
        })
        .collect()
}
