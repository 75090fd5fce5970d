//! keepalived.conf: a lexer with keepalived's quoting, comment and continuation rules,
//! `include` (with wildcards, relative to the including file, as keepalived does), `$NAME=`
//! parameters, a block parser, and the mapping of global_defs, vrrp_script, track files and
//! processes, and vrrp_instance into havip's `[[vrrp]]` and `[[tracker]]` tables.
//!
//! Lexing follows keepalived.conf(5): words are separated by whitespace; `{` and `}` are
//! words of their own; `#` and `!` start a comment anywhere outside quotes; `"` and `'`
//! quote (adjacent parts join into one word) and allow backslash escapes; a line ending in a
//! backslash continues on the next.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::model::{Announce, Service, TrackRef, Tracker, TrackerKind, Vip, Vrrp, V};
use super::script::{self, Probe};
use super::text::{parse_seconds, split_command};
use super::{display, glob, sanitize_name, Loc, Proxy, Report, ScriptFile, Src};
use havip_config::address::parse_prefix;

/// One word, where it starts, and whether any part of it was quoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    pub text: String,
    pub loc: Loc,
    pub quoted: bool,
}

/// `name args...` with an optional `{ block }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub name: Word,
    pub args: Vec<Word>,
    pub block: Option<Vec<Node>>,
}

impl Node {
    fn kw(&self) -> &str {
        &self.name.text
    }

    fn arg(&self, i: usize) -> Option<&str> {
        self.args.get(i).map(|w| w.text.as_str())
    }

    fn src(&self) -> Src {
        Src::new(self.name.loc.clone(), self.name.text.clone())
    }

    fn arg_src(&self, i: usize) -> Src {
        let loc = self
            .args
            .get(i)
            .map_or_else(|| self.name.loc.clone(), |w| w.loc.clone());
        Src::new(loc, self.name.text.clone())
    }

    fn children(&self) -> &[Node] {
        self.block.as_deref().unwrap_or(&[])
    }
}

/// A parsed keepalived config and every file it was read from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tree {
    pub nodes: Vec<Node>,
    pub files: Vec<Arc<str>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tok {
    Word(Word),
    Open(Loc),
    Close(Loc),
}

impl Tok {
    fn loc(&self) -> &Loc {
        match self {
            Tok::Word(w) => &w.loc,
            Tok::Open(l) | Tok::Close(l) => l,
        }
    }
}

/// A token and the logical line it is on (continued lines share one).
type LineTok = (Tok, u64);

/// One lexeme of a line: a word (and whether any part of it was quoted) or a brace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lexeme {
    Word(String, bool),
    Open,
    Close,
}

/// Lex one line: words with columns, or braces. An unterminated quote is an error at its
/// column.
pub fn lex_line(text: &str) -> Result<Vec<(Lexeme, u32)>, (u32, String)> {
    let chars: Vec<char> = text.chars().collect();
    let n = chars.len();
    let mut out = Vec::new();
    let mut i = 0;
    while i < n {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c == '#' || c == '!' {
            break;
        }
        if c == '{' || c == '}' {
            out.push((
                if c == '{' {
                    Lexeme::Open
                } else {
                    Lexeme::Close
                },
                i as u32 + 1,
            ));
            i += 1;
            continue;
        }
        let start = i;
        let mut word = String::new();
        let mut quoted = false;
        let mut comment = false;
        while i < n {
            let c = chars[i];
            if c.is_whitespace() || c == '{' || c == '}' {
                break;
            }
            if c == '#' || c == '!' {
                comment = true;
                break;
            }
            if c == '"' || c == '\'' {
                quoted = true;
                let open = i;
                i += 1;
                let mut closed = false;
                while i < n {
                    let q = chars[i];
                    if q == c {
                        closed = true;
                        i += 1;
                        break;
                    }
                    if q == '\\' && i + 1 < n {
                        i += 1;
                        match chars[i] {
                            'n' => word.push('\n'),
                            't' => word.push('\t'),
                            'r' => word.push('\r'),
                            'a' => word.push('\u{7}'),
                            'b' => word.push('\u{8}'),
                            'f' => word.push('\u{c}'),
                            'v' => word.push('\u{b}'),
                            'E' => word.push('\u{1b}'),
                            other => word.push(other),
                        }
                        i += 1;
                        continue;
                    }
                    word.push(q);
                    i += 1;
                }
                if !closed {
                    return Err((open as u32 + 1, "unterminated quoted string".into()));
                }
                continue;
            }
            word.push(c);
            i += 1;
        }
        out.push((Lexeme::Word(word, quoted), start as u32 + 1));
        if comment {
            break;
        }
    }
    Ok(out)
}

const MAX_DEPTH: usize = 32;
const MAX_INCLUDE_DEPTH: usize = 16;

struct Lexer<'r> {
    report: &'r mut Report,
    toks: Vec<LineTok>,
    files: Vec<Arc<str>>,
    logical: u64,
    vars: HashMap<String, String>,
    stack: Vec<PathBuf>,
}

impl Lexer<'_> {
    /// Lex `text` (of `path`, shown as `file`), expanding includes.
    fn lex_text(&mut self, path: &Path, file: &Arc<str>, text: &str) {
        if !self.files.contains(file) {
            self.files.push(file.clone());
        }
        let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut continued = false;
        for (idx, raw) in text.lines().enumerate() {
            let line_no = u32::try_from(idx + 1).unwrap_or(u32::MAX);
            if !continued {
                self.logical += 1;
            }
            let mut line = raw.to_string();
            continued = false;
            if line.trim_end().ends_with('\\') {
                let trimmed = line.trim_end();
                line = trimmed[..trimmed.len() - 1].to_string();
                continued = true;
            }
            let trimmed = line.trim_start();
            // `$NAME=value` defines a parameter.
            if let Some(def) = trimmed.strip_prefix('$') {
                if let Some((name, value)) = def.split_once('=') {
                    if !name.is_empty()
                        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    {
                        self.vars.insert(name.to_string(), value.trim().to_string());
                        continue;
                    }
                }
            }
            if trimmed.starts_with('@') {
                let col = (line.len() - trimmed.len()) as u32 + 1;
                self.report.skip(
                    &Loc::new(file, line_no, col),
                    trimmed.split_whitespace().next().unwrap_or("@"),
                    "conditional line for a config id: which node it applies to is not known here; not imported",
                );
                continue;
            }
            let line = self.substitute(&line);
            let words = match lex_line(&line) {
                Ok(w) => w,
                Err((col, msg)) => {
                    self.report
                        .error(&Loc::new(file, line_no, col), "(syntax)", msg);
                    continue;
                }
            };
            if let Some((Lexeme::Word(kw, false), _)) = words.first() {
                if matches!(
                    kw.as_str(),
                    "include" | "includer" | "includem" | "includew" | "includeb" | "includea"
                ) {
                    let loc = Loc::new(file, line_no, words[0].1);
                    match words.get(1) {
                        Some((Lexeme::Word(pattern, _), _)) => {
                            self.include(&base_dir, file, pattern, &loc, kw == "include");
                        }
                        _ => self.report.error(&loc, kw, "missing the file name"),
                    }
                    continue;
                }
            }
            for (w, col) in words {
                let loc = Loc::new(file, line_no, col);
                let tok = match w {
                    Lexeme::Word(text, quoted) => Tok::Word(Word { text, loc, quoted }),
                    Lexeme::Open => Tok::Open(loc),
                    Lexeme::Close => Tok::Close(loc),
                };
                self.toks.push((tok, self.logical));
            }
        }
    }

    /// Replace `$NAME` and `${NAME}` of defined parameters.
    fn substitute(&self, line: &str) -> String {
        if self.vars.is_empty() || !line.contains('$') {
            return line.to_string();
        }
        let chars: Vec<char> = line.chars().collect();
        let mut out = String::new();
        let mut i = 0;
        while i < chars.len() {
            if chars[i] == '$' {
                let braced = chars.get(i + 1) == Some(&'{');
                let start = if braced { i + 2 } else { i + 1 };
                let mut j = start;
                while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '_') {
                    j += 1;
                }
                let name: String = chars[start..j].iter().collect();
                let ok = !braced || chars.get(j) == Some(&'}');
                if ok {
                    if let Some(v) = self.vars.get(&name) {
                        out.push_str(v);
                        i = if braced { j + 1 } else { j };
                        continue;
                    }
                }
            }
            out.push(chars[i]);
            i += 1;
        }
        out
    }

    fn include(
        &mut self,
        base_dir: &Path,
        file: &Arc<str>,
        pattern: &str,
        loc: &Loc,
        lenient: bool,
    ) {
        if self.stack.len() > MAX_INCLUDE_DEPTH {
            self.report
                .error(loc, "include", "includes nested too deeply");
            return;
        }
        // keepalived: relative to the directory of the including file.
        let p = Path::new(pattern);
        let full = if p.is_absolute() {
            p.to_path_buf()
        } else {
            base_dir.join(p)
        };
        let files = if glob::is_pattern(pattern) {
            glob::expand(&full)
        } else if full.exists() {
            vec![full.clone()]
        } else {
            Vec::new()
        };
        if files.is_empty() {
            let msg = format!("{}: no such file", full.display());
            if lenient {
                // Plain `include` of keepalived does not fail on a missing file.
                self.report.skip(loc, "include", msg);
            } else {
                self.report.error(loc, "include", msg);
            }
            return;
        }
        let _ = file;
        for f in files {
            let key = std::fs::canonicalize(&f).unwrap_or_else(|_| f.clone());
            if self.stack.contains(&key) {
                self.report
                    .error(loc, "include", format!("{} includes itself", f.display()));
                continue;
            }
            match std::fs::read(&f) {
                Ok(bytes) => {
                    let text = String::from_utf8_lossy(&bytes).into_owned();
                    self.stack.push(key);
                    let name = display(&f);
                    self.lex_text(&f, &name, &text);
                    self.stack.pop();
                }
                Err(e) => self
                    .report
                    .error(loc, "include", format!("{}: {e}", f.display())),
            }
        }
    }
}

/// Tokens of a config text without includes (for tests and fuzzing).
#[cfg(test)]
pub fn lex(file: &Arc<str>, text: &str, report: &mut Report) -> Vec<LineTok> {
    let mut lx = Lexer {
        report,
        toks: Vec::new(),
        files: Vec::new(),
        logical: 0,
        vars: HashMap::new(),
        stack: Vec::new(),
    };
    lx.lex_text(Path::new(""), file, text);
    lx.toks
}

/// Build the block tree from tokens; problems are reported, parsing goes on.
pub fn parse_tokens(toks: &[LineTok], report: &mut Report) -> Vec<Node> {
    let mut i = 0;
    let mut out = Vec::new();
    loop {
        out.extend(block(toks, &mut i, 0, report));
        if i >= toks.len() {
            break;
        }
        // A stray `}` at top level.
        report.error(toks[i].0.loc(), "}", "no block to close");
        i += 1;
    }
    out
}

fn block(toks: &[LineTok], i: &mut usize, depth: usize, report: &mut Report) -> Vec<Node> {
    let mut out: Vec<Node> = Vec::new();
    while let Some((tok, logical)) = toks.get(*i) {
        match tok {
            Tok::Close(_) => {
                if depth > 0 {
                    *i += 1;
                }
                return out;
            }
            Tok::Open(loc) => {
                // A block opened on the line after its keyword.
                *i += 1;
                let children = open_block(toks, i, depth, loc, report);
                match out.last_mut() {
                    Some(last) if last.block.is_none() => last.block = Some(children),
                    _ => report.error(loc, "{", "a block without a keyword"),
                }
            }
            Tok::Word(name) => {
                let mut node = Node {
                    name: name.clone(),
                    args: Vec::new(),
                    block: None,
                };
                *i += 1;
                while let Some((Tok::Word(w), l)) = toks.get(*i) {
                    if l != logical {
                        break;
                    }
                    node.args.push(w.clone());
                    *i += 1;
                }
                if let Some((Tok::Open(loc), l)) = toks.get(*i) {
                    if l == logical {
                        *i += 1;
                        node.block = Some(open_block(toks, i, depth, loc, report));
                    }
                }
                out.push(node);
            }
        }
    }
    out
}

fn open_block(
    toks: &[LineTok],
    i: &mut usize,
    depth: usize,
    open: &Loc,
    report: &mut Report,
) -> Vec<Node> {
    if depth + 1 > MAX_DEPTH {
        report.error(open, "{", "blocks nested too deeply");
        // Skip to the matching close.
        let mut level = 1usize;
        while let Some((t, _)) = toks.get(*i) {
            *i += 1;
            match t {
                Tok::Open(_) => level += 1,
                Tok::Close(_) => {
                    level -= 1;
                    if level == 0 {
                        break;
                    }
                }
                Tok::Word(_) => {}
            }
        }
        return Vec::new();
    }
    let before = *i;
    let children = block(toks, i, depth + 1, report);
    // `block` returns at a `}` (consumed) or at the end of input.
    let closed = *i > before && matches!(toks.get(*i - 1), Some((Tok::Close(_), _)));
    if !closed {
        report.error(open, "{", "not closed by }");
    }
    children
}

/// Read a keepalived config and its includes. None when the main file cannot be read.
pub fn load(path: &Path, report: &mut Report) -> Option<Tree> {
    let text = super::read_input(path, "keepalived", report)?;
    let file = display(path);
    let mut lx = Lexer {
        report,
        toks: Vec::new(),
        files: Vec::new(),
        logical: 0,
        vars: HashMap::new(),
        stack: vec![std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())],
    };
    lx.lex_text(path, &file, &text);
    let toks = std::mem::take(&mut lx.toks);
    let files = std::mem::take(&mut lx.files);
    let nodes = parse_tokens(&toks, report);
    Some(Tree { nodes, files })
}

/// Parse config text (no includes): for tests and fuzzing.
#[cfg(test)]
pub fn parse_text(file: &Arc<str>, text: &str, report: &mut Report) -> Tree {
    let toks = lex(file, text, report);
    Tree {
        nodes: parse_tokens(&toks, report),
        files: vec![file.clone()],
    }
}

// ---------------------------------------------------------------------------------------
// Mapping

/// What the mapping needs to know about the imported balancer.
pub struct Context<'a> {
    pub services: &'a [Service],
    /// For each service, the proxy it was imported from.
    pub origins: &'a [Proxy],
    pub scripts: &'a [ScriptFile],
}

/// One node's VRRP part.
#[derive(Debug, Clone, Default)]
pub struct Mapped {
    pub vrrp: Vec<Vrrp>,
    pub trackers: Vec<Tracker>,
    /// Script files read to decide how to import a track script.
    pub read_scripts: Vec<String>,
}

#[derive(Debug, Clone, Default)]
struct Globals {
    script_user: Option<V<String>>,
    version: Option<V<u8>>,
    check_unicast_src: Option<V<bool>>,
    announce: Announce,
    gna_interval: Option<V<Duration>>,
}

#[derive(Debug, Clone)]
struct ScriptDef {
    src: Src,
    argv: Option<V<Vec<String>>>,
    interval: Option<V<Duration>>,
    timeout: Option<V<Duration>>,
    weight: Option<V<i32>>,
    rise: Option<V<u32>>,
    fall: Option<V<u32>>,
    user: Option<V<String>>,
}

#[derive(Debug, Clone)]
struct FileDef {
    src: Src,
    path: Option<V<String>>,
    weight: Option<V<i32>>,
}

#[derive(Debug, Clone)]
struct ProcessDef {
    src: Src,
    process: Option<V<String>>,
    weight: Option<V<i32>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RefKind {
    Script,
    Interface,
    File,
    Process,
}

fn num<T: std::str::FromStr>(n: &Node, i: usize, report: &mut Report) -> Option<T> {
    let Some(t) = n.arg(i) else {
        report.error(&n.name.loc, n.kw(), "missing value");
        return None;
    };
    match t.parse::<T>() {
        Ok(v) => Some(v),
        Err(_) => {
            report.error(
                &n.arg_src(i).loc,
                n.kw(),
                format!("{t:?} is not a valid number here"),
            );
            None
        }
    }
}

fn secs(n: &Node, i: usize, report: &mut Report) -> Option<Duration> {
    let Some(t) = n.arg(i) else {
        report.error(&n.name.loc, n.kw(), "missing value");
        return None;
    };
    match parse_seconds(t) {
        Some(d) => Some(d),
        None => {
            report.error(
                &n.arg_src(i).loc,
                n.kw(),
                format!("{t:?} is not a time in seconds"),
            );
            None
        }
    }
}

/// The argv of a script value: quoted words split like keepalived splits them.
fn script_argv(words: &[Word], report: &mut Report) -> Option<Vec<String>> {
    let mut argv = Vec::new();
    for w in words {
        if w.quoted {
            match split_command(&w.text) {
                Some(parts) => argv.extend(parts),
                None => {
                    report.error(&w.loc, "script", "unterminated quote inside the command");
                    return None;
                }
            }
        } else {
            argv.push(w.text.clone());
        }
    }
    (!argv.is_empty()).then_some(argv)
}

fn garp_setting(
    n: &Node,
    kw: &str,
    announce: &mut Announce,
    gna: &mut Option<V<Duration>>,
    report: &mut Report,
) -> bool {
    let src = n.arg_src(0);
    match kw {
        "master_delay" => {
            if let Some(d) = secs(n, 0, report) {
                announce.second_burst_delay = Some(V::new(d, &src));
            }
        }
        "master_repeat" => {
            if let Some(c) = num::<u32>(n, 0, report) {
                announce.burst_count = Some(V::new(c, &src));
            }
        }
        "master_refresh" => {
            if let Some(d) = secs(n, 0, report) {
                announce.refresh_interval = Some(V::new(d, &src));
            }
        }
        "master_refresh_repeat" => {
            if let Some(c) = num::<u32>(n, 0, report) {
                announce.refresh_count = Some(V::new(c, &src));
            }
        }
        "lower_prio_repeat" => {
            if let Some(c) = num::<u32>(n, 0, report) {
                announce.lower_priority_burst_count = Some(V::new(c, &src));
            }
        }
        "interval" => {
            if let Some(d) = secs(n, 0, report) {
                announce.burst_spacing = Some(V::new(d, &src));
            }
        }
        "gna_interval" => {
            if let Some(d) = secs(n, 0, report) {
                *gna = Some(V::new(d, &src));
            }
        }
        "lower_prio_delay" => report.skip(
            &n.name.loc,
            n.kw(),
            "no separate delay after a lower-priority advert; second_burst_delay applies",
        ),
        "extra_if" => report.skip(
            &n.name.loc,
            n.kw(),
            "periodic announcements on other interfaces: use refresh_interval",
        ),
        _ => return false,
    }
    true
}

/// Map one keepalived config (one node).
pub fn map(tree: &Tree, ctx: &Context<'_>, report: &mut Report) -> Mapped {
    let mut g = Globals::default();
    let mut scripts: Vec<(String, ScriptDef)> = Vec::new();
    let mut files: Vec<(String, FileDef)> = Vec::new();
    let mut processes: Vec<(String, ProcessDef)> = Vec::new();
    let mut instances: Vec<&Node> = Vec::new();

    for n in &tree.nodes {
        match n.kw() {
            "global_defs" => map_global(n, &mut g, report),
            "vrrp_script" => {
                if let Some(name) = n.arg(0) {
                    let def = script_def(n, report);
                    scripts.push((name.to_string(), def));
                } else {
                    report.error(&n.name.loc, n.kw(), "missing the script's name");
                }
            }
            "track_file" | "vrrp_track_file" => {
                if let Some(name) = n.arg(0) {
                    let mut def = FileDef {
                        src: Src::new(n.name.loc.clone(), format!("{} {name}", n.kw())),
                        path: None,
                        weight: None,
                    };
                    for c in n.children() {
                        match c.kw() {
                            "file" => {
                                def.path = c.arg(0).map(|p| V::new(p.to_string(), &c.arg_src(0)))
                            }
                            "weight" => {
                                def.weight = num::<i32>(c, 0, report).map(|w| V::new(w, &c.arg_src(0)));
                                if c.arg(1) == Some("reverse") {
                                    report.skip(&c.name.loc, "weight reverse", "reversed weights are not supported");
                                }
                            }
                            "init_file" => report.skip(
                                &c.name.loc,
                                "init_file",
                                "havip does not create the tracked file; a missing file counts as 0",
                            ),
                            _ => report.skip(&c.name.loc, c.kw(), "not supported by the importer"),
                        }
                    }
                    files.push((name.to_string(), def));
                }
            }
            "vrrp_track_process" => {
                if let Some(name) = n.arg(0) {
                    let mut def = ProcessDef {
                        src: Src::new(n.name.loc.clone(), format!("vrrp_track_process {name}")),
                        process: None,
                        weight: None,
                    };
                    for c in n.children() {
                        match c.kw() {
                            "process" => {
                                def.process = c.arg(0).map(|p| V::new(p.to_string(), &c.arg_src(0)));
                                if c.args.len() > 1 {
                                    report.skip(&c.name.loc, "process", "matching process parameters is not supported; the name is matched");
                                }
                            }
                            "weight" => {
                                def.weight = num::<i32>(c, 0, report).map(|w| V::new(w, &c.arg_src(0)))
                            }
                            "quorum" => {
                                if c.arg(0) != Some("1") {
                                    report.skip(&c.name.loc, "quorum", "havip checks that at least one process runs");
                                }
                            }
                            _ => report.skip(&c.name.loc, c.kw(), "not supported by the importer"),
                        }
                    }
                    processes.push((name.to_string(), def));
                }
            }
            "vrrp_instance" => instances.push(n),
            "vrrp_sync_group" => report.skip(
                &n.name.loc,
                n.kw(),
                "sync groups are not supported: each [[vrrp]] instance fails over on its own",
            ),
            "virtual_server" | "virtual_server_group" | "real_server" => report.skip(
                &n.name.loc,
                n.kw(),
                "LVS virtual servers are not imported; havip's [[service]] balances TCP itself",
            ),
            "static_ipaddress" | "static_routes" | "static_rules" => report.skip(
                &n.name.loc,
                n.kw(),
                "static addresses, routes and rules are not managed by havip; configure them in the OS",
            ),
            "linkbeat_use_polling" | "net_namespace" | "net_namespace_ipvs" | "instance"
            | "use_pid_dir" | "child_wait_time" | "namespace_with_ipsets" => {
                report.skip(&n.name.loc, n.kw(), "process setting with no havip equivalent")
            }
            "bfd_instance" => report.skip(&n.name.loc, n.kw(), "BFD is not supported"),
            "garp_group" => report.skip(&n.name.loc, n.kw(), "announcement settings are per [[vrrp]] instance ([vrrp.announce])"),
            _ => report.skip(&n.name.loc, n.kw(), "not supported by the importer"),
        }
    }

    let mut out = Mapped::default();
    let mut made: Vec<String> = Vec::new();
    for inst in instances {
        let Some(mut v) = map_instance(inst, &g, report) else {
            continue;
        };
        // Trackers referenced by this instance.
        let mut refs: Vec<V<TrackRef>> = Vec::new();
        for c in inst.children() {
            let kind = match c.kw() {
                "track_script" => RefKind::Script,
                "track_interface" => RefKind::Interface,
                "track_file" => RefKind::File,
                "track_process" => RefKind::Process,
                _ => continue,
            };
            for t in c.children() {
                let name = t.kw().to_string();
                let mut weight: Option<i32> = None;
                let mut i = 0;
                while let Some(w) = t.arg(i) {
                    match w {
                        "weight" => {
                            weight = num::<i32>(t, i + 1, report);
                            i += 2;
                        }
                        "reverse" => {
                            report.skip(
                                &t.name.loc,
                                "reverse",
                                "reversed weights are not supported",
                            );
                            i += 1;
                        }
                        "noreverse" | "no_reverse" => i += 1,
                        other => {
                            report.skip(&t.name.loc, other, "not supported");
                            i += 1;
                        }
                    }
                }
                let src = Src::new(t.name.loc.clone(), format!("{} {name}", c.kw()));
                let vips: Vec<IpAddr> = v
                    .virtual_addresses
                    .iter()
                    .map(|a| a.value.address)
                    .collect();
                let trackers = match kind {
                    RefKind::Script => match scripts.iter().find(|(n, _)| *n == name) {
                        Some((_, def)) => script_trackers(
                            &name,
                            def,
                            &g,
                            &vips,
                            ctx,
                            report,
                            &mut out.read_scripts,
                        ),
                        None => {
                            report.error(
                                &t.name.loc,
                                c.kw(),
                                format!("no vrrp_script named {name:?}"),
                            );
                            continue;
                        }
                    },
                    RefKind::Interface => {
                        let tname = sanitize_name(&format!("if_{name}"));
                        let mut tr = Tracker::new(
                            V::noted(tname, &src, format!("track_interface {name}")),
                            V::new(TrackerKind::Interface, &src),
                            src.clone(),
                        );
                        tr.interface = Some(V::new(name.clone(), &src));
                        // keepalived: an unweighted tracked interface puts the instance in
                        // Fault, which is havip's default weight 0; a weight here is per
                        // instance, so it goes on the reference below.
                        vec![tr]
                    }
                    RefKind::File => match files.iter().find(|(n, _)| *n == name) {
                        Some((_, def)) => {
                            let mut tr = Tracker::new(
                                V::new(sanitize_name(&name), &def.src),
                                V::new(TrackerKind::File, &def.src),
                                def.src.clone(),
                            );
                            tr.path = def.path.clone();
                            tr.weight = def.weight.clone();
                            if tr.path.is_none() {
                                report.error(&def.src.loc, "track_file", "no file given");
                            }
                            vec![tr]
                        }
                        None => {
                            report.error(
                                &t.name.loc,
                                c.kw(),
                                format!("no track_file named {name:?}"),
                            );
                            continue;
                        }
                    },
                    RefKind::Process => match processes.iter().find(|(n, _)| *n == name) {
                        Some((_, def)) => {
                            let mut tr = Tracker::new(
                                V::new(sanitize_name(&name), &def.src),
                                V::new(TrackerKind::Process, &def.src),
                                def.src.clone(),
                            );
                            tr.process = def.process.clone();
                            tr.weight = Some(def.weight.clone().unwrap_or_else(|| {
                                V::noted(1, &def.src, "keepalived's default weight for a process")
                            }));
                            vec![tr]
                        }
                        None => {
                            report.error(
                                &t.name.loc,
                                c.kw(),
                                format!("no vrrp_track_process named {name:?}"),
                            );
                            continue;
                        }
                    },
                };
                for tr in trackers {
                    refs.push(V::new(
                        TrackRef {
                            tracker: tr.name.value.clone(),
                            weight,
                        },
                        &src,
                    ));
                    if !made.contains(&tr.name.value) {
                        made.push(tr.name.value.clone());
                        out.trackers.push(tr);
                    }
                }
            }
        }
        v.track = refs;
        out.vrrp.push(v);
    }
    for (name, def) in &scripts {
        if !out.trackers.iter().any(|t| t.from == def.src)
            && !made.iter().any(|m| m == &sanitize_name(name))
        {
            report.skip(
                &def.src.loc,
                "vrrp_script",
                format!("{name}: not tracked by any vrrp_instance, not imported"),
            );
        }
    }
    out
}

fn map_global(n: &Node, g: &mut Globals, report: &mut Report) {
    for c in n.children() {
        let kw = c.kw();
        if let Some(garp) = kw.strip_prefix("vrrp_garp_") {
            if garp_setting(c, garp, &mut g.announce, &mut g.gna_interval, report) {
                continue;
            }
        }
        match kw {
            "vrrp_gna_interval" => {
                garp_setting(c, "gna_interval", &mut g.announce, &mut g.gna_interval, report);
            }
            "script_user" => {
                g.script_user = c.arg(0).map(|u| V::new(u.to_string(), &c.arg_src(0)));
                if c.args.len() > 1 {
                    report.skip(&c.name.loc, kw, "the group is the user's own group in havip");
                }
            }
            "enable_script_security" => report.skip(
                &c.name.loc,
                kw,
                "havip runs each script as its configured user without a shell unless shell = true; there is no separate security check of script paths",
            ),
            "vrrp_version" => {
                if let Some(v) = num::<u8>(c, 0, report) {
                    if v == 2 || v == 3 {
                        g.version = Some(V::new(v, &c.arg_src(0)));
                    } else {
                        report.error(&c.name.loc, kw, "must be 2 or 3");
                    }
                }
            }
            "vrrp_check_unicast_src" => g.check_unicast_src = Some(V::new(true, &c.src())),
            "vrrp_min_garp" => {
                if c.arg(0).is_none_or(|b| matches!(b, "on" | "true" | "yes")) {
                    g.announce.burst_count = Some(V::noted(1, &c.src(), "vrrp_min_garp"));
                    g.announce.second_burst_delay =
                        Some(V::noted(Duration::ZERO, &c.src(), "vrrp_min_garp"));
                }
            }
            "router_id" => report.skip(
                &c.name.loc,
                kw,
                "names the node in keepalived's email alerts; havip has no email alerts",
            ),
            "vrrp_skip_check_adv_addr" => report.skip(
                &c.name.loc,
                kw,
                "a keepalived optimisation of its advert checks; nothing to carry",
            ),
            "vrrp_strict" => report.skip(
                &c.name.loc,
                kw,
                "no strict mode: havip speaks RFC 5798 with keepalived's extensions (unicast, v2 PASS auth)",
            ),
            "notification_email" | "notification_email_from" | "smtp_server"
            | "smtp_connect_timeout" | "smtp_helo_name" | "smtp_alert" | "smtp_alert_vrrp"
            | "smtp_alert_checker" | "email_faults" => report.skip(
                &c.name.loc,
                kw,
                "email alerts are not supported; use [vrrp.notify] commands",
            ),
            "vrrp_mcast_group4" | "vrrp_mcast_group6" => report.skip(
                &c.name.loc,
                kw,
                "havip uses the standard VRRP multicast groups (224.0.0.18, ff02::12)",
            ),
            "vrrp_iptables" | "vrrp_ipsets" | "nftables" | "vrrp_nftables" | "nftables_priority"
            | "nftables_counters" | "nftables_ifindex" => report.skip(
                &c.name.loc,
                kw,
                "havip does not manage firewall rules",
            ),
            "dynamic_interfaces" | "max_auto_priority" | "vrrp_no_swap" | "vrrp_rt_priority"
            | "vrrp_priority" | "vrrp_rlimit_rttime" | "checker_priority" | "checker_no_swap"
            | "vrrp_cpu_affinity" | "checker_cpu_affinity" | "vrrp_rx_bufs_policy"
            | "vrrp_rx_bufs_multiplier" | "lvs_id" | "lvs_flush" | "lvs_flush_on_stop" | "lvs_sync_daemon"
            | "lvs_timeouts" | "checker_log_all_failures" | "vrrp_notify_fifo" | "notify_fifo"
            | "vrrp_notify_fifo_script" | "notify_fifo_script" | "vrrp_notify_priority_changes"
            | "script_security" | "process_names" | "process_name" | "vrrp_process_name"
            | "checker_process_name" | "bfd_process_name" | "startup_script"
            | "shutdown_script" | "startup_script_timeout" | "shutdown_script_timeout"
            | "tmp_config_directory" | "config_save_dir" | "vrrp_startup_delay"
            | "vrrp_lower_prio_no_advert" | "vrrp_higher_prio_send_advert" | "vrrp_down_timer_adverts"
            | "enable_dbus" | "dbus_service_name" | "enable_snmp_vrrp" | "enable_snmp_keepalived"
            | "enable_snmp_rfc" | "enable_snmp_rfcv2" | "enable_snmp_rfcv3" | "enable_traps"
            | "snmp_socket" | "fifo_write_vrrp_states_on_reload" | "vrrp_netlink_cmd_rcv_bufs"
            | "vrrp_netlink_monitor_rcv_bufs" | "vrrp_netlink_cmd_rcv_bufs_force"
            | "vrrp_netlink_monitor_rcv_bufs_force" | "vrrp_garp_extra_if_vmac" => {
                report.skip(&c.name.loc, kw, "no havip equivalent")
            }
            _ => report.skip(&c.name.loc, kw, "not supported by the importer"),
        }
    }
}

fn script_def(n: &Node, report: &mut Report) -> ScriptDef {
    let name = n.arg(0).unwrap_or("");
    let mut def = ScriptDef {
        src: Src::new(n.name.loc.clone(), format!("vrrp_script {name}")),
        argv: None,
        interval: None,
        timeout: None,
        weight: None,
        rise: None,
        fall: None,
        user: None,
    };
    for c in n.children() {
        let src = c.arg_src(0);
        match c.kw() {
            "script" => {
                def.argv = script_argv(&c.args, report).map(|a| V::new(a, &src));
                if def.argv.is_none() {
                    report.error(&c.name.loc, "script", "missing the command");
                }
            }
            "interval" => def.interval = secs(c, 0, report).map(|d| V::new(d, &src)),
            "timeout" => def.timeout = secs(c, 0, report).map(|d| V::new(d, &src)),
            "weight" => {
                def.weight = num::<i32>(c, 0, report).map(|w| V::new(w, &src));
                if c.arg(1) == Some("reverse") {
                    report.skip(
                        &c.name.loc,
                        "weight reverse",
                        "reversed weights are not supported",
                    );
                }
            }
            "rise" => def.rise = num::<u32>(c, 0, report).map(|r| V::new(r, &src)),
            "fall" => def.fall = num::<u32>(c, 0, report).map(|f| V::new(f, &src)),
            "user" => {
                def.user = c.arg(0).map(|u| V::new(u.to_string(), &src));
                if c.args.len() > 1 {
                    report.skip(
                        &c.name.loc,
                        "user",
                        "the group is the user's own group in havip",
                    );
                }
            }
            "init_fail" => report.skip(
                &c.name.loc,
                "init_fail",
                "havip trackers start unknown and count rise/fall from the first result",
            ),
            other => report.skip(&c.name.loc, other, "not supported by the importer"),
        }
    }
    def
}

/// The text of a track script, from `--script` or its path; with the name it is shown as.
fn script_text(
    path: &str,
    ctx: &Context<'_>,
    report: &mut Report,
    at: &Loc,
) -> Option<(String, String)> {
    let base = script::basename(path);
    let explicit = ctx
        .scripts
        .iter()
        .find(|s| s.path_in_config.as_deref() == Some(path));
    let by_name = || {
        let matching: Vec<&ScriptFile> = ctx
            .scripts
            .iter()
            .filter(|s| s.path_in_config.is_none())
            .filter(|s| {
                let f = s
                    .file
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default();
                f == base || f.ends_with(&format!("-{base}")) || f.ends_with(&format!("_{base}"))
            })
            .collect();
        (matching.len() == 1).then(|| matching[0])
    };
    if let Some(s) = explicit.or_else(by_name) {
        return match std::fs::read(&s.file) {
            Ok(b) => Some((
                String::from_utf8_lossy(&b).into_owned(),
                s.file.to_string_lossy().into_owned(),
            )),
            Err(e) => {
                report.error(at, "script", format!("{}: {e}", s.file.display()));
                None
            }
        };
    }
    if path.starts_with('/') {
        if let Ok(b) = std::fs::read(path) {
            return Some((String::from_utf8_lossy(&b).into_owned(), path.to_string()));
        }
    }
    None
}

/// The tracker(s) a vrrp_script becomes: built-in when the script only checks the local
/// proxy, else a script tracker.
fn script_trackers(
    name: &str,
    def: &ScriptDef,
    g: &Globals,
    vips: &[IpAddr],
    ctx: &Context<'_>,
    report: &mut Report,
    read_scripts: &mut Vec<String>,
) -> Vec<Tracker> {
    let tname = sanitize_name(name);
    let script_tracker = |report: &mut Report| -> Tracker {
        let mut t = Tracker::new(
            V::new(tname.clone(), &def.src),
            V::new(TrackerKind::Script, &def.src),
            def.src.clone(),
        );
        t.command = def.argv.clone();
        t.weight = def.weight.clone();
        t.rise = def.rise.clone();
        t.fall = def.fall.clone();
        t.interval = def.interval.clone();
        t.timeout = def.timeout.clone();
        t.user = def.user.clone().or_else(|| g.script_user.clone());
        let _ = report;
        t
    };
    let Some(argv) = &def.argv else {
        return vec![script_tracker(report)];
    };
    let script_loc = argv.loc().cloned().unwrap_or_else(|| def.src.loc.clone());
    // What does it check?
    let (analysis, shown) = match script::analyze_argv(&argv.value) {
        Some(a) => (a, None),
        None => match script_text(&argv.value[0], ctx, report, &script_loc) {
            Some((text, shown)) => {
                if !read_scripts.contains(&shown) {
                    read_scripts.push(shown.clone());
                }
                (script::analyze_script(&text), Some(shown))
            }
            None => {
                report.skip(
                    &script_loc,
                    "script",
                    format!(
                        "{}: not readable here, so kept as a script tracker; give it with --script {}=FILE to let the importer read it",
                        argv.value[0], argv.value[0]
                    ),
                );
                return vec![script_tracker(report)];
            }
        },
    };
    let at = |line: u32| -> String {
        match &shown {
            Some(f) => format!("{f}:{line}"),
            None => format!("{}:{}", script_loc.file, script_loc.line),
        }
    };
    if !analysis.is_replaceable() {
        let why = match analysis.unknown.first() {
            Some((cmd, line)) => format!(
                "it runs `{cmd}` ({}), which is not a check of the local proxy",
                at(*line)
            ),
            None => "no check of the local proxy was recognised".to_string(),
        };
        report.skip(
            &script_loc,
            "script",
            format!("kept as a script tracker: {why}"),
        );
        return vec![script_tracker(report)];
    }

    // Resolve each probe to havip services.
    let local = |host: &str| -> bool {
        matches!(host, "localhost" | "127.0.0.1" | "::1" | "0.0.0.0")
            || host.parse::<IpAddr>().is_ok_and(|ip| vips.contains(&ip))
    };
    let by_port = |port: u16| -> Vec<&Service> {
        ctx.services
            .iter()
            .filter(|s| s.listen_ports().contains(&port))
            .collect()
    };
    let mut kind = TrackerKind::Listener;
    let mut targets: Vec<String> = Vec::new();
    let mut process: Option<String> = None;
    let mut reason = String::new();
    let mut unresolved: Option<String> = None;
    for (probe, line) in &analysis.probes {
        match probe {
            Probe::Http {
                host, port, path, ..
            } => {
                let svcs = by_port(*port);
                if !local(host) || svcs.is_empty() {
                    unresolved = Some(format!(
                        "its request to {host}:{port}{path} ({}) is not to an imported service",
                        at(*line)
                    ));
                    break;
                }
                kind = TrackerKind::Service;
                reason = format!(
                    "its request to {host}:{port} ({}) checks the balancer",
                    at(*line)
                );
                for s in svcs {
                    if !targets.contains(&s.name.value) {
                        targets.push(s.name.value.clone());
                    }
                }
            }
            Probe::Listen(port) => {
                let svcs = by_port(*port);
                if svcs.is_empty() {
                    unresolved = Some(format!(
                        "no imported service listens on port {port} ({})",
                        at(*line)
                    ));
                    break;
                }
                if kind != TrackerKind::Service {
                    reason = format!("it checks that port {port} listens ({})", at(*line));
                }
                for s in svcs {
                    if !targets.contains(&s.name.value) {
                        targets.push(s.name.value.clone());
                    }
                }
            }
            Probe::Process(p) => {
                let proxy = ctx
                    .origins
                    .iter()
                    .zip(ctx.services)
                    .filter(|(o, _)| o.process_names().contains(&p.as_str()));
                let svcs: Vec<&Service> = proxy.map(|(_, s)| s).collect();
                if svcs.is_empty() {
                    if process.as_ref().is_some_and(|q| q != p) {
                        unresolved = Some("it checks several processes".to_string());
                        break;
                    }
                    process = Some(p.clone());
                    reason = format!("it checks that {p} runs ({})", at(*line));
                } else {
                    if kind != TrackerKind::Service && reason.is_empty() {
                        reason = format!(
                            "it checks that {p} runs ({}); havip replaces {p}, so its listeners are checked",
                            at(*line)
                        );
                    }
                    for s in svcs {
                        if !targets.contains(&s.name.value) {
                            targets.push(s.name.value.clone());
                        }
                    }
                }
            }
        }
    }
    if let Some(why) = unresolved {
        report.skip(
            &script_loc,
            "script",
            format!("kept as a script tracker: {why}"),
        );
        return vec![script_tracker(report)];
    }
    if !targets.is_empty() && process.is_some() {
        report.skip(
            &script_loc,
            "script",
            "kept as a script tracker: it checks both the proxy and another process",
        );
        return vec![script_tracker(report)];
    }

    // The weight: a script that stops keepalived on failure makes the node give up the VIP
    // whatever its weight, which is havip's weight 0 (Fault).
    let mut weight = def.weight.clone();
    if let Some(line) = analysis.stops_keepalived {
        let was = def.weight.as_ref().map_or(0, |w| w.value);
        if was != 0 {
            report.skip(
                &script_loc,
                "weight",
                format!(
                    "the script stops keepalived when its check fails ({}), so the node gives up the VIP whatever the weight: imported with weight 0 (failing means Fault) instead of {was}",
                    at(line)
                ),
            );
        }
        weight = Some(V::noted(
            0,
            &def.src,
            format!("the script stopped keepalived on failure ({})", at(line)),
        ));
    }
    for (svc, line) in &analysis.restarts {
        report.skip(
            &script_loc,
            "script",
            format!(
                "it also starts {svc} ({}); havip restarts nothing (use systemd's Restart=)",
                at(*line)
            ),
        );
    }
    if def.interval.is_some() && kind != TrackerKind::Script && process.is_none() {
        report.skip(
            &def.interval.as_ref().and_then(|i| i.loc().cloned()).unwrap_or_else(|| def.src.loc.clone()),
            "interval",
            "built-in listener and service trackers follow the balancer's state as it changes; no polling interval",
        );
    }
    let note = format!("was script {}: {reason}", argv.value.join(" "));
    let mut out = Vec::new();
    if let Some(p) = process {
        let mut t = Tracker::new(
            V::new(tname.clone(), &def.src),
            V::noted(TrackerKind::Process, &def.src, note),
            def.src.clone(),
        );
        t.process = Some(V::new(p, &def.src));
        t.weight = weight;
        t.rise = def.rise.clone();
        t.fall = def.fall.clone();
        t.interval = def.interval.clone();
        out.push(t);
        return out;
    }
    let several = targets.len() > 1;
    if several {
        report.skip(
            &script_loc,
            "script",
            format!(
                "one tracker per service ({}): the weight applies for each failing service",
                targets.join(", ")
            ),
        );
    }
    for svc in targets {
        let name = if several {
            sanitize_name(&format!("{name}_{svc}"))
        } else {
            tname.clone()
        };
        let mut t = Tracker::new(
            V::new(name, &def.src),
            V::noted(kind, &def.src, note.clone()),
            def.src.clone(),
        );
        t.service = Some(V::new(svc, &def.src));
        if kind == TrackerKind::Service {
            t.min_healthy = Some(V::noted(
                1,
                &def.src,
                "the balancer reaches at least one healthy backend",
            ));
        }
        t.weight = weight.clone();
        t.rise = def.rise.clone();
        t.fall = def.fall.clone();
        out.push(t);
    }
    out
}

fn vip_of(n: &Node, report: &mut Report) -> Option<V<Vip>> {
    let text = n.kw();
    if text.contains('-') && !text.contains(':') {
        report.skip(
            &n.name.loc,
            text,
            "address ranges are not supported; list each address",
        );
        return None;
    }
    let Some((address, prefix)) = parse_prefix(text) else {
        report.error(
            &n.name.loc,
            "virtual_ipaddress",
            format!("{text:?} is not an address"),
        );
        return None;
    };
    let mut vip = Vip {
        address,
        prefix,
        interface: None,
        label: None,
    };
    let mut i = 0;
    while let Some(w) = n.arg(i) {
        match w {
            "dev" => vip.interface = n.arg(i + 1).map(str::to_string),
            "label" => vip.label = n.arg(i + 1).map(str::to_string),
            "brd" | "broadcast" | "scope" | "peer" | "preferred_lft" | "track_group" => {
                if w != "scope" || n.arg(i + 1) != Some("global") {
                    report.skip(&n.args[i].loc, w, "not supported for virtual addresses");
                }
            }
            "no_track" | "home" | "-nodad" | "nodad" | "mngtmpaddr" | "noprefixroute"
            | "autojoin" => {
                report.skip(&n.args[i].loc, w, "not supported for virtual addresses");
                i += 1;
                continue;
            }
            "use_vmac" => {
                report.skip(
                    &n.args[i].loc,
                    w,
                    "virtual MAC interfaces are not supported",
                );
                i += 1;
                continue;
            }
            other => {
                report.skip(&n.args[i].loc, other, "not supported for virtual addresses");
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    Some(V::new(
        vip,
        &Src::new(n.name.loc.clone(), "virtual_ipaddress"),
    ))
}

fn map_instance(n: &Node, g: &Globals, report: &mut Report) -> Option<Vrrp> {
    let Some(name) = n.arg(0) else {
        report.error(&n.name.loc, "vrrp_instance", "missing the instance's name");
        return None;
    };
    let head = Src::new(n.name.loc.clone(), format!("vrrp_instance {name}"));
    let mut v = Vrrp::new(V::new(name.to_string(), &head), head.clone());
    let mut announce = g.announce.clone();
    let mut gna = g.gna_interval.clone();
    let mut nopreempt: Option<Src> = None;
    let mut preempt_delay_src: Option<Src> = None;
    let mut auth_type: Option<(String, Src)> = None;
    let mut advert_src: Option<(Duration, Src)> = None;
    let mut version: Option<V<u8>> = None;
    let mut priority_set = false;
    let mut notify_users: Vec<(String, Src)> = Vec::new();
    for c in n.children() {
        let kw = c.kw();
        let src = c.arg_src(0);
        if let Some(garp) = kw.strip_prefix("garp_") {
            if garp_setting(c, garp, &mut announce, &mut gna, report) {
                continue;
            }
        }
        match kw {
            "state" => match c.arg(0) {
                Some("MASTER") => {
                    v.initial_master = Some(c.src());
                    report.skip(
                        &c.name.loc,
                        "state MASTER",
                        "havip has no initial state: every node starts as backup and the highest priority wins the election",
                    );
                }
                Some("BACKUP") | Some("EQUAL") => {}
                other => report.error(
                    &c.name.loc,
                    "state",
                    format!("{:?}: expected MASTER or BACKUP", other.unwrap_or("")),
                ),
            },
            "interface" => v.interface = c.arg(0).map(|i| V::new(i.to_string(), &src)),
            "virtual_router_id" => match num::<u16>(c, 0, report) {
                Some(id) if (1..=255).contains(&id) => v.vrid = Some(V::new(id as u8, &src)),
                Some(_) => report.error(&c.name.loc, kw, "must be 1 to 255"),
                None => {}
            },
            "priority" => match num::<u16>(c, 0, report) {
                Some(p) if (1..=255).contains(&p) => {
                    v.priority = Some(V::new(p as u8, &src));
                    priority_set = true;
                }
                Some(_) => report.error(&c.name.loc, kw, "must be 1 to 255"),
                None => {}
            },
            "advert_int" => {
                if let Some(d) = secs(c, 0, report) {
                    advert_src = Some((d, src.clone()));
                }
            }
            "version" => match num::<u8>(c, 0, report) {
                Some(x @ (2 | 3)) => version = Some(V::new(x, &src)),
                Some(_) => report.error(&c.name.loc, kw, "must be 2 or 3"),
                None => {}
            },
            "authentication" => {
                for a in c.children() {
                    match a.kw() {
                        "auth_type" => auth_type = a.arg(0).map(|t| (t.to_string(), a.arg_src(0))),
                        "auth_pass" => {
                            v.auth_pass = a.arg(0).map(|p| V::new(p.to_string(), &a.arg_src(0)))
                        }
                        other => report.skip(&a.name.loc, other, "not supported by the importer"),
                    }
                }
            }
            "virtual_ipaddress" | "virtual_ipaddress_excluded" => {
                for a in c.children() {
                    if let Some(mut vip) = vip_of(a, report) {
                        if kw == "virtual_ipaddress_excluded" {
                            vip.note = Some("was virtual_ipaddress_excluded: havip lists every address in its adverts".into());
                        }
                        v.virtual_addresses.push(vip);
                    }
                }
            }
            "unicast_src_ip" | "mcast_src_ip" => {
                match c.arg(0).and_then(|a| a.parse::<IpAddr>().ok()) {
                    Some(ip) => v.source = Some(V::new(ip, &src)),
                    None => report.error(&c.name.loc, kw, "expected an IP address"),
                }
            }
            "unicast_peer" => {
                let mut peers = Vec::new();
                let mut ttl_check = false;
                for p in c.children() {
                    match p.kw().parse::<IpAddr>() {
                        Ok(ip) => peers.push(ip),
                        Err(_) => report.error(
                            &p.name.loc,
                            "unicast_peer",
                            format!("{:?} is not an address", p.kw()),
                        ),
                    }
                    if p.args
                        .iter()
                        .any(|a| a.text == "min_ttl" || a.text == "max_ttl")
                    {
                        ttl_check = true;
                        report.skip(
                            &p.name.loc,
                            "min_ttl/max_ttl",
                            "TTL ranges are not supported: havip requires TTL 255 unless accept_any_unicast_ttl = true",
                        );
                    }
                }
                if ttl_check {
                    v.check_unicast_source = Some(V::noted(
                        true,
                        &c.src(),
                        "keepalived: min_ttl/max_ttl turn on check_unicast_src",
                    ));
                }
                v.unicast_peers = Some(V::new(peers, &c.src()));
            }
            "check_unicast_src" => v.check_unicast_source = Some(V::new(true, &c.src())),
            "nopreempt" | "no_preempt" => {
                v.preempt = Some(V::new(false, &c.src()));
                nopreempt = Some(c.src());
            }
            "preempt" => v.preempt = Some(V::new(true, &c.src())),
            "preempt_delay" => {
                if let Some(d) = secs(c, 0, report) {
                    v.preempt_delay = Some(V::new(d, &src));
                    preempt_delay_src = Some(c.src());
                }
            }
            "accept" => v.accept = Some(V::new(true, &c.src())),
            "no_accept" => v.accept = Some(V::new(false, &c.src())),
            "track_script" | "track_interface" | "track_file" | "track_process" => {}
            "track_bfd" => report.skip(&c.name.loc, kw, "BFD is not supported"),
            "notify" | "notify_master" | "notify_backup" | "notify_fault" | "notify_stop" => {
                let Some(first) = c.args.first() else {
                    report.error(&c.name.loc, kw, "missing the command");
                    continue;
                };
                let argv = match script_argv(std::slice::from_ref(first), report) {
                    Some(a) => a,
                    None => continue,
                };
                if let Some(u) = c.arg(1) {
                    notify_users.push((u.to_string(), c.arg_src(1)));
                }
                let value = if kw == "notify" {
                    report.skip(
                        &c.name.loc,
                        kw,
                        "keepalived appends INSTANCE <name> <state> <priority>; havip appends <instance> <old state> <new state>: adapt the script",
                    );
                    V::noted(argv, &src, "havip appends <instance> <old> <new>")
                } else {
                    V::new(argv, &src)
                };
                match kw {
                    "notify" => v.notify.command = Some(value),
                    "notify_master" => v.notify.master = Some(value),
                    "notify_backup" => v.notify.backup = Some(value),
                    "notify_fault" => v.notify.fault = Some(value),
                    _ => v.notify.stop = Some(value),
                }
            }
            "notify_master_rx_lower_pri" | "notify_deleted" | "notify_priority_changes" => report
                .skip(
                    &c.name.loc,
                    kw,
                    "havip notifies on MASTER, BACKUP, FAULT and STOP only",
                ),
            "smtp_alert" => report.skip(
                &c.name.loc,
                kw,
                "email alerts are not supported; use [vrrp.notify]",
            ),
            "dont_track_primary" => report.skip(
                &c.name.loc,
                kw,
                "havip always watches the instance's interface (down means Fault)",
            ),
            "use_vmac" | "vmac_xmit_base" | "use_vmac_addr" | "use_ipvlan" => report.skip(
                &c.name.loc,
                kw,
                "virtual MAC interfaces are not supported; announcements use the interface's MAC",
            ),
            "native_ipv6" => report.skip(
                &c.name.loc,
                kw,
                "deprecated: the addresses decide the family",
            ),
            "strict_mode" => report.skip(&c.name.loc, kw, "no strict mode in havip"),
            "skip_check_adv_addr" => report.skip(
                &c.name.loc,
                kw,
                "a keepalived optimisation; nothing to carry",
            ),
            "virtual_routes" | "virtual_rules" => report.skip(
                &c.name.loc,
                kw,
                "routes and rules are not managed by havip; add them from a notify command",
            ),
            "mcast_dst_ip" => report.skip(
                &c.name.loc,
                kw,
                "havip uses the standard VRRP multicast groups",
            ),
            "unicast_ttl" => report.skip(
                &c.name.loc,
                kw,
                "havip sends with TTL 255, as the RFC requires",
            ),
            "unicast_fault_no_peer" => report.skip(
                &c.name.loc,
                kw,
                "no equivalent; an empty peer list is reported by havip check",
            ),
            "old_unicast_checksum" => report.skip(
                &c.name.loc,
                kw,
                "old keepalived checksum variant; see v3_checksum_as_v2 for the v3 checksum",
            ),
            "debug"
            | "kernel_rx_buf_size"
            | "linkbeat_use_polling"
            | "vrf"
            | "track_src_ip"
            | "down_timer_adverts"
            | "lower_prio_no_advert"
            | "higher_prio_send_advert"
            | "promote_secondaries"
            | "lvs_sync_daemon_interface"
            | "sync_group_tracking_weight" => report.skip(&c.name.loc, kw, "no havip equivalent"),
            _ => report.skip(&c.name.loc, kw, "not supported by the importer"),
        }
    }

    // Version: the instance's, the global vrrp_version, keepalived's default 2; IPv6 is 3.
    let v6 = v
        .virtual_addresses
        .first()
        .is_some_and(|a| a.value.address.is_ipv6());
    let version = match (version, &g.version) {
        (Some(x), _) => x,
        (None, Some(gv)) => gv.clone(),
        (None, None) if v6 => V::noted(3, &head, "keepalived uses VRRPv3 for IPv6"),
        (None, None) => V::noted(2, &head, "keepalived's default vrrp_version"),
    };
    let version_no = version.value;
    v.version = Some(version);

    // Priority: keepalived makes a MASTER without a priority the address owner (255).
    if !priority_set {
        if let Some(m) = &v.initial_master {
            v.priority = Some(V::noted(
                255,
                m,
                "keepalived: state MASTER without priority means 255",
            ));
            report.warn(
                &m.loc,
                "state MASTER",
                "no priority: keepalived makes this node the address owner (priority 255), which always wins; imported as priority = 255",
            );
        }
    }

    // Advert interval: VRRPv2 carries whole seconds; keepalived rounds.
    if let Some((d, src)) = advert_src {
        if version_no == 2 && (d.subsec_nanos() != 0 || d.is_zero()) {
            let rounded = Duration::from_secs(((d.as_millis() + 500) / 1000).max(1) as u64);
            report.warn(
                &src.loc,
                "advert_int",
                format!(
                    "VRRPv2 advertises whole seconds: keepalived rounds {}s to {}s; imported as {}s (use version 3 for sub-second adverts)",
                    d.as_secs_f64(),
                    rounded.as_secs(),
                    rounded.as_secs()
                ),
            );
            v.advert_interval = Some(V::noted(rounded, &src, "rounded as keepalived does for v2"));
        } else {
            v.advert_interval = Some(V::new(d, &src));
        }
    }

    // Authentication.
    match auth_type {
        Some((t, src)) if t == "AH" => {
            report.warn(
                &src.loc,
                "auth_type AH",
                "IPsec AH authentication is not supported by havip (it is refused); not imported",
            );
            v.auth_pass = None;
        }
        Some((t, src)) if t != "PASS" => {
            report.error(&src.loc, "auth_type", format!("{t:?}: expected PASS or AH"));
            v.auth_pass = None;
        }
        _ => {}
    }
    if version_no == 3 {
        if let Some(p) = v.auth_pass.take() {
            if let Some(l) = p.loc() {
                report.skip(
                    l,
                    "auth_pass",
                    "VRRPv3 has no authentication; keepalived ignores it too",
                );
            }
        }
    }

    // nopreempt and preempt_delay with state MASTER: keepalived clears them.
    if let (Some(m), Some(np)) = (&v.initial_master, &nopreempt) {
        report.warn(
            &np.loc,
            "nopreempt",
            format!(
                "with state MASTER ({}:{}) keepalived ignores nopreempt (it logs \"nopreempt will not work with initial state MASTER - clearing\" and this node takes the VIP back); havip honours it: preempt = false",
                m.loc.file, m.loc.line
            ),
        );
    }
    if let (Some(m), Some(pd)) = (&v.initial_master, &preempt_delay_src) {
        report.warn(
            &pd.loc,
            "preempt_delay",
            format!(
                "with state MASTER ({}:{}) keepalived ignores preempt_delay; havip honours it",
                m.loc.file, m.loc.line
            ),
        );
    }

    // Announcements: keepalived's NA spacing for IPv6 instances.
    if v6 {
        if let Some(gna) = gna {
            announce.burst_spacing = Some(gna);
        }
    }
    v.announce = announce;

    // Notify user: the notify commands' user, else the global script_user.
    if let Some((u, src)) = notify_users.first() {
        v.notify.user = Some(V::new(u.clone(), src));
        if notify_users.iter().any(|(o, _)| o != u) {
            report.skip(
                &src.loc,
                "notify",
                "havip runs every notify command as one user; the first one given applies",
            );
        }
    } else if !v.notify.is_empty() {
        v.notify.user = g.script_user.clone();
    }
    if g.check_unicast_src.is_some()
        && v.check_unicast_source.is_none()
        && v.unicast_peers.is_some()
    {
        v.check_unicast_source = g.check_unicast_src.clone();
    }

    if v.interface.is_none() {
        report.warn(
            &n.name.loc,
            "interface",
            "no interface: havip needs the interface the instance runs on",
        );
    }
    if v.vrid.is_none() {
        report.error(
            &n.name.loc,
            "virtual_router_id",
            "missing: every vrrp_instance needs one",
        );
    }
    if v.virtual_addresses.is_empty() {
        report.warn(
            &n.name.loc,
            "virtual_ipaddress",
            "no virtual address: the instance moves nothing",
        );
    }
    Some(v)
}

/// Checks across the nodes of one generated set (several keepalived files): instances with
/// the same name should agree on VRID, advert interval and password, and should not all
/// have the same priority.
pub fn check_set(sets: &[Vec<Vrrp>], report: &mut Report) {
    let mut names: Vec<&str> = Vec::new();
    for set in sets {
        for v in set {
            if !names.contains(&v.name.value.as_str()) {
                names.push(&v.name.value);
            }
        }
    }
    for name in names {
        let same: Vec<&Vrrp> = sets
            .iter()
            .filter_map(|set| set.iter().find(|v| v.name.value == name))
            .collect();
        if same.len() < 2 {
            continue;
        }
        let prio = |v: &Vrrp| v.priority.as_ref().map_or(100, |p| p.value);
        let first = prio(same[0]);
        if same.iter().all(|v| prio(v) == first) {
            for v in &same {
                let loc = v
                    .priority
                    .as_ref()
                    .and_then(|p| p.loc().cloned())
                    .unwrap_or_else(|| v.from.loc.clone());
                report.warn(
                    &loc,
                    "priority",
                    format!(
                        "every node of instance {name} has priority {first}: the election is decided by the highest IP address, not by you; give each node its own priority"
                    ),
                );
            }
        }
        let differ = |f: &dyn Fn(&Vrrp) -> String, what: &str, report: &mut Report| {
            let first = f(same[0]);
            for v in same.iter().skip(1) {
                if f(v) != first {
                    // Passwords are compared, not printed.
                    let values = if what == "auth_pass" {
                        String::new()
                    } else {
                        format!(" ({first} vs {})", f(v))
                    };
                    report.warn(
                        &v.from.loc,
                        what,
                        format!("instance {name}: {what} differs between the nodes{values}; they will not form one group"),
                    );
                }
            }
        };
        differ(
            &|v| v.vrid.as_ref().map_or("-".into(), |x| x.value.to_string()),
            "virtual_router_id",
            report,
        );
        differ(
            &|v| {
                v.advert_interval.as_ref().map_or("1s".into(), |x| {
                    havip_config::duration::fmt_duration(x.value)
                })
            },
            "advert_int",
            report,
        );
        differ(
            &|v| {
                v.version
                    .as_ref()
                    .map_or("-".into(), |x| x.value.to_string())
            },
            "version",
            report,
        );
        differ(
            &|v| {
                v.auth_pass
                    .as_ref()
                    .map_or("(none)".into(), |x| x.value.chars().take(8).collect())
            },
            "auth_pass",
            report,
        );
    }
}

#[cfg(test)]
mod tests;
