//! The bodies of the importers' cargo-fuzz targets in `fuzz/` (`import_haproxy`,
//! `import_keepalived`, `import_nginx`), kept here so that the regression test below replays
//! exactly what the fuzzer ran. Compiled for tests and with the `fuzzing` feature only.
//!
//! Each target runs one format through the whole import as `havip import` does (lex, parse,
//! map, havip's own reader on the draft, the lints) and then checks what a user relies on:
//! every report line names a line inside the file it was given, and the TOML written is
//! always valid TOML (a draft havip refuses is reported, but the text itself must parse), so
//! nothing escapes badly. No file is read besides the input: keepalived and nginx `include`s
//! are not followed (keepalived's parse without a path; nginx's directives are taken as
//! parsed). A crash found by `scripts/fuzz.sh` becomes a regression test by copying its input
//! into `crates/import/tests/fuzz_regressions/<target>/`.

use std::path::Path;
use std::sync::Arc;

use havip_config::lint::{self, NoInterfaces};

use crate::model::Draft;
use crate::{emit, facts, haproxy, keepalived, nginx, syntax, validate, Balancer, Report};

/// The input's name in every place reported.
const FILE: &str = "fuzz.conf";

/// Input: a haproxy.cfg.
pub fn haproxy(data: &[u8]) {
    let (file, text) = input(data);
    let mut report = Report::default();
    let cfg = haproxy::parse(&file, &text, &mut report);
    let draft = haproxy::map(&cfg, &mut report);
    finish(draft, &text, report);
}

/// Input: a keepalived.conf (its include lines are reported, not read). The services it may
/// track come from a fixed haproxy.cfg, so track scripts that check HAProxy are mapped too.
pub fn keepalived(data: &[u8]) {
    let (file, text) = input(data);
    let mut report = Report::default();
    let services = haproxy::map(
        &haproxy::parse(&Arc::from("haproxy.cfg"), SERVICES, &mut report),
        &mut report,
    )
    .services;
    let origins = vec![Balancer::Haproxy; services.len()];
    let context = keepalived::Context {
        services: &services,
        origins: &origins,
        scripts: &[],
    };
    let tree = keepalived::parse_text(&file, &text, &mut report);
    let part = keepalived::map(&tree, &context, &mut report);
    keepalived::check_set(&[part.vrrp.clone(), part.vrrp.clone()], &mut report);
    let draft = Draft {
        inputs: vec![FILE.to_string()],
        services,
        vrrp: part.vrrp,
        trackers: part.trackers,
        ..Draft::default()
    };
    finish(draft, &text, report);
}

/// Input: an nginx config with a `stream` block (its includes are not followed).
pub fn nginx(data: &[u8]) {
    let (file, text) = input(data);
    let mut report = Report::default();
    let directives = match nginx::parse(&file, &text) {
        Ok(directives) => directives,
        Err(error) => {
            report.error(&error.place, error.message);
            Vec::new()
        }
    };
    let tree = syntax::Tree {
        directives,
        files: vec![file],
    };
    let draft = nginx::map(&tree, &mut report);
    finish(draft, &text, report);
}

/// A balancer config for the keepalived target's track scripts to refer to.
const SERVICES: &str = "frontend k8s\n    bind *:6443\n    default_backend masters\n\
backend masters\n    server m1 10.0.0.1:6443 check\n    server m2 10.0.0.2:6443 check\n";

fn input(data: &[u8]) -> (Arc<str>, String) {
    (Arc::from(FILE), String::from_utf8_lossy(data).into_owned())
}

/// What `havip import` does after mapping, and the checks on its outcome.
fn finish(mut draft: Draft, text: &str, mut report: Report) {
    if draft.inputs.is_empty() {
        draft.inputs.push(FILE.to_string());
    }
    if !report.has_errors() {
        validate::refusals(&draft, &mut report);
    }
    for warning in lint::lint(&facts(&draft), &NoInterfaces) {
        report.warn(&warning.place, warning.message);
    }
    let lines = u32::try_from(text.bytes().filter(|&b| b == b'\n').count())
        .unwrap_or(u32::MAX)
        .saturating_add(1);
    for note in &report.notes {
        if &*note.place.file == FILE {
            assert!(
                (1..=lines).contains(&note.place.line),
                "line {} outside 1..={lines}: {note}",
                note.place.line
            );
        }
    }
    let notes = report.sorted();
    let written = emit::emit(&draft, &notes);
    let reading = havip_config::read(Path::new("imported.toml"), &written);
    let syntax = reading.problems.iter().find(|p| p.place.key == "(syntax)");
    assert!(
        syntax.is_none(),
        "the import wrote invalid TOML ({syntax:?}):\n{written}"
    );
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    /// Replays every input saved under `tests/fuzz_regressions/<target>/` through its target.
    #[test]
    fn fuzz_regressions_stay_fixed() {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions");
        type Target = fn(&[u8]);
        let targets: [(&str, Target); 3] = [
            ("import_haproxy", super::haproxy),
            ("import_keepalived", super::keepalived),
            ("import_nginx", super::nginx),
        ];
        for (target, run) in targets {
            let directory = root.join(target);
            let entries = std::fs::read_dir(&directory)
                .unwrap_or_else(|error| panic!("{}: {error}", directory.display()));
            let mut replayed = 0;
            for entry in entries {
                let path = entry.expect("directory entry").path();
                run(&std::fs::read(&path).expect("regression input"));
                replayed += 1;
            }
            assert!(replayed > 0, "no inputs in {}", directory.display());
        }
    }

    /// The seed configs import without tripping a check (the targets are not vacuous).
    #[test]
    fn seeds_pass_the_checks() {
        let seeds = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/import/seeds");
        for (file, run) in [
            ("rke2-haproxy.cfg", super::haproxy as fn(&[u8])),
            ("rke2-keepalived.conf", super::keepalived),
            ("nginx-stream.conf", super::nginx),
        ] {
            run(&std::fs::read(seeds.join(file)).expect("seed"));
        }
    }
}
