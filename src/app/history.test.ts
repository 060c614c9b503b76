/** The build history keeps the newest 200 records, trimmed back once 20 more have gathered. */
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { tmpdir } from '../testutil/index.js';
import type { Store } from '../store/index.js';
import { BuildRecorder, listBuilds, pruneBuilds } from './history.js';

/** How many files under `dir` `fn` reads. */
function readsUnder(dir: string, fn: () => void): number {
  const read = fs.readFileSync;
  let reads = 0;
  fs.readFileSync = ((...a: Parameters<typeof read>) => {
    if (String(a[0]).startsWith(dir)) reads++;
    return read(...a);
  }) as typeof read;
  try {
    fn();
  } finally {
    fs.readFileSync = read;
  }
  return reads;
}

test('records past 220 are trimmed to the newest 200; up to 220 nothing is read or removed', () => {
  const root = tmpdir('tsb-hist-');
  try {
    const store = { root } as Store;
    const dir = path.join(root, 'history');
    fs.mkdirSync(dir, { recursive: true });
    const old = (i: number) => ({ id: `old${String(i).padStart(3, '0')}`, started: new Date(Date.UTC(2020, 0, 1, 0, 0, i)).toISOString(), durationMs: 1, status: 'completed', cacheHits: 0, cacheable: 0, steps: [] });
    for (let i = 0; i < 219; i++) fs.writeFileSync(path.join(dir, `old${String(i).padStart(3, '0')}.json`), JSON.stringify(old(i)));
    assert.is(new BuildRecorder().save(store, { status: 'completed' } as Parameters<BuildRecorder['save']>[1]), undefined);
    assert.is(fs.readdirSync(dir).filter((f) => f.endsWith('.json')).length, 220, 'within the slack: kept');
    // The trim reads each record once: it once read them all again for every record it removed.
    const reads = readsUnder(dir, () => new BuildRecorder().save(store, { status: 'completed' } as Parameters<BuildRecorder['save']>[1]));
    assert.is(reads, 221, 'every record read once');
    const left = listBuilds(store);
    assert.is(left.length, 200);
    assert.not.ok(left.some((r) => r.id === 'old000' || r.id === 'old020'), 'the oldest went');
    assert.ok(left.some((r) => r.id === 'old218'));
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('builds prune keeps the newest N and reads each record once', () => {
  const root = tmpdir('tsb-hist-');
  try {
    const store = { root } as Store;
    const dir = path.join(root, 'history');
    fs.mkdirSync(path.join(dir, 'b005'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'b005', 'step.log'), 'output\n');
    for (let i = 0; i < 10; i++) {
      const id = `b${String(i).padStart(3, '0')}`;
      fs.writeFileSync(path.join(dir, `${id}.json`), JSON.stringify({ id, started: new Date(Date.UTC(2020, 0, 1, 0, 0, i)).toISOString(), durationMs: 1, status: 'completed', cacheHits: 0, cacheable: 0, steps: [] }));
    }
    let removed: string[] = [];
    assert.is(readsUnder(dir, () => void (removed = pruneBuilds(store, 3))), 10);
    assert.equal(removed.sort(), ['b000', 'b001', 'b002', 'b003', 'b004', 'b005', 'b006']);
    assert.equal(listBuilds(store).map((r) => r.id), ['b009', 'b008', 'b007']);
    assert.not.ok(fs.existsSync(path.join(dir, 'b005')), "a removed build's logs go with it");
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test.run();
