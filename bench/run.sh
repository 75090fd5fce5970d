#!/usr/bin/env bash
# One command for the proxy benchmark: havip vs HAProxy vs nginx stream on loopback.
#
#   bench/run.sh                 full run: 5 repetitions, 10 s per load run, 10,000 idle conns
#   bench/run.sh --quick         smoke run: 1 repetition, 3 s per load run, 2,000 idle conns
#   bench/run.sh --reps 5 --update-docs
#                                any bench.py option passes through (see bench/bench.py -h)
#
# Builds havip (release), installs haproxy / nginx / libnginx-mod-stream / iperf3 / wrk with
# apt-get when missing (needs root), then runs bench/bench.py, which writes
# bench/results/<timestamp>.json (raw numbers) and .md (the table of medians).
set -euo pipefail
cd "$(dirname "$0")/.."

args=()
for a in "$@"; do
    if [[ $a == --quick ]]; then
        args+=(--reps 1 --duration 3 --idle-conns 2000)
    else
        args+=("$a")
    fi
done

need=()
command -v haproxy >/dev/null || need+=(haproxy)
command -v nginx >/dev/null || need+=(nginx)
[[ -e /usr/lib/nginx/modules/ngx_stream_module.so ]] || need+=(libnginx-mod-stream)
command -v iperf3 >/dev/null || need+=(iperf3)
command -v wrk >/dev/null || need+=(wrk)
command -v taskset >/dev/null || need+=(util-linux)
command -v python3 >/dev/null || need+=(python3)
if ((${#need[@]})); then
    echo "installing: ${need[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
# The Debian nginx package starts a system nginx on port 80; the benchmark does not need it,
# and leaves any running one alone (it uses its own ports 21001-21299 on 127.0.0.1).

cargo build --release -p havip
exec python3 bench/bench.py "${args[@]}"
