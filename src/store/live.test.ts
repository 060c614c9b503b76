/**
 * The recovery sweep runs when a process that worked in the store is gone (or an hour after the last
 * one), and is skipped otherwise: its leftovers found through its file in tmp/live, that file removed
 * by a normal exit and left by a kill.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { bootId, processStartTime } from '../fsutil/index.js';
import { testUnless, tmpdir } from '../testutil/index.js';
import { registerLive, sweepDue, sweptAfter } from './live.js';
import { openStore } from './store.js';

/** The pid of a process that has exited (and was reaped). */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return parseInt(r.stdout, 10);
}

const liveUrl = JSON.stringify(new URL('./live.js', import.meta.url).href);
const liveFiles = (root: string) => fs.readdirSync(path.join(root, 'tmp', 'live')).filter((n) => n !== 'swept').sort();

test('a store never swept is due; after a sweep, with only live processes, it is not; an hour later it is again', () => {
  const root = tmpdir('tsb-live-');
  try {
    assert.equal(sweepDue(root), { due: true, gone: [] });
    registerLive(root);
    assert.equal(liveFiles(root), [`${process.pid}-${processStartTime(process.pid)}`]);
    assert.is(sweepDue(root).due, true, 'no sweep recorded yet');
    sweptAfter(root, []);
    assert.equal(sweepDue(root), { due: false, gone: [] });
    const hourAgo = new Date(Date.now() - 3601_000);
    fs.utimesSync(path.join(root, 'tmp', 'live', 'swept'), hourAgo, hourAgo);
    assert.equal(sweepDue(root), { due: true, gone: [] });
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('the first command after the machine restarted sweeps: the last sweep recorded another boot', () => {
  const root = tmpdir('tsb-live-');
  try {
    sweptAfter(root, []);
    assert.is(fs.readFileSync(path.join(root, 'tmp', 'live', 'swept'), 'utf8'), bootId());
    assert.is(sweepDue(root).due, false);
    fs.writeFileSync(path.join(root, 'tmp', 'live', 'swept'), 'an-earlier-boot');
    assert.is(sweepDue(root).due, true);
    fs.writeFileSync(path.join(root, 'tmp', 'live', 'swept'), '', { flag: 'w' });
    assert.is(sweepDue(root).due, true, 'an older tsbuild recorded no boot');
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('a dead process, or a pid now another process\'s, makes a sweep due; the sweep removes their files', () => {
  const root = tmpdir('tsb-live-');
  try {
    sweptAfter(root, []);
    const dead = `${deadPid()}-12345`;
    const reused = `${process.pid}-${(processStartTime(process.pid) ?? 0) + 1}`;
    for (const n of [dead, reused]) fs.writeFileSync(path.join(root, 'tmp', 'live', n), '');
    const s = sweepDue(root);
    assert.is(s.due, true);
    assert.equal(s.gone.sort(), [dead, reused].sort());
    sweptAfter(root, s.gone);
    assert.equal(liveFiles(root), []);
    assert.equal(sweepDue(root), { due: false, gone: [] });
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('a process that exits removes its file; one killed leaves it, and the store is due a sweep', async () => {
  const root = tmpdir('tsb-live-');
  try {
    sweptAfter(root, []);
    const script = `import { registerLive } from ${liveUrl}; registerLive(${JSON.stringify(root)});`;
    const ok = spawnSync(process.execPath, ['--input-type=module', '-e', `${script} process.exitCode = 3;`]);
    assert.is(ok.status, 3);
    assert.equal(liveFiles(root), []);
    const killed = spawn(process.execPath, ['--input-type=module', '-e', `${script} console.log('in'); setInterval(() => {}, 1000);`], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise((r) => killed.stdout.once('data', r));
    assert.is(liveFiles(root).length, 1);
    killed.kill('SIGKILL');
    await new Promise((r) => killed.once('exit', r));
    assert.equal(sweepDue(root), { due: true, gone: liveFiles(root) });
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

testUnless(process.getuid?.() !== 0 ? 'openStore needs root' : undefined, 'openStore sweeps only when due: a leftover of an unknown dead pid stays until its process\'s file says it died', async () => {
  const root = tmpdir('tsb-live-');
  try {
    await (await openStore(root, 'native')).snapshotter.close();
    const pid = deadPid();
    const leftover = path.join(root, 'tmp', 'mnt', `${pid}-a1b2c3d4`);
    fs.mkdirSync(leftover, { recursive: true });
    await (await openStore(root, 'native')).snapshotter.close();
    assert.ok(fs.existsSync(leftover), 'no process known gone: no sweep');
    fs.writeFileSync(path.join(root, 'tmp', 'live', `${pid}-1`), '');
    await (await openStore(root, 'native')).snapshotter.close();
    assert.not.ok(fs.existsSync(leftover), 'swept once its process was known gone');
    assert.equal(liveFiles(root), [`${process.pid}-${processStartTime(process.pid)}`]);
    fs.mkdirSync(leftover);
    await (await openStore(root, 'native', { recover: 'always' })).snapshotter.close();
    assert.not.ok(fs.existsSync(leftover), "recover: 'always' sweeps regardless");
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test.run();
