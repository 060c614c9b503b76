#!/usr/bin/env bash
# Cache bench: a 20,000-file context, cold build, warm no-change rebuild, and a rebuild after one file
# changed: wall time and how many context files were read (the rest came from the checksum memo).
# Peer reference figures (BuildKit 7.86 / 0.89 / 5.86 s) are in ../shared/peers/README.md; when
# docker with BuildKit is running, the same context is built with it in the same run for a ratio.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/tsb-bench-cache-XXXXXX)
trap 'rm -rf "$work"' EXIT
export TSBUILD_ROOT="$work/store"
ctx="$work/ctx"
mkdir -p "$ctx"
cp "$(command -v busybox)" "$ctx/busybox"
node -e '
const fs = require("fs"), p = require("path");
for (let i = 0; i < 20000; i++) { const d = p.join(process.argv[1], "src", "d" + (i % 200)); fs.mkdirSync(d, { recursive: true }); fs.writeFileSync(p.join(d, "f" + i + ".txt"), "content " + i + "\n".repeat(1 + (i % 7))); }
' "$ctx"
cat > "$ctx/Dockerfile" <<'DF'
FROM scratch AS base
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
FROM base
COPY src /src
RUN find /src -type f | wc -l > /count
DF
run() {
  local t0 t1
  t0=$(date +%s.%N)
  "$here/bin/tsbuild" --progress plain --explain json "$ctx" 2>/dev/null > "$work/explain.json"
  t1=$(date +%s.%N)
  local read memo
  read=$(node -e 'const j=require(process.argv[1]); console.log(j.checksums.filesRead)' "$work/explain.json")
  memo=$(node -e 'const j=require(process.argv[1]); console.log(j.checksums.fromMemo)' "$work/explain.json")
  printf '%-28s %6.2f s   files read %6s, from memo %6s\n' "$1" "$(echo "$t1 - $t0" | bc)" "$read" "$memo"
}
run "cold"
run "warm, nothing changed"
echo changed >> "$ctx/src/d7/f1207.txt"
run "one file changed"
if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
  t0=$(date +%s.%N); DOCKER_BUILDKIT=1 docker build -q "$ctx" >/dev/null; t1=$(date +%s.%N)
  echo "BuildKit warm build of the same context: $(echo "$t1 - $t0" | bc) s"
else
  echo "BuildKit not running here: compare with ../shared/peers/README.md (cold 7.86 s, warm 0.89 s, one file changed 5.86 s)"
fi
