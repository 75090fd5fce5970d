//! keepalived tokens into the block tree: a keyword takes the words after it on its logical
//! line as arguments, and a `{` on that line (or alone on the next) opens its block.

use std::path::Path;
use std::sync::Arc;

use havip_config::place::Place;

use super::lex::{Lexer, LineToken, Token};
pub use crate::syntax::Tree;
use crate::syntax::{Directive, Word};
use crate::{display, read_input, Report};

/// Blocks nested deeper than this are refused.
const MAX_DEPTH: usize = 32;

/// Read a keepalived config and its includes. None when the main file cannot be read.
pub fn load(path: &Path, report: &mut Report) -> Option<Tree> {
    let text = read_input(path, "keepalived", report)?;
    let mut lexer = Lexer::new(Some(path), report);
    lexer.lex_text(path, &display(path), &text);
    let tokens = std::mem::take(&mut lexer.tokens);
    let files = std::mem::take(&mut lexer.files);
    let directives = parse_tokens(&tokens, report);
    Some(Tree { directives, files })
}

/// Parse config text without a file (its include lines are not read): for tests and fuzzing.
pub fn parse_text(file: &Arc<str>, text: &str, report: &mut Report) -> Tree {
    let mut lexer = Lexer::new(None, report);
    lexer.lex_text(Path::new(""), file, text);
    let tokens = std::mem::take(&mut lexer.tokens);
    Tree {
        directives: parse_tokens(&tokens, report),
        files: vec![file.clone()],
    }
}

/// Build the block tree from tokens; problems are reported, parsing goes on.
pub fn parse_tokens(tokens: &[LineToken], report: &mut Report) -> Vec<Directive> {
    let mut parser = Parser {
        tokens,
        next: 0,
        report,
    };
    let mut out = Vec::new();
    loop {
        out.extend(parser.block(0));
        let Some((stray, _)) = parser.tokens.get(parser.next) else {
            break;
        };
        // A `}` at the top level.
        parser
            .report
            .error(&stray.place().with_key("}"), "no block to close");
        parser.next += 1;
    }
    out
}

struct Parser<'a, 'r> {
    tokens: &'a [LineToken],
    next: usize,
    report: &'r mut Report,
}

impl Parser<'_, '_> {
    /// Keywords up to a `}` (consumed, below the top level) or the end of the tokens.
    fn block(&mut self, depth: usize) -> Vec<Directive> {
        let mut out: Vec<Directive> = Vec::new();
        while let Some((token, logical)) = self.tokens.get(self.next) {
            match token {
                Token::Close(_) => {
                    if depth > 0 {
                        self.next += 1;
                    }
                    return out;
                }
                Token::Open(place) => {
                    // A block opened on the line after its keyword.
                    self.next += 1;
                    let children = self.open_block(depth, place);
                    match out.last_mut() {
                        Some(last) if last.block.is_none() => last.block = Some(children),
                        _ => self
                            .report
                            .error(&place.with_key("{"), "a block without a keyword"),
                    }
                }
                Token::Word(name) => {
                    self.next += 1;
                    out.push(self.keyword(name, *logical, depth));
                }
            }
        }
        out
    }

    /// A keyword, its arguments on its logical line, and its block if `{` follows there.
    fn keyword(&mut self, name: &Word, logical: u64, depth: usize) -> Directive {
        let mut directive = Directive {
            name: name.clone(),
            args: Vec::new(),
            block: None,
        };
        while let Some((Token::Word(word), line)) = self.tokens.get(self.next) {
            if *line != logical {
                break;
            }
            directive.args.push(word.clone());
            self.next += 1;
        }
        if let Some((Token::Open(place), line)) = self.tokens.get(self.next) {
            if *line == logical {
                self.next += 1;
                directive.block = Some(self.open_block(depth, place));
            }
        }
        directive
    }

    /// The block after a `{` at `open`.
    fn open_block(&mut self, depth: usize, open: &Place) -> Vec<Directive> {
        if depth + 1 > MAX_DEPTH {
            self.report
                .error(&open.with_key("{"), "blocks nested too deeply");
            self.skip_block();
            return Vec::new();
        }
        let before = self.next;
        let children = self.block(depth + 1);
        // `block` returns at a `}` (consumed) or at the end of input.
        let closed = self.next > before
            && matches!(self.tokens.get(self.next - 1), Some((Token::Close(_), _)));
        if !closed {
            self.report.error(&open.with_key("{"), "not closed by }");
        }
        children
    }

    /// Past the `}` that closes the block just opened.
    fn skip_block(&mut self) {
        let mut level = 1usize;
        while let Some((token, _)) = self.tokens.get(self.next) {
            self.next += 1;
            match token {
                Token::Open(_) => level += 1,
                Token::Close(_) => {
                    level -= 1;
                    if level == 0 {
                        break;
                    }
                }
                Token::Word(_) => {}
            }
        }
    }
}
