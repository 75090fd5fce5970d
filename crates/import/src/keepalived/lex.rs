//! keepalived.conf into tokens, as keepalived reads it (keepalived.conf(5)): words are
//! separated by whitespace; `{` and `}` are words of their own; `#` and `!` start a comment
//! anywhere outside quotes; `"` and `'` quote (adjacent parts join into one word) and allow
//! backslash escapes; a line ending in a backslash continues on the next.
//!
//! Reading a file also does what keepalived does before parsing: `$NAME=value` defines a
//! parameter that later `$NAME` and `${NAME}` are replaced by, a line starting with `@id`
//! applies to one node only (not imported: which node is not known here), and an `include`
//! line is replaced by the tokens of the files it names ([`super::include`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use havip_config::place::Place;

use super::include::{self, IncludeLine};
use crate::syntax::{LexError, Word};
use crate::{display, Report};

/// One token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    /// A word.
    Word(Word),
    /// `{`.
    Open(Place),
    /// `}`.
    Close(Place),
}

impl Token {
    /// Where it is.
    pub fn place(&self) -> &Place {
        match self {
            Token::Word(w) => &w.place,
            Token::Open(p) | Token::Close(p) => p,
        }
    }
}

/// A token and the logical line it is on (continued lines share one): a keyword's arguments
/// are the words on its logical line.
pub type LineToken = (Token, u64);

/// One lexeme of a line: a word (and whether any part of it was quoted) or a brace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lexeme {
    /// A word and whether any part of it was quoted.
    Word(String, bool),
    /// `{`.
    Open,
    /// `}`.
    Close,
}

/// Lex one line: words with columns, or braces.
pub fn lex_line(text: &str) -> Result<Vec<(Lexeme, u32)>, LexError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c == '#' || c == '!' {
            break;
        }
        if c == '{' || c == '}' {
            let brace = if c == '{' {
                Lexeme::Open
            } else {
                Lexeme::Close
            };
            out.push((brace, column(i)));
            i += 1;
            continue;
        }
        let start = i;
        let mut word = String::new();
        let mut quoted = false;
        let comment = loop {
            let Some(&c) = chars.get(i) else {
                break false;
            };
            if c.is_whitespace() || c == '{' || c == '}' {
                break false;
            }
            if c == '#' || c == '!' {
                break true;
            }
            if c == '"' || c == '\'' {
                quoted = true;
                i = quoted_part(&chars, i, &mut word)?;
            } else {
                word.push(c);
                i += 1;
            }
        };
        out.push((Lexeme::Word(word, quoted), column(start)));
        if comment {
            break;
        }
    }
    Ok(out)
}

fn column(index: usize) -> u32 {
    u32::try_from(index + 1).unwrap_or(u32::MAX)
}

/// A quoted part opening at `chars[open]`, escapes resolved, into `word`; the index after
/// its closing quote.
fn quoted_part(chars: &[char], open: usize, word: &mut String) -> Result<usize, LexError> {
    let quote = chars[open];
    let mut i = open + 1;
    while let Some(&c) = chars.get(i) {
        if c == quote {
            return Ok(i + 1);
        }
        if c == '\\' && i + 1 < chars.len() {
            word.push(match chars[i + 1] {
                'n' => '\n',
                't' => '\t',
                'r' => '\r',
                'a' => '\u{7}',
                'b' => '\u{8}',
                'f' => '\u{c}',
                'v' => '\u{b}',
                'E' => '\u{1b}',
                other => other,
            });
            i += 2;
            continue;
        }
        word.push(c);
        i += 1;
    }
    Err(LexError {
        column: column(open),
        message: "unterminated quoted string",
    })
}

/// Includes nested deeper than this are refused.
const MAX_INCLUDE_DEPTH: usize = 16;

/// Reading a config and its includes into tokens.
pub struct Lexer<'r> {
    report: &'r mut Report,
    /// The tokens so far.
    pub tokens: Vec<LineToken>,
    /// Every file read, in the order first read.
    pub files: Vec<Arc<str>>,
    logical: u64,
    parameters: HashMap<String, String>,
    /// The files being read (a file that includes itself is refused).
    stack: Vec<PathBuf>,
    /// Whether include lines are read: not for text without a file, which has no directory
    /// for them to be relative to.
    includes: bool,
}

impl<'r> Lexer<'r> {
    /// A lexer reading `main` first; None for text without a file, whose include lines are
    /// not read.
    pub fn new(main: Option<&Path>, report: &'r mut Report) -> Lexer<'r> {
        let stack = main
            .map(|path| std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()))
            .into_iter()
            .collect();
        Lexer {
            report,
            tokens: Vec::new(),
            files: Vec::new(),
            logical: 0,
            parameters: HashMap::new(),
            includes: main.is_some(),
            stack,
        }
    }

    /// Lex `text` (of `path`, shown as `file`), expanding includes.
    pub fn lex_text(&mut self, path: &Path, file: &Arc<str>, text: &str) {
        if !self.files.contains(file) {
            self.files.push(file.clone());
        }
        let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut continued = false;
        for (index, raw) in text.lines().enumerate() {
            let number = u32::try_from(index + 1).unwrap_or(u32::MAX);
            if !continued {
                self.logical += 1;
            }
            let mut line = raw.to_string();
            continued = false;
            let trimmed = line.trim_end();
            if let Some(joined) = trimmed.strip_suffix('\\') {
                line = joined.to_string();
                continued = true;
            }
            self.line(&base_dir, file, number, &line);
        }
    }

    /// One physical line (its continuation backslash removed).
    fn line(&mut self, base_dir: &Path, file: &Arc<str>, number: u32, line: &str) {
        let trimmed = line.trim_start();
        if self.definition(trimmed) {
            return;
        }
        if trimmed.starts_with('@') {
            let column = u32::try_from(line.len() - trimmed.len() + 1).unwrap_or(u32::MAX);
            let key = trimmed.split_whitespace().next().unwrap_or("@");
            self.report.skip(
                &Place::new(file, number, column, key),
                "conditional line for a config id: which node it applies to is not known here; not imported",
            );
            return;
        }
        let line = self.substitute(line);
        if let Some(include) = include::include_line(&line) {
            self.include(
                base_dir,
                &Place::new(file, number, include.column, ""),
                &include,
            );
            return;
        }
        let words = match lex_line(&line) {
            Ok(words) => words,
            Err(e) => {
                self.report
                    .error(&Place::new(file, number, e.column, "(syntax)"), e.message);
                return;
            }
        };
        for (lexeme, column) in words {
            let place = Place::new(file, number, column, "");
            let token = match lexeme {
                Lexeme::Word(text, quoted) => Token::Word(Word {
                    text,
                    place,
                    quoted,
                }),
                Lexeme::Open => Token::Open(place),
                Lexeme::Close => Token::Close(place),
            };
            self.tokens.push((token, self.logical));
        }
    }

    /// `$NAME=value` defines a parameter; true when the line is a definition.
    fn definition(&mut self, trimmed: &str) -> bool {
        let Some((name, value)) = trimmed.strip_prefix('$').and_then(|d| d.split_once('=')) else {
            return false;
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return false;
        }
        self.parameters
            .insert(name.to_string(), value.trim().to_string());
        true
    }

    /// Replace `$NAME` and `${NAME}` of defined parameters.
    fn substitute(&self, line: &str) -> String {
        if self.parameters.is_empty() || !line.contains('$') {
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
                let closed = !braced || chars.get(j) == Some(&'}');
                if let Some(value) = self.parameters.get(&name).filter(|_| closed) {
                    out.push_str(value);
                    i = if braced { j + 1 } else { j };
                    continue;
                }
            }
            out.push(chars[i]);
            i += 1;
        }
        out
    }

    /// The tokens of the files an include line names, read relative to the directory of the
    /// including file (keepalived changes into it).
    fn include(&mut self, base_dir: &Path, at: &Place, include: &IncludeLine) {
        if include.pattern.is_empty() {
            self.report.error(
                &at.with_key(include.keyword.clone()),
                "missing the file name",
            );
            return;
        }
        let place = at.with_key("include");
        if !self.includes {
            self.report.skip(
                &place,
                "not read: text without a file has no directory for includes to be relative to",
            );
            return;
        }
        if self.stack.len() > MAX_INCLUDE_DEPTH {
            self.report.error(&place, "includes nested too deeply");
            return;
        }
        for file in include::files(base_dir, include, &place, self.report) {
            let key = std::fs::canonicalize(&file).unwrap_or_else(|_| file.clone());
            if self.stack.contains(&key) {
                self.report
                    .error(&place, format!("{} includes itself", file.display()));
                continue;
            }
            match std::fs::read(&file) {
                Ok(bytes) => {
                    let text = String::from_utf8_lossy(&bytes).into_owned();
                    self.stack.push(key);
                    self.lex_text(&file, &display(&file), &text);
                    self.stack.pop();
                }
                Err(e) => include::problem(
                    include.checks.read,
                    &place,
                    format!("{}: {e}", file.display()),
                    self.report,
                ),
            }
        }
    }
}
