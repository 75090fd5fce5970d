#!/usr/bin/env bash
# Runs every cargo-fuzz target (the havip-vrrp and havip-sys decoders, the config reader and the
# three importers) for a bounded time each, one after the other, at low CPU priority.
#
# Usage: scripts/fuzz.sh [--minimize] [SECONDS_PER_TARGET] [TARGET...]
#   SECONDS_PER_TARGET  default 60
#   TARGET...           default: every target (`cargo fuzz list`)
#   --minimize          afterwards, minimize each target's corpus (a libFuzzer merge by edge
#                       coverage) and copy it into its crate's tests/fuzz_regressions/<target>/,
#                       replayed by cargo test
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). On a stable toolchain the -Z flags cargo-fuzz
# passes (sanitizer, coverage) are allowed with RUSTC_BOOTSTRAP=1, which this script sets unless
# it is already set. Each target's corpus lives in fuzz/corpus/<target> (not committed) and is
# seeded from the keepalived golden vectors in crates/vrrp/tests/golden (decoders), the example
# configs (config_read) and the importers' fixtures (import_*), plus the regression inputs
# already kept. A crash leaves its input in fuzz/artifacts/<target>/; the script then exits
# non-zero and prints how to replay it. Turn every such input into a regression test by copying
# it into the target's fuzz_regressions directory (see regressions_of below).
# Executions per target are printed by libFuzzer at the end of each run (stat::number_of_executed_units).
set -euo pipefail

minimize=false
if [[ ${1:-} == --minimize ]]; then minimize=true; shift; fi
seconds=${1:-60}
[[ $seconds =~ ^[0-9]+$ && $seconds -gt 0 ]] || {
    echo "usage: $0 [--minimize] [SECONDS_PER_TARGET] [TARGET...]" >&2; exit 2; }
shift || true

repo_root=$(cd "$(dirname "$0")/.." && pwd)
fuzz_dir="$repo_root/fuzz"
golden_dir="$repo_root/crates/vrrp/tests/golden"
export RUSTC_BOOTSTRAP=${RUSTC_BOOTSTRAP:-1}

command -v cargo-fuzz >/dev/null || { echo "error: cargo-fuzz missing: cargo install cargo-fuzz" >&2; exit 1; }
cd "$fuzz_dir"

# --- seed corpora from the golden vectors -------------------------------------------------------
field() { sed -n "s/^$1 //p" "$2"; }
hex_to_file() { printf '%b' "$(sed 's/../\\x&/g' <<<"$1")" >"$2"; }
ipv4_hex() { local IFS=.; set -- $1; printf '%02x%02x%02x%02x' "$1" "$2" "$3" "$4"; }

# Where a target's regression inputs live (replayed by its crate's cargo test).
regressions_of() {
    case $1 in
        config_read) echo "$repo_root/crates/config/tests/fuzz_regressions/$1" ;;
        import_*) echo "$repo_root/crates/import/tests/fuzz_regressions/$1" ;;
        sys_*) echo "$repo_root/crates/sys/tests/fuzz_regressions/$1" ;;
        *) echo "$repo_root/crates/vrrp/tests/fuzz_regressions/$1" ;;
    esac
}

mkdir -p corpus/decode_ipv4 corpus/decode_ipv6 corpus/instance_receive \
    corpus/sys_ipv4_packet corpus/sys_ipv6_control corpus/sys_netlink_datagram \
    corpus/config_read corpus/import_haproxy corpus/import_keepalived corpus/import_nginx
seeds="$repo_root/crates/import/tests/import/seeds"
cp "$repo_root"/examples/*.toml "$repo_root"/examples/seeds/*.toml corpus/config_read/
cp "$seeds"/*haproxy*.cfg corpus/import_haproxy/
cp "$seeds"/*keepalived*.conf corpus/import_keepalived/
cp "$seeds"/nginx*.conf corpus/import_nginx/
for target in config_read import_haproxy import_keepalived import_nginx; do
    regressions=$(regressions_of "$target")
    [[ -d $regressions ]] && cp "$regressions"/* "corpus/$target/" 2>/dev/null || true
done
for vector in "$golden_dir"/*.txt; do
    name=$(basename "$vector" .txt)
    source=$(field source "$vector")
    destination=$(field destination "$vector")
    payload=$(field payload "$vector")
    if [[ $source == *:* ]]; then
        hex_to_file "${source//:/}${destination//:/}$payload" "corpus/decode_ipv6/golden-$name"
    else
        # checksum-form byte 0 = with pseudo-header, as keepalived sends
        hex_to_file "00$(ipv4_hex "$source")$(ipv4_hex "$destination")$payload" \
            "corpus/decode_ipv4/golden-$name"
        # selector: bit 0 set = VRRPv3; then a raw-packet record [op 0, TTL 255, length]
        # followed by the payload, and a timer record [op 2, 0 ms, 0]
        version=${payload:0:1}
        selector=$([[ $version == 3 ]] && echo 01 || echo 00)
        length=$(printf '%02x' $((${#payload} / 2)))
        hex_to_file "${selector}00ff${length}${payload}020000" "corpus/instance_receive/golden-$name"
    fi
done

# --- run -----------------------------------------------------------------------------------------
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || mapfile -t targets < <(cargo fuzz list)
failed=()
for target in "${targets[@]}"; do
    echo "=== $target: $seconds s"
    # -max_total_time bounds the fuzzing; timeout also bounds the build and a hung target.
    # nice: the machine is shared; one target at a time, one job each.
    if ! timeout --signal=INT $((seconds + 600)) \
        nice -n 10 cargo fuzz run --release "$target" "corpus/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1; then
        failed+=("$target")
    fi
    if $minimize; then
        regressions=$(regressions_of "$target")
        # Merge into a fresh directory by edge coverage only (-use_counters=0): far fewer
        # inputs than the working corpus, which stays whole for the next run. Inputs already
        # kept stay (crash reproducers among them).
        rm -rf "corpus/$target.min" && mkdir -p "corpus/$target.min" "$regressions"
        nice -n 10 cargo fuzz run --release "$target" "corpus/$target.min" "corpus/$target" -- \
            -merge=1 -use_counters=0 2>&1 | tail -2
        cp "corpus/$target.min"/* "$regressions"/
        echo "=== $target: $(ls "$regressions" | wc -l) regression inputs in ${regressions#"$repo_root"/}"
    fi
done

if [[ ${#failed[@]} -gt 0 ]]; then
    echo "fuzzing found problems in: ${failed[*]}" >&2
    for target in "${failed[@]}"; do
        ls -1 "artifacts/$target" 2>/dev/null | sed "s|^|  fuzz/artifacts/$target/|" >&2 || true
    done
    echo "replay: (cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run <target> artifacts/<target>/<file>)" >&2
    exit 1
fi
echo "no crashes"
