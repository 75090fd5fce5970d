//! Reading a TOML document key by key while collecting *every* problem with its line.
//!
//! serde stops at the first error, but `havip check` must list every problem in one go, each
//! with file, line and key. So the config is read from `toml`'s spanned document tree by
//! hand: each [`TableReader`] hands out typed values, records a [`Problem`] for each value of
//! the wrong type or out of range and carries on, and at the end reports keys nobody asked for
//! (unknown keys are errors, with a "did you mean" when one is close). Every key it reads is
//! also recorded in [`Places`], which the reader returns beside the typed config.
//!
//! Inside the reader positions are byte spans ([`Written`]); they become [`Place`]s (file,
//! line, column, key) when recorded.

use std::fmt;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use toml::de::{DeString, DeTable, DeValue};
use toml::Spanned;

use crate::duration::parse_duration;
use crate::place::{Place, Places};
use crate::Problem;

/// A byte range in the config text.
pub(crate) type Span = Range<usize>;

/// A value with the bytes it was written at.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Written<T> {
    pub value: T,
    pub span: Span,
}

/// What reading records: every problem found so far, and where each key was written.
#[derive(Debug)]
pub(crate) struct Record {
    file: Arc<str>,
    line_starts: Vec<usize>,
    pub problems: Vec<Problem>,
    pub places: Places,
}

impl Record {
    pub fn new(file: &Path, text: &str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Record {
            file: file.display().to_string().into(),
            line_starts,
            problems: Vec::new(),
            places: Places::default(),
        }
    }

    /// 1-based line and column of a byte offset.
    pub fn locate(&self, offset: usize) -> (usize, usize) {
        let line = self.line_starts.partition_point(|&start| start <= offset);
        let start = self.line_starts[line.saturating_sub(1)];
        (line.max(1), offset - start + 1)
    }

    /// The place of a span under `key`.
    pub fn place(&self, span: &Span, key: impl Into<String>) -> Place {
        let (line, column) = self.locate(span.start);
        let line = u32::try_from(line).unwrap_or(u32::MAX);
        let column = u32::try_from(column).unwrap_or(u32::MAX);
        Place::new(&self.file, line, column, key)
    }

    pub fn add(&mut self, span: &Span, key: impl Into<String>, message: impl Into<String>) {
        let place = self.place(span, key);
        self.problems.push(Problem::new(place, message));
    }

    /// A problem at the place recorded for `key` (the start of the file if none was).
    pub fn add_at(&mut self, key: &str, message: impl Into<String>) {
        let place = match self.places.get(key) {
            Some(place) => place.clone(),
            None => self.place(&(0..0), key),
        };
        self.problems.push(Problem::new(place, message));
    }

    /// Remember that `key` was written at `span`.
    pub fn note(&mut self, span: &Span, key: impl Into<String>) {
        let place = self.place(span, key);
        self.places.insert(place);
    }

    /// How many problems were found so far (to tell whether a part read cleanly).
    pub fn count(&self) -> usize {
        self.problems.len()
    }

    /// `at`'s text parsed by `parse`; an error becomes a problem at `key`.
    pub fn parsed<T, E: fmt::Display>(
        &mut self,
        key: &str,
        at: &Written<String>,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Option<T> {
        match parse(&at.value) {
            Ok(value) => Some(value),
            Err(e) => {
                self.add(&at.span, key, e.to_string());
                None
            }
        }
    }
}

/// A name that labels metrics and logs: letters, digits, '-', '_' and '.'.
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Typed access to one TOML table; remembers which keys were read.
pub(crate) struct TableReader<'t, 'i> {
    path: String,
    table: &'t DeTable<'i>,
    span: Span,
    used: Vec<String>,
    known: &'static [&'static str],
}

type Entry<'t, 'i> = (&'t Spanned<DeString<'i>>, &'t Spanned<DeValue<'i>>);

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

    fn entry(&self, key: &str) -> Option<Entry<'t, 'i>> {
        self.table.iter().find(|(k, _)| k.get_ref().as_ref() == key)
    }

    /// Mark `key` as read and record where its value was written.
    fn mark(&mut self, p: &mut Record, key: &str, value: &Spanned<DeValue<'_>>) {
        self.used.push(key.to_string());
        p.note(&value.span(), self.key(key));
    }

    /// The raw value of a key, marked as read; for readers of values with several shapes.
    pub fn raw_value(&mut self, p: &mut Record, key: &str) -> Option<&'t Spanned<DeValue<'i>>> {
        debug_assert!(
            self.known.contains(&key),
            "{key} missing from the known list"
        );
        let (_, value) = self.entry(key)?;
        self.mark(p, key, value);
        Some(value)
    }

    /// Mark a key as handled without reading it (e.g. after reporting that it does not apply),
    /// returning where the key was written.
    pub fn consume(&mut self, p: &mut Record, key: &str) -> Option<Span> {
        let (k, value) = self.entry(key)?;
        self.mark(p, key, value);
        Some(k.span())
    }

    /// A string value without marking it read (for checks that relate two keys).
    pub fn peek_string(&self, key: &str) -> Option<String> {
        self.entry(key).and_then(|(_, v)| match v.get_ref() {
            DeValue::String(s) => Some(s.to_string()),
            _ => None,
        })
    }

    /// A boolean value without marking it read.
    pub fn peek_bool(&self, key: &str) -> Option<bool> {
        self.entry(key).and_then(|(_, v)| match v.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            _ => None,
        })
    }

    /// The table's `name`, which every service, instance and tracker needs; it names metrics
    /// and logs. Missing or invalid, it is a problem (and the name as read, or empty).
    pub fn required_name(&mut self, p: &mut Record, what: &str) -> String {
        match self.string(p, "name") {
            Some(Written { value, span }) => {
                if !valid_name(&value) {
                    p.add(
                        &span,
                        self.key("name"),
                        "use letters, digits, '-', '_' and '.' only (it names metrics and logs)",
                    );
                }
                value
            }
            None => {
                p.add(
                    &self.span(),
                    self.key("name"),
                    format!("missing: every {what} needs a name"),
                );
                String::new()
            }
        }
    }

    pub fn has(&self, key: &str) -> bool {
        self.entry(key).is_some()
    }

    fn wrong_type(&self, p: &mut Record, key: &str, v: &Spanned<DeValue<'_>>, expected: &str) {
        p.add(
            &v.span(),
            self.key(key),
            format!("expected {expected}, found {}", v.get_ref().type_str()),
        );
    }

    pub fn string(&mut self, p: &mut Record, key: &str) -> Option<Written<String>> {
        let v = self.raw_value(p, key)?;
        match v.get_ref() {
            DeValue::String(s) => {
                p.places.insert_written(self.key(key), s.as_ref());
                Some(Written {
                    value: s.to_string(),
                    span: v.span(),
                })
            }
            _ => {
                self.wrong_type(p, key, v, "a string");
                None
            }
        }
    }

    pub fn bool(&mut self, p: &mut Record, key: &str) -> Option<bool> {
        let v = self.raw_value(p, key)?;
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
        p: &mut Record,
        key: &str,
        range: std::ops::RangeInclusive<i64>,
    ) -> Option<Written<i64>> {
        let v = self.raw_value(p, key)?;
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
            Ok(n) if range.contains(&n) => Some(Written {
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
        p: &mut Record,
        key: &str,
        range: std::ops::RangeInclusive<u32>,
    ) -> Option<u32> {
        let wide = i64::from(*range.start())..=i64::from(*range.end());
        let n = self.int(p, key, wide)?.value;
        // In range, so it fits.
        u32::try_from(n).ok()
    }

    pub fn duration(&mut self, p: &mut Record, key: &str) -> Option<Written<Duration>> {
        let v = self.raw_value(p, key)?;
        match v.get_ref() {
            DeValue::String(s) => match parse_duration(s) {
                Ok(d) => Some(Written {
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

    /// A duration longer than zero.
    pub fn positive_duration(&mut self, p: &mut Record, key: &str) -> Option<Duration> {
        let d = self.duration(p, key)?;
        if d.value.is_zero() {
            p.add(&d.span, self.key(key), "must be longer than 0");
            return None;
        }
        Some(d.value)
    }

    /// A duration of at least `min`.
    pub fn duration_at_least(
        &mut self,
        p: &mut Record,
        key: &str,
        min: Duration,
    ) -> Option<Duration> {
        let d = self.duration(p, key)?;
        if d.value < min {
            p.add(&d.span, self.key(key), format!("must be at least {min:?}"));
            return None;
        }
        Some(d.value)
    }

    /// A duration that may also be turned off with `"off"`: `Some(None)` means off.
    pub fn duration_or_off(
        &mut self,
        p: &mut Record,
        key: &str,
    ) -> Option<Option<Written<Duration>>> {
        if let Some((_, v)) = self.entry(key) {
            if let DeValue::String(s) = v.get_ref() {
                if s.trim() == "off" {
                    self.mark(p, key, v);
                    return Some(None);
                }
            }
        }
        self.duration(p, key).map(Some)
    }

    /// A string, or an array of strings (`listen = "a"` or `listen = ["a", "b"]`).
    pub fn strings(&mut self, p: &mut Record, key: &str) -> Option<Vec<Written<String>>> {
        let v = self.raw_value(p, key)?;
        match v.get_ref() {
            DeValue::String(s) => Some(vec![Written {
                value: s.to_string(),
                span: v.span(),
            }]),
            DeValue::Array(items) => {
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    let item_key = format!("{}[{i}]", self.key(key));
                    p.note(&item.span(), &item_key);
                    match item.get_ref() {
                        DeValue::String(s) => out.push(Written {
                            value: s.to_string(),
                            span: item.span(),
                        }),
                        other => p.add(
                            &item.span(),
                            item_key,
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

    /// An array whose items may have several shapes (e.g. `expect_status = [200, "300-399"]`).
    pub fn array(&mut self, p: &mut Record, key: &str) -> Option<Vec<&'t Spanned<DeValue<'i>>>> {
        let v = self.raw_value(p, key)?;
        match v.get_ref() {
            DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    p.note(&item.span(), format!("{}[{i}]", self.key(key)));
                }
                Some(items.iter().collect())
            }
            _ => {
                self.wrong_type(p, key, v, "an array");
                None
            }
        }
    }

    /// A sub-table (`[service.health]` or an inline table).
    pub fn table(
        &mut self,
        p: &mut Record,
        key: &str,
        known: &'static [&'static str],
    ) -> Option<TableReader<'t, 'i>> {
        let path = self.key(key);
        let v = self.raw_value(p, key)?;
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
        p: &mut Record,
        key: &str,
        known: &'static [&'static str],
    ) -> Vec<TableReader<'t, 'i>> {
        let path = self.key(key);
        let Some(v) = self.raw_value(p, key) else {
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
            let item_path = format!("{path}[{i}]");
            p.note(&item.span(), &item_path);
            match item.get_ref() {
                DeValue::Table(t) => out.push(TableReader::new(item_path, t, item.span(), known)),
                other => p.add(
                    &item.span(),
                    item_path,
                    format!("expected a table, found {}", other.type_str()),
                ),
            }
        }
        out
    }

    /// Report every key of the table that no reader asked for.
    pub fn finish(self, p: &mut Record) {
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

/// The candidate closest to a misspelt key or value, if it is close enough to be a likely
/// typo. Distance is optimal string alignment (`strsim::osa_distance`): a swapped pair of
/// letters (`weigth`) is one edit, as people make it, not two.
pub(crate) fn closest(name: &str, candidates: &[&'static str]) -> Option<&'static str> {
    candidates
        .iter()
        .map(|c| (strsim::osa_distance(name, c), *c))
        // Up to a quarter of the letters, and at least 2.
        .filter(|(d, c)| *d <= 2.max(c.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// The message for a value that is none of `choices`: a "did you mean" when one is close,
/// otherwise what is allowed (`list`).
pub(crate) fn not_one_of(value: &str, what: &str, choices: &[&'static str], list: &str) -> String {
    match closest(value, choices) {
        Some(near) => format!("{value:?} is not {what}; did you mean {near:?}?"),
        None => format!("{value:?} is not {what} ({list})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_columns_are_one_based() {
        let p = Record::new(Path::new("x.toml"), "a = 1\nbb = 2\n\nc = 3");
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

    #[test]
    fn a_swapped_pair_is_one_edit() {
        // Two swaps: 2 edits, where Levenshtein counts 4, more than a key of 8 letters allows.
        let health = crate::keys::HEALTH.keys;
        assert_eq!(closest("itnervla", health), Some("interval"));
        assert_eq!(closest("tmieotu", health), Some("timeout"));
        assert_eq!(closest("prot", health), Some("port"));
        assert_eq!(closest("cehck", health), Some("check"));
        assert_eq!(closest("grpc", &["tcp", "http", "https", "none"]), None);
        assert_eq!(
            not_one_of(
                "lesat_conn",
                "a balance algorithm",
                &["least_conn"],
                "use least_conn"
            ),
            "\"lesat_conn\" is not a balance algorithm; did you mean \"least_conn\"?"
        );
    }
}
