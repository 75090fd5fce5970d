//! haproxy.cfg's lines grouped into sections: a section keyword (`global`, `defaults`,
//! `frontend`, ...) starts a section wherever it appears, and the lines after it belong to
//! it. `.if` blocks are not evaluated: their lines are left out, and reported once.

use std::sync::Arc;

use havip_config::place::Place;

use super::lex::tokenize;
use crate::syntax::Word;
use crate::Report;

/// One non-empty line, split into words (never none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The words, the keyword first.
    pub words: Vec<Word>,
}

impl Line {
    /// The keyword.
    pub fn keyword(&self) -> &str {
        self.words.first().map_or("", |w| w.text.as_str())
    }

    /// The text of word `i` (the keyword is 0).
    pub fn arg(&self, i: usize) -> Option<&str> {
        self.words.get(i).map(|w| w.text.as_str())
    }

    /// Where word `i` is (the last word when there are fewer), under `key`.
    pub fn place(&self, i: usize, key: impl Into<String>) -> Place {
        match self.words.get(i).or(self.words.last()) {
            Some(word) => word.place_as(key),
            None => Place::new(&Arc::from(""), 0, 0, key),
        }
    }

    /// Where word `i` is, under the line's keyword.
    pub fn at(&self, i: usize) -> Place {
        self.place(i, self.keyword().to_string())
    }

    /// The words from `i` on, joined, for messages.
    pub fn text_from(&self, i: usize) -> String {
        self.words
            .iter()
            .skip(i)
            .map(|w| w.text.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// A section: its header line (`frontend NAME ...`) and the lines under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// `KIND NAME [from DEFAULTS] ...`.
    pub head: Line,
    /// The lines up to the next section.
    pub lines: Vec<Line>,
}

impl Section {
    /// `global`, `defaults`, `frontend`, `backend`, `listen`, ...
    pub fn kind(&self) -> &str {
        self.head.keyword()
    }

    /// The section's name, when it has one.
    pub fn name(&self) -> Option<&str> {
        self.head.arg(1)
    }
}

/// A parsed haproxy.cfg.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cfg {
    /// The sections in file order.
    pub sections: Vec<Section>,
}

/// The keywords that start a section.
const SECTIONS: &[&str] = &[
    "global",
    "defaults",
    "frontend",
    "backend",
    "listen",
    "peers",
    "resolvers",
    "userlist",
    "mailers",
    "program",
    "http-errors",
    "ring",
    "cache",
    "fcgi-app",
    "crt-store",
    "traces",
    "log-forward",
    "acme",
];

/// Parse haproxy.cfg into sections. Syntax problems are reported as errors with file and
/// line; parsing continues so every problem is listed.
pub fn parse(file: &Arc<str>, text: &str, report: &mut Report) -> Cfg {
    let mut cfg = Cfg::default();
    // The `.if` blocks being skipped, where each began.
    let mut conditions: Vec<Place> = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let number = u32::try_from(index + 1).unwrap_or(u32::MAX);
        let Some(line) = line(file, number, raw, report) else {
            continue;
        };
        if line.keyword().starts_with('.') {
            directive(&line, &mut conditions, report);
        } else if !conditions.is_empty() {
            // Inside an `.if`: not imported.
        } else if SECTIONS.contains(&line.keyword()) {
            cfg.sections.push(Section {
                head: line,
                lines: Vec::new(),
            });
        } else if let Some(section) = cfg.sections.last_mut() {
            section.lines.push(line);
        } else {
            report.error(
                &line.at(0),
                "directive outside any section (global, defaults, frontend, backend, listen)",
            );
        }
    }
    if let Some(open) = conditions.first() {
        report.error(open, "not closed by .endif");
    }
    cfg
}

/// One line's words, or None for an empty line or a syntax error (reported).
fn line(file: &Arc<str>, number: u32, raw: &str, report: &mut Report) -> Option<Line> {
    let words = match tokenize(raw) {
        Ok(words) => words,
        Err(e) => {
            report.error(&Place::new(file, number, e.column, "(syntax)"), e.message);
            return None;
        }
    };
    let words: Vec<Word> = words
        .into_iter()
        .map(|w| Word::new(w.text, file, number, w.column, w.quoted))
        .collect();
    (!words.is_empty()).then_some(Line { words })
}

/// A `.if` / `.elif` / `.else` / `.endif` or another configuration directive.
fn directive(line: &Line, conditions: &mut Vec<Place>, report: &mut Report) {
    let place = line.at(0);
    match line.keyword() {
        ".if" => {
            if conditions.is_empty() {
                report.skip(
                    &place,
                    "conditional blocks are not evaluated; the lines up to .endif are not imported",
                );
            }
            conditions.push(place);
        }
        ".endif" => {
            if conditions.pop().is_none() {
                report.error(&place, "no .if to end");
            }
        }
        ".elif" | ".else" => {
            if conditions.is_empty() {
                report.error(&place, "outside an .if block");
            }
        }
        _ => report.skip(&place, "configuration directive not evaluated"),
    }
}
