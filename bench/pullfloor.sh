#!/usr/bin/env bash
# The floor of a pull: tsbuild's pull of one large gzip layer (download, blob written, synced and
# hashed, layer inflated, hashed and written as files, synced) against skopeo's pull into an OCI
# directory (#18's goal: within 1.2x) and against bench/pullfloor.c, which does tsbuild's work in C
# on one thread (curl | pullfloor | tar -x, then sync). Interleaved, ROUNDS rounds (default 5),
# medians of wall time and of CPU time (user + system, every process of the command). A local
# docker-registry on 127.0.0.1, started here. Asserts nothing.
# Usage: bench/pullfloor.sh [SIZE_MIB]   (default 512; needs docker-registry, curl, a C compiler,
#        zlib1g-dev and libssl-dev; skopeo when installed)
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
here=$(cd "$(dirname "$0")/.." && pwd)
size=${1:-512}
rounds=${ROUNDS:-5}
for p in docker-registry curl cc /usr/bin/time; do command -v "$p" >/dev/null || { echo "$p is needed"; exit 1; }; done
work=$(mktemp -d "${BENCH_DIR:-/tmp}/tsb-pullfloor-XXXXXX")
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; fi
  for d in "$work"/store "$work"/run-*; do [ -d "$d" ] && TSBUILD_ROOT=$d "$here/bin/tsbuild" prune -a -f >/dev/null 2>&1 || true; done
  rm -rf "$work"
}
trap cleanup EXIT
cc -O2 -o "$work/pullfloor" "$here/bench/pullfloor.c" -lz -lcrypto
start_registry

mkdir -p "$work/big"
head -c "$((size << 20))" /dev/urandom > "$work/big/blob"
printf 'FROM scratch\nCOPY blob /blob\n' > "$work/big/Dockerfile"
export TSBUILD_PULL=never
TSBUILD_ROOT="$work/store" "$here/bin/tsbuild" -q -t big "$work/big" >/dev/null
TSBUILD_ROOT="$work/store" "$here/bin/tsbuild" push -q big "$reg/floor/big:1" >/dev/null
layer=$(curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$reg/v2/floor/big/manifests/1" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).layers[0].digest))')

declare -A cmds
order=(tsbuild floor)
cmds[tsbuild]="TSBUILD_ROOT=\$D $here/bin/tsbuild pull -q $reg/floor/big:1"
cmds[floor]="mkdir -p \$D/root && curl -fsS http://$reg/v2/floor/big/blobs/$layer | $work/pullfloor \$D/blob 2>\$D/digests | tar -x -C \$D/root && sync \$D/root/blob"
if command -v skopeo >/dev/null; then order+=(skopeo); cmds[skopeo]="skopeo copy -q --src-tls-verify=false docker://$reg/floor/big:1 oci:\$D:x"; fi
declare -A wall cpu
for r in $(seq "$rounds"); do
  for k in "${order[@]}"; do
    D="$work/run-$k-$r"
    # Untimed: the last command's unflushed writes would otherwise be charged to this one.
    sync
    t0=$(date +%s%N)
    D=$D /usr/bin/time -f '%U %S' -o "$work/cpu" bash -o pipefail -c "${cmds[$k]}" >/dev/null 2>"$work/err" || { echo "$k failed: $(tail -c 300 "$work/err")"; exit 1; }
    t1=$(date +%s%N)
    wall[$k]+=" $(( (t1 - t0) / 1000000 ))"
    cpu[$k]+=" $(awk '{printf "%d", ($1 + $2) * 1000}' "$work/cpu")"
    if [ "$k" = floor ] && ! grep -q "blob $layer" "$D/digests"; then echo "floor: wrong blob digest: $(cat "$D/digests")"; exit 1; fi
    [ "$k" = tsbuild ] && TSBUILD_ROOT=$D "$here/bin/tsbuild" prune -a -f >/dev/null 2>&1
    rm -rf "$D"
  done
done
echo "pull of one ${size} MiB gzip layer, medians of $rounds interleaved rounds (ms; min-max; CPU = user + system):"
for k in "${order[@]}"; do
  printf '  %-8s %6s ms (%s)  CPU %6s ms   %s\n' "$k" "$(echo "${wall[$k]}" | median)" "$(echo "${wall[$k]}" | range)" "$(echo "${cpu[$k]}" | median)" "${cmds[$k]//\$D/DIR}"
  printf '           rounds (ms):%s   CPU:%s\n' "${wall[$k]}" "${cpu[$k]}"
done
t=$(echo "${wall[tsbuild]}" | median); f=$(echo "${wall[floor]}" | median)
echo "tsbuild / floor: $(ratio "$t" "$f")x wall, $(ratio "$(echo "${cpu[tsbuild]}" | median)" "$(echo "${cpu[floor]}" | median)")x CPU"
if [ -n "${wall[skopeo]:-}" ]; then
  s=$(echo "${wall[skopeo]}" | median)
  echo "tsbuild / skopeo: $(ratio "$t" "$s")x (goal: at most 1.2x); floor / skopeo: $(ratio "$f" "$s")x"
fi
