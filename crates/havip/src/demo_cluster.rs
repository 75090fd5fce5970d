//! `havip demo --cluster`: the seed-000 topology (three Kubernetes masters, each running
//! havip with the VIP and the balancer in front of the three masters' servers) built in
//! network namespaces on this machine, then a failover drill and a crash, with timings.
//! Needs root. Everything it creates (namespaces, processes, files under
//! /tmp/havip-demo-cluster) is removed when it ends, also on Ctrl-C or an error.
//!
//! ```text
//!   client 10.99.0.50 ──┐
//!   m1 10.99.0.11 ──────┼── bridge (namespace havip-demo-sw)      VIP 10.99.0.100:19345
//!   m2 10.99.0.12 ──────┤     each mN: havip (VRRP v2, PASS auth, priority 100/90/80)
//!   m3 10.99.0.13 ──────┘              + a demo server on :9345 answering /readyz
//! ```

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::process::{Child, Command};
use tokio::time::Instant;

const PREFIX: &str = "havip-demo";
const VIP: &str = "10.99.0.100";
const PORT: u16 = 19345;
const SERVER_PORT: u16 = 9345;
const MASTERS: [(&str, &str, u8); 3] = [
    ("m1", "10.99.0.11", 100),
    ("m2", "10.99.0.12", 90),
    ("m3", "10.99.0.13", 80),
];
const CLIENT: (&str, &str) = ("client", "10.99.0.50");

pub fn run() -> anyhow::Result<()> {
    if !is_root() {
        bail!("the cluster demo builds network namespaces and needs root (try: sudo havip demo --cluster)");
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let mut lab = DemoLab::new();
        let outcome = tokio::select! {
            r = demo(&mut lab) => r,
            _ = tokio::signal::ctrl_c() => {
                println!("\ninterrupted");
                Ok(())
            }
        };
        println!("cleaning up: stopping havip nodes, removing namespaces...");
        lab.cleanup().await;
        outcome
    })
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .is_some_and(|l| l.split_whitespace().nth(1) == Some("0"))
}

/// What the demo created, so that it can all be removed.
struct DemoLab {
    namespaces: Vec<String>,
    children: Vec<(String, Child)>,
    dir: PathBuf,
}

impl DemoLab {
    fn new() -> Self {
        DemoLab {
            namespaces: Vec::new(),
            children: Vec::new(),
            dir: std::env::temp_dir().join("havip-demo-cluster"),
        }
    }

    fn ns(name: &str) -> String {
        format!("{PREFIX}-{name}")
    }

    async fn build(&mut self) -> anyhow::Result<()> {
        // A demo that was killed leaves namespaces behind: clear them first.
        for name in std::iter::once("sw")
            .chain(MASTERS.iter().map(|m| m.0))
            .chain([CLIENT.0])
        {
            let _ = ip(&["netns", "del", &Self::ns(name)]).await;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        std::fs::create_dir_all(&self.dir).context("demo directory")?;
        let switch = Self::ns("sw");
        ip(&["netns", "add", &switch]).await?;
        self.namespaces.push(switch.clone());
        ip(&["-n", &switch, "link", "add", "br0", "type", "bridge"]).await?;
        ip(&["-n", &switch, "link", "set", "br0", "up"]).await?;
        let hosts = MASTERS.iter().map(|(n, a, _)| (*n, *a)).chain([CLIENT]);
        for (i, (name, address)) in hosts.enumerate() {
            let ns = Self::ns(name);
            ip(&["netns", "add", &ns]).await?;
            self.namespaces.push(ns.clone());
            let port = format!("p{i}");
            ip(&[
                "-n", &switch, "link", "add", &port, "type", "veth", "peer", "name", "eth0",
                "netns", &ns,
            ])
            .await?;
            ip(&["-n", &switch, "link", "set", &port, "master", "br0", "up"]).await?;
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{address}/24"),
                "dev",
                "eth0",
            ])
            .await?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"]).await?;
            ip(&["-n", &ns, "link", "set", "lo", "up"]).await?;
        }
        Ok(())
    }

    fn spawn(&mut self, label: &str, ns: &str, args: &[&str]) -> anyhow::Result<()> {
        let exe = std::env::current_exe().context("cannot find the havip binary")?;
        let log = std::fs::File::create(self.dir.join(format!("{label}.log")))?;
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .arg(&exe)
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            // Ctrl-C reaches the whole process group; the demo stops its children itself.
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {label}"))?;
        self.children.push((label.to_string(), child));
        Ok(())
    }

    /// Like `spawn`, but the child writes to the terminal.
    fn spawn_visible(&mut self, label: &str, ns: &str, args: &[&str]) -> anyhow::Result<()> {
        let exe = std::env::current_exe().context("cannot find the havip binary")?;
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .arg(&exe)
            .args(args)
            .stdin(Stdio::null())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {label}"))?;
        self.children.push((label.to_string(), child));
        Ok(())
    }

    /// Wait for a child to exit; whether it succeeded.
    async fn wait_for(&mut self, label: &str) -> bool {
        let Some(index) = self.children.iter().position(|(l, _)| l == label) else {
            return false;
        };
        let (_, mut child) = self.children.remove(index);
        matches!(child.wait().await, Ok(status) if status.success())
    }

    async fn kill(&mut self, label: &str, signal: &str) {
        if let Some((_, child)) = self.children.iter_mut().find(|(l, _)| l == label) {
            if let Some(pid) = child.id() {
                let _ = Command::new("kill")
                    .args([&format!("-{signal}"), &pid.to_string()])
                    .status()
                    .await;
            }
        }
    }

    async fn cleanup(&mut self) {
        for (_, child) in &mut self.children {
            if let Some(pid) = child.id() {
                let _ = Command::new("kill")
                    .args(["-TERM", &pid.to_string()])
                    .status()
                    .await;
            }
        }
        for (_, child) in &mut self.children {
            if tokio::time::timeout(Duration::from_secs(8), child.wait())
                .await
                .is_err()
            {
                let _ = child.kill().await;
            }
        }
        self.children.clear();
        for ns in self.namespaces.drain(..).rev() {
            let _ = ip(&["netns", "del", &ns]).await;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn ip(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .await
        .context("cannot run `ip` (install iproute2)")?;
    if !out.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn node_config(address: &str, priority: u8) -> String {
    let backends: String = MASTERS
        .iter()
        .map(|(name, a, _)| {
            format!("[[service.backend]]\nname = \"{name}\"\naddress = \"{a}:{SERVER_PORT}\"\n")
        })
        .collect();
    format!(
        r#"# Seed 000 (RKE2): havip on each master replaces haproxy + keepalived + check_apiserver.sh.
[global]
grace = "2s"
[log]
connections = false
[admin]
listen = "{address}:8404"
commands = true

[[service]]
name = "rke2-supervisor"
listen = "{VIP}:{PORT}"
[service.health]
check = "http"
path = "/readyz"
interval = "1s"
fast_interval = "300ms"
rise = 2
fall = 2
{backends}
[[tracker]]
name = "supervisors"
kind = "service"
service = "rke2-supervisor"
min_healthy = 1
weight = -50

[[vrrp]]
name = "VI_1"
interface = "eth0"
vrid = 51
version = 2
priority = {priority}
advert_interval = "1s"
auth_pass = "K8SHA_KA_AUTH"
virtual_addresses = ["{VIP}/24"]
track = ["supervisors"]
"#
    )
}

/// Whether master `name` holds the VIP on its interface now.
async fn holds_vip(name: &str) -> bool {
    let Ok(out) = Command::new("ip")
        .args([
            "-n",
            &DemoLab::ns(name),
            "-o",
            "addr",
            "show",
            "dev",
            "eth0",
        ])
        .output()
        .await
    else {
        return false;
    };
    String::from_utf8_lossy(&out.stdout).contains(&format!(" {VIP}/"))
}

async fn masters() -> Vec<&'static str> {
    let mut out = Vec::new();
    for (name, _, _) in MASTERS {
        if holds_vip(name).await {
            out.push(name);
        }
    }
    out
}

async fn wait_for_master(except: &[&str], limit: Duration) -> Option<(&'static str, Duration)> {
    let started = Instant::now();
    while started.elapsed() < limit {
        let found: Vec<&str> = masters()
            .await
            .into_iter()
            .filter(|m| !except.contains(m))
            .collect();
        if let [one] = found.as_slice() {
            return Some((one, started.elapsed()));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

async fn demo(lab: &mut DemoLab) -> anyhow::Result<()> {
    println!(
        "building the seed-000 topology: 3 masters and a client on a bridge (network namespaces)"
    );
    lab.build().await?;
    for (name, address, priority) in MASTERS {
        let ns = DemoLab::ns(name);
        lab.spawn(
            &format!("{name}-server"),
            &ns,
            &[
                "demo-backend",
                "--name",
                name,
                "--listen",
                &format!("0.0.0.0:{SERVER_PORT}"),
            ],
        )?;
        let config = lab.dir.join(format!("{name}.toml"));
        std::fs::write(&config, node_config(address, priority))?;
        lab.spawn(name, &ns, &["run", "--config", &path_str(&config)])?;
        println!("  {name} {address}: havip priority {priority}, server on :{SERVER_PORT}");
    }
    println!(
        "waiting for the election (VRRP v2, 1 s adverts: Master_Down_Interval is about 3.6 s)..."
    );
    let Some((first, took)) = wait_for_master(&[], Duration::from_secs(15)).await else {
        bail!("no master was elected; logs in {}", lab.dir.display());
    };
    println!(
        "VIP {VIP} is on {first} after {:.1} s; clients connect to {VIP}:{PORT}",
        took.as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;

    println!("\n== drill: {first} steps down gracefully, then is restored ==");
    let mut args: Vec<String> = vec!["drill".into()];
    for (_, address, _) in MASTERS {
        args.extend(["--node".into(), format!("{address}:8404")]);
    }
    args.extend([
        "--target".into(),
        format!("{VIP}:{PORT}"),
        "--hold".into(),
        "2s".into(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // The drill runs in the client's namespace, as a child the cleanup can stop; its report
    // goes to the terminal.
    lab.spawn_visible("drill", &DemoLab::ns(CLIENT.0), &args)?;
    if !lab.wait_for("drill").await {
        bail!("the drill failed");
    }

    println!("\n== crash: kill -9 of the master and its link down ==");
    let Some((current, _)) = wait_for_master(&[], Duration::from_secs(10)).await else {
        bail!("no master after the drill");
    };
    let crashed = Instant::now();
    lab.kill(current, "KILL").await;
    ip(&["-n", &DemoLab::ns(current), "link", "set", "eth0", "down"]).await?;
    match wait_for_master(&[current], Duration::from_secs(10)).await {
        Some((next, _)) => {
            let took = crashed.elapsed();
            println!(
                "{current} crashed; {next} holds the VIP {:.2} s after the kill (RFC 3768: 3 × 1 s + Skew_Time after the last advert, 3.65 s for priority 90)",
                took.as_secs_f64()
            );
        }
        None => bail!("nobody took over after the crash"),
    }
    println!(
        "\nlogs of every node are in {} until the demo ends",
        lab.dir.display()
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    Ok(())
}

fn path_str(path: &Path) -> String {
    path.display().to_string()
}
