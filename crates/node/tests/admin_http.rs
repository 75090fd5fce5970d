//! The admin endpoint as a client sees it, on a node started in-process on loopback: real
//! HTTP/1.1 (keep-alive, HEAD without a body), bounded heads and bodies, a cap on admin
//! connections that leaves the balancer serving, commands refused cross-site, without JSON,
//! when off or without the password, hashed passwords, TLS, and `/metrics` that promtool
//! accepts.

#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

mod admin_support;

use std::io::Write as _;
use std::process::{Command, Stdio};

use admin_support::*;
use havip_node::control::client::{self, ClientTls, Method, Target};
use havip_test_support::guard::Need;
use havip_test_support::node_config::Value as Toml;
use havip_test_support::require;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// `openssl passwd -6 -salt saltsalt secret`.
const SHA512_OF_SECRET: &str = "$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1";

fn commands_on() -> Vec<(&'static str, Toml)> {
    vec![("commands", Toml::Bool(true))]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_keep_alive_and_the_size_limits() {
    let mut node = Node::start("admin-http", &commands_on()).await;
    // HEAD: the GET's headers, no body.
    let head = raw(
        node.admin,
        b"HEAD /api/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty(), "HEAD carried a body: {}", head.text());
    let get = raw(
        node.admin,
        b"GET /api/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(get.header("content-type"), head.header("content-type"));
    assert!(get.text().contains("\"services\""));

    // Keep-alive: three requests on one connection.
    let mut stream = TcpStream::connect(node.admin).await.unwrap();
    for _ in 0..3 {
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut answer = vec![0u8; 256];
        let n = tokio::time::timeout(LIMIT, stream.read(&mut answer))
            .await
            .unwrap()
            .unwrap();
        let answer = parse(&answer[..n]);
        assert_eq!((answer.status, answer.text().as_str()), (200, "ok\n"));
    }

    // A 20 KiB header is refused, and so is a 100 KiB body.
    let big_head = format!(
        "GET /api/status HTTP/1.1\r\nHost: x\r\nX-Padding: {}\r\n\r\n",
        "a".repeat(20 * 1024)
    );
    assert_eq!(raw(node.admin, big_head.as_bytes()).await.status, 431);
    let body = "x".repeat(100 * 1024);
    let big_body = format!(
        "POST /api/backends/web/b0 HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    assert_eq!(raw(node.admin, big_body.as_bytes()).await.status, 413);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_over_the_cap_are_refused_and_the_balancer_keeps_serving() {
    let mut node = Node::start("admin-cap", &[]).await;
    let cap = havip_node::admin::http::MAX_CONNECTIONS;
    // Slowloris: every one sends half a request head and stops.
    let mut slow = Vec::new();
    for _ in 0..cap {
        let mut stream = TcpStream::connect(node.admin).await.unwrap();
        stream
            .write_all(b"GET /api/status HTTP/1.1\r\n")
            .await
            .unwrap();
        slow.push(stream);
    }
    // Accepted in order: once the last slow one is in, the next is over the cap. On a
    // loaded machine the accept loop may still be behind: a probe it serves frees its slot
    // again, so look until one is refused (bounded).
    let mut refused = None;
    for _ in 0..100 {
        let probe = raw(
            node.admin,
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        if probe.status == 503 {
            refused = Some(probe);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let refused = refused.expect("a connection over the cap was refused");
    assert!(refused.text().contains("too many admin connections"));
    // The balancer does not notice.
    for round in 0..6u8 {
        let (mut stream, _) = connect(node.service).await;
        echo(&mut stream, &[round; 1024]).await;
    }
    // The control socket has slots of its own.
    assert_eq!(node.local(Method::GET, "/healthz", None).await.status, 200);
    drop(slow);
    let mut answered = false;
    for _ in 0..50 {
        let again = raw(
            node.admin,
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        if again.status == 200 {
            answered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(answered, "the slots were not given back");
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_need_json_the_same_origin_and_commands_on() {
    let mut node = Node::start("admin-csrf", &commands_on()).await;
    let post = |origin: Option<&str>, content_type: &str| {
        let origin = origin.map_or(String::new(), |o| format!("Origin: {o}\r\n"));
        let body = r#"{"state": "drain"}"#;
        format!(
            "POST /api/backends/web/b0 HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n{origin}Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
            node.admin,
            body.len()
        )
    };
    // A form another site's page posts: not JSON, and its Origin is that site.
    let form = raw(
        node.admin,
        post(Some("http://evil.example"), "text/plain").as_bytes(),
    )
    .await;
    assert_eq!(form.status, 415, "{}", form.text());
    let cross = raw(
        node.admin,
        post(Some("http://evil.example"), "application/json").as_bytes(),
    )
    .await;
    assert_eq!(cross.status, 403, "{}", cross.text());
    assert!(cross.text().contains("cross-site"), "{}", cross.text());
    let state = |node: &Node| {
        node.running().services()[0].backends[0]
            .admin_state()
            .as_str()
    };
    assert_eq!(state(&node), "ready", "a refused command changed the state");
    // The stats page itself (same origin) and a script (no Origin) may.
    let own = format!("http://{}", node.admin);
    let same = raw(node.admin, post(Some(&own), "application/json").as_bytes()).await;
    assert_eq!(same.status, 200, "{}", same.text());
    assert_eq!(state(&node), "drain");
    let script = raw(
        node.admin,
        post(None, "application/json; charset=utf-8").as_bytes(),
    )
    .await;
    assert_eq!(script.status, 200, "{}", script.text());
    // A GET cannot change anything.
    let get = raw(
        node.admin,
        b"GET /api/backends/web/b0?state=ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(get.status, 200);
    assert_eq!(state(&node), "drain");
    node.stop().await;

    // Commands off: the endpoint says so; the control socket still takes them.
    let mut off = Node::start("admin-off", &[]).await;
    let refused = off
        .remote(
            Method::POST,
            "/api/backends/web/b1",
            Some(&json!({"state": "maint"})),
            None,
        )
        .await;
    assert_eq!(refused.status, 403);
    assert!(
        refused.error_text().contains("commands are off"),
        "{refused:?}"
    );
    let local = off
        .local(
            Method::POST,
            "/api/backends/web/b1",
            Some(&json!({"state": "maint"})),
        )
        .await;
    assert_eq!(local.status, 200, "{local:?}");
    assert_eq!(local.body["previous_state"], "ready");
    off.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_say_why() {
    let mut node = Node::start("admin-refusals", &commands_on()).await;
    let cases = [
        (
            "/api/backends/nope/b0",
            json!({"state": "drain"}),
            404,
            "no service \"nope\"; services: web",
        ),
        (
            "/api/backends/web/b9",
            json!({"state": "drain"}),
            404,
            "backends: b0, b1, b2",
        ),
        (
            "/api/backends/web/b0",
            json!({"state": "down"}),
            400,
            "expected ready, drain or maint",
        ),
        (
            "/api/backends/web/b0",
            json!({"weight": 20000}),
            400,
            "0 to 10000",
        ),
        (
            "/api/backends/web/b0",
            json!({"weight": -1}),
            400,
            "out of range",
        ),
        (
            "/api/backends/web/b0",
            json!({"colour": "red"}),
            400,
            "unknown field",
        ),
        ("/api/backends/web/b0", json!({}), 400, "nothing to do"),
        (
            "/api/backends/web/b0",
            json!({"wait": true}),
            409,
            "would never empty",
        ),
        (
            "/api/vrrp/VI_1/step-down",
            json!({}),
            404,
            "no VRRP instance",
        ),
    ];
    for (path, body, status, why) in cases {
        let answer = node.remote(Method::POST, path, Some(&body), None).await;
        assert_eq!(answer.status, status, "{path} {body}: {answer:?}");
        assert!(
            answer.error_text().contains(why),
            "{path} {body}: {answer:?}"
        );
    }
    let backend = &node.running().services()[0].backends[0];
    assert_eq!(
        (backend.admin_state().as_str(), backend.weight()),
        ("ready", 100)
    );
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_plain_or_hashed_and_basic_in_any_case() {
    let auth = Toml::List(vec!["plain:pw".into(), format!("ops:{SHA512_OF_SECRET}")]);
    let mut node = Node::start(
        "admin-auth",
        &[("auth", auth), ("commands", Toml::Bool(true))],
    )
    .await;
    let hash_as_password = format!("ops:{SHA512_OF_SECRET}");
    for (auth, expected, why) in [
        (None, 401, "no credentials"),
        (Some("plain:wrong"), 401, "a wrong password"),
        (Some("ops:pw"), 401, "another user's password"),
        (Some(hash_as_password.as_str()), 401, "the hash itself"),
        (Some("plain:pw"), 200, "the plaintext password"),
        (Some("ops:secret"), 200, "the hashed password"),
    ] {
        let answer = node.remote(Method::GET, "/api/status", None, auth).await;
        assert_eq!(answer.status, expected, "{why}");
    }
    let challenge = raw(
        node.admin,
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(challenge.status, 401);
    assert!(challenge
        .header("www-authenticate")
        .unwrap()
        .starts_with("Basic realm="));
    // `basic` in lower case (RFC 9110 11.1: the scheme is case-insensitive).
    let token = havip_node::admin::auth::base64(b"ops:secret");
    let lower = raw(
        node.admin,
        format!("GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: basic {token}\r\n\r\n").as_bytes(),
    )
    .await;
    assert_eq!(lower.status, 200);
    // /healthz stays open for upstream balancers; a command needs the password too.
    assert_eq!(status_of(&node, "/healthz").await, 200);
    let command = node
        .remote(
            Method::POST,
            "/api/backends/web/b2",
            Some(&json!({"weight": 5})),
            None,
        )
        .await;
    assert_eq!(command.status, 401);
    let command = node
        .remote(
            Method::POST,
            "/api/backends/web/b2",
            Some(&json!({"weight": 5})),
            Some("ops:secret"),
        )
        .await;
    assert_eq!(
        (command.status, command.body["weight"].as_u64()),
        (200, Some(5))
    );
    node.stop().await;
}

async fn status_of(node: &Node, path: &str) -> u16 {
    node.remote(Method::GET, path, None, None).await.status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_endpoint_over_tls() {
    require!(Need::Openssl);
    let scratch = havip_test_support::scratch::Scratch::new("admin-tls-pki");
    let pki = havip_test_support::pki::Pki::generate(&scratch);
    let tls = [
        ("tls_cert", Toml::Str(pki.server_cert.display().to_string())),
        ("tls_key", Toml::Str(pki.server_key.display().to_string())),
    ];
    let mut node = Node::start("admin-tls", &tls).await;
    let over_tls = |ca: &std::path::Path| Target::Admin {
        authority: node.admin.to_string(),
        tls: Some(ClientTls {
            ca_file: Some(ca.to_path_buf()),
        }),
    };
    let answer = client::request(
        &over_tls(&pki.ca_cert),
        Method::GET,
        "/api/status",
        None,
        None,
    )
    .await
    .unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body["services"][0]["name"], "web");
    // A certificate from another CA is not trusted; plain HTTP gets no answer.
    assert!(
        client::request(&over_tls(&pki.other_ca_cert), Method::GET, "/", None, None)
            .await
            .is_err()
    );
    let plain = Target::Admin {
        authority: node.admin.to_string(),
        tls: None,
    };
    assert!(client::request(&plain, Method::GET, "/healthz", None, None)
        .await
        .is_err());
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promtool_accepts_the_metrics() {
    require!(Need::Promtool);
    let mut node = Node::start("admin-metrics", &[]).await;
    // Some traffic and a drained backend, so every family has samples.
    let (mut stream, _) = connect(node.service).await;
    echo(&mut stream, b"hello").await;
    node.local(
        Method::POST,
        "/api/backends/web/b1",
        Some(&json!({"state": "drain"})),
    )
    .await;
    let raw = raw(
        node.admin,
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(raw.status, 200);
    assert!(raw
        .header("content-type")
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = raw.text();
    for needed in [
        "\nprocess_cpu_seconds_total ",
        "\nprocess_resident_memory_bytes ",
        "\nprocess_virtual_memory_bytes ",
        "\nprocess_open_fds ",
        "\nprocess_max_fds ",
        "\nprocess_start_time_seconds ",
        "\nhavip_backend_admin_state{service=\"web\",backend=\"b1\",state=\"drain\"} 1\n",
        "\nhavip_backend_admin_state{service=\"web\",backend=\"b1\",state=\"ready\"} 0\n",
    ] {
        assert!(text.contains(needed), "no {needed:?} in\n{text}");
    }
    let start: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("process_start_time_seconds "))
        .unwrap()
        .parse()
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        now - start < 60.0 && now >= start,
        "start {start}, now {now}"
    );
    let mut promtool = Command::new(Need::Promtool.path())
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = promtool.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success() && said.trim().is_empty(),
        "promtool: {said}"
    );
    drop(stream);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_changes_auth_and_commands_for_the_next_request() {
    use havip_node::admin::{http, router, Access, AdminState};
    use std::sync::Arc;
    let config = |admin: &str| {
        let text =
            format!("[admin]\nlisten = \"127.0.0.1:0\"\n{admin}\n[control]\nsocket = \"\"\n");
        let path = std::path::Path::new("reload.toml");
        // Only `[admin]` matters here: the reader's typed config, services or not.
        havip_config::read(path, &text).config
    };
    let before = config("");
    let state = Arc::new(
        AdminState::new(
            &before,
            Arc::default(),
            None,
            tokio::time::Instant::now(),
            havip_node::admin::NodeLink::default(),
        )
        .unwrap(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(http::serve_tcp(
        listener,
        None,
        router(state.clone(), Access::Network),
        stop.clone(),
    ));
    let target = Target::Admin {
        authority: addr.to_string(),
        tls: None,
    };
    let post = |auth: Option<&'static str>| {
        let target = target.clone();
        async move {
            client::request(
                &target,
                Method::POST,
                "/api/backends/web/b0",
                Some(&json!({"state": "drain"})),
                auth,
            )
            .await
            .unwrap()
            .status
        }
    };
    assert_eq!(post(None).await, 403, "commands off");
    let after = config(&format!(
        "commands = true\nauth = [\"ops:{SHA512_OF_SECRET}\"]"
    ));
    state.reconfigure(&after).unwrap();
    assert_eq!(post(None).await, 401, "the new credentials are asked for");
    assert_eq!(
        post(Some("ops:secret")).await,
        404,
        "allowed: there is no such service here"
    );
    // A config whose hash cannot be read changes nothing.
    let broken = config("commands = false\nauth = [\"ops:$6$saltsalt$short\"]");
    assert!(state.reconfigure(&broken).is_err());
    assert_eq!(post(Some("ops:secret")).await, 404, "what ran stays");
    stop.cancel();
}
