#!/usr/bin/env bash
# Container start latency: what security setup and cgroups add, against crun on the same OCI bundle and
# podman run --rm --network none, measured in one run, interleaved, ROUNDS rounds, medians and ratios.
# Peers are used when installed and runnable (../shared/peers/setup-peers.sh prepares this VM for them);
# a peer that cannot run here is reported, not faked. Asserts nothing.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
here=$(cd "$(dirname "$0")/.." && pwd)
rounds=${ROUNDS:-15}
work=$(mktemp -d /tmp/tsb-rtbench-XXXXXX)
store="$work/store"
podroot="$work/podman"
pod=""
cleanup() {
  if [ -n "$pod" ] && [ -d "$podroot" ]; then $pod rmi -a -f >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
tsbuild() { TSBUILD_ROOT="$store" TSBUILD_PULL=never "$here/bin/tsbuild" "$@"; }
mkdir -p "$work/ctx"
cp "$(command -v busybox)" "$work/ctx/busybox"
printf 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\n' > "$work/ctx/Dockerfile"
tsbuild -q -t rtbench -o "type=local,dest=$work/bundle/rootfs" -o "type=docker,dest=$work/image.tar" "$work/ctx" >/dev/null

declare -A cmds
order=(node tsbuild tsbuild_limits tsbuild_unconfined)
# The floor of any Node CLI: starting Node itself, without NODE_EXTRA_CA_CERTS (bin/tsbuild defers
# it to the first HTTPS request: src/fsutil/tlstrust.ts).
cmds[node]="env -u NODE_EXTRA_CA_CERTS node -e 0"
# --network none throughout: podman runs so (the like-for-like figure), and the default network would
# put a bridge and NAT rules into this machine's namespace; bench/network.sh measures the bridge, in a
# namespace of its own.
cmds[tsbuild]="tsbuild run --rm --network none rtbench true"
cmds[tsbuild_limits]="tsbuild run --rm --network none --memory 64m --cpus 1 --pids-limit 100 rtbench true"
cmds[tsbuild_unconfined]="tsbuild run --rm --network none --security-opt seccomp=unconfined --security-opt no-new-privileges=false rtbench true"
if command -v crun >/dev/null 2>&1; then
  (cd "$work/bundle" && crun spec && sed -i 's/"terminal": true/"terminal": false/; s/"sh"/"true"/' config.json)
  node -e "const f=process.argv[1],c=JSON.parse(require('fs').readFileSync(f));c.process.rlimits=[{type:'RLIMIT_NOFILE',hard:1024,soft:1024}];require('fs').writeFileSync(f,JSON.stringify(c))" "$work/bundle/config.json"
  if crun run --bundle "$work/bundle" rtbench-probe >/dev/null 2>"$work/crun.err"; then
    order+=(crun); cmds[crun]="crun run --bundle $work/bundle rtbench-\$RANDOM"
  else echo "crun: installed but cannot run here ($(head -c 200 "$work/crun.err")); see ../shared/peers/README.md"; fi
fi
if command -v podman >/dev/null 2>&1; then
  driver=$(podman_driver)
  pod="podman --root $podroot/root --runroot $podroot/run --storage-driver $driver"
  # Root here cannot raise hard rlimits: podman's defaults are lowered to this host's hard limits.
  ul="--ulimit nofile=$(ulimit -Hn):$(ulimit -Hn) --ulimit nproc=1024:1024"
  podman_case podman "$pod" "$ul --network none" "$work/podman.err" "podman (installed)" "; see ../shared/peers/README.md"
  echo "podman: a store of its own, storage driver $driver (podman's configured default)"
fi

declare -A samples
for _ in $(seq "$rounds"); do for k in "${order[@]}"; do samples[$k]+="$(ms "${cmds[$k]}") "; done; done
declare -A med
echo "start latency, median of $rounds interleaved runs (ms):"
for k in "${order[@]}"; do med[$k]=$(echo "${samples[$k]}" | median); printf '  %-20s %6s   %s\n' "$k" "${med[$k]}" "${cmds[$k]}"; done
echo "security + cgroup setup: tsbuild/unconfined $(ratio "${med[tsbuild]}" "${med[tsbuild_unconfined]}"), limits/no limits $(ratio "${med[tsbuild_limits]}" "${med[tsbuild]}")"
if [ -n "${med[podman]:-}" ]; then
  echo "tsbuild run --rm --network none true vs podman run --rm --network none: $(ratio "${med[tsbuild]}" "${med[podman]}")x (goal: at most 0.3x; node -e 0 alone: $(ratio "${med[node]}" "${med[podman]}")x)"
fi
if [ -n "${med[crun]:-}" ]; then echo "tsbuild run --rm true vs crun run (same bundle): $(ratio "${med[tsbuild]}" "${med[crun]}")x"; fi
