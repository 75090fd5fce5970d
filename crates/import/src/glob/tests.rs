use super::*;

fn m(p: &str, n: &str) -> bool {
    matches(
        &p.chars().collect::<Vec<_>>(),
        &n.chars().collect::<Vec<_>>(),
    )
}

fn braces(p: &str) -> Vec<String> {
    expand_braces(p).unwrap()
}

/// A directory removed on drop, with empty files at the given relative paths.
struct Tree(PathBuf);

impl Tree {
    fn new(tag: &str, files: &[&str]) -> Tree {
        let dir = std::env::temp_dir().join(format!("havip-glob-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for f in files {
            let path = dir.join(f);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "").unwrap();
        }
        Tree(dir)
    }

    /// The matches of `pattern` (relative to the tree), braces expanded, as relative paths.
    fn glob(&self, pattern: &str) -> (Vec<String>, bool) {
        let mut paths = Vec::new();
        let mut missing = false;
        for alternative in braces(pattern) {
            let found = glob(&self.0.join(alternative));
            missing |= found.missing;
            paths.extend(found.paths.iter().map(|p| {
                p.strip_prefix(&self.0)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            }));
        }
        (paths, missing)
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
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
    // A backslash makes the next character literal.
    assert!(m("\\*.conf", "*.conf"));
    assert!(!m("\\*.conf", "a.conf"));
    assert!(!is_pattern("a\\*b"));
    assert!(is_pattern("a\\\\*b"));
}

#[test]
fn expands_sorted_and_skips_hidden() {
    let tree = Tree::new("sorted", &["d/b.conf", "d/a.conf", "d/.h.conf", "d/c.txt"]);
    let dir = &tree.0;
    let got = expand(&dir.join("d/*.conf"));
    assert_eq!(got, vec![dir.join("d/a.conf"), dir.join("d/b.conf")]);
    assert_eq!(expand(&dir.join("?/c.txt")), vec![dir.join("d/c.txt")]);
    assert!(expand(&dir.join("nothing/*.conf")).is_empty());
    assert_eq!(expand(&dir.join("d/.h*")), vec![dir.join("d/.h.conf")]);
}

/// glob(3) sorts whole paths: `a-b/x` before `a/x`, since `-` sorts before `/`.
#[test]
fn matches_are_sorted_by_the_whole_path() {
    let tree = Tree::new("whole", &["a/x.conf", "a-b/x.conf"]);
    assert_eq!(tree.glob("*/x.conf").0, ["a-b/x.conf", "a/x.conf"]);
}

/// Checked against glibc 2.36's glob(3) with GLOB_BRACE.
#[test]
fn braces_expand_like_glibc() {
    assert_eq!(braces("{b,a}.conf"), ["b.conf", "a.conf"]);
    assert_eq!(braces("{c,{b,a}}.conf"), ["c.conf", "b.conf", "a.conf"]);
    assert_eq!(braces("x{1,2}{a,b}"), ["x1a", "x1b", "x2a", "x2b"]);
    assert_eq!(braces("{,sub/}*.conf"), ["*.conf", "sub/*.conf"]);
    assert_eq!(braces("{a}.conf"), ["a.conf"]);
    assert_eq!(braces("{}"), [""]);
    // Not closed: the pattern as it is, even a later well-formed brace.
    assert_eq!(braces("{a.conf"), ["{a.conf"]);
    assert_eq!(braces("{x,{a}.conf"), ["{x,{a}.conf"]);
    assert_eq!(braces("a}.conf"), ["a}.conf"]);
    // Escaped braces and commas are not syntax (the escape stays for the match).
    assert_eq!(braces("\\{a,b\\}.conf"), ["\\{a,b\\}.conf"]);
    assert_eq!(braces("{a\\,b,c}.conf"), ["a\\,b.conf", "c.conf"]);
    assert!(expand_braces(&"{a,b}".repeat(11)).is_none());
    assert_eq!(expand_braces(&"{a,b}".repeat(10)).unwrap().len(), 1024);
}

/// Each alternative is globbed and sorted on its own; one that matches nothing adds nothing
/// (and is noticed), one that matches again adds again. Checked against glibc 2.36.
#[test]
fn brace_alternatives_are_globbed_in_order() {
    let tree = Tree::new(
        "braces",
        &[
            "a.conf",
            "b.conf",
            "c.conf",
            "x.txt",
            "sub/s.conf",
            "a,b.conf",
        ],
    );
    assert_eq!(
        tree.glob("{b,a}.conf"),
        (vec!["b.conf".into(), "a.conf".into()], false)
    );
    assert_eq!(
        tree.glob("{b,a,missing}.conf"),
        (vec!["b.conf".into(), "a.conf".into()], true)
    );
    assert_eq!(tree.glob("{missing,nope}.conf"), (vec![], true));
    assert_eq!(tree.glob("{x,c}*").0, ["x.txt", "c.conf"]);
    assert_eq!(
        tree.glob("{*.conf,x.txt}").0,
        ["a,b.conf", "a.conf", "b.conf", "c.conf", "x.txt"]
    );
    assert_eq!(
        tree.glob("{,sub/}[a-s].conf").0,
        ["a.conf", "b.conf", "c.conf", "sub/s.conf"]
    );
    assert_eq!(
        tree.glob("{sub,none}/*.conf"),
        (vec!["sub/s.conf".into()], true)
    );
    assert_eq!(tree.glob("{a,a}.conf").0, ["a.conf", "a.conf"]);
    assert_eq!(tree.glob("{a\\,b,c}.conf").0, ["a,b.conf", "c.conf"]);
    assert_eq!(tree.glob("\\{a,b\\}.conf"), (vec![], true));
    // A wildcard that matches nothing in an existing directory is not a missing file.
    assert_eq!(tree.glob("sub/*.txt"), (vec![], false));
}
