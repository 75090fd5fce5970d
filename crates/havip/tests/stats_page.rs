//! The stats page in a real browser: headless Chromium (Debian `chromium`) loads `/` from a
//! running `havip run`, driven over the DevTools protocol on `--remote-debugging-pipe`
//! (two FIFOs handed to it as descriptors 3 and 4 by `sh`, so no WebSocket client and no
//! `unsafe` are needed). It checks that the rendered DOM has every backend row, that a state
//! change made with `havip backend` shows up without a reload, that a drain click takes
//! effect in the daemon, and that the page fits a phone's width. Screenshots (laptop and
//! phone) are kept under `target/tmp/stats_page/`. A second test runs havip with a VRRP
//! instance and a tracker in a network namespace (Chromium inside it too) and checks the
//! VRRP card: state, priorities, master, trackers and recent transitions.

#![allow(clippy::unwrap_used)] // test code: a panic is a failed test
#![allow(clippy::disallowed_types)] // blocking tests of child processes use wall-clock time

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use base64ct::Encoding;
use havip_test_support::guard::Need;
use havip_test_support::lab::Lab;
use havip_test_support::node_config::{Health, NodeConfig, Service, Tracker, Vrrp};
use havip_test_support::scratch::Scratch;
use havip_test_support::servers::{Reply, Server};
use havip_test_support::{require, serial};
use serde_json::{json, Value};

const HAVIP: &str = env!("CARGO_BIN_EXE_havip");
const LIMIT: Duration = Duration::from_secs(30);

/// A child process killed (by its PID) on drop if it is still running.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A DevTools protocol session with one page, over Chromium's debugging pipe.
struct Browser {
    to_browser: std::fs::File,
    replies: mpsc::Receiver<Value>,
    next_id: u64,
    session: String,
    chromium: Running,
}

impl Drop for Browser {
    /// Close Chromium the polite way, so its helper processes end with it; kill it (by its
    /// PID, through [`Running`]) if it is still there after five seconds.
    fn drop(&mut self) {
        let close = json!({ "id": 0, "method": "Browser.close" });
        let mut bytes = close.to_string().into_bytes();
        bytes.push(0);
        if self.to_browser.write_all(&bytes).is_ok() {
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if !matches!(self.chromium.0.try_wait(), Ok(None)) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

impl Browser {
    /// Start headless Chromium with its profile in `dir` and open `url` in a page; inside
    /// the network namespace `netns` when given (`ip netns exec`).
    fn open(dir: &Path, url: &str, netns: Option<&str>) -> Browser {
        let (commands, answers) = (dir.join("cdp-in"), dir.join("cdp-out"));
        for fifo in [&commands, &answers] {
            assert!(Command::new("mkfifo").arg(fifo).status().unwrap().success());
        }
        // Root needs --no-sandbox; the profile stays in the scratch directory.
        let inside = netns.map_or(String::new(), |ns| format!("ip netns exec {ns} "));
        let script = format!(
            "exec {inside}{} --headless=new --no-sandbox --disable-gpu --no-first-run \
             --disable-extensions --disable-background-networking --user-data-dir={} \
             --window-size=1280,900 --remote-debugging-pipe about:blank 3<{} 4>{}",
            Need::Chromium.path().display(),
            dir.join("profile").display(),
            commands.display(),
            answers.display()
        );
        let chromium = Running(
            Command::new("sh")
                .args(["-c", &script])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        // In the order sh opens them: its descriptor 3 first, then 4.
        let to_browser = std::fs::OpenOptions::new()
            .write(true)
            .open(&commands)
            .unwrap();
        let from_browser = std::fs::File::open(&answers).unwrap();
        let (tx, replies) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(from_browser);
            loop {
                let mut message = Vec::new();
                match reader.read_until(0, &mut message) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                message.pop();
                if let Ok(value) = serde_json::from_slice::<Value>(&message) {
                    if tx.send(value).is_err() {
                        return;
                    }
                }
            }
        });
        let mut browser = Browser {
            to_browser,
            replies,
            next_id: 0,
            session: String::new(),
            chromium,
        };
        let target = browser.call("Target.createTarget", json!({ "url": url }));
        let target_id = target["targetId"].as_str().unwrap().to_string();
        let attached = browser.call(
            "Target.attachToTarget",
            json!({ "targetId": target_id, "flatten": true }),
        );
        browser.session = attached["sessionId"].as_str().unwrap().to_string();
        browser
    }

    /// One command (to the page once attached); its result.
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({ "id": id, "method": method, "params": params });
        if !self.session.is_empty() {
            message["sessionId"] = self.session.clone().into();
        }
        let mut bytes = message.to_string().into_bytes();
        bytes.push(0);
        self.to_browser.write_all(&bytes).unwrap();
        let deadline = Instant::now() + LIMIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let reply = self
                .replies
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no answer to {method} within {LIMIT:?}"));
            if reply["id"] == id {
                assert!(reply["error"].is_null(), "{method}: {reply}");
                return reply["result"].clone();
            }
        }
    }

    /// The value of a JavaScript expression in the page.
    fn eval(&mut self, expression: &str) -> Value {
        let result = self.call(
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true }),
        );
        assert!(
            result["exceptionDetails"].is_null(),
            "{expression}: {result}"
        );
        result["result"]["value"].clone()
    }

    /// Evaluate `expression` until it is `true` (at most [`LIMIT`]).
    fn wait_until(&mut self, what: &str, expression: &str) {
        let deadline = Instant::now() + LIMIT;
        while self.eval(expression) != json!(true) {
            assert!(Instant::now() < deadline, "the page never showed {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A PNG of the page as it is now, written to `path`.
    fn screenshot(&mut self, path: &Path) {
        let shot = self.call("Page.captureScreenshot", json!({ "format": "png" }));
        let png = base64ct::Base64::decode_vec(shot["data"].as_str().unwrap()).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        std::fs::write(path, png).unwrap();
    }
}

/// The admin state the page shows for `backend`.
fn shown_state(backend: &str) -> String {
    format!(
        "(document.querySelector('tr[data-backend=\"{backend}\"] [data-field=admin_state]') || {{}}).textContent"
    )
}

fn daemon_state(socket: &Path, backend: usize) -> String {
    let out = Command::new(HAVIP)
        .args(["status", "--json", "--socket"])
        .arg(socket)
        .output()
        .unwrap();
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    status["services"][0]["backends"][backend]["admin_state"]
        .as_str()
        .unwrap()
        .to_string()
}

fn start_havip(dir: &Scratch, backends: &[Server]) -> (Running, SocketAddr, PathBuf) {
    let socket = dir.path("havip.sock");
    let mut service =
        Service::new("kube-apiserver", "127.0.0.1:0").health(Health::tcp().interval("500ms"));
    for (i, backend) in backends.iter().enumerate() {
        service = service.named_backend(&format!("master{}", i + 1), backend.addr);
    }
    let config = NodeConfig::new()
        .log("format", "json")
        .admin("127.0.0.1:0")
        .admin_commands()
        .control_socket(socket.display())
        .service(service);
    let path = dir.write("havip.toml", &config.to_toml());
    let mut child = Running(
        Command::new(HAVIP)
            .args(["run", "--config"])
            .arg(&path)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut lines = BufReader::new(child.0.stderr.take().unwrap()).lines();
    let admin = loop {
        let line = lines.next().expect("havip exited").unwrap();
        let value: Value = serde_json::from_str(&line).unwrap_or_default();
        if value["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("admin endpoint"))
        {
            break value["addr"].as_str().unwrap().parse().unwrap();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    while !socket.exists() {
        std::thread::sleep(Duration::from_millis(20));
    }
    (child, admin, socket)
}

#[test]
fn the_stats_page_in_chromium() {
    require!(Need::Chromium);
    let dir = Scratch::new("stats-page");
    let backends: Vec<Server> = (1..=3)
        .map(|i| {
            Server::start(
                "127.0.0.1:0".parse().unwrap(),
                Reply::GreetThenEcho(format!("master{i}")),
            )
        })
        .collect();
    let (_havip, admin, socket) = start_havip(&dir, &backends);
    let output = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("stats_page");
    std::fs::create_dir_all(&output).unwrap();
    let mut page = Browser::open(dir.as_path(), &format!("http://{admin}/"), None);

    // Every backend has its row, ready, with buttons (commands are on).
    page.wait_until(
        "three backend rows",
        "document.querySelectorAll('tr[data-backend]').length === 3",
    );
    for i in 1..=3 {
        let row = format!("kube-apiserver/master{i}");
        assert_eq!(page.eval(&shown_state(&row)), "ready");
        let buttons =
            format!("document.querySelectorAll('tr[data-backend=\"{row}\"] button').length");
        assert_eq!(page.eval(&buttons), 3);
    }
    assert!(page
        .eval("document.getElementById('about').textContent")
        .as_str()
        .unwrap()
        .contains("config loaded"));
    // Marks this document: a reload would lose it.
    page.eval("window.notReloaded = true");

    // A change made with the CLI appears on the page by itself.
    let cli = Command::new(HAVIP)
        .args(["backend", "kube-apiserver/master2", "maint", "--socket"])
        .arg(&socket)
        .output()
        .unwrap();
    assert!(
        cli.status.success(),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    page.wait_until(
        "master2 in maint",
        &format!("{} === 'maint'", shown_state("kube-apiserver/master2")),
    );

    // A drain click takes effect in the daemon, and the page shows it.
    page.eval("document.querySelector('tr[data-backend=\"kube-apiserver/master3\"] button[data-action=drain]').click()");
    let deadline = Instant::now() + LIMIT;
    while daemon_state(&socket, 2) != "drain" {
        assert!(
            Instant::now() < deadline,
            "the drain click did not reach havip"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    page.wait_until(
        "master3 in drain",
        &format!("{} === 'drain'", shown_state("kube-apiserver/master3")),
    );
    page.wait_until(
        "the click's message",
        "document.getElementById('message').textContent.includes('ready → drain')",
    );
    assert_eq!(
        page.eval("window.notReloaded === true"),
        true,
        "the page reloaded"
    );
    // A laptop screen shows every column without scrolling sideways.
    let overflow = page.eval(
        "[...document.querySelectorAll('.scroll')].every(d => d.scrollWidth <= d.clientWidth)",
    );
    assert_eq!(
        overflow, true,
        "the backend table scrolls sideways at 1280 px"
    );
    page.screenshot(&output.join("laptop.png"));

    // A phone: one card per backend, nothing wider than the screen.
    page.call(
        "Emulation.setDeviceMetricsOverride",
        json!({ "width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": true }),
    );
    page.wait_until(
        "the phone layout",
        "getComputedStyle(document.querySelector('table.rows thead')).display === 'none'",
    );
    let width = page.eval("document.documentElement.scrollWidth");
    assert!(
        width.as_u64().unwrap() <= 390,
        "the page is {width} px wide on a 390 px phone"
    );
    page.screenshot(&output.join("phone.png"));
    eprintln!("stats page screenshots: {}", output.display());
}

#[test]
fn the_stats_page_shows_vrrp_instances_and_their_transitions() {
    require!(Need::Root, Need::Netns, Need::Chromium);
    let _serial = serial();
    let lab = Lab::new("sp", 1);
    let ns = lab.nodes[0].clone();
    lab.start_name_server(0, 9000);
    let vip = "10.77.0.200";
    let config = NodeConfig::new()
        .grace("1s")
        .log_connections(false)
        .admin("127.0.0.1:8404")
        .admin_commands()
        .service(
            Service::new("api", format!("{vip}:80"))
                .health(Health::tcp().interval("200ms"))
                .named_backend("master1", "127.0.0.1:9000"),
        )
        .tracker(
            Tracker::service("apiserver", "api")
                .min_healthy(1)
                .weight(-30),
        )
        .vrrp(
            Vrrp::new("VI_1", 42)
                .priority(100)
                .advert_interval("100ms")
                .vip(format!("{vip}/24"))
                .track(&["apiserver"]),
        );
    let path = lab.write("node0.toml", &config.to_toml());
    lab.spawn(
        &ns,
        HAVIP,
        &["run", "--config", &path.display().to_string()],
        "node0.log",
        &[],
    );
    lab.wait_for_sole_holder(vip.parse().unwrap(), 0, &[], Duration::from_secs(5));
    let output = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("stats_page");
    std::fs::create_dir_all(&output).unwrap();
    let mut page = Browser::open(&lab.dir, "http://127.0.0.1:8404/", Some(&ns));
    let instance = "document.querySelector('tr[data-instance=\"VI_1\"]')";
    page.wait_until(
        "VI_1 as MASTER with its tracker",
        &format!(
            "!!{instance} && {instance}.textContent.includes('MASTER') \
             && {instance}.textContent.includes('apiserver: healthy (-30)') \
             && {instance}.textContent.includes('100 (config 100)')"
        ),
    );
    page.wait_until(
        "the transition to MASTER",
        "[...document.querySelectorAll('ul.events li')].some(li => li.textContent.includes('BACKUP → MASTER'))",
    );
    page.screenshot(&output.join("vrrp.png"));
    lab.shutdown();
}
