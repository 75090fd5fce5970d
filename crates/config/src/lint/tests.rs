use std::path::Path;

use super::*;

struct Fake(Vec<(IpAddr, u8)>);

impl Interfaces for Fake {
    fn addresses(&self, interface: &str) -> Option<Vec<(IpAddr, u8)>> {
        (interface == "eth0").then(|| self.0.clone())
    }
}

/// The warnings `havip check` prints for a config: lints run only on one that reads cleanly.
fn warnings(toml: &str, ifs: &dyn Interfaces) -> Vec<String> {
    let (config, places) = match crate::read(Path::new("havip.toml"), toml).into_result() {
        Ok(read) => read,
        Err(problems) => panic!("the fixture does not read: {problems:#?}"),
    };
    strings(&lint(&facts(&config, &places), ifs))
}

fn strings(warnings: &[Warning]) -> Vec<String> {
    warnings.iter().map(|w| w.to_string()).collect()
}

const SERVICE: &str = r#"
[[service]]
name = "api"
listen = "*:8443"

[service.timeouts]
client_idle = "1m"
server_idle = "30s"
tunnel = "off"

[service.health]
check = "https"
path = "/healthz"

[[service.backend]]
address = "10.0.0.1:6443"
"#;

#[test]
fn idle_timeouts_in_front_of_apiservers_and_healthz() {
    let w = warnings(SERVICE, &NoInterfaces);
    assert_eq!(
        w,
        [
            "havip.toml:8:15: service[0].timeouts.server_idle: warning: idle timeout of 30s in front of an apiserver port (6443): watches and `kubectl logs -f` that stay quiet longer are cut; use at least 5m (havip's default is 1h)",
            "havip.toml:13:8: service[0].health.path: warning: HTTP check on /healthz, which is deprecated: /readyz is the load-balancer signal (it fails during --shutdown-delay-duration, so the balancer stops sending in time)",
        ]
    );
    // With the tunnel timeout on (the default), client/server idle apply only after a
    // half-close: no warning.
    let ok = SERVICE
        .replace("tunnel = \"off\"", "tunnel = \"1h\"")
        .replace("/healthz", "/readyz");
    assert!(warnings(&ok, &NoInterfaces).is_empty());
    // Not an apiserver port: no warning.
    let other = SERVICE
        .replace("6443", "8080")
        .replace("/healthz", "/readyz");
    assert!(warnings(&other, &NoInterfaces).is_empty());
}

const VRRP: &str = r#"
[[vrrp]]
name = "VI_1"
interface = "eth0"
vrid = 51
version = 2
advert_interval = "1s"
auth_pass = "K8SHA_KA_AUTH"
virtual_addresses = ["10.0.0.100/24", "10.0.0.1"]
source = "10.0.0.1"
unicast_peers = []
"#;

#[test]
fn vrrp_traps() {
    let w = warnings(VRRP, &NoInterfaces);
    let expect = [
        "havip.toml:5:8: vrrp[0].vrid: warning: VRID 51 is everyone's default",
        "havip.toml:8:13: vrrp[0].auth_pass: warning: the password is 13 bytes",
        "havip.toml:11:17: vrrp[0].unicast_peers: warning: unicast peer list with no peers",
        "havip.toml:9:39: vrrp[0].virtual_addresses[1]: warning: VIP 10.0.0.1 is this node's own source address",
    ];
    for e in expect {
        assert!(w.iter().any(|x| x.starts_with(e)), "{e}\n{w:#?}");
    }
    assert_eq!(w.len(), expect.len(), "{w:#?}");
}

/// `advert_interval = "500ms"` with `version = 2` is a reader error in a havip config
/// (VRRPv2 carries whole seconds), so only imported values (keepalived's `advert_int 0.5`)
/// reach this lint: it is fed the facts the importer would give.
#[test]
fn subsecond_adverts_with_vrrpv2() {
    let toml = VRRP.replace("advert_interval = \"1s\"", "advert_interval = \"500ms\"");
    let problems = crate::parse(Path::new("havip.toml"), &toml).unwrap_err();
    assert!(
        problems[0]
            .to_string()
            .starts_with("havip.toml:7:19: vrrp[0].advert_interval: VRRPv2 carries whole seconds"),
        "{problems:#?}"
    );
    let file: std::sync::Arc<str> = "havip.toml".into();
    let facts = Facts {
        services: Vec::new(),
        vrrp: vec![VrrpFacts {
            name: "VI_1".into(),
            place: Place::new(&file, 2, 1, "vrrp[0]"),
            interface: None,
            vrid: None,
            version: 2,
            advert: Some(At::new(
                Duration::from_millis(500),
                Place::new(&file, 7, 19, "vrrp[0].advert_interval"),
            )),
            auth_pass: None,
            unicast_peers: None,
            source: None,
            vips: Vec::new(),
        }],
        bgp: Vec::new(),
    };
    let w = strings(&lint(&facts, &NoInterfaces));
    assert_eq!(w.len(), 1, "{w:#?}");
    assert!(
        w[0].starts_with(
            "havip.toml:7:19: vrrp[0].advert_interval: warning: advert interval 500ms with VRRPv2"
        ),
        "{w:#?}"
    );
}

#[test]
fn vip_against_the_interface_addresses() {
    let toml = r#"
[[vrrp]]
name = "VI_1"
interface = "eth0"
vrid = 7
virtual_addresses = ["192.168.1.10/24", "10.1.1.1/32", "192.168.1.2/32"]
"#;
    let eth0 = Fake(vec![
        ("192.168.1.2".parse().unwrap(), 24),
        ("fe80::1".parse().unwrap(), 64),
    ]);
    let w = warnings(toml, &eth0);
    assert_eq!(w.len(), 2, "{w:#?}");
    assert!(w[0].contains(
        "VIP 10.1.1.1 is in none of the subnets of eth0 on this machine (192.168.1.2/24)"
    ));
    assert!(w[1].contains("VIP 192.168.1.2 is the primary address of eth0"));
    // Unknown interface: nothing to say.
    assert!(warnings(&toml.replace("eth0", "ens9"), &eth0).is_empty());
    // A VIP in the source's subnet is fine; one outside is not.
    let with_src = toml.replace("vrid = 7", "vrid = 7\nsource = \"172.16.0.2\"");
    let w = warnings(&with_src, &NoInterfaces);
    assert!(
        w[0].contains(
            "VIP 192.168.1.10/24 and the source address 172.16.0.2 are in different subnets"
        ),
        "{w:#?}"
    );
}

#[test]
fn bgp_traps() {
    let toml = r#"
[[service]]
name = "api"
listen = ["10.99.0.100:6443", "[::]:6443"]
[[service.backend]]
address = "10.0.0.1:6443"

[[tracker]]
name = "backends"
kind = "service"
service = "api"

[[bgp]]
name = "untracked"
virtual_addresses = ["10.99.0.101", "10.99.0.100", "2001:db8::70"]
shutdown_delay = "0s"

[[bgp]]
name = "fine"
virtual_addresses = ["10.99.0.100"]
table = 101
track = ["backends"]

[[bgp]]
name = "bird-v6"
virtual_addresses = ["2001:db8::70"]
table = 102
track = ["backends"]
daemon = "bird"
"#;
    let got = warnings(toml, &NoInterfaces);
    assert_eq!(got.len(), 4, "{got:#?}");
    assert!(
        got[0].starts_with("havip.toml:13:1: bgp[0]: warning: no `track`: the VIP stays announced"),
        "{got:#?}"
    );
    assert!(
        got[1].starts_with("havip.toml:16:18: bgp[0].shutdown_delay: warning: shutdown delay of 0"),
        "{got:#?}"
    );
    // FRR cannot import the IPv6 VIP (BIRD can: no warning for "bird-v6").
    assert!(
        got[2].starts_with(
            "havip.toml:15:52: bgp[0].virtual_addresses[2]: warning: 2001:db8::70 is IPv6: FRR's `ip import-table` imports IPv4 routes only"
        ),
        "{got:#?}"
    );
    // 10.99.0.100 is listened on, 2001:db8::70 by the IPv6 wildcard; 10.99.0.101 by nobody.
    assert!(
        got[3].starts_with(
            "havip.toml:15:22: bgp[0].virtual_addresses[0]: warning: no [[service]] listens on 10.99.0.101"
        ),
        "{got:#?}"
    );
}
