//! The import's report: every directive (or part of one) that was not carried over, every
//! trap worth a warning, every syntax error, each at the [`Place`] it was written.

use std::fmt;
use std::sync::Arc;

use havip_config::place::Place;

/// How much a note matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// A directive (or part of one) that the havip config does not carry.
    Skipped,
    /// A trap: the config will not do what its author probably thinks (see [`havip_config::lint`]).
    Warning,
    /// The input is not valid; nothing is written.
    Error,
}

/// One line of the report: `file:line:col: directive: what: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// Where, and under which directive (the place's key).
    pub place: Place,
    /// Skipped, warning or error.
    pub severity: Severity,
    /// Why.
    pub message: String,
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.severity {
            Severity::Skipped => "not carried over",
            Severity::Warning => "warning",
            Severity::Error => "error",
        };
        write!(f, "{}: {what}: {}", self.place, self.message)
    }
}

/// Everything the import did not carry over, warned about, or could not read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// The notes in the order they were added (the same note is kept once).
    pub notes: Vec<Note>,
}

impl Report {
    /// A note at `place` (whose key names the directive), unless the same one is there.
    pub fn add(&mut self, severity: Severity, place: &Place, message: impl Into<String>) {
        let note = Note {
            place: place.clone(),
            severity,
            message: message.into(),
        };
        if !self.notes.contains(&note) {
            self.notes.push(note);
        }
    }

    /// Something written at `place` that the havip config does not carry.
    pub fn skip(&mut self, place: &Place, message: impl Into<String>) {
        self.add(Severity::Skipped, place, message);
    }

    /// A trap at `place`.
    pub fn warn(&mut self, place: &Place, message: impl Into<String>) {
        self.add(Severity::Warning, place, message);
    }

    /// Invalid input at `place`: nothing will be written.
    pub fn error(&mut self, place: &Place, message: impl Into<String>) {
        self.add(Severity::Error, place, message);
    }

    /// Whether any note is an error.
    pub fn has_errors(&self) -> bool {
        self.notes.iter().any(|n| n.severity == Severity::Error)
    }

    /// How many notes have `severity`.
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
        for note in &self.notes {
            if !files.contains(&note.place.file) {
                files.push(note.place.file.clone());
            }
        }
        let mut out = self.notes.clone();
        out.sort_by_key(|n| {
            let rank = files.iter().position(|f| *f == n.place.file).unwrap_or(0);
            (rank, n.place.line, n.place.column)
        });
        out
    }
}
