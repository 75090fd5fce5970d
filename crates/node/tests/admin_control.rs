//! Runtime control over the local control socket, on a node started in-process on
//! loopback: a drain that waits for the last connection (while it keeps moving bytes and new
//! clients go elsewhere), a wait that times out, maint and weight through the API, the status
//! the CLI prints from, and the socket file's permissions as the access control.

#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

mod admin_support;

use std::collections::HashMap;
use std::time::Duration;

use admin_support::*;
use havip_node::control::client::{self, Method, Target};
use havip_test_support::guard::Need;
use havip_test_support::require;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_wait_returns_when_the_last_connection_closes() {
    let mut node = Node::start("control-drain", &[]).await;
    let (mut held, name) = connect(node.service).await;
    let path = client::backend_path("web", &name);
    let socket = Target::Socket(node.socket.clone());
    let waiting = tokio::spawn(async move {
        let body = json!({"state": "drain", "wait": true, "timeout_ms": 20_000});
        client::request(&socket, Method::POST, &path, Some(&body), None).await
    });
    // While the drain waits: the held connection keeps moving bytes, new clients go to the
    // other two, and the answer does not come.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut counts: HashMap<String, usize> = HashMap::new();
    for round in 0..10u8 {
        echo(&mut held, &[round; 2048]).await;
        let (_other, got) = connect(node.service).await;
        *counts.entry(got).or_default() += 1;
    }
    assert_eq!(
        counts.get(&name),
        None,
        "the draining {name} got new clients"
    );
    assert_eq!(counts.values().sum::<usize>(), 10);
    assert!(
        !waiting.is_finished(),
        "the drain returned with a connection open"
    );
    let closed_at = tokio::time::Instant::now();
    drop(held);
    let answer = tokio::time::timeout(LIMIT, waiting)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(answer.status, 200, "{answer:?}");
    let wait = &answer.body["wait"];
    assert_eq!(wait["drained"], true, "{answer:?}");
    assert_eq!(wait["open_at_start"], 1);
    assert_eq!(wait["still_open"], 0);
    assert!(wait["waited_ms"].as_u64().unwrap() >= 300, "{answer:?}");
    assert!(closed_at.elapsed() < Duration::from_secs(2));
    assert_eq!(answer.body["state"], "drain");
    assert_eq!(answer.body["previous_state"], "ready");

    // Back to ready: it takes clients again.
    let ready = node
        .local(
            Method::POST,
            &client::backend_path("web", &name),
            Some(&json!({"state": "ready"})),
        )
        .await;
    assert_eq!((ready.status, &ready.body["state"]), (200, &json!("ready")));
    let mut seen = std::collections::HashSet::new();
    for _ in 0..6 {
        seen.insert(connect(node.service).await.1);
    }
    assert!(
        seen.contains(&name),
        "{name} not back in rotation: {seen:?}"
    );
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_wait_that_times_out_says_how_many_are_left() {
    let mut node = Node::start("control-timeout", &[]).await;
    let (_held, name) = connect(node.service).await;
    let (_second, _) = connect(node.service).await;
    let started = tokio::time::Instant::now();
    let answer = node
        .local(
            Method::POST,
            &client::backend_path("web", &name),
            Some(&json!({"state": "maint", "wait": true, "timeout_ms": 400})),
        )
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let wait = &answer.body["wait"];
    assert_eq!(
        (&wait["drained"], &wait["still_open"]),
        (&json!(false), &json!(1))
    );
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert!(started.elapsed() < Duration::from_secs(3));
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_what_the_operator_set() {
    let mut node = Node::start("control-status", &[]).await;
    node.local(
        Method::POST,
        "/api/backends/web/b1",
        Some(&json!({"state": "maint"})),
    )
    .await;
    let weight = node
        .local(
            Method::POST,
            "/api/backends/web/b2",
            Some(&json!({"weight": 7})),
        )
        .await;
    assert_eq!(
        (&weight.body["weight"], &weight.body["previous_weight"]),
        (&json!(7), &json!(100))
    );
    let status = node.local(Method::GET, "/api/status", None).await.body;
    let backends = status["services"][0]["backends"].as_array().unwrap();
    let field = |i: usize, key: &str| backends[i][key].clone();
    assert_eq!(field(0, "admin_state"), "ready");
    assert_eq!(field(1, "admin_state"), "maint");
    assert_eq!(field(1, "available"), false);
    assert_eq!(
        (field(2, "weight"), field(2, "configured_weight")),
        (json!(7), json!(100))
    );
    for key in [
        "health",
        "last_check",
        "active",
        "connect_errors",
        "bytes_to_backend",
    ] {
        assert!(!field(0, key).is_null(), "no {key} in {}", backends[0]);
    }
    assert_eq!(
        status["havip"]["commands"], true,
        "the control socket may command"
    );
    assert!(status["havip"]["config_loaded_unix_ms"].as_u64().unwrap() > 0);
    // One backend, as the same object.
    let one = node.local(Method::GET, "/api/backends/web/b1", None).await;
    assert_eq!(one.body, backends[1]);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_socket_file_has_its_mode_and_goes_with_the_node() {
    let mut node =
        Node::start_with("control-mode", &[], |config| config.control("mode", "0600")).await;
    assert_eq!(socket_mode(&node.socket), 0o600);
    let socket = node.socket.clone();
    node.stop().await;
    // Removed by the accept task as it ends, a moment after the node stopped.
    let mut gone = false;
    for _ in 0..100 {
        gone = !socket.exists();
        if gone {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(gone, "the socket outlived the node");
    // The default mode: owner and group.
    let mut node = Node::start("control-default-mode", &[]).await;
    assert_eq!(socket_mode(&node.socket), 0o660);
    node.stop().await;
}

/// Runs `curl` on the control socket as user `nobody` (setpriv, from util-linux): the exit
/// status and what it printed.
fn curl_as_nobody(socket: &std::path::Path) -> (i32, String) {
    let output = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(Need::Curl.path())
        .args(["-sS", "--max-time", "5", "--unix-socket"])
        .arg(socket)
        .arg("http://localhost/api/status")
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_users_the_file_mode_lets_in_may_use_the_socket() {
    require!(Need::Root, Need::Curl);
    let mut node = Node::start("control-perms", &[]).await;
    // The scratch directory must let `nobody` reach the file; the file's mode decides.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        node.scratch.as_path(),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let (code, said) = curl_as_nobody(&node.socket);
    assert_ne!(code, 0, "nobody got in through a 0660 root socket: {said}");
    assert!(
        said.contains("ermission denied") || said.contains("connect"),
        "{said}"
    );
    node.stop().await;

    let mut open = Node::start_with("control-perms-open", &[], |config| {
        config.control("mode", "0666")
    })
    .await;
    std::fs::set_permissions(
        open.scratch.as_path(),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let (code, said) = curl_as_nobody(&open.socket);
    assert_eq!(code, 0, "{said}");
    assert!(said.contains("\"services\""), "{said}");
    open.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_client_that_goes_away_gives_its_slot_back() {
    use tokio::io::AsyncWriteExt;
    let mut node = Node::start("control-abandon", &[]).await;
    let (_held, name) = connect(node.service).await;
    let body = r#"{"state": "drain", "wait": true}"#;
    let request = format!(
        "POST {} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        client::backend_path("web", &name),
        body.len()
    );
    // Every slot of the control socket waits for a drain that cannot end (the connection
    // is held), then each client gives up, as a Ctrl-C on `havip backend ... --wait` does.
    let mut waiting = Vec::new();
    for _ in 0..havip_node::control::MAX_CONNECTIONS {
        let mut stream = tokio::net::UnixStream::connect(&node.socket).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        waiting.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let target = Target::Socket(node.socket.clone());
    let full = client::request(&target, Method::GET, "/healthz", None, None).await;
    assert!(full.is_err(), "a 17th connection was served: {full:?}");
    drop(waiting);
    let mut answered = false;
    for _ in 0..50 {
        let target = Target::Socket(node.socket.clone());
        if let Ok(answer) = client::request(&target, Method::GET, "/healthz", None, None).await {
            answered = answer.status == 200;
            if answered {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        answered,
        "abandoned drain waits kept the control socket's slots"
    );
    node.stop().await;
}
