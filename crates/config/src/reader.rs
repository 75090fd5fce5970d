//! Reading a TOML document key by key while collecting *every* problem with its line.
//!
//! serde stops at the first error, but `havip check` must list every problem in one go, each
//! with file, line and key. So the config is read from `toml`'s spanned document tree by
//! hand: each [`TableReader`] hands out typed values, records a [`Problem`] for each value of
//! the wrong type or out of range and carries on, and at the end reports keys nobody asked for
//! (unknown keys are errors, with a "did you mean" when one is close).

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use crate::duration::parse_duration;

/// A byte range in the config text.
pub type Span = Range<usize>;

/// One thing wrong with a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    /// Dotted path of the key, e.g. `service[0].backend[1].weight`.
    pub key: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}: {}",
            self.file.display(),
            self.line,
            self.column,
            self.key,
            self.message
        )
    }
}

/// The problems found so far, and how to turn byte offsets into lines.
#[derive(Debug)]
pub struct Problems {
    file: PathBuf,
    line_starts: Vec<usize>,
    pub list: Vec<Problem>,
}

impl Problems {
    pub fn new(file: &Path, text: &str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Problems {
            file: file.to_path_buf(),
            line_starts,
            list: Vec::new(),
        }
    }

    /// 1-based line and column of a byte offset.
    pub fn locate(&self, offset: usize) -> (usize, usize) {
        let line = self.line_starts.partition_point(|&start| start <= offset);
        let start = self.line_starts[line.saturating_sub(1)];
        (line.max(1), offset - start + 1)
    }

    pub fn add(&mut self, span: &Span, key: impl Into<String>, message: impl Into<String>) {
        let (line, column) = self.locate(span.start);
        self.list.push(Problem {
            file: self.file.clone(),
            line,
            column,
            key: key.into(),
            message: message.into(),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

/// Typed access to one TOML table; remembers which keys were read.
pub struct TableReader<'t, 'i> {
    path: String,
    table: &'t DeTable<'i>,
    span: Span,
    used: Vec<String>,
    known: &'static [&'static str],
}

/// A value with where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct At<T> {
    pub value: T,
    pub span: Span,
}

impl<'t, 'i> TableReader<'t, 'i> {
    /// `known` lists every key the table may have, for unknown-key errors and suggestions.
    pub fn new(
        path: impl Into<String>,
        table: &'t DeTable<'i>,
        span: Span,
        known: &'static [&'static str],
    ) -> Self {
        TableReader {
            path: path.into(),
            table,
            span,
            used: Vec::new(),
            known,
        }
    }

    /// Dotted path of a key of this table.
    pub fn key(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// The dotted path of the table itself.
    pub fn path_key(&self) -> String {
        self.path.clone()
    }

    /// Where the table itself starts, for problems about a missing key.
    pub fn span(&self) -> Span {
        self.span.clone()
    }

    fn raw(&mut self, key: &str) -> Option<&'t Spanned<DeValue<'i>>> {
        debug_assert!(
            self.known.contains(&key),
            "{key} missing from the known list"
        );
        let (_, value) = self
            .table
            .iter()
            .find(|(k, _)| k.get_ref().as_ref() == key)?;
        self.used.push(key.to_string());
        Some(value)
    }

    /// Mark a key as handled without reading it (e.g. after reporting that it does not apply),
    /// returning where it was written.
    pub fn consume(&mut self, key: &str) -> Option<Span> {
        let (k, _) = self
            .table
            .iter()
            .find(|(k, _)| k.get_ref().as_ref() == key)?;
        self.used.push(key.to_string());
        Some(k.span())
    }

    /// The raw value of a key, marked as read; for readers of values with several shapes.
    pub fn raw_value(&mut self, key: &str) -> Option<&'t Spanned<DeValue<'i>>> {
        self.raw(key)
    }

    /// A string value without marking it read (for checks that relate two keys).
    pub fn peek_string(&self, key: &str) -> Option<String> {
        self.table
            .iter()
            .find(|(k, _)| k.get_ref().as_ref() == key)
            .and_then(|(_, v)| match v.get_ref() {
                DeValue::String(s) => Some(s.to_string()),
                _ => None,
            })
    }

    /// A boolean value without marking it read.
    pub fn peek_bool(&self, key: &str) -> Option<bool> {
        self.table
            .iter()
            .find(|(k, _)| k.get_ref().as_ref() == key)
            .and_then(|(_, v)| match v.get_ref() {
                DeValue::Boolean(b) => Some(*b),
                _ => None,
            })
    }

    pub fn has(&self, key: &str) -> bool {
        self.table.iter().any(|(k, _)| k.get_ref().as_ref() == key)
    }

    fn wrong_type(&self, p: &mut Problems, key: &str, v: &Spanned<DeValue<'_>>, expected: &str) {
        p.add(
            &v.span(),
            self.key(key),
            format!("expected {expected}, found {}", v.get_ref().type_str()),
        );
    }

    pub fn string(&mut self, p: &mut Problems, key: &str) -> Option<At<String>> {
        let v = self.raw(key)?;
        match v.get_ref() {
            DeValue::String(s) => Some(At {
                value: s.to_string(),
                span: v.span(),
            }),
            _ => {
                self.wrong_type(p, key, v, "a string");
                None
            }
        }
    }

    pub fn bool(&mut self, p: &mut Problems, key: &str) -> Option<bool> {
        let v = self.raw(key)?;
        match v.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            _ => {
                self.wrong_type(p, key, v, "true or false");
                None
            }
        }
    }

    /// An integer within `range` (inclusive).
    pub fn int(
        &mut self,
        p: &mut Problems,
        key: &str,
        range: std::ops::RangeInclusive<i64>,
    ) -> Option<At<i64>> {
        let v = self.raw(key)?;
        let DeValue::Integer(int) = v.get_ref() else {
            self.wrong_type(p, key, v, "an integer");
            return None;
        };
        let digits: String = int.as_str().chars().filter(|&c| c != '_').collect();
        let digits = digits.strip_prefix('+').unwrap_or(&digits);
        let digits = match int.radix() {
            16 => digits.trim_start_matches("0x"),
            8 => digits.trim_start_matches("0o"),
            2 => digits.trim_start_matches("0b"),
            _ => digits,
        };
        match i64::from_str_radix(digits, int.radix()) {
            Ok(n) if range.contains(&n) => Some(At {
                value: n,
                span: v.span(),
            }),
            Ok(n) => {
                p.add(
                    &v.span(),
                    self.key(key),
                    format!("{n} is out of range ({}..={})", range.start(), range.end()),
                );
                None
            }
            Err(_) => {
                p.add(&v.span(), self.key(key), "integer out of range");
                None
            }
        }
    }

    pub fn u32(
        &mut self,
        p: &mut Problems,
        key: &str,
        range: std::ops::RangeInclusive<u32>,
    ) -> Option<u32> {
        let wide = i64::from(*range.start())..=i64::from(*range.end());
        self.int(p, key, wide).map(|at| at.value as u32)
    }

    pub fn duration(&mut self, p: &mut Problems, key: &str) -> Option<At<Duration>> {
        let v = self.raw(key)?;
        match v.get_ref() {
            DeValue::String(s) => match parse_duration(s) {
                Ok(d) => Some(At {
                    value: d,
                    span: v.span(),
                }),
                Err(message) => {
                    p.add(&v.span(), self.key(key), message);
                    None
                }
            },
            DeValue::Integer(_) => {
                p.add(
                    &v.span(),
                    self.key(key),
                    "durations are strings with a unit, like \"5s\" or \"500ms\"",
                );
                None
            }
            _ => {
                self.wrong_type(p, key, v, "a duration string like \"5s\"");
                None
            }
        }
    }

    /// A duration that may also be turned off with `"off"`: `Some(None)` means off.
    pub fn duration_or_off(&mut self, p: &mut Problems, key: &str) -> Option<Option<At<Duration>>> {
        if let Some(v) = self
            .table
            .iter()
            .find(|(k, _)| k.get_ref().as_ref() == key)
            .map(|(_, v)| v)
        {
            if let DeValue::String(s) = v.get_ref() {
                if s.trim() == "off" {
                    self.used.push(key.to_string());
                    return Some(None);
                }
            }
        }
        self.duration(p, key).map(Some)
    }

    /// A string, or an array of strings (`listen = "a"` or `listen = ["a", "b"]`).
    pub fn strings(&mut self, p: &mut Problems, key: &str) -> Option<Vec<At<String>>> {
        let v = self.raw(key)?;
        match v.get_ref() {
            DeValue::String(s) => Some(vec![At {
                value: s.to_string(),
                span: v.span(),
            }]),
            DeValue::Array(items) => {
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    match item.get_ref() {
                        DeValue::String(s) => out.push(At {
                            value: s.to_string(),
                            span: item.span(),
                        }),
                        other => p.add(
                            &item.span(),
                            format!("{}[{i}]", self.key(key)),
                            format!("expected a string, found {}", other.type_str()),
                        ),
                    }
                }
                Some(out)
            }
            _ => {
                self.wrong_type(p, key, v, "a string or an array of strings");
                None
            }
        }
    }

    /// An array whose items may be integers or strings (e.g. `expect_status = [200, "300-399"]`).
    pub fn array(&mut self, p: &mut Problems, key: &str) -> Option<Vec<&'t Spanned<DeValue<'i>>>> {
        let v = self.raw(key)?;
        match v.get_ref() {
            DeValue::Array(items) => Some(items.iter().collect()),
            _ => {
                self.wrong_type(p, key, v, "an array");
                None
            }
        }
    }

    /// A sub-table (`[service.health]` or an inline table).
    pub fn table(
        &mut self,
        p: &mut Problems,
        key: &str,
        known: &'static [&'static str],
    ) -> Option<TableReader<'t, 'i>> {
        let path = self.key(key);
        let v = self.raw(key)?;
        match v.get_ref() {
            DeValue::Table(t) => Some(TableReader::new(path, t, v.span(), known)),
            _ => {
                self.wrong_type(p, key, v, "a table");
                None
            }
        }
    }

    /// An array of tables (`[[service]]`); each item's path carries its index.
    pub fn tables(
        &mut self,
        p: &mut Problems,
        key: &str,
        known: &'static [&'static str],
    ) -> Vec<TableReader<'t, 'i>> {
        let path = self.key(key);
        let Some(v) = self.raw(key) else {
            return Vec::new();
        };
        let DeValue::Array(items) = v.get_ref() else {
            p.add(
                &v.span(),
                path,
                format!(
                    "expected an array of tables ([[{key}]]), found {}",
                    v.get_ref().type_str()
                ),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            match item.get_ref() {
                DeValue::Table(t) => out.push(TableReader::new(
                    format!("{path}[{i}]"),
                    t,
                    item.span(),
                    known,
                )),
                other => p.add(
                    &item.span(),
                    format!("{path}[{i}]"),
                    format!("expected a table, found {}", other.type_str()),
                ),
            }
        }
        out
    }

    /// Report every key of the table that no reader asked for.
    pub fn finish(self, p: &mut Problems) {
        for (k, _) in self.table.iter() {
            let name = k.get_ref().as_ref();
            if self.used.iter().any(|u| u == name) {
                continue;
            }
            let hint = if self.known.contains(&name) {
                "not used here (see the problems above)".to_string()
            } else {
                match closest(name, self.known) {
                    Some(near) => format!("unknown key; did you mean `{near}`?"),
                    None => format!("unknown key (allowed here: {})", self.known.join(", ")),
                }
            };
            p.add(&k.span(), self.key(name), hint);
        }
    }
}

/// The known key closest to a misspelt one, if it is close enough to be a likely typo.
fn closest(name: &str, known: &[&'static str]) -> Option<&'static str> {
    known
        .iter()
        .map(|k| (edit_distance(name, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, &cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_columns_are_one_based() {
        let p = Problems::new(Path::new("x.toml"), "a = 1\nbb = 2\n\nc = 3");
        assert_eq!(p.locate(0), (1, 1));
        assert_eq!(p.locate(4), (1, 5));
        assert_eq!(p.locate(6), (2, 1));
        assert_eq!(p.locate(14), (4, 1));
    }

    #[test]
    fn suggestions_for_typos_only() {
        let known = &["weight", "address", "max_conns", "backup", "name"];
        assert_eq!(closest("weigth", known), Some("weight"));
        assert_eq!(closest("adress", known), Some("address"));
        assert_eq!(closest("colour", known), None);
    }
}
