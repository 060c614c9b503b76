#!/usr/bin/env bash
# Detached containers: `run -d` until the container runs, and `exec true` into a running one, against
# `podman run -d` and `podman exec` measured in the same run, interleaved, ROUNDS rounds, medians and
# ratios. podman is used when installed and runnable (../shared/peers/setup-peers.sh, or apt-get
# install podman); a peer that cannot run here is reported, not faked. Also the monitor's memory.
# Asserts nothing.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
here=$(cd "$(dirname "$0")/.." && pwd)
rounds=${ROUNDS:-11}
work=$(mktemp -d /tmp/tsb-lcbench-XXXXXX)
store="$work/store"
podroot="$work/podman"
pod=""
cleanup() {
  TSBUILD_ROOT="$store" "$here/bin/tsbuild" rm -f lcb-exec >/dev/null 2>&1 || true
  for id in $(TSBUILD_ROOT="$store" "$here/bin/tsbuild" ps -aq 2>/dev/null); do TSBUILD_ROOT="$store" "$here/bin/tsbuild" rm -f "$id" >/dev/null 2>&1 || true; done
  if [ -n "$pod" ]; then $pod rm -f -a >/dev/null 2>&1 || true; $pod rmi -a -f >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
tsbuild() { TSBUILD_ROOT="$store" TSBUILD_PULL=never "$here/bin/tsbuild" "$@"; }
mkdir -p "$work/ctx"
cp "$(command -v busybox)" "$work/ctx/busybox"
printf 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\n' > "$work/ctx/Dockerfile"
tsbuild -q -t lcbench -o "type=docker,dest=$work/image.tar" "$work/ctx" >/dev/null

declare -A cmds
order=(tsbuild_run_d tsbuild_exec)
cmds[tsbuild_run_d]="tsbuild run -d --network none lcbench sleep 600"
cmds[tsbuild_exec]="tsbuild exec lcb-exec true"
tsbuild run -d --name lcb-exec --network none lcbench sleep 600 >/dev/null
if command -v podman >/dev/null 2>&1; then
  pod="podman --root $podroot/root --runroot $podroot/run --storage-driver $(podman_driver)"
  ul="--ulimit nofile=$(ulimit -Hn):$(ulimit -Hn) --ulimit nproc=1024:1024"
  id=$($pod load -q -i "$work/image.tar" 2>/dev/null | sed -n 's/^Loaded image: //p' | head -1)
  if [ -n "$id" ] && $pod run -d --name lcb-exec $ul --network none "$id" sleep 600 >/dev/null 2>"$work/podman.err"; then
    order+=(podman_run_d podman_exec)
    cmds[podman_run_d]="$pod run -d $ul --network none $id sleep 600"
    cmds[podman_exec]="$pod exec lcb-exec true"
  else echo "podman: installed but cannot run here ($(head -c 200 "$work/podman.err" 2>/dev/null)); see ../shared/peers/README.md"; fi
else echo "podman: not installed (apt-get install podman); only tsbuild's own figures follow"; fi

declare -A samples
for _ in $(seq "$rounds"); do for k in "${order[@]}"; do samples[$k]+="$(ms "${cmds[$k]}") "; done; done
declare -A med
echo "latency, median of $rounds interleaved runs (ms):"
for k in "${order[@]}"; do med[$k]=$(echo "${samples[$k]}" | median); printf '  %-16s %6s   %s\n' "$k" "${med[$k]}" "${cmds[$k]}"; done
mon=$(tsbuild inspect -f '{{.State.MonitorPid}}' lcb-exec)
echo "monitor memory (RSS of one monitor): $(awk '/VmRSS/ {print $2, $3}' "/proc/$mon/status")"
if [ -n "${med[podman_run_d]:-}" ]; then
  echo "tsbuild run -d vs podman run -d: $(ratio "${med[tsbuild_run_d]}" "${med[podman_run_d]}")x"
  echo "tsbuild exec vs podman exec:     $(ratio "${med[tsbuild_exec]}" "${med[podman_exec]}")x"
fi
