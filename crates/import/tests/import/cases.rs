// The seed import cases: (case, `havip import` arguments run in the seeds directory).
// Included by the import crate's golden test and by the CLI test (crates/havip/tests/import.rs).
&[
    ("rke2-haproxy", &["--haproxy", "rke2-haproxy.cfg"]),
    ("rke2-keepalived", &["--keepalived", "rke2-keepalived.conf"]),
    (
        "rke2-keepalived-script",
        &[
            "--keepalived",
            "rke2-keepalived.conf",
            "--script",
            "rke2-check_apiserver.sh",
        ],
    ),
    (
        "rke2",
        &[
            "--haproxy",
            "rke2-haproxy.cfg",
            "--keepalived",
            "rke2-keepalived.conf",
            "--script",
            "rke2-check_apiserver.sh",
        ],
    ),
    (
        "kubesphere-haproxy",
        &["--haproxy", "kubesphere-haproxy.cfg"],
    ),
    (
        "kubesphere-keepalived",
        &["--keepalived", "kubesphere-keepalived.conf"],
    ),
    (
        "kubesphere",
        &[
            "--haproxy",
            "kubesphere-haproxy.cfg",
            "--keepalived",
            "kubesphere-keepalived.conf",
        ],
    ),
    ("docker-haproxy", &["--haproxy", "docker-haproxy.cfg"]),
    (
        "docker-keepalived",
        &["--keepalived", "docker-keepalived.conf"],
    ),
    (
        "docker",
        &[
            "--haproxy",
            "docker-haproxy.cfg",
            "--keepalived",
            "docker-keepalived.conf",
        ],
    ),
    ("nginx-stream", &["--nginx", "nginx-stream.conf"]),
    (
        "nginx-keepalived-master1",
        &["--keepalived", "nginx-keepalived-master1.conf"],
    ),
    (
        "nginx-keepalived-master2",
        &["--keepalived", "nginx-keepalived-master2.conf"],
    ),
    (
        "nginx",
        &[
            "--nginx",
            "nginx-stream.conf",
            "--keepalived",
            "nginx-keepalived-master1.conf",
            "--keepalived",
            "nginx-keepalived-master2.conf",
        ],
    ),
]
