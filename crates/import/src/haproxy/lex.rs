//! One line of haproxy.cfg into words, as HAProxy's `parse_line` splits it: words are
//! separated by spaces or tabs, `#` starts a comment, a backslash escapes the next character
//! (`\r`, `\n`, `\t`, `\xHH` are control characters), `"..."` groups with escapes and
//! `'...'` groups literally; quoted and unquoted parts next to each other make one word.

pub use crate::syntax::LexError;

/// A word of a line: its text (quotes and escapes resolved), 1-based column, and whether any
/// part of it was quoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lexeme {
    /// The text.
    pub text: String,
    /// Where it starts (1-based, in characters).
    pub column: u32,
    /// Whether any part was quoted.
    pub quoted: bool,
}

/// Split one line into words.
pub fn tokenize(line: &str) -> Result<Vec<Lexeme>, LexError> {
    let chars: Vec<char> = line.chars().collect();
    let mut words = Vec::new();
    let mut i = 0;
    loop {
        while i < chars.len() && is_blank(chars[i]) {
            i += 1;
        }
        if i >= chars.len() || chars[i] == '#' {
            return Ok(words);
        }
        let start = i;
        let mut word = Lexeme {
            text: String::new(),
            column: column(start),
            quoted: false,
        };
        let comment = read_word(&chars, &mut i, &mut word)?;
        words.push(word);
        if comment {
            return Ok(words);
        }
    }
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

fn column(index: usize) -> u32 {
    u32::try_from(index + 1).unwrap_or(u32::MAX)
}

/// Read one word from `chars[*i]` into `word`; true when a `#` ended it (the rest of the
/// line is a comment).
fn read_word(chars: &[char], i: &mut usize, word: &mut Lexeme) -> Result<bool, LexError> {
    while *i < chars.len() && !is_blank(chars[*i]) {
        match chars[*i] {
            '#' => return Ok(true),
            '\\' => *i = escape(chars, *i + 1, &mut word.text),
            '"' => {
                word.quoted = true;
                *i = double_quoted(chars, *i, &mut word.text)?;
            }
            '\'' => {
                word.quoted = true;
                *i = single_quoted(chars, *i, &mut word.text)?;
            }
            c => {
                word.text.push(c);
                *i += 1;
            }
        }
    }
    Ok(false)
}

/// `"..."` opening at `chars[open]`, escapes resolved; the index after the closing quote.
fn double_quoted(chars: &[char], open: usize, text: &mut String) -> Result<usize, LexError> {
    let mut i = open + 1;
    loop {
        match chars.get(i) {
            None => {
                return Err(LexError {
                    column: column(open),
                    message: "unterminated double quote",
                })
            }
            Some('"') => return Ok(i + 1),
            Some('\\') => i = escape(chars, i + 1, text),
            Some(&c) => {
                text.push(c);
                i += 1;
            }
        }
    }
}

/// `'...'` opening at `chars[open]`, taken literally; the index after the closing quote.
fn single_quoted(chars: &[char], open: usize, text: &mut String) -> Result<usize, LexError> {
    let mut i = open + 1;
    loop {
        match chars.get(i) {
            None => {
                return Err(LexError {
                    column: column(open),
                    message: "unterminated single quote",
                })
            }
            Some('\'') => return Ok(i + 1),
            Some(&c) => {
                text.push(c);
                i += 1;
            }
        }
    }
}

/// The escape after a backslash at `chars[i]`; returns the index after it.
fn escape(chars: &[char], i: usize, text: &mut String) -> usize {
    let Some(&c) = chars.get(i) else {
        text.push('\\');
        return i;
    };
    match c {
        'r' => text.push('\r'),
        'n' => text.push('\n'),
        't' => text.push('\t'),
        'x' => {
            let hex: String = chars.iter().skip(i + 1).take(2).collect();
            if hex.len() == 2 {
                if let Ok(b) = u8::from_str_radix(&hex, 16) {
                    text.push(char::from(b));
                    return i + 3;
                }
            }
            text.push_str("\\x");
        }
        c => text.push(c),
    }
    i + 1
}
