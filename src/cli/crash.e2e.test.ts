/**
 * The seeded crash battery (#21): kill -9 of tsbuild at random moments of build, push, pull, run and
 * prune, many times over. After each kill, the next command must find a consistent store (nothing
 * mounted, no process of the killed command left, no snapshot or temporary file half made that
 * anything trusts), and the interrupted command must succeed when repeated. At the end every listed
 * image runs, and once every name is removed and the store pruned, nothing is left: no snapshot and no
 * blob that no name, container or cache record needs. Reproducible: TSBUILD_CRASH_SEED=N picks the
 * schedule (the seed is printed), TSBUILD_CRASH_KILLS=N how many kills.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { cli, cliPath, mountsUnder, readJSON } from '../testutil/index.js';
import { registryFixture } from './registry.fixture.js';
import { chainIDs } from '../image/index.js';

const { it, root, ctx, env, newStore, registry } = registryFixture('crash');
const seed = Number(process.env.TSBUILD_CRASH_SEED ?? 2112);
const kills = Number(process.env.TSBUILD_CRASH_KILLS ?? 32);

/** mulberry32: a small PRNG, so one seed gives one schedule. */
function prng(s: number): () => number {
  return () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Pids whose process group is `pgid` (the killed command's: it was started as a group leader). */
function groupMembers(pgid: number): string[] {
  const out: string[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[2]) === pgid && fields[0] !== 'Z') out.push(`${d}: ${fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').replace(/\0/g, ' ')}`);
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Starts the command as its own process group, kills it with SIGKILL after `delay` ms; whether it was still running. */
async function killedAfter(args: string[], store: string, delay: number): Promise<{ killed: boolean; leftover: string[] }> {
  const child = spawn(cliPath, args, { env: { ...process.env, ...env, TSBUILD_ROOT: store }, stdio: 'ignore', detached: true });
  const exited = new Promise<void>((r) => child.on('close', () => r()));
  const done = await Promise.race([exited.then(() => true), sleep(delay).then(() => false)]);
  if (!done) child.kill('SIGKILL');
  await exited;
  // What the command started must go with it (helpers die with their parent, sandboxes with them).
  let leftover = groupMembers(child.pid!);
  for (let i = 0; i < 100 && leftover.length > 0; i++) {
    await sleep(50);
    leftover = groupMembers(child.pid!);
  }
  if (leftover.length > 0) {
    try {
      process.kill(-child.pid!, 'SIGKILL'); // our own group: clean up before reporting
    } catch {
      // gone
    }
  }
  return { killed: !done, leftover };
}

interface Snapshots {
  snapshots: Record<string, { kind: string }>;
}

/** What the next command finds after a kill: problems, as sentences (none when consistent). */
async function inconsistencies(store: string): Promise<string[]> {
  const out: string[] = [];
  const ls = await cli(['images', '-q'], { root: store, env });
  if (ls.code !== 0) out.push(`images failed: ${ls.stderr}`);
  // A killed `run --rm` cannot remove its container (as with Docker); remove it as a user would.
  const ps = await cli(['ps', '-aq'], { root: store, env });
  for (const id of ps.stdout.split('\n').filter(Boolean)) {
    const rm = await cli(['rm', '-f', id], { root: store, env });
    if (rm.code !== 0) out.push(`rm -f ${id} failed: ${rm.stderr}`);
  }
  const mounted = mountsUnder(store);
  if (mounted.length > 0) out.push(`still mounted: ${mounted.join('; ')}`);
  const meta = path.join(store, 'snapshots/overlayfs/metadata.json');
  if (fs.existsSync(meta)) {
    const open = Object.entries(readJSON<Snapshots>(meta).snapshots).filter(([, v]) => v.kind !== 'committed');
    if (open.length > 0) out.push(`snapshots left uncommitted: ${open.map(([k, v]) => `${k} (${v.kind})`).join(', ')}`);
  }
  const tmp = path.join(store, 'tmp');
  for (const e of fs.existsSync(tmp) ? fs.readdirSync(tmp) : []) {
    // Interrupted downloads are kept to resume from (recovery removes them after a day).
    if (/^ingest-[a-f0-9]{64}$/.test(e)) continue;
    if (e === 'mnt' && fs.readdirSync(path.join(tmp, e)).length === 0) continue;
    // Which processes work in the store: none now, and the killed one's file went with the sweep.
    if (e === 'live' && fs.readdirSync(path.join(tmp, e)).every((n) => n === 'swept')) continue;
    out.push(`left in tmp/: ${e}`);
  }
  // The store's own check: tables, records, images and snapshots (blobs are hashed once, at the end).
  const doc = await cli(['doctor', '--quick'], { root: store, env });
  if (doc.code !== 0) out.push(`doctor found: ${doc.stdout}${doc.stderr}`);
  return out;
}

it(`kill -9 at random points of build, push, pull, run and prune (seed ${seed}): the store stays consistent and the work succeeds when repeated`, async () => {
  console.log(`  crash battery: seed ${seed}, ${kills} kills (TSBUILD_CRASH_SEED / TSBUILD_CRASH_KILLS)`);
  const rand = prng(seed);
  const reg = registry().host;
  const puller = newStore();
  const d = ctx(
    'FROM base AS side\nRUN dd if=/dev/urandom of=/side bs=1M count=2 2>/dev/null\n' +
      'FROM base\nARG N\nCOPY big.bin /big.bin\nRUN echo "$N" > /n && dd if=/dev/urandom of=/rand bs=1M count=4 2>/dev/null\nCOPY --from=side /side /side\nCMD ["cat", "/n"]\n',
    { 'big.bin': 'x'.repeat(3 << 20) },
  );
  let n = 0;
  let pushed = 0;
  const build = () => ['build', '-q', '--build-arg', `N=${n}`, '-t', `crash:${n}`, d];
  const ops: Record<string, { store: string; args: () => string[]; ready: () => boolean }> = {
    build: { store: root, args: build, ready: () => true },
    push: { store: root, args: () => ['push', `crash:${n}`, `${reg}/crash/img:${n}`], ready: () => true },
    pull: { store: puller, args: () => ['pull', `${reg}/crash/img:${pushed}`], ready: () => pushed > 0 },
    run: { store: root, args: () => ['run', '--rm', `crash:${n}`, 'sh', '-c', 'cat /n; sleep 0.3'], ready: () => true },
    prune: { store: puller, args: () => ['image', 'prune', '-a', '-f'], ready: () => true },
  };
  const problems: string[] = [];
  let delivered = 0;
  const seen = new Set<string>();
  const took: Record<string, number> = {};
  // The first build and push make something to push, pull and run.
  assert.is((await cli(build(), { root, env })).code, 0);
  assert.is((await cli(ops.push!.args(), { root, env })).code, 0);
  pushed = n;
  for (let i = 0; delivered < kills && i < kills * 3; i++) {
    const names = Object.keys(ops).filter((k) => ops[k]!.ready());
    const name = names[Math.floor(rand() * names.length)]!;
    if (name === 'build') n++;
    const op = ops[name]!;
    const args = op.args();
    // A moment inside the command: its last uninterrupted run's time says how long it takes.
    const delay = 10 + Math.floor(rand() * 0.9 * (took[name] ?? 600));
    const r = await killedAfter(args, op.store, delay);
    if (r.killed) {
      delivered++;
      seen.add(name);
    }
    const what = `#${i} ${name} killed after ${delay} ms (${args.join(' ')})`;
    if (r.leftover.length > 0) problems.push(`${what}: processes left: ${r.leftover.join('; ')}`);
    for (const p of await inconsistencies(op.store)) problems.push(`${what}: ${p}`);
    const t0 = Date.now();
    const again = await cli(args, { root: op.store, env });
    took[name] = Date.now() - t0;
    if (again.code !== 0) problems.push(`${what}: repeated, it failed: ${again.stderr.trim()}`);
    else if (name === 'push') pushed = n;
    else if (name === 'run' && again.stdout !== `${n}\n`) problems.push(`${what}: repeated, it printed ${JSON.stringify(again.stdout)}`);
  }
  assert.equal(problems, [], problems.join('\n'));
  assert.ok(delivered >= kills, `${delivered} kills landed while a command ran (of ${kills} wanted)`);
  if (kills >= 20) assert.is(seen.size, Object.keys(ops).length, `kills landed in every command: ${[...seen].join(', ')}`);

  // Every image listed runs.
  for (const store of [root, puller]) {
    const images = (await cli(['images', '--format', '{{.Repository}}:{{.Tag}}'], { root: store, env })).stdout.split('\n').filter(Boolean);
    for (const img of images) {
      const r = await cli(['run', '--rm', img, 'true'], { root: store, env });
      assert.is(r.code, 0, `${img} in ${store} runs: ${r.stderr}`);
    }
    // Every blob hashed against its digest once, after all the kills: none was left torn.
    const doc = await cli(['doctor'], { root: store, env });
    assert.is(doc.code, 0, `doctor after the battery in ${store}: ${doc.stdout}${doc.stderr}`);
    // After `prune --all` (every cache record), the only snapshots left are the layer chains of the
    // images listed (#21 item 13: snapshots of killed builds must not outlive them).
    assert.is((await cli(['prune', '--all'], { root: store, env })).code, 0);
    const needed = new Set<string>();
    const blobsNeeded = new Set<string>();
    for (const img of images) {
      const [info] = JSON.parse((await cli(['inspect', img], { root: store, env })).stdout) as { Id: string; Digest: string; RootFS: { Layers: string[] }; Manifest: { layers: { digest: string }[] } }[];
      for (const c of chainIDs(info!.RootFS.Layers)) needed.add(c);
      for (const b of [info!.Id, info!.Digest, ...info!.Manifest.layers.map((l) => l.digest)]) blobsNeeded.add(b.slice(7));
    }
    const blobDir = path.join(store, 'blobs/sha256');
    const extraBlobs = fs.readdirSync(blobDir).filter((b) => !blobsNeeded.has(b));
    assert.equal(extraBlobs, [], `blobs no image needs after prune --all in ${store}`);
    const snapsNow = path.join(store, 'snapshots/overlayfs/metadata.json');
    const extra = fs.existsSync(snapsNow) ? Object.keys(readJSON<Snapshots>(snapsNow).snapshots).filter((k) => !needed.has(k)) : [];
    assert.equal(extra, [], `snapshots no image needs after prune --all in ${store}`);
    // With every name gone and the store pruned, nothing is left that nothing needs.
    for (const img of images) assert.is((await cli(['rmi', img], { root: store, env })).code, 0);
    const pr = await cli(['system', 'prune', '-a', '-f'], { root: store, env });
    assert.is(pr.code, 0, pr.stderr);
    const meta = path.join(store, 'snapshots/overlayfs/metadata.json');
    const left = fs.existsSync(meta) ? Object.keys(readJSON<Snapshots>(meta).snapshots) : [];
    assert.equal(left, [], `snapshots left in ${store} after prune -a: ${left.join(', ')}`);
    const blobs = path.join(store, 'blobs/sha256');
    const leftBlobs = fs.existsSync(blobs) ? fs.readdirSync(blobs) : [];
    assert.equal(leftBlobs, [], `blobs left in ${store} after prune -a`);
  }
});

test.run();
