//! Prometheus text exposition (format 0.0.4) of the node: the proxy's services and backends
//! ([`proxy`]), the VRRP instances ([`vrrp`]) and the standard `process_*` metrics ([`process`]), read straight from the atomic counters and
//! status snapshots the running parts keep: rendering takes no lock the data path uses.

pub mod process;
pub mod proxy;
pub mod vrrp;

use std::fmt::Write;
use std::sync::Arc;

use havip_proxy::service::Service;

use crate::run::{ConfigSource, ReloadStats};
use crate::vrrp::status::VrrpView;
use std::sync::atomic::Ordering::Relaxed;

/// The whole `/metrics` page; `start_unix_seconds` is when havip started
/// (`process_start_time_seconds`).
pub fn render(
    services: &[Arc<Service>],
    vrrp: Option<&VrrpView>,
    uptime_seconds: f64,
    start_unix_seconds: f64,
) -> String {
    let mut out = String::with_capacity(4096);
    Family::new(&mut out, "havip_build_info", "gauge", "havip version.").sample(
        "havip_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1,
    );
    Family::new(
        &mut out,
        "havip_uptime_seconds",
        "gauge",
        "Seconds since havip started.",
    )
    .sample("havip_uptime_seconds", &[], format!("{uptime_seconds:.3}"));
    process::render(
        &mut out,
        &process::ProcessSample::read(),
        start_unix_seconds,
    );
    proxy::render(&mut out, services);
    if let Some(view) = vrrp {
        vrrp::render(&mut out, view);
    }
    out
}

/// The config and reload families, appended to `out`.
pub fn render_config(out: &mut String, config: &ConfigSource, reloads: &ReloadStats) {
    let name = "havip_config_reloads_total";
    let mut family = Family::new(
        out,
        name,
        "counter",
        "Config reloads (SIGHUP, havip reload), by result.",
    );
    for (result, count) in [
        ("applied", &reloads.applied),
        ("rejected", &reloads.rejected),
        ("failed", &reloads.failed),
    ] {
        family.sample(name, &[("result", result)], count.load(Relaxed));
    }
    let name = "havip_config_last_reload_successful";
    Family::new(
        out,
        name,
        "gauge",
        "1 if the last reload was applied (or none was tried), else 0.",
    )
    .sample(name, &[], reloads.last_successful.load(Relaxed));
    let name = "havip_config_last_reload_success_timestamp_seconds";
    let last = reloads.last_success_unix_ms.load(Relaxed) as f64 / 1000.0;
    Family::new(
        out,
        name,
        "gauge",
        "When the last reload was applied (Unix time; 0: never).",
    )
    .sample(name, &[], format!("{last:.3}"));
    let name = "havip_config_loaded_timestamp_seconds";
    Family::new(
        out,
        name,
        "gauge",
        "When the running config was loaded (Unix time).",
    )
    .sample(name, &[], format!("{:.3}", config.loaded_at_unix));
    let name = "havip_config_info";
    Family::new(
        out,
        name,
        "gauge",
        "The running config's SHA-256, as a label.",
    )
    .sample(name, &[("checksum", &config.checksum)], 1);
}

/// One metric family being written: its header once, then samples.
pub struct Family<'a> {
    out: &'a mut String,
}

impl<'a> Family<'a> {
    /// Writes the `# HELP` and `# TYPE` lines of family `name`.
    pub fn new(out: &'a mut String, name: &str, kind: &str, help: &str) -> Self {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        Family { out }
    }

    /// One sample with its labels.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (position, (label, text)) in labels.iter().enumerate() {
                if position > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{label}=\"{}\"", escape_label(text));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }
}

/// Label values escape backslash, double quote and newline.
fn escape_label(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
