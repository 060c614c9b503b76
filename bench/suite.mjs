#!/usr/bin/env node
// The benchmark suite (`npm run bench`): fixed workloads of its own, each phase (cold, no change, one
// file changed, changed again) timed for tsbuild and, interleaved in the same rounds, for every peer that works here:
// BuildKit (when a Docker daemon answers), Buildah; push and pull of the 512 MiB layer against skopeo
// (when docker-registry and skopeo are installed; each on a registry of its own, started here on
// 127.0.0.1), and the pull against containerd and podman, which unpack it as tsbuild does. Medians, min-max and ratios, printed and written to bench/results/<date>.md with the
// machine's description. Asserts nothing; run as root.
//   ROUNDS=5 npm run bench            (default 3 rounds)
//   BENCH_ONLY=multistage,files20k    (a subset of the workloads)
//   BENCH_PEERS=BuildKit              (only these peers; tsbuild always runs)
//   BENCH_DIR=/mnt/bench              (where the work directory goes; default /tmp: see "Deletions
//                                      slow the next build" in docs/performance.md)
//   BENCH_SAMPLES=/tmp/samples.json   (every sample, in round order, with its CPU time: which round
//                                      was slow, not only the median)
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const rounds = Number(process.env.ROUNDS ?? 3);
const only = process.env.BENCH_ONLY?.split(',');
const work = fs.mkdtempSync(path.join(process.env.BENCH_DIR ?? '/tmp', 'tsb-suite-'));
fs.chmodSync(work, 0o755);
const busybox = ['/usr/bin/busybox', '/bin/busybox'].find((p) => fs.existsSync(p));
if (!busybox) throw new Error('busybox is needed (apt-get install busybox-static)');

const BASE = 'FROM scratch AS base\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\n';
/** name → Dockerfile, extra context files, and the file a "one file changed" phase rewrites. */
const workloads = {
  // Two CPU-bound stages that a DAG scheduler runs side by side, then a final stage taking both.
  multistage: {
    dockerfile: `${BASE}FROM base AS a\nRUN i=0; while [ $i -lt 400000 ]; do i=$((i+1)); done; echo $i > /a\nFROM base AS b\nRUN i=0; while [ $i -lt 400000 ]; do i=$((i+1)); done; echo $i > /b\nFROM base\nCOPY --from=a /a /a\nCOPY --from=b /b /b\nCOPY app.txt /app.txt\n`,
    files: { 'app.txt': 'v1\n' },
    change: 'app.txt',
  },
  // A 20,000-file context copied in one step; one of them changes.
  files20k: {
    dockerfile: `${BASE}COPY tree /tree\n`,
    files: Object.fromEntries(Array.from({ length: 20000 }, (_, i) => [`tree/d${i % 100}/f${i}`, `${i}\n`])),
    change: 'tree/d99/f19999',
  },
  // A 512 MiB layer, then a small file after it: the change must not redo the big layer.
  layer512: {
    dockerfile: `${BASE}RUN head -c 536870912 /dev/urandom > /big\nCOPY small.txt /small.txt\n`,
    files: { 'small.txt': 'v1\n' },
    change: 'small.txt',
  },
  // tsbuild alone: dockerd 20.10's built-in frontend has no heredocs, and the `syntax` line would make
  // BuildKit fetch docker/dockerfile:1 from Docker Hub; Buildah 1.28 has none either.
  heredoc: {
    without: ['BuildKit', 'Buildah'],
    dockerfile: `# syntax=docker/dockerfile:1\n${BASE}RUN <<EOF\nset -e\nfor i in 1 2 3; do echo line $i >> /h; done\nEOF\nCOPY <<EOF /etc/app.conf\nkey=value\nEOF\nCOPY note.txt /note.txt\n`,
    files: { 'note.txt': 'v1\n' },
    change: 'note.txt',
  },
  // 200 instructions: metadata steps, a few RUNs, a COPY at the end.
  steps200: {
    dockerfile: `${BASE}${Array.from({ length: 196 }, (_, i) => (i % 49 === 0 ? `RUN echo ${i} >> /steps\n` : i % 2 ? `ENV V${i}=${i}\n` : `LABEL l${i}=${i}\n`)).join('')}COPY last.txt /last.txt\n`,
    files: { 'last.txt': 'v1\n' },
    change: 'last.txt',
  },
};

/** Clock ticks per second of /proc's times (sysconf(_SC_CLK_TCK)). */
const TICK_MS = 1000 / (Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100);
/**
 * CPU time of this process's waited-for children and their waited-for descendants, in ms (fields
 * cutime and cstime of /proc/self/stat): what a command's own processes used, not a daemon's.
 */
function childrenCpu() {
  const f = fs.readFileSync('/proc/self/stat', 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return { user: Number(rest[13]) * TICK_MS, sys: Number(rest[14]) * TICK_MS };
}

function sh(cmd, args, opts = {}) {
  // Untimed: the last tool's unflushed writes would otherwise stall this one's fsyncs (ext4's ordered
  // mode commits them together), charging one tool for another's 512 MiB.
  spawnSync('sync');
  const c0 = childrenCpu();
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, ...opts });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const c1 = childrenCpu();
  const cpu = { user: c1.user - c0.user, sys: c1.sys - c0.sys };
  return { ok: r.status === 0, ms, cpu, out: r.stdout ?? '', err: `${r.stderr ?? ''}${r.error?.message ?? ''}` };
}

function makeContext(name, w) {
  const dir = path.join(work, 'ctx', name);
  fs.mkdirSync(dir, { recursive: true });
  fs.copyFileSync(busybox, path.join(dir, 'busybox'));
  fs.chmodSync(path.join(dir, 'busybox'), 0o755);
  fs.writeFileSync(path.join(dir, 'Dockerfile'), w.dockerfile);
  for (const [f, body] of Object.entries(w.files)) {
    fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    fs.writeFileSync(path.join(dir, f), body);
  }
  return dir;
}

/** Each tool: how to build (cold drops its cache first) and how to run a container. */
const tsbStore = path.join(work, 'tsbuild');
const tools = [
  {
    name: 'tsbuild',
    build: (ctx, tag, cold) => sh(path.join(here, 'bin/tsbuild'), ['-q', ...(cold ? ['--no-cache'] : []), '-t', tag, ctx], { env: { ...process.env, TSBUILD_ROOT: tsbStore, TSBUILD_NETWORK: 'host' } }),
    run: (tag) => sh(path.join(here, 'bin/tsbuild'), ['run', '--rm', '--network', 'none', tag, 'true'], { env: { ...process.env, TSBUILD_ROOT: tsbStore } }),
  },
];
// Debian's docker.io CLI (20.10) builds with BuildKit built in; a newer CLI without the buildx plugin
// (setup-peers warns of one in /usr/local/bin) refuses DOCKER_BUILDKIT=1.
const DOCKER = fs.existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker';
const onlyPeers = process.env.BENCH_PEERS?.split(',');
const wanted = (name) => !onlyPeers || onlyPeers.includes(name) || (console.log(`${name}: not in BENCH_PEERS; left out`), false);
const docker = wanted('BuildKit') ? spawnSync(DOCKER, ['info'], { encoding: 'utf8', timeout: 5000 }) : { status: -1 };
if (docker.status === 0) {
  const env = { ...process.env, DOCKER_BUILDKIT: '1' };
  // BENCH_BUILDKIT_NETWORK=host: RUN steps on the host's network, as tsbuild's own default; for a
  // daemon started without a bridge (--bridge none), where BuildKit's default fails.
  const net = process.env.BENCH_BUILDKIT_NETWORK ? ['--network', process.env.BENCH_BUILDKIT_NETWORK] : [];
  // Every image id it built: a tag moved by a later build leaves the earlier image untagged.
  const built = new Set();
  tools.push({
    name: 'BuildKit',
    build: (ctx, tag, cold) => {
      const r = sh(DOCKER, ['build', '-q', ...net, ...(cold ? ['--no-cache'] : []), '-t', `tsb-suite-${tag}`, ctx], { env });
      if (r.ok) built.add(r.out.trim());
      return r;
    },
    run: (tag) => sh(DOCKER, ['run', '--rm', '--network', 'none', `tsb-suite-${tag}`, 'true']),
    cleanup: () => {
      spawnSync('sh', ['-c', `${DOCKER} images -q "tsb-suite-*" | xargs -r ${DOCKER} rmi -f`], { stdio: 'ignore' });
      if (built.size) spawnSync(DOCKER, ['rmi', '-f', ...built], { stdio: 'ignore' });
    },
  });
} else if (docker.status !== -1) console.log('BuildKit: no Docker daemon answers (../shared/peers/setup-peers.sh starts one); left out');
if (wanted('Buildah') && spawnSync('buildah', ['--version']).status === 0) {
  const root = ['--root', path.join(work, 'buildah'), '--runroot', path.join(work, 'buildah-run')];
  // chroot isolation: crun refuses this VM's hybrid cgroup layout unless setup-peers has moved hugetlb.
  tools.push({
    name: 'Buildah',
    build: (ctx, tag, cold) => sh('buildah', [...root, 'bud', '--layers', '--isolation', 'chroot', '-q', ...(cold ? ['--no-cache'] : []), '-t', tag, ctx]),
    cleanup: () => {
      spawnSync('buildah', [...root, 'rmi', '-a', '-f'], { stdio: 'ignore' });
    },
  });
} else if (!onlyPeers || onlyPeers.includes('Buildah')) console.log('Buildah: not installed; left out');

/**
 * Push of the layer512 image (gzip) and pull of it into an empty store (tsbuild unpacks it too), each
 * against skopeo (push from the tsbuild store's OCI layout, pull into an OCI directory). Every push
 * goes to a fresh registry, so no blob is there already.
 */
const haveRegistry = spawnSync('docker-registry', ['--version']).status === 0 && spawnSync('skopeo', ['--version']).status === 0;
if (!haveRegistry) console.log('push/pull: docker-registry or skopeo not installed; left out');
function startRegistry(dir) {
  const port = 5300 + Math.floor(Math.random() * 600);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'config.yml'), `version: 0.1\nlog: { level: error, accesslog: { disabled: true } }\nstorage: { filesystem: { rootdirectory: ${dir}/data } }\nhttp: { addr: 127.0.0.1:${port} }\n`);
  const child = spawn('docker-registry', ['serve', path.join(dir, 'config.yml')], { stdio: 'ignore' });
  for (let i = 0; i < 100; i++) {
    if (spawnSync('curl', ['-fsS', `http://127.0.0.1:${port}/v2/`], { stdio: 'ignore' }).status === 0) break;
    spawnSync('sleep', ['0.05']);
  }
  return { host: `127.0.0.1:${port}`, stop: () => child.kill('SIGTERM') };
}
/**
 * Pull peers that unpack, as tsbuild does: containerd (BuildKit's content store and overlayfs
 * snapshotter; a daemon of its own per pull, started here, so nothing is shared between rounds) and
 * podman (containers/storage). skopeo only writes the blobs into a directory.
 */
const haveContainerd = spawnSync('containerd', ['--version']).status === 0 && spawnSync('ctr', ['--version']).status === 0;
const havePodman = spawnSync('podman', ['--version']).status === 0;
const sleep = (s) => spawnSync('sleep', [String(s)]);
/** Whatever is mounted under `dir`, deepest first (a peer's leftovers). */
function unmountUnder(dir) {
  const left = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4]).filter((m) => m?.startsWith(dir)).reverse();
  for (const m of left) spawnSync('umount', ['-l', m], { stdio: 'ignore' });
}
function containerdPull(dir, ref) {
  fs.mkdirSync(dir, { recursive: true });
  const sock = path.join(dir, 'sock');
  const config = path.join(dir, 'config.toml');
  fs.writeFileSync(config, `version = 2\nroot = "${dir}/root"\nstate = "${dir}/state"\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\n[grpc]\n  address = "${sock}"\n[ttrpc]\n  address = "${dir}/ttrpc.sock"\n[debug]\n  address = ""\n[metrics]\n  address = ""\n`);
  const child = spawn('containerd', ['--config', config], { stdio: 'ignore' });
  try {
    for (let i = 0; i < 100 && spawnSync('ctr', ['-a', sock, 'version'], { stdio: 'ignore' }).status !== 0; i++) sleep(0.05);
    return sh('ctr', ['-a', sock, 'images', 'pull', '-q', '--plain-http', ref]);
  } finally {
    child.kill('SIGTERM');
    // This loop blocks Node's event loop, so the child is never reaped here: it has exited once a zombie.
    const gone = () => {
      try {
        return / Z /.test(fs.readFileSync(`/proc/${child.pid}/stat`, 'utf8').replace(/^.*\)/, ' '));
      } catch {
        return true;
      }
    };
    for (let i = 0; i < 200 && !gone(); i++) sleep(0.05);
    unmountUnder(dir);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
function podmanPull(dir, ref) {
  // podman refuses a runroot longer than 50 characters, which a BENCH_DIR can make: that one goes
  // to /tmp (it holds only locks and state, no layers).
  const run = fs.mkdtempSync('/tmp/tsbp-');
  const root = ['--root', path.join(dir, 'root'), '--runroot', run, '--storage-driver', 'overlay'];
  try {
    return sh('podman', [...root, 'pull', '-q', '--tls-verify=false', ref]);
  } finally {
    spawnSync('podman', [...root, 'rmi', '-a', '-f'], { stdio: 'ignore' });
    unmountUnder(run);
    fs.rmSync(run, { recursive: true, force: true });
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
const PULL = 'pull of it (unpacked; skopeo: into a directory)';

function registryRound(round) {
  if (!haveRegistry) return;
  const tsb = (root, args) => sh(path.join(here, 'bin/tsbuild'), [...args], { env: { ...process.env, TSBUILD_ROOT: root } });
  // Which tool goes first alternates by round: whatever the one before leaves behind (writeback of
  // deleted stores, the registry's page cache) falls on each side alike.
  for (const tool of round % 2 ? ['tsbuild', 'skopeo'] : ['skopeo', 'tsbuild']) {
    const reg = startRegistry(path.join(work, `registry-${tool}-${round}`));
    try {
      const ref = `${reg.host}/bench/layer512:1`;
      const push = tool === 'tsbuild' ? tsb(tsbStore, ['push', '-q', 'bench-layer512', ref]) : sh('skopeo', ['copy', '-q', '--dest-tls-verify=false', `oci:${tsbStore}:bench-layer512:latest`, `docker://${ref}`]);
      if (push.ok) add('push of the 512 MiB layer (gzip)', tool, push.ms, push.cpu);
      else console.log(`${tool} push failed: ${push.err.slice(-300)}`);
      const into = path.join(work, `pulled-${tool}-${round}`);
      const pull = tool === 'tsbuild' ? tsb(into, ['pull', '-q', ref]) : sh('skopeo', ['copy', '-q', '--src-tls-verify=false', `docker://${ref}`, `oci:${into}:x`]);
      if (pull.ok) add(PULL, tool, pull.ms, pull.cpu);
      if (tool === 'tsbuild') {
        // The same registry and image, right after tsbuild's pull, each into a store of its own.
        for (const [peer, pullWith] of [['containerd', haveContainerd && containerdPull], ['podman', havePodman && podmanPull]]) {
          if (!pullWith) continue;
          const r = pullWith(path.join(work, `pulled-${peer}-${round}`), ref);
          if (r.ok) add(PULL, peer, r.ms, r.cpu);
          else console.log(`${peer} pull failed: ${r.err.slice(-300)}`);
        }
      }
      if (tool === 'tsbuild') spawnSync(path.join(here, 'bin/tsbuild'), ['system', 'prune', '-a', '-f'], { env: { ...process.env, TSBUILD_ROOT: into }, stdio: 'ignore' });
      fs.rmSync(into, { recursive: true, force: true });
    } finally {
      reg.stop();
      fs.rmSync(path.join(work, `registry-${tool}-${round}`), { recursive: true, force: true });
    }
  }
}

// Changed files get content no earlier run gave them: a peer's build cache outlives this run (BuildKit's
// is dockerd's), and a change it built before is a cache hit, not a change (an earlier version of this
// suite wrote the same text every run, and BuildKit answered "one file changed" in 0.46 s from cache).
const runId = `${Date.now().toString(36)}-${process.pid}`;
const samples = new Map();
/** CPU time (user, system) of each sample's own processes, by the same key. */
const cpuSamples = new Map();
const add = (key, tool, ms, cpu) => {
  const k = `${key}\u0000${tool}`;
  samples.set(k, [...(samples.get(k) ?? []), ms]);
  if (cpu) cpuSamples.set(k, [...(cpuSamples.get(k) ?? []), cpu]);
};
const names = Object.keys(workloads).filter((n) => !only || only.includes(n));
const contexts = Object.fromEntries(names.map((n) => [n, makeContext(n, workloads[n])]));
const failed = new Set();
try {
  for (let round = 1; round <= rounds; round++) {
    console.log(`round ${round} of ${rounds}`);
    for (const n of names) {
      const w = workloads[n];
      const ctx = contexts[n];
      fs.writeFileSync(path.join(ctx, w.change), w.files[w.change]);
      for (const [phase, cold] of [['cold', true], ['no change', false]]) {
        for (const t of tools) {
          if (w.without?.includes(t.name)) continue;
          const r = t.build(ctx, `bench-${n}`, cold);
          if (r.ok) add(`${n}: ${phase}`, t.name, r.ms, r.cpu);
          else if (!failed.has(`${t.name} ${n}`)) failed.add(`${t.name} ${n}`) && console.log(`${t.name} ${n} ${phase} failed: ${r.err.slice(-400)}`);
        }
      }
      fs.writeFileSync(path.join(ctx, w.change), `changed in round ${round} of run ${runId}\n`);
      for (const t of tools) {
        if (w.without?.includes(t.name)) continue;
        const r = t.build(ctx, `bench-${n}`, false);
        if (r.ok) add(`${n}: one file changed`, t.name, r.ms, r.cpu);
      }
      // The edit loop: the same file changed again, with no --no-cache build just before.
      fs.writeFileSync(path.join(ctx, w.change), `changed again in round ${round} of run ${runId}\n`);
      for (const t of tools) {
        if (w.without?.includes(t.name)) continue;
        const r = t.build(ctx, `bench-${n}`, false);
        if (r.ok) add(`${n}: changed again`, t.name, r.ms, r.cpu);
      }
    }
    if (names.includes('layer512')) registryRound(round);
    // The floor under every tsbuild command: Node starting and exiting, nothing loaded, without
    // NODE_EXTRA_CA_CERTS, which bin/tsbuild defers (src/fsutil/tlstrust.ts).
    const { NODE_EXTRA_CA_CERTS: _deferred, ...bare } = process.env;
    const floor = sh(process.execPath, ['-e', '0'], { env: bare });
    if (floor.ok) add('node -e 0 (the floor of any tsbuild command)', 'tsbuild', floor.ms);
    for (const t of tools) {
      if (!t.run || !names.includes('multistage')) continue;
      const r = t.run('bench-multistage');
      if (r.ok) add('run --rm --network none IMAGE true', t.name, r.ms, r.cpu);
    }
  }
} finally {
  for (const t of tools) t.cleanup?.();
  spawnSync(path.join(here, 'bin/tsbuild'), ['system', 'prune', '-a', '-f'], { env: { ...process.env, TSBUILD_ROOT: tsbStore }, stdio: 'ignore' });
  // Whatever a peer left mounted under the work directory goes first.
  unmountUnder(work);
  fs.rmSync(work, { recursive: true, force: true });
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const fmt = (ms) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${Math.round(ms)} ms`);
const peers = [...tools.slice(1).map((t) => t.name), ...['skopeo', 'containerd', 'podman'].filter((p) => [...samples.keys()].some((k) => k.endsWith(`\u0000${p}`)))];
const keys = [...new Set([...samples.keys()].map((k) => k.split('\u0000')[0]))];
const lines = [
  `| workload: phase | tsbuild | ${peers.map((p) => `${p} | tsbuild / ${p}`).join(' | ')} |`,
  `|---|---|${peers.map(() => '---|---|').join('')}`,
];
for (const k of keys) {
  const cell = (tool) => {
    const xs = samples.get(`${k}\u0000${tool}`);
    return xs ? { m: median(xs), text: `${fmt(median(xs))} (${fmt(Math.min(...xs))}-${fmt(Math.max(...xs))})` } : undefined;
  };
  const mine = cell('tsbuild');
  const cols = peers.map((p) => {
    const c = cell(p);
    return c ? `${c.text} | ${mine ? `${(mine.m / c.m).toFixed(2)}×` : '-'}` : '- | -';
  });
  lines.push(`| ${k} | ${mine?.text ?? '-'} | ${cols.join(' | ')} |`);
}
// CPU time is a command's own processes: docker build's and ctr's work is done by their daemons, so
// BuildKit and containerd are left out of this table.
const cpuTools = ['tsbuild', ...peers.filter((p) => p !== 'BuildKit' && p !== 'containerd')];
const cpuLines = [
  `| workload: phase | ${cpuTools.join(' | ')} |`,
  `|---|${cpuTools.map(() => '---|').join('')}`,
];
for (const k of keys) {
  const cells = cpuTools.map((tool) => {
    const xs = cpuSamples.get(`${k}\u0000${tool}`);
    return xs ? `${fmt(median(xs.map((c) => c.user)))} + ${fmt(median(xs.map((c) => c.sys)))}` : '-';
  });
  if (cells.some((c) => c !== '-')) cpuLines.push(`| ${k} | ${cells.join(' | ')} |`);
}
const machine = `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'CPU'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Linux ${os.release()}, Node ${process.version}`;
// Where the stores were: on ext4 without a journal, inodes deleted in the last 30 s (5 min while
// unwritten) slow every file creation near them (docs/performance.md), so the filesystem is part of the result.
const fsOf = (dir) => {
  const m = spawnSync('findmnt', ['-n', '-o', 'SOURCE,FSTYPE,OPTIONS', '--target', dir], { encoding: 'utf8' }).stdout.trim().split(/\s+/);
  const dev = path.basename(m[0] ?? '');
  const journal = m[1] === 'ext4' ? (fs.readFileSync(`/sys/fs/ext4/${dev}/journal_task`, { encoding: 'utf8', flag: 'r' }).trim() === '<none>' ? ', no journal' : ', journal') : '';
  return `${m[1] ?? '?'}${journal} on ${m[0] ?? '?'} (${m[2] ?? ''})`;
};
let where = '';
try {
  where = ` Stores in ${path.dirname(work)}: ${fsOf(path.dirname(work))}.`;
} catch {
  // findmnt or the sysfs entry missing: the description goes without it
}
const report = `# Benchmark suite, ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC\n\n${machine}. Medians of ${rounds} interleaved rounds (min-max); ratios below 1 mean tsbuild is faster.${tools.some((t) => t.name === 'Buildah') ? ' Buildah runs with --isolation chroot.' : ''}${where}\n\n${lines.join('\n')}\n\nCPU time of each command's own processes, user + system, medians (a daemon's work is not in it: BuildKit and containerd are left out):\n\n${cpuLines.join('\n')}\n`;
console.log(`\n${report}`);
const out = path.join(here, 'bench/results');
fs.mkdirSync(out, { recursive: true });
// One file per run (a run of a subset says which), so a later run never replaces an earlier record.
const stamp = new Date().toISOString().slice(0, 16).replace('T', '-').replace(':', '');
const file = path.join(out, `${stamp}${only ? `-${only.join('+')}` : ''}.md`);
fs.writeFileSync(file, report);
console.log(`written to ${path.relative(here, file)}`);
if (process.env.BENCH_SAMPLES) {
  const raw = {};
  for (const [k, ms] of samples) {
    const [key, tool] = k.split('\u0000');
    (raw[key] ??= {})[tool] = ms.map((m, i) => ({ ms: Math.round(m), ...cpuSamples.get(k)?.[i] }));
  }
  fs.writeFileSync(process.env.BENCH_SAMPLES, JSON.stringify(raw, null, 1));
  console.log(`samples written to ${process.env.BENCH_SAMPLES}`);
}
