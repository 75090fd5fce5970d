//! `havip demo --cluster`: the seed-000 topology (three Kubernetes masters, each running
//! havip with the VIP and the balancer in front of the three masters' servers) built in
//! network namespaces on this machine with the test lab (havip-test-support), then a failover
//! drill and a crash, with timings. Needs root. Everything it creates (namespaces, processes,
//! files under /tmp/havip-demo-cluster) is removed when it ends, also on Ctrl-C or an error.
//!
//! ```text
//!   client 10.99.0.50 ──┐
//!   m1 10.99.0.11 ──────┼── bridge (namespace havip-demo-sw)      VIP 10.99.0.100:19345
//!   m2 10.99.0.12 ──────┤     each mN: havip (VRRP v2, PASS auth, priority 100/90/80)
//!   m3 10.99.0.13 ──────┘              + a demo server on :9345 answering /readyz
//! ```
//!
//! The demo runs on a thread of its own while the main thread waits for it or for Ctrl-C;
//! either way the main thread stops the nodes (SIGTERM, then the lab's cleanup).

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use havip_test_support::guard::{self, Need};
use havip_test_support::lab::{HostSpec, Lab, LabSpec};
use havip_test_support::node_config::{Health, NodeConfig, Service, Tracker, Vrrp};
use havip_test_support::wait_for;
use tokio::time::Instant;

const VIP: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 100);
const PORT: u16 = 19345;
const SERVER_PORT: u16 = 9345;
const ADMIN_PORT: u16 = 8404;
const MASTERS: [(&str, Ipv4Addr, u8); 3] = [
    ("m1", Ipv4Addr::new(10, 99, 0, 11), 100),
    ("m2", Ipv4Addr::new(10, 99, 0, 12), 90),
    ("m3", Ipv4Addr::new(10, 99, 0, 13), 80),
];
const CLIENT: (&str, Ipv4Addr) = ("client", Ipv4Addr::new(10, 99, 0, 50));

/// Run the demo; see the module documentation.
pub fn run() -> anyhow::Result<()> {
    if let Some(why) = guard::unmet(&[Need::Root, Need::Netns]) {
        bail!(
            "the cluster demo builds network namespaces: it {why} (try: sudo havip demo --cluster)"
        );
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    // Held until the demo has cleaned up: its namespaces have fixed names.
    let _one_at_a_time = DemoLock::take()?;
    println!(
        "building the seed-000 topology: 3 masters and a client on a bridge (network namespaces)"
    );
    let lab = Arc::new(Lab::with(spec()).context("cannot build the demo network")?);
    let stopping = Arc::new(AtomicBool::new(false));
    quiet_panics_while(stopping.clone());
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let demo_lab = lab.clone();
    std::thread::spawn(move || {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| demo(&demo_lab)))
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the demo failed (see above)")));
        let _ = done_tx.send(outcome);
    });
    let outcome = runtime.block_on(async {
        tokio::select! {
            done = done_rx => done.unwrap_or_else(|_| Err(anyhow::anyhow!("the demo thread ended"))),
            _ = tokio::signal::ctrl_c() => {
                println!("\ninterrupted");
                Ok(())
            }
        }
    });
    stopping.store(true, Ordering::SeqCst);
    println!("cleaning up: stopping havip nodes, removing namespaces...");
    lab.terminate_all(Duration::from_secs(8));
    lab.shutdown();
    outcome
}

/// The demo's network: fixed names (a killed run's are replaced), its own process groups so
/// that Ctrl-C reaches only this process, which then stops the others.
fn spec() -> LabSpec {
    let host = |name: &str, address: Ipv4Addr| HostSpec {
        v6: Vec::new(),
        ..HostSpec::new(name, address, std::net::Ipv6Addr::UNSPECIFIED)
    };
    LabSpec {
        prefix: "havip-demo".into(),
        nodes: MASTERS.iter().map(|(n, a, _)| host(n, *a)).collect(),
        client: Some(host(CLIENT.0, CLIENT.1)),
        dir: std::env::temp_dir().join("havip-demo-cluster"),
        replace_stale: true,
        own_process_group: true,
    }
}

/// One demo at a time on a machine: the namespaces have fixed names, and each demo starts by
/// removing those a killed run left behind, which would pull another demo's network away.
/// The lock is a file holding the owner's PID; one whose owner is gone is stale.
struct DemoLock(PathBuf);

impl DemoLock {
    fn take() -> anyhow::Result<DemoLock> {
        let path = std::env::temp_dir().join("havip-demo-cluster.pid");
        let mut said = false;
        let taken = wait_for(
            Duration::from_secs(180),
            || match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut file) => Some(writeln!(file, "{}", std::process::id()).map(|()| ())),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let owner = std::fs::read_to_string(&path).unwrap_or_default();
                    let owner = owner.trim();
                    if Path::new("/proc").join(owner).exists() && !owner.is_empty() {
                        if !said {
                            println!("another havip demo --cluster (pid {owner}) runs; waiting for it to end...");
                            said = true;
                        }
                    } else {
                        let _ = std::fs::remove_file(&path);
                    }
                    None
                }
                Err(e) => Some(Err(e)),
            },
        );
        match taken {
            Some(Ok(())) => Ok(DemoLock(path)),
            Some(Err(e)) => Err(e).with_context(|| format!("cannot create {}", path.display())),
            None => bail!("another havip demo --cluster is still running after 3 minutes"),
        }
    }
}

impl Drop for DemoLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Once the main thread is stopping the lab, the demo thread's operations fail (its
/// namespaces are going away); say nothing about that.
fn quiet_panics_while(stopping: Arc<AtomicBool>) {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !stopping.load(Ordering::SeqCst) {
            default(info);
        }
    }));
}

fn node_config(address: Ipv4Addr, priority: u8) -> NodeConfig {
    let mut service = Service::new("rke2-supervisor", SocketAddr::from((VIP, PORT))).health(
        Health::http("/readyz")
            .interval("1s")
            .fast_interval("300ms")
            .rise(2)
            .fall(2),
    );
    for (name, a, _) in MASTERS {
        service = service.named_backend(name, SocketAddr::from((a, SERVER_PORT)));
    }
    NodeConfig::new()
        .comment(
            "Seed 000 (RKE2): havip on each master replaces haproxy + keepalived + \
             check_apiserver.sh.",
        )
        .grace("2s")
        .log_connections(false)
        .admin(SocketAddr::from((address, ADMIN_PORT)))
        .admin_commands()
        .service(service)
        .tracker(
            Tracker::service("supervisors", "rke2-supervisor")
                .min_healthy(1)
                .weight(-50),
        )
        .vrrp(
            Vrrp::new("VI_1", 51)
                .version(2)
                .priority(priority)
                .advert_interval("1s")
                .auth_pass("K8SHA_KA_AUTH")
                .vip(format!("{VIP}/24"))
                .track(&["supervisors"]),
        )
}

/// The masters that hold the VIP now, by name.
fn masters(lab: &Lab) -> Vec<&'static str> {
    lab.holders(IpAddr::V4(VIP))
        .into_iter()
        .map(|i| MASTERS[i].0)
        .collect()
}

/// Wait until exactly one master other than `except` holds the VIP; it and how long that took.
fn wait_for_master(
    lab: &Lab,
    except: &[&str],
    limit: Duration,
) -> Option<(&'static str, Duration)> {
    let started = Instant::now();
    wait_for(limit, || {
        let found: Vec<&str> = masters(lab)
            .into_iter()
            .filter(|m| !except.contains(m))
            .collect();
        match found.as_slice() {
            [one] => Some((*one, started.elapsed())),
            _ => None,
        }
    })
}

/// The VRRP state master `i` reports on its admin endpoint, asked from the client namespace.
fn reported_state(lab: &Lab, i: usize) -> Option<String> {
    let admin = SocketAddr::from((MASTERS[i].1, ADMIN_PORT));
    let body = lab.in_ns(&lab.client, move || -> Option<String> {
        let mut stream = TcpStream::connect_timeout(&admin, Duration::from_secs(1)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        let request =
            format!("GET /api/status HTTP/1.1\r\nHost: {admin}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).ok()?;
        let mut text = String::new();
        stream.read_to_string(&mut text).ok()?;
        Some(text.split_once("\r\n\r\n")?.1.to_string())
    })?;
    let status: serde_json::Value = serde_json::from_str(&body).ok()?;
    Some(status["vrrp"][0]["state"].as_str()?.to_string())
}

fn demo(lab: &Lab) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("cannot find the havip binary")?;
    let exe = exe.display().to_string();
    let mut pids = Vec::new();
    for (index, (name, address, priority)) in MASTERS.iter().enumerate() {
        let namespace = &lab.nodes[index];
        let listen = format!("0.0.0.0:{SERVER_PORT}");
        let server_args = ["demo-backend", "--name", name, "--listen", &listen];
        lab.spawn(
            namespace,
            &exe,
            &server_args,
            &format!("{name}-server.log"),
            &[],
        );
        let config = lab.write(
            &format!("{name}.toml"),
            &node_config(*address, *priority).to_toml(),
        );
        let config = path_str(&config);
        pids.push(lab.spawn(
            namespace,
            &exe,
            &["run", "--config", &config],
            &format!("{name}.log"),
            &[],
        ));
        println!("  {name} {address}: havip priority {priority}, server on :{SERVER_PORT}");
    }
    println!(
        "waiting for the election (VRRP v2, 1 s adverts: Master_Down_Interval is about 3.6 s)..."
    );
    let Some((first, took)) = wait_for_master(lab, &[], Duration::from_secs(15)) else {
        bail!("no master was elected; logs in {}", lab.dir.display());
    };
    println!(
        "VIP {VIP} is on {first} after {:.1} s; clients connect to {VIP}:{PORT}",
        took.as_secs_f64()
    );
    // The drill's first check: every node answers on its admin endpoint as master or backup.
    let ready = wait_for(Duration::from_secs(10), || {
        (0..MASTERS.len())
            .all(|i| matches!(reported_state(lab, i).as_deref(), Some("MASTER" | "BACKUP")))
            .then_some(())
    });
    if ready.is_none() {
        bail!(
            "not every node reports its VRRP state; logs in {}",
            lab.dir.display()
        );
    }

    println!("\n== drill: {first} steps down gracefully, then is restored ==");
    let mut args: Vec<String> = vec!["drill".into()];
    for (_, address, _) in MASTERS {
        args.extend(["--node".into(), format!("{address}:{ADMIN_PORT}")]);
    }
    args.extend([
        "--target".into(),
        format!("{VIP}:{PORT}"),
        "--hold".into(),
        "2s".into(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // The drill runs in the client's namespace, as a lab process; its report goes to the
    // terminal.
    let drill = lab.spawn_to_terminal(&lab.client, &exe, &args);
    if lab.wait(drill, Duration::from_secs(120)) != Some(Some(0)) {
        bail!("the drill failed");
    }

    println!("\n== crash: kill -9 of the master and its link down ==");
    let Some((current, _)) = wait_for_master(lab, &[], Duration::from_secs(10)) else {
        bail!("no master after the drill");
    };
    let index = MASTERS
        .iter()
        .position(|m| m.0 == current)
        .context("a master")?;
    let crashed = Instant::now();
    lab.signal(pids[index], "KILL");
    lab.set_node_link(index, false);
    match wait_for_master(lab, &[current], Duration::from_secs(10)) {
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
    Ok(())
}

fn path_str(path: &Path) -> String {
    path.display().to_string()
}
