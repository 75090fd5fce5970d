//! The standard `process_*` metrics every Prometheus client library exports (the names and
//! meanings of the Go and Rust clients' process collectors), so dashboards and alerts made
//! for any exporter work on havip: CPU seconds, resident and virtual memory, open and
//! maximum file descriptors, threads and the start time.
//!
//! Read from `/proc/self` at every scrape (a few small files, no lock shared with the data
//! path); a file that cannot be read leaves its metric out rather than reporting 0.

use std::fmt::Write as _;

use super::Family;

/// What `/proc/self` says about the process now.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcessSample {
    /// User plus system CPU time, in seconds.
    pub cpu_seconds: Option<f64>,
    /// Resident set size, bytes (`VmRSS`).
    pub resident_bytes: Option<u64>,
    /// Virtual memory size, bytes (`VmSize`).
    pub virtual_bytes: Option<u64>,
    /// Threads (`Threads`).
    pub threads: Option<u64>,
    /// File descriptors open now.
    pub open_fds: Option<u64>,
    /// The soft limit on open file descriptors (`RLIMIT_NOFILE`).
    pub max_fds: Option<u64>,
}

impl ProcessSample {
    /// Read the running process.
    pub fn read() -> ProcessSample {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
        let ticks = rustix::param::clock_ticks_per_second();
        ProcessSample {
            cpu_seconds: cpu_seconds(&stat, ticks),
            resident_bytes: status_number(&status, "VmRSS").map(|kib| kib * 1024),
            virtual_bytes: status_number(&status, "VmSize").map(|kib| kib * 1024),
            threads: status_number(&status, "Threads"),
            open_fds: std::fs::read_dir("/proc/self/fd")
                .ok()
                .map(|entries| entries.count() as u64),
            max_fds: max_open_files(&limits),
        }
    }
}

/// utime + stime (fields 14 and 15 of `/proc/self/stat`, proc(5)) in seconds. The command
/// name (field 2) may hold spaces and parentheses, so fields are counted after its last `)`.
fn cpu_seconds(stat: &str, ticks_per_second: u64) -> Option<f64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace();
    // After the name: state is field 3, so utime (14) is the 12th from here.
    let user: u64 = fields.nth(11)?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    if ticks_per_second == 0 {
        return None;
    }
    Some((user + system) as f64 / ticks_per_second as f64)
}

/// The number of a `Key:   123 kB` (or `Key: 123`) line of `/proc/self/status`.
fn status_number(status: &str, key: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let (name, rest) = line.split_once(':')?;
        (name == key).then(|| rest.split_whitespace().next()?.parse().ok())?
    })
}

/// The soft limit of `Max open files` in `/proc/self/limits`.
fn max_open_files(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Write the `process_*` families: `sample` read now, `start_unix_seconds` when havip
/// started.
pub fn render(out: &mut String, sample: &ProcessSample, start_unix_seconds: f64) {
    let gauges: [(&str, &str, &str, Option<String>); 6] = [
        (
            "process_cpu_seconds_total",
            "counter",
            "Total user and system CPU time spent in seconds.",
            sample.cpu_seconds.map(|s| format!("{s:.2}")),
        ),
        (
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            sample.resident_bytes.map(|b| b.to_string()),
        ),
        (
            "process_virtual_memory_bytes",
            "gauge",
            "Virtual memory size in bytes.",
            sample.virtual_bytes.map(|b| b.to_string()),
        ),
        (
            "process_open_fds",
            "gauge",
            "Number of open file descriptors.",
            sample.open_fds.map(|n| n.to_string()),
        ),
        (
            "process_max_fds",
            "gauge",
            "Maximum number of open file descriptors.",
            sample.max_fds.map(|n| n.to_string()),
        ),
        (
            "process_threads",
            "gauge",
            "Number of OS threads in the process.",
            sample.threads.map(|n| n.to_string()),
        ),
    ];
    for (name, kind, help, value) in gauges {
        if let Some(value) = value {
            Family::new(out, name, kind, help).sample(name, &[], value);
        }
    }
    let name = "process_start_time_seconds";
    let mut start = String::new();
    let _ = write!(start, "{start_unix_seconds:.3}");
    Family::new(
        out,
        name,
        "gauge",
        "Start time of the process since unix epoch in seconds.",
    )
    .sample(name, &[], start);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_files_are_read_as_proc5_describes_them() {
        // A command name with a space and a parenthesis, as a thread may be named.
        let stat =
            "4242 (havip (x) y) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 150 0 0 20 0 4 0 100 0 0";
        assert_eq!(cpu_seconds(stat, 100), Some(4.0));
        assert_eq!(cpu_seconds("garbage", 100), None);
        let status = "Name:\thavip\nVmSize:\t  123456 kB\nVmRSS:\t    2048 kB\nThreads:\t4\n";
        assert_eq!(status_number(status, "VmRSS"), Some(2048));
        assert_eq!(status_number(status, "VmSize"), Some(123_456));
        assert_eq!(status_number(status, "Threads"), Some(4));
        assert_eq!(status_number(status, "VmSwap"), None);
        let limits = "Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 524288               files\n";
        assert_eq!(max_open_files(limits), Some(1024));
    }

    #[test]
    fn this_process_reads_and_renders() {
        let sample = ProcessSample::read();
        assert!(sample.resident_bytes.unwrap_or(0) > 0, "{sample:?}");
        assert!(sample.open_fds.unwrap_or(0) >= 3, "{sample:?}");
        assert!(sample.cpu_seconds.is_some(), "{sample:?}");
        let mut out = String::new();
        render(&mut out, &sample, 1_700_000_000.5);
        assert!(out.contains("\nprocess_start_time_seconds 1700000000.500\n"));
        assert!(out.contains("# TYPE process_cpu_seconds_total counter\n"));
    }
}
