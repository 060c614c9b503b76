import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { MetaStore } from './metadata.js';
import { dirsEach } from '../testutil/index.js';

const dirs = dirsEach(['dir'], 'tsb-meta');

const rec = (id: number) => ({ id, kind: 'committed' as const, created: '2026-01-01T00:00:00.000Z', labels: { n: String(id) } });

test('reads see every other writer\'s change, also one of the same size', () => {
  const { dir } = dirs;
  const a = new MetaStore(dir);
  const b = new MetaStore(dir);
  assert.equal(Object.keys(b.read().snapshots), []);
  a.update((db) => void (db.snapshots.x = rec(1)));
  assert.equal(b.read().snapshots.x?.labels.n, '1');
  // Same length, same second: only the file's identity tells the two versions apart.
  a.update((db) => void (db.snapshots.x = rec(2)));
  assert.equal(b.read().snapshots.x?.labels.n, '2');
  // A writer that is not a MetaStore (doctor --repair, an older tsbuild) replacing the file.
  const file = path.join(dir, 'metadata.json');
  const text = fs.readFileSync(file, 'utf8').replace('"n":"2"', '"n":"3"');
  fs.writeFileSync(`${file}.new`, text);
  fs.renameSync(`${file}.new`, file);
  assert.equal(b.read().snapshots.x?.labels.n, '3');
  assert.equal(a.read().snapshots.x?.labels.n, '3');
  fs.rmSync(file);
  assert.equal(Object.keys(a.read().snapshots), []);
});

test('an unchanged file is parsed once, and what read returns cannot be changed by a caller', () => {
  const { dir } = dirs;
  const m = new MetaStore(dir);
  m.update((db) => void (db.snapshots.x = rec(1)));
  const first = m.read();
  assert.ok(first === m.read(), 'the same parse serves an unchanged file');
  assert.throws(() => ((first.snapshots as Record<string, unknown>).y = rec(2)));
  // (Records are read-only by type: ReadonlyDB. Freezing each at run time cost a build 7-10 ms.)
  // An update works on a copy, and the copy it leaves is the new one: a reader's table never changes.
  m.update((db) => void (db.snapshots.y = rec(2)));
  assert.equal(Object.keys(m.read().snapshots).sort(), ['x', 'y']);
  assert.equal(Object.keys(first.snapshots), ['x']);
  assert.ok(first.snapshots.x === m.read().snapshots.x, 'an unchanged record is shared, not copied');
  assert.equal(MetaStore.info('x', m.read().snapshots.x!).labels, { n: '1' });
  MetaStore.info('x', m.read().snapshots.x!).labels.extra = 'callers may change their own copy';
});

test('an update that throws changes nothing, and an update after another writer\'s starts from its file', () => {
  const { dir } = dirs;
  const a = new MetaStore(dir);
  const b = new MetaStore(dir);
  a.update((db) => void (db.snapshots.x = rec(1)));
  const before = fs.readFileSync(path.join(dir, 'metadata.json'), 'utf8');
  assert.throws(() => a.update((db) => {
    db.nextId = 99;
    db.snapshots.half = rec(5);
    throw new Error('refused half-way');
  }), /refused half-way/);
  assert.is(fs.readFileSync(path.join(dir, 'metadata.json'), 'utf8'), before);
  assert.equal(Object.keys(a.read().snapshots), ['x']);
  assert.is(a.read().nextId, 1);
  // b writes after a's last parse: a's next update must build on b's table, not on its own parse.
  b.update((db) => void (db.snapshots.y = rec(2)));
  a.update((db) => void (db.snapshots.z = rec(3)));
  assert.equal(Object.keys(b.read().snapshots).sort(), ['x', 'y', 'z']);
});

test('a damaged file is a STORE_CORRUPT error, not a stale answer', () => {
  const { dir } = dirs;
  const m = new MetaStore(dir);
  m.update((db) => void (db.snapshots.x = rec(1)));
  m.read();
  fs.writeFileSync(path.join(dir, 'metadata.json.new'), '{"nextId": 2, "snaps');
  fs.renameSync(path.join(dir, 'metadata.json.new'), path.join(dir, 'metadata.json'));
  try {
    m.read();
    assert.unreachable('read a damaged file');
  } catch (e) {
    assert.is((e as { code?: string }).code, 'STORE_CORRUPT');
  }
});

test.run();
