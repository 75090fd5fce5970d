use std::sync::Arc;
use std::time::Duration;

use super::lex::{lex_line, Lexeme};
use super::*;
use crate::model::TrackerKind;
use crate::Report;

fn file() -> Arc<str> {
    Arc::from("keepalived.conf")
}

fn lines(report: &Report) -> Vec<String> {
    report.sorted().iter().map(|n| n.to_string()).collect()
}

fn words(line: &str) -> Vec<String> {
    lex_line(line)
        .unwrap()
        .into_iter()
        .map(|(w, _)| match w {
            Lexeme::Word(t, _) => t,
            Lexeme::Open => "{".into(),
            Lexeme::Close => "}".into(),
        })
        .collect()
}

fn import(text: &str) -> (VrrpPart, Report) {
    let mut report = Report::default();
    let tree = parse_text(&file(), text, &mut report);
    let ctx = Context {
        services: &[],
        origins: &[],
        scripts: &[],
    };
    let m = map(&tree, &ctx, &mut report);
    (m, report)
}

#[test]
fn lexer_follows_keepalived_quoting() {
    assert_eq!(
        words("script \"killall -0 haproxy\""),
        ["script", "killall -0 haproxy"]
    );
    assert_eq!(words("a{b}c"), ["a", "{", "b", "}", "c"]);
    assert_eq!(words("abcd\" efg h jkl \"mnop"), ["abcd efg h jkl mnop"]);
    assert_eq!(words("x 'a \"b' # comment"), ["x", "a \"b"]);
    assert_eq!(words("x y! comment"), ["x", "y"]);
    assert_eq!(words(r#"x "a\tb""#), ["x", "a\tb"]);
    assert_eq!(lex_line("x \"open").unwrap_err().column, 3);
}

#[test]
fn blocks_on_one_line_or_the_next() {
    let mut report = Report::default();
    let tree = parse_text(
        &file(),
        "unicast_peer { 10.0.0.2 10.0.0.3 }\nvirtual_ipaddress\n{\n  10.0.0.100\n}\n",
        &mut report,
    );
    assert!(report.notes.is_empty(), "{:?}", lines(&report));
    assert_eq!(tree.directives.len(), 2);
    assert_eq!(tree.directives[0].children()[0].name(), "10.0.0.2");
    assert_eq!(tree.directives[0].children()[0].arg(0), Some("10.0.0.3"));
    assert_eq!(tree.directives[1].children()[0].name(), "10.0.0.100");
    assert_eq!(tree.directives[1].children()[0].name.place.line, 4);
}

#[test]
fn syntax_errors_name_file_and_line() {
    let (_, report) = import("vrrp_instance X {\n  state MASTER\n");
    assert!(
        lines(&report).contains(&"keepalived.conf:1:17: {: error: not closed by }".to_string()),
        "{:?}",
        lines(&report)
    );
    let (_, report) = import("}\n");
    assert!(lines(&report)[0].starts_with("keepalived.conf:1:1: }: error: no block to close"));
    let (_, report) = import("vrrp_script x {\n  script \"abc\n}\n");
    assert!(lines(&report)
        .iter()
        .any(|l| l.starts_with("keepalived.conf:2:10: (syntax): error: unterminated")));
    let mut report = Report::default();
    parse_text(&file(), &"a {".repeat(200), &mut report);
    assert!(lines(&report)
        .iter()
        .any(|l| l.contains("nested too deeply")));
}

#[test]
fn parameters_and_continuations() {
    let (m, report) = import(
        "$IF=eth9\nvrrp_instance V {\n  interface $IF\n  virtual_router_id \\\n 7\n  virtual_ipaddress { 10.0.0.1/24 dev ${IF} label eth9:v }\n}\n@node2 priority 50\n",
    );
    let v = &m.vrrp[0];
    assert_eq!(v.interface.as_ref().unwrap().value, "eth9");
    assert_eq!(v.vrid.as_ref().unwrap().value, 7);
    let vip = &v.virtual_addresses[0].value;
    assert_eq!(vip.interface.as_deref(), Some("eth9"));
    assert_eq!(vip.label.as_deref(), Some("eth9:v"));
    assert_eq!(vip.prefix, 24);
    assert!(lines(&report)
        .iter()
        .any(|l| l.contains("keepalived.conf:8:1: @node2: not carried over")));
}

#[test]
fn an_instance_with_everything() {
    let (m, report) = import(
        "global_defs {\n  vrrp_version 3\n  vrrp_garp_master_delay 2\n  vrrp_garp_master_repeat 3\n  vrrp_garp_master_refresh 60\n  script_user nobody\n}\n\
         vrrp_script chk {\n  script \"/usr/local/bin/check.sh --fast\"\n  interval 3\n  timeout 2\n  weight -20\n  rise 2\n  fall 3\n}\n\
         vrrp_instance VI {\n  state BACKUP\n  interface eth0\n  virtual_router_id 42\n  priority 150\n  advert_int 0.1\n  nopreempt\n  no_accept\n\
           unicast_src_ip 10.0.0.1\n  unicast_peer {\n    10.0.0.2\n    10.0.0.3\n  }\n  virtual_ipaddress {\n    10.0.0.100/24\n    fd00::100/64 dev eth1\n  }\n\
           track_script {\n    chk weight -30\n  }\n  track_interface {\n    eth1 weight -50\n  }\n  notify_master \"/etc/keepalived/master.sh a b\"\n  garp_master_repeat 7\n}\n",
    );
    assert!(!report.has_errors(), "{:?}", lines(&report));
    let v = &m.vrrp[0];
    assert_eq!(v.version.as_ref().unwrap().value, 3);
    assert_eq!(v.priority.as_ref().unwrap().value, 150);
    assert_eq!(
        v.advert_interval.as_ref().unwrap().value,
        Duration::from_millis(100)
    );
    assert!(!v.preempt.as_ref().unwrap().value);
    assert!(!v.accept.as_ref().unwrap().value);
    assert_eq!(v.source.as_ref().unwrap().value.to_string(), "10.0.0.1");
    assert_eq!(v.unicast_peers.as_ref().unwrap().value.len(), 2);
    assert_eq!(v.virtual_addresses.len(), 2);
    assert_eq!(
        v.announce.second_burst_delay.as_ref().unwrap().value,
        Duration::from_secs(2)
    );
    assert_eq!(v.announce.burst_count.as_ref().unwrap().value, 7);
    assert_eq!(
        v.announce.refresh_interval.as_ref().unwrap().value,
        Duration::from_secs(60)
    );
    assert_eq!(
        v.notify.master.as_ref().unwrap().value,
        ["/etc/keepalived/master.sh", "a", "b"]
    );
    assert_eq!(v.notify.user.as_ref().unwrap().value, "nobody");
    let refs: Vec<(&str, Option<i32>)> = v
        .track
        .iter()
        .map(|t| (t.value.tracker.as_str(), t.value.weight))
        .collect();
    assert_eq!(refs, [("chk", Some(-30)), ("if_eth1", Some(-50))]);
    let chk = &m.trackers[0];
    assert_eq!(chk.kind.value, TrackerKind::Script);
    assert_eq!(
        chk.command.as_ref().unwrap().value,
        ["/usr/local/bin/check.sh", "--fast"]
    );
    assert_eq!(chk.interval.as_ref().unwrap().value, Duration::from_secs(3));
    assert_eq!(chk.timeout.as_ref().unwrap().value, Duration::from_secs(2));
    assert_eq!(chk.weight.as_ref().unwrap().value, -20);
    assert_eq!(chk.user.as_ref().unwrap().value, "nobody");
    assert_eq!(m.trackers[1].kind.value, TrackerKind::Interface);
    assert_eq!(m.trackers[1].interface.as_ref().unwrap().value, "eth1");
}

#[test]
fn keepalived_defaults_and_traps() {
    let (m, report) = import(
        "vrrp_instance VI {\n  state MASTER\n  interface eth0\n  virtual_router_id 51\n  advert_int 0.5\n  nopreempt\n  preempt_delay 10\n\
           authentication {\n    auth_type PASS\n    auth_pass 123456789\n  }\n  virtual_ipaddress {\n    10.0.0.100\n  }\n}\n",
    );
    let v = &m.vrrp[0];
    // keepalived: VRRPv2 unless told otherwise; a MASTER without priority owns the address.
    assert_eq!(v.version.as_ref().unwrap().value, 2);
    assert_eq!(v.priority.as_ref().unwrap().value, 255);
    // v2 carries whole seconds: keepalived rounds 0.5 to 1.
    assert_eq!(
        v.advert_interval.as_ref().unwrap().value,
        Duration::from_secs(1)
    );
    // havip honours nopreempt where keepalived silently drops it.
    assert!(!v.preempt.as_ref().unwrap().value);
    assert_eq!(v.virtual_addresses[0].value.prefix, 32);
    let l = lines(&report);
    for expect in [
        "keepalived.conf:2:3: state MASTER: warning: no priority",
        "keepalived.conf:5:14: advert_int: warning: VRRPv2 advertises whole seconds",
        "keepalived.conf:6:3: nopreempt: warning: with state MASTER (keepalived.conf:2) keepalived ignores nopreempt",
        "keepalived.conf:7:3: preempt_delay: warning: with state MASTER",
    ] {
        assert!(l.iter().any(|x| x.starts_with(expect)), "{expect}\n{l:#?}");
    }
}

#[test]
fn unsupported_parts_are_listed() {
    let (m, report) = import(
        "vrrp_sync_group G {\n  group {\n    VI\n  }\n}\nvirtual_server 10.0.0.1 80 {\n}\n\
         vrrp_instance VI {\n  interface eth0\n  virtual_router_id 9\n  use_vmac\n  virtual_ipaddress {\n    10.0.0.1-5\n  }\n  authentication {\n    auth_type AH\n    auth_pass x\n  }\n}\n",
    );
    let l = lines(&report);
    assert!(l
        .iter()
        .any(|x| x.starts_with("keepalived.conf:1:1: vrrp_sync_group: not carried over")));
    assert!(l
        .iter()
        .any(|x| x.starts_with("keepalived.conf:6:1: virtual_server: not carried over")));
    assert!(l
        .iter()
        .any(|x| x.starts_with("keepalived.conf:11:3: use_vmac: not carried over")));
    assert!(l
        .iter()
        .any(|x| x.contains("address ranges are not supported")));
    assert!(l.iter().any(|x| x.contains("auth_type AH: warning")));
    assert!(m.vrrp[0].auth_pass.is_none());
}

#[test]
fn includes_are_relative_to_the_including_file() {
    let dir = std::env::temp_dir().join(format!("havip-ka-inc-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("conf.d/sub")).unwrap();
    std::fs::write(dir.join("keepalived.conf"), "include conf.d/*.conf\n").unwrap();
    std::fs::write(
        dir.join("conf.d/a.conf"),
        "vrrp_instance A {\n  interface eth0\n  virtual_router_id 1\n  virtual_ipaddress {\n    10.0.0.1\n  }\n}\ninclude sub/b.conf\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("conf.d/sub/b.conf"),
        "vrrp_instance B {\n  interface eth0\n  virtual_router_id 2\n  virtual_ipaddress {\n    10.0.0.2\n  }\n}\ninclude ../a.conf\n",
    )
    .unwrap();
    let mut report = Report::default();
    let tree = load(&dir.join("keepalived.conf"), &mut report).unwrap();
    assert_eq!(tree.files.len(), 3);
    let names: Vec<&str> = tree.directives.iter().filter_map(|n| n.arg(0)).collect();
    assert_eq!(names, ["A", "B"]);
    let b = dir.join("conf.d/sub/b.conf").display().to_string();
    assert_eq!(tree.directives[1].name.place.file.as_ref(), b);
    assert!(
        lines(&report).iter().any(|l| l.contains("includes itself")),
        "{:?}",
        lines(&report)
    );
    // A missing file with plain include is reported, not fatal (as keepalived).
    let mut report = Report::default();
    std::fs::write(
        dir.join("k2.conf"),
        "include nothing.conf\nincludea nothing.conf\n",
    )
    .unwrap();
    load(&dir.join("k2.conf"), &mut report).unwrap();
    let l = lines(&report);
    assert!(l[0].contains("include: not carried over"), "{l:?}");
    assert!(l[1].contains("include: error"), "{l:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn equal_priorities_across_a_set_are_warned() {
    let text = "vrrp_instance VI {\n  interface eth0\n  virtual_router_id 9\n  priority 100\n  virtual_ipaddress {\n    10.0.0.1\n  }\n}\n";
    let (a, _) = import(text);
    let (b, _) = import(text);
    let mut report = Report::default();
    check_set(&[a.vrrp.clone(), b.vrrp.clone()], &mut report);
    assert!(lines(&report)[0].starts_with(
        "keepalived.conf:4:12: priority: warning: every node of instance VI has priority 100"
    ));
    let (c, _) = import(
        &text
            .replace("priority 100", "priority 90")
            .replace("virtual_router_id 9", "virtual_router_id 8"),
    );
    let mut report = Report::default();
    check_set(&[a.vrrp, c.vrrp], &mut report);
    let l = lines(&report);
    assert!(!l.iter().any(|x| x.contains("every node")));
    assert!(
        l.iter().any(|x| x.contains("virtual_router_id differs")),
        "{l:?}"
    );
}

/// A directory of keepalived files, removed on drop.
struct Files(std::path::PathBuf);

impl Files {
    fn new(tag: &str) -> Files {
        let dir = std::env::temp_dir().join(format!("havip-ka-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Files(dir)
    }

    /// An instance named `name` in `path`.
    fn instance(&self, path: &str, name: &str) {
        let file = self.0.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(
            file,
            format!("vrrp_instance {name} {{\n  interface eth0\n  virtual_router_id 1\n  virtual_ipaddress {{\n    10.0.0.1\n  }}\n}}\n"),
        )
        .unwrap();
    }

    /// The instances a main file with `text` reads, in order, and the report.
    fn load(&self, text: &str) -> (Vec<String>, Vec<String>) {
        let main = self.0.join("keepalived.conf");
        std::fs::write(&main, text).unwrap();
        let mut report = Report::default();
        let tree = load(&main, &mut report).unwrap();
        let names = tree
            .directives
            .iter()
            .filter_map(|d| d.arg(0).map(str::to_string))
            .collect();
        let dir = format!("{}/", self.0.display());
        let lines = lines(&report)
            .into_iter()
            .map(|l| l.replace(&dir, ""))
            .collect();
        (names, lines)
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `include` expands braces as keepalived's glob(GLOB_BRACE) does: each alternative in
/// order, its matches sorted; nested braces; braces with wildcards; the rest of the line
/// (comments removed) is the pattern.
#[test]
fn include_expands_braces_in_order() {
    let files = Files::new("braces");
    for (path, name) in [
        ("a.conf", "A"),
        ("b.conf", "B"),
        ("d/x/2.conf", "X2"),
        ("d/x/1.conf", "X1"),
        ("d/y/1.conf", "Y1"),
        ("d/z/1.conf", "Z1"),
    ] {
        files.instance(path, name);
    }
    let (names, notes) = files.load("include {b,a}.conf\n");
    assert_eq!(names, ["B", "A"]);
    assert!(notes.is_empty(), "{notes:?}");
    let (names, _) = files.load("include d/{z,{x,y}}/*.conf # the nodes\n");
    assert_eq!(names, ["Z1", "X1", "X2", "Y1"]);
    let (names, _) = files.load("include {d/*/1,a}.conf\n");
    assert_eq!(names, ["X1", "Y1", "Z1", "A"]);
    // Not closed: a literal name, which does not exist.
    let (names, notes) = files.load("include {a.conf\n");
    assert!(names.is_empty());
    assert!(notes[0].contains("{a.conf: no such file"), "{notes:?}");
}

/// What a missing alternative does depends on the include variant, as in keepalived 2.2.7.
#[test]
fn missing_alternatives_follow_keepalived() {
    let files = Files::new("missing");
    files.instance("a.conf", "A");
    // Plain include: the files that exist are read; the missing one is noted.
    let (names, notes) = files.load("include {a,missing}.conf\n");
    assert_eq!(names, ["A"]);
    assert_eq!(
        notes,
        ["keepalived.conf:1:1: include: not carried over: {a,missing}.conf: some files are missing; the others are read"]
    );
    // includeb requires every alternative: an error, and none is read.
    let (names, notes) = files.load("includeb {a,missing}.conf\n");
    assert!(names.is_empty());
    assert_eq!(
        notes,
        ["keepalived.conf:1:1: include: error: {a,missing}.conf: some files are missing, so includeb reads none of them"]
    );
    // Nothing at all: a brace pattern fails includeb and includea only; a plain name fails
    // includem, includew and includea.
    for (line, error) in [
        ("include {x,y}.conf", false),
        ("includem {x,y}.conf", false),
        ("includeb {x,y}.conf", true),
        ("includea {x,y}.conf", true),
        ("includer x.conf", false),
        ("includem x.conf", true),
        ("includeb x.conf", false),
    ] {
        let (_, notes) = files.load(&format!("{line}\n"));
        let what = if error { "error" } else { "not carried over" };
        assert!(
            notes.len() == 1 && notes[0].contains(&format!(": include: {what}: ")),
            "{line}: {notes:?}"
        );
    }
    // A wildcard matching nothing in an existing directory fails includew and includea.
    let (_, notes) = files.load("includem *.nothing\nincludew *.nothing\n");
    assert!(notes[0].contains("1:1: include: not carried over: *.nothing: no file matches"));
    assert!(notes[1].contains("2:1: include: error: *.nothing: no file matches"));
}

/// keepalived reads only regular files without execute permission (an error with
/// `includer`, a note with `include`).
#[cfg(unix)]
#[test]
fn directories_and_executables_are_not_read() {
    use std::os::unix::fs::PermissionsExt;
    let files = Files::new("kinds");
    files.instance("a.conf", "A");
    files.instance("x.conf", "X");
    std::fs::set_permissions(
        files.0.join("x.conf"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::fs::create_dir_all(files.0.join("dir.conf")).unwrap();
    let (names, notes) = files.load("include ?.conf\ninclude dir.conf\nincluder x.conf\n");
    assert_eq!(names, ["A"]);
    assert_eq!(
        notes,
        [
            "keepalived.conf:1:1: include: not carried over: x.conf: is not a regular non-executable file; keepalived skips it",
            "keepalived.conf:2:1: include: not carried over: dir.conf: is a directory; keepalived skips it",
            "keepalived.conf:3:1: include: error: x.conf: is not a regular non-executable file; keepalived skips it",
        ]
    );
}

#[test]
fn a_misspelt_track_script_gets_a_suggestion() {
    let (_, report) = import(
        "vrrp_script chk_haproxy {\n  script \"pidof haproxy\"\n}\n\
         vrrp_instance VI {\n  interface eth0\n  virtual_router_id 9\n  virtual_ipaddress {\n    10.0.0.1\n  }\n  track_script {\n    chk_haproy\n  }\n}\n",
    );
    assert!(
        lines(&report).contains(&"keepalived.conf:11:5: track_script: error: no vrrp_script named \"chk_haproy\"; did you mean \"chk_haproxy\"?".to_string()),
        "{:?}",
        lines(&report)
    );
}

/// A track script that is a device or a FIFO is not read: `script "/dev/zero"` made the
/// import read until memory ran out, `/dev/stdin` blocked it (issue 15). Without the fix this
/// test does not finish.
#[test]
fn a_script_that_is_not_a_regular_file_is_not_read() {
    let (part, _report) = import(
        "vrrp_script chk {\n    script \"/dev/zero\"\n}\nvrrp_script chk2 {\n    script \"/dev/stdin\"\n}\n\
         vrrp_instance VI_1 {\n    interface eth0\n    virtual_router_id 51\n    priority 100\n\
         virtual_ipaddress {\n        10.0.0.100/24\n    }\n    track_script {\n        chk\n        chk2\n    }\n}\n",
    );
    assert_eq!(part.vrrp.len(), 1);
    // Not read, so kept as a script tracker that runs the command as keepalived would.
    assert_eq!(part.trackers.len(), 2, "{:?}", part.trackers);
}
