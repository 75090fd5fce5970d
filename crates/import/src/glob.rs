//! File name patterns for `include`, matched as glibc's glob(3) matches them: `*`, `?` and
//! `[...]` in any path component, `\` escaping the next character, results sorted by their
//! whole path (byte order, as in the C locale the daemons run in), and a wildcard never
//! matching the leading `.` of a name. keepalived also passes `GLOB_BRACE`, so its patterns
//! go through [`expand_braces`] first.
//!
//! glibc's brace rules (checked against glibc 2.36 and keepalived 2.2.7): the first `{` that
//! opens a well-formed brace expression is expanded, each alternative (`{a,b}`: `a` then
//! `b`; `{}` and `{a}` are expressions too) making a new pattern that is expanded again, so
//! braces nest and several follow each other. A pattern whose first brace is not closed is
//! taken as it is, braces included. Each alternative is globbed on its own and its matches
//! sorted among themselves: `{b,a}.conf` gives `b.conf` before `a.conf`. An alternative that
//! matches nothing adds nothing, and one that matches the same file as another adds it again.

use std::path::{Component, Path, PathBuf};

/// More alternatives than this from one pattern are refused rather than expanded (glibc
/// would try them all; `{a,b}` twenty times over is a million patterns).
pub const MAX_ALTERNATIVES: usize = 1024;

/// What one pattern matched, and what glob(3) noticed on the way (keepalived reports it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Matches {
    /// The existing paths, sorted by their whole path.
    pub paths: Vec<PathBuf>,
    /// A path without wildcards did not exist, or a directory to search could not be read.
    pub missing: bool,
    /// Some component had a wildcard, so a directory was searched.
    pub wildcards: bool,
}

/// Whether a path contains an unescaped `*`, `?` or `[`.
pub fn is_pattern(path: &str) -> bool {
    let mut escaped = false;
    for c in path.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '*' | '?' | '[' => return true,
            _ => {}
        }
    }
    false
}

/// The patterns a brace pattern stands for, in order (a pattern without a well-formed brace
/// expression stands for itself). None when there are more than [`MAX_ALTERNATIVES`].
pub fn expand_braces(pattern: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    expand_into(&pattern.chars().collect::<Vec<_>>(), &mut out)?;
    Some(out)
}

/// A brace expression in a pattern: where its `{` and `}` are, and the range of each
/// alternative between them.
struct Brace {
    open: usize,
    alternatives: Vec<(usize, usize)>,
    close: usize,
}

fn expand_into(pattern: &[char], out: &mut Vec<String>) -> Option<()> {
    let Some(Brace {
        open,
        alternatives,
        close,
    }) = first_brace(pattern)
    else {
        if out.len() >= MAX_ALTERNATIVES {
            return None;
        }
        out.push(pattern.iter().collect());
        return Some(());
    };
    for (start, end) in alternatives {
        let mut next: Vec<char> = pattern[..open].to_vec();
        next.extend_from_slice(&pattern[start..end]);
        next.extend_from_slice(&pattern[close + 1..]);
        expand_into(&next, out)?;
    }
    Some(())
}

/// The first brace expression; None when there is no `{` or the first one is not closed
/// (then glibc matches the pattern as it is).
fn first_brace(pattern: &[char]) -> Option<Brace> {
    let mut i = 0;
    let open = loop {
        match pattern.get(i)? {
            '\\' if i + 1 < pattern.len() => i += 2,
            '{' => break i,
            _ => i += 1,
        }
    };
    let mut alternatives = Vec::new();
    let mut start = open + 1;
    loop {
        let end = alternative_end(pattern, start)?;
        alternatives.push((start, end));
        if pattern[end] == '}' {
            return Some(Brace {
                open,
                alternatives,
                close: end,
            });
        }
        start = end + 1;
    }
}

/// Where the alternative starting at `from` ends: the `,` or `}` at its own depth.
fn alternative_end(pattern: &[char], from: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = from;
    while i < pattern.len() {
        match pattern[i] {
            '\\' => i += 2,
            '}' if depth == 0 => return Some(i),
            ',' if depth == 0 => return Some(i),
            '}' => {
                depth -= 1;
                i += 1;
            }
            '{' => {
                depth += 1;
                i += 1;
            }
            _ => i += 1,
        }
    }
    None
}

/// The existing paths matching `pattern` (no braces), sorted; a pattern without wildcards is
/// returned as is when it exists.
pub fn expand(pattern: &Path) -> Vec<PathBuf> {
    glob(pattern).paths
}

/// glob(3) of one pattern (no braces).
pub fn glob(pattern: &Path) -> Matches {
    let mut found = Matches::default();
    let mut current: Vec<PathBuf> = vec![PathBuf::new()];
    let mut last_literal = true;
    for component in pattern.components() {
        let Component::Normal(name) = component else {
            current = current
                .iter()
                .map(|d| d.join(component.as_os_str()))
                .collect();
            continue;
        };
        let name = name.to_string_lossy();
        last_literal = !is_pattern(&name);
        current = if last_literal {
            let literal = unescape(&name);
            current.iter().map(|d| d.join(&literal)).collect()
        } else {
            found.wildcards = true;
            search(&current, &name.chars().collect::<Vec<_>>(), &mut found)
        };
        if current.is_empty() {
            break;
        }
    }
    if last_literal {
        // glob(3) checks a name without wildcards with lstat: a dangling link exists.
        let before = current.len();
        current.retain(|p| !p.as_os_str().is_empty() && std::fs::symlink_metadata(p).is_ok());
        found.missing |= current.len() < before;
    }
    current.sort_by(|a, b| {
        a.as_os_str()
            .as_encoded_bytes()
            .cmp(b.as_os_str().as_encoded_bytes())
    });
    found.paths = current;
    found
}

/// The entries of each directory in `dirs` whose name matches `pattern`.
fn search(dirs: &[PathBuf], pattern: &[char], found: &mut Matches) -> Vec<PathBuf> {
    let mut next = Vec::new();
    for dir in dirs {
        let read_from = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir.as_path()
        };
        let Ok(entries) = std::fs::read_dir(read_from) else {
            found.missing = true;
            continue;
        };
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name().to_string_lossy().into_owned();
            // Without GLOB_PERIOD a leading `.` must be written, not matched by a wildcard.
            let hidden_ok = !name.starts_with('.') || pattern.first() == Some(&'.');
            if hidden_ok && matches(pattern, &name.chars().collect::<Vec<_>>()) {
                next.push(dir.join(name));
            }
        }
    }
    next
}

/// A name without wildcards, its escapes removed.
fn unescape(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut chars = name.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next().unwrap_or('\\')),
            c => out.push(c),
        }
    }
    out
}

/// Match one file name against a pattern of `*`, `?`, `[abc]`, `[a-z]`, `[!x]` and `\x`.
pub fn matches(pattern: &[char], name: &[char]) -> bool {
    // Iterative matching with one backtrack point for the last `*`: linear in practice and
    // never recursive, so no input can exhaust the stack.
    let (mut p, mut n) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if let Some(step) = match_one(pattern, p, name[n]) {
            p += step;
            n += 1;
            continue;
        }
        if pattern.get(p) == Some(&'*') {
            star = Some((p, n));
            p += 1;
            continue;
        }
        match star {
            Some((sp, sn)) => {
                p = sp + 1;
                n = sn + 1;
                star = Some((sp, sn + 1));
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

/// How much of `pattern` from `p` matches the one character `c` (None: it does not, or it is
/// a `*`).
fn match_one(pattern: &[char], p: usize, c: char) -> Option<usize> {
    match *pattern.get(p)? {
        '*' => None,
        '?' => Some(1),
        '\\' => match pattern.get(p + 1) {
            Some(&escaped) => (escaped == c).then_some(2),
            None => (c == '\\').then_some(1),
        },
        '[' => match class(&pattern[p..], c) {
            Some((true, len)) => Some(len),
            Some((false, _)) => None,
            // Not closed: a literal `[`.
            None => (c == '[').then_some(1),
        },
        literal => (literal == c).then_some(1),
    }
}

/// A `[...]` class at the start of `pattern`: (whether `c` matches, length of the class), or
/// None when the bracket is not closed (then it is a literal `[`).
fn class(pattern: &[char], c: char) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = matches!(pattern.get(i), Some('!') | Some('^'));
    if negate {
        i += 1;
    }
    let start = i;
    let mut found = false;
    while i < pattern.len() {
        if pattern[i] == ']' && i > start {
            return Some((found != negate, i + 1));
        }
        if i + 2 < pattern.len() && pattern[i + 1] == '-' && pattern[i + 2] != ']' {
            if pattern[i] <= c && c <= pattern[i + 2] {
                found = true;
            }
            i += 3;
        } else {
            if pattern[i] == c {
                found = true;
            }
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests;
