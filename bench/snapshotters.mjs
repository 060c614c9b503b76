#!/usr/bin/env node
// Snapshotter bench, per driver: prepare+commit on a 1-layer and a 100-layer chain, layer diff
// throughput (one 512 MiB file; 20,000 small files), and applying those layers again, next to
// `tar` + `gzip`/`zstd` on the same data as the reference. Prints figures; asserts nothing.
// Run as root after `npm run build`. SIZE_MIB=64 makes it quicker.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { openSnapshotter, removeAllSnapshots } from '../dist/snapshotter/index.js';
import { ContentStore, diffUpperDir, diffTrees, extractTar } from '../dist/image/index.js';
import { withMounted } from '../dist/ops/index.js';
import { makeBtrfs } from '../dist/testutil/index.js';

const SIZE = Number(process.env.SIZE_MIB ?? 512);
const now = () => Number(process.hrtime.bigint()) / 1e9;
const mib = (b) => (b / 1048576).toFixed(0);

async function layerOf(sn, key, store, env) {
  const upper = await sn.upperDir?.(key);
  const dirs = upper ? undefined : await sn.diffDirs(key);
  const stream = upper ? diffUpperDir(upper, { opaqueDirs: new Set() }) : diffTrees(dirs.lower, dirs.upper);
  return store.writeBlob(stream);
}

async function bench(driver, root) {
  const sn = openSnapshotter(root, driver);
  const store = new ContentStore(root);
  let t = now();
  await sn.prepare('one');
  await sn.commit('ONE', 'one');
  const one = now() - t;
  t = now();
  let parent;
  for (let i = 0; i < 100; i++) {
    await sn.prepare(`c${i}`, parent);
    await withMounted(root, await sn.mounts(`c${i}`), async (d) => fs.writeFileSync(path.join(d, `f${i}`), String(i)));
    await sn.commit(`C${i}`, `c${i}`);
    parent = `C${i}`;
  }
  const chain = now() - t;
  const results = [`${driver}: prepare+commit 1 layer ${(one * 1000).toFixed(1)} ms; 100-layer chain ${(chain).toFixed(2)} s (${((chain / 100) * 1000).toFixed(1)} ms/layer incl. writing a file)`];
  for (const [label, fill] of [
    [`one ${SIZE} MiB file`, (d) => spawnSync('dd', ['if=/dev/urandom', `of=${d}/big`, 'bs=1M', `count=${SIZE}`, 'status=none'])],
    ['20,000 small files', (d) => { for (let i = 0; i < 20000; i++) { const sub = path.join(d, `d${i % 100}`); fs.mkdirSync(sub, { recursive: true }); fs.writeFileSync(path.join(sub, `f${i}`), `small ${i}\n`); } }],
  ]) {
    const key = `w-${label}`;
    await sn.prepare(key, 'ONE');
    await withMounted(root, await sn.mounts(key), async (d) => fill(d));
    t = now();
    const blob = await layerOf(sn, key, store);
    const dt = now() - t;
    const akey = `a-${label}`;
    await sn.prepare(akey, 'ONE');
    t = now();
    await withMounted(root, await sn.mounts(akey), async (d) => extractTar(fs.createReadStream(store.blobPath(blob.digest)), d, { whiteouts: true }));
    const at = now() - t;
    results.push(`  ${label}: diff ${dt.toFixed(2)} s (${(blob.size / 1048576 / dt).toFixed(0)} MiB/s), apply ${at.toFixed(2)} s (${(blob.size / 1048576 / at).toFixed(0)} MiB/s), layer ${mib(blob.size)} MiB`);
    if (driver === 'overlayfs') {
      const src = (await sn.upperDir(key));
      for (const [c, args] of [['gzip', ['-c']], ['zstd', ['-c', '-3', '-T0']]]) {
        t = now();
        const r = spawnSync('sh', ['-c', `tar -C '${src}' -cf - . | ${c} ${args.join(' ')} > /dev/null`]);
        if (r.status === 0) results.push(`    reference tar | ${c}: ${(now() - t).toFixed(2)} s`);
      }
      t = now();
      spawnSync('sh', ['-c', `tar -C '${src}' -cf - . > /dev/null`]);
      results.push(`    reference tar alone: ${(now() - t).toFixed(2)} s`);
      // The apply reference: GNU tar extracting the same layer into a plain directory on this disk.
      const x = fs.mkdtempSync(path.join(root, 'tmp', 'tarx-'));
      t = now();
      spawnSync('tar', ['-C', x, '-xf', store.blobPath(blob.digest)]);
      results.push(`    reference tar -x of the layer: ${(now() - t).toFixed(2)} s`);
      fs.rmSync(x, { recursive: true, force: true });
    }
  }
  console.log(results.join('\n'));
}

for (const driver of ['overlayfs', 'native', 'btrfs']) {
  let root;
  let dispose = () => {};
  if (driver === 'btrfs') {
    const b = makeBtrfs(SIZE * 3 + 512);
    if ('unavailable' in b) { console.log(`btrfs: skipped (${b.unavailable})`); continue; }
    root = path.join(b.dir, 'store');
    dispose = b.dispose;
  } else root = fs.mkdtempSync(path.join(os.tmpdir(), `tsb-bench-${driver}-`));
  try {
    await bench(driver, root);
  } finally {
    if (driver === 'btrfs') {
      await removeAllSnapshots(openSnapshotter(root, 'btrfs'));
    }
    fs.rmSync(root, { recursive: true, force: true });
    dispose();
  }
}
