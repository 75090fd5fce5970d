//! Every key the config file may contain, one table per section. The reader accepts exactly
//! these (anything else is an unknown-key error with a suggestion), `docs/config.md` documents
//! each of them (a test checks), and `havip import` writes no other.

/// The keys of one section, and the dotted path of the section (array tables without their
/// index: `service.backend`, not `service[0].backend[1]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Section {
    /// Dotted path; empty for the top level.
    pub path: &'static str,
    /// The keys this section may hold.
    pub keys: &'static [&'static str],
}

/// The top level of the file.
pub const ROOT: Section = Section {
    path: "",
    keys: &[
        "global", "log", "admin", "control", "service", "vrrp", "tracker", "bgp",
    ],
};

/// `[global]`: process-wide settings.
pub const GLOBAL: Section = Section {
    path: "global",
    keys: &[
        "max_conns",
        "grace",
        "workers",
        "copy",
        "pipe_size",
        "buffer_size",
    ],
};

/// `[log]`.
pub const LOG: Section = Section {
    path: "log",
    keys: &["format", "level", "connections"],
};

/// `[admin]`: the admin HTTP endpoint.
pub const ADMIN: Section = Section {
    path: "admin",
    keys: &["listen", "auth", "commands", "tls_cert", "tls_key"],
};

/// `[control]`: the local control socket.
pub const CONTROL: Section = Section {
    path: "control",
    keys: &["socket", "mode", "group"],
};

/// `[[service]]`: one load-balanced TCP service.
pub const SERVICE: Section = Section {
    path: "service",
    keys: &[
        "name",
        "listen",
        "balance",
        "retries",
        "slow_start",
        "slow_start_at_boot",
        "close_on_down",
        "timeouts",
        "limits",
        "health",
        "passive",
        "backend",
    ],
};

/// `[service.timeouts]`.
pub const TIMEOUTS: Section = Section {
    path: "service.timeouts",
    keys: &["connect", "queue", "client_idle", "server_idle", "tunnel"],
};

/// `[service.limits]`.
pub const LIMITS: Section = Section {
    path: "service.limits",
    keys: &["max_conns", "max_queue", "backlog"],
};

/// `[service.health]`: active checks.
pub const HEALTH: Section = Section {
    path: "service.health",
    keys: &[
        "check",
        "path",
        "host",
        "expect_status",
        "interval",
        "fast_interval",
        "down_interval",
        "timeout",
        "rise",
        "fall",
        "port",
        "tls",
    ],
};

/// `[service.health.tls]`: HTTPS check settings.
pub const TLS: Section = Section {
    path: "service.health.tls",
    keys: &["verify", "ca_file", "client_cert", "client_key", "sni"],
};

/// `[service.passive]`: failed connects counted as failed checks.
pub const PASSIVE: Section = Section {
    path: "service.passive",
    keys: &["max_fails", "fail_timeout"],
};

/// `[[service.backend]]`.
pub const BACKEND: Section = Section {
    path: "service.backend",
    keys: &["name", "address", "weight", "max_conns", "backup"],
};

/// `[[vrrp]]`: one VRRP instance.
pub const VRRP: Section = Section {
    path: "vrrp",
    keys: &[
        "name",
        "interface",
        "vrid",
        "version",
        "priority",
        "advert_interval",
        "preempt",
        "preempt_delay",
        "accept",
        "virtual_addresses",
        "source",
        "unicast_peers",
        "check_unicast_source",
        "accept_any_unicast_ttl",
        "auth_pass",
        "v3_checksum_as_v2",
        "track",
        "announce",
        "notify",
        "startup_limit",
    ],
};

/// A `virtual_addresses` entry written as a table.
pub const VIRTUAL_ADDRESS: Section = Section {
    path: "vrrp.virtual_addresses",
    keys: &["address", "interface", "label"],
};

/// `[vrrp.announce]`: gratuitous ARP / unsolicited NA.
pub const ANNOUNCE: Section = Section {
    path: "vrrp.announce",
    keys: &[
        "burst_count",
        "burst_spacing",
        "second_burst_delay",
        "refresh_interval",
        "refresh_count",
        "lower_priority_burst_count",
    ],
};

/// `[vrrp.notify]`: commands run on transitions.
pub const NOTIFY: Section = Section {
    path: "vrrp.notify",
    keys: &[
        "command", "master", "backup", "fault", "stop", "shell", "timeout", "user",
    ],
};

/// A `track` entry written as a table.
pub const TRACK_REF: Section = Section {
    path: "vrrp.track",
    keys: &["tracker", "weight"],
};

/// `[[tracker]]`: what moves an instance's priority.
pub const TRACKER: Section = Section {
    path: "tracker",
    keys: &[
        "name",
        "kind",
        "weight",
        "rise",
        "fall",
        "interval",
        "command",
        "shell",
        "timeout",
        "user",
        "timeout_counts_as",
        "service",
        "min_healthy",
        "min_healthy_fraction",
        "drain_counts_as_down",
        "interface",
        "process",
        "pidfile",
        "path",
    ],
};

/// `[[bgp]]`: VIPs announced through the routing daemon.
pub const BGP: Section = Section {
    path: "bgp",
    keys: &[
        "name",
        "virtual_addresses",
        "table",
        "track",
        "shutdown_delay",
        "daemon",
        "frr_instance",
    ],
};

/// The `[[tracker]]` keys that only some kinds read, by kind. The other tracker keys apply to
/// every kind; a key of another kind is an error (reported in this order).
pub const TRACKER_KINDS: &[(&str, &[&str])] = &[
    (
        "script",
        &["command", "shell", "timeout", "user", "timeout_counts_as"],
    ),
    (
        "service",
        &[
            "service",
            "min_healthy",
            "min_healthy_fraction",
            "drain_counts_as_down",
        ],
    ),
    ("listener", &["service"]),
    ("interface", &["interface"]),
    ("process", &["process", "pidfile"]),
    ("file", &["path"]),
];

/// The `[service.health]` keys only HTTP and HTTPS checks read (`tls`: only HTTPS).
pub const HTTP_CHECK: &[&str] = &["path", "host", "expect_status"];

/// Every section, in the order `docs/config.md` presents them.
pub const ALL: &[Section] = &[
    ROOT,
    GLOBAL,
    LOG,
    ADMIN,
    CONTROL,
    SERVICE,
    TIMEOUTS,
    LIMITS,
    HEALTH,
    TLS,
    PASSIVE,
    BACKEND,
    VRRP,
    VIRTUAL_ADDRESS,
    ANNOUNCE,
    NOTIFY,
    TRACK_REF,
    TRACKER,
    BGP,
];

/// The section at `path` (indices stripped: `service[0].health` is `service.health`).
pub fn section(path: &str) -> Option<Section> {
    let bare = strip_indices(path);
    ALL.iter().copied().find(|s| s.path == bare)
}

/// Whether `key` of the section at `path` is a key the reader accepts.
pub fn is_known(path: &str, key: &str) -> bool {
    section(path).is_some_and(|s| s.keys.contains(&key))
}

/// `service[0].backend[1]` -> `service.backend`.
pub fn strip_indices(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut depth = 0;
    for c in path.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_are_found_with_or_without_indices() {
        assert!(is_known("service[2].backend[0]", "weight"));
        assert!(is_known("", "vrrp"));
        assert!(!is_known("service", "weigth"));
        assert_eq!(
            section("vrrp[1].notify").map(|s| s.path),
            Some("vrrp.notify")
        );
        assert!(section("nope").is_none());
    }

    #[test]
    fn kind_and_check_keys_are_keys_of_their_section() {
        for (kind, keys) in TRACKER_KINDS {
            for key in *keys {
                assert!(TRACKER.keys.contains(key), "{kind}: {key}");
            }
        }
        for key in HTTP_CHECK.iter().chain(&["tls"]) {
            assert!(HEALTH.keys.contains(key), "{key}");
        }
    }
}
