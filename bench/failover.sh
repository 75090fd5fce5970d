#!/usr/bin/env bash
# One command for the VRRP failover benchmark: havip vs keepalived in the same network
# namespaces, in the same run (issue #4). Crash (kill -9 + link down) and SIGTERM of the
# master of 3 nodes (priorities 100/90/80), VRRPv2 with 1 s adverts and VRRPv3 with 0.1 s.
#
#   bench/failover.sh                    5 repetitions of every case (~5 min)
#   bench/failover.sh --reps 10
#   bench/failover.sh --only v3-crash,v3-sigterm --reps 3
#
# Needs root (network namespaces) and keepalived, iproute2 (installed with apt-get when
# missing). Builds havip and the benchmark (crates/test-support/examples/failover_bench.rs) in
# release mode and writes bench/results/failover-<timestamp>.json (every run) and .md (the
# table). Creates its own uniquely named namespaces and removes them on exit, also on
# failure or Ctrl-C (the lab harness of the integration tests does it); it stops only the
# processes it started, by PID.
set -euo pipefail
cd "$(dirname "$0")/.."

[[ $(id -u) -eq 0 ]] || { echo "error: must run as root (network namespaces)" >&2; exit 1; }
need=()
command -v keepalived >/dev/null || need+=(keepalived)
command -v ip >/dev/null || need+=(iproute2)
if ((${#need[@]})); then
    echo "installing: ${need[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

cargo build --release -p havip --bin havip
cargo build --release -p havip-test-support --example failover_bench
mkdir -p bench/results
out="bench/results/failover-$(date -u +%Y%m%dT%H%M%SZ)"
exec target/release/examples/failover_bench --havip target/release/havip --out "$out" "$@"
