//! `havip backend` and `havip status` against a running `havip run`, as an operator uses
//! them for an upgrade of one master: drain it with `--wait` (returns when its last
//! connection closed, while that connection keeps working and new clients go elsewhere),
//! see it in `havip status`, put it back, change a weight; and the refusals with their
//! reasons. Everything on 127.0.0.1; the control socket in a scratch directory.

#![allow(clippy::unwrap_used)] // test code: a panic is a failed test
#![allow(clippy::disallowed_types)] // blocking tests of a child process use wall-clock time

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use havip_test_support::node_config::{Health, NodeConfig, Service};
use havip_test_support::scratch::Scratch;
use havip_test_support::servers::{Reply, Server};

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

/// The messages of the child's JSON log lines, read on a thread.
fn log_lines(child: &mut Child) -> mpsc::Receiver<serde_json::Value> {
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { return };
            if let Ok(value) = serde_json::from_str(&line) {
                if tx.send(value).is_err() {
                    return;
                }
            }
        }
    });
    rx
}

fn next_line(rx: &mpsc::Receiver<serde_json::Value>, message: &str) -> serde_json::Value {
    let deadline = Instant::now() + LIMIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(v)
                if v["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with(message)) =>
            {
                return v
            }
            Ok(_) => {}
            Err(_) => panic!("no log line {message:?} within {LIMIT:?}"),
        }
    }
}

/// A connection through the balancer and the backend that greeted it.
fn connect(addr: SocketAddr) -> (TcpStream, String) {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(LIMIT)).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut name = String::new();
    reader.read_line(&mut name).unwrap();
    (stream, name.trim().to_string())
}

fn echo(stream: &mut TcpStream, payload: &[u8]) {
    stream.write_all(payload).unwrap();
    let mut back = vec![0u8; payload.len()];
    stream.read_exact(&mut back).unwrap();
    assert_eq!(back, payload);
}

fn havip(args: &[&str]) -> Output {
    Command::new(HAVIP).args(args).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

struct Daemon {
    _child: Running,
    service: SocketAddr,
    admin: SocketAddr,
    socket: String,
    config: String,
    _backends: Vec<Server>,
    _dir: Scratch,
}

fn start() -> Daemon {
    start_with(Scratch::new("runtime-control"), |config| config)
}

/// A daemon whose config `admin` changes, its files in `dir`.
fn start_with(dir: Scratch, admin: impl FnOnce(NodeConfig) -> NodeConfig) -> Daemon {
    let backends: Vec<Server> = (0..3)
        .map(|i| {
            Server::start(
                "127.0.0.1:0".parse().unwrap(),
                Reply::GreetThenEcho(format!("m{i}")),
            )
        })
        .collect();
    let socket = dir.path("havip.sock");
    let mut service = Service::new("api", "127.0.0.1:0").health(Health::tcp().interval("500ms"));
    for (i, backend) in backends.iter().enumerate() {
        service = service.named_backend(&format!("m{i}"), backend.addr);
    }
    let config = NodeConfig::new()
        .grace("2s")
        .log("format", "json")
        .log_level("info")
        .admin("127.0.0.1:0")
        .control_socket(socket.display())
        .service(service);
    let config = dir.write("havip.toml", &admin(config).to_toml());
    let mut child = Running(
        Command::new(HAVIP)
            .args(["run", "--config"])
            .arg(&config)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let logs = log_lines(&mut child.0);
    let service: SocketAddr = next_line(&logs, "listening")["addr"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let admin: SocketAddr = next_line(&logs, "admin endpoint")["addr"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    next_line(&logs, "control socket");
    // Keep draining the log so the child never blocks on a full pipe.
    std::thread::spawn(move || while logs.recv().is_ok() {});
    Daemon {
        _child: child,
        service,
        admin,
        socket: socket.display().to_string(),
        config: config.display().to_string(),
        _backends: backends,
        _dir: dir,
    }
}

#[test]
fn an_upgrade_of_one_master_with_drain_wait() {
    let daemon = start();
    let (mut held, name) = connect(daemon.service);
    let target = format!("api/{name}");
    let socket = daemon.socket.as_str();
    let started = Instant::now();
    let mut drain = Running(
        Command::new(HAVIP)
            .args([
                "backend",
                &target,
                "drain",
                "--wait",
                "--timeout",
                "30s",
                "--socket",
                socket,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // It waits: the open connection still moves bytes, new clients go to the other two.
    std::thread::sleep(Duration::from_millis(500));
    for round in 0..8u8 {
        echo(&mut held, &[round; 1000]);
        let (_other, got) = connect(daemon.service);
        assert_ne!(got, name, "the draining backend got a new client");
    }
    assert!(
        drain.0.try_wait().unwrap().is_none(),
        "--wait returned with a connection open"
    );
    // `havip status` shows it meanwhile, found through the config file's [control] socket.
    let status = havip(&["status", "--config", &daemon.config]);
    assert!(status.status.success(), "{}", text(&status.stderr));
    let table = text(&status.stdout);
    let row = table
        .lines()
        .find(|l| l.starts_with(&target))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(row.contains(" drain ") && row.contains(" up "), "{table}");
    assert!(
        table.contains("ADMIN") && table.contains("LAST CHECK"),
        "{table}"
    );
    drop(held);
    let deadline = Instant::now() + LIMIT;
    let code = loop {
        if let Some(code) = drain.0.try_wait().unwrap() {
            break code;
        }
        assert!(
            Instant::now() < deadline,
            "--wait did not return after the last close"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut out = String::new();
    drain
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(code.success(), "{out}");
    assert!(
        out.contains(&format!(
            "{target}: drain (was ready), weight 100, 1 connection open"
        )),
        "{out}"
    );
    assert!(
        out.contains("drained: 1 connection was open, it closed after"),
        "{out}"
    );
    assert!(started.elapsed() >= Duration::from_millis(500));

    // Upgraded: back in rotation.
    let ready = havip(&["backend", &target, "ready", "--socket", socket]);
    assert!(ready.status.success(), "{}", text(&ready.stderr));
    assert!(text(&ready.stdout).starts_with(&format!("{target}: ready (was drain)")));
    let names: Vec<String> = (0..6).map(|_| connect(daemon.service).1).collect();
    assert!(names.contains(&name), "{names:?}");

    // Weight, and the JSON for scripts.
    let weight = havip(&["backend", "api/m1", "weight", "300", "--socket", socket]);
    assert!(
        text(&weight.stdout).contains("weight 300 (was 100)"),
        "{}",
        text(&weight.stdout)
    );
    // HAProxy's relative form: a percentage of the configured weight.
    let half = havip(&["backend", "api/m2", "weight", "50%", "--socket", socket]);
    assert!(
        text(&half.stdout).contains("weight 50 (was 100)"),
        "{}{}",
        text(&half.stdout),
        text(&half.stderr)
    );
    let json = havip(&["status", "--json", "--socket", socket]);
    let status: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let backends = &status["services"][0]["backends"];
    assert_eq!(backends[1]["weight"], 300);
    assert_eq!(backends[2]["weight"], 50);
    assert_eq!(backends[0]["admin_state"], "ready");
}

#[test]
fn refusals_say_why_and_exit_non_zero() {
    let daemon = start();
    let socket = daemon.socket.as_str();
    let admin = daemon.admin.to_string();
    for (args, code, why) in [
        (
            vec!["backend", "api/nope", "drain", "--socket", socket],
            1,
            "service \"api\" has no backend \"nope\"; backends: m0, m1, m2",
        ),
        (
            vec!["backend", "web/m0", "drain", "--socket", socket],
            1,
            "no service \"web\"; services: api",
        ),
        (
            vec!["backend", "api/m0", "weight", "heavy", "--socket", socket],
            2,
            "not a number",
        ),
        (
            vec!["backend", "api/m0", "up", "--socket", socket],
            2,
            "unknown command \"up\"; expected ready, drain, maint or weight N",
        ),
        (
            vec!["backend", "api/m0", "weight", "20000", "--socket", socket],
            1,
            "0 to 10000",
        ),
        (
            vec!["backend", "m0", "drain", "--socket", socket],
            2,
            "expected SERVICE/BACKEND",
        ),
        (
            vec!["backend", "api/m0", "ready", "--wait", "--socket", socket],
            1,
            "would never empty",
        ),
        // The TCP endpoint takes no commands unless `[admin] commands = true`.
        (
            vec!["backend", "api/m0", "drain", "--admin", &admin],
            1,
            "commands are off",
        ),
        (
            vec!["status", "--socket", "/nonexistent/havip.sock"],
            2,
            "cannot connect to /nonexistent/havip.sock",
        ),
    ] {
        let out = havip(&args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains(why),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    // Reading over the TCP endpoint is allowed.
    let status = havip(&["status", "--admin", &admin]);
    assert!(status.status.success(), "{}", text(&status.stderr));
    assert!(text(&status.stdout).contains("api/m0"));
    let json = havip(&["status", "--json", "--socket", socket]);
    let status: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    for backend in status["services"][0]["backends"].as_array().unwrap() {
        assert_eq!(
            backend["admin_state"], "ready",
            "a refused command changed something"
        );
        assert_eq!(backend["weight"], 100);
    }
    assert!(Path::new(socket).exists());
}

/// `openssl passwd -6 -salt saltsalt secret`.
const SHA512_OF_SECRET: &str = "$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1";

#[test]
fn commands_over_the_admin_endpoint_with_tls_and_a_hashed_password() {
    havip_test_support::require!(havip_test_support::Need::Openssl);
    let dir = Scratch::new("runtime-control-tls");
    let pki = havip_test_support::pki::Pki::generate(&dir);
    let (cert, key) = (
        pki.server_cert.display().to_string(),
        pki.server_key.display().to_string(),
    );
    let daemon = start_with(dir, |config| {
        config
            .admin_commands()
            .admin_key(
                "auth",
                havip_test_support::node_config::Value::List(vec![format!(
                    "ops:{SHA512_OF_SECRET}"
                )]),
            )
            .admin_key("tls_cert", cert)
            .admin_key("tls_key", key)
    });
    let admin = daemon.admin.to_string();
    let ca = pki.ca_cert.display().to_string();
    let over_tls = |extra: &[&str]| {
        let mut args = extra.to_vec();
        args.extend(["--admin", &admin, "--tls", "--ca", &ca]);
        havip(&args)
    };
    let drained = over_tls(&["backend", "api/m2", "drain", "--auth", "ops:secret"]);
    assert!(drained.status.success(), "{}", text(&drained.stderr));
    assert!(
        text(&drained.stdout).starts_with("api/m2: drain (was ready)"),
        "{}",
        text(&drained.stdout)
    );
    let status = over_tls(&["status", "--auth", "ops:secret"]);
    assert!(status.status.success(), "{}", text(&status.stderr));
    let row = text(&status.stdout);
    assert!(
        row.lines()
            .any(|l| l.starts_with("api/m2") && l.contains(" drain ")),
        "{row}"
    );
    // Without the password, or with a wrong one: refused, and said so.
    for auth in [None, Some("ops:wrong")] {
        let mut args = vec!["backend", "api/m2", "ready"];
        if let Some(auth) = auth {
            args.extend(["--auth", auth]);
        }
        let refused = over_tls(&args);
        assert_eq!(refused.status.code(), Some(1), "{auth:?}");
        assert!(
            text(&refused.stderr).contains("refused (401): authentication required"),
            "{}",
            text(&refused.stderr)
        );
    }
    // Plain HTTP to a TLS endpoint gets no answer.
    let plain = havip(&["status", "--admin", &admin]);
    assert_eq!(plain.status.code(), Some(2), "{}", text(&plain.stderr));
}
