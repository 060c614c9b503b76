#!/usr/bin/env bash
# Rootless against root, and against rootless podman, in one run: a throwaway user with a subordinate
# range builds and runs the same busybox image as root does. Interleaved, ROUNDS rounds, medians,
# ratios. Everything made goes at the end: the user, its ranges, its namespace holders (tsbuild's and
# podman's pause process, by the pids they recorded), the work directory. Asserts nothing. Run as root.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
here=$(cd "$(dirname "$0")/.." && pwd)
rounds=${ROUNDS:-9}
work=$(mktemp -d /tmp/tsb-rlbench-XXXXXX)
chmod 755 "$work"
user="tsbbench$RANDOM"
useradd -M -d "$work/home" -s /bin/sh "$user"
sed -i "/^$user:/d" /etc/subuid /etc/subgid
top=$(cat /etc/subuid /etc/subgid | awk -F: 'BEGIN{m=100000} NF==3 && $2+$3>m {m=$2+$3} END{print m}')
echo "$user:$top:65536" >> /etc/subuid
echo "$user:$top:65536" >> /etc/subgid
mkdir -p "$work/home/run" && chown -R "$user:" "$work/home" && chmod 700 "$work/home/run"
cleanup() {
  for f in "$work/home/run/tsbuild/userns.pid" "$work/home/run/libpod/tmp/pause.pid"; do
    [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null || true
  done
  if [ -n "${rpod:-}" ]; then $rpod rmi -a -f >/dev/null 2>&1 || true; fi
  sed -i "/^$user:/d" /etc/subuid /etc/subgid
  userdel "$user" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
app="$here"
if ! runuser -u "$user" -- test -r "$here/dist/bundle/cli.mjs"; then
  # A private checkout (under /root): the user gets a readable copy of what the CLI needs.
  app="$work/app"; mkdir -p "$app/dist" "$app/native" "$app/src/runtime"
  cp -r "$here/bin" "$here/package.json" "$here/node_modules" "$app/"; cp -r "$here/dist/bundle" "$app/dist/"
  cp -r "$here/native/build" "$app/native/"; cp -r "$here/src/runtime/profiles" "$app/src/runtime/"
  chmod -R a+rX "$app"
fi
as_user() { runuser -u "$user" -- env PATH="$PATH" HOME="$work/home" XDG_RUNTIME_DIR="$work/home/run" TSBUILD_PULL=never "$@"; }
mkdir -p "$work/ctx"
cp "$(command -v busybox)" "$work/ctx/busybox"
printf 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\nRUN echo one > /a && chown 1000 /a\nRUN echo two > /b\n' > "$work/ctx/Dockerfile"
chmod -R a+rX "$work/ctx"
root_tsb() { TSBUILD_ROOT="$work/rootstore" TSBUILD_PULL=never TSBUILD_NETWORK=host "$here/bin/tsbuild" "$@"; }
user_tsb() { as_user "$app/bin/tsbuild" "$@"; }
root_tsb build -q -t rlbench -o "type=docker,dest=$work/image.tar" "$work/ctx" >/dev/null
chmod a+r "$work/image.tar"
user_tsb build -q -t rlbench "$work/ctx" >/dev/null

declare -A cmds
order=(root_build user_build root_rebuild user_rebuild root_run user_run)
cmds[root_build]="root_tsb build -q --no-cache -t rlbench $work/ctx"
cmds[user_build]="user_tsb build -q --no-cache -t rlbench $work/ctx"
cmds[root_rebuild]="root_tsb build -q -t rlbench $work/ctx"
cmds[user_rebuild]="user_tsb build -q -t rlbench $work/ctx"
cmds[root_run]="root_tsb run --rm --network none rlbench true"
cmds[user_run]="user_tsb run --rm --network none rlbench true"
# Root with a user namespace per container (idmapped layers), above every subordinate range.
uns=$((top + 65536))
order+=(root_userns_run); cmds[root_userns_run]="root_tsb run --rm --network none --uidmap 0:$uns:65536 rlbench true"
if command -v podman >/dev/null 2>&1; then
  pod="as_user podman --root $work/home/podroot --runroot $work/home/run/podrun --storage-driver vfs --cgroup-manager cgroupfs --events-backend file"
  # Podman's defaults ask for more than this host's hard rlimits allow.
  ul="--ulimit nofile=$(ulimit -Hn):$(ulimit -Hn) --ulimit nproc=1024:1024"
  podman_case podman_run "$pod" "$ul --network none" "$work/podman.err" "rootless podman"
  # The same Dockerfile and context, built by rootless podman (buildah inside), cold and unchanged.
  pb="$pod build -q $ul --network none -t rlbench-podman $work/ctx"
  if $pb >/dev/null 2>>"$work/podman.err"; then
    order+=(podman_build podman_rebuild); cmds[podman_build]="$pod build -q --no-cache $ul --network none -t rlbench-podman $work/ctx"; cmds[podman_rebuild]="$pb"
  else echo "rootless podman build: cannot build here ($(tail -c 300 "$work/podman.err"))"; fi
fi
if command -v podman >/dev/null 2>&1; then
  rpod="podman --root $work/rootpod --runroot $work/rootpodrun --storage-driver $(podman_driver) --cgroup-manager cgroupfs --events-backend file"
  podman_case podman_userns_run "$rpod" "$ul --network none --uidmap 0:$uns:65536" "$work/rpodman.err" "root podman --uidmap"
fi

declare -A samples
for _ in $(seq "$rounds"); do for k in "${order[@]}"; do samples[$k]+="$(ms "${cmds[$k]}") "; done; done
declare -A med
echo "rootless vs root, median of $rounds interleaved runs (ms):"
for k in "${order[@]}"; do med[$k]=$(echo "${samples[$k]}" | median); printf '  %-14s %6s  (%s)\n' "$k" "${med[$k]}" "$(echo "${samples[$k]}" | range)"; done
echo "rootless/root: cold build $(ratio "${med[user_build]}" "${med[root_build]}")x, no-change rebuild $(ratio "${med[user_rebuild]}" "${med[root_rebuild]}")x, run --rm true $(ratio "${med[user_run]}" "${med[root_run]}")x"
echo "root, own user namespace (--uidmap) vs none: run --rm true $(ratio "${med[root_userns_run]}" "${med[root_run]}")x"
if [ -n "${med[podman_userns_run]:-}" ]; then echo "root --uidmap run --rm true: tsbuild vs podman $(ratio "${med[root_userns_run]}" "${med[podman_userns_run]}")x"; fi
if [ -n "${med[podman_run]:-}" ]; then echo "rootless run --rm --network none true: tsbuild vs rootless podman $(ratio "${med[user_run]}" "${med[podman_run]}")x"; fi
if [ -n "${med[podman_build]:-}" ]; then echo "rootless build, tsbuild vs rootless podman: cold $(ratio "${med[user_build]}" "${med[podman_build]}")x, no-change $(ratio "${med[user_rebuild]}" "${med[podman_rebuild]}")x"; fi
