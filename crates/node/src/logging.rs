//! Log output: human-readable lines or JSON objects, one per event, on stderr.
//!
//! Connection close lines use the target `havip::conn`; `log.connections = false` filters
//! them out. `HAVIP_LOG` in the environment overrides the configured filter.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use havip_config::{LogFormat, LogSettings};

/// Installs the process's log subscriber from `[log]`; a second call changes nothing.
pub fn init(settings: &LogSettings) {
    let mut filter = std::env::var("HAVIP_LOG")
        .ok()
        .and_then(|directives| EnvFilter::try_new(directives).ok())
        .unwrap_or_else(|| EnvFilter::new(&settings.level));
    if !settings.connections {
        if let Ok(directive) = "havip::conn=off".parse() {
            filter = filter.add_directive(directive);
        }
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    // A second init (tests, demo after run) keeps the first subscriber.
    let _ = match settings.format {
        LogFormat::Text => builder.with_target(false).try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
