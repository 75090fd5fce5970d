//! The `havip` binary end to end: `check` output and exit codes, `run` with JSON logs, the
//! admin endpoint, SIGTERM draining, and the demo drill. Everything on 127.0.0.1.

#![allow(clippy::unwrap_used)] // test code: a panic is a failed test
#![allow(clippy::disallowed_types)] // blocking tests of a child process use wall-clock time

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use havip_test_support::node_config::{Health, NodeConfig, Service};
use havip_test_support::scratch::Scratch;
use havip_test_support::servers::{Reply, Server};
use havip_test_support::wait_for;

const HAVIP: &str = env!("CARGO_BIN_EXE_havip");
const LIMIT: Duration = Duration::from_secs(20);

/// A child process killed (by its PID) on drop if it is still running.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn check_accepts_the_example_config() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/kube-apiserver.toml");
    let out = Command::new(HAVIP)
        .args(["check", "--config"])
        .arg(&example)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("OK (1 service(s), 3 backend(s), 0 VRRP instance(s), 0 tracker(s))"),
        "{stdout}"
    );
}

/// Every `.toml` under `dir`, recursively, sorted.
fn toml_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(toml_files(&path));
        } else if path.extension().is_some_and(|e| e == "toml") {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// Every config in examples/ (the seed translations in examples/seeds/ too) is documentation
/// that must stay valid: `havip check` accepts each one.
#[test]
fn check_accepts_every_config_in_examples() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let files = toml_files(&dir);
    for seed in ["000-rke2.toml", "001-kubesphere.toml", "004-nginx.toml"] {
        assert!(
            files
                .iter()
                .any(|f| f.ends_with(Path::new("seeds").join(seed))),
            "examples/seeds/{seed} is missing: {files:?}"
        );
    }
    for file in &files {
        let out = Command::new(HAVIP)
            .args(["check", "--config"])
            .arg(file)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains(": OK ("),
            "havip check rejects {}:\n{stdout}{}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn check_lists_every_problem_and_exits_1() {
    let dir = Scratch::new("cli-check");
    let path = dir.write(
        "bad.toml",
        "[[service]]\nname = \"api\"\nlisten = \"0.0.0.0:8443\"\nbalance = \"fastest\"\n[service.timeouts]\nconnect = 5\n[[service.backend]]\naddres = \"10.0.0.1:6443\"\n",
    );
    let out = Command::new(HAVIP)
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let p = path.display();
    for line in [
        format!("{p}:4:11: service[0].balance: \"fastest\" is not a balance algorithm"),
        format!("{p}:6:11: service[0].timeouts.connect: durations are strings with a unit"),
        format!("{p}:8:1: service[0].backend[0].addres: unknown key; did you mean `address`?"),
        format!("{p}: 4 problem(s)"),
    ] {
        assert!(stderr.contains(&line), "missing {line:?} in:\n{stderr}");
    }
    // `run` refuses the same file with the same list.
    let out = Command::new(HAVIP)
        .args(["run", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("did you mean `address`?"));
}

#[test]
fn check_reports_a_missing_file() {
    let out = Command::new(HAVIP)
        .args(["check", "--config", "/nonexistent/havip.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/havip.toml: cannot read"));
}

/// Read JSON log lines from the child's stderr on a thread, forwarding them.
fn json_lines(child: &mut Child) -> mpsc::Receiver<serde_json::Value> {
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { return };
            match serde_json::from_str::<serde_json::Value>(&line) {
                Ok(v) => {
                    if tx.send(v).is_err() {
                        return;
                    }
                }
                Err(_) => panic!("log line is not JSON: {line}"),
            }
        }
    });
    rx
}

/// The next log line that matches `pred`, within [`LIMIT`].
fn next_line(
    rx: &mpsc::Receiver<serde_json::Value>,
    what: &str,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = std::time::Instant::now() + LIMIT;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(v) if pred(&v) => return v,
            Ok(_) => {}
            Err(_) => panic!("no log line with {what} within {LIMIT:?}"),
        }
    }
}

fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(LIMIT)).unwrap();
    // The admin endpoint keeps HTTP/1.1 connections open: ask it to close after this one.
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn run_serves_logs_json_exposes_metrics_and_drains_on_sigterm() {
    let backend = Server::start("127.0.0.1:0".parse().unwrap(), Reply::Echo);
    let dir = Scratch::new("cli-run");
    let config = NodeConfig::new()
        .grace("10s")
        .log("format", "json")
        .log_level("info")
        .admin("127.0.0.1:0")
        .service(
            Service::new("echo", "127.0.0.1:0")
                .health(Health::tcp().interval("100ms"))
                .named_backend("e1", backend.addr),
        );
    let config = dir.write("havip.toml", &config.to_toml());
    let mut child = Running(
        Command::new(HAVIP)
            .args(["run", "--config"])
            .arg(&config)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let logs = json_lines(&mut child.0);
    let listening = next_line(&logs, "listening", |v| v["message"] == "listening");
    let proxy: SocketAddr = listening["addr"].as_str().unwrap().parse().unwrap();
    let admin_line = next_line(&logs, "admin endpoint", |v| {
        v["message"]
            .as_str()
            .unwrap_or("")
            .starts_with("admin endpoint")
    });
    let admin: SocketAddr = admin_line["addr"].as_str().unwrap().parse().unwrap();

    one_connection_is_logged(proxy, &logs);
    the_admin_endpoint_shows_it(admin);
    // SIGTERM with a connection open: no new clients, the open one keeps working, and
    // havip exits 0 once it closes (well inside the 10 s grace).
    let mut open = TcpStream::connect(proxy).unwrap();
    open.set_read_timeout(Some(LIMIT)).unwrap();
    open.write_all(b"a").unwrap();
    open.read_exact(&mut [0u8; 1]).unwrap();
    // SIGTERM to the PID of the child this test started.
    let kill = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    next_line(&logs, "draining", |v| {
        v["message"] == "draining connections"
    });
    assert!(
        TcpStream::connect(proxy).is_err(),
        "still accepting after SIGTERM"
    );
    assert_eq!(
        http_get(admin, "/healthz").0,
        503,
        "healthz reports draining"
    );
    open.write_all(b"b").unwrap();
    let mut b = [0u8; 1];
    open.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"b");
    drop(open);
    let started = std::time::Instant::now();
    let status = wait_for(LIMIT, || child.0.try_wait().unwrap()).expect("havip did not exit");
    assert!(status.success(), "exit status {status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "exited only after {:?}",
        started.elapsed()
    );
}

/// One full connection through `proxy`, then its log line with every field.
fn one_connection_is_logged(proxy: SocketAddr, logs: &mpsc::Receiver<serde_json::Value>) {
    // One full connection, then its log line.
    let mut s = TcpStream::connect(proxy).unwrap();
    s.set_read_timeout(Some(LIMIT)).unwrap();
    s.write_all(b"hello").unwrap();
    let mut back = [0u8; 5];
    s.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"hello");
    drop(s);
    let line = next_line(logs, "connection closed", |v| {
        v["message"] == "connection closed"
    });
    assert_eq!(line["service"], "echo");
    assert_eq!(line["backend"], "e1");
    assert_eq!(line["bytes_to_backend"], 5);
    assert_eq!(line["bytes_from_backend"], 5);
    assert_eq!(line["end"], "closed");
    assert_eq!(line["attempts"], 1);
    for field in [
        "client",
        "queue_ms",
        "connect_ms",
        "total_ms",
        "timestamp",
        "level",
    ] {
        assert!(line.get(field).is_some(), "{field} missing from {line}");
    }
}

/// Metrics, status, healthz and a 404 on the admin endpoint, after that connection.
fn the_admin_endpoint_shows_it(admin: SocketAddr) {
    // Admin endpoint, once the first health check (spread over the first interval) is in.
    let metrics = wait_for(LIMIT, || {
        let (status, metrics) = http_get(admin, "/metrics");
        assert_eq!(status, 200);
        let unchecked = "havip_backend_last_check_success{service=\"echo\",backend=\"e1\"} -1";
        (!metrics.contains(unchecked)).then_some(metrics)
    })
    .expect("no health check ran");
    for sample in [
        "havip_service_connections_total{service=\"echo\"} 1",
        "havip_service_bytes_total{service=\"echo\",direction=\"to_backend\"} 5",
        "havip_backend_up{service=\"echo\",backend=\"e1\"} 1",
        "havip_backend_connections_total{service=\"echo\",backend=\"e1\"} 1",
        "havip_backend_last_check_success{service=\"echo\",backend=\"e1\"} 1",
    ] {
        assert!(
            metrics.contains(sample),
            "missing {sample:?} in:\n{metrics}"
        );
    }
    let (status, body) = http_get(admin, "/api/status");
    assert_eq!(status, 200);
    let status_json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(status_json["services"][0]["name"], "echo");
    assert_eq!(status_json["services"][0]["backends"][0]["health"], "up");
    assert_eq!(
        status_json["services"][0]["backends"][0]["last_check"]["result"],
        "passed"
    );
    assert_eq!(http_get(admin, "/healthz"), (200, "ok\n".to_string()));
    assert_eq!(http_get(admin, "/nope").0, 404);
}

#[test]
fn demo_shows_balancing_and_a_backend_failing_and_coming_back() {
    let port = free_port();
    let admin = free_port();
    let out = Command::new(HAVIP)
        .args([
            "demo",
            "--port",
            &port.to_string(),
            "--admin-port",
            &admin.to_string(),
            "--seconds",
            "1",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("backend-1 backend-2 backend-3 backend-1 backend-2 backend-3"),
        "{stdout}"
    );
    assert!(stdout.contains("client-visible errors: 0"), "{stdout}");
    assert!(stdout.contains("backend-2 marked down after"), "{stdout}");
    assert!(stdout.contains("backend-2 marked up after"), "{stdout}");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
