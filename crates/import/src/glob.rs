//! File name patterns for `include` (keepalived, nginx): `*`, `?` and `[...]` in any path
//! component, matched like glob(3): sorted results, and a wildcard does not match a leading
//! `.` of a file name.

use std::path::{Component, Path, PathBuf};

/// Whether a path contains pattern characters.
pub fn is_pattern(path: &str) -> bool {
    path.contains(['*', '?', '['])
}

/// The existing paths matching `pattern`, sorted. A pattern without wildcards is returned
/// as is when it exists.
pub fn expand(pattern: &Path) -> Vec<PathBuf> {
    let mut current: Vec<PathBuf> = vec![PathBuf::new()];
    for comp in pattern.components() {
        let mut next = Vec::new();
        match comp {
            Component::Normal(name) => {
                let name = name.to_string_lossy();
                if is_pattern(&name) {
                    let pat: Vec<char> = name.chars().collect();
                    for dir in &current {
                        let read_from = if dir.as_os_str().is_empty() {
                            Path::new(".")
                        } else {
                            dir.as_path()
                        };
                        let Ok(entries) = std::fs::read_dir(read_from) else {
                            continue;
                        };
                        let mut names: Vec<String> = entries
                            .filter_map(|e| e.ok())
                            .map(|e| e.file_name().to_string_lossy().into_owned())
                            .filter(|n| {
                                let chars: Vec<char> = n.chars().collect();
                                (!n.starts_with('.') || pat.first() == Some(&'.'))
                                    && matches(&pat, &chars)
                            })
                            .collect();
                        names.sort();
                        next.extend(names.into_iter().map(|n| dir.join(n)));
                    }
                } else {
                    next = current.iter().map(|d| d.join(name.as_ref())).collect();
                }
            }
            other => {
                next = current.iter().map(|d| d.join(other.as_os_str())).collect();
            }
        }
        current = next;
        if current.is_empty() {
            break;
        }
    }
    current.retain(|p| !p.as_os_str().is_empty() && p.exists());
    current
}

/// Match one file name against a pattern of `*`, `?`, `[abc]`, `[a-z]`, `[!x]`.
pub fn matches(pat: &[char], name: &[char]) -> bool {
    // Iterative matching with one backtrack point for the last `*`: linear in practice and
    // never recursive, so no input can exhaust the stack.
    let (mut p, mut n) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pat.len() {
            match pat[p] {
                '*' => {
                    star = Some((p, n));
                    p += 1;
                    continue;
                }
                '?' => {
                    p += 1;
                    n += 1;
                    continue;
                }
                '[' => {
                    if let Some((ok, len)) = class(&pat[p..], name[n]) {
                        if ok {
                            p += len;
                            n += 1;
                            continue;
                        }
                    } else if name[n] == '[' {
                        p += 1;
                        n += 1;
                        continue;
                    }
                }
                c => {
                    if c == name[n] {
                        p += 1;
                        n += 1;
                        continue;
                    }
                }
            }
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
    pat[p..].iter().all(|&c| c == '*')
}

/// A `[...]` class at the start of `pat`: (whether `c` matches, length of the class), or
/// None when the bracket is not closed (then it is a literal `[`).
fn class(pat: &[char], c: char) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = matches!(pat.get(i), Some('!') | Some('^'));
    if negate {
        i += 1;
    }
    let start = i;
    let mut found = false;
    while i < pat.len() {
        if pat[i] == ']' && i > start {
            return Some((found != negate, i + 1));
        }
        if i + 2 < pat.len() && pat[i + 1] == '-' && pat[i + 2] != ']' {
            if pat[i] <= c && c <= pat[i + 2] {
                found = true;
            }
            i += 3;
        } else {
            if pat[i] == c {
                found = true;
            }
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, n: &str) -> bool {
        matches(
            &p.chars().collect::<Vec<_>>(),
            &n.chars().collect::<Vec<_>>(),
        )
    }

    #[test]
    fn wildcards() {
        assert!(m("*.conf", "a.conf"));
        assert!(!m("*.conf", "a.cfg"));
        assert!(m("a?c", "abc"));
        assert!(m("[ab]x", "bx"));
        assert!(!m("[!ab]x", "bx"));
        assert!(m("[a-c]*", "cat"));
        assert!(m("*", ""));
        assert!(m("a*b*c", "aXXbYYc"));
        assert!(!m("a*b*c", "aXXbYY"));
        assert!(m("[", "["));
        assert!(m("x[]", "x[]"));
    }

    #[test]
    fn expands_sorted_and_skips_hidden() {
        let dir = std::env::temp_dir().join(format!("havip-glob-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("d")).unwrap();
        for f in ["b.conf", "a.conf", ".h.conf", "c.txt"] {
            std::fs::write(dir.join("d").join(f), "").unwrap();
        }
        let got = expand(&dir.join("d/*.conf"));
        assert_eq!(got, vec![dir.join("d/a.conf"), dir.join("d/b.conf")]);
        assert_eq!(expand(&dir.join("?/c.txt")), vec![dir.join("d/c.txt")]);
        assert!(expand(&dir.join("nothing/*.conf")).is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
