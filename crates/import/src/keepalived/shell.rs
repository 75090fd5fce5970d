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
        /// The host of the URL.
        host: String,
        /// Its port (80 or 443 when the URL has none).
        port: u16,
        /// Whether the scheme is `https`.
        https: bool,
        /// The path, `/` when the URL has none.
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

/// The last component of a path.
pub fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// One simple command: its words and the line it starts on.
#[derive(Debug, Clone)]
struct Segment {
    words: Vec<String>,
    line: u32,
}

/// An open `$(`, backtick or `(`: what was being read outside it.
struct Nest {
    /// A command substitution (the command around it goes on after it), not a subshell.
    substitution: bool,
    word: String,
    words: Vec<String>,
    pipeline: Vec<Segment>,
    segment_line: u32,
}

/// What ends a simple command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sep {
    /// `|`: the pipeline goes on.
    Pipe,
    /// Anything else: the pipeline ends too.
    Other,
}

/// Split shell text into pipelines of simple commands.
fn segments(text: &str) -> Vec<Vec<Segment>> {
    let mut splitter = Splitter {
        chars: text.chars().collect(),
        i: 0,
        pipelines: Vec::new(),
        pipeline: Vec::new(),
        words: Vec::new(),
        word: String::new(),
        line: 1,
        segment_line: 1,
        nest: Vec::new(),
        backtick_open: false,
    };
    splitter.run();
    splitter.pipelines
}

/// The state of [`segments`]: the text, where it is, and what has been read.
struct Splitter {
    chars: Vec<char>,
    i: usize,
    pipelines: Vec<Vec<Segment>>,
    pipeline: Vec<Segment>,
    words: Vec<String>,
    word: String,
    /// The line of `chars[i]`.
    line: u32,
    /// The line the current simple command starts on.
    segment_line: u32,
    nest: Vec<Nest>,
    backtick_open: bool,
}

impl Splitter {
    fn run(&mut self) {
        while let Some(&c) = self.chars.get(self.i) {
            if self.words.is_empty() && self.word.is_empty() {
                self.segment_line = self.line;
            }
            let next = self.chars.get(self.i + 1).copied();
            match c {
                '\n' | ';' => {
                    self.end_segment(Sep::Other);
                    if c == '\n' {
                        self.line += 1;
                    }
                    self.i += 1;
                }
                '#' if self.word.is_empty() => {
                    while self.chars.get(self.i).is_some_and(|&c| c != '\n') {
                        self.i += 1;
                    }
                }
                ' ' | '\t' | '\r' => {
                    self.flush_word();
                    self.i += 1;
                }
                '\\' => self.escape(next),
                '\'' => self.single_quoted(),
                // Double quotes are dropped: what is inside is read like the rest, so a
                // `$(pgrep x)` in quotes is still seen.
                '"' => self.i += 1,
                '>' | '<' => self.redirection(),
                '&' if next == Some('>') => self.redirect_both(),
                '|' | '&' => {
                    let double = next == Some(c);
                    let sep = if c == '|' && !double {
                        Sep::Pipe
                    } else {
                        Sep::Other
                    };
                    self.end_segment(sep);
                    self.i += if double { 2 } else { 1 };
                }
                '$' if next == Some('(') && self.chars.get(self.i + 2) == Some(&'(') => {
                    self.arithmetic()
                }
                '$' if next == Some('(') => {
                    self.open(true);
                    self.i += 2;
                }
                '`' if self.backtick_open => {
                    self.end_segment(Sep::Other);
                    self.close(true);
                    self.backtick_open = false;
                    self.i += 1;
                }
                '`' => {
                    self.open(true);
                    self.backtick_open = true;
                    self.i += 1;
                }
                '(' => {
                    // A subshell or a function definition's `()`: a separator.
                    self.end_segment(Sep::Other);
                    self.open(false);
                    self.i += 1;
                }
                ')' => {
                    self.end_segment(Sep::Other);
                    self.close(false);
                    self.i += 1;
                }
                c => {
                    self.word.push(c);
                    self.i += 1;
                }
            }
        }
        self.end_segment(Sep::Other);
    }

    fn flush_word(&mut self) {
        if !self.word.is_empty() {
            self.words.push(std::mem::take(&mut self.word));
        }
    }

    /// The current word ends, then the simple command; `Other` ends the pipeline too.
    fn end_segment(&mut self, sep: Sep) {
        self.flush_word();
        if !self.words.is_empty() {
            self.pipeline.push(Segment {
                words: std::mem::take(&mut self.words),
                line: self.segment_line,
            });
        }
        if sep == Sep::Other && !self.pipeline.is_empty() {
            self.pipelines.push(std::mem::take(&mut self.pipeline));
        }
    }

    /// A backslash: the next character is literal; before a newline it joins the lines.
    fn escape(&mut self, next: Option<char>) {
        match next {
            Some('\n') => self.line += 1,
            Some(c) => self.word.push(c),
            None => {}
        }
        self.i += 2;
    }

    /// `'...'`: literal, possibly over several lines.
    fn single_quoted(&mut self) {
        self.i += 1;
        while let Some(&c) = self.chars.get(self.i).filter(|&&c| c != '\'') {
            if c == '\n' {
                self.line += 1;
            }
            self.word.push(c);
            self.i += 1;
        }
        self.i += 1;
    }

    /// A redirection: drop an fd number before it and the target after it.
    fn redirection(&mut self) {
        if self.word.chars().all(|c| c.is_ascii_digit()) {
            self.word.clear();
        } else {
            self.flush_word();
        }
        self.i += 1;
        self.skip_while(|c| matches!(c, '>' | '&' | '<'));
        self.skip_while(|c| matches!(c, ' ' | '\t'));
        self.skip_while(|c| !matches!(c, ' ' | '\t' | '\n' | ';' | '|' | '&' | ')' | '`'));
    }

    /// `&> FILE`.
    fn redirect_both(&mut self) {
        self.flush_word();
        self.i += 2;
        self.skip_while(|c| matches!(c, ' ' | '\t' | '>'));
        self.skip_while(|c| !matches!(c, ' ' | '\t' | '\n' | ';' | '|' | ')'));
    }

    fn skip_while(&mut self, keep: impl Fn(char) -> bool) {
        while self.chars.get(self.i).is_some_and(|&c| keep(c)) {
            self.i += 1;
        }
    }

    /// `$(( ... ))` arithmetic: plumbing, read as one word.
    fn arithmetic(&mut self) {
        let mut depth = 0usize;
        self.i += 1;
        while let Some(&c) = self.chars.get(self.i) {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        self.i += 1;
                        break;
                    }
                }
                '\n' => self.line += 1,
                _ => {}
            }
            self.i += 1;
        }
        self.word.push('0');
    }

    /// `$(`, a backtick or `(`: what is inside is its own pipeline; a substitution's outer
    /// command goes on after it.
    fn open(&mut self, substitution: bool) {
        let outer = if substitution {
            Nest {
                substitution,
                word: std::mem::take(&mut self.word),
                words: std::mem::take(&mut self.words),
                pipeline: std::mem::take(&mut self.pipeline),
                segment_line: self.segment_line,
            }
        } else {
            Nest {
                substitution,
                word: String::new(),
                words: Vec::new(),
                pipeline: Vec::new(),
                segment_line: self.segment_line,
            }
        };
        self.nest.push(outer);
    }

    /// The end of what [`Splitter::open`] opened: back to the outer command of a
    /// substitution (of whatever was open, at a closing backtick), with a placeholder where
    /// the substitution was.
    fn close(&mut self, backtick: bool) {
        if let Some(outer) = self.nest.pop() {
            if outer.substitution || backtick {
                self.words = outer.words;
                self.pipeline = outer.pipeline;
                self.segment_line = outer.segment_line;
                self.word = outer.word;
                self.word.push_str("$()");
            }
        }
    }
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

/// One simple command being classified: its name, arguments, line, and the pipeline it is
/// in (a `grep` after it gives the pattern searched for).
struct Command<'a> {
    name: String,
    args: Vec<String>,
    line: u32,
    pipeline: &'a [Segment],
    index: usize,
    vars: &'a HashMap<String, String>,
}

impl Command<'_> {
    fn plain(&self) -> Vec<&str> {
        non_options(&self.args)
    }

    fn probe(&self, probe: Probe, analysis: &mut Analysis) {
        analysis.probes.push((probe, self.line));
    }

    fn unknown(&self, analysis: &mut Analysis) {
        analysis.unknown.push((self.name.clone(), self.line));
    }
}

fn classify_pipeline(
    pipeline: &[Segment],
    vars: &HashMap<String, String>,
    funcs: &[String],
    analysis: &mut Analysis,
) {
    for (index, segment) in pipeline.iter().enumerate() {
        let Some((name, args)) = command(segment, vars) else {
            continue;
        };
        let command = Command {
            name: basename(&name).to_string(),
            args,
            line: segment.line,
            pipeline,
            index,
            vars,
        };
        match command.name.as_str() {
            "pgrep" | "pidof" => pgrep(&command, analysis),
            "killall" | "pkill" => killall(&command, analysis),
            "systemctl" | "service" => systemctl(&command, analysis),
            "ps" => ps(&command, analysis),
            "netstat" | "ss" => netstat(&command, analysis),
            "lsof" => lsof(&command, analysis),
            "nc" | "ncat" => nc(&command, analysis),
            "curl" | "wget" => match command.args.iter().find_map(|x| parse_url(x)) {
                Some(probe) => command.probe(probe, analysis),
                None => command.unknown(analysis),
            },
            c if HARMLESS.contains(&c) || funcs.iter().any(|f| f == c) => {}
            c if assignment(c).is_some() => {}
            _ => command.unknown(analysis),
        }
    }
}

/// `pgrep [-x] NAME`, `pidof NAME`.
fn pgrep(command: &Command<'_>, analysis: &mut Analysis) {
    // pgrep's options with analysis value: -u -U -g -G -P -s -t --ns -o
    let mut skip_next = false;
    let mut target = None;
    for arg in &command.args {
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
        Some(t) => command.probe(Probe::Process(t), analysis),
        None => command.unknown(analysis),
    }
}

/// `killall -0 NAME` checks; `killall keepalived` / `pkill keepalived` stops keepalived.
fn killall(command: &Command<'_>, analysis: &mut Analysis) {
    let target = command.plain().last().map(|s| s.to_string());
    match (command.args.iter().any(|x| x == "-0"), target) {
        (true, Some(t)) if command.name == "killall" => command.probe(Probe::Process(t), analysis),
        (false, Some(t)) if t == "keepalived" => analysis.stops_keepalived = Some(command.line),
        _ => command.unknown(analysis),
    }
}

/// `systemctl is-active|status UNIT` checks, `systemctl stop keepalived` stops keepalived,
/// `systemctl start|restart UNIT` restarts; `service UNIT ACTION` the same.
fn systemctl(command: &Command<'_>, analysis: &mut Analysis) {
    let plain = command.plain();
    let (action, unit) = if command.name == "systemctl" {
        (plain.first().copied(), plain.get(1).copied())
    } else {
        (plain.get(1).copied(), plain.first().copied())
    };
    let unit = unit.map(|u| u.trim_end_matches(".service").to_string());
    match (action, unit) {
        (Some("is-active" | "status"), Some(u)) => command.probe(Probe::Process(u), analysis),
        (Some("stop" | "kill"), Some(u)) if u == "keepalived" || u.ends_with("-keepalived") => {
            analysis.stops_keepalived = Some(command.line)
        }
        (Some("start" | "restart" | "reload" | "try-restart"), Some(u)) => {
            analysis.restarts.push((u, command.line))
        }
        _ => command.unknown(analysis),
    }
}

/// `ps -C NAME`, or `ps ... | grep NAME`.
fn ps(command: &Command<'_>, analysis: &mut Analysis) {
    if let Some(i) = command.args.iter().position(|x| x == "-C") {
        match command.args.get(i + 1) {
            Some(n) => command.probe(Probe::Process(n.clone()), analysis),
            None => command.unknown(analysis),
        }
    } else if let Some(p) = grep_pattern(command.pipeline, command.index, command.vars) {
        command.probe(Probe::Process(p), analysis);
    }
}

/// `netstat ... | grep PORT`, `ss ... sport = :PORT`.
fn netstat(command: &Command<'_>, analysis: &mut Analysis) {
    let port = grep_pattern(command.pipeline, command.index, command.vars)
        .and_then(|p| port_in(&p))
        .or_else(|| {
            command
                .args
                .iter()
                .position(|x| x == "sport")
                .and_then(|i| command.args.get(i + 2))
                .and_then(|p| port_in(p))
        });
    match port {
        Some(p) => command.probe(Probe::Listen(p), analysis),
        None => command.unknown(analysis),
    }
}

/// `lsof -i :PORT`.
fn lsof(command: &Command<'_>, analysis: &mut Analysis) {
    let port = command
        .args
        .iter()
        .filter(|x| x.starts_with("-i") || x.starts_with(':'))
        .find_map(|x| x.rsplit_once(':').and_then(|(_, p)| p.parse::<u16>().ok()));
    match port {
        Some(p) => command.probe(Probe::Listen(p), analysis),
        None => command.unknown(analysis),
    }
}

/// `nc -z localhost PORT`.
fn nc(command: &Command<'_>, analysis: &mut Analysis) {
    let plain = command.plain();
    let local = plain
        .first()
        .is_some_and(|h| matches!(*h, "localhost" | "127.0.0.1" | "::1" | "0.0.0.0"));
    let port = plain.get(1).and_then(|p| p.parse::<u16>().ok());
    let zero_io = command
        .args
        .iter()
        .any(|x| x.starts_with("-z") || x == "-zv");
    match (zero_io, local, port) {
        (true, true, Some(p)) => command.probe(Probe::Listen(p), analysis),
        _ => command.unknown(analysis),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RKE2: &str = include_str!("../../tests/import/seeds/rke2-check_apiserver.sh");

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
