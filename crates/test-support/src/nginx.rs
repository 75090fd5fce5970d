//! The real nginx: on loopback as the HTTP(S) server of the health-check tests ([`Nginx`],
//! with the certificates of [`Pki`](crate::pki::Pki)), and inside a lab node as a TLS backend
//! that says who it is ([`start_tls_backend`]). Both run in the foreground as our children
//! with their own prefix, pid file and logs, and are killed by their PID (loopback: on drop;
//! in a lab: when the lab shuts down). Tests that use it need [`Need::Nginx`].

use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::guard::Need;
use crate::lab::Lab;
use crate::scratch::Scratch;
use crate::wait::{wait_for, wait_for_every};

/// nginx on loopback serving the health-check test endpoints; killed (by its PID, as our
/// child) on drop.
#[derive(Debug)]
pub struct Nginx {
    child: Child,
    /// TLS with the server certificate: `/ok` 200, `/fail` 500, `/auth` 401, `/sni` 200 only
    /// when the client sent SNI `apiserver.test` (421 otherwise), `/ua` 200 only for the
    /// check's User-Agent (400 otherwise).
    pub https: SocketAddr,
    /// TLS with `ssl_verify_client on` against the test CA: 200 with a valid client
    /// certificate, nginx's 400 without one.
    pub mtls: SocketAddr,
    /// Plain HTTP with the same `/ok`, `/fail` and `/ua` endpoints.
    pub http: SocketAddr,
}

const NGINX_CONF: &str = r#"
daemon off;
master_process off;
worker_processes 1;
pid @DIR@/nginx.pid;
error_log @DIR@/error.log info;
events { worker_connections 64; }
http {
    access_log @DIR@/access.log;
    client_body_temp_path @DIR@/client_body;
    proxy_temp_path @DIR@/proxy;
    fastcgi_temp_path @DIR@/fastcgi;
    uwsgi_temp_path @DIR@/uwsgi;
    scgi_temp_path @DIR@/scgi;
    default_type text/plain;
    ssl_certificate @DIR@/server.crt;
    ssl_certificate_key @DIR@/server.key;

    server {
        listen 127.0.0.1:@HTTPS@ ssl;
        location = /ok { return 200 "ok\n"; }
        location = /fail { return 500; }
        location = /auth { return 401; }
        location = /sni {
            if ($ssl_server_name = "apiserver.test") { return 200 "sni ok\n"; }
            return 421;
        }
        location = /ua {
            if ($http_user_agent = "havip-health-check") { return 200 "ua ok\n"; }
            return 400;
        }
    }

    server {
        listen 127.0.0.1:@MTLS@ ssl;
        ssl_client_certificate @DIR@/ca.crt;
        ssl_verify_client on;
        location / { return 200 "client $ssl_client_s_dn\n"; }
    }

    server {
        listen 127.0.0.1:@HTTP@;
        location = /ok { return 200 "ok\n"; }
        location = /fail { return 500; }
        location = /ua {
            if ($http_user_agent = "havip-health-check") { return 200 "ua ok\n"; }
            return 400;
        }
    }
}
"#;

impl Nginx {
    /// Start nginx with the PKI's server certificate; retries with new ports if one was
    /// taken between picking and binding.
    pub fn start(scratch: &Scratch) -> Nginx {
        let mut last_error = String::new();
        for _attempt in 0..3 {
            match Nginx::try_start(scratch) {
                Ok(nginx) => return nginx,
                Err(e) => last_error = e,
            }
        }
        panic!("nginx did not start: {last_error}");
    }

    fn try_start(scratch: &Scratch) -> Result<Nginx, String> {
        let program = Need::Nginx.path();
        let [https, mtls, http] = free_ports();
        let dir = scratch.dir.to_str().expect("UTF-8 temp dir");
        let conf = NGINX_CONF
            .replace("@DIR@", dir)
            .replace("@HTTPS@", &https.to_string())
            .replace("@MTLS@", &mtls.to_string())
            .replace("@HTTP@", &http.to_string());
        let conf_path = scratch.write("nginx.conf", &conf);
        let stderr = std::fs::File::create(scratch.path("nginx.stderr")).expect("stderr file");
        let child = Command::new(&program)
            .arg("-p")
            .arg(&scratch.dir)
            .arg("-c")
            .arg(&conf_path)
            .arg("-e")
            .arg(scratch.path("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", program.display()))?;
        let addr = |port| SocketAddr::from(([127, 0, 0, 1], port));
        // Owned from here on: dropping it kills the child.
        let mut nginx = Nginx {
            child,
            https: addr(https),
            mtls: addr(mtls),
            http: addr(http),
        };
        let up = wait_for_every(Duration::from_millis(10), Duration::from_secs(5), || {
            if let Ok(Some(status)) = nginx.child.try_wait() {
                let log = std::fs::read_to_string(scratch.path("error.log")).unwrap_or_default();
                let err = std::fs::read_to_string(scratch.path("nginx.stderr")).unwrap_or_default();
                return Some(Err(format!("nginx exited with {status}: {err}\n{log}")));
            }
            // Connects to loopback are instant once nginx listens.
            [nginx.https, nginx.mtls, nginx.http]
                .iter()
                .all(|a| TcpStream::connect_timeout(a, Duration::from_millis(100)).is_ok())
                .then_some(Ok(()))
        });
        match up {
            Some(Ok(())) => Ok(nginx),
            Some(Err(e)) => Err(e),
            None => Err("nginx did not listen within 5 s".into()),
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // Child::kill sends SIGKILL to this child's PID only.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Three distinct free ports on 127.0.0.1 (bound together, then released).
fn free_ports() -> [u16; 3] {
    let listeners: Vec<std::net::TcpListener> = (0..3)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind free port"))
        .collect();
    let port = |i: usize| listeners[i].local_addr().expect("local addr").port();
    [port(0), port(1), port(2)]
}

const TLS_BACKEND_CONF: &str = r#"
daemon off;
master_process off;
worker_processes 1;
pid @DIR@/nginx.pid;
error_log @DIR@/error.log notice;
events { worker_connections 512; }
http {
    access_log off;
    client_body_temp_path @DIR@/client_body;
    proxy_temp_path @DIR@/proxy;
    fastcgi_temp_path @DIR@/fastcgi;
    uwsgi_temp_path @DIR@/uwsgi;
    scgi_temp_path @DIR@/scgi;
    default_type text/plain;
    server {
        listen 0.0.0.0:@PORT@ ssl;
        ssl_certificate @CERT@;
        ssl_certificate_key @KEY@;
        # Who answered, and which balancer's connection it was (its source address).
        add_header X-Backend @NAME@ always;
        add_header X-Via $remote_addr always;
        location = /readyz { return 200 "ok"; }
        location / { return 200 "@NAME@\n"; }
    }
}
"#;

/// nginx serving TLS on 0.0.0.0:`port` in node `node`'s namespace with `cert` (certificate,
/// key): `GET /readyz` answers 200 "ok" with `X-Backend: <name>` and `X-Via: <the client's
/// address>`. Returns once the client namespace can connect to it.
pub fn start_tls_backend(lab: &Lab, cert: &(PathBuf, PathBuf), node: usize, name: &str, port: u16) {
    let dir = lab.dir.join(format!("nginx-{name}"));
    std::fs::create_dir_all(&dir).expect("nginx directory");
    let path = |p: &Path| p.display().to_string();
    let conf = TLS_BACKEND_CONF
        .replace("@DIR@", &path(&dir))
        .replace("@PORT@", &port.to_string())
        .replace("@CERT@", &path(&cert.0))
        .replace("@KEY@", &path(&cert.1))
        .replace("@NAME@", name);
    let conf_path = dir.join("nginx.conf");
    std::fs::write(&conf_path, conf).expect("write nginx.conf");
    lab.spawn(
        &lab.nodes[node].clone(),
        &path(&Need::Nginx.path()),
        &[
            "-p",
            &path(&dir),
            "-c",
            &path(&conf_path),
            "-e",
            &path(&dir.join("error.log")),
        ],
        &format!("nginx-{name}.log"),
        &[],
    );
    let addr = SocketAddr::new(IpAddr::V4(lab.node_addr(node)), port);
    let up = lab.in_ns(&lab.client.clone(), move || {
        wait_for(Duration::from_secs(5), || {
            TcpStream::connect_timeout(&addr, Duration::from_millis(100))
                .ok()
                .map(|_| ())
        })
    });
    assert!(
        up.is_some(),
        "nginx {name} listens on {addr}\n{}",
        lab.all_logs()
    );
}
