//! The real `openssl` and `nginx` binaries for the HTTPS health-check tests.
//!
//! - [`tools`] finds both or fails the test with a message saying to install them; with
//!   `HAVIP_SKIP_EXTERNAL=1` it prints that the test was skipped and returns `None`.
//! - [`Scratch`] is a temp directory removed on drop (also on panic).
//! - [`Pki`] generates, with the openssl CLI, a CA, a second unrelated CA, a server
//!   certificate for 127.0.0.1 / ::1 / apiserver.test and client certificates whose keys
//!   come in the three PEM encodings (PKCS#8, SEC1, PKCS#1).
//! - [`Nginx`] runs nginx in the foreground as our child on free 127.0.0.1 ports, with its
//!   own prefix, pid file and logs in the scratch directory, and kills it by its PID on drop.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const SKIP_VAR: &str = "HAVIP_SKIP_EXTERNAL";

/// Paths of the external binaries.
pub struct Tools {
    pub openssl: PathBuf,
    pub nginx: PathBuf,
}

/// Find `openssl` and `nginx` (`PATH`, then `/usr/sbin` and `/usr/bin`, since a non-root
/// `PATH` often lacks `/usr/sbin`).
pub fn tools(test: &str) -> Option<Tools> {
    let openssl = find("openssl", &["version"]);
    let nginx = find("nginx", &["-v"]);
    match (openssl, nginx) {
        (Some(openssl), Some(nginx)) => Some(Tools { openssl, nginx }),
        (openssl, nginx) => {
            let missing: Vec<&str> = [("openssl", openssl.is_none()), ("nginx", nginx.is_none())]
                .into_iter()
                .filter(|(_, gone)| *gone)
                .map(|(name, _)| name)
                .collect();
            let missing = missing.join(" and ");
            if std::env::var(SKIP_VAR).is_ok_and(|v| v == "1") {
                eprintln!("SKIPPED {test}: {missing} not installed and {SKIP_VAR}=1");
                return None;
            }
            panic!(
                "{test} needs {missing}, which is not installed: install it (Debian/Ubuntu: \
                 `apt-get install nginx openssl`; CI installs both), or set {SKIP_VAR}=1 to \
                 skip the tests that need it"
            );
        }
    }
}

fn find(name: &str, version_args: &[&str]) -> Option<PathBuf> {
    let candidates = [
        PathBuf::from(name),
        Path::new("/usr/sbin").join(name),
        Path::new("/usr/bin").join(name),
    ];
    candidates.into_iter().find(|c| {
        Command::new(c)
            .args(version_args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// A temp directory, removed with its contents on drop.
pub struct Scratch {
    pub dir: PathBuf,
}

impl Scratch {
    pub fn new(test: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!(
            "havip-{test}-{}-{:016x}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).expect("write scratch file");
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Files of the generated test PKI, all in the scratch directory.
pub struct Pki {
    pub ca_cert: PathBuf,
    /// A CA that signed nothing we use: verification against it must fail.
    pub other_ca_cert: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    /// EC (P-256) client certificate and its key as PKCS#8 ("PRIVATE KEY") and SEC1
    /// ("EC PRIVATE KEY").
    pub client_ec_cert: PathBuf,
    pub client_ec_pkcs8_key: PathBuf,
    pub client_ec_sec1_key: PathBuf,
    openssl: PathBuf,
    dir: PathBuf,
}

/// Server name in the server certificate besides the loopback IPs.
pub const SERVER_NAME: &str = "apiserver.test";

const SERVER_EXT: &str = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n\
extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,IP:::1,DNS:apiserver.test\n";
const CLIENT_EXT: &str = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n\
extendedKeyUsage=clientAuth\n";

impl Pki {
    pub fn generate(tools: &Tools, scratch: &Scratch) -> Pki {
        let dir = scratch.dir.clone();
        let pki = Pki {
            ca_cert: dir.join("ca.crt"),
            other_ca_cert: dir.join("other-ca.crt"),
            server_cert: dir.join("server.crt"),
            server_key: dir.join("server.key"),
            client_ec_cert: dir.join("client-ec.crt"),
            client_ec_pkcs8_key: dir.join("client-ec.key"),
            client_ec_sec1_key: dir.join("client-ec.sec1.key"),
            openssl: tools.openssl.clone(),
            dir,
        };
        scratch.write("server.ext", SERVER_EXT);
        scratch.write("client.ext", CLIENT_EXT);
        pki.self_signed_ca("ca", "havip-test-ca");
        pki.self_signed_ca("other-ca", "havip-other-ca");
        pki.ec_key("server.key");
        pki.signed_cert("server", "server.key", "apiserver.test", "server.ext");
        pki.ec_key("client-ec.key");
        pki.openssl(&[
            "pkey",
            "-in",
            "client-ec.key",
            "-traditional",
            "-out",
            "client-ec.sec1.key",
        ]);
        pki.signed_cert("client-ec", "client-ec.key", "havip-check-ec", "client.ext");
        pki
    }

    /// An RSA client certificate with its key as PKCS#1 ("RSA PRIVATE KEY"); separate
    /// because RSA key generation is the slow part.
    pub fn rsa_client(&self) -> (PathBuf, PathBuf) {
        self.openssl(&[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "client-rsa.key",
        ]);
        self.openssl(&[
            "pkey",
            "-in",
            "client-rsa.key",
            "-traditional",
            "-out",
            "client-rsa.pkcs1.key",
        ]);
        self.signed_cert(
            "client-rsa",
            "client-rsa.key",
            "havip-check-rsa",
            "client.ext",
        );
        (
            self.dir.join("client-rsa.crt"),
            self.dir.join("client-rsa.pkcs1.key"),
        )
    }

    fn self_signed_ca(&self, name: &str, cn: &str) {
        self.ec_key(&format!("{name}.key"));
        self.openssl(&[
            "req",
            "-x509",
            "-new",
            "-key",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.crt"),
            "-days",
            "2",
            "-subj",
            &format!("/CN={cn}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
    }

    fn ec_key(&self, out: &str) {
        self.openssl(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            out,
        ]);
    }

    fn signed_cert(&self, name: &str, key: &str, cn: &str, ext: &str) {
        let csr = format!("{name}.csr");
        self.openssl(&[
            "req",
            "-new",
            "-key",
            key,
            "-out",
            &csr,
            "-subj",
            &format!("/CN={cn}"),
        ]);
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            ext,
            "-out",
            &format!("{name}.crt"),
        ]);
    }

    fn openssl(&self, args: &[&str]) {
        let out = Command::new(&self.openssl)
            .args(args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .output()
            .expect("run openssl");
        assert!(
            out.status.success(),
            "openssl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// First line of a PEM file, to prove which key encoding a file holds.
pub fn pem_label(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("read PEM");
    text.lines().next().unwrap_or_default().to_owned()
}

/// nginx serving the test endpoints; killed (by its PID, as our child) on drop.
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
    pub fn start(tools: &Tools, scratch: &Scratch) -> Nginx {
        let mut last_error = String::new();
        for _attempt in 0..3 {
            match Nginx::try_start(tools, scratch) {
                Ok(nginx) => return nginx,
                Err(e) => last_error = e,
            }
        }
        panic!("nginx did not start: {last_error}");
    }

    fn try_start(tools: &Tools, scratch: &Scratch) -> Result<Nginx, String> {
        let [https, mtls, http] = free_ports();
        let dir = scratch.dir.to_str().expect("UTF-8 temp dir");
        let conf = NGINX_CONF
            .replace("@DIR@", dir)
            .replace("@HTTPS@", &https.to_string())
            .replace("@MTLS@", &mtls.to_string())
            .replace("@HTTP@", &http.to_string());
        let conf_path = scratch.write("nginx.conf", &conf);
        let stderr = std::fs::File::create(scratch.path("nginx.stderr")).expect("stderr file");
        let child = Command::new(&tools.nginx)
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
            .map_err(|e| format!("spawn {}: {e}", tools.nginx.display()))?;
        let addr = |port| SocketAddr::from(([127, 0, 0, 1], port));
        // Owned from here on: dropping it kills the child.
        let mut nginx = Nginx {
            child,
            https: addr(https),
            mtls: addr(mtls),
            http: addr(http),
        };
        // Up to ~5 s: 500 rounds of at most a 10 ms pause (connects to loopback are instant).
        for _round in 0..500 {
            if let Ok(Some(status)) = nginx.child.try_wait() {
                let log = std::fs::read_to_string(scratch.path("error.log")).unwrap_or_default();
                let err = std::fs::read_to_string(scratch.path("nginx.stderr")).unwrap_or_default();
                return Err(format!("nginx exited with {status}: {err}\n{log}"));
            }
            let ready = [nginx.https, nginx.mtls, nginx.http]
                .iter()
                .all(|a| TcpStream::connect_timeout(a, Duration::from_millis(100)).is_ok());
            if ready {
                return Ok(nginx);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Err("nginx did not listen within 5 s".into())
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
