//! Whole imports of the seed configs (and, in [`golden`], against the reviewed outputs);
//! arbitrary text and configs written from random choices ([`generate`]) through the whole
//! import: no panic, every note placed in an input, and every config havip's own reader
//! accepts unless the import reported an error (sane inputs must report none); arbitrary
//! drafts ([`models`]) through the emitter: only keys havip reads, of the types it expects.

mod generate;
mod golden;
mod models;
mod valid;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use havip_config::place::Place;
use proptest::prelude::*;

use super::*;

fn seeds() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/import/seeds")
}

#[test]
fn output_paths_for_one_and_several_nodes() {
    let node = |name: Option<&str>| Node {
        keepalived: Some(PathBuf::from(format!("{}.conf", name.unwrap_or("k")))),
        name: name.map(str::to_string),
        draft: model::Draft::default(),
    };
    let one = [node(None)];
    assert_eq!(output_paths(&one, None).unwrap(), vec![None]);
    assert_eq!(
        output_paths(&one, Some(Path::new("out.toml"))).unwrap(),
        vec![Some(PathBuf::from("out.toml"))]
    );
    let two = [node(Some("m1")), node(Some("m2"))];
    assert!(output_paths(&two, None)
        .unwrap_err()
        .to_string()
        .contains("-o DIR"));
    assert_eq!(
        output_paths(&two, Some(Path::new("out/"))).unwrap(),
        vec![
            Some(PathBuf::from("out/m1.toml")),
            Some(PathBuf::from("out/m2.toml"))
        ]
    );
    assert_eq!(
        output_paths(&two, Some(Path::new("etc/havip.toml"))).unwrap(),
        vec![
            Some(PathBuf::from("etc/havip.m1.toml")),
            Some(PathBuf::from("etc/havip.m2.toml"))
        ]
    );
}

#[test]
fn node_names_are_file_names_made_unique() {
    let p = |s: &str| PathBuf::from(s);
    assert_eq!(
        node_names(&[p("a/master1.conf"), p("b/master2.conf")]),
        ["master1", "master2"]
    );
    assert_eq!(
        node_names(&[p("m1/keepalived.conf"), p("m2/keepalived.conf")]),
        ["m1-keepalived", "m2-keepalived"]
    );
    assert_eq!(node_names(&[p("k.conf"), p("k.conf")]), ["k", "k-2"]);
}

#[test]
fn script_file_arguments() {
    assert_eq!(
        ScriptFile::parse("/etc/k/check.sh=./c.sh"),
        ScriptFile {
            path_in_config: Some("/etc/k/check.sh".into()),
            file: PathBuf::from("./c.sh")
        }
    );
    assert_eq!(ScriptFile::parse("c.sh").path_in_config, None);
}

#[test]
fn a_script_given_by_name_becomes_a_built_in_tracker() {
    let dir = seeds();
    let inputs = Inputs {
        haproxy: Some(dir.join("rke2-haproxy.cfg")),
        keepalived: vec![dir.join("rke2-keepalived.conf")],
        nginx: None,
        scripts: vec![ScriptFile::parse(
            &dir.join("rke2-check_apiserver.sh").to_string_lossy(),
        )],
    };
    let out = import(&inputs, &lint::NoInterfaces);
    let t = &out.nodes[0].draft.trackers[0];
    assert_eq!(t.kind.value, model::TrackerKind::Listener);
    assert_eq!(t.service.as_ref().unwrap().value, "rke2-apiserver");
    assert_eq!(t.weight.as_ref().unwrap().value, 0);
    // Without the script, keepalived's track script stays a script.
    let out = import(
        &Inputs {
            scripts: Vec::new(),
            ..inputs
        },
        &lint::NoInterfaces,
    );
    assert_eq!(
        out.nodes[0].draft.trackers[0].kind.value,
        model::TrackerKind::Script
    );
}

/// The kubeadm HA guide's pair: HAProxy on 8443 and a check_apiserver.sh that curls it.
#[test]
fn a_curl_to_the_balancer_becomes_a_service_tracker() {
    let dir = std::env::temp_dir().join(format!("havip-import-kubeadm-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let haproxy = write(
        "haproxy.cfg",
        "frontend apiserver\n  bind *:8443\n  mode tcp\n  default_backend apiserver\n\
         backend apiserver\n  option httpchk GET /healthz\n  http-check expect status 200\n  mode tcp\n  option ssl-hello-chk\n  balance roundrobin\n  server m1 10.0.0.1:6443 check\n",
    );
    let keepalived = write(
        "keepalived.conf",
        "vrrp_script check_apiserver {\n  script \"/etc/keepalived/check_apiserver.sh\"\n  interval 3\n  weight -2\n  fall 10\n  rise 2\n}\n\
         vrrp_instance VI_1 {\n  state MASTER\n  interface eth0\n  virtual_router_id 51\n  priority 101\n  virtual_ipaddress {\n    10.0.0.100\n  }\n  track_script {\n    check_apiserver\n  }\n}\n",
    );
    let script = write(
        "check.sh",
        "#!/bin/sh\nerrorExit() {\n    echo \"*** $*\" 1>&2\n    exit 1\n}\n\
         curl --silent --max-time 2 --insecure https://localhost:8443/ -o /dev/null || errorExit \"Error GET https://localhost:8443/\"\n\
         if ip addr | grep -q 10.0.0.100; then\n    curl --silent --max-time 2 --insecure https://10.0.0.100:8443/ -o /dev/null || errorExit \"Error GET https://10.0.0.100:8443/\"\nfi\n",
    );
    let out = import(
        &Inputs {
            haproxy: Some(haproxy),
            keepalived: vec![keepalived],
            nginx: None,
            scripts: vec![ScriptFile::parse(&format!(
                "/etc/keepalived/check_apiserver.sh={}",
                script.display()
            ))],
        },
        &lint::NoInterfaces,
    );
    let t = &out.nodes[0].draft.trackers[0];
    assert_eq!(t.kind.value, model::TrackerKind::Service);
    assert_eq!(t.service.as_ref().unwrap().value, "apiserver");
    assert_eq!(t.min_healthy.as_ref().unwrap().value, 1);
    assert_eq!(t.weight.as_ref().unwrap().value, -2);
    assert_eq!(t.fall.as_ref().unwrap().value, 10);
    // The script file is listed among the inputs, and its traps are reported.
    assert!(out.nodes[0]
        .draft
        .inputs
        .iter()
        .any(|i| i.ends_with("check.sh")));
    let lines: Vec<String> = out.report.sorted().iter().map(|n| n.to_string()).collect();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("option ssl-hello-chk: warning: SSLv3 hello check")),
        "{lines:#?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_process_check_without_the_proxy_imported_stays_a_process_check() {
    let dir = seeds();
    let out = import(
        &Inputs {
            keepalived: vec![dir.join("kubesphere-keepalived.conf")],
            ..Inputs::default()
        },
        &lint::NoInterfaces,
    );
    let t = &out.nodes[0].draft.trackers[0];
    assert_eq!(t.kind.value, model::TrackerKind::Process);
    assert_eq!(t.process.as_ref().unwrap().value, "haproxy");
    assert_eq!(
        t.interval.as_ref().unwrap().value,
        std::time::Duration::from_secs(2)
    );
}

#[test]
fn unreadable_inputs_are_errors() {
    let out = import(
        &Inputs {
            haproxy: Some(PathBuf::from("/nonexistent/haproxy.cfg")),
            ..Inputs::default()
        },
        &lint::NoInterfaces,
    );
    assert!(out.report.has_errors());
    assert!(out.report.sorted()[0]
        .to_string()
        .starts_with("/nonexistent/haproxy.cfg:1:1: haproxy: error: cannot read"));
}

/// Text that looks enough like a config to reach deep into the parsers.
fn configish() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("{".to_string()),
        Just("}".to_string()),
        Just(";".to_string()),
        Just("\n".to_string()),
        Just("\"".to_string()),
        Just("'".to_string()),
        Just("\\".to_string()),
        Just("#".to_string()),
        Just(" ".to_string()),
        Just("$X=".to_string()),
        Just("$X".to_string()),
        Just("@n ".to_string()),
        Just(".if".to_string()),
        prop::sample::select(vec![
            "global",
            "defaults",
            "frontend f",
            "backend b",
            "listen l",
            "bind",
            "*:6443",
            ":::1",
            "server",
            "s",
            "10.0.0.1:6443",
            "check",
            "inter",
            "default-server",
            "balance",
            "random(3)",
            "option",
            "httpchk",
            "timeout",
            "client",
            "tunnel",
            "mode",
            "http",
            "stats",
            "auth",
            "a:b",
            "default_backend",
            "stream",
            "upstream",
            "u",
            "listen",
            "proxy_pass",
            "hash",
            "$remote_addr",
            "consistent",
            "weight=0",
            "max_fails=x",
            "include",
            "vrrp_instance",
            "VI",
            "vrrp_script",
            "script",
            "track_script",
            "virtual_ipaddress",
            "10.0.0.1/24",
            "dev",
            "unicast_peer",
            "authentication",
            "auth_pass",
            "state",
            "MASTER",
            "nopreempt",
            "priority",
            "256",
            "advert_int",
            "0.0001",
            "virtual_router_id",
            "0",
            "-1",
            "18446744073709551616",
            "notify",
            "global_defs",
            "vrrp_garp_interval",
            "track_interface",
            "weight",
            "pgrep haproxy",
            "ss | grep 6443",
            "curl https://localhost:6443/",
        ])
        .prop_map(str::to_string),
        // No `/`: an include must not reach outside the scratch directory (`/proc/kmsg`
        // would block a read).
        "[ -.0-~]{0,6}",
        any::<char>().prop_map(|c| if c == '/' { '\\' } else { c }.to_string()),
    ];
    prop::collection::vec(piece, 0..80).prop_map(|v| v.join(" "))
}

/// A directory for one case's input files, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("havip-import-case-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A balancer for the keepalived cases' track scripts to find.
const LISTEN_6443: &str = "listen l\n bind *:6443\n server s 10.0.0.1:6443 check\n";

/// Import `inputs` (written as files) and check every node's config: valid for havip when
/// the import reported no error, and read as havip's tables in any case; every note placed
/// in one of the inputs.
fn import_is_valid_or_an_error(inputs: &[(&str, &str)]) -> Result<Imported, TestCaseError> {
    let scratch = Scratch::new();
    let mut request = Inputs::default();
    for (kind, text) in inputs {
        let path = scratch.write(&format!("{kind}.conf"), text);
        match *kind {
            "haproxy" => request.haproxy = Some(path),
            "nginx" => request.nginx = Some(path),
            _ => request.keepalived.push(path),
        }
    }
    let imported = import(&request, &lint::NoInterfaces);
    for node in &imported.nodes {
        if let Err(e) = valid::check_emitted(&node.draft, &imported.report) {
            prop_assert!(false, "{}\ninputs: {:?}", e, inputs);
        }
    }
    let files: Vec<String> = imported
        .nodes
        .iter()
        .flat_map(|n| n.draft.inputs.iter().cloned())
        .collect();
    for note in &imported.report.notes {
        prop_assert!(
            note.place.line >= 1 && files.iter().any(|f| **f == *note.place.file),
            "{} is not placed in an input\ninputs: {:?}",
            note,
            inputs
        );
    }
    Ok(imported)
}

/// Sane inputs import without an error: what havip refuses there is the importer's fault.
fn import_is_clean(inputs: &[(&str, &str)]) -> Result<(), TestCaseError> {
    let imported = import_is_valid_or_an_error(inputs)?;
    let errors: Vec<String> = imported
        .report
        .sorted()
        .iter()
        .filter(|n| n.severity == Severity::Error)
        .map(|n| n.to_string())
        .collect();
    prop_assert!(
        errors.is_empty(),
        "{}\ninputs: {:?}",
        errors.join("\n"),
        inputs
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn haproxy_imports_are_valid_or_errors(text in configish()) {
        import_is_valid_or_an_error(&[("haproxy", &text)])?;
    }

    #[test]
    fn nginx_imports_are_valid_or_errors(text in configish()) {
        import_is_valid_or_an_error(&[("nginx", &text)])?;
    }

    #[test]
    fn keepalived_imports_are_valid_or_errors(text in configish()) {
        import_is_valid_or_an_error(&[("haproxy", LISTEN_6443), ("keepalived", &text)])?;
    }

    #[test]
    fn written_haproxy_configs_are_valid_or_errors(text in generate::haproxy(false)) {
        import_is_valid_or_an_error(&[("haproxy", &text)])?;
    }

    #[test]
    fn sane_haproxy_configs_import_cleanly(text in generate::haproxy(true)) {
        import_is_clean(&[("haproxy", &text)])?;
    }

    #[test]
    fn written_nginx_configs_are_valid_or_errors(text in generate::nginx(false)) {
        import_is_valid_or_an_error(&[("nginx", &text)])?;
    }

    #[test]
    fn sane_nginx_configs_import_cleanly(text in generate::nginx(true)) {
        import_is_clean(&[("nginx", &text)])?;
    }

    #[test]
    fn written_keepalived_configs_are_valid_or_errors(
        balancer in generate::haproxy(false),
        text in generate::keepalived(false),
    ) {
        import_is_valid_or_an_error(&[("haproxy", &balancer), ("keepalived", &text)])?;
    }

    #[test]
    fn sane_keepalived_configs_import_cleanly(
        balancer in generate::haproxy(true),
        text in generate::keepalived(true),
    ) {
        import_is_clean(&[("haproxy", &balancer), ("keepalived", &text)])?;
    }

    #[test]
    fn keepalived_sets_never_panic(text in configish()) {
        let mut report = Report::default();
        let tree = keepalived::parse_text(&Arc::from("k"), &text, &mut report);
        let cfg = haproxy::parse(&Arc::from("h"), LISTEN_6443, &mut report);
        let services = haproxy::map(&cfg, &mut report).services;
        let origins = vec![Balancer::Haproxy; services.len()];
        let context = keepalived::Context { services: &services, origins: &origins, scripts: &[] };
        let part = keepalived::map(&tree, &context, &mut report);
        keepalived::check_set(&[part.vrrp.clone(), part.vrrp], &mut report);
    }

    #[test]
    fn shell_reader_never_panics(text in configish()) {
        let _ = keepalived::shell::analyze_script(&text);
        let argv: Vec<String> = text.split(' ').map(str::to_string).collect();
        let _ = keepalived::shell::analyze_argv(&argv);
        let _ = text::split_command(&text);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let text = String::from_utf8_lossy(&bytes);
        let mut report = Report::default();
        let cfg = haproxy::parse(&Arc::from("h"), &text, &mut report);
        let _ = haproxy::map(&cfg, &mut report);
        let _ = nginx::parse(&Arc::from("n"), &text);
        let _ = keepalived::parse_text(&Arc::from("k"), &text, &mut report);
        let _ = keepalived::shell::analyze_script(&text);
        let read = havip_config::read(Path::new("t"), &text);
        let _ = lint::lint(&lint::facts(&read.config, &read.places), &lint::NoInterfaces);
    }

    #[test]
    fn emitted_toml_always_parses(name in "\\PC{0,12}", value in "\\PC{0,20}") {
        let mut c = model::Draft::default();
        let src = Place::new(&Arc::from(name.as_str()), 1, 1, value.clone());
        let mut s = model::Service::new(model::Sourced::noted(name.clone(), &src, value.clone()), src.clone());
        s.listen.push(model::Sourced::new(value.clone(), &src));
        s.backends.push(model::Backend {
            from: src.clone(),
            name: Some(model::Sourced::new(value.clone(), &src)),
            address: model::Sourced::new(name.clone(), &src),
            weight: None,
            max_conns: None,
            backup: None,
        });
        c.services.push(s);
        let note = Note { place: src.clone(), severity: Severity::Skipped, message: name.clone() };
        let text = emit::emit(&c, &[note]);
        let parsed: Result<toml::Table, _> = toml::from_str(&text);
        prop_assert!(parsed.is_ok(), "{}", text);
        valid::assert_known_keys("emitted", &text);
        // Arbitrary names and addresses are often invalid; the text must still be read as
        // havip's tables and keys, with only the values refused.
        for problem in valid::havip_problems("emitted", &text) {
            prop_assert!(!valid::is_shape_problem(&problem), "{}\n{}", problem, text);
        }
    }

    /// Every table and key the emitter writes, for any draft, is one havip reads, with the
    /// type it expects; only values may be refused.
    #[test]
    fn emitted_keys_are_havip_keys(draft in models::draft()) {
        let text = emit::emit(&draft, &[]);
        match valid::unknown_keys(&text) {
            Ok(unknown) => prop_assert!(unknown.is_empty(), "{:?}\n{}", unknown, text),
            Err(e) => prop_assert!(false, "not TOML: {}\n{}", e, text),
        }
        for problem in valid::havip_problems("emitted", &text) {
            prop_assert!(!valid::is_shape_problem(&problem), "{}\n{}", problem, text);
        }
    }
}

/// What havip's reader refuses is an error at the source line of the value, and an import
/// that makes nothing says so.
#[test]
fn what_havip_refuses_is_an_error_at_its_source_line() {
    let scratch = Scratch::new();
    let haproxy = scratch.write(
        "haproxy.cfg",
        "listen api\n  bind *:6443\n  retries 200\n  server m1 10.0.0.1:6443\n",
    );
    let shown = haproxy.display().to_string();
    let out = import(
        &Inputs {
            haproxy: Some(haproxy),
            ..Inputs::default()
        },
        &lint::NoInterfaces,
    );
    let lines: Vec<String> = out.report.sorted().iter().map(|n| n.to_string()).collect();
    assert!(
        lines.iter().any(|l| l.starts_with(&format!(
            "{shown}:3:11: retries: error: havip refuses the imported config: service[0].retries: "
        ))),
        "{lines:#?}"
    );
    let empty = scratch.write("empty.cfg", "global\n  daemon\n");
    let out = import(
        &Inputs {
            haproxy: Some(empty.clone()),
            ..Inputs::default()
        },
        &lint::NoInterfaces,
    );
    assert!(out
        .report
        .sorted()
        .iter()
        .any(|n| n.to_string().starts_with(&format!(
            "{}:1:1: import: error: nothing to import",
            empty.display()
        ))));
}
