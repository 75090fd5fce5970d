//! Where something was written: the one location type of the workspace. Config problems,
//! lint warnings and the importer's report all point at a [`Place`]; a value that remembers
//! where it came from is an [`At`].

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
