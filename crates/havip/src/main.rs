//! `havip`: a highly available virtual IP and layer-4 load balancer in one daemon.
//!
//! Commands: `run` (the default) serves the configured services; `check` validates a config
//! and prints every problem; `demo` runs three local backends with the balancer in front.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod admin;
mod config;
mod demo;
mod demo_cluster;
mod drill;
mod logging;
mod metrics;
mod run;
mod vrrp;

#[derive(Debug, Parser)]
#[command(
    name = "havip",
    version,
    about = "Highly available virtual IP and TCP load balancer"
)]
struct Cli {
    /// Configuration file.
    #[arg(long, short, global = true, default_value = config::DEFAULT_PATH)]
    config: PathBuf,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the services of the configuration file (the default command).
    Run,
    /// Validate the configuration file; print every problem with file, line and key.
    Check,
    /// Start three local backends and the balancer in front of them, on loopback, and show
    /// balancing and a backend failing and coming back. Needs no config and no root.
    Demo {
        /// Port the demo balancer listens on (127.0.0.1).
        #[arg(long, default_value_t = 18443)]
        port: u16,
        /// Port of the demo's admin endpoint (metrics, status).
        #[arg(long, default_value_t = 18404)]
        admin_port: u16,
        /// Stop after this many seconds (0: run until Ctrl-C).
        #[arg(long, default_value_t = 0)]
        seconds: u64,
        /// Instead: build the seed-000 three-master cluster in network namespaces (root),
        /// show the VIP, run a failover drill and a crash, print the timings, clean up.
        #[arg(long)]
        cluster: bool,
    },
    /// One demo backend (used by `demo --cluster` inside its namespaces).
    #[command(hide = true)]
    DemoBackend {
        #[arg(long)]
        name: String,
        #[arg(long)]
        listen: std::net::SocketAddr,
    },
    /// Failover drill on a live cluster: ask the master to step down, watch the VIP move
    /// with a connect loop, restore, and print the gap and who holds the VIP. Needs each
    /// node's admin endpoint with `commands = true`.
    Drill {
        /// Admin endpoint of a node (IP:port); give every node.
        #[arg(long = "node", required = true)]
        nodes: Vec<std::net::SocketAddr>,
        /// The VRRP instance to drill.
        #[arg(long, default_value = "VI_1")]
        instance: String,
        /// Where clients connect: VIP:port.
        #[arg(long)]
        target: std::net::SocketAddr,
        /// How long the old master stays stepped down before it is restored.
        #[arg(long, default_value = "3s", value_parser = parse_duration_arg)]
        hold: std::time::Duration,
        /// Give up waiting for a new master after this long.
        #[arg(long, default_value = "30s", value_parser = parse_duration_arg)]
        limit: std::time::Duration,
    },
}

fn parse_duration_arg(text: &str) -> Result<std::time::Duration, String> {
    config::duration::parse_duration(text)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Run) {
        Command::Check => check(&cli.config),
        Command::Run => match run::run(&cli.config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("havip: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Drill {
            nodes,
            instance,
            target,
            hold,
            limit,
        } => match drill::run(drill::DrillPlan {
            nodes,
            instance,
            target,
            hold,
            limit,
        }) {
            Ok(report) => {
                println!("{report}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("havip drill: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Demo { cluster: true, .. } => match demo_cluster::run() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("havip demo --cluster: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::DemoBackend { name, listen } => match demo::backend(&name, listen) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("havip demo-backend: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Demo {
            port,
            admin_port,
            seconds,
            cluster: false,
        } => match demo::run(port, admin_port, seconds) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("havip demo: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

fn check(path: &std::path::Path) -> ExitCode {
    match config::load(path) {
        Ok(c) => {
            let backends: usize = c.services.iter().map(|s| s.backends.len()).sum();
            println!(
                "{}: OK ({} service(s), {} backend(s), {} VRRP instance(s), {} tracker(s))",
                path.display(),
                c.services.len(),
                backends,
                c.vrrp.len(),
                c.trackers.len()
            );
            ExitCode::SUCCESS
        }
        Err(config::ConfigError::Invalid { path, problems }) => {
            for p in &problems {
                eprintln!("{p}");
            }
            eprintln!("{}: {} problem(s)", path.display(), problems.len());
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
