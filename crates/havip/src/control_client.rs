//! `havip status` and `havip backend`: the runtime commands, sent to the running daemon over
//! its control socket (or, with `--admin`, its TCP admin endpoint), as HAProxy's `show stat`
//! and `set server ... state|weight` are sent to its stats socket.
//!
//! Where the daemon is: `--socket PATH`, else `--admin HOST:PORT` (with `--auth` and `--tls`),
//! else the `[control] socket` of the config file (`--config`), else
//! `/run/havip/havip.sock`. Exit status: 0 done, 1 refused (the daemon's reason is printed)
//! or a `--wait` that timed out, 2 no daemon reached.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use havip_node::control::client::{self, Answer, ClientTls, Target};
use serde_json::{json, Value};

/// Where to reach the daemon; shared by `status` and `backend`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ControlArgs {
    /// The daemon's control socket (default: `[control] socket` of the config, else
    /// /run/havip/havip.sock).
    #[arg(long, value_name = "PATH", conflicts_with = "admin")]
    pub socket: Option<PathBuf>,
    /// Use the admin endpoint at HOST:PORT instead (commands need `[admin] commands = true`).
    #[arg(long, value_name = "HOST:PORT")]
    pub admin: Option<String>,
    /// `user:password` for an admin endpoint with `auth`.
    #[arg(long, value_name = "USER:PASSWORD", requires = "admin")]
    pub auth: Option<String>,
    /// The admin endpoint speaks HTTPS (`[admin] tls_cert`).
    #[arg(long, requires = "admin")]
    pub tls: bool,
    /// CA certificates (PEM) to verify the admin endpoint with; default: the system's.
    #[arg(long, value_name = "FILE", requires = "tls")]
    pub ca: Option<PathBuf>,
}

/// What `havip backend` does.
#[derive(Debug, Clone)]
pub struct BackendArgs {
    /// `SERVICE/BACKEND`.
    pub target: String,
    /// `ready`, `drain`, `maint` or `weight`.
    pub action: String,
    /// The weight, for `weight`.
    pub value: Option<String>,
    /// Wait until the backend's last connection closed.
    pub wait: bool,
    /// Longest wait.
    pub timeout: Option<Duration>,
}

impl ControlArgs {
    fn target(&self, config: &std::path::Path) -> Target {
        if let Some(socket) = &self.socket {
            return Target::Socket(socket.clone());
        }
        if let Some(authority) = &self.admin {
            return Target::Admin {
                authority: authority.clone(),
                tls: self.tls.then(|| ClientTls {
                    ca_file: self.ca.clone(),
                }),
            };
        }
        Target::Socket(configured_socket(config))
    }
}

/// The config's `[control] socket` when the file reads, else the default path.
fn configured_socket(config: &std::path::Path) -> PathBuf {
    let from_config = std::fs::read_to_string(config)
        .ok()
        .and_then(|text| havip_config::read(config, &text).config.control.socket);
    from_config.unwrap_or_else(|| PathBuf::from(havip_config::DEFAULT_CONTROL_SOCKET))
}

fn runtime() -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => Some(runtime),
        Err(error) => {
            eprintln!("havip: cannot start the async runtime: {error}");
            None
        }
    }
}

/// Send one request and print why it failed, if it did: `Ok` holds the 2xx answer.
fn send(
    args: &ControlArgs,
    config: &std::path::Path,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Result<Answer, ExitCode> {
    let target = args.target(config);
    let Some(runtime) = runtime() else {
        return Err(ExitCode::from(2));
    };
    let method = if method == "POST" {
        client::Method::POST
    } else {
        client::Method::GET
    };
    let answer = runtime.block_on(client::request(
        &target,
        method,
        path,
        body.as_ref(),
        args.auth.as_deref(),
    ));
    match answer {
        Ok(answer) if (200..300).contains(&answer.status) => Ok(answer),
        Ok(answer) => {
            eprintln!(
                "havip: refused ({}): {}",
                answer.status,
                answer.error_text()
            );
            Err(ExitCode::FAILURE)
        }
        Err(error) => {
            eprintln!("havip: {error}");
            if matches!(target, Target::Socket(_)) {
                eprintln!("  is havip running? Give --socket PATH (or --admin HOST:PORT) if its control socket is elsewhere.");
            }
            Err(ExitCode::from(2))
        }
    }
}

/// `havip backend SERVICE/BACKEND ready|drain|maint|weight N [--wait] [--timeout D]`.
pub fn backend(args: &ControlArgs, config: &std::path::Path, command: &BackendArgs) -> ExitCode {
    let Some((service, name)) = command.target.split_once('/') else {
        eprintln!(
            "havip backend: expected SERVICE/BACKEND, got {:?}",
            command.target
        );
        return ExitCode::from(2);
    };
    let mut body = match (command.action.as_str(), &command.value) {
        ("ready" | "drain" | "maint", None) => json!({ "state": command.action }),
        // `50%`: of the configured weight, judged by the daemon that knows it.
        ("weight", Some(weight)) if weight.ends_with('%') => json!({ "weight": weight }),
        ("weight", Some(weight)) => match weight.parse::<u32>() {
            Ok(weight) => json!({ "weight": weight }),
            Err(_) => {
                eprintln!("havip backend: weight {weight:?} is not a number (0 to 10000) or a percentage (50%)");
                return ExitCode::from(2);
            }
        },
        ("weight", None) => {
            eprintln!(
                "havip backend: `weight` needs a value: havip backend {} weight 50",
                command.target
            );
            return ExitCode::from(2);
        }
        (action, _) => {
            eprintln!("havip backend: unknown command {action:?}; expected ready, drain, maint or weight N");
            return ExitCode::from(2);
        }
    };
    if command.wait {
        body["wait"] = true.into();
        if let Some(timeout) = command.timeout {
            body["timeout_ms"] = (timeout.as_millis() as u64).into();
        }
    }
    let path = client::backend_path(service, name);
    let answer = match send(args, config, "POST", &path, Some(body)) {
        Ok(answer) => answer.body,
        Err(code) => return code,
    };
    println!("{}", describe_change(&answer));
    match answer.get("wait") {
        Some(wait) => {
            println!("{}", describe_wait(wait));
            if wait["drained"].as_bool() == Some(true) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        None => ExitCode::SUCCESS,
    }
}

/// `kube-apiserver/master2: drain (was ready), weight 100, 3 connections open`.
fn describe_change(answer: &Value) -> String {
    let text = |key: &str| answer[key].as_str().unwrap_or("?").to_string();
    let mut line = format!("{}/{}: {}", text("service"), text("backend"), text("state"));
    if answer["previous_state"] != answer["state"] {
        line.push_str(&format!(" (was {})", text("previous_state")));
    }
    line.push_str(&format!(", weight {}", answer["weight"]));
    if answer["previous_weight"] != answer["weight"] {
        line.push_str(&format!(" (was {})", answer["previous_weight"]));
    }
    let active = answer["active"].as_u64().unwrap_or(0);
    line.push_str(&format!(", {active} connection{} open", plural(active)));
    line
}

/// `drained: 3 connections were open, the last closed after 4.2 s`.
fn describe_wait(wait: &Value) -> String {
    let open = wait["open_at_start"].as_u64().unwrap_or(0);
    let waited = Duration::from_millis(wait["waited_ms"].as_u64().unwrap_or(0));
    if wait["drained"].as_bool() == Some(true) {
        match open {
            0 => format!("drained: no connection was open ({})", seconds(waited)),
            1 => format!(
                "drained: 1 connection was open, it closed after {}",
                seconds(waited)
            ),
            _ => format!(
                "drained: {open} connections were open, the last closed after {}",
                seconds(waited)
            ),
        }
    } else {
        let still = wait["still_open"].as_u64().unwrap_or(0);
        format!(
            "not drained: {still} of {open} connection{} still open after {}",
            plural(open),
            seconds(waited)
        )
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn seconds(duration: Duration) -> String {
    format!("{:.1} s", duration.as_secs_f64())
}

/// `havip status [--json]`.
pub fn status(args: &ControlArgs, config: &std::path::Path, as_json: bool) -> ExitCode {
    let answer = match send(args, config, "GET", "/api/status", None) {
        Ok(answer) => answer.body,
        Err(code) => return code,
    };
    if as_json {
        match serde_json::to_string_pretty(&answer) {
            Ok(text) => println!("{text}"),
            Err(error) => {
                eprintln!("havip status: {error}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        print!("{}", crate::status_table::render(&answer));
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_and_waits_read_as_sentences() {
        let answer = json!({"service": "api", "backend": "m2", "state": "drain",
            "previous_state": "ready", "weight": 100, "previous_weight": 100, "active": 1});
        assert_eq!(
            describe_change(&answer),
            "api/m2: drain (was ready), weight 100, 1 connection open"
        );
        let wait = json!({"open_at_start": 3, "still_open": 0, "waited_ms": 4200, "drained": true});
        assert_eq!(
            describe_wait(&wait),
            "drained: 3 connections were open, the last closed after 4.2 s"
        );
        let late =
            json!({"open_at_start": 3, "still_open": 2, "waited_ms": 30000, "drained": false});
        assert_eq!(
            describe_wait(&late),
            "not drained: 2 of 3 connections still open after 30.0 s"
        );
    }
}
