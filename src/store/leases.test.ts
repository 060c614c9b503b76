/** Leases keep what running builds use and make from GC; a dead process's lease holds nothing. */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { testUnless, tmpdir } from '../testutil/index.js';
import { gcWithCache } from './gc.js';
import { liveLeases, openLease } from './leases.js';
import { openStore } from './store.js';

const root = tmpdir('tsb-lease-');
test.after(() => fs.rmSync(root, { recursive: true, force: true }));

function deadPid(): number {
  return parseInt(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout, 10);
}

testUnless(process.getuid?.() !== 0 ? 'openStore needs root' : undefined, 'GC keeps what a live lease holds and what was made since it opened; without a lease, both go', async () => {
  const s = await openStore(root, 'native');
  await s.snapshotter.prepare('a', undefined);
  await s.snapshotter.commit('sha256:old', 'a');
  const oldBlob = await s.content.writeBlob('held by a cache hit');
  // Older than the lease (beyond its clock margin): only the hold keeps these.
  const past = new Date(Date.now() - 60_000);
  fs.utimesSync(s.content.blobPath(oldBlob.digest), past, past);
  await new Promise((r) => setTimeout(r, 2100));
  const lease = openLease(root);
  lease.hold(['sha256:old', oldBlob.digest]);
  const fresh = await s.content.writeBlob('a layer of the running build');
  await gcWithCache(s);
  assert.ok(s.content.has(oldBlob.digest), 'a held blob stays');
  assert.ok(s.content.has(fresh.digest), 'a blob made while the build runs stays');
  assert.ok((await s.snapshotter.stat('sha256:old').then(() => true, () => false)), 'a held snapshot stays');
  lease.close();
  await gcWithCache(s);
  assert.not.ok(s.content.has(oldBlob.digest), 'once the lease is closed, nothing holds it');
  assert.not.ok(s.content.has(fresh.digest));
  assert.not.ok(await s.snapshotter.stat('sha256:old').then(() => true, () => false));
});

test('the lease of a process that died holds nothing and is removed', () => {
  const dir = path.join(root, 'leases');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${deadPid()}-1-x`);
  fs.writeFileSync(file, `${Date.now()}\nsha256:abc\n`);
  const live = liveLeases(root);
  assert.is(live.holds.has('sha256:abc'), false);
  assert.is(live.since, undefined);
  assert.not.ok(fs.existsSync(file));
});

test.run();
