//! The seed imports against the reviewed outputs under `tests/import/expected/`, in-process.
//!
//! The expected outputs are the product: review them by hand when they change. To rewrite
//! them, run `HAVIP_BLESS=1 cargo test -p havip-import golden`: it writes the files that
//! differ and then fails, saying how many changed, so that only a run without `HAVIP_BLESS`
//! can pass; under `CI=true` blessing is refused. The CLI test (`crates/havip/tests/import.rs`)
//! checks that `havip import` writes these same bytes.

use std::path::{Path, PathBuf};

use super::valid::{assert_known_keys, havip_problems};
use crate::{emit, import, lint, output_paths, Imported, Inputs, ScriptFile};

fn seeds() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/import/seeds")
}

fn expected_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/import/expected")
}

/// Each seed file alone, and the seeds' natural sets: (case, `havip import` arguments). The
/// CLI test includes the same file.
pub const CASES: &[(&str, &[&str])] = include!("../../tests/import/cases.rs");

/// The inputs `havip import ARGS` run in the seeds directory would read, as absolute paths.
fn inputs(args: &[&str]) -> Inputs {
    let mut inputs = Inputs::default();
    for pair in args.chunks(2) {
        let file = seeds().join(pair[1]);
        match pair[0] {
            "--haproxy" => inputs.haproxy = Some(file),
            "--nginx" => inputs.nginx = Some(file),
            "--keepalived" => inputs.keepalived.push(file),
            "--script" => inputs
                .scripts
                .push(ScriptFile::parse(&file.to_string_lossy())),
            other => panic!("no such option in a case: {other}"),
        }
    }
    inputs
}

/// What `havip import ARGS -o DIR/` run in the seeds directory writes: (golden file name,
/// text) for each config, then the report as the CLI prints it.
pub fn outputs(case: &str, args: &[&str]) -> Vec<(String, String)> {
    let imported = import(&inputs(args), &lint::NoInterfaces);
    assert!(
        !imported.report.has_errors(),
        "{case}: the import has errors:\n{}",
        report_text(&imported)
    );
    let paths = output_paths(&imported.nodes, Some(Path::new("out/"))).unwrap();
    let several = imported.nodes.len() > 1;
    let mut files = Vec::new();
    for (node, path) in imported.nodes.iter().zip(paths) {
        let text = emit::emit(&node.draft, &imported.notes_for(node));
        let file = path
            .and_then(|p| p.file_name().map(|f| f.to_string_lossy().into_owned()))
            .unwrap();
        let name = if several {
            format!("{case}.{file}")
        } else {
            format!("{case}.toml")
        };
        files.push((name, relative(&text)));
    }
    files.sort();
    files.push((format!("{case}.report"), relative(&report_text(&imported))));
    files
}

/// The report as `havip import` prints it on standard error (without the `wrote` lines).
fn report_text(imported: &Imported) -> String {
    let mut text: String = imported
        .report
        .sorted()
        .iter()
        .map(|n| format!("{n}\n"))
        .collect();
    text.push_str(&format!(
        "havip import: {}; check each config with havip check --config FILE\n",
        imported.report.summary()
    ));
    text
}

/// Paths as the CLI shows them when run in the seeds directory with relative arguments.
fn relative(text: &str) -> String {
    text.replace(&format!("{}/", seeds().display()), "")
}

fn first_difference(want: &str, got: &str) -> String {
    for (i, (w, g)) in want.lines().zip(got.lines()).enumerate() {
        if w != g {
            return format!("line {}:\n  want: {w}\n  got:  {g}", i + 1);
        }
    }
    format!(
        "lengths differ: want {} lines, got {}",
        want.lines().count(),
        got.lines().count()
    )
}

#[test]
fn seed_imports_match_the_reviewed_outputs_and_are_stable() {
    let bless = std::env::var_os("HAVIP_BLESS").is_some();
    assert!(
        !(bless && std::env::var("CI").is_ok_and(|v| v == "true")),
        "HAVIP_BLESS is refused under CI=true: the expected outputs are reviewed, not rewritten by CI"
    );
    let mut failures = Vec::new();
    let mut produced = Vec::new();
    let mut changed = 0;
    for (case, args) in CASES {
        let files = outputs(case, args);
        assert_eq!(
            files,
            outputs(case, args),
            "{case}: the same input gave different output"
        );
        for (name, got) in files {
            let path = expected_dir().join(&name);
            let want = std::fs::read_to_string(&path).ok();
            if want.as_deref() != Some(got.as_str()) {
                if bless {
                    std::fs::write(&path, &got).unwrap();
                    changed += 1;
                } else {
                    failures.push(match want {
                        Some(want) => format!(
                            "{name} differs from {}:\n{}",
                            path.display(),
                            first_difference(&want, &got)
                        ),
                        None => format!("{}: missing", path.display()),
                    });
                }
            }
            produced.push(name);
        }
    }
    for entry in std::fs::read_dir(expected_dir()).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if !produced.contains(&name) {
            failures.push(format!(
                "{name}: no case produces it; remove it or add its case"
            ));
        }
    }
    assert!(
        !bless,
        "HAVIP_BLESS: {changed} of {} expected file(s) rewritten; review them, then run again without HAVIP_BLESS",
        produced.len()
    );
    assert!(
        failures.is_empty(),
        "{}\n\n(after reviewing the change: HAVIP_BLESS=1 cargo test -p havip-import golden)",
        failures.join("\n\n")
    );
}

/// Every reviewed config is one havip reads: only keys its reader knows, and no problem.
#[test]
fn every_expected_config_is_a_valid_havip_config() {
    let mut seen = 0;
    for entry in std::fs::read_dir(expected_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).unwrap();
            assert_known_keys(&name, &text);
            let problems = havip_problems(&name, &text);
            assert!(problems.is_empty(), "{name}:\n{}", problems.join("\n"));
            seen += 1;
        }
    }
    assert_eq!(seen, 15, "the expected configs: one per node of each case");
}
