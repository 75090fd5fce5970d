//! What the lexers and parsers produce, shared by the formats: words that remember where
//! they were written, and the block tree of keepalived.conf and nginx
//! (`name args... { children }`) with the files it was read from.

use std::sync::Arc;

use havip_config::place::Place;

/// One word of the source, after quotes and escapes are resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    /// The text.
    pub text: String,
    /// Where it starts; the key is empty (the word is not yet known as a directive).
    pub place: Place,
    /// Whether any part of it was quoted.
    pub quoted: bool,
}

impl Word {
    /// A word starting at `line`:`column` of `file`.
    pub fn new(text: String, file: &Arc<str>, line: u32, column: u32, quoted: bool) -> Word {
        Word {
            text,
            place: Place::new(file, line, column, ""),
            quoted,
        }
    }

    /// Its place, under `key`.
    pub fn place_as(&self, key: impl Into<String>) -> Place {
        self.place.with_key(key)
    }
}

/// A line a lexer cannot split: an unterminated quote.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct LexError {
    /// The column of the opening quote (1-based).
    pub column: u32,
    /// What is wrong.
    pub message: &'static str,
}

/// `name args...` with an optional `{ block }`: a keepalived keyword or an nginx directive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// The keyword.
    pub name: Word,
    /// The words after it on its line (keepalived) or up to its `;` or `{` (nginx).
    pub args: Vec<Word>,
    /// The directives inside its braces, if it has a block.
    pub block: Option<Vec<Directive>>,
}

impl Directive {
    /// The keyword's text.
    pub fn name(&self) -> &str {
        &self.name.text
    }

    /// The text of argument `i`.
    pub fn arg(&self, i: usize) -> Option<&str> {
        self.args.get(i).map(|w| w.text.as_str())
    }

    /// Where the keyword is, under its own name.
    pub fn place(&self) -> Place {
        self.name.place_as(self.name.text.clone())
    }

    /// Where the keyword is, under `key`.
    pub fn place_as(&self, key: impl Into<String>) -> Place {
        self.name.place_as(key)
    }

    /// Where argument `i` is (the keyword when it is missing), under the keyword's name.
    pub fn arg_place(&self, i: usize) -> Place {
        self.args
            .get(i)
            .unwrap_or(&self.name)
            .place_as(self.name.text.clone())
    }

    /// The directives of its block (none without a block).
    pub fn children(&self) -> &[Directive] {
        self.block.as_deref().unwrap_or(&[])
    }
}

/// A parsed block-structured config (keepalived, nginx) and every file it was read from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tree {
    /// The top-level directives.
    pub directives: Vec<Directive>,
    /// The main file and its includes, in the order first read.
    pub files: Vec<Arc<str>>,
}
