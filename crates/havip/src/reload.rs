//! `havip reload`: ask the running node to re-read its config file, and print what changed or
//! every problem that kept it from changing anything. `havip upgrade`: ask it to start its
//! binary anew and hand over (see `havip_node::upgrade`), and print the new process's PID.
//! The answers come from the node's admin endpoint (`POST /api/reload`, `POST /api/upgrade`,
//! which need `[admin] commands = true`); without one, send SIGHUP or SIGUSR2 (the outcome
//! then goes to the log).

use std::net::SocketAddr;
use std::path::Path;

use anyhow::{anyhow, bail, Context};
use serde_json::Value;

/// Where to ask and how.
#[derive(Debug, Clone)]
pub struct ReloadPlan {
    /// The admin endpoint; `None`: the `[admin] listen` of the config file.
    pub admin: Option<SocketAddr>,
    /// `user:password` for an admin endpoint with `auth`.
    pub auth: Option<String>,
}

/// The admin endpoint of the config at `path`, for a reload of the node running it. The file
/// is read leniently: a file with problems elsewhere still names its `[admin]` endpoint, and
/// the node is asked anyway so that it logs the problems and counts the refused reload.
fn admin_of(path: &Path) -> anyhow::Result<SocketAddr> {
    let reading = havip_config::read_file(path).map_err(|e| anyhow!("{e}"))?;
    let unreadable = || {
        let problems: Vec<String> = reading.problems.iter().map(|p| p.to_string()).collect();
        anyhow!(
            "{}\n{}: the admin endpoint cannot be read from this file; give it with --admin",
            problems.join("\n"),
            path.display()
        )
    };
    match &reading.config.admin {
        Some(admin) if admin.commands => Ok(admin.listen),
        Some(_) if !reading.problems.is_empty() => Err(unreadable()),
        Some(_) => bail!(
            "{}: [admin] commands is off, so the node takes no command over its admin endpoint; \
             set commands = true, or send SIGHUP / SIGUSR2 (the outcome then goes to the log)",
            path.display()
        ),
        None if !reading.problems.is_empty() => Err(unreadable()),
        None => bail!(
            "{}: no [admin] endpoint to ask; add one with commands = true, or send SIGHUP / \
             SIGUSR2 (the outcome then goes to the log)",
            path.display()
        ),
    }
}

/// Run the reload; `Ok(true)` when the node applied the new config.
pub fn run(config: &Path, plan: &ReloadPlan) -> anyhow::Result<bool> {
    let (answer, unexpected) = ask(config, plan, "/api/reload")?;
    match answer["result"].as_str() {
        Some("applied") => {
            let changes = strings(&answer["changes"]);
            if changes.is_empty() {
                println!("reloaded: nothing changed");
            } else {
                println!("reloaded: {} change(s)", changes.len());
                for change in changes {
                    println!("  {change}");
                }
            }
            for setting in strings(&answer["needs_restart"]) {
                println!("  not applied until a restart or an upgrade: {setting}");
            }
            if let Some(checksum) = answer["checksum"].as_str() {
                println!("config sha256 {checksum}");
            }
            Ok(true)
        }
        Some("rejected") => {
            for problem in strings(&answer["problems"]) {
                eprintln!("{problem}");
            }
            eprintln!("havip reload: refused; the running config stays");
            Ok(false)
        }
        Some("failed") => {
            eprintln!(
                "havip reload: could not be applied, nothing changed: {}",
                answer["error"].as_str().unwrap_or("(no reason given)")
            );
            Ok(false)
        }
        _ => Err(unexpected),
    }
}

/// Run the upgrade; `Ok(true)` when the new process took over.
pub fn upgrade(config: &Path, plan: &ReloadPlan) -> anyhow::Result<bool> {
    let (answer, unexpected) = ask(config, plan, "/api/upgrade")?;
    match answer["result"].as_str() {
        Some("took_over") => {
            println!(
                "upgraded: the new process (PID {}) took over; the old one drains its open \
                 connections and exits",
                answer["pid"]
            );
            Ok(true)
        }
        Some("failed") => {
            eprintln!(
                "havip upgrade: failed, the running process serves on: {}",
                answer["error"].as_str().unwrap_or("(no reason given)")
            );
            Ok(false)
        }
        _ => Err(unexpected),
    }
}

/// POST `path` to the node's admin endpoint; its JSON answer, and the error to give when the
/// answer is none the caller knows.
fn ask(config: &Path, plan: &ReloadPlan, path: &str) -> anyhow::Result<(Value, anyhow::Error)> {
    let admin = match plan.admin {
        Some(admin) => admin,
        None => admin_of(config)?,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let (status, body) = runtime.block_on(crate::drill::http(
        admin,
        "POST",
        path,
        plan.auth.as_deref(),
    ))?;
    let unexpected = || anyhow!("{admin}: HTTP {status}: {}", body.trim());
    let answer: Value = serde_json::from_str(&body).map_err(|_| unexpected())?;
    Ok((answer, unexpected()))
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|item| item.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}
