import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensureDir, processAlive, processStartTime, sameProcessAlive } from './index.js';

test('ensureDir: makes missing parents; fails at once, naming the path, where Node would loop (/proc)', () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'tsb-ensure-'));
  try {
    ensureDir(path.join(d, 'a/b/c'));
    assert.ok(fs.statSync(path.join(d, 'a/b/c')).isDirectory());
    ensureDir(path.join(d, 'a/b/c'));
    // Node's recursive mkdir loops for ever here; a hang fails this file by the runner's timeout.
    assert.throws(() => ensureDir('/proc/tsb-no-such-dir/x'), (e: Error) => /cannot create \/proc\/tsb-no-such-dir/.test(e.message));
    fs.writeFileSync(path.join(d, 'file'), '');
    assert.throws(() => ensureDir(path.join(d, 'file/sub')), /not a directory/);
  } finally {
    fs.rmSync(d, { recursive: true, force: true });
  }
});

test('processes: this one lives with a start time; a recycled pid (other start time) does not', () => {
  const start = processStartTime(process.pid);
  assert.ok(start !== undefined && start > 0);
  assert.ok(processAlive(process.pid));
  assert.ok(sameProcessAlive(process.pid, start));
  assert.not.ok(sameProcessAlive(process.pid, start! + 1));
  assert.not.ok(processAlive(2 ** 22 + 12345));
});

test.run();
