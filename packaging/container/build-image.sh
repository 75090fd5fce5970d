#!/bin/sh
# Build the havip OCI image with buildah and no network: `buildah from scratch`, then only
# the havip binary (debug info stripped), the shared libraries `ldd` lists for it (glibc,
# libgcc_s, libm and the loader, copied from this machine), /etc/passwd and /etc/group with
# the havip user (uid and gid 65532), and the empty directories a runtime mounts over. The
# image runs as that user; `docker run --cap-add NET_ADMIN --cap-add NET_RAW` (or the static
# pod) gives it what a VIP needs. For a registry build from source, see Containerfile.
#
#   packaging/container/build-image.sh [--binary PATH] [--tag NAME] [--oci DIR]
#                                      [--storage DIR]
#
# --binary   the havip to put in (default: target/release/havip; build it first)
# --tag      the image name (default: localhost/havip:VERSION)
# --oci      also write the image as an OCI layout directory (buildah push oci:DIR)
# --storage  a private buildah store (vfs driver) instead of the system one
#
# Prints the image name.
set -eu
cd "$(dirname "$0")/../.."
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
binary=${CARGO_TARGET_DIR:-target}/release/havip
tag=localhost/havip:$version
oci=
storage=
while [ $# -gt 0 ]; do
    case "$1" in
    --binary) binary=$2; shift 2 ;;
    --tag) tag=$2; shift 2 ;;
    --oci) oci=$2; shift 2 ;;
    --storage) storage=$2; shift 2 ;;
    *) echo "build-image.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
[ -x "$binary" ] || { echo "build-image.sh: $binary: no such program (cargo build --release -p havip)" >&2; exit 1; }

bah() {
    if [ -n "$storage" ]; then
        buildah --root "$storage/root" --runroot "$storage/run" --storage-driver vfs "$@"
    else
        buildah "$@"
    fi
}

work=$(mktemp -d)
ctr=
cleanup() {
    [ -z "$ctr" ] || bah rm "$ctr" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

root=$work/root
mkdir -p "$root/usr/bin" "$root/etc/havip" "$root/proc" "$root/sys" "$root/dev" "$root/run" "$root/tmp"
chmod 1777 "$root/tmp"
objcopy --strip-debug "$binary" "$root/usr/bin/havip"
chmod 755 "$root/usr/bin/havip"
# The loader and every library at the path the binary asks for (Debian's merged /usr:
# /lib64 and /lib are links on the host, real directories here).
for lib in $(ldd "$binary" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
done
cat >"$root/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/sbin/nologin
havip:x:65532:65532:havip:/nonexistent:/sbin/nologin
PASSWD
cat >"$root/etc/group" <<'GROUP'
root:x:0:
havip:x:65532:
GROUP

ctr=$(bah from --quiet scratch)
bah copy --quiet "$ctr" "$root/." / >/dev/null
bah config \
    --user 65532:65532 \
    --entrypoint '["/usr/bin/havip"]' \
    --cmd '["run", "--config", "/etc/havip/havip.toml"]' \
    --workingdir / \
    --stop-signal SIGTERM \
    --label org.opencontainers.image.title=havip \
    --label org.opencontainers.image.version="$version" \
    --label org.opencontainers.image.description="Highly available virtual IP (VRRP) and TCP load balancer" \
    --label io.havip.capabilities="NET_ADMIN NET_RAW" \
    "$ctr"
bah commit --quiet --format oci --rm "$ctr" "$tag" >/dev/null
ctr=
if [ -n "$oci" ]; then
    rm -rf "$oci"
    bah push --quiet "$tag" "oci:$oci:$tag" >/dev/null
fi
echo "$tag"
