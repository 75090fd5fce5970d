#!/usr/bin/env bash
# One command for the reload / upgrade benchmark (issue #11): what a config change costs
# under load, havip against keepalived + HAProxy, side by side in one run. In network
# namespaces: a client, nodes A (master) and B (backup) sharing a VIP, three backends.
#
#   bench/reload.sh                 100 reloads per system, 5 havip upgrades (~5 min)
#   bench/reload.sh --quick         20 reloads, 2 upgrades (~2 min)
#   bench/reload.sh --only havip-reload,keepalived-reload --reloads 50
#   bench/reload.sh --v2            VRRPv2 with 1 s adverts (default: v3, 100 ms)
#   bench/reload.sh --havip PATH    measure another havip build (one with `havip upgrade`)
#   bench/reload.sh --help          every option of the benchmark program
#
# Needs root (network namespaces) and keepalived, haproxy, tcpdump, iproute2 (installed
# with apt-get when missing). Builds havip and the benchmark
# (crates/test-support/examples/reload_bench.rs) in release mode and writes
# bench/results/reload-<timestamp>.json (every figure, every change) and .md (the tables).
# Creates its own uniquely named namespaces and removes them on exit, also on failure or
# Ctrl-C (the lab harness of the integration tests does it); it stops only the processes it
# started, by PID. Traffic goes only to addresses inside those namespaces.
set -euo pipefail
cd "$(dirname "$0")/.."

[[ $(id -u) -eq 0 ]] || { echo "error: must run as root (network namespaces)" >&2; exit 1; }
need=()
command -v keepalived >/dev/null || [[ -x /usr/sbin/keepalived ]] || need+=(keepalived)
command -v haproxy >/dev/null || [[ -x /usr/sbin/haproxy ]] || need+=(haproxy)
command -v tcpdump >/dev/null || [[ -x /usr/bin/tcpdump ]] || need+=(tcpdump)
command -v ip >/dev/null || need+=(iproute2)
if ((${#need[@]})); then
    echo "installing: ${need[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

cargo build --release -p havip --bin havip
cargo build --release -p havip-test-support --example reload_bench
mkdir -p bench/results
out="bench/results/reload-$(date -u +%Y%m%dT%H%M%SZ)"
exec target/release/examples/reload_bench --havip target/release/havip --out "$out" "$@"
