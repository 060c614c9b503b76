#!/usr/bin/env bash
# Memory stays flat as a layer grows: peak RSS of the build, push (uncompressed and gzip) and pull of an image
# whose one layer is SMALL MiB, then LARGE MiB of random bytes, against a docker-registry on
# 127.0.0.1 started here; then builds with a large context, a sparse file and a loud RUN. Peak RSS
# from GNU time; asserts nothing. Needs docker-registry and busybox.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
small=${SMALL:-64}
large=${LARGE:-512}
work=$(mktemp -d /tmp/tsb-membench-XXXXXX)
pid=""
cleanup() { if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi; rm -rf "$work"; }
trap cleanup EXIT
start_registry "${PORT:-5991}"
tsb() { TSBUILD_ROOT="$1" TSBUILD_PULL=never "$here/bin/tsbuild" "${@:2}"; }
# Peak RSS in MB of one tsbuild command: rss STORE ARGS...
rss() {
  local store=$1; shift
  env TSBUILD_ROOT="$store" TSBUILD_PULL=missing /usr/bin/time -f '%M' -o "$work/rss" "$here/bin/tsbuild" "$@" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
  echo $(( $(cat "$work/rss") / 1024 ))
}
mkdir -p "$work/ctx"
cp "$(command -v busybox)" "$work/ctx/busybox"
printf '%-10s %10s %10s %10s %10s\n' "layer MiB" "build" "push raw" "push gzip" "pull"
for mib in "$small" "$large"; do
  printf 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "sh", "-c", "/bin/busybox head -c %s /dev/urandom > /big"]\n' "$((mib << 20))" > "$work/ctx/Dockerfile"
  # The build's own peak: the RUN's output is the layer, diffed, hashed and stored as it streams.
  z=$(TSBUILD_NETWORK=host rss "$work/s$mib" -q -t "$reg/raw$mib" "$work/ctx")
  tsb "$work/s$mib" tag "$reg/raw$mib" "$reg/gz$mib"
  a=$(rss "$work/s$mib" push --compression uncompressed "$reg/raw$mib")
  b=$(rss "$work/s$mib" push "$reg/gz$mib")
  c=$(rss "$work/p$mib" pull "$reg/gz$mib")
  printf '%-10s %8s MB %8s MB %8s MB %8s MB\n' "$mib" "$z" "$a" "$b" "$c"
done

# Builds whose inputs or output grow (#21): a context of FILES small files, a sparse file of SPARSE GiB
# copied in, and a RUN that prints PRINT MiB. Peak RSS of the whole build, cold, with TSBUILD_NETWORK=host.
files=${FILES:-100000}
sparse=${SPARSE:-2}
print=${PRINT:-200}
bctx() { rm -rf "$work/b"; mkdir -p "$work/b"; cp "$(command -v busybox)" "$work/b/busybox"; printf 'FROM scratch\nCOPY busybox /bin/busybox\n%s\n' "$1" > "$work/b/Dockerfile"; }
brss() { TSBUILD_NETWORK=host rss "$work/build-$1" -q "$work/b"; }
echo
printf '%-34s %10s\n' "build" "peak RSS"
bctx 'COPY many /many'
mkdir -p "$work/b/many"
for d in $(seq 0 $(( files / 1000 - 1 ))); do mkdir "$work/b/many/d$d"; for f in $(seq 0 999); do printf '%s' "$d.$f" > "$work/b/many/d$d/f$f"; done; done
printf '%-34s %8s MB\n' "COPY of $files small files" "$(brss files)"
bctx 'COPY sparse /sparse'
truncate -s "${sparse}G" "$work/b/sparse"
printf '%-34s %8s MB\n' "COPY of a ${sparse} GiB sparse file" "$(brss sparse)"
bctx "RUN [\"/bin/busybox\", \"sh\", \"-c\", \"/bin/busybox head -c $((print << 20)) /dev/zero | /bin/busybox od -An -v | /bin/busybox head -c $((print << 20))\"]"
printf '%-34s %8s MB\n' "RUN printing $print MiB" "$(brss print)"
