import * as assert from 'uvu/assert';
import { suite } from 'uvu';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { snapshotterSuite } from './testsuite.js';
import { OverlaySnapshotter } from './overlay.js';
import { SnapshotError } from './errors.js';
import { makeExt4, sandboxUnavailable, tmpdir } from '../testutil/index.js';

snapshotterSuite({
  name: 'overlayfs',
  unavailable: sandboxUnavailable(),
  create: (root) => new OverlaySnapshotter(path.join(root, 'snapshots', 'overlayfs')),
  tmpRoot: () => tmpdir('tsb-snap-'),
  storeDir: (root) => path.join(root, 'snapshots', 'overlayfs'),
});

// The snapshotter on a full filesystem: the record's rewrite cannot fit until the snapshot's own
// files are gone (a RUN that filled the disk), so remove() empties it and tries again.
const full = suite('overlayfs: remove on a full filesystem');
full('an active snapshot whose files filled the disk is removed, record and directory', async () => {
  const why = sandboxUnavailable();
  if (why) return console.log(`  skipped: ${why}`);
  const mnt = tmpdir('tsb-snapfull-');
  if (spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mnt]).status !== 0) {
    fs.rmSync(mnt, { recursive: true, force: true });
    return console.log('  skipped: cannot mount a tmpfs here');
  }
  try {
    const dir = path.join(mnt, 'snapshots', 'overlayfs');
    const sn = new OverlaySnapshotter(dir);
    await sn.prepare('keep');
    await sn.prepare('filled');
    const upper = (await sn.upperDir('filled'))!;
    const chunk = Buffer.alloc(64 << 10, 1);
    const fd = fs.openSync(path.join(upper, 'big'), 'w');
    try {
      for (;;) fs.writeSync(fd, chunk);
    } catch (e) {
      assert.is((e as NodeJS.ErrnoException).code, 'ENOSPC');
    } finally {
      fs.closeSync(fd);
    }
    assert.throws(() => fs.writeFileSync(path.join(mnt, 'probe'), 'x'.repeat(8192)), /ENOSPC/, 'the filesystem is full');
    await sn.remove('filled');
    const gone = await sn.stat('filled').then(() => undefined, (x: unknown) => x);
    assert.is((gone as SnapshotError | undefined)?.code, 'SNAPSHOT_NOT_FOUND', 'its record is gone');
    assert.not.ok(fs.existsSync(path.dirname(upper)), 'its directory is gone');
    assert.is((await sn.stat('keep')).kind, 'active', 'the other record is kept');
    await sn.remove('keep');
  } finally {
    spawnSync('umount', [mnt]);
    fs.rmSync(mnt, { recursive: true, force: true });
  }
});
full.run();

// A new store on an ext4 without a journal marks its snapshots' directory for ext4 to spread them
// (fsutil/placement.ts); on one with a journal it does not (trees in unused groups cost more there).
const placed = suite('overlayfs: where snapshot trees go');
placed('a new store marks its snapshots directory TOPDIR on an ext4 without a journal, not on one with', () => {
  if (process.getuid?.() !== 0) return console.log('  skipped: not root (loop mounts)');
  for (const journal of [false, true]) {
    const e = makeExt4({ journal });
    if ('unavailable' in e) return console.log(`  skipped: ${e.unavailable}`);
    try {
      const dir = path.join(e.dir, 'store', 'snapshots', 'overlayfs', 'snapshots');
      new OverlaySnapshotter(path.join(e.dir, 'store', 'snapshots', 'overlayfs'));
      const lsattr = spawnSync('lsattr', ['-d', dir], { encoding: 'utf8' });
      if (lsattr.status !== 0) return console.log('  skipped: no lsattr');
      assert.is(lsattr.stdout.split(' ')[0]!.includes('T'), !journal, `journal: ${journal}: ${lsattr.stdout}`);
    } finally {
      e.dispose();
    }
  }
});
placed.run();
