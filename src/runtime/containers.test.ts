import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { processStartTime } from '../fsutil/index.js';
import { Containers, type ContainerState } from './containers.js';

const DEAD = 2 ** 22 + 4321; // above pid_max: never a live process

function store(): { dir: string; c: Containers } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsb-ctrs-'));
  return { dir, c: new Containers(dir) };
}
const rec = (id: string, extra: Partial<ContainerState> = {}): ContainerState => ({
  id, name: `n-${id.slice(0, 4)}`, image: 'i', imageId: 'sha256:x', command: ['true'], created: new Date().toISOString(), status: 'created', snapshot: `ctr-1-${id}`, keep: true, ...extra,
});

test('a running record whose owner is dead reads as exited 137 with the reason; a live owner keeps it running', () => {
  const { dir, c } = store();
  try {
    c.create(rec('a'.repeat(64), { status: 'running', pid: DEAD, detached: true }));
    c.create(rec('b'.repeat(64), { status: 'running', pid: process.pid, pidStart: processStartTime(process.pid) }));
    c.create(rec('c'.repeat(64), { status: 'running', pid: process.pid, pidStart: 1 }));
    const a = c.get('a'.repeat(64))!;
    assert.is(a.status, 'exited');
    assert.is(a.exitCode, 137);
    assert.match(a.error!, `its monitor (pid ${DEAD}) died`);
    assert.is(c.get('b'.repeat(64))!.status, 'running');
    assert.is(c.get('c'.repeat(64))!.status, 'exited', 'the same pid with another start time is another process');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a damaged record is a dead placeholder that names the repair; an update never brings a removed record back', () => {
  const { dir, c } = store();
  try {
    const id = 'd'.repeat(64);
    c.create(rec(id));
    fs.writeFileSync(path.join(dir, 'containers', id, 'state.json'), '{"id":');
    const d = c.find(id.slice(0, 12));
    assert.is(d.status, 'dead');
    assert.match(d.error!, /record is damaged/);
    assert.is(c.update(id, { status: 'running' }), undefined, 'a damaged record is not updated');
    c.delete(id);
    assert.is(c.update(id, { status: 'running' }), undefined);
    assert.not.ok(fs.existsSync(path.join(dir, 'containers', id)));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('names are unique; a record half-made by a dead process is swept, never listed', () => {
  const { dir, c } = store();
  try {
    c.create(rec('e'.repeat(64), { name: 'web' }));
    assert.throws(() => c.create(rec('f'.repeat(64), { name: 'web' })), /name "web" is already in use by container e{64}/);
    const half = path.join(dir, 'containers', `.new-${DEAD}-${'f'.repeat(64)}`);
    fs.mkdirSync(half);
    assert.equal(c.list().map((x) => x.name), ['web']);
    assert.not.ok(fs.existsSync(half));
    assert.throws(() => c.find('zzz'), /No such container: zzz/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('list is newest first; a name picked by create()\'s completion sees every other record, under the same lock', () => {
  const { dir, c } = store();
  try {
    c.create(rec('1'.repeat(64), { name: 'mid', created: '2026-01-02T00:00:00.000Z' }));
    c.create(rec('2'.repeat(64), { name: 'new', created: '2026-01-03T00:00:00.000Z' }));
    c.create(rec('3'.repeat(64), { name: 'old', created: '2026-01-01T00:00:00.000Z' }));
    assert.equal(c.list().map((x) => x.name), ['new', 'mid', 'old']);
    const s = rec('4'.repeat(64), { name: '' });
    let seen: string[] = [];
    c.create(s, (others) => {
      seen = others.map((x) => x.name).sort();
      s.name = ['mid', 'new', 'old', 'free'].find((n) => !seen.includes(n))!;
    });
    assert.equal(seen, ['mid', 'new', 'old']);
    assert.is(c.get('4'.repeat(64))!.name, 'free');
    // A completion that picks a taken name is refused like any other taken name.
    const t = rec('5'.repeat(64), { name: '' });
    assert.throws(() => c.create(t, () => (t.name = 'old')), /name "old" is already in use/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
