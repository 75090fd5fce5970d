//! `havip import` and `havip check` on the seed configs, end to end through the binary: exit
//! codes, the files written, what goes to standard error.
//!
//! The expected outputs under `crates/import/tests/import/expected/` are checked (and
//! rewritten, with `HAVIP_BLESS`) by the import crate's in-process golden test; here the binary
//! must write exactly those bytes.

#![allow(clippy::unwrap_used)] // test code: a panic is a failed test
#![allow(clippy::disallowed_types)] // blocking tests of a child process use wall-clock time

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

const HAVIP: &str = env!("CARGO_BIN_EXE_havip");
const LIMIT: Duration = Duration::from_secs(20);

fn seeds() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../import/tests/import/seeds")
}

fn expected_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../import/tests/import/expected")
}

/// A temporary directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("havip-import-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process killed (by its PID) on drop if it is still running.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Each seed file alone, and the seeds' natural sets: the cases of the import crate's golden
/// test.
const CASES: &[(&str, &[&str])] = include!("../../import/tests/import/cases.rs");

/// Run `havip import ARGS -o OUT/` in the seeds directory: the configs written (file name,
/// text) and the report (stderr without the lines naming the temporary directory).
fn import(args: &[&str], out: &Path) -> (Vec<(String, String)>, String, Output) {
    let output = Command::new(HAVIP)
        .current_dir(seeds())
        .arg("import")
        .args(args)
        .arg("-o")
        .arg(format!("{}/", out.display()))
        .output()
        .unwrap();
    let report: String = String::from_utf8_lossy(&output.stderr)
        .lines()
        .filter(|l| !l.starts_with("havip import: wrote "))
        .map(|l| format!("{l}\n"))
        .collect();
    let mut files: Vec<(String, String)> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    files.sort();
    (files, report, output)
}

/// `got` must be the reviewed output `name`; this test never rewrites it.
fn compare(name: &str, got: &str, failures: &mut Vec<String>) {
    let path = expected_dir().join(name);
    match std::fs::read_to_string(&path) {
        Ok(want) if want == got => {}
        Ok(want) => failures.push(format!(
            "{name} differs from {}:\n{}",
            path.display(),
            first_difference(&want, got)
        )),
        Err(e) => failures.push(format!("{}: {e}", path.display())),
    }
}

fn first_difference(want: &str, got: &str) -> String {
    for (i, (w, g)) in want.lines().zip(got.lines()).enumerate() {
        if w != g {
            return format!("line {}:\n  want: {w}\n  got:  {g}", i + 1);
        }
    }
    format!(
        "lengths differ: want {} lines, got {}",
        want.lines().count(),
        got.lines().count()
    )
}

#[test]
fn the_cli_writes_the_reviewed_outputs_and_is_stable() {
    let mut failures = Vec::new();
    for (case, args) in CASES {
        let first = TempDir::new(&format!("{case}-1"));
        let second = TempDir::new(&format!("{case}-2"));
        let (files, report, output) = import(args, &first.0);
        assert!(
            output.status.success(),
            "{case}: havip import failed:\n{report}"
        );
        let (again, report_again, _) = import(args, &second.0);
        assert_eq!(files, again, "{case}: the same input gave different output");
        assert_eq!(report, report_again, "{case}: the report is not stable");
        let several = files.len() > 1;
        for (file, text) in &files {
            let name = if several {
                format!("{case}.{file}")
            } else {
                format!("{case}.toml")
            };
            compare(&name, text, &mut failures);
        }
        compare(&format!("{case}.report"), &report, &mut failures);
    }
    assert!(
        failures.is_empty(),
        "{}\n\n(the import crate's golden test says whether the importer changed: cargo test -p havip-import golden)",
        failures.join("\n\n")
    );
}

#[test]
fn havip_check_accepts_every_imported_seed() {
    for (case, args) in CASES {
        let out = TempDir::new(&format!("check-{case}"));
        let (files, _, _) = import(args, &out.0);
        for (file, _) in files {
            let path = out.0.join(&file);
            let check = Command::new(HAVIP)
                .args(["check", "--config"])
                .arg(&path)
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&check.stdout);
            let stderr = String::from_utf8_lossy(&check.stderr);
            assert!(
                check.status.success() && stdout.contains(": OK ("),
                "{case}/{file} is not accepted:\n{stdout}{stderr}"
            );
            // Warnings are lints (file:line:col: key: warning: ...), never problems.
            for line in stderr.lines() {
                assert!(line.contains(": warning: "), "{case}/{file}: {line}");
            }
        }
    }
}

#[test]
fn each_node_of_a_set_gets_its_own_config() {
    let out = TempDir::new("nodes");
    let (files, _, _) = import(
        &[
            "--nginx",
            "nginx-stream.conf",
            "--keepalived",
            "nginx-keepalived-master1.conf",
            "--keepalived",
            "nginx-keepalived-master2.conf",
        ],
        &out.0,
    );
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "nginx-keepalived-master1.toml",
            "nginx-keepalived-master2.toml"
        ]
    );
    assert!(files[0].1.contains("priority = 100"));
    assert!(files[1].1.contains("priority = 90"));
    assert!(files[0].1.contains("source = \"192.168.139.133\""));
    // Both carry the balancer.
    assert!(files
        .iter()
        .all(|(_, t)| t.contains("name = \"k8sapiserver\"")));
    // Without -o there is no single place to write several configs.
    let output = Command::new(HAVIP)
        .current_dir(seeds())
        .args([
            "import",
            "--keepalived",
            "nginx-keepalived-master1.conf",
            "--keepalived",
            "nginx-keepalived-master2.conf",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("give -o DIR"));
    // A file name gets the node's name inserted.
    let named = TempDir::new("named");
    let status = Command::new(HAVIP)
        .current_dir(seeds())
        .args([
            "import",
            "--keepalived",
            "nginx-keepalived-master1.conf",
            "--keepalived",
            "nginx-keepalived-master2.conf",
            "-o",
        ])
        .arg(named.0.join("havip.toml"))
        .output()
        .unwrap();
    assert!(status.status.success());
    assert!(named.0.join("havip.nginx-keepalived-master2.toml").exists());
}

#[test]
fn check_lints_foreign_files_and_strict_fails_on_warnings() {
    let run = |strict: bool| {
        let mut cmd = Command::new(HAVIP);
        cmd.current_dir(seeds()).args([
            "check",
            "--keepalived",
            "nginx-keepalived-master1.conf",
            "--keepalived",
            "nginx-keepalived-master2.conf",
            "--nginx",
            "nginx-stream.conf",
        ]);
        if strict {
            cmd.arg("--strict");
        }
        cmd.output().unwrap()
    };
    let lenient = run(false);
    let stderr = String::from_utf8_lossy(&lenient.stderr);
    assert!(lenient.status.success(), "{stderr}");
    for expect in [
        "nginx-keepalived-master1.conf:18:5: nopreempt: warning: with state MASTER",
        "nginx-keepalived-master1.conf:16:23: virtual_router_id: warning: VRID 51",
        "nginx-keepalived-master2.conf:22:19: auth_pass: warning: the password is 13 bytes",
    ] {
        assert!(
            stderr.lines().any(|l| l.starts_with(expect)),
            "{expect}\n{stderr}"
        );
    }
    assert!(!run(true).status.success());
    // Equal priorities across the nodes of a set.
    let output = Command::new(HAVIP)
        .current_dir(seeds())
        .args([
            "check",
            "--keepalived",
            "rke2-keepalived.conf",
            "--keepalived",
            "rke2-keepalived.conf",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("rke2-keepalived.conf:20:14: priority: warning: every node of instance VI_1 has priority 100"),
        "{stderr}"
    );
    // A havip config: the same lints, placed at TOML keys.
    let out = TempDir::new("lint-toml");
    let (files, _, _) = import(&["--haproxy", "docker-haproxy.cfg"], &out.0);
    let check = Command::new(HAVIP)
        .args(["check", "--strict", "--config"])
        .arg(out.0.join(&files[0].0))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert!(!check.status.success());
    assert!(
        stderr.contains("service[0].timeouts.client_idle: warning: idle timeout of 1m in front of an apiserver port (6443)"),
        "{stderr}"
    );
}

#[test]
fn syntax_errors_are_reported_with_file_and_line_and_nothing_is_written() {
    let dir = TempDir::new("syntax");
    let bad = dir.0.join("bad.cfg");
    std::fs::write(&bad, "global\n  maxconn 10\nfrontend f\n  bind \"*:80\n").unwrap();
    let out = dir.0.join("out.toml");
    let output = Command::new(HAVIP)
        .arg("import")
        .arg("--haproxy")
        .arg(&bad)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "{}:4:8: (syntax): error: unterminated double quote",
            bad.display()
        )),
        "{stderr}"
    );
    assert!(!out.exists());
    let ka = dir.0.join("k.conf");
    std::fs::write(&ka, "vrrp_instance X {\n  interface eth0\n").unwrap();
    let output = Command::new(HAVIP)
        .arg("check")
        .arg("--keepalived")
        .arg(&ka)
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains(&format!(
        "{}:1:17: {{: error: not closed by }}",
        ka.display()
    )));
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn echo_backend() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 || s.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

fn http_get(addr: SocketAddr, path: &str, auth: Option<&str>) -> u16 {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(LIMIT)).unwrap();
    let header = auth.map_or(String::new(), |a| format!("Authorization: Basic {a}\r\n"));
    // The admin endpoint keeps HTTP/1.1 connections open: ask it to close after this one.
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{header}\r\n"
    )
    .unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    response[9..12].parse().unwrap()
}

/// An imported HAProxy config runs: clients get through to the backend, and the stats
/// listener became the admin endpoint with its password.
#[test]
fn an_imported_haproxy_config_runs() {
    let backend = echo_backend();
    let front = free_port();
    let admin_port = free_port();
    let dir = TempDir::new("run");
    let cfg = dir.0.join("haproxy.cfg");
    std::fs::write(
        &cfg,
        format!(
            "global\n  maxconn 100\ndefaults\n  mode tcp\n  timeout connect 2s\n  timeout client 10m\n  timeout server 10m\n\
             frontend api\n  bind 127.0.0.1:{front}\n  default_backend masters\n\
             backend masters\n  balance roundrobin\n  server m1 {backend} check inter 200\n\
             listen stats\n  bind 127.0.0.1:{admin_port}\n  mode http\n  stats enable\n  stats auth admin:QingHaoPassword\n"
        ),
    )
    .unwrap();
    let toml = dir.0.join("havip.toml");
    let output = Command::new(HAVIP)
        .arg("import")
        .arg("--haproxy")
        .arg(&cfg)
        .arg("-o")
        .arg(&toml)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut child = Running(
        Command::new(HAVIP)
            .args(["run", "--config"])
            .arg(&toml)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // Wait for the listener.
    let stderr = child.0.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = std::time::Instant::now() + LIMIT;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = rx
            .recv_timeout(left)
            .expect("havip did not start listening");
        if line.contains("listening") {
            break;
        }
    }
    let mut s = TcpStream::connect(("127.0.0.1", front)).unwrap();
    s.set_read_timeout(Some(LIMIT)).unwrap();
    s.write_all(b"ping").unwrap();
    let mut back = [0u8; 4];
    s.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"ping");
    let admin: SocketAddr = ([127, 0, 0, 1], admin_port).into();
    let deadline = std::time::Instant::now() + LIMIT;
    while TcpStream::connect(admin).is_err() {
        assert!(std::time::Instant::now() < deadline, "no admin endpoint");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(http_get(admin, "/metrics", None), 401);
    assert_eq!(http_get(admin, "/metrics", Some("YWRtaW46d3Jvbmc=")), 401);
    // base64("admin:QingHaoPassword")
    assert_eq!(
        http_get(admin, "/metrics", Some("YWRtaW46UWluZ0hhb1Bhc3N3b3Jk")),
        200
    );
    assert_eq!(http_get(admin, "/healthz", None), 200);
}

/// A value havip would refuse is an error at its source line: nothing is written, exit 1.
#[test]
fn values_havip_refuses_are_errors_and_nothing_is_written() {
    let dir = TempDir::new("refused");
    let cfg = dir.0.join("haproxy.cfg");
    std::fs::write(
        &cfg,
        "listen api\n  bind *:6443\n  retries 200\n  server m1 10.0.0.1:6443\n",
    )
    .unwrap();
    let out = dir.0.join("out.toml");
    let output = Command::new(HAVIP)
        .arg("import")
        .arg("--haproxy")
        .arg(&cfg)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "{}:3:11: retries: error: havip refuses the imported config: service[0].retries: ",
            cfg.display()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("havip import: 1 error(s) in the input; nothing written"));
    assert!(!out.exists());
}
