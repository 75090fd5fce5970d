//! keepalived's `include` and its variants, as keepalived 2.2 reads them (lib/parser.c,
//! checked against keepalived 2.2.7 with `keepalived -t`).
//!
//! An include line is `include PATTERN` (or `includer`, `includem`, `includew`, `includeb`,
//! `includea`): the rest of the line, comments removed, is a glob(3) pattern with
//! `GLOB_BRACE`, relative to the including file's directory (see [`crate::glob`]). The
//! variants add checks; a check that fails is an error (keepalived refuses the config),
//! otherwise keepalived logs it and goes on, and the import notes it as not carried over:
//!
//! | variant | R: a file found cannot be read | M: nothing, a name without wildcards missing | W: nothing matches | B: some match, some missing |
//! | --- | --- | --- | --- | --- |
//! | `include` | note | note | note | note |
//! | `includer` | error | note | note | note |
//! | `includem` | error | error | note | note |
//! | `includew` | error | error | error | note |
//! | `includeb` | error | note | note | error |
//! | `includea` | error | error | error | error |
//!
//! "Missing" is what glob(3) notices: a path without wildcards that does not exist, or a
//! directory to search that cannot be read; a wildcard that matches nothing in an existing
//! directory is only "no file". When nothing at all matches, a brace pattern's missing files
//! count under B and any other pattern's under M. When some files match and others are
//! missing, B fails the whole include (none of its files is read). Each file found must be a
//! regular file without execute permission (R: keepalived skips others).

use std::path::{Path, PathBuf};

use havip_config::place::Place;

use crate::glob;
use crate::Report;

/// The checks an include variant adds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Checks {
    /// R: each file found must be a readable regular, non-executable file.
    pub read: bool,
    /// M: some file must match, unless the pattern has a wildcard.
    pub matched: bool,
    /// W: some file must match.
    pub wildcard: bool,
    /// B: every alternative of a brace pattern must match.
    pub brace: bool,
}

impl Checks {
    /// The checks of an include keyword; None when it is not one.
    pub fn of(keyword: &str) -> Option<Checks> {
        let (read, matched, wildcard, brace) = match keyword {
            "include" => (false, false, false, false),
            "includer" => (true, false, false, false),
            "includem" => (true, true, false, false),
            "includew" => (true, true, true, false),
            "includeb" => (true, false, false, true),
            "includea" => (true, true, true, true),
            _ => return None,
        };
        Some(Checks {
            read,
            matched,
            wildcard,
            brace,
        })
    }
}

/// An include line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncludeLine {
    /// `include`, `includer`, ...
    pub keyword: String,
    /// The checks it adds.
    pub checks: Checks,
    /// The pattern (may be empty: an error).
    pub pattern: String,
    /// The keyword's column (1-based).
    pub column: u32,
}

/// `line` as an include line, when it is one: an include keyword at the start (after
/// whitespace), then whitespace or the end of the line.
pub fn include_line(line: &str) -> Option<IncludeLine> {
    let trimmed = line.trim_start();
    let keyword_len = trimmed
        .find(|c: char| c.is_whitespace())
        .unwrap_or(trimmed.len());
    let keyword = &trimmed[..keyword_len];
    let checks = Checks::of(keyword)?;
    let leading = line.len() - trimmed.len();
    let column = u32::try_from(line[..leading].chars().count() + 1).unwrap_or(u32::MAX);
    Some(IncludeLine {
        keyword: keyword.to_string(),
        checks,
        pattern: decomment(trimmed[keyword_len..].trim_start_matches([' ', '\t'])),
        column,
    })
}

/// The pattern as keepalived's `decomment` leaves it: cut at a `#` or `!` outside double
/// quotes (`\#` and `\!` there are the characters themselves), trailing blanks removed.
fn decomment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                quoted = !quoted;
                out.push(c);
            }
            '\\' => match chars.peek() {
                Some(&next @ ('#' | '!')) if !quoted => {
                    out.push(next);
                    chars.next();
                }
                Some(&next) => {
                    out.push(c);
                    out.push(next);
                    chars.next();
                }
                None => out.push(c),
            },
            '#' | '!' if !quoted => break,
            c => out.push(c),
        }
    }
    out.trim_end_matches([' ', '\t']).to_string()
}

/// A failed check: an error when the variant has it, else a note.
pub fn problem(error: bool, place: &Place, message: String, report: &mut Report) {
    if error {
        report.error(place, message);
    } else {
        report.skip(place, message);
    }
}

/// Whether `pattern` has a `{` (not escaped), as keepalived's `have_brace` asks.
fn has_brace(pattern: &str) -> bool {
    let mut escaped = false;
    for c in pattern.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '{' => return true,
            _ => {}
        }
    }
    false
}

/// The files an include line names, in the order keepalived reads them; what fails is
/// reported at `place`.
pub fn files(
    base_dir: &Path,
    include: &IncludeLine,
    place: &Place,
    report: &mut Report,
) -> Vec<PathBuf> {
    let checks = include.checks;
    let shown = base_dir.join(&include.pattern);
    let Some(alternatives) = glob::expand_braces(&include.pattern) else {
        report.error(
            place,
            format!(
                "{}: more than {} alternatives",
                shown.display(),
                glob::MAX_ALTERNATIVES
            ),
        );
        return Vec::new();
    };
    let mut found = glob::Matches::default();
    for alternative in alternatives {
        // Each alternative is relative to the including file's directory, or absolute.
        let matches = glob::glob(&base_dir.join(alternative));
        found.paths.extend(matches.paths);
        found.missing |= matches.missing;
        found.wildcards |= matches.wildcards;
    }
    let brace = has_brace(&include.pattern);
    if found.paths.is_empty() {
        let (error, what) = if found.missing {
            (
                if brace { checks.brace } else { checks.matched },
                "no such file",
            )
        } else {
            (checks.wildcard, "no file matches")
        };
        problem(error, place, format!("{}: {what}", shown.display()), report);
        return Vec::new();
    }
    if found.missing {
        if checks.brace {
            report.error(
                place,
                format!(
                    "{}: some files are missing, so {} reads none of them",
                    shown.display(),
                    include.keyword
                ),
            );
            return Vec::new();
        }
        report.skip(
            place,
            format!(
                "{}: some files are missing; the others are read",
                shown.display()
            ),
        );
    }
    found
        .paths
        .into_iter()
        .filter(|file| readable(file, checks.read, place, report))
        .collect()
}

/// Whether keepalived reads `file`: a regular file without execute permission.
fn readable(file: &Path, error: bool, place: &Place, report: &mut Report) -> bool {
    let why = match std::fs::metadata(file) {
        Err(_) => return true, // reading it reports why
        Ok(meta) if meta.is_dir() => "is a directory",
        Ok(meta) if !meta.is_file() || executable(&meta) => "is not a regular non-executable file",
        Ok(_) => return true,
    };
    problem(
        error,
        place,
        format!("{}: {why}; keepalived skips it", file.display()),
        report,
    );
    false
}

#[cfg(unix)]
fn executable(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn executable(_: &std::fs::Metadata) -> bool {
    false
}
