//! systemd's side of the notify protocol, played by the test: it binds the `NOTIFY_SOCKET`
//! datagram socket systemd would, sets `WATCHDOG_USEC`, runs `havip run` and reads what
//! arrives: `READY=1` once the listeners answer, `STATUS=` lines that follow the backends,
//! `WATCHDOG=1` at about half the interval (also across a SIGHUP, which must not stop the
//! process), and `STOPPING=1` on SIGTERM. Everything on 127.0.0.1.

#![allow(clippy::unwrap_used)] // test code: a panic is a failed test
#![allow(clippy::disallowed_types)] // a child process and its datagrams are timed with the wall clock

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use havip_test_support::node_config::{Health, NodeConfig, Service};
use havip_test_support::scratch::Scratch;
use havip_test_support::servers::{Reply, Server};
use havip_test_support::wait_for;

const HAVIP: &str = env!("CARGO_BIN_EXE_havip");
const LIMIT: Duration = Duration::from_secs(20);
/// The watchdog interval the test gives havip: pings are due every 500 ms.
const WATCHDOG: Duration = Duration::from_secs(1);

/// A child process killed (by its PID) on drop if it is still running.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One datagram from havip and when it arrived.
struct Message {
    at: Instant,
    lines: Vec<String>,
}

/// The notify socket, read on a thread.
fn listen(socket: UnixDatagram) -> mpsc::Receiver<Message> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 4096];
        loop {
            let Ok(n) = socket.recv(&mut buf) else { return };
            let text = String::from_utf8_lossy(&buf[..n]).to_string();
            let lines = text.lines().map(str::to_string).collect();
            if tx
                .send(Message {
                    at: Instant::now(),
                    lines,
                })
                .is_err()
            {
                return;
            }
        }
    });
    rx
}

/// Messages until one has a line starting with `prefix` (that one last), within [`LIMIT`].
fn until(rx: &mpsc::Receiver<Message>, prefix: &str) -> Vec<Message> {
    let deadline = Instant::now() + LIMIT;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let message = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no {prefix} within {LIMIT:?}"));
        let done = message.lines.iter().any(|l| l.starts_with(prefix));
        seen.push(message);
        if done {
            return seen;
        }
    }
}

fn has(message: &Message, line: &str) -> bool {
    message.lines.iter().any(|l| l == line)
}

/// The address in the first `listening ... addr=` log line on the child's stderr.
fn listening_addr(child: &mut Child) -> SocketAddr {
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { return };
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if v["message"] == "listening" {
                let _ = tx.send(v["addr"].as_str().unwrap_or("").to_string());
            }
        }
    });
    rx.recv_timeout(LIMIT).unwrap().parse().unwrap()
}

fn signal(child: &Child, name: &str) {
    // To the PID of the child this test started.
    let status = Command::new("kill")
        .args([name, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn havip_speaks_the_notify_protocol_to_systemd() {
    let mut backend = Server::start("127.0.0.1:0".parse().unwrap(), Reply::Echo);
    let dir = Scratch::new("notify");
    let socket_path = dir.path("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    let messages = listen(socket);
    let config = NodeConfig::new().grace("5s").log("format", "json").service(
        Service::new("api", "127.0.0.1:0")
            .health(Health::tcp().interval("100ms").fall(1))
            .named_backend("b1", backend.addr),
    );
    let config = dir.write("havip.toml", &config.to_toml());
    let mut child = Running(
        Command::new(HAVIP)
            .args(["run", "--config"])
            .arg(&config)
            .env("NOTIFY_SOCKET", &socket_path)
            .env("WATCHDOG_USEC", WATCHDOG.as_micros().to_string())
            .env_remove("WATCHDOG_PID")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );

    // READY=1, with a first status line; the listener answers by then.
    let before_ready = until(&messages, "READY=1");
    let ready = before_ready.last().unwrap();
    assert!(
        has(ready, "STATUS=api 1/1 up"),
        "first status: {:?}",
        ready.lines
    );
    let proxy = listening_addr(&mut child.0);
    TcpStream::connect(proxy).expect("READY=1 came before the listener answered");

    // Watchdog pings at about half the interval.
    let pings = pings_for(&messages, Duration::from_secs(3));
    assert!(
        (4..=9).contains(&pings.len()),
        "{} pings in 3 s with WATCHDOG_USEC = 1 s",
        pings.len()
    );
    for gap in pings.windows(2).map(|w| w[1] - w[0]) {
        assert!(
            gap > Duration::from_millis(300) && gap < Duration::from_millis(800),
            "watchdog gap {gap:?}, due every 500 ms"
        );
    }

    // The status follows the backend down.
    backend.stop();
    until(&messages, "STATUS=api 0/1 up");

    // SIGHUP (what the unit's ExecReload sends) does not stop havip: the pings go on.
    signal(&child.0, "-HUP");
    assert!(pings_for(&messages, Duration::from_millis(1500)).len() >= 2);
    assert!(
        child.0.try_wait().unwrap().is_none(),
        "SIGHUP stopped havip"
    );

    // SIGTERM: STOPPING=1, then a clean exit.
    signal(&child.0, "-TERM");
    let stopping = until(&messages, "STOPPING=1");
    assert!(stopping
        .last()
        .unwrap()
        .lines
        .iter()
        .any(|l| l.starts_with("STATUS=stopping")));
    let status = wait_for(LIMIT, || child.0.try_wait().unwrap()).expect("havip did not exit");
    assert!(status.success(), "exit status {status:?}");
}

/// The arrival times of `WATCHDOG=1` over the next `span`.
fn pings_for(messages: &mpsc::Receiver<Message>, span: Duration) -> Vec<Instant> {
    let end = Instant::now() + span;
    let mut pings = Vec::new();
    while let Ok(message) = messages.recv_timeout(end.saturating_duration_since(Instant::now())) {
        if has(&message, "WATCHDOG=1") {
            pings.push(message.at);
        }
        if Instant::now() >= end {
            break;
        }
    }
    pings
}

#[test]
fn without_a_notify_socket_havip_runs_as_before() {
    // Not started by systemd: no socket, no watchdog; havip serves and stops as always.
    let backend = Server::start("127.0.0.1:0".parse().unwrap(), Reply::Echo);
    let dir = Scratch::new("no-notify");
    let config = NodeConfig::new().log("format", "json").service(
        Service::new("api", "127.0.0.1:0")
            .health(Health::tcp())
            .named_backend("b1", backend.addr),
    );
    let config = dir.write("havip.toml", &config.to_toml());
    let mut child = Running(
        Command::new(HAVIP)
            .args(["run", "--config"])
            .arg(&config)
            .env_remove("NOTIFY_SOCKET")
            .env("WATCHDOG_USEC", "1000000")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let proxy = listening_addr(&mut child.0);
    TcpStream::connect(proxy).unwrap();
    signal(&child.0, "-TERM");
    let status = wait_for(LIMIT, || child.0.try_wait().unwrap()).expect("havip did not exit");
    assert!(status.success(), "exit status {status:?}");
}

/// The VRRP side in a network namespace: READY=1 comes once the instance has started (it
/// waits as backup), then the status line follows it to MASTER, and SIGTERM sends
/// STOPPING=1 before the VIP is handed back. The notify socket is a path, so it is reached
/// from inside the namespace as systemd's is from a service with PrivateNetwork=.
#[test]
fn the_status_line_follows_the_vrrp_instance() {
    use havip_test_support::lab::Lab;
    use havip_test_support::node_config::Vrrp;
    use havip_test_support::{require, serial, Need};
    use std::net::{IpAddr, Ipv4Addr};

    require!(Need::Root, Need::Netns);
    let _serial = serial();
    let vip = Ipv4Addr::new(10, 77, 0, 203);
    let dir = Scratch::new("notify-vrrp");
    let socket_path = dir.path("notify.sock");
    let messages = listen(UnixDatagram::bind(&socket_path).unwrap());
    let lab = Lab::new("sn", 1);
    lab.start_name_server(0, 9000);
    let config = NodeConfig::new()
        .grace("1s")
        .service(
            Service::new("api", format!("{vip}:8443"))
                .health(Health::tcp().interval("100ms"))
                .named_backend("b1", "127.0.0.1:9000"),
        )
        .vrrp(
            Vrrp::new("VI_1", 45)
                .priority(100)
                .advert_interval("1s")
                .vip(format!("{vip}/24")),
        );
    let path = lab.write("havip.toml", &config.to_toml());
    let socket = socket_path.display().to_string();
    let pid = lab.spawn(
        &lab.nodes[0].clone(),
        HAVIP,
        &["run", "--config", &path.display().to_string()],
        "node0.log",
        &[("NOTIFY_SOCKET", &socket), ("WATCHDOG_USEC", "2000000")],
    );
    let ready = until(&messages, "READY=1");
    let first = ready.last().unwrap();
    // Started: the instance waits Master_Down_Interval (3 s + skew) as backup, and READY
    // does not wait for the election.
    assert!(
        first
            .lines
            .iter()
            .any(|l| l.starts_with("STATUS=VI_1 BACKUP; api ")),
        "{:?}\n{}",
        first.lines,
        lab.all_logs()
    );
    assert!(!lab.node_has_address(0, IpAddr::V4(vip)));
    until(&messages, "STATUS=VI_1 MASTER; api 1/1 up");
    assert!(lab.node_has_address(0, IpAddr::V4(vip)));
    lab.signal(pid, "TERM");
    until(&messages, "STOPPING=1");
    assert_eq!(lab.wait(pid, LIMIT), Some(Some(0)), "{}", lab.all_logs());
    assert!(!lab.node_has_address(0, IpAddr::V4(vip)));
}
