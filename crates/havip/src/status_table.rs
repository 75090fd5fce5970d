//! The text of `havip status`: `/api/status` as aligned tables an operator reads at a
//! glance (services and backends; VRRP instances and their trackers), like HAProxy's
//! `show stat` made readable. `--json` prints the answer itself instead, for scripts.

use std::fmt::Write as _;

use serde_json::Value;

/// The whole text for one `/api/status` answer.
pub fn render(status: &Value) -> String {
    let mut out = String::new();
    let about = &status["havip"];
    let _ = writeln!(
        out,
        "havip {} (pid {}), up {}, config loaded {}{}",
        about["version"].as_str().unwrap_or("?"),
        about["pid"],
        uptime(about["uptime_seconds"].as_f64().unwrap_or(0.0)),
        utc(about["config_loaded_unix_ms"].as_u64().unwrap_or(0)),
        if status["draining"].as_bool() == Some(true) {
            ", SHUTTING DOWN"
        } else {
            ""
        }
    );
    out.push('\n');
    out.push_str(&backends_table(status));
    if let Some(instances) = status["vrrp"].as_array() {
        out.push('\n');
        out.push_str(&vrrp_table(instances));
    }
    out
}

fn backends_table(status: &Value) -> String {
    let mut rows = vec![[
        "SERVICE/BACKEND",
        "ADDRESS",
        "ADMIN",
        "HEALTH",
        "LAST CHECK",
        "ACTIVE",
        "TOTAL",
        "ERRORS",
        "WEIGHT",
    ]
    .map(String::from)
    .to_vec()];
    for service in status["services"].as_array().into_iter().flatten() {
        let service_name = service["name"].as_str().unwrap_or("?");
        for backend in service["backends"].as_array().into_iter().flatten() {
            let check = &backend["last_check"];
            let last_check = match check["result"].as_str() {
                Some("none") | None => "-".to_string(),
                Some(result) => format!(
                    "{result} {:.1}ms",
                    check["duration_ms"].as_f64().unwrap_or(0.0)
                ),
            };
            let weight = match (
                backend["weight"].as_u64(),
                backend["configured_weight"].as_u64(),
            ) {
                (Some(now), Some(configured)) if now != configured => {
                    format!("{now} (config {configured})")
                }
                (Some(now), _) => now.to_string(),
                _ => "?".into(),
            };
            let name = format!("{service_name}/{}", backend["name"].as_str().unwrap_or("?"));
            let backup = if backend["backup"].as_bool() == Some(true) {
                " backup"
            } else {
                ""
            };
            // A backend in maintenance is not checked: its last health would mislead.
            let health = if backend["admin_state"] == "maint" {
                "maint".to_string()
            } else {
                text(&backend["health"])
            };
            rows.push(vec![
                name + backup,
                text(&backend["address"]),
                text(&backend["admin_state"]),
                health,
                last_check,
                backend["active"].to_string(),
                backend["total"].to_string(),
                backend["connect_errors"].to_string(),
                weight,
            ]);
        }
    }
    align(&rows)
}

fn vrrp_table(instances: &[Value]) -> String {
    let mut rows = vec![[
        "VRRP",
        "STATE",
        "PRIORITY",
        "EFFECTIVE",
        "MASTER",
        "VIPS",
        "TRACKERS",
    ]
    .map(String::from)
    .to_vec()];
    for instance in instances {
        let mut state = text(&instance["state"]);
        if instance["stepped_down"].as_bool() == Some(true) {
            state.push_str(" (stepped down)");
        }
        let vips: Vec<String> = instance["virtual_addresses"]
            .as_array()
            .into_iter()
            .flatten()
            .map(text)
            .collect();
        let trackers: Vec<String> = instance["trackers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|tracker| {
                format!(
                    "{}={} ({:+})",
                    text(&tracker["name"]),
                    text(&tracker["state"]),
                    tracker["weight"].as_i64().unwrap_or(0)
                )
            })
            .collect();
        rows.push(vec![
            text(&instance["name"]),
            state,
            instance["configured_priority"].to_string(),
            instance["priority"].to_string(),
            instance["master"].as_str().unwrap_or("-").to_string(),
            vips.join(","),
            if trackers.is_empty() {
                "-".into()
            } else {
                trackers.join(" ")
            },
        ]);
    }
    align(&rows)
}

fn text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// Columns padded to their widest cell, two spaces apart; the last column is not padded.
fn align(rows: &[Vec<String>]) -> String {
    let columns = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == columns {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<width$}  ", width = widths[c]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn uptime(seconds: f64) -> String {
    let total = seconds as u64;
    let (days, hours, minutes) = (total / 86_400, total / 3600 % 24, total / 60 % 60);
    match (days, hours, minutes) {
        (0, 0, 0) => format!("{total}s"),
        (0, 0, m) => format!("{m}m {}s", total % 60),
        (0, h, m) => format!("{h}h {m}m"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

/// `2026-12-02 14:05:09 UTC` for Unix milliseconds (the civil calendar from days since
/// 1970-01-01, Howard Hinnant's `civil_from_days`).
fn utc(unix_ms: u64) -> String {
    let seconds = unix_ms / 1000;
    let days = (seconds / 86_400) as i64;
    let of_day = seconds % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dates_and_uptimes_read_plainly() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_796_220_309_000), "2026-12-02 14:05:09 UTC");
        assert_eq!(uptime(42.0), "42s");
        assert_eq!(uptime(3725.0), "1h 2m");
        assert_eq!(uptime(90_000.0), "1d 1h");
    }

    #[test]
    fn backends_and_instances_line_up() {
        let status = json!({
            "havip": {"version": "0.1.0", "pid": 7, "uptime_seconds": 61.0, "config_loaded_unix_ms": 0},
            "services": [{"name": "api", "backends": [
                {"name": "m1", "address": "10.0.0.1:6443", "admin_state": "ready", "health": "up",
                 "last_check": {"result": "passed", "duration_ms": 1.25}, "active": 3, "total": 9,
                 "connect_errors": 0, "weight": 100, "configured_weight": 100, "backup": false},
                {"name": "master2", "address": "10.0.0.2:6443", "admin_state": "drain", "health": "up",
                 "last_check": {"result": "none", "duration_ms": 0.0}, "active": 0, "total": 1,
                 "connect_errors": 2, "weight": 50, "configured_weight": 100, "backup": false},
                {"name": "m3", "address": "10.0.0.3:6443", "admin_state": "maint", "health": "down",
                 "last_check": {"result": "failed", "duration_ms": 3.5}, "active": 0, "total": 0,
                 "connect_errors": 0, "weight": 100, "configured_weight": 100, "backup": true}]}],
            "vrrp": [{"name": "VI_1", "state": "MASTER", "configured_priority": 100, "priority": 90,
                      "master": "10.0.0.1", "virtual_addresses": ["10.0.0.100/24"],
                      "trackers": [{"name": "apiserver", "state": "failing", "weight": -10}]}],
        });
        let text = render(&status);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "havip 0.1.0 (pid 7), up 1m 1s, config loaded 1970-01-01 00:00:00 UTC"
        );
        assert_eq!(
            lines[2],
            "SERVICE/BACKEND  ADDRESS        ADMIN  HEALTH  LAST CHECK    ACTIVE  TOTAL  ERRORS  WEIGHT"
        );
        assert_eq!(
            lines[3],
            "api/m1           10.0.0.1:6443  ready  up      passed 1.2ms  3       9      0       100"
        );
        assert_eq!(
            lines[4],
            "api/master2      10.0.0.2:6443  drain  up      -             0       1      2       50 (config 100)"
        );
        assert_eq!(
            lines[5],
            "api/m3 backup    10.0.0.3:6443  maint  maint   failed 3.5ms  0       0      0       100"
        );
        assert!(lines[8].starts_with("VI_1  MASTER  100       90         10.0.0.1  10.0.0.100/24  apiserver=failing (-10)"), "{text}");
    }
}
