//! Commands to run (notify scripts, script trackers): an argument vector, or with
//! `shell = true` one line for `/bin/sh -c`. A string without a shell is split into words
//! here by POSIX shell rules (quotes and backslashes as `sh` reads them, nothing expanded), so
//! the same config runs the same argv everywhere.

use toml::de::DeValue;

use super::CommandSpec;
use crate::reader::{Record, TableReader};

/// A command: a string (split into words, quotes honoured, unless `shell`), or an array.
/// With `shell` unknown yet (trackers), it is read from the table's `shell` key.
pub(super) fn read_command(
    p: &mut Record,
    t: &mut TableReader<'_, '_>,
    key: &str,
    shell: bool,
) -> Option<CommandSpec> {
    let shell = shell || (key == "command" && t.peek_bool("shell") == Some(true));
    if key == "command" {
        t.consume(p, "shell");
    }
    let v = t.raw_value(p, key)?;
    let span = v.span();
    let spec = match v.get_ref() {
        DeValue::String(s) if shell => Ok(CommandSpec::Shell(s.to_string())),
        DeValue::String(s) => split_words(s).map(CommandSpec::Argv),
        DeValue::Array(items) if !shell => {
            let mut argv = Vec::new();
            for item in items {
                match item.get_ref() {
                    DeValue::String(s) => argv.push(s.to_string()),
                    _ => {
                        p.add(
                            &item.span(),
                            t.key(key),
                            "expected strings in the argument list",
                        );
                        return None;
                    }
                }
            }
            Ok(CommandSpec::Argv(argv))
        }
        DeValue::Array(_) => {
            Err("with shell = true, give one command line as a string".to_string())
        }
        other => Err(format!(
            "expected a command line or an argument array, found {}",
            other.type_str()
        )),
    };
    match spec {
        Ok(CommandSpec::Argv(argv)) if argv.is_empty() || argv[0].is_empty() => {
            p.add(&span, t.key(key), "the command is empty");
            None
        }
        Ok(CommandSpec::Argv(argv)) if !argv[0].starts_with('/') => {
            p.add(
                &span,
                t.key(key),
                format!(
                    "{:?}: give the program's absolute path (no PATH lookup runs as root)",
                    argv[0]
                ),
            );
            None
        }
        Ok(spec) => Some(spec),
        Err(message) => {
            p.add(&span, t.key(key), message);
            None
        }
    }
}

/// Split a command line into words by POSIX shell rules, with no expansion (the `shlex`
/// crate): `'a b'`, `"a b"` and `a\ b` are one word; inside double quotes a backslash
/// escapes only `$`, `` ` ``, `"`, `\` and a newline, so `"C:\x"` stays `C:\x`; a `#` that
/// starts a word begins a comment.
pub fn split_words(line: &str) -> Result<Vec<String>, String> {
    shlex::split(line).ok_or_else(|| {
        "cannot split into words: an unclosed quote, or a backslash at the end".to_string()
    })
}
