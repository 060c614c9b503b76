/** The TOPDIR mark a new store puts on its snapshots' directory: set where the filesystem has it, refused quietly elsewhere. */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { tmpdir } from '../testutil/index.js';
import { spreadSubdirectories } from './placement.js';

const EXT4_MAGIC = 0xef53;
/** chattr's letters for a directory, as lsattr shows them (T: FS_TOPDIR_FL), or undefined without lsattr. */
const flags = (dir: string): string | undefined => {
  const r = spawnSync('lsattr', ['-d', dir], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.split(' ')[0] : undefined;
};

test('on ext4 the mark is set (and setting it again changes nothing); elsewhere the refusal is reported, not thrown', () => {
  const dir = tmpdir('tsb-placement-');
  try {
    const sub = path.join(dir, 'snapshots');
    fs.mkdirSync(sub);
    const r = spreadSubdirectories(sub);
    if (fs.statfsSync(dir).type === EXT4_MAGIC) {
      assert.equal(r, { on: true });
      const f = flags(sub);
      if (f !== undefined) assert.ok(f.includes('T'), `lsattr shows the mark: ${f}`);
      assert.equal(spreadSubdirectories(sub), { on: true });
    } else {
      assert.is(r.on, false);
    }
    // Never through a symlink (O_NOFOLLOW with O_DIRECTORY: Linux answers ENOTDIR).
    fs.symlinkSync(sub, path.join(dir, 'link'));
    assert.equal(spreadSubdirectories(path.join(dir, 'link')), { on: false, reason: 'ENOTDIR' });
    assert.equal(spreadSubdirectories(path.join(dir, 'missing')), { on: false, reason: 'ENOENT' });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a filesystem without inode flags (tmpfs) refuses with its errno', () => {
  if (!fs.existsSync('/dev/shm') || fs.statfsSync('/dev/shm').type === EXT4_MAGIC) return;
  const dir = fs.mkdtempSync('/dev/shm/tsb-placement-');
  try {
    const r = spreadSubdirectories(dir);
    assert.is(r.on, false);
    assert.match((r as { reason: string }).reason, /^(ENOTTY|EOPNOTSUPP|ENOTSUP)$/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
