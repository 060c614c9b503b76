/** The TOPDIR mark: set where the filesystem has it, refused quietly elsewhere; and which ext4 lacks a journal. */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { makeExt4, tmpdir } from '../testutil/index.js';
import { ext4WithoutJournal, spreadSubdirectories } from './placement.js';

/** chattr's letters for a directory, as lsattr shows them (T: FS_TOPDIR_FL), or undefined without lsattr. */
const flags = (dir: string): string | undefined => {
  const r = spawnSync('lsattr', ['-d', dir], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.split(' ')[0] : undefined;
};
const root = process.getuid?.() === 0;

test('on ext4 the mark is set (again: no change), an ext4 without a journal is told from one with; not through a symlink', () => {
  if (!root) return console.log('  skipped: not root (loop mounts)');
  for (const journal of [true, false]) {
    const e = makeExt4({ journal });
    if ('unavailable' in e) return console.log(`  skipped: ${e.unavailable}`);
    try {
      const sub = path.join(e.dir, 'snapshots');
      fs.mkdirSync(sub);
      assert.is(ext4WithoutJournal(sub), !journal, `journal: ${journal}`);
      assert.equal(spreadSubdirectories(sub), { on: true });
      const f = flags(sub);
      if (f !== undefined) assert.ok(f.includes('T'), `lsattr shows the mark: ${f}`);
      assert.equal(spreadSubdirectories(sub), { on: true });
      // O_NOFOLLOW with O_DIRECTORY: Linux answers ENOTDIR for a symlink.
      fs.symlinkSync(sub, path.join(e.dir, 'link'));
      assert.equal(spreadSubdirectories(path.join(e.dir, 'link')), { on: false, reason: 'ENOTDIR' });
      assert.equal(spreadSubdirectories(path.join(e.dir, 'missing')), { on: false, reason: 'ENOENT' });
    } finally {
      e.dispose();
    }
  }
});

test('a filesystem without inode flags (tmpfs) refuses with its errno, and is no journal-less ext4', () => {
  if (!fs.existsSync('/dev/shm') || fs.statfsSync('/dev/shm').type === 0xef53) return;
  const dir = fs.mkdtempSync('/dev/shm/tsb-placement-');
  try {
    assert.is(ext4WithoutJournal(dir), false);
    const r = spreadSubdirectories(dir);
    assert.is(r.on, false);
    assert.match((r as { reason: string }).reason, /^(ENOTTY|EOPNOTSUPP|ENOTSUP)$/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const gone = tmpdir('tsb-placement-');
  fs.rmSync(gone, { recursive: true });
  assert.is(ext4WithoutJournal(gone), false, 'a path that is not there');
});

test.run();
