//! haproxy.cfg: [`lex`] splits a line into words with HAProxy's quoting rules,
//! [`parse`](mod@parse) groups lines into sections, and [`map`](fn@map) turns frontends, backends and
//! listen sections into havip services.
//!
//! The mapping applies the `defaults` section in force (the last one before a proxy, or
//! `from NAME`), then the proxy's own lines, as HAProxy does.

pub mod lex;
mod map;
pub mod parse;

pub use map::map;
pub use parse::{parse, Cfg, Line, Section};

#[cfg(test)]
mod tests;
