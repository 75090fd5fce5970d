//! `havip reload` and SIGHUP on a running `havip run`, on loopback (issue #11 items 1, 2 and
//! 4): each kind of change applied while a connect loop runs and a long-lived connection
//! moves bytes; an invalid file and an unbindable address change nothing; the answer, the
//! metrics and `/api/status` say what happened; the other signals do what they are
//! documented to do.

#![allow(clippy::unwrap_used)] // test code: a panic is a failed test
#![allow(clippy::disallowed_types)] // blocking tests of a child process use wall-clock time

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
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

fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn http(addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(LIMIT)).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

fn status(admin: SocketAddr) -> serde_json::Value {
    serde_json::from_str(&http(admin, "GET", "/api/status").1).unwrap()
}

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

fn havip_reload(config: &Path) -> Output {
    Command::new(HAVIP)
        .args(["reload", "--config"])
        .arg(config)
        .output()
        .unwrap()
}

fn signal(child: &Child, name: &str) {
    let sent = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
}

/// Connects in a loop (bounded: 50,000 connects or until stopped); every connect must get
/// the greeting of a backend.
struct ConnectLoop {
    ok: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Vec<String>>,
}

impl ConnectLoop {
    fn start(target: SocketAddr) -> ConnectLoop {
        let ok = Arc::<AtomicU64>::default();
        let failed = Arc::<AtomicU64>::default();
        let stop = Arc::<AtomicBool>::default();
        let (o, f, s) = (ok.clone(), failed.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut errors = Vec::new();
            for _ in 0..50_000 {
                if s.load(Relaxed) {
                    break;
                }
                match greeting(target) {
                    Ok(_) => o.fetch_add(1, Relaxed),
                    Err(error) => {
                        errors.push(error);
                        f.fetch_add(1, Relaxed)
                    }
                };
                std::thread::sleep(Duration::from_millis(2));
            }
            errors
        });
        ConnectLoop {
            ok,
            failed,
            stop,
            thread,
        }
    }

    fn finish(self) -> (u64, u64, Vec<String>) {
        self.stop.store(true, Relaxed);
        let errors = self.thread.join().unwrap();
        (self.ok.load(Relaxed), self.failed.load(Relaxed), errors)
    }
}

/// Connect and read the backend's greeting line.
fn greeting(target: SocketAddr) -> Result<String, String> {
    let mut stream =
        TcpStream::connect_timeout(&target, Duration::from_secs(2)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while byte[0] != b'\n' {
        match stream.read(&mut byte) {
            Ok(1) => line.push(byte[0]),
            Ok(_) => return Err("closed before the greeting".into()),
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(String::from_utf8_lossy(&line).trim().to_string())
}

/// A connection kept open that echoes a chunk on each call.
struct Chatty(TcpStream);

impl Chatty {
    fn open(target: SocketAddr) -> Chatty {
        let mut stream = TcpStream::connect(target).unwrap();
        stream.set_read_timeout(Some(LIMIT)).unwrap();
        let mut byte = [0u8; 1];
        while byte[0] != b'\n' {
            stream.read_exact(&mut byte).unwrap();
        }
        Chatty(stream)
    }

    fn round_trip(&mut self, n: u8) {
        let chunk = vec![n; 1000];
        self.0.write_all(&chunk).unwrap();
        let mut back = vec![0u8; chunk.len()];
        self.0.read_exact(&mut back).unwrap();
        assert_eq!(back, chunk);
    }
}

/// Plain TCP checks, quick enough for a test: an added backend is in service after two.
fn checks() -> Health {
    Health::tcp().interval("200ms").rise(2)
}

fn node(admin: SocketAddr, api: SocketAddr, backends: &[(&str, SocketAddr)]) -> NodeConfig {
    let mut service = Service::new("api", api).health(checks());
    for (name, addr) in backends {
        service = service.named_backend(name, *addr);
    }
    base(admin).service(service)
}

/// The settings every config of these tests shares, with no service.
fn base(admin: SocketAddr) -> NodeConfig {
    NodeConfig::new()
        .grace("5s")
        .log_connections(false)
        .admin(admin)
        .admin_commands()
}

/// A running `havip run` over backends b1 and b2 on loopback, with its config file.
struct Node {
    b1: Server,
    b2: Server,
    admin: SocketAddr,
    api: SocketAddr,
    dir: Scratch,
    path: std::path::PathBuf,
    child: Running,
}

impl Node {
    fn start() -> Node {
        let b1 = Server::start(
            "127.0.0.1:0".parse().unwrap(),
            Reply::GreetThenEcho("b1".into()),
        );
        let b2 = Server::start(
            "127.0.0.1:0".parse().unwrap(),
            Reply::GreetThenEcho("b2".into()),
        );
        let (admin, api) = (free_port(), free_port());
        let dir = Scratch::new("reload");
        let path = dir.write(
            "havip.toml",
            &node(admin, api, &[("b1", b1.addr)]).to_toml(),
        );
        let log = std::fs::File::create(dir.path("havip.log")).unwrap();
        let child = Running(
            Command::new(HAVIP)
                .args(["run", "--config"])
                .arg(&path)
                .stderr(Stdio::from(log))
                .spawn()
                .unwrap(),
        );
        wait_for(LIMIT, || greeting(api).ok()).expect("havip serves");
        assert_eq!(status(admin)["config"]["checksum"], sha256(&path));
        Node {
            b1,
            b2,
            admin,
            api,
            dir,
            path,
            child,
        }
    }

    fn write(&self, config: &NodeConfig) {
        std::fs::write(&self.path, config.to_toml()).unwrap();
    }

    fn backends(&self) -> usize {
        status(self.admin)["services"][0]["backends"]
            .as_array()
            .unwrap()
            .len()
    }

    /// A valid change through `havip reload`: a backend added; the answer says so.
    fn add_a_backend(&self) {
        let both = [("b1", self.b1.addr), ("b2", self.b2.addr)];
        self.write(&node(self.admin, self.api, &both));
        let out = havip_reload(&self.path);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stdout}{stderr}");
        assert!(stdout.contains("backend added: api/b2"), "{stdout}");
        assert!(stdout.contains(&sha256(&self.path)), "{stdout}");
        assert_eq!(status(self.admin)["config"]["checksum"], sha256(&self.path));
        assert_eq!(self.backends(), 2);
    }

    /// An invalid file: exit 1, every problem with file:line:key, nothing changes.
    fn refuse_an_invalid_file(&self, running_checksum: &str) {
        let good = std::fs::read_to_string(&self.path).unwrap();
        let bad = good.replacen("grace = \"5s\"", "grace = \"5s\"\nworkerz = 2", 1);
        std::fs::write(&self.path, &bad).unwrap();
        let out = havip_reload(&self.path);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        let shown = self.path.display().to_string();
        assert!(
            stderr.contains(&format!("{shown}:")) && stderr.contains("global.workerz"),
            "the problem names file, line and key: {stderr}"
        );
        assert!(stderr.contains("the running config stays"), "{stderr}");
        assert_eq!(status(self.admin)["config"]["checksum"], running_checksum);
    }

    /// A valid file that cannot be applied (an address in use): rolled back whole, so the
    /// backend it also adds is not added either.
    fn roll_back_an_unbindable_file(&self, running_checksum: &str) {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let busy = taken.local_addr().unwrap();
        let unreachable: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let api = Service::new("api", self.api)
            .health(checks())
            .named_backend("b1", self.b1.addr)
            .named_backend("b2", self.b2.addr)
            .named_backend("b3", unreachable);
        let other = Service::new("other", busy)
            .health(checks())
            .named_backend("b1", self.b1.addr);
        self.write(&base(self.admin).service(api).service(other));
        let out = havip_reload(&self.path);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("could not be applied") && stderr.contains(&busy.to_string()),
            "{stderr}"
        );
        let unchanged = status(self.admin);
        assert_eq!(unchanged["config"]["checksum"], running_checksum);
        assert_eq!(unchanged["services"].as_array().unwrap().len(), 1);
        assert_eq!(self.backends(), 2, "b3 was not added");
    }

    /// SIGHUP with a valid change (b1 removed): applied, and the process lives on. b2 went
    /// through its checks (`rise`) after it was added; it must be in service first.
    fn remove_a_backend_by_sighup(&self) {
        wait_for(LIMIT, || {
            let backends = status(self.admin)["services"][0]["backends"].clone();
            (backends[1]["name"] == "b2" && backends[1]["health"] == "up").then_some(())
        })
        .expect("the added backend comes into service");
        self.write(&node(self.admin, self.api, &[("b2", self.b2.addr)]));
        signal(&self.child.0, "HUP");
        let want = sha256(&self.path);
        wait_for(LIMIT, || {
            (status(self.admin)["config"]["checksum"] == want.as_str()).then_some(())
        })
        .expect("SIGHUP applied the new file");
        for _ in 0..5 {
            let answer = greeting(self.api).unwrap();
            assert_eq!(answer, "b2", "new connections follow the new config");
        }
    }

    fn reload_metrics_count(&self, samples: &[&str]) {
        let (_, metrics) = http(self.admin, "GET", "/metrics");
        for sample in samples {
            assert!(metrics.contains(sample), "{sample} in\n{metrics}");
        }
    }

    /// The admin endpoint moves and takes credentials: rebound at once, the old address
    /// closed, the new one asks for them and `havip reload --auth` gives them.
    fn move_the_admin_endpoint(&mut self) {
        let moved = free_port();
        let auth = vec!["ops:s3cret".to_string()];
        self.write(&node(moved, self.api, &[("b2", self.b2.addr)]).admin_key("auth", auth));
        signal(&self.child.0, "HUP");
        wait_for(LIMIT, || TcpStream::connect(moved).ok()).expect("the admin endpoint moved");
        let old = TcpStream::connect(self.admin);
        assert!(old.is_err(), "the old admin address is closed");
        assert_eq!(
            http(moved, "GET", "/api/status").0,
            401,
            "auth is asked for"
        );
        let out = Command::new(HAVIP)
            .args(["reload", "--config"])
            .arg(&self.path)
            .args(["--auth", "ops:s3cret"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        self.admin = moved;
    }
}

#[test]
fn reloads_apply_in_place_refuse_bad_files_and_drop_nothing() {
    let mut node = Node::start();
    let mut open = Chatty::open(node.api);
    let connects = ConnectLoop::start(node.api);

    node.add_a_backend();
    open.round_trip(1);
    let running = sha256(&node.path);
    node.refuse_an_invalid_file(&running);
    node.roll_back_an_unbindable_file(&running);
    node.remove_a_backend_by_sighup();
    assert!(
        node.child.0.try_wait().unwrap().is_none(),
        "SIGHUP did not kill havip"
    );
    open.round_trip(2);

    let (ok, failed, errors) = connects.finish();
    assert_eq!(failed, 0, "failed connects across the reloads: {errors:?}");
    assert!(ok > 20, "the connect loop ran: {ok}");
    node.reload_metrics_count(&[
        "havip_config_reloads_total{result=\"applied\"} 2",
        "havip_config_reloads_total{result=\"rejected\"} 1",
        "havip_config_reloads_total{result=\"failed\"} 1",
        "havip_config_last_reload_successful 1",
    ]);
    node.move_the_admin_endpoint();
    open.round_trip(3);

    // The other signals: USR1 logs the status; QUIT stops gracefully with exit 0 once the
    // open connection closes.
    signal(&node.child.0, "USR1");
    let log_path = node.dir.path("havip.log");
    wait_for(LIMIT, || {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        (text.contains("status") && text.contains("checksum")).then_some(())
    })
    .expect("SIGUSR1 logs the status");
    signal(&node.child.0, "QUIT");
    open.round_trip(4);
    drop(open);
    let child = &mut node.child.0;
    let exited = wait_for(LIMIT, || child.try_wait().unwrap()).expect("havip exits on QUIT");
    assert!(exited.success(), "{exited:?}");
}

/// The systemd side of a notify socket: what the service sends (`MAINPID=`, `READY=1`).
struct NotifySocket(std::os::unix::net::UnixDatagram);

impl NotifySocket {
    fn bind(path: &Path) -> NotifySocket {
        let socket = std::os::unix::net::UnixDatagram::bind(path).unwrap();
        socket.set_read_timeout(Some(LIMIT)).unwrap();
        NotifySocket(socket)
    }

    /// Every datagram that arrives within `window`.
    fn within(&self, window: Duration) -> String {
        self.0.set_read_timeout(Some(window)).unwrap();
        let text = self.until("\u{0}never sent");
        self.0.set_read_timeout(Some(LIMIT)).unwrap();
        text
    }

    /// Every datagram until one contains `want` (or the limit passes).
    fn until(&self, want: &str) -> String {
        let mut all = String::new();
        let mut buf = [0u8; 4096];
        while !all.contains(want) {
            match self.0.recv(&mut buf) {
                Ok(n) => all.push_str(&String::from_utf8_lossy(&buf[..n])),
                Err(_) => break,
            }
        }
        all
    }
}

#[test]
fn an_upgrade_hands_the_sockets_over_drops_no_connect_and_cuts_no_connection() {
    let b1 = Server::start(
        "127.0.0.1:0".parse().unwrap(),
        Reply::GreetThenEcho("b1".into()),
    );
    let (admin, api) = (free_port(), free_port());
    let dir = Scratch::new("upgrade");
    let path = dir.write(
        "havip.toml",
        &node(admin, api, &[("b1", b1.addr)]).to_toml(),
    );
    let notify = NotifySocket::bind(&dir.path("notify.sock"));
    let log = std::fs::File::create(dir.path("havip.log")).unwrap();
    let mut old = Running(
        Command::new(HAVIP)
            .args(["run", "--config"])
            .arg(&path)
            .env("NOTIFY_SOCKET", dir.path("notify.sock"))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap(),
    );
    wait_for(LIMIT, || greeting(api).ok()).expect("havip serves");
    assert_eq!(status(admin)["pid"], old.0.id());
    let mut open = Chatty::open(api);
    let connects = ConnectLoop::start(api);
    std::thread::sleep(Duration::from_millis(200));

    let out = Command::new(HAVIP)
        .args(["upgrade", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let log_path = dir.path("havip.log");
    let logged = || std::fs::read_to_string(&log_path).unwrap_or_default();
    assert!(
        out.status.success(),
        "{stdout}{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        logged()
    );
    let new_pid: u32 = stdout
        .split("PID ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .and_then(|pid| pid.parse().ok())
        .unwrap_or_else(|| panic!("the new PID in {stdout:?}"));
    let new = Pid(new_pid);
    assert_ne!(new_pid, old.0.id());
    // systemd learns the new main PID from the new process itself.
    // The old process said READY at its own start; the new one says MAINPID, then READY.
    let mainpid = format!("MAINPID={new_pid}");
    let told = notify.until(&mainpid);
    let after = told.split(&mainpid).nth(1).unwrap_or_default();
    assert!(after.contains("READY=1"), "{told:?}");
    // The admin endpoint and new connections are the new process's now.
    assert_eq!(status(admin)["pid"], new_pid);
    std::thread::sleep(Duration::from_millis(200));
    let (ok, failed, errors) = connects.finish();
    assert_eq!(
        failed,
        0,
        "failed connects across the upgrade: {errors:?}\n{}",
        logged()
    );
    assert!(ok > 20, "the connect loop ran: {ok}");

    // The old process keeps the connection it had open, then exits 0 when it closes.
    open.round_trip(7);
    assert!(
        old.0.try_wait().unwrap().is_none(),
        "the old process drains first"
    );
    drop(open);
    let exited = wait_for(LIMIT, || old.0.try_wait().unwrap()).expect("the old process exits");
    assert!(exited.success(), "{exited:?}\n{}", logged());
    let late = notify.within(Duration::from_millis(300));
    assert!(
        !late.contains("STOPPING=1"),
        "the old process must not tell systemd the service stops: {late:?}"
    );
    assert_eq!(greeting(api).unwrap(), "b1", "the new process serves on");
    assert!(
        logged().contains("handed over to the new process"),
        "{}",
        logged()
    );

    // The new process upgrades in turn (its successor is the third process).
    let out = Command::new(HAVIP)
        .args(["upgrade", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        logged()
    );
    let third = wait_for(LIMIT, || {
        let pid = status(admin)["pid"].as_u64()? as u32;
        (pid != new_pid).then_some(pid)
    })
    .expect("a third process serves");
    let third = Pid(third);
    wait_for(LIMIT, || {
        (!Path::new(&format!("/proc/{new_pid}")).exists()).then_some(())
    })
    .expect("the second process exits once drained");
    assert_eq!(greeting(api).unwrap(), "b1");
    std::mem::forget(new);
    drop(third);
}

/// A process this test caused to start (the upgraded havip), stopped with SIGTERM by its PID
/// on drop.
struct Pid(u32);

impl Drop for Pid {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.0.to_string()).status();
        // It answers SIGTERM by draining; give it a moment, then make sure.
        for _ in 0..100 {
            if !Path::new(&format!("/proc/{}", self.0)).exists() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = Command::new("kill")
            .args(["-KILL", &self.0.to_string()])
            .status();
    }
}

/// A JSON command to the admin endpoint (commands take a JSON body).
fn command(addr: SocketAddr, path: &str, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(LIMIT)).unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response[9..12].parse().unwrap();
    let text = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, text)
}

/// Issue #12: what an operator set at run time survives a reload for a backend that stays
/// (HAProxy loses it without a state file), while the reload's own changes apply.
#[test]
fn runtime_state_and_weight_survive_a_sighup_reload() {
    let n = Node::start();
    let (code, body) = command(n.admin, "/api/backends/api/b1", r#"{"state": "drain"}"#);
    assert_eq!(code, 200, "{body}");
    let (code, body) = command(n.admin, "/api/backends/api/b1", r#"{"weight": 7}"#);
    assert_eq!(code, 200, "{body}");
    let both = [("b1", n.b1.addr), ("b2", n.b2.addr)];
    n.write(&node(n.admin, n.api, &both));
    signal(&n.child.0, "HUP");
    let want = sha256(&n.path);
    wait_for(LIMIT, || {
        (status(n.admin)["config"]["checksum"] == want.as_str()).then_some(())
    })
    .expect("SIGHUP applied the new file");
    let backends = status(n.admin)["services"][0]["backends"].clone();
    assert_eq!(backends.as_array().unwrap().len(), 2, "b2 was added");
    assert_eq!(backends[0]["name"], "b1");
    assert_eq!(
        backends[0]["admin_state"], "drain",
        "the operator's drain stays"
    );
    assert_eq!(
        backends[0]["weight"], 7,
        "and so does the operator's weight"
    );
    assert_eq!(backends[1]["admin_state"], "ready");
    // Drained: once b2 is in service, new connections go only there.
    wait_for(LIMIT, || {
        (status(n.admin)["services"][0]["backends"][1]["health"] == "up").then_some(())
    })
    .expect("b2 comes into service");
    for _ in 0..5 {
        assert_eq!(greeting(n.api).unwrap(), "b2");
    }
}
