#!/usr/bin/env bash
# Container networks, against podman in the same run: the start latency that the bridge network adds
# over --network none (run --rm … true, each way), and TCP throughput into a container through a
# published port (-p) against a direct connection to its address, for tsbuild and for podman -p.
# Everything runs inside a throwaway network namespace (nsenter --net), so no bridge, veth or NAT rule
# touches this machine's own network. Interleaved, ROUNDS rounds, medians and ratios. Asserts nothing.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
here=$(cd "$(dirname "$0")/.." && pwd)
rounds=${ROUNDS:-7}
mib=${MIB:-256}
work=$(mktemp -d /tmp/tsb-netbench-XXXXXX)
store="$work/store"
podroot="$work/podman"
ns="tsbnb-$$"
pod=""
ip netns add "$ns"
ip -n "$ns" link set lo up
cleanup() {
  for id in $(TSBUILD_ROOT="$store" nsenter --net="/run/netns/$ns" "$here/bin/tsbuild" ps -aq 2>/dev/null); do
    TSBUILD_ROOT="$store" nsenter --net="/run/netns/$ns" "$here/bin/tsbuild" rm -f "$id" >/dev/null 2>&1 || true
  done
  if [ -n "$pod" ]; then $pod rm -f -a >/dev/null 2>&1 || true; $pod rmi -a -f >/dev/null 2>&1 || true; fi
  ip netns delete "$ns" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
inns() { nsenter --net="/run/netns/$ns" "$@"; }
tsbuild() { TSBUILD_ROOT="$store" TSBUILD_PULL=never inns "$here/bin/tsbuild" "$@"; }
mkdir -p "$work/ctx"
cp "$(command -v busybox)" "$work/ctx/busybox"
printf '#!/bin/sh\ncat > /dev/null\n' > "$work/ctx/sink.sh"
printf 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\nCOPY sink.sh /sink.sh\nRUN chmod +x /sink.sh\n' > "$work/ctx/Dockerfile"
tsbuild -q -t netbench -o "type=docker,dest=$work/image.tar" "$work/ctx" >/dev/null

# A client that sends MIB MiB of zeros and waits for the server to close: prints milliseconds.
cat > "$work/send.js" <<'EOF'
const [host, port, mib] = process.argv.slice(2);
const s = require('net').connect(Number(port), host);
const chunk = Buffer.alloc(1 << 20);
const t0 = process.hrtime.bigint();
let left = Number(mib);
const pump = () => { while (left > 0) { left--; if (!s.write(chunk)) return s.once('drain', pump); } s.end(); };
s.on('connect', pump);
s.on('close', () => console.log(Number((process.hrtime.bigint() - t0) / 1000000n)));
s.on('error', (e) => { console.error(e.message); process.exit(1); });
EOF

declare -A cmds
order=(tsbuild_none tsbuild_bridge)
cmds[tsbuild_none]="tsbuild run --rm --network none netbench true"
cmds[tsbuild_bridge]="tsbuild run --rm --network bridge netbench true"
tsbuild run -d --name sink -p 18080:80 netbench nc -ll -p 80 -e /sink.sh >/dev/null
tsip=$(tsbuild inspect -f '{{.NetworkSettings.IPAddress}}' sink)
tput=(tsbuild_published tsbuild_direct)
declare -A tcmds
tcmds[tsbuild_published]="127.0.0.1 18080"
tcmds[tsbuild_direct]="$tsip 80"
if command -v podman >/dev/null 2>&1; then
  pod="inns podman --root $podroot/root --runroot $podroot/run --storage-driver $(podman_driver)"
  ul="--ulimit nofile=$(ulimit -Hn):$(ulimit -Hn) --ulimit nproc=1024:1024"
  id=$($pod load -q -i "$work/image.tar" 2>/dev/null | sed -n 's/^Loaded image: //p' | head -1)
  if [ -n "$id" ] && $pod run -d --name sink $ul -p 18081:80 "$id" nc -ll -p 80 -e /sink.sh >/dev/null 2>"$work/podman.err"; then
    order+=(podman_none podman_bridge)
    cmds[podman_none]="$pod run --rm $ul --network none $id true"
    cmds[podman_bridge]="$pod run --rm $ul --network bridge $id true"
    tput+=(podman_published)
    tcmds[podman_published]="127.0.0.1 18081"
  else echo "podman: installed but cannot run here ($(head -c 200 "$work/podman.err" 2>/dev/null)); see ../shared/peers/README.md"; fi
else echo "podman: not installed (apt-get install podman); only tsbuild's own figures follow"; fi
sleep 0.5

declare -A samples
for _ in $(seq "$rounds"); do
  for k in "${order[@]}"; do samples[$k]+="$(ms "${cmds[$k]}") "; done
  for k in "${tput[@]}"; do samples[$k]+="$(inns node "$work/send.js" ${tcmds[$k]} "$mib" 2>/dev/null || echo 0) "; done
done
declare -A med
echo "start latency, median of $rounds interleaved runs (ms):"
for k in "${order[@]}"; do med[$k]=$(echo "${samples[$k]}" | median); printf '  %-18s %6s   %s\n' "$k" "${med[$k]}" "${cmds[$k]}"; done
echo "sending $mib MiB into a container, median of $rounds (ms; MiB/s):"
for k in "${tput[@]}"; do med[$k]=$(echo "${samples[$k]}" | median); printf '  %-18s %6s ms  %6s MiB/s\n' "$k" "${med[$k]}" "$(echo "scale=0; $mib * 1000 / (${med[$k]} + 1)" | bc)"; done
echo "tsbuild bridge over none:            $(ratio "${med[tsbuild_bridge]}" "${med[tsbuild_none]}")x"
echo "tsbuild published port vs direct:    $(ratio "${med[tsbuild_published]}" "${med[tsbuild_direct]}")x the time"
if [ -n "${med[podman_bridge]:-}" ]; then
  echo "podman bridge over none:             $(ratio "${med[podman_bridge]}" "${med[podman_none]}")x"
  echo "tsbuild bridge start vs podman's:    $(ratio "${med[tsbuild_bridge]}" "${med[podman_bridge]}")x"
  echo "tsbuild -p throughput time vs podman -p: $(ratio "${med[tsbuild_published]}" "${med[podman_published]}")x"
fi
