//! `havip`: a highly available virtual IP and layer-4 load balancer in one daemon.
//!
//! Commands: `run` (the default) serves the configured services; `check` validates a config
//! and prints every problem and every trap it sees (or checks keepalived / HAProxy / nginx
//! files before import); `import` turns those files into havip configs; `demo` runs three
//! local backends with the balancer in front; `manifest static-pod` prints a kubelet static
//! pod; `completions` prints a shell's completion script.
#![warn(missing_docs)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod control_client;
mod demo;
mod demo_cluster;
mod drill;
mod generate;
mod manifest;
mod reload;
mod status_table;

use havip_config::{self as config, lint};
use havip_import as import;
use havip_node::{load, privileges, run};

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
    /// Validate the configuration file; print every problem with file, line and key, and
    /// warn about settings that will not do what they seem to. With --keepalived, --haproxy or
    /// --nginx, check those files instead (what `havip import` would report).
    Check {
        /// Exit 1 when there are warnings, not only on errors.
        #[arg(long)]
        strict: bool,
        #[command(flatten)]
        sources: Sources,
    },
    /// Convert haproxy.cfg, keepalived.conf and nginx stream configs into havip configs. A
    /// havip config is per node, like keepalived.conf: each --keepalived file gives one
    /// config (with the balancer's services). What is not carried over is printed to stderr.
    Import {
        #[command(flatten)]
        sources: Sources,
        /// Where to write: a file, or a directory for one file per node. Several
        /// --keepalived files without a directory give OUT's name with the node's name
        /// added (havip.toml -> havip.master1.toml). Default: standard output (one node).
        #[arg(long, short, value_name = "OUT")]
        output: Option<PathBuf>,
    },
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
    /// Ask the running node to re-read its config file and apply the difference in place
    /// (the same as SIGHUP, but with the answer): prints what changed and exits 0, or prints
    /// every problem and exits 1 with the running config unchanged. Asks the admin endpoint
    /// of the config file (`[admin] listen`, with `commands = true`) unless --admin is given.
    Reload {
        /// The node's admin endpoint (IP:port).
        #[arg(long)]
        admin: Option<std::net::SocketAddr>,
        /// `user:password` for an admin endpoint with `auth`.
        #[arg(long)]
        auth: Option<String>,
    },
    /// Binary upgrade without disruption: the running node starts its binary anew (the
    /// path it was started from), hands it the listening sockets and VRRP state, then drains
    /// and exits. Same as SIGUSR2. Needs `[admin] commands = true`.
    Upgrade {
        /// The node's admin endpoint (IP:port).
        #[arg(long)]
        admin: Option<std::net::SocketAddr>,
        /// `user:password` for an admin endpoint with `auth`.
        #[arg(long)]
        auth: Option<String>,
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
        /// `user:password` for admin endpoints with `auth`.
        #[arg(long)]
        auth: Option<String>,
    },
    /// Set a backend's administrative state or weight at run time (HAProxy's `set server`):
    /// `ready`, `drain` (no new connections, open ones go on), `maint` (also no health
    /// checks), or `weight N`. `drain --wait` returns once its last connection closed.
    Backend {
        /// The backend, as SERVICE/BACKEND (`kube-apiserver/master2`).
        #[arg(value_name = "SERVICE/BACKEND")]
        target: String,
        /// ready, drain, maint or weight.
        #[arg(value_name = "ready|drain|maint|weight")]
        action: String,
        /// The weight, after `weight`: 0 to 10000, or a percentage of the configured weight
        /// (`50%`; `100%` hands the weight back to the config).
        #[arg(value_name = "N")]
        value: Option<String>,
        /// Return only when the backend's last connection has closed; prints how many were
        /// open and how long it took. Exit 1 if the timeout comes first.
        #[arg(long)]
        wait: bool,
        /// Longest --wait (default: until drained).
        #[arg(long, requires = "wait", value_parser = parse_duration_arg)]
        timeout: Option<std::time::Duration>,
        #[command(flatten)]
        control: control_client::ControlArgs,
    },
    /// Show services and backends (admin state, health, last check, connections, errors,
    /// weight) and VRRP instances (state, priorities, master, trackers) of the running daemon.
    Status {
        /// Print the daemon's JSON (`/api/status`) instead of tables.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        control: control_client::ControlArgs,
    },
    /// Print a manifest to deploy havip with (for the config given with --config).
    Manifest {
        #[command(subcommand)]
        kind: ManifestKind,
    },
    /// Print the completion script for SHELL (e.g. `havip completions bash >
    /// /etc/bash_completion.d/havip`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Write the man pages and completion scripts into DIR/man and DIR/completions (for
    /// packaging/generate.sh).
    #[command(hide = true)]
    GenerateAssets {
        /// Where to write.
        dir: PathBuf,
    },
}

/// What `havip manifest` prints.
#[derive(Debug, Subcommand)]
enum ManifestKind {
    /// A kubelet static pod for /etc/kubernetes/manifests/: host network, only the
    /// capabilities the config needs (NET_ADMIN and NET_RAW for a VIP), the config (--config)
    /// mounted read-only from the host, a liveness probe on /healthz. It needs no apiserver.
    StaticPod {
        /// Container image.
        #[arg(long, default_value = concat!("localhost/havip:", env!("CARGO_PKG_VERSION")))]
        image: String,
        /// Pod name (the kubelet adds the node's name to the mirror pod).
        #[arg(long, default_value = "havip")]
        name: String,
        /// Namespace.
        #[arg(long, default_value = "kube-system")]
        namespace: String,
    },
}

fn parse_duration_arg(text: &str) -> Result<std::time::Duration, String> {
    config::duration::parse_duration(text)
}

/// Foreign configs to read (any subset).
#[derive(Debug, Clone, Default, clap::Args)]
struct Sources {
    /// haproxy.cfg to import.
    #[arg(long, value_name = "FILE")]
    haproxy: Option<PathBuf>,
    /// keepalived.conf to import; repeat for each node.
    #[arg(long, value_name = "FILE")]
    keepalived: Vec<PathBuf>,
    /// nginx config with the stream block (or a file included inside it).
    #[arg(long, value_name = "FILE")]
    nginx: Option<PathBuf>,
    /// Content of a track script that keepalived.conf names, when it is not at that path on
    /// this machine: `/etc/keepalived/check.sh=./check.sh`, or just the file (matched by
    /// name).
    #[arg(long, value_name = "[PATH=]FILE")]
    script: Vec<String>,
}

impl Sources {
    fn is_empty(&self) -> bool {
        self.haproxy.is_none() && self.keepalived.is_empty() && self.nginx.is_none()
    }

    fn inputs(&self) -> import::Inputs {
        import::Inputs {
            haproxy: self.haproxy.clone(),
            keepalived: self.keepalived.clone(),
            nginx: self.nginx.clone(),
            scripts: self
                .script
                .iter()
                .map(|s| import::ScriptFile::parse(s))
                .collect(),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Run) {
        Command::Check { strict, sources } => {
            if sources.is_empty() {
                check(&cli.config, strict)
            } else {
                check_foreign(&sources, strict)
            }
        }
        Command::Import { sources, output } => import_cmd(&sources, output.as_deref()),
        Command::Run => match run::run(&cli.config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("havip: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Reload { admin, auth } => {
            match reload::run(&cli.config, &reload::ReloadPlan { admin, auth }) {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::FAILURE,
                Err(e) => {
                    eprintln!("havip reload: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Upgrade { admin, auth } => {
            match reload::upgrade(&cli.config, &reload::ReloadPlan { admin, auth }) {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::FAILURE,
                Err(e) => {
                    eprintln!("havip upgrade: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Drill {
            nodes,
            instance,
            target,
            hold,
            limit,
            auth,
        } => match drill::run(drill::DrillPlan {
            nodes,
            instance,
            target,
            hold,
            limit,
            auth,
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
        Command::Manifest {
            kind:
                ManifestKind::StaticPod {
                    image,
                    name,
                    namespace,
                },
        } => match manifest::run(&manifest::StaticPodPlan {
            config: cli.config.clone(),
            image,
            name,
            namespace,
        }) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("havip manifest: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Completions { shell } => {
            generate::completions(shell, &mut std::io::stdout());
            ExitCode::SUCCESS
        }
        Command::GenerateAssets { dir } => match generate::write_assets(&dir) {
            Ok(written) => {
                for path in written {
                    eprintln!("wrote {}", path.display());
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("havip generate-assets: {}: {e}", dir.display());
                ExitCode::FAILURE
            }
        },
        Command::Backend {
            target,
            action,
            value,
            wait,
            timeout,
            control,
        } => control_client::backend(
            &control,
            &cli.config,
            &control_client::BackendArgs {
                target,
                action,
                value,
                wait,
                timeout,
            },
        ),
        Command::Status { json, control } => control_client::status(&control, &cli.config, json),
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

fn check(path: &std::path::Path, strict: bool) -> ExitCode {
    match load::load(path) {
        Ok(loaded) => {
            let mut warnings = loaded.warnings(&load::LocalInterfaces);
            // Asked of this machine: run `havip check` on the node.
            warnings.extend(havip_node::bgp::daemon::warnings(
                &loaded.config,
                &loaded.places,
            ));
            warnings.extend(privileges::warnings(&loaded, &path.display().to_string()));
            let settings = &loaded.config;
            for warning in &warnings {
                eprintln!("{warning}");
            }
            let backends: usize = settings
                .services
                .iter()
                .map(|service| service.backends.len())
                .sum();
            let bgp = match settings.bgp.len() {
                0 => String::new(),
                n => format!("{n} BGP announcement(s), "),
            };
            let extra = if warnings.is_empty() {
                String::new()
            } else {
                format!(", {} warning(s)", warnings.len())
            };
            println!(
                "{}: OK ({} service(s), {} backend(s), {} VRRP instance(s), {bgp}{} tracker(s){extra})",
                path.display(),
                settings.services.len(),
                backends,
                settings.vrrp.len(),
                settings.trackers.len()
            );
            if strict && !warnings.is_empty() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(config::ConfigError::Invalid { path, problems }) => {
            for problem in &problems {
                eprintln!("{problem}");
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

/// `havip check --keepalived/--haproxy/--nginx`: what the import would report, with this
/// machine's interfaces taken into account.
fn check_foreign(sources: &Sources, strict: bool) -> ExitCode {
    let imported = import::import(&sources.inputs(), &load::LocalInterfaces);
    let report = &imported.report;
    for note in report.sorted() {
        eprintln!("{note}");
    }
    let errors = report.count(import::Severity::Error);
    let warnings = report.count(import::Severity::Warning);
    let skipped = report.count(import::Severity::Skipped);
    println!("{errors} error(s), {warnings} warning(s), {skipped} not carried over");
    if errors > 0 || (strict && warnings > 0) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// `havip import`: write the configs, print the report.
fn import_cmd(sources: &Sources, output: Option<&std::path::Path>) -> ExitCode {
    if sources.is_empty() {
        eprintln!("havip import: give at least one of --haproxy, --keepalived, --nginx");
        return ExitCode::FAILURE;
    }
    let imported = import::import(&sources.inputs(), &lint::NoInterfaces);
    let report = &imported.report;
    for note in report.sorted() {
        eprintln!("{note}");
    }
    if report.has_errors() {
        eprintln!(
            "havip import: {} error(s) in the input; nothing written",
            report.count(import::Severity::Error)
        );
        return ExitCode::FAILURE;
    }
    let targets = match import::output_paths(&imported.nodes, output) {
        Ok(targets) => targets,
        Err(msg) => {
            eprintln!("havip import: {msg}");
            return ExitCode::FAILURE;
        }
    };
    for (node, target) in imported.nodes.iter().zip(&targets) {
        let text = import::emit::emit(&node.draft, &imported.notes_for(node));
        match target {
            None => print!("{text}"),
            Some(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    if let Err(e) = std::fs::create_dir_all(dir) {
                        eprintln!("havip import: {}: {e}", dir.display());
                        return ExitCode::FAILURE;
                    }
                }
                if let Err(e) = std::fs::write(path, &text) {
                    eprintln!("havip import: {}: {e}", path.display());
                    return ExitCode::FAILURE;
                }
                eprintln!("havip import: wrote {}", path.display());
            }
        }
    }
    eprintln!(
        "havip import: {}; check each config with havip check --config FILE",
        report.summary()
    );
    ExitCode::SUCCESS
}
