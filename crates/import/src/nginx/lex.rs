//! nginx's syntax into tokens: words (bare, or in single or double quotes, with backslash
//! escapes), `;`, `{` and `}`; `#` starts a comment to the end of the line.

use std::iter::Peekable;
use std::str::Chars;
use std::sync::Arc;

use havip_config::place::Place;

use crate::syntax::Word;

/// One token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    /// A word, quotes and escapes resolved.
    Word(Word),
    /// `;`: the end of a simple directive.
    Semi,
    /// `{`: a block opens.
    Open,
    /// `}`: a block closes.
    Close,
}

/// Text that is not nginx syntax, where and why (nginx's own wording where it has one).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SyntaxError {
    /// Where (the key is `(syntax)`).
    pub place: Place,
    /// What is wrong.
    pub message: String,
}

impl SyntaxError {
    /// `message` at `place`, under the key `(syntax)`.
    pub fn new(place: &Place, message: impl Into<String>) -> SyntaxError {
        SyntaxError {
            place: place.with_key("(syntax)"),
            message: message.into(),
        }
    }
}

/// The text being read, and the line and column of the next character.
struct Cursor<'a> {
    file: &'a Arc<str>,
    chars: Peekable<Chars<'a>>,
    line: u32,
    column: u32,
}

impl Cursor<'_> {
    fn peek(&mut self) -> Option<char> {
        self.chars.peek().copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.chars.next()?;
        if c == '\n' {
            self.line += 1;
            self.column = 1;
        } else {
            self.column += 1;
        }
        Some(c)
    }

    fn place(&self) -> Place {
        Place::new(self.file, self.line, self.column, "")
    }
}

/// Tokens of nginx syntax, each with where it starts.
pub fn lex(file: &Arc<str>, text: &str) -> Result<Vec<(Token, Place)>, SyntaxError> {
    let mut cursor = Cursor {
        file,
        chars: text.chars().peekable(),
        line: 1,
        column: 1,
    };
    let mut out = Vec::new();
    while let Some(c) = cursor.peek() {
        let here = cursor.place();
        let token = match c {
            c if c.is_whitespace() => {
                cursor.next();
                continue;
            }
            '#' => {
                while cursor.peek().is_some_and(|c| c != '\n') {
                    cursor.next();
                }
                continue;
            }
            ';' | '{' | '}' => {
                cursor.next();
                match c {
                    ';' => Token::Semi,
                    '{' => Token::Open,
                    _ => Token::Close,
                }
            }
            '"' | '\'' => {
                let text = quoted(&mut cursor, &here)?;
                Token::Word(word(text, &here, true))
            }
            _ => Token::Word(word(bare(&mut cursor), &here, false)),
        };
        out.push((token, here));
    }
    Ok(out)
}

fn word(text: String, place: &Place, quoted: bool) -> Word {
    Word {
        text,
        place: place.clone(),
        quoted,
    }
}

/// A quoted word, the cursor on its opening quote.
fn quoted(cursor: &mut Cursor<'_>, open: &Place) -> Result<String, SyntaxError> {
    let quote = cursor.next();
    let mut word = String::new();
    while let Some(c) = cursor.next() {
        if Some(c) == quote {
            return Ok(word);
        }
        if c == '\\' {
            if let Some(escaped) = cursor.next() {
                match escaped {
                    '"' | '\'' | '\\' => word.push(escaped),
                    'n' => word.push('\n'),
                    't' => word.push('\t'),
                    'r' => word.push('\r'),
                    other => {
                        word.push('\\');
                        word.push(other);
                    }
                }
            }
            continue;
        }
        word.push(c);
    }
    Err(SyntaxError::new(open, "unterminated quoted string"))
}

/// A bare word: up to whitespace, `;`, a brace or a quote; a backslash keeps the next
/// character.
fn bare(cursor: &mut Cursor<'_>) -> String {
    let mut word = String::new();
    while let Some(c) = cursor.peek() {
        if c.is_whitespace() || matches!(c, ';' | '{' | '}' | '"' | '\'') {
            break;
        }
        cursor.next();
        if c == '\\' {
            if let Some(escaped) = cursor.next() {
                word.push(escaped);
            }
            continue;
        }
        word.push(c);
    }
    word
}
