//! Small text helpers shared by the importers: the time formats of each source, addresses
//! as havip writes them, names, "did you mean", and splitting a command line into argv.

use std::net::IpAddr;
use std::time::Duration;

/// A number followed by an optional unit, in `default_unit` when there is none. Units:
/// `us`, `ms`, `s`, `m`, `h`, `d` (and `w`, `M`, `y` for nginx). Several parts may follow
/// each other when `compound` ("1h30m" in nginx). Returns None when it is not a time.
pub fn parse_time(text: &str, default_unit: &str, compound: bool) -> Option<Duration> {
    let s = text.trim();
    if s.is_empty() {
        return None;
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    let mut parts = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 12 {
            return None;
        }
        let (number, after) = rest.split_at(digits);
        let value: u64 = number.parse().ok()?;
        let unit_len = after.bytes().take_while(u8::is_ascii_alphabetic).count();
        let (unit, after) = after.split_at(unit_len);
        let unit = if unit.is_empty() { default_unit } else { unit };
        let part = match unit {
            "us" => Duration::from_micros(value),
            "ms" => Duration::from_millis(value),
            "s" => Duration::from_secs(value),
            "m" => Duration::from_secs(value.checked_mul(60)?),
            "h" => Duration::from_secs(value.checked_mul(3600)?),
            "d" => Duration::from_secs(value.checked_mul(86_400)?),
            "w" => Duration::from_secs(value.checked_mul(7 * 86_400)?),
            "M" => Duration::from_secs(value.checked_mul(30 * 86_400)?),
            "y" => Duration::from_secs(value.checked_mul(365 * 86_400)?),
            _ => return None,
        };
        total = total.checked_add(part)?;
        parts += 1;
        rest = after;
        if !compound && !rest.is_empty() {
            return None;
        }
    }
    (parts > 0).then_some(total)
}

/// Seconds with an optional fraction, as keepalived writes timers ("1", "0.1", "2.5"), to
/// microsecond resolution. None for anything else (negative, garbage, absurdly large).
pub fn parse_seconds(text: &str) -> Option<Duration> {
    let s = text.trim();
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, f),
        None => (s, ""),
    };
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if int.len() > 9 {
        return None;
    }
    let secs: u64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut micros: u32 = 0;
    for (i, b) in frac.bytes().take(6).enumerate() {
        micros += u32::from(b - b'0') * 10u32.pow(5 - i as u32);
    }
    Some(Duration::from_secs(secs) + Duration::from_micros(u64::from(micros)))
}

/// Split a command line into argv the way keepalived splits a script: unquoted whitespace
/// separates words, single or double quotes group (and are removed), a backslash escapes
/// the next character. No expansions. None when a quote is not closed.
pub fn split_command(text: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' | '"' => {
                in_word = true;
                let quote = c;
                let mut closed = false;
                for q in chars.by_ref() {
                    if q == quote {
                        closed = true;
                        break;
                    }
                    word.push(q);
                }
                if !closed {
                    return None;
                }
            }
            '\\' => {
                in_word = true;
                if let Some(n) = chars.next() {
                    word.push(n);
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        out.push(word);
    }
    Some(out)
}

/// `ip:port`, with brackets around an IPv6 address.
pub fn socket_address(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(ip) => format!("{ip}:{port}"),
        IpAddr::V6(ip) => format!("[{ip}]:{port}"),
    }
}

/// A host (an IP address, `[v6]`, or the wildcard `*`, empty or `0.0.0.0`) and a port as a
/// havip listen address: `*:PORT` for every address, else `IP:PORT`.
pub fn listen_address(host: &str, port: u16) -> Result<String, &'static str> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || host == "*" || host == "0.0.0.0" {
        return Ok(format!("*:{port}"));
    }
    backend_address(host, port)
}

/// An IP address (`[v6]` too) and a port as a havip backend address.
pub fn backend_address(host: &str, port: u16) -> Result<String, &'static str> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match host.parse::<IpAddr>() {
        Ok(ip) => Ok(socket_address(ip, port)),
        Err(_) => Err("host names are not resolved; use an IP address"),
    }
}

/// Make a name fit havip's rule for names (letters, digits, `-`, `_`, `.`).
pub fn sanitize_name(name: &str) -> String {
    let s = name_chars(name);
    if s.is_empty() {
        "unnamed".to_string()
    } else {
        s
    }
}

/// `name` with every character havip does not allow in names replaced by `-`.
pub fn name_chars(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// `; did you mean "x"?` for the candidate closest to `name` (a likely typo), else nothing.
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    // Up to a third of the name may differ (a swap of two letters is one difference):
    // `chk_haproy` finds `chk_haproxy`, `bsae` finds `base`, `web` does not find `api`.
    let limit = (name.chars().count() / 3).max(1);
    let best = candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(name, c), c))
        .filter(|&(d, _)| d <= limit)
        .min_by_key(|&(d, _)| d);
    match best {
        Some((_, c)) => format!("; did you mean {c:?}?"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_of_each_source() {
        // HAProxy: milliseconds by default.
        assert_eq!(
            parse_time("5000", "ms", false),
            Some(Duration::from_secs(5))
        );
        assert_eq!(parse_time("1m", "ms", false), Some(Duration::from_secs(60)));
        assert_eq!(parse_time("1m30s", "ms", false), None);
        // nginx: seconds by default, compound allowed.
        assert_eq!(parse_time("30", "s", true), Some(Duration::from_secs(30)));
        assert_eq!(
            parse_time("1h30m", "s", true),
            Some(Duration::from_secs(5400))
        );
        assert_eq!(
            parse_time("500ms", "s", true),
            Some(Duration::from_millis(500))
        );
        assert_eq!(parse_time("", "s", true), None);
        assert_eq!(parse_time("abc", "s", true), None);
        assert_eq!(parse_time("5x", "s", true), None);
        assert_eq!(parse_time("99999999999999999999", "s", true), None);
        // keepalived: decimal seconds.
        assert_eq!(parse_seconds("1"), Some(Duration::from_secs(1)));
        assert_eq!(parse_seconds("0.1"), Some(Duration::from_millis(100)));
        assert_eq!(
            parse_seconds("2.71828"),
            Some(Duration::from_micros(2_718_280))
        );
        assert_eq!(parse_seconds("0.000001"), Some(Duration::from_micros(1)));
        assert_eq!(parse_seconds("-1"), None);
        assert_eq!(parse_seconds("."), None);
        assert_eq!(parse_seconds("1e3"), None);
    }

    #[test]
    fn commands_split_like_keepalived() {
        assert_eq!(
            split_command("/bin/bash -c 'if [[ $(netstat -nlp | grep 9443) ]]; then exit 0; fi'")
                .unwrap(),
            vec![
                "/bin/bash",
                "-c",
                "if [[ $(netstat -nlp | grep 9443) ]]; then exit 0; fi"
            ]
        );
        assert_eq!(split_command("killall -0 haproxy").unwrap().len(), 3);
        assert_eq!(split_command("a\\ b c").unwrap(), vec!["a b", "c"]);
        assert!(split_command("a 'b").is_none());
        assert_eq!(split_command("  ").unwrap(), Vec::<String>::new());
    }

    #[test]
    fn addresses_as_havip_writes_them() {
        assert_eq!(listen_address("", 80).unwrap(), "*:80");
        assert_eq!(listen_address("0.0.0.0", 80).unwrap(), "*:80");
        assert_eq!(listen_address("[::1]", 80).unwrap(), "[::1]:80");
        assert_eq!(backend_address("10.0.0.1", 1).unwrap(), "10.0.0.1:1");
        assert!(backend_address("db.example", 1).is_err());
        assert_eq!(sanitize_name("a b/c"), "a-b-c");
        assert_eq!(sanitize_name(""), "unnamed");
    }

    #[test]
    fn suggestions_only_for_near_names() {
        assert_eq!(
            did_you_mean("chk_haproy", ["chk_nginx", "chk_haproxy"]),
            "; did you mean \"chk_haproxy\"?"
        );
        assert_eq!(did_you_mean("web", ["api"]), "");
        assert_eq!(did_you_mean("x", Vec::<&str>::new()), "");
    }
}
