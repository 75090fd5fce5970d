//! keepalived.conf: [`lex`] reads a config and its includes ([`include`](mod@include)) into
//! tokens, [`parse`] builds the block tree, and [`map`](fn@map) turns `global_defs`,
//! `vrrp_script`, track files and processes, and `vrrp_instance` into havip's `[[vrrp]]`
//! and `[[tracker]]` tables. [`shell`] reads what a track script checks, so that a script
//! that only asks "is the local proxy alive" becomes a built-in tracker.

pub mod include;
pub mod lex;
mod map;
pub mod parse;
pub mod shell;

pub use map::{check_set, map, Context, VrrpPart};
pub use parse::{load, parse_text, Tree};

#[cfg(test)]
mod tests;
