//! Values of keepalived keywords: numbers, times in seconds, and script command lines.

use std::time::Duration;

use crate::syntax::{Directive, Word};
use crate::text::{parse_seconds, split_command};
use crate::Report;

/// Argument `i` as a number; a missing or bad one is reported.
pub fn number<T: std::str::FromStr>(
    directive: &Directive,
    i: usize,
    report: &mut Report,
) -> Option<T> {
    let Some(text) = directive.arg(i) else {
        report.error(&directive.place(), "missing value");
        return None;
    };
    match text.parse::<T>() {
        Ok(v) => Some(v),
        Err(_) => {
            report.error(
                &directive.arg_place(i),
                format!("{text:?} is not a valid number here"),
            );
            None
        }
    }
}

/// Argument `i` as seconds (`1`, `0.1`); a missing or bad one is reported.
pub fn seconds(directive: &Directive, i: usize, report: &mut Report) -> Option<Duration> {
    let Some(text) = directive.arg(i) else {
        report.error(&directive.place(), "missing value");
        return None;
    };
    match parse_seconds(text) {
        Some(d) => Some(d),
        None => {
            report.error(
                &directive.arg_place(i),
                format!("{text:?} is not a time in seconds"),
            );
            None
        }
    }
}

/// The argv of a script value: quoted words split like keepalived splits them.
pub fn script_argv(words: &[Word], report: &mut Report) -> Option<Vec<String>> {
    let mut argv = Vec::new();
    for word in words {
        if word.quoted {
            match split_command(&word.text) {
                Some(parts) => argv.extend(parts),
                None => {
                    report.error(
                        &word.place_as("script"),
                        "unterminated quote inside the command",
                    );
                    return None;
                }
            }
        } else {
            argv.push(word.text.clone());
        }
    }
    (!argv.is_empty()).then_some(argv)
}
