//! Where something was written: the one location type of the workspace. Config problems,
//! lint warnings and the importer's report all point at a [`Place`]; a value that remembers
//! where it came from is an [`At`]; [`Places`] is where the reader saw each key of a file.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// A file, a 1-based line and column in it, and the key the value was written under: a TOML
/// key path (`vrrp[0].vrid`) or, for a foreign file, its directive (`virtual_router_id`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Place {
    /// The file as the user named it (or as an include resolved it).
    pub file: Arc<str>,
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
    /// The TOML key path or the foreign directive.
    pub key: String,
}

impl Place {
    /// A place in `file` at `line`:`column` under `key`.
    pub fn new(file: &Arc<str>, line: u32, column: u32, key: impl Into<String>) -> Place {
        Place {
            file: file.clone(),
            line,
            column,
            key: key.into(),
        }
    }

    /// The same position under another key.
    pub fn with_key(&self, key: impl Into<String>) -> Place {
        Place {
            key: key.into(),
            ..self.clone()
        }
    }
}

/// `file:line:column: key`, the prefix of every message about a place.
impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.key
        )
    }
}

/// A value and where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct At<T> {
    /// The value.
    pub value: T,
    /// Where it was written.
    pub place: Place,
}

impl<T> At<T> {
    /// `value`, written at `place`.
    pub fn new(value: T, place: Place) -> At<T> {
        At { value, place }
    }

    /// The same place with another value.
    pub fn map<U>(&self, f: impl FnOnce(&T) -> U) -> At<U> {
        At {
            value: f(&self.value),
            place: self.place.clone(),
        }
    }
}

/// Where each key and table of a havip config was written, by its dotted key path with
/// indices (`service[0].timeouts.connect`, `vrrp[1].virtual_addresses[2]`). The reader fills
/// it beside the typed config, so the stages after reading (preparing health checks, lints,
/// reload) can name the line of a value without walking the TOML again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Places {
    places: BTreeMap<String, Place>,
    strings: BTreeMap<String, String>,
}

impl Places {
    /// Where the value of `key` (a key path) was written.
    pub fn get(&self, key: &str) -> Option<&Place> {
        self.places.get(key)
    }

    /// `value` at the place of `key`, if `key` was written.
    pub fn at<T>(&self, key: &str, value: T) -> Option<At<T>> {
        self.get(key).map(|place| At::new(value, place.clone()))
    }

    /// A string value exactly as written, for checks of what the typed settings normalise
    /// away (a VRRPv2 password is cut to the 8 bytes that go on the wire).
    pub fn written(&self, key: &str) -> Option<&str> {
        self.strings.get(key).map(String::as_str)
    }

    /// Record `place` under its own key; a later record of the same key wins.
    pub fn insert(&mut self, place: Place) {
        self.places.insert(place.key.clone(), place);
    }

    /// Record the text of a string value written at `key`.
    pub fn insert_written(&mut self, key: impl Into<String>, text: impl Into<String>) {
        self.strings.insert(key.into(), text.into());
    }

    /// Every recorded place, in key order.
    pub fn iter(&self) -> impl Iterator<Item = &Place> {
        self.places.values()
    }
}
