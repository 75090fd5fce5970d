//! nginx tokens into the block tree (`name args... ;` or `name args... { ... }`), and the
//! `include` directives replaced by the directives of the files they name (wildcards
//! expanded, relative paths from the main file's directory, as nginx resolves them from its
//! configuration directory).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use havip_config::place::Place;

use super::lex::{lex, SyntaxError, Token};
use crate::syntax::{Directive, Tree, Word};
use crate::{display, glob, Report};

/// Blocks nested deeper than this are refused.
const MAX_DEPTH: usize = 64;
/// Includes nested deeper than this are refused.
const MAX_INCLUDE_DEPTH: usize = 16;

/// Parse nginx text into directives (no include expansion).
pub fn parse(file: &Arc<str>, text: &str) -> Result<Vec<Directive>, SyntaxError> {
    let tokens = lex(file, text)?;
    let last_line = text.rsplit('\n').next().unwrap_or("");
    let end = Place::new(
        file,
        u32::try_from(text.matches('\n').count() + 1).unwrap_or(u32::MAX),
        u32::try_from(last_line.chars().count() + 1).unwrap_or(u32::MAX),
        "",
    );
    let mut parser = Parser {
        tokens: &tokens,
        next: 0,
        end,
    };
    parser.block(0)
}

/// The tokens, the next one to read, and where the text ends (for errors at the end).
struct Parser<'a> {
    tokens: &'a [(Token, Place)],
    next: usize,
    end: Place,
}

impl Parser<'_> {
    /// The directives up to the `}` closing a block at `depth` (or the end of the text, at
    /// depth 0).
    fn block(&mut self, depth: usize) -> Result<Vec<Directive>, SyntaxError> {
        if depth > MAX_DEPTH {
            let place = self.tokens.get(self.next).map_or(&self.end, |t| &t.1);
            return Err(SyntaxError::new(place, "blocks nested too deeply"));
        }
        let mut out = Vec::new();
        loop {
            let Some((token, place)) = self.tokens.get(self.next) else {
                if depth > 0 {
                    return Err(SyntaxError::new(
                        &self.end,
                        "unexpected end of file, expecting \"}\"",
                    ));
                }
                return Ok(out);
            };
            match token {
                Token::Close => {
                    self.next += 1;
                    if depth == 0 {
                        return Err(SyntaxError::new(place, "unexpected \"}\""));
                    }
                    return Ok(out);
                }
                Token::Semi => return Err(SyntaxError::new(place, "unexpected \";\"")),
                Token::Open => return Err(SyntaxError::new(place, "unexpected \"{\"")),
                Token::Word(name) => {
                    self.next += 1;
                    out.push(self.directive(name.clone(), depth)?);
                }
            }
        }
    }

    /// The rest of a directive after its name: arguments up to `;`, or a block.
    fn directive(&mut self, name: Word, depth: usize) -> Result<Directive, SyntaxError> {
        let mut directive = Directive {
            name,
            args: Vec::new(),
            block: None,
        };
        loop {
            match self.tokens.get(self.next) {
                None => {
                    return Err(SyntaxError::new(
                        &self.end,
                        format!(
                            "unexpected end of file, expecting \";\" or \"}}\" after {:?}",
                            directive.name()
                        ),
                    ))
                }
                Some((Token::Word(word), _)) => {
                    directive.args.push(word.clone());
                    self.next += 1;
                }
                Some((Token::Semi, _)) => {
                    self.next += 1;
                    return Ok(directive);
                }
                Some((Token::Open, _)) => {
                    self.next += 1;
                    directive.block = Some(self.block(depth + 1)?);
                    return Ok(directive);
                }
                Some((Token::Close, place)) => {
                    return Err(SyntaxError::new(
                        place,
                        format!("unexpected \"}}\" after {:?}", directive.name()),
                    ))
                }
            }
        }
    }
}

/// Parse a file and everything it includes. Problems are reported; what parsed is returned.
pub fn parse_file(path: &Path, text: &str, report: &mut Report) -> Tree {
    let file = display(path);
    let mut tree = Tree {
        directives: Vec::new(),
        files: vec![file.clone()],
    };
    match parse(&file, text) {
        Ok(list) => {
            let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
            let mut includes = Includes {
                base: path.parent().map(Path::to_path_buf).unwrap_or_default(),
                stack: vec![key],
                files: &mut tree.files,
                report,
            };
            tree.directives = includes.expand(list, 0);
        }
        Err(e) => report.error(&e.place, e.message),
    }
    tree
}

/// Reading included files: the main file's directory, the files being read (a file that
/// includes itself is refused), and every file read.
struct Includes<'r> {
    base: PathBuf,
    stack: Vec<PathBuf>,
    files: &'r mut Vec<Arc<str>>,
    report: &'r mut Report,
}

impl Includes<'_> {
    /// `list` with each `include` replaced by the directives of its files, in blocks too.
    fn expand(&mut self, list: Vec<Directive>, depth: usize) -> Vec<Directive> {
        let mut out = Vec::new();
        for mut directive in list {
            if directive.name() == "include" && directive.block.is_none() {
                out.extend(self.include(&directive, depth));
                continue;
            }
            if let Some(children) = directive.block.take() {
                directive.block = Some(self.expand(children, depth));
            }
            out.push(directive);
        }
        out
    }

    /// The directives of the files one `include` names.
    fn include(&mut self, include: &Directive, depth: usize) -> Vec<Directive> {
        let place = include.place();
        let Some(pattern) = include.arg(0) else {
            self.report.error(&place, "missing the file name");
            return Vec::new();
        };
        if depth >= MAX_INCLUDE_DEPTH {
            self.report.error(&place, "includes nested too deeply");
            return Vec::new();
        }
        let relative = Path::new(pattern);
        let full = if relative.is_absolute() {
            relative.to_path_buf()
        } else {
            self.base.join(relative)
        };
        // nginx: a pattern may match nothing; a plain name must exist.
        let files = if glob::is_pattern(pattern) {
            glob::expand(&full)
        } else {
            vec![full]
        };
        let mut out = Vec::new();
        for file in files {
            out.extend(self.file(&file, &place, depth));
        }
        out
    }

    /// The directives of one included file.
    fn file(&mut self, file: &Path, place: &Place, depth: usize) -> Vec<Directive> {
        let key = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
        if self.stack.contains(&key) {
            self.report
                .error(place, format!("{} includes itself", file.display()));
            return Vec::new();
        }
        let text = match std::fs::read(file) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) => {
                self.report.error(place, format!("{}: {e}", file.display()));
                return Vec::new();
            }
        };
        let shown = display(file);
        if !self.files.contains(&shown) {
            self.files.push(shown.clone());
        }
        match parse(&shown, &text) {
            Ok(inner) => {
                self.stack.push(key);
                let expanded = self.expand(inner, depth + 1);
                self.stack.pop();
                expanded
            }
            Err(e) => {
                self.report.error(&e.place, e.message);
                Vec::new()
            }
        }
    }
}
