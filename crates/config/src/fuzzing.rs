//! The body of the `config_read` cargo-fuzz target in `fuzz/`, kept here so that the
//! regression test below replays exactly what the fuzzer ran. Compiled for tests and with the
//! `fuzzing` feature only.
//!
//! [`read`] runs the whole reader (TOML syntax, schema, cross-checks) and the lints over any
//! text, and checks what an operator relies on: every problem names a line and column inside
//! the text it was given, and a config read without problems yields its lint warnings at
//! places inside the text too. A crash found by `scripts/fuzz.sh` becomes a regression test by
//! copying its input file into `crates/config/tests/fuzz_regressions/config_read/`.

use std::path::Path;

use crate::lint::{self, NoInterfaces};
use crate::place::Place;

/// The file name problems are reported under.
const FILE: &str = "fuzz.toml";

/// Input: config text (invalid UTF-8 is replaced, as `havip check` never sees it: it reads
/// the file as a string and reports a read error instead).
pub fn read(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let reading = crate::read(Path::new(FILE), &text);
    let lines = line_count(&text);
    for problem in &reading.problems {
        assert_inside(&problem.place, lines, &problem.message);
    }
    if reading.problems.is_empty() {
        let facts = lint::facts(&reading.config, &reading.places);
        for warning in lint::lint(&facts, &NoInterfaces) {
            assert_inside(&warning.place, lines, &warning.message);
        }
    }
}

/// Lines a place may name: one past the last newline counts (an error at the end of input).
fn line_count(text: &str) -> u32 {
    let newlines = text.bytes().filter(|&b| b == b'\n').count();
    u32::try_from(newlines)
        .unwrap_or(u32::MAX)
        .saturating_add(1)
}

fn assert_inside(place: &Place, lines: u32, message: &str) {
    assert_eq!(&*place.file, FILE, "{message}");
    assert!(
        (1..=lines).contains(&place.line),
        "line {} outside 1..={lines}: {message}",
        place.line
    );
    assert!(place.column >= 1, "column 0: {message}");
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    /// Replays every input saved under `tests/fuzz_regressions/config_read/`.
    #[test]
    fn fuzz_regressions_stay_fixed() {
        let directory =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions/config_read");
        let entries = std::fs::read_dir(&directory)
            .unwrap_or_else(|error| panic!("{}: {error}", directory.display()));
        let mut replayed = 0;
        for entry in entries {
            let path = entry.expect("directory entry").path();
            super::read(&std::fs::read(&path).expect("regression input"));
            replayed += 1;
        }
        assert!(replayed > 0, "no inputs in {}", directory.display());
    }
}
