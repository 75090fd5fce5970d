//! nginx configs: [`lex`] splits nginx's syntax into words, `;` and braces,
//! [`parse`](mod@parse) builds the block tree and reads `include`s (with wildcards), and
//! [`map`](fn@map) turns the `stream` module (upstream and server blocks) into havip services.
//!
//! The input may be a whole nginx.conf (with `stream { ... }`, and an `http` block that is
//! skipped) or a file meant to be included inside `stream { }` (top-level `upstream` and
//! `server` blocks), as the seed guides write it.

pub mod lex;
mod map;
pub mod parse;

pub use crate::syntax::Tree;
pub use lex::SyntaxError;
pub use map::map;
pub use parse::{parse, parse_file};

#[cfg(test)]
mod tests;
