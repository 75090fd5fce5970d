//! What every emitted config must be: TOML whose every table and key is one havip's reader
//! accepts (`havip_config::keys`), and, read by havip's own reader (`havip_config::parse`),
//! either a valid config or one whose problems are all about values, never about its shape.

use std::path::Path;

use havip_config::keys;

/// The keys of `text` (dotted paths with indices) that havip's reader does not know, or the
/// TOML syntax error.
pub fn unknown_keys(text: &str) -> Result<Vec<String>, String> {
    let table: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
    let mut unknown = Vec::new();
    walk_table("", &table, &mut unknown);
    Ok(unknown)
}

fn walk_table(path: &str, table: &toml::Table, unknown: &mut Vec<String>) {
    for (key, value) in table {
        let full = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        if !keys::is_known(path, key) {
            unknown.push(full.clone());
        }
        walk_value(&full, value, unknown);
    }
}

fn walk_value(path: &str, value: &toml::Value, unknown: &mut Vec<String>) {
    match value {
        toml::Value::Table(t) => walk_table(path, t, unknown),
        toml::Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                walk_value(&format!("{path}[{i}]"), item, unknown);
            }
        }
        _ => {}
    }
}

/// `text` has only known keys (else a message naming them, and the text).
pub fn assert_known_keys(name: &str, text: &str) {
    match unknown_keys(text) {
        Ok(unknown) => assert!(
            unknown.is_empty(),
            "{name}: keys havip does not read: {unknown:?}\n{text}"
        ),
        Err(e) => panic!("{name}: not TOML: {e}\n{text}"),
    }
}

/// havip's reader on `text`: the problems, each as `file:line:col: key: message`.
pub fn havip_problems(name: &str, text: &str) -> Vec<String> {
    match havip_config::parse(Path::new(name), text) {
        Ok(_) => Vec::new(),
        Err(problems) => problems.iter().map(ToString::to_string).collect(),
    }
}

/// Whether a problem of havip's reader is about the file's shape (syntax, a table or key the
/// reader does not know, a value of the wrong type) rather than about a value.
pub fn is_shape_problem(problem: &str) -> bool {
    problem.contains(": (syntax): ")
        || problem.contains(": unknown key")
        || problem.contains(": expected ") && problem.contains(", found ")
}

/// The emitted text of an import: only known keys; and what havip's reader says of it is
/// nothing when the import reported no error (the config is valid), or only problems with
/// values when it did (`havip import` writes nothing then, but the text is still read as
/// havip's tables).
pub fn check_emitted(draft: &crate::model::Draft, report: &crate::Report) -> Result<(), String> {
    let text = crate::emit::emit(draft, &report.sorted());
    let unknown = unknown_keys(&text)?;
    if !unknown.is_empty() {
        return Err(format!("keys havip does not read: {unknown:?}\n{text}"));
    }
    let problems = havip_problems("emitted.toml", &text);
    let wrong: Vec<&String> = if report.has_errors() {
        problems.iter().filter(|p| is_shape_problem(p)).collect()
    } else {
        problems.iter().collect()
    };
    if wrong.is_empty() {
        Ok(())
    } else {
        let notes: Vec<String> = report.sorted().iter().map(|n| n.to_string()).collect();
        Err(format!(
            "havip rejects the emitted config:\n{}\nreport:\n{}\n{text}",
            wrong
                .iter()
                .map(|p| p.as_str())
                .collect::<Vec<_>>()
                .join("\n"),
            notes.join("\n")
        ))
    }
}
