//! What to import, and reading it: the files given on the command line, shown as given.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use havip_config::place::Place;

use crate::Report;

/// What to import; any subset.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// haproxy.cfg.
    pub haproxy: Option<PathBuf>,
    /// keepalived.conf, one per node.
    pub keepalived: Vec<PathBuf>,
    /// An nginx config with a `stream` block, or a file included inside one.
    pub nginx: Option<PathBuf>,
    /// Track scripts to read instead of the path keepalived would run.
    pub scripts: Vec<ScriptFile>,
}

/// A track script's content given on the command line (`--script [PATH=]FILE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptFile {
    /// The script path as keepalived.conf names it; `None`: match by file name.
    pub path_in_config: Option<String>,
    /// The file to read.
    pub file: PathBuf,
}

impl ScriptFile {
    /// `PATH=FILE` or `FILE`.
    pub fn parse(arg: &str) -> ScriptFile {
        match arg.split_once('=') {
            Some((path, file)) if !path.is_empty() && !file.is_empty() => ScriptFile {
                path_in_config: Some(path.to_string()),
                file: PathBuf::from(file),
            },
            _ => ScriptFile {
                path_in_config: None,
                file: PathBuf::from(arg),
            },
        }
    }
}

/// The display name of a path: as given on the command line, or as an include resolved it.
pub fn display(path: &Path) -> Arc<str> {
    Arc::from(path.to_string_lossy().as_ref())
}

/// Read one input file; a failure is reported as an error at line 1 of that file, under
/// `what` (`haproxy`, `keepalived`, `nginx`).
pub fn read_input(path: &Path, what: &str, report: &mut Report) -> Option<String> {
    match std::fs::read(path) {
        Ok(bytes) => Some(String::from_utf8_lossy(&bytes).into_owned()),
        Err(e) => {
            report.error(
                &Place::new(&display(path), 1, 1, what),
                format!("cannot read: {e}"),
            );
            None
        }
    }
}
