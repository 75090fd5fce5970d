//! What a keepalived track script checks, read from its command line or its shell text.
//!
//! The seeds' scripts only test the local proxy: `pgrep haproxy`, `killall -0 haproxy`,
//! `netstat -nlp | grep 9443`, `ps -C nginx`, `curl https://localhost:6443/`. havip can do
//! each of those in-process (a listener, service or process tracker), without forking every
//! few seconds. This module recognises them; anything it does not understand makes the
//! script stay a script.
//!
//! It is a heuristic reader of shell, not a shell: words are split on whitespace and on the
//! separators `; & | ( ) $( \``, single quotes group, double quotes are dropped, redirections
//! are skipped. Each simple command is classified by its name; a pipeline's `grep` gives the
//! pattern `netstat` or `ps` output is searched for.

use std::collections::HashMap;

/// One thing a script checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// A process with this name runs (pgrep, pidof, killall -0, ps -C, systemctl is-active).
    Process(String),
    /// Something listens on this TCP port (netstat/ss/lsof with the port, nc -z).
    Listen(u16),
    /// An HTTP(S) GET answers (curl, wget).
    Http {
        host: String,
        port: u16,
        https: bool,
        path: String,
    },
}

/// What a script does, line by line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Analysis {
    /// The checks, with the 1-based line they are on.
    pub probes: Vec<(Probe, u32)>,
    /// Commands that are neither checks nor harmless plumbing (name, line).
    pub unknown: Vec<(String, u32)>,
    /// The line where the script stops keepalived (`systemctl stop keepalived`).
    pub stops_keepalived: Option<u32>,
    /// Services the script starts or restarts (name, line).
    pub restarts: Vec<(String, u32)>,
}

impl Analysis {
    /// Only checks of the local node, nothing else: safe to replace by built-in trackers.
    pub fn is_replaceable(&self) -> bool {
        !self.probes.is_empty() && self.unknown.is_empty()
    }
}

/// Shell plumbing that neither checks nor changes anything.
const HARMLESS: &[&str] = &[
    "echo",
    "printf",
    "exit",
    "return",
    "sleep",
    "seq",
    "expr",
    "wc",
    "grep",
    "egrep",
    "fgrep",
    "awk",
    "sed",
    "cut",
    "head",
    "tail",
    "tr",
    "sort",
    "uniq",
    "test",
    "[",
    "[[",
    "]",
    "]]",
    "true",
    "false",
    "logger",
    "date",
    "let",
    "local",
    "export",
    "set",
    "read",
    "cat",
    "ip",
    "hostname",
    "continue",
    "break",
    "shift",
    "declare",
    "readonly",
    "unset",
    "source",
    ".",
    ":",
    "basename",
    "dirname",
    "xargs",
    "tee",
    "timeout",
    "eval",
    "exec",
    "command",
    "type",
    "which",
    "printenv",
    "env",
    "trap",
    "wait",
    "/dev/null",
    "bash",
    "sh",
    "dash",
];

const KEYWORDS: &[&str] = &[
    "if", "then", "else", "elif", "fi", "do", "done", "while", "until", "esac", "!", "time", "{",
    "}", "in", "function",
];

/// A command line as keepalived runs it (already split into argv).
pub fn analyze_argv(argv: &[String]) -> Option<Analysis> {
    let first = argv.first()?;
    let name = basename(first);
    if matches!(name, "bash" | "sh" | "dash" | "zsh" | "ash" | "ksh") {
        let i = argv.iter().position(|a| a == "-c")?;
        return argv.get(i + 1).map(|text| analyze_script(text));
    }
    if is_command_we_know(name) {
        let mut a = Analysis::default();
        let seg = Segment {
            words: argv.to_vec(),
            line: 1,
        };
        classify_pipeline(&[seg], &HashMap::new(), &[], &mut a);
        return Some(a);
    }
    None
}

/// Whether the first word names a command this module reads (rather than a script file).
pub fn is_command_we_know(name: &str) -> bool {
    matches!(
        name,
        "pgrep"
            | "pidof"
            | "killall"
            | "pkill"
            | "systemctl"
            | "service"
            | "ps"
            | "netstat"
            | "ss"
            | "lsof"
            | "nc"
            | "ncat"
            | "curl"
            | "wget"
    )
}

pub fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

#[derive(Debug, Clone)]
struct Segment {
    words: Vec<String>,
    line: u32,
}

/// An open `$(`, backtick or `(`: what was being read outside it.
struct Nest {
    subst: bool,
    word: String,
    words: Vec<String>,
    pipeline: Vec<Segment>,
    seg_line: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sep {
    Pipe,
    Other,
}

/// Split shell text into pipelines of simple commands.
fn segments(text: &str) -> Vec<Vec<Segment>> {
    let chars: Vec<char> = text.chars().collect();
    let mut pipelines: Vec<Vec<Segment>> = Vec::new();
    let mut pipeline: Vec<Segment> = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut line: u32 = 1;
    let mut seg_line: u32 = 1;
    let mut i = 0;
    let mut nest: Vec<Nest> = Vec::new();
    let mut backtick_open = false;
    let flush_word = |word: &mut String, words: &mut Vec<String>| {
        if !word.is_empty() {
            words.push(std::mem::take(word));
        }
    };
    let end_segment = |words: &mut Vec<String>,
                       pipeline: &mut Vec<Segment>,
                       pipelines: &mut Vec<Vec<Segment>>,
                       sep: Sep,
                       seg_line: u32| {
        if !words.is_empty() {
            pipeline.push(Segment {
                words: std::mem::take(words),
                line: seg_line,
            });
        }
        if sep == Sep::Other && !pipeline.is_empty() {
            pipelines.push(std::mem::take(pipeline));
        }
    };
    while i < chars.len() {
        let c = chars[i];
        if words.is_empty() && word.is_empty() {
            seg_line = line;
        }
        match c {
            '\n' | ';' => {
                flush_word(&mut word, &mut words);
                end_segment(
                    &mut words,
                    &mut pipeline,
                    &mut pipelines,
                    Sep::Other,
                    seg_line,
                );
                if c == '\n' {
                    line += 1;
                }
                i += 1;
            }
            '#' if word.is_empty() => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            ' ' | '\t' | '\r' => {
                flush_word(&mut word, &mut words);
                i += 1;
            }
            '\\' => {
                if let Some(&n) = chars.get(i + 1) {
                    if n == '\n' {
                        line += 1;
                    } else {
                        word.push(n);
                    }
                }
                i += 2;
            }
            '\'' => {
                i += 1;
                while i < chars.len() && chars[i] != '\'' {
                    if chars[i] == '\n' {
                        line += 1;
                    }
                    word.push(chars[i]);
                    i += 1;
                }
                i += 1;
            }
            '"' => {
                // Double quotes are dropped: what is inside is read like the rest, so a
                // `$(pgrep x)` in quotes is still seen.
                i += 1;
            }
            '>' | '<' => {
                // A redirection: drop an fd number before it and the target after it.
                if word.chars().all(|c| c.is_ascii_digit()) {
                    word.clear();
                } else {
                    flush_word(&mut word, &mut words);
                }
                i += 1;
                while i < chars.len() && matches!(chars[i], '>' | '&' | '<') {
                    i += 1;
                }
                while i < chars.len() && matches!(chars[i], ' ' | '\t') {
                    i += 1;
                }
                while i < chars.len()
                    && !matches!(chars[i], ' ' | '\t' | '\n' | ';' | '|' | '&' | ')' | '`')
                {
                    i += 1;
                }
            }
            '&' if chars.get(i + 1) == Some(&'>') => {
                // &> file
                flush_word(&mut word, &mut words);
                i += 2;
                while i < chars.len() && matches!(chars[i], ' ' | '\t' | '>') {
                    i += 1;
                }
                while i < chars.len() && !matches!(chars[i], ' ' | '\t' | '\n' | ';' | '|' | ')') {
                    i += 1;
                }
            }
            '|' | '&' => {
                flush_word(&mut word, &mut words);
                let double = chars.get(i + 1) == Some(&c);
                let sep = if c == '|' && !double {
                    Sep::Pipe
                } else {
                    Sep::Other
                };
                end_segment(&mut words, &mut pipeline, &mut pipelines, sep, seg_line);
                i += if double { 2 } else { 1 };
            }
            '$' if chars.get(i + 1) == Some(&'(') && chars.get(i + 2) == Some(&'(') => {
                // `$(( ... ))` arithmetic: plumbing, read as one word.
                let mut depth = 0usize;
                i += 1;
                while i < chars.len() {
                    match chars[i] {
                        '(' => depth += 1,
                        ')' => {
                            depth = depth.saturating_sub(1);
                            if depth == 0 {
                                i += 1;
                                break;
                            }
                        }
                        '\n' => line += 1,
                        _ => {}
                    }
                    i += 1;
                }
                word.push('0');
            }
            '$' if chars.get(i + 1) == Some(&'(') => {
                // Command substitution: its own pipeline; the command around it goes on
                // after the `)` with a placeholder in place of the substitution.
                nest.push(Nest {
                    subst: true,
                    word: std::mem::take(&mut word),
                    words: std::mem::take(&mut words),
                    pipeline: std::mem::take(&mut pipeline),
                    seg_line,
                });
                i += 2;
            }
            '`' if backtick_open => {
                // Closing backtick.
                flush_word(&mut word, &mut words);
                end_segment(
                    &mut words,
                    &mut pipeline,
                    &mut pipelines,
                    Sep::Other,
                    seg_line,
                );
                if let Some(outer) = nest.pop() {
                    words = outer.words;
                    pipeline = outer.pipeline;
                    seg_line = outer.seg_line;
                    word = outer.word;
                    word.push_str("$()");
                }
                backtick_open = false;
                i += 1;
            }
            '`' => {
                nest.push(Nest {
                    subst: true,
                    word: std::mem::take(&mut word),
                    words: std::mem::take(&mut words),
                    pipeline: std::mem::take(&mut pipeline),
                    seg_line,
                });
                backtick_open = true;
                i += 1;
            }
            '(' => {
                // A subshell or a function definition's `()`: a separator.
                flush_word(&mut word, &mut words);
                end_segment(
                    &mut words,
                    &mut pipeline,
                    &mut pipelines,
                    Sep::Other,
                    seg_line,
                );
                nest.push(Nest {
                    subst: false,
                    word: String::new(),
                    words: Vec::new(),
                    pipeline: Vec::new(),
                    seg_line,
                });
                i += 1;
            }
            ')' => {
                flush_word(&mut word, &mut words);
                end_segment(
                    &mut words,
                    &mut pipeline,
                    &mut pipelines,
                    Sep::Other,
                    seg_line,
                );
                if let Some(outer) = nest.pop() {
                    if outer.subst {
                        words = outer.words;
                        pipeline = outer.pipeline;
                        seg_line = outer.seg_line;
                        word = outer.word;
                        word.push_str("$()");
                    }
                }
                i += 1;
            }
            c => {
                word.push(c);
                i += 1;
            }
        }
    }
    flush_word(&mut word, &mut words);
    end_segment(
        &mut words,
        &mut pipeline,
        &mut pipelines,
        Sep::Other,
        seg_line,
    );
    pipelines
}

/// Names of shell functions the script defines (`name() {`, `function name`).
fn functions(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let l = line.trim_start();
        let l = l
            .strip_prefix("function ")
            .map(str::trim_start)
            .unwrap_or(l);
        let name: String = l
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
            .collect();
        if name.is_empty() {
            continue;
        }
        let rest = l[name.len()..].trim_start();
        if rest.starts_with("()") || line.trim_start().starts_with("function ") {
            out.push(name);
        }
    }
    out
}

/// Read a shell script.
pub fn analyze_script(text: &str) -> Analysis {
    let funcs = functions(text);
    let pipelines = segments(text);
    // Simple assignments (`PORT=6443`), to resolve `$PORT` and `${PORT}`.
    let mut vars: HashMap<String, String> = HashMap::new();
    for p in &pipelines {
        for s in p {
            for w in &s.words {
                if let Some((name, value)) = assignment(w) {
                    if !value.is_empty() && !value.contains('$') {
                        vars.insert(name.to_string(), value.to_string());
                    }
                }
            }
        }
    }
    let mut a = Analysis::default();
    for p in &pipelines {
        classify_pipeline(p, &vars, &funcs, &mut a);
    }
    a
}

fn assignment(word: &str) -> Option<(&str, &str)> {
    let (name, value) = word.split_once('=')?;
    let ok = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    ok.then_some((name, value))
}

fn substitute(word: &str, vars: &HashMap<String, String>) -> String {
    if !word.contains('$') {
        return word.to_string();
    }
    let mut out = String::new();
    let chars: Vec<char> = word.chars().collect();
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
            let end = if braced && chars.get(j) == Some(&'}') {
                j + 1
            } else {
                j
            };
            if let Some(v) = vars.get(&name).filter(|_| !name.is_empty()) {
                out.push_str(v);
                i = end;
                continue;
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

/// The command name and arguments of a segment: leading assignments and keywords dropped.
fn command(seg: &Segment, vars: &HashMap<String, String>) -> Option<(String, Vec<String>)> {
    let mut words = seg.words.iter().map(|w| substitute(w, vars)).peekable();
    while let Some(w) = words.peek() {
        if assignment(w).is_some() || KEYWORDS.contains(&w.as_str()) {
            words.next();
        } else {
            break;
        }
    }
    let name = words.next()?;
    if matches!(name.as_str(), "for" | "case" | "select") {
        return None;
    }
    Some((name, words.collect()))
}

fn non_options(args: &[String]) -> Vec<&str> {
    args.iter()
        .map(String::as_str)
        .filter(|a| !a.starts_with('-'))
        .collect()
}

fn port_in(pattern: &str) -> Option<u16> {
    let mut best = None;
    let mut run = String::new();
    for c in pattern.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_digit() {
            run.push(c);
        } else {
            if (2..=5).contains(&run.len()) {
                if let Ok(p) = run.parse::<u16>() {
                    if p > 0 {
                        best = Some(p);
                    }
                }
            }
            run.clear();
        }
    }
    best
}

fn grep_pattern(
    pipeline: &[Segment],
    from: usize,
    vars: &HashMap<String, String>,
) -> Option<String> {
    for seg in pipeline.iter().skip(from + 1) {
        let (name, args) = command(seg, vars)?;
        if matches!(basename(&name), "grep" | "egrep" | "fgrep") {
            let pats = non_options(&args);
            // `grep -v grep` filters grep itself out; keep looking.
            if args.iter().any(|a| a == "-v") {
                continue;
            }
            if let Some(p) = pats.first() {
                return Some(p.to_string());
            }
        }
    }
    None
}

fn parse_url(url: &str) -> Option<Probe> {
    let (scheme, rest) = url.split_once("://")?;
    let https = match scheme {
        "https" => true,
        "http" => false,
        _ => return None,
    };
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = if let Some(h) = hostport.strip_prefix('[') {
        let (h, p) = h.split_once(']')?;
        (h.to_string(), p.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (hostport.to_string(), None),
        }
    };
    let port = match port {
        Some(p) => p.parse().ok()?,
        None if https => 443,
        None => 80,
    };
    if host.is_empty() || host.contains('$') {
        return None;
    }
    Some(Probe::Http {
        host,
        port,
        https,
        path: path.to_string(),
    })
}

fn classify_pipeline(
    pipeline: &[Segment],
    vars: &HashMap<String, String>,
    funcs: &[String],
    a: &mut Analysis,
) {
    for (idx, seg) in pipeline.iter().enumerate() {
        let Some((name, args)) = command(seg, vars) else {
            continue;
        };
        let line = seg.line;
        let cmd = basename(&name).to_string();
        let plain = non_options(&args);
        match cmd.as_str() {
            "pgrep" | "pidof" => {
                // pgrep's options with a value: -u -U -g -G -P -s -t --ns
                let mut skip_next = false;
                let mut target = None;
                for arg in &args {
                    if skip_next {
                        skip_next = false;
                        continue;
                    }
                    if matches!(
                        arg.as_str(),
                        "-u" | "-U" | "-g" | "-G" | "-P" | "-s" | "-t" | "--ns" | "-o"
                    ) {
                        skip_next = true;
                        continue;
                    }
                    if !arg.starts_with('-') {
                        target = Some(arg.clone());
                    }
                }
                match target {
                    Some(t) => a.probes.push((Probe::Process(t), line)),
                    None => a.unknown.push((cmd, line)),
                }
            }
            "killall" | "pkill" => {
                let target = plain.last().map(|s| s.to_string());
                match (args.iter().any(|a| a == "-0"), target) {
                    (true, Some(t)) if cmd == "killall" => a.probes.push((Probe::Process(t), line)),
                    (false, Some(t)) if t == "keepalived" => a.stops_keepalived = Some(line),
                    _ => a.unknown.push((cmd, line)),
                }
            }
            "systemctl" | "service" => {
                let (action, unit) = if cmd == "systemctl" {
                    (plain.first().copied(), plain.get(1).copied())
                } else {
                    (plain.get(1).copied(), plain.first().copied())
                };
                let unit = unit.map(|u| u.trim_end_matches(".service").to_string());
                match (action, unit) {
                    (Some("is-active" | "status"), Some(u)) => {
                        a.probes.push((Probe::Process(u), line))
                    }
                    (Some("stop" | "kill"), Some(u))
                        if u == "keepalived" || u.ends_with("-keepalived") =>
                    {
                        a.stops_keepalived = Some(line)
                    }
                    (Some("start" | "restart" | "reload" | "try-restart"), Some(u)) => {
                        a.restarts.push((u, line))
                    }
                    _ => a.unknown.push((cmd, line)),
                }
            }
            "ps" => {
                if let Some(i) = args.iter().position(|x| x == "-C") {
                    match args.get(i + 1) {
                        Some(n) => a.probes.push((Probe::Process(n.clone()), line)),
                        None => a.unknown.push((cmd, line)),
                    }
                } else if let Some(p) = grep_pattern(pipeline, idx, vars) {
                    a.probes.push((Probe::Process(p), line));
                }
            }
            "netstat" | "ss" => {
                let port = grep_pattern(pipeline, idx, vars)
                    .and_then(|p| port_in(&p))
                    .or_else(|| {
                        args.iter()
                            .position(|x| x == "sport")
                            .and_then(|i| args.get(i + 2))
                            .and_then(|p| port_in(p))
                    });
                match port {
                    Some(p) => a.probes.push((Probe::Listen(p), line)),
                    None => a.unknown.push((cmd, line)),
                }
            }
            "lsof" => {
                let port = args
                    .iter()
                    .filter(|x| x.starts_with("-i") || x.starts_with(':'))
                    .find_map(|x| x.rsplit_once(':').and_then(|(_, p)| p.parse::<u16>().ok()));
                match port {
                    Some(p) => a.probes.push((Probe::Listen(p), line)),
                    None => a.unknown.push((cmd, line)),
                }
            }
            "nc" | "ncat" => {
                let local = plain
                    .first()
                    .is_some_and(|h| matches!(*h, "localhost" | "127.0.0.1" | "::1" | "0.0.0.0"));
                let port = plain.get(1).and_then(|p| p.parse::<u16>().ok());
                match (
                    args.iter().any(|x| x.starts_with("-z") || x == "-zv"),
                    local,
                    port,
                ) {
                    (true, true, Some(p)) => a.probes.push((Probe::Listen(p), line)),
                    _ => a.unknown.push((cmd, line)),
                }
            }
            "curl" | "wget" => match args.iter().find_map(|x| parse_url(x)) {
                Some(p) => a.probes.push((p, line)),
                None => a.unknown.push((cmd, line)),
            },
            c if HARMLESS.contains(&c) || funcs.iter().any(|f| f == c) => {}
            c if assignment(c).is_some() => {}
            _ => a.unknown.push((cmd, line)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RKE2: &str = include_str!("../tests/import/seeds/rke2-check_apiserver.sh");

    #[test]
    fn the_rke2_seed_script_checks_haproxy_and_stops_keepalived() {
        let a = analyze_script(RKE2);
        assert_eq!(a.probes, vec![(Probe::Process("haproxy".into()), 6)]);
        assert!(a.unknown.is_empty(), "{:?}", a.unknown);
        assert_eq!(a.stops_keepalived, Some(18));
        assert!(a.is_replaceable());
    }

    #[test]
    fn the_docker_seed_command_checks_a_listening_port() {
        let argv: Vec<String> = [
            "/bin/bash",
            "-c",
            "if [[ $(netstat -nlp | grep 9443) ]]; then exit 0; else exit 1; fi",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let a = analyze_argv(&argv).unwrap();
        assert_eq!(a.probes, vec![(Probe::Listen(9443), 1)]);
        assert!(a.is_replaceable());
    }

    #[test]
    fn simple_commands() {
        let argv = |s: &str| -> Vec<String> { s.split(' ').map(String::from).collect() };
        let a = analyze_argv(&argv("killall -0 haproxy")).unwrap();
        assert_eq!(a.probes, vec![(Probe::Process("haproxy".into()), 1)]);
        let a = analyze_argv(&argv("/usr/bin/pgrep -x nginx")).unwrap();
        assert_eq!(a.probes, vec![(Probe::Process("nginx".into()), 1)]);
        let a = analyze_argv(&argv("systemctl is-active --quiet haproxy.service")).unwrap();
        assert_eq!(a.probes, vec![(Probe::Process("haproxy".into()), 1)]);
        let a = analyze_argv(&argv("pidof haproxy")).unwrap();
        assert!(a.is_replaceable());
        assert!(analyze_argv(&argv("/etc/keepalived/check.sh")).is_none());
        // killall without -0 kills: not a check.
        let a = analyze_argv(&argv("killall haproxy")).unwrap();
        assert!(!a.is_replaceable());
    }

    #[test]
    fn the_kubeadm_check_apiserver_script_is_an_https_check() {
        let text = r#"#!/bin/sh
APISERVER_VIP=192.168.0.100
APISERVER_DEST_PORT=8443
errorExit() {
    echo "*** $*" 1>&2
    exit 1
}

curl --silent --max-time 2 --insecure https://localhost:${APISERVER_DEST_PORT}/ -o /dev/null || errorExit "Error GET https://localhost:${APISERVER_DEST_PORT}/"
if ip addr | grep -q ${APISERVER_VIP}; then
    curl --silent --max-time 2 --insecure https://${APISERVER_VIP}:${APISERVER_DEST_PORT}/ -o /dev/null || errorExit "Error GET https://${APISERVER_VIP}:${APISERVER_DEST_PORT}/"
fi
"#;
        let a = analyze_script(text);
        assert!(a.unknown.is_empty(), "{:?}", a.unknown);
        assert_eq!(
            a.probes[0].0,
            Probe::Http {
                host: "localhost".into(),
                port: 8443,
                https: true,
                path: "/".into()
            }
        );
        assert_eq!(a.probes.len(), 2);
    }

    #[test]
    fn the_nginx_seed_script_checks_nginx_and_restarts_it() {
        let text = "#!/bin/bash\nA=$(ps -C nginx --no-header | wc -l)\nif [ $A -eq 0 ]; then\n    /usr/bin/systemctl start kube-nginx\n    sleep 2\n    if [ $(ps -C nginx --no-header | wc -l) -eq 0 ]; then\n        /usr/bin/systemctl stop kube-keepalived\n    fi\nfi\n";
        let a = analyze_script(text);
        assert_eq!(a.probes[0], (Probe::Process("nginx".into()), 2));
        assert_eq!(a.restarts, vec![("kube-nginx".into(), 4)]);
        assert_eq!(a.stops_keepalived, Some(7));
        assert!(a.is_replaceable());
    }

    #[test]
    fn scripts_that_do_more_stay_scripts() {
        let a = analyze_script("kubectl get nodes\npgrep haproxy\n");
        assert!(!a.is_replaceable());
        assert_eq!(a.unknown, vec![("kubectl".into(), 1)]);
        let a = analyze_script("ps aux | grep -v grep | grep haproxy");
        assert_eq!(a.probes, vec![(Probe::Process("haproxy".into()), 1)]);
        let a = analyze_script("ss -ltn | grep ':6443 '");
        assert_eq!(a.probes, vec![(Probe::Listen(6443), 1)]);
    }
}
