/**
 * Crash recovery knows every kind of temporary snapshot by its name: each kind left by a dead process
 * is removed, a live owner's and a kept container's are not, and committed layers are never touched.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { NativeSnapshotter } from '../snapshotter/index.js';
import { tmpdir } from '../testutil/index.js';
import { TEMP_KINDS, tempKey, tempKeyOwner } from './keys.js';
import { recoverStore } from './recovery.js';

/** The pid of a process that has exited (and was reaped), so it owns nothing any more. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return parseInt(r.stdout, 10);
}

async function keys(sn: NativeSnapshotter): Promise<string[]> {
  const out: string[] = [];
  await sn.walk((i) => void out.push(i.key));
  return out.sort();
}

test("a download's lock left by a dead process goes (and a half-made or half-released one); a live owner's stays", async () => {
  const root = tmpdir('tsb-recover-');
  const sn = new NativeSnapshotter(path.join(root, 'snapshots', 'native'));
  try {
    const tmp = path.join(root, 'tmp');
    const lock = (name: string, owner: number) => {
      fs.mkdirSync(path.join(tmp, name), { recursive: true });
      fs.writeFileSync(path.join(tmp, name, 'owner'), String(owner));
    };
    const digest = 'a'.repeat(64);
    lock(`ingest-${digest}.lock`, deadPid());
    lock(`ingest-${'b'.repeat(64)}.lock`, process.pid);
    lock(`ingest-${'c'.repeat(64)}.lock.old-${deadPid()}-x1`, 1);
    lock(`ingest-${'c'.repeat(64)}.lock.tmp-${deadPid()}-x2`, 1);
    fs.writeFileSync(path.join(tmp, `ingest-${digest}`), 'partial');
    await recoverStore(root, sn);
    assert.equal(fs.readdirSync(tmp).sort(), [`ingest-${digest}`, `ingest-${'b'.repeat(64)}.lock`], 'the partial stays to resume from; the live lock stays');
  } finally {
    await sn.close();
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('a mount point a dead process made but never mounted goes; a live owner\'s stays', async () => {
  const root = tmpdir('tsb-recover-');
  const sn = new NativeSnapshotter(path.join(root, 'snapshots', 'native'));
  try {
    const mnt = path.join(root, 'tmp', 'mnt');
    const dead = `${deadPid()}-a1b2c3d4`, live = `${process.pid}-e5f6a7b8`;
    for (const d of [dead, live]) fs.mkdirSync(path.join(mnt, d), { recursive: true });
    await recoverStore(root, sn);
    assert.equal(fs.readdirSync(mnt), [live]);
  } finally {
    await sn.close();
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('tempKeyOwner reads every kind, and the names older versions used', () => {
  for (const kind of TEMP_KINDS) assert.is(tempKeyOwner(tempKey(kind, 'x', 4242)), 4242, kind);
  assert.is(tempKeyOwner('view-export-977-lz1'), 977, 'the -o type=local view name of earlier versions');
  assert.is(tempKeyOwner('sha256:' + 'a'.repeat(64)), undefined);
  assert.is(tempKeyOwner('view-1'), undefined);
});

for (const kind of TEMP_KINDS) {
  test(`recovery removes a dead process's ${kind} snapshot and keeps the rest`, async () => {
    const root = tmpdir('tsb-recover-');
    const sn = new NativeSnapshotter(path.join(root, 'snapshots', 'native'));
    try {
      await sn.prepare('base-active');
      await sn.commit('sha256:base', 'base-active');
      const make = (key: string, labels: Record<string, string> = {}) => (kind === 'view' ? sn.view(key, 'sha256:base', labels) : sn.prepare(key, 'sha256:base', labels));
      const dead = tempKey(kind, 'left-behind', deadPid());
      const live = tempKey(kind, 'in-use');
      await make(dead);
      await make(live);
      const kept = kind === 'ctr' ? tempKey('ctr', 'kept', deadPid()) : undefined;
      if (kept) {
        await make(kept, { 'tsbuild.container': 'c0ffee' });
        fs.mkdirSync(path.join(root, 'containers', 'c0ffee'), { recursive: true });
      }
      // Killed between preparing the layer and writing the record: nothing owns it.
      const orphan = kind === 'ctr' ? tempKey('ctr', 'orphan', deadPid()) : undefined;
      if (orphan) await make(orphan, { 'tsbuild.container': 'deadbeef' });
      await recoverStore(root, sn);
      if (orphan) assert.not.ok((await keys(sn)).includes(orphan), "a container layer without a record is an orphan and goes");
      const left = await keys(sn);
      assert.not.ok(left.includes(dead), `the dead owner's ${kind} snapshot is gone`);
      assert.ok(left.includes(live), 'a live owner keeps its snapshot');
      assert.ok(left.includes('sha256:base'), 'committed layers stay');
      if (kept) assert.ok(left.includes(kept), 'a kept container keeps its writable layer');
    } finally {
      await sn.close();
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
}

test.run();
