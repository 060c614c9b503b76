import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { getEventListeners } from 'node:events';
import { acquireLock, ensureDir, lockHeld, processAlive, processStartTime, sameProcessAlive, withLock } from './index.js';

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

test('locks: always name their owner; a dead owner\'s lock and an old ownerless one are taken over; a fresh ownerless one is waited for', () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'tsb-lock-'));
  try {
    const lock = path.join(d, 'x.lock');
    withLock(lock, () => {
      assert.match(fs.readlinkSync(lock), new RegExp(`^${process.pid}-`), 'a link naming its owner');
      assert.ok(lockHeld(lock), 'held, though the link resolves to nothing');
    });
    assert.not.ok(lockHeld(lock), 'released');
    fs.symlinkSync(`${2 ** 22 + 999}-x`, lock);
    assert.is(withLock(lock, () => 'dead owner taken over'), 'dead owner taken over');
    fs.symlinkSync('junk', lock);
    assert.throws(() => withLock(lock, () => 'no', 300), /timed out waiting for lock .* held by pid \?.*rm -r/);
    const old = new Date(Date.now() - 60_000);
    fs.lutimesSync(lock, old, old);
    assert.is(withLock(lock, () => 'old ownerless taken over'), 'old ownerless taken over');
    // Lock directories an older tsbuild left: with a dead owner, empty (killed between its mkdir
    // and its owner file), with other content and no owner (waited for until old).
    fs.mkdirSync(lock);
    fs.writeFileSync(path.join(lock, 'owner'), String(2 ** 22 + 999));
    assert.is(withLock(lock, () => 'old-style dead owner taken over'), 'old-style dead owner taken over');
    fs.mkdirSync(lock);
    fs.writeFileSync(path.join(lock, 'junk'), '');
    assert.throws(() => withLock(lock, () => 'no', 300), /timed out waiting for lock .* held by pid \?/);
    fs.utimesSync(lock, old, old);
    assert.is(withLock(lock, () => 'old-style ownerless taken over'), 'old-style ownerless taken over');
    fs.symlinkSync(`${process.pid}-other`, lock);
    assert.throws(() => withLock(lock, () => 'no', 100), /held by pid \d+/, 'a live owner\'s lock (this process\'s, taken elsewhere) is waited for');
    fs.unlinkSync(lock);
    assert.equal(fs.readdirSync(d), [], 'nothing is left beside the lock');
  } finally {
    fs.rmSync(d, { recursive: true, force: true });
  }
});

test('async locks: waiters of one process take turns in order, one at a time; an abort leaves its turn to the next', async () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'tsb-lock-'));
  const lock = path.join(d, 'gc.lock');
  try {
    const releaseA = (await acquireLock(lock, { wait: true }))!;
    assert.is(await acquireLock(lock, { wait: false }), undefined, 'held in this process: no without waiting');
    const order: string[] = [];
    let inside = 0;
    const turn = async (name: string, signal?: AbortSignal) => {
      const release = (await acquireLock(lock, { wait: true, signal }))!;
      inside++;
      order.push(`${name}:${inside}`);
      await new Promise((r) => setTimeout(r, 5));
      inside--;
      release();
    };
    const ac = new AbortController();
    const b = turn('b');
    const c = turn('c', ac.signal);
    const e = turn('e');
    ac.abort(new Error('stopped'));
    const cFailed = c.then(() => 'got it', (err: Error) => err.message);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(order, [], 'nobody goes while the first holds it');
    releaseA();
    await Promise.all([b, e]);
    assert.is(await cFailed, 'stopped');
    assert.equal(order, ['b:1', 'e:1'], 'in order, alone, and the aborted one skipped');
    assert.is(lockHeld(lock), false);
    const signal = new AbortController().signal;
    for (let i = 0; i < 20; i++) await Promise.all([turn('x', signal), turn('y', signal)]);
    assert.is(getEventListeners(signal, 'abort').length, 0, 'no listener left on the build\'s signal');
  } finally {
    fs.rmSync(d, { recursive: true, force: true });
  }
});

test.run();
