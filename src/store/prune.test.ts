/** Prune policy: what `--filter until=`, `--keep-storage` and `--all` drop; sizes and durations; config.json's gc. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { CacheRecord } from '../cache/index.js';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { tmpdir } from '../testutil/index.js';
import { gcConfig, parseSize, parseUntil, selectPrune, storeShort } from './prune.js';

const rec = (key: string, size: number, lastUsed: string): CacheRecord => ({ key, layer: null, description: key, created: lastUsed, lastUsed, size });
const all = [rec('sha256:aa', 10, '2026-01-01T00:00:00Z'), rec('sha256:bb', 20, '2026-01-02T00:00:00Z'), rec('sha256:cc', 30, '2026-01-03T00:00:00Z')];
const now = Date.parse('2026-01-04T00:00:00Z');

test('until= drops records unused for longer; keep-storage drops the least recently used first', () => {
  assert.equal(selectPrune(all, { untilMs: 36 * 3600e3, now }).map((r) => r.key).sort(), ['sha256:aa', 'sha256:bb']);
  assert.equal(selectPrune(all, { keepStorage: 35, now }).map((r) => r.key).sort(), ['sha256:aa', 'sha256:bb']);
  assert.equal(selectPrune(all, { keepStorage: 100, now }), []);
  assert.equal(selectPrune(all, { untilMs: 60 * 3600e3, keepStorage: 35, now }).map((r) => r.key).sort(), ['sha256:aa', 'sha256:bb'], 'both filters together');
});

test('--all, and no filter at all, drop every record', () => {
  assert.is(selectPrune(all, { all: true }).length, 3);
  assert.is(selectPrune(all, {}).length, 3);
});

test('sizes and durations as users write them; anything else is refused with the accepted form', () => {
  assert.is(parseSize('10GB'), 10e9);
  assert.is(parseSize('512MiB'), 512 * 1024 ** 2);
  assert.is(parseSize('1.5k'), 1500);
  assert.is(parseUntil('24h'), 24 * 3600e3);
  assert.is(parseUntil('30m'), 30 * 60e3);
  assert.throws(() => parseSize('12qb'), /invalid size "12qb": use a number with an optional unit/);
  assert.throws(() => parseUntil('soon'), /invalid duration "soon": use e.g. 30m, 24h or 7d/);
});

test("config.json's gc: keepRetired 1GB by default, sizes as text or bytes, an empty keepStorage unset, a bad value named", () => {
  const root = tmpdir('tsb-gc-config-');
  try {
    const config = (gc: unknown) => fs.writeFileSync(path.join(root, 'config.json'), JSON.stringify({ gc }));
    assert.equal(gcConfig(root), { keepRetired: 1e9, keepStorage: undefined });
    config({ keepRetired: 0, keepStorage: '2GiB' });
    assert.equal(gcConfig(root), { keepRetired: 0, keepStorage: 2 * 1024 ** 3 });
    config({ keepStorage: '' });
    assert.is(gcConfig(root).keepStorage, undefined);
    config({ keepRetired: 'lots' });
    assert.throws(() => gcConfig(root), /invalid size "lots".*gc\.keepRetired in .*config\.json/);
    config({ keepStorage: -5 });
    assert.throws(() => gcConfig(root), /invalid size -5.*gc\.keepStorage/);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('a filesystem with less than a tenth of its inodes free is short (a tmpfs of 100 inodes)', () => {
  const mnt = tmpdir('tsb-short-');
  assert.is(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=16m,nr_inodes=100', 'tmpfs', mnt]).status, 0);
  try {
    assert.not.ok(storeShort(mnt));
    for (let i = 0; fs.statfsSync(mnt).ffree >= 10; i++) fs.writeFileSync(path.join(mnt, `f${i}`), '');
    assert.ok(storeShort(mnt), 'fewer than 10 of 100 inodes free');
    for (const f of fs.readdirSync(mnt).slice(0, 20)) fs.rmSync(path.join(mnt, f));
    assert.not.ok(storeShort(mnt));
    assert.not.ok(storeShort(path.join(mnt, 'missing')), 'a store that is not there yet is not short');
  } finally {
    spawnSync('umount', [mnt]);
    fs.rmSync(mnt, { recursive: true, force: true });
  }
});

test.run();
