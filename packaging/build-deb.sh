#!/bin/sh
# Build the havip Debian package: the release binary, the man pages and shell completions
# it generates from its own command definitions and docs/config.md, then cargo-deb
# (`cargo install cargo-deb`) around them. Prints the path of the .deb.
#
#   packaging/build-deb.sh [--profile PROFILE] [--no-build] [extra cargo-deb arguments]
#
# --no-build packages the binary already built for PROFILE (the packaging test, running
# inside `cargo test`, cannot start another cargo build).
set -eu
cd "$(dirname "$0")/.."
profile=release
build=yes
while [ $# -gt 0 ]; do
    case "$1" in
    --profile) profile=$2; shift 2 ;;
    --no-build) build=no; shift ;;
    *) break ;;
    esac
done
case "$profile" in
dev) out=debug ;;
*) out=$profile ;;
esac
target=${CARGO_TARGET_DIR:-target}
if [ "$build" = yes ]; then
    cargo build --locked --profile "$profile" -p havip
fi
assets="$target/$out/packaging"
rm -rf "$assets"
"$target/$out/havip" generate-assets "$assets" >/dev/null 2>&1
# Debian ships man pages compressed (-n: no name or time inside, so the build repeats).
gzip -9nf "$assets"/man/*
# --strip: the release profile keeps line tables for backtraces, which cargo-deb would
# otherwise ship (lintian: unstripped-binary-or-object).
cargo deb --locked -p havip --no-build --strip --profile "$profile" "$@"
