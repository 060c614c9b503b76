#!/bin/sh
# An arm64 busybox for the emulation tests (run under qemu-user-static): Debian's busybox-static
# package for arm64, from the apt archive this machine uses, unpacked into DEST (default
# /var/cache/tsbuild-test/arm64). Tests look for DEST/bin/busybox and skip, saying why, without it.
set -eu
dest=${1:-/var/cache/tsbuild-test/arm64}
[ -x "$dest/bin/busybox" ] && exit 0
[ "$(dpkg --print-architecture)" = amd64 ] || { echo "fetch-arm64-busybox: only for amd64 hosts; emulation tests will skip" >&2; exit 0; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The amd64 package's URI, with the architecture swapped: the same source version is built for arm64.
uri=$(apt-get download --print-uris busybox-static | awk '{ gsub("\047", "", $1); print $1; exit }' | sed 's/_amd64\.deb$/_arm64.deb/')
if ! /usr/lib/apt/apt-helper download-file "$uri" "$tmp/busybox.deb" >/dev/null 2>&1; then
  # A rebuild of one architecture only (another +bN): ask apt for arm64's own version.
  dpkg --add-architecture arm64 && apt-get update -qq && (cd "$tmp" && apt-get download -qq busybox-static:arm64) && mv "$tmp"/busybox-static_*_arm64.deb "$tmp/busybox.deb"
fi
mkdir -p "$tmp/root"
dpkg-deb -x "$tmp/busybox.deb" "$tmp/root"
mkdir -p "$dest/bin"
cp "$tmp/root/bin/busybox" "$dest/bin/busybox.tmp" && mv "$dest/bin/busybox.tmp" "$dest/bin/busybox"
