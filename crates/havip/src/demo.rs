//! `havip demo`: three small HTTP backends on loopback with the balancer in front, then a
//! scripted drill: balancing, a backend crashing (clients see no error, the health check marks
//! it down) and coming back (marked up again). Needs no config and no root; everything
//! listens on 127.0.0.1 and stops when the demo ends.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use havip_config::{Config, LogFormat, LogSettings};
use havip_node::load::load_text;
use havip_node::logging;
use havip_node::run::{build_runtime, shutdown_signal, Running};

/// `havip demo`: the balancer on 127.0.0.1:`port`, its admin endpoint on `admin_port`, for
/// `seconds` (0: until Ctrl-C).
pub fn run(port: u16, admin_port: u16, seconds: u64) -> anyhow::Result<()> {
    logging::init(&LogSettings {
        format: LogFormat::Text,
        level: "info".into(),
        connections: false,
    });
    build_runtime(0)?.block_on(demo(port, admin_port, seconds))
}

/// A demo backend: answers every request with its name; `/readyz` answers 200.
struct DemoBackend {
    name: String,
    addr: SocketAddr,
    served: Arc<AtomicU64>,
    task: Option<JoinHandle<()>>,
}

impl DemoBackend {
    async fn start(name: &str, addr: SocketAddr) -> anyhow::Result<DemoBackend> {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.set_reuseaddr(true)?;
        socket
            .bind(addr)
            .with_context(|| format!("{name}: cannot listen on {addr}"))?;
        let listener = socket.listen(1024)?;
        let addr = listener.local_addr()?;
        let served = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(serve_backend(listener, name.to_string(), served.clone()));
        Ok(DemoBackend {
            name: name.to_string(),
            addr,
            served,
            task: Some(task),
        })
    }

    /// Stop listening and drop every connection, as a crash would.
    fn crash(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl Drop for DemoBackend {
    fn drop(&mut self) {
        self.crash();
    }
}

async fn serve_backend(listener: TcpListener, name: String, served: Arc<AtomicU64>) {
    let mut connections = tokio::task::JoinSet::new();
    while let Ok((mut stream, _)) = listener.accept().await {
        let name = name.clone();
        let served = served.clone();
        connections.spawn(async move {
            let mut buf = [0u8; 2048];
            let mut len = 0;
            while !buf[..len].windows(4).any(|w| w == b"\r\n\r\n") && len < buf.len() {
                match stream.read(&mut buf[len..]).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => len += n,
                }
            }
            let body = if buf[..len].starts_with(b"GET /readyz ") {
                "ok\n".to_string()
            } else {
                served.fetch_add(1, Relaxed);
                format!("hello from {name}\n")
            };
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
        });
    }
}

/// One HTTP GET through the balancer: the backend's name, or why it failed.
async fn request(balancer: SocketAddr) -> Result<String, String> {
    let exchange = async {
        let mut stream = TcpStream::connect(balancer)
            .await
            .map_err(|e| e.to_string())?;
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n")
            .await
            .map_err(|e| e.to_string())?;
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .await
            .map_err(|e| e.to_string())?;
        response
            .rsplit("hello from ")
            .next()
            .filter(|_| response.contains("hello from "))
            .map(|name| name.trim().to_string())
            .ok_or_else(|| "connection closed without an answer".to_string())
    };
    match tokio::time::timeout(Duration::from_secs(5), exchange).await {
        Ok(result) => result,
        Err(_) => Err("timed out".into()),
    }
}

async fn requests(balancer: SocketAddr, n: usize) -> (Vec<String>, usize) {
    let mut answered = Vec::new();
    let mut errors = 0;
    for _ in 0..n {
        match request(balancer).await {
            Ok(name) => answered.push(name),
            Err(e) => {
                errors += 1;
                answered.push(format!("ERROR({e})"));
            }
        }
    }
    (answered, errors)
}

/// Wait (bounded) until `backend` of the demo service has the wanted health.
async fn wait_for_health(
    running: &Running,
    backend: usize,
    up: bool,
    limit: Duration,
) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if running.services()[0].backends[backend].is_up() == up {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

/// The demo's config, written as TOML and loaded as `havip run` loads a file, so the demo
/// runs the schema users write. Checks are fast so that a failure shows within a second.
fn demo_config(port: u16, admin_port: u16, backends: &[SocketAddr]) -> anyhow::Result<Config> {
    let mut text = format!(
        r#"[global]
grace = "2s"

[admin]
listen = "127.0.0.1:{admin_port}"

[[service]]
name = "demo"
listen = "127.0.0.1:{port}"

[service.health]
check = "http"
interval = "500ms"
fast_interval = "200ms"
timeout = "300ms"
fall = 2
"#
    );
    for (index, addr) in backends.iter().enumerate() {
        text.push_str(&format!(
            "\n[[service.backend]]\nname = \"backend-{}\"\naddress = \"{addr}\"\n",
            index + 1
        ));
    }
    match load_text(Path::new("(demo)"), &text) {
        Ok(loaded) => Ok(loaded.config),
        Err(problems) => {
            let list: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
            anyhow::bail!("the demo config is not valid:\n{}", list.join("\n"))
        }
    }
}

async fn demo(port: u16, admin_port: u16, seconds: u64) -> anyhow::Result<()> {
    let mut backends = Vec::new();
    for number in 1..=3 {
        let any_port = SocketAddr::from(([127, 0, 0, 1], 0));
        backends.push(DemoBackend::start(&format!("backend-{number}"), any_port).await?);
    }
    let addrs: Vec<SocketAddr> = backends.iter().map(|b| b.addr).collect();
    let config = demo_config(port, admin_port, &addrs)?;
    let running = Running::start(&config).await?;
    let balancer = config.services[0].listen[0];

    println!("havip demo: three backends on loopback with the balancer in front\n");
    println!("  balancer  {balancer}   try: curl http://{balancer}/");
    println!("  metrics   http://127.0.0.1:{admin_port}/metrics");
    println!("  status    http://127.0.0.1:{admin_port}/api/status");
    for backend in &backends {
        println!("  {}  {}", backend.name, backend.addr);
    }
    println!("\nhealth check: GET /readyz every 500ms, 2 failures mark a backend down, 2 passes mark it up\n");

    let (answered, _) = requests(balancer, 6).await;
    println!(
        "[1] six requests, round robin:\n    {}\n",
        answered.join(" ")
    );

    println!("[2] backend-2 crashes (stops listening, drops its connections)");
    backends[1].crash();
    let (answered, errors) = requests(balancer, 6).await;
    println!("    six requests right away: {}", answered.join(" "));
    println!(
        "    client-visible errors: {errors} (a failed connect is retried on another backend)"
    );
    match wait_for_health(&running, 1, false, Duration::from_secs(10)).await {
        Some(t) => println!("    backend-2 marked down after {} ms\n", t.as_millis()),
        None => println!("    backend-2 was not marked down within 10 s\n"),
    }

    println!("[3] backend-2 comes back");
    backends[1] = DemoBackend::start("backend-2", addrs[1]).await?;
    match wait_for_health(&running, 1, true, Duration::from_secs(10)).await {
        Some(t) => println!("    backend-2 marked up after {} ms", t.as_millis()),
        None => println!("    backend-2 was not marked up within 10 s"),
    }
    let (answered, _) = requests(balancer, 6).await;
    println!("    six requests: {}\n", answered.join(" "));

    let served: Vec<String> = backends
        .iter()
        .map(|b| format!("{}={}", b.name, b.served.load(Relaxed)))
        .collect();
    println!("requests served so far: {}", served.join(" "));
    if seconds == 0 {
        println!("\nthe balancer keeps running; press Ctrl-C to stop");
        shutdown_signal().await;
    } else {
        println!("\nthe balancer keeps running for {seconds} s (Ctrl-C stops it sooner)");
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(seconds)) => {}
            _ = shutdown_signal() => {}
        }
    }
    running.stop().await;
    drop(backends);
    Ok(())
}

/// `havip demo-backend` (hidden): one demo backend until SIGTERM/SIGINT, for the cluster
/// demo, which runs it inside its network namespaces.
pub fn backend(name: &str, listen: SocketAddr) -> anyhow::Result<()> {
    build_runtime(1)?.block_on(async {
        let backend = DemoBackend::start(name, listen).await?;
        shutdown_signal().await;
        drop(backend);
        Ok(())
    })
}
