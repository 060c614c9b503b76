#!/usr/bin/env bash
# Registry bench: push and pull of a 512 MiB random layer and of a 200-layer image, tsbuild against
# `skopeo copy` on the same local registry (Debian's docker-registry on 127.0.0.1, started here).
# Both push with gzip (skopeo's default for a registry); a tsbuild pull also unpacks every layer
# into snapshots, skopeo only writes an OCI directory. Prints seconds, MiB/s and tsbuild/skopeo.
# Usage: bench/registry.sh [SIZE_MIB]   (default 512)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
size=${1:-512}
work=$(mktemp -d /tmp/tsb-bench-reg-XXXXXX)
pid=""
cleanup() { if [ -n "$pid" ]; then kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; fi; rm -rf "$work"; }
trap cleanup EXIT
command -v docker-registry >/dev/null || { echo "docker-registry not installed (apt-get install -y docker-registry)"; exit 1; }
start_registry
tsb() { "$here/bin/tsbuild" "$@"; }
export TSBUILD_ROOT="$work/store"
now() { date +%s.%N; }
# Untimed, before each timed command: the last one's unflushed writes (512 MiB) would otherwise be
# written back during the next one and charged to it (bench/suite.mjs does the same).
settle() { sync; }
have_skopeo=0; command -v skopeo >/dev/null && have_skopeo=1

mkdir -p "$work/big" "$work/many"
head -c "$((size << 20))" /dev/urandom > "$work/big/blob"
printf 'FROM scratch\nCOPY blob /blob\n' > "$work/big/Dockerfile"
{ echo 'FROM scratch'; for i in $(seq 200); do echo "layer $i" > "$work/many/f$i"; echo "COPY f$i /f$i"; done; } > "$work/many/Dockerfile"
tsb -q -t big "$work/big" >/dev/null
tsb -q -t many "$work/many" >/dev/null

row() { # name seconds bytes image
  if [ "$4" = many ]; then printf '%-34s %7.2f s %8.1f layers/s\n' "$1" "$2" "$(echo "200 / $2" | bc -l)"
  else printf '%-34s %7.2f s %8.1f MiB/s\n' "$1" "$2" "$(echo "$3 / 1048576 / $2" | bc -l)"; fi
}
for img in big many; do
  bytes=$(du -sb "$work/$img" | cut -f1)
  if [ $have_skopeo = 1 ]; then
    settle; t0=$(now); skopeo copy -q --dest-tls-verify=false "oci:$TSBUILD_ROOT:$img:latest" "docker://$reg/skopeo/$img:1"; t1=$(now)
    sk_push=$(echo "$t1 - $t0" | bc)
    row "skopeo push $img" "$sk_push" "$bytes" "$img"
  fi
  settle; t0=$(now); tsb push -q "$img" "$reg/tsbuild/$img:1" >/dev/null; t1=$(now)
  ts_push=$(echo "$t1 - $t0" | bc)
  row "tsbuild push $img" "$ts_push" "$bytes" "$img"
  [ $have_skopeo = 1 ] && printf '%-34s %7.2f\n' "  ratio tsbuild/skopeo (push)" "$(echo "$ts_push / $sk_push" | bc -l)"
  if [ $have_skopeo = 1 ]; then
    settle; t0=$(now); skopeo copy -q --src-tls-verify=false "docker://$reg/tsbuild/$img:1" "oci:$work/skopeo-oci-$img:x"; t1=$(now)
    sk_pull=$(echo "$t1 - $t0" | bc)
    row "skopeo pull $img (to OCI dir)" "$sk_pull" "$bytes" "$img"
  fi
  settle; t0=$(now); TSBUILD_ROOT="$work/pull-$img" tsb pull -q "$reg/tsbuild/$img:1" >/dev/null; t1=$(now)
  ts_pull=$(echo "$t1 - $t0" | bc)
  row "tsbuild pull $img (+ unpack)" "$ts_pull" "$bytes" "$img"
  [ $have_skopeo = 1 ] && printf '%-34s %7.2f\n' "  ratio tsbuild/skopeo (pull)" "$(echo "$ts_pull / $sk_pull" | bc -l)"
  # Stores hold snapshots (and maybe mounts): remove through tsbuild's own cleanup paths.
  TSBUILD_ROOT="$work/pull-$img" tsb rmi "$reg/tsbuild/$img:1" >/dev/null 2>&1 || true
  TSBUILD_ROOT="$work/pull-$img" tsb prune --all >/dev/null 2>&1 || true
done
tsb rmi big many >/dev/null 2>&1 || true
tsb prune --all >/dev/null 2>&1 || true
