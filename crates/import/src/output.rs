//! Where each generated config goes, and the node names that make file names.

use std::path::{Path, PathBuf};

use crate::text::name_chars;
use crate::Node;

/// Why the configs cannot be written where asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutputError {
    /// Several configs and no `-o`: standard output holds one.
    #[error(
        "{nodes} keepalived files make {nodes} configs, one per node: give -o DIR (or -o FILE.toml for FILE.<node>.toml)"
    )]
    SeveralNodes {
        /// How many configs there are.
        nodes: usize,
    },
}

/// Where each node's config goes: `None` is standard output.
///
/// One node: `OUT` as given (a directory gets `havip.toml`, or the keepalived file's name),
/// or standard output. Several nodes: `OUT` must be given; a directory (existing, or ending
/// in `/`) gets `<node>.toml` each, a file name gets the node's name inserted before its
/// extension (`havip.toml` -> `havip.master1.toml`).
pub fn output_paths(
    nodes: &[Node],
    out: Option<&Path>,
) -> Result<Vec<Option<PathBuf>>, OutputError> {
    let is_dir = |p: &Path| p.is_dir() || p.to_string_lossy().ends_with('/');
    match (nodes.len(), out) {
        (count, None) if count <= 1 => Ok(vec![None; count]),
        (count, None) => Err(OutputError::SeveralNodes { nodes: count }),
        (1, Some(p)) if !is_dir(p) => Ok(vec![Some(p.to_path_buf())]),
        (_, Some(dir)) if is_dir(dir) => Ok(nodes
            .iter()
            .map(|node| Some(dir.join(format!("{}.toml", file_name(node)))))
            .collect()),
        (_, Some(file)) => {
            let stem = file
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "havip".into());
            let extension = file
                .extension()
                .map(|e| e.to_string_lossy().into_owned())
                .unwrap_or_else(|| "toml".into());
            Ok(nodes
                .iter()
                .map(|node| {
                    let name = node.name.clone().unwrap_or_else(|| "node".into());
                    Some(file.with_file_name(format!("{stem}.{name}.{extension}")))
                })
                .collect())
        }
    }
}

/// A node's file name in a directory: its name, its keepalived file's stem, or `havip`.
fn file_name(node: &Node) -> String {
    node.name
        .clone()
        .or_else(|| {
            node.keepalived
                .as_ref()
                .and_then(|k| k.file_stem())
                .map(|s| s.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "havip".into())
}

/// A name per keepalived file, for output file names: its stem; when stems collide, the
/// parent directory's name goes in front (`master1/keepalived.conf` is
/// `master1-keepalived`), then a number makes it unique.
pub fn node_names(paths: &[PathBuf]) -> Vec<String> {
    let stem = |p: &PathBuf| -> String {
        p.file_stem()
            .map(|s| name_chars(&s.to_string_lossy()))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "node".to_string())
    };
    let stems: Vec<String> = paths.iter().map(stem).collect();
    let mut out: Vec<String> = Vec::new();
    for (path, stem) in paths.iter().zip(&stems) {
        let mut base = stem.clone();
        if stems.iter().filter(|other| *other == stem).count() > 1 {
            if let Some(parent) = path
                .parent()
                .and_then(|d| d.file_name())
                .map(|d| name_chars(&d.to_string_lossy()))
                .filter(|d| !d.is_empty())
            {
                base = format!("{parent}-{stem}");
            }
        }
        let mut name = base.clone();
        let mut n = 2;
        while out.contains(&name) {
            name = format!("{base}-{n}");
            n += 1;
        }
        out.push(name);
    }
    out
}
