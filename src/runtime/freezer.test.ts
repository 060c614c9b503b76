import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cgroupPids, isFrozen, setFrozen } from './freezer.js';

function tree(files: Record<string, string>): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'freezer-'));
  for (const [f, v] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(d, f)), { recursive: true });
    fs.writeFileSync(path.join(d, f), v);
  }
  return d;
}

test('v2: cgroup.freeze is written, and frozen is read from cgroup.events', async () => {
  const d = tree({ 'cg/cgroup.procs': '12\n13\n', 'cg/cgroup.freeze': '0', 'cg/cgroup.events': 'populated 1\nfrozen 1\n' });
  try {
    const procs = [path.join(d, 'cg/cgroup.procs')];
    await setFrozen(procs, true);
    assert.is(fs.readFileSync(path.join(d, 'cg/cgroup.freeze'), 'utf8'), '1');
    assert.ok(isFrozen(procs));
    assert.equal(cgroupPids(procs), [12, 13]);
    fs.writeFileSync(path.join(d, 'cg/cgroup.events'), 'populated 1\nfrozen 0\n');
    await setFrozen(procs, false);
    assert.is(fs.readFileSync(path.join(d, 'cg/cgroup.freeze'), 'utf8'), '0');
  } finally {
    fs.rmSync(d, { recursive: true, force: true });
  }
});

test('v2: a cgroup that never reports frozen is an error, not a silent success', async () => {
  const d = tree({ 'cg/cgroup.procs': '', 'cg/cgroup.freeze': '0', 'cg/cgroup.events': 'frozen 0\n' });
  try {
    await setFrozen([path.join(d, 'cg/cgroup.procs')], true, 50).then(() => assert.unreachable('froze'), (e: Error) => assert.match(e.message, /did not freeze/));
  } finally {
    fs.rmSync(d, { recursive: true, force: true });
  }
});

test('v1: the freezer hierarchy is found among the procs files; no freezer is a clear error', async () => {
  const d = tree({ 'memory/c/cgroup.procs': '5\n', 'freezer/c/cgroup.procs': '5\n', 'freezer/c/freezer.state': 'THAWED' });
  try {
    const procs = [path.join(d, 'memory/c/cgroup.procs'), path.join(d, 'freezer/c/cgroup.procs')];
    await setFrozen(procs, true);
    assert.is(fs.readFileSync(path.join(d, 'freezer/c/freezer.state'), 'utf8'), 'FROZEN');
    await setFrozen([path.join(d, 'memory/c/cgroup.procs')], true).then(() => assert.unreachable(), (e: Error) => assert.match(e.message, /no freezer/));
  } finally {
    fs.rmSync(d, { recursive: true, force: true });
  }
});

test.run();
