//! Durations as people write them in config files: "500ms", "10s", "1m30s", "1h".

use std::time::Duration;

/// Parse a duration: one or more `<integer><unit>` parts, units `ms`, `s`, `m`, `h`, `d`
/// (`us` too, for tests and tight checks). "0" alone means zero. Errors say what was wrong.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("empty duration; write a number with a unit, like \"5s\"".into());
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!(
                "{text:?} is not a duration; write a number with a unit, like \"5s\""
            ));
        }
        let (number, after) = rest.split_at(digits);
        let value: u64 = number
            .parse()
            .map_err(|_| format!("{text:?}: {number} is too large"))?;
        if after.starts_with(char::is_whitespace) {
            return Err(format!(
                "{text:?}: write the unit right after the number, like \"{number}s\""
            ));
        }
        if after.starts_with('.') {
            return Err(format!(
                "{text:?}: fractions are not supported; use a smaller unit, like \"1500ms\""
            ));
        }
        let unit_len = after.bytes().take_while(u8::is_ascii_alphabetic).count();
        let (unit, after) = after.split_at(unit_len);
        let part = match unit {
            "us" => Duration::from_micros(value),
            "ms" => Duration::from_millis(value),
            "s" => Duration::from_secs(value),
            "m" => Duration::from_secs(value.saturating_mul(60)),
            "h" => Duration::from_secs(value.saturating_mul(3600)),
            "d" => Duration::from_secs(value.saturating_mul(86_400)),
            "" => {
                return Err(format!(
                    "{text:?} has no unit; write \"{number}s\" or \"{number}ms\" (units: ms, s, m, h, d)"
                ))
            }
            other => {
                return Err(format!(
                    "{text:?}: unknown unit {other:?} (units: ms, s, m, h, d)"
                ))
            }
        };
        total = total.saturating_add(part);
        rest = after;
    }
    Ok(total)
}

/// A duration as havip writes it: the largest unit that states it exactly
/// ("2s", "1m", "1500ms", "250us"), "0s" for zero.
pub fn fmt_duration(d: Duration) -> String {
    if d.is_zero() {
        return "0s".to_string();
    }
    let nanos = d.subsec_nanos();
    if nanos % 1_000_000 != 0 {
        return format!("{}us", d.as_micros());
    }
    if nanos != 0 {
        return format!("{}ms", d.as_millis());
    }
    let s = d.as_secs();
    if s % 86_400 == 0 {
        format!("{}d", s / 86_400)
    } else if s % 3600 == 0 {
        format!("{}h", s / 3600)
    } else if s % 60 == 0 {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_use_the_largest_exact_unit() {
        assert_eq!(fmt_duration(Duration::ZERO), "0s");
        assert_eq!(fmt_duration(Duration::from_secs(2)), "2s");
        assert_eq!(fmt_duration(Duration::from_secs(60)), "1m");
        assert_eq!(fmt_duration(Duration::from_secs(90)), "90s");
        assert_eq!(fmt_duration(Duration::from_secs(7200)), "2h");
        assert_eq!(fmt_duration(Duration::from_secs(86_400)), "1d");
        assert_eq!(fmt_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(fmt_duration(Duration::from_micros(1)), "1us");
    }

    #[test]
    fn parses_units_and_compounds() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        assert_eq!(parse_duration(" 0 "), Ok(Duration::ZERO));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
    }

    #[test]
    fn rejects_with_a_reason() {
        assert!(parse_duration("10").unwrap_err().contains("has no unit"));
        assert!(parse_duration("5 sec")
            .unwrap_err()
            .contains("right after the number"));
        assert!(parse_duration("5sec").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("s").unwrap_err().contains("not a duration"));
        assert!(parse_duration("").unwrap_err().contains("empty"));
        assert!(parse_duration("1.5s").unwrap_err().contains("fractions"));
    }
}
