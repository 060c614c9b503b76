# Shared by the bench scripts (sourced): timing, medians and ratios, a registry, and a podman peer.
# For the timing helpers the caller has `order` (an array) and `cmds` (an associative array): keys
# in run order, and their commands.

# Milliseconds one command line takes (its output discarded).
ms() { local t0 t1; t0=$(date +%s%N); eval "$1" >/dev/null 2>&1; t1=$(date +%s%N); echo $(( (t1 - t0) / 1000000 )); }
# Median and min-max of the numbers on stdin (space- or line-separated).
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
range() { tr ' ' '\n' | grep . | sort -n | awk 'NR==1{a=$1} {b=$1} END {print a "-" b}'; }
ratio() { echo "scale=2; $1 / $2" | bc; }

# The storage driver root's podman is configured with (`podman info`; overlay on this machine), for
# the benches' podman stores of their own: a peer is measured as its users run it. These benches
# forced vfs until 2026-12-06, which copies the whole image for every container: podman's `run --rm`
# took 415 ms with it against 200 ms with overlay (10 rounds interleaved), and tsbuild's ratios to
# podman looked better than they were.
podman_driver() { podman info --format '{{.Store.GraphDriverName}}' 2>/dev/null | grep . || echo overlay; }

# podman_case KEY "PODMAN COMMAND" "RUN FLAGS" ERRFILE LABEL [HINT]: loads $work/image.tar into that
# podman and, when one `run --rm FLAGS IMAGE true` works, adds KEY running it; else says why. Sets `id`.
podman_case() {
  local key=$1 pod=$2 flags=$3 err=$4 label=$5 hint=${6:-}
  id=$($pod load -q -i "$work/image.tar" 2>"$err" | sed -n 's/^Loaded image: //p' | head -1 || true)
  if [ -n "$id" ] && $pod run --rm $flags "$id" true >/dev/null 2>>"$err"; then
    order+=("$key"); cmds[$key]="$pod run --rm $flags $id true"
  else echo "$label: cannot run here ($(head -c 300 "$err"))$hint"; fi
}

# start_registry [PORT]: a docker-registry of its own on 127.0.0.1 (PORT, or a free port), storing
# under $work/registry; sets `reg` (host:port) and `pid` (for the caller's cleanup to end it).
start_registry() {
  local port=${1:-}
  [ -n "$port" ] || port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
  reg=127.0.0.1:$port
  printf 'version: 0.1\nlog: { level: error, accesslog: { disabled: true } }\nstorage: { filesystem: { rootdirectory: %s/registry } }\nhttp: { addr: %s }\n' "$work" "$reg" > "$work/config.yml"
  docker-registry serve "$work/config.yml" >"$work/registry.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do curl -fsS "http://$reg/v2/" >/dev/null 2>&1 && break; sleep 0.05; done
}
