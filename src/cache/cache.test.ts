/** Cache keys, checksums, explanations and prune selection, without the kernel. */
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ChecksumMemo, ChecksumMemos, entryChecksum, digestOf } from './checksum.js';
import { explainMiss } from './explain.js';
import { CacheIndex } from './index-store.js';
import { tmpdir } from '../testutil/index.js';

test('checksums cover content and metadata but never mtime; the memo avoids re-reading', () => {
  const d = tmpdir();
  try {
    const f = path.join(d, 'f');
    fs.writeFileSync(f, 'hello');
    const memo = new ChecksumMemo(path.join(d, 'memo.json'));
    const a = entryChecksum(f, memo);
    assert.is(memo.stats.hashed, 1);
    assert.is(entryChecksum(f, memo), a);
    assert.is(memo.stats.memoHits, 1, 'unchanged stat: served from the memo');
    fs.utimesSync(f, new Date(1000), new Date(1000));
    assert.is(entryChecksum(f, memo), a, 'touching the mtime is not a change');
    assert.is(memo.stats.hashed, 2, 'but the file is read again to be sure');
    fs.chmodSync(f, 0o600);
    assert.is.not(entryChecksum(f, memo), a, 'mode is part of it');
    fs.writeFileSync(f, 'hellO');
    const b = entryChecksum(f, memo);
    assert.is.not(b, a);
    memo.save();
    const memo2 = new ChecksumMemo(path.join(d, 'memo.json'));
    assert.is(entryChecksum(f, memo2), b);
    assert.is(memo2.stats.memoHits, 1, 'the memo persists across builds');
    fs.symlinkSync('target', path.join(d, 'l'));
    assert.match(entryChecksum(path.join(d, 'l'), memo), / target$/);
  } finally {
    fs.rmSync(d, { recursive: true, force: true });
  }
});

test("a file's mtime from the walk is the whole milliseconds Node's lstat Date gives, odd times and all", () => {
  const d = tmpdir();
  try {
    const memo = new ChecksumMemo();
    const times = [1700000000.9995, 1700000000.0004999, 1700000000.4995, 0, 0.0005, -1.0005, -86400.9999999, 2 ** 33 + 0.123456789];
    times.forEach((t, i) => {
      const f = path.join(d, `f${i}`);
      fs.writeFileSync(f, String(i));
      fs.utimesSync(f, t, t);
      const seen = { ms: NaN };
      entryChecksum(f, memo, seen);
      assert.is(seen.ms, fs.lstatSync(f).mtime.getTime(), `${t}`);
    });
    const seen = { ms: NaN };
    entryChecksum(d, memo, seen);
    assert.ok(Number.isNaN(seen.ms), 'a directory gives none');
  } finally {
    fs.rmSync(d, { recursive: true, force: true });
  }
});

test('a damaged or truncated memo keeps what parsed and is rewritten whole', () => {
  const d = tmpdir();
  try {
    const file = path.join(d, 'checksums.memo');
    const names = ['a', 'b\nwith newline', 'c'];
    for (const n of names) fs.writeFileSync(path.join(d, n), n);
    const memo = new ChecksumMemo(file);
    const sums = names.map((n) => entryChecksum(path.join(d, n), memo));
    memo.save();
    const whole = fs.readFileSync(file);
    for (const cut of [whole.length - 1, whole.length - 70, 25, 3]) {
      fs.writeFileSync(file, whole.subarray(0, cut));
      const m = new ChecksumMemo(file);
      names.forEach((n, i) => assert.is(entryChecksum(path.join(d, n), m), sums[i], `cut at ${cut}: ${n}`));
      assert.ok(m.stats.hashed >= 1, `cut at ${cut}: what the damage took is read again`);
      m.save();
      assert.ok(fs.readFileSync(file).equals(whole), `cut at ${cut}: rewritten whole`);
    }
    fs.writeFileSync(file, '{"/x": {"k": "1", "d": "2"}}');
    const legacy = new ChecksumMemo(file);
    assert.is(entryChecksum(path.join(d, 'a'), legacy), sums[0]);
    assert.is(legacy.stats.hashed, 1, 'a file in another format is no memo');
  } finally {
    fs.rmSync(d, { recursive: true, force: true });
  }
});

test('a memo appends what a build changed, later records win, it is rewritten whole once mostly superseded, and a torn tail is dropped', () => {
  const d = tmpdir();
  try {
    const file = path.join(d, 'ctx.memo');
    const files = Array.from({ length: 50 }, (_, i) => path.join(d, `f${i}`));
    files.forEach((f, i) => fs.writeFileSync(f, `v0 ${i}`));
    const first = new ChecksumMemo(file);
    for (const f of files) entryChecksum(f, first);
    first.save();
    const whole = fs.statSync(file).size;
    // One file changed: its record is appended, the rest is not written again.
    fs.writeFileSync(files[3]!, 'v1 changed');
    const second = new ChecksumMemo(file);
    for (const f of files) entryChecksum(f, second);
    assert.is(second.stats.hashed, 1);
    second.save();
    const grown = fs.statSync(file).size;
    assert.ok(grown > whole && grown - whole < 200, `appended ${grown - whole} bytes`);
    const third = new ChecksumMemo(file);
    const sums = files.map((f) => entryChecksum(f, third));
    assert.is(third.stats.hashed, 0, 'the appended record wins over the old one');
    assert.is(sums[3], entryChecksum(files[3]!, new ChecksumMemo()));
    // Rewrites of every file, many times over: the file is compacted, it does not grow without end.
    for (let round = 0; round < 30; round++) {
      files.forEach((f, i) => fs.writeFileSync(f, `round ${round} ${i}`));
      const m = new ChecksumMemo(file);
      for (const f of files) entryChecksum(f, m);
      m.save();
    }
    assert.ok(fs.statSync(file).size < whole * 30, 'compacted, not grown without end');
    // A tail torn by a crash: the records before it stand, the memo is rewritten whole.
    fs.appendFileSync(file, `${files[0]}\x00123:45`);
    const torn = new ChecksumMemo(file);
    for (const f of files) entryChecksum(f, torn);
    assert.is(torn.stats.hashed, 0);
    torn.save();
    assert.not.ok(fs.readFileSync(file).includes(Buffer.from('123:45')), 'the torn record is gone');
  } finally {
    fs.rmSync(d, { recursive: true, force: true });
  }
});

test("one memo file per context: a build reads and rewrites only its own contexts' records; a transient context's are not kept", () => {
  const d = tmpdir();
  try {
    const cacheDir = path.join(d, 'cache');
    const memoDir = path.join(cacheDir, 'checksums');
    const ctx = (name: string, n: number) => {
      const c = path.join(d, name);
      fs.mkdirSync(c);
      for (let i = 0; i < n; i++) fs.writeFileSync(path.join(c, `f${i}`), `${name}${i}`);
      return c;
    };
    const big = ctx('big', 50), small = ctx('small', 2), stdin = ctx('stdin', 1);
    // The store-wide memo of earlier versions, and its JSON form before that: removed at the first save.
    fs.mkdirSync(cacheDir, { recursive: true });
    fs.writeFileSync(path.join(cacheDir, 'checksums.memo'), 'tsbuild-checksums 1\n');
    fs.writeFileSync(path.join(cacheDir, 'checksums.json'), '{}');
    const sum = (memos: ChecksumMemos, c: string) => fs.readdirSync(c).map((f) => entryChecksum(path.join(c, f), memos.forContext(c)));
    const first = new ChecksumMemos(memoDir, [stdin]);
    const bigSums = sum(first, big);
    sum(first, small);
    sum(first, stdin);
    assert.equal(first.stats, { hashed: 53, memoHits: 0 });
    first.save();
    const files = fs.readdirSync(memoDir).sort();
    assert.is(files.length, 2, `the transient context has none: ${files.join(', ')}`);
    assert.ok(!fs.existsSync(path.join(cacheDir, 'checksums.memo')) && !fs.existsSync(path.join(cacheDir, 'checksums.json')));
    const fileOf = (c: string) => files.find((f) => fs.readFileSync(path.join(memoDir, f), 'latin1').includes(`${c}/f0\0`))!;
    const bigFile = path.join(memoDir, fileOf(big)), smallFile = path.join(memoDir, fileOf(small));
    assert.is.not(bigFile, smallFile);
    assert.not.match(fs.readFileSync(smallFile, 'latin1'), new RegExp(`${big}/`), "the small context's file holds none of the big one's records");
    // The next build, of the small context with one file changed: the big context's file is not read
    // (a damaged one would be rewritten if it were) and not written.
    fs.writeFileSync(bigFile, 'damaged');
    fs.writeFileSync(path.join(small, 'f1'), 'changed');
    const second = new ChecksumMemos(memoDir);
    sum(second, small);
    assert.equal(second.stats, { hashed: 1, memoHits: 1 });
    second.save();
    assert.is(fs.readFileSync(bigFile, 'latin1'), 'damaged', 'untouched');
    // Read on its own, the big context's damaged memo is a miss, then rewritten.
    const third = new ChecksumMemos(memoDir);
    assert.equal(sum(third, big), bigSums);
    assert.is(third.stats.hashed, 50);
    third.save();
    const fourth = new ChecksumMemos(memoDir);
    sum(fourth, big);
    assert.equal(fourth.stats, { hashed: 0, memoHits: 50 });
    const same = new ChecksumMemos(memoDir);
    assert.is(same.forContext(`${small}/`), same.forContext(path.relative(process.cwd(), small)), 'one memo per directory, however it is written');
  } finally {
    fs.rmSync(d, { recursive: true, force: true });
  }
});

test('a COPY step\'s file times: kept per step beside its record, replaced whole, and none when damaged', () => {
  const d = tmpdir();
  try {
    const index = new CacheIndex(d);
    assert.is(index.lastCopyTimes('s1'), undefined);
    index.rememberCopyTimes('s1', { snapshot: 'snap-a', times: { 'app/a': 1700000000123 } });
    index.rememberCopyTimes('s2', { snapshot: 'snap-b', times: {} });
    index.rememberCopyTimes('s1', { snapshot: 'snap-c', times: { 'app/b': 5 } });
    assert.equal(index.lastCopyTimes('s1'), { snapshot: 'snap-c', times: { 'app/b': 5 } });
    assert.equal(index.lastCopyTimes('s2'), { snapshot: 'snap-b', times: {} });
    const file = fs.readdirSync(path.join(d, 'cache', 'steps')).find((f) => f.endsWith('.times') && fs.readFileSync(path.join(d, 'cache', 'steps', f), 'utf8').includes('snap-c'))!;
    for (const bad of ['{"snapshot": "snap-c", "times": nul', '{"snapshot": 7, "times": {}}', '{"snapshot": "snap-c", "times": null}', '[]']) {
      fs.writeFileSync(path.join(d, 'cache', 'steps', file), bad);
      assert.is(index.lastCopyTimes('s1'), undefined, bad);
    }
  } finally {
    fs.rmSync(d, { recursive: true, force: true });
  }
});

test('key digests do not depend on material order', () => {
  assert.is(digestOf({ a: '1', b: '2' }), digestOf({ b: '2', a: '1' }));
  assert.is.not(digestOf({ a: '1' }), digestOf({ a: '2' }));
});

test('explanations name what changed', () => {
  const before = { parent: 'p1', op: 'x', 'arg:VERSION': '1.2', 'file:src/main.c': 'a', 'file:gone': 'g' };
  assert.match(explainMiss({ ...before, 'arg:VERSION': '1.3' }, before), /^ARG VERSION changed 1.2 → 1.3$/);
  assert.match(explainMiss({ ...before, 'file:src/main.c': 'b' }, before), /^1 file changed: src\/main.c$/);
  assert.is(explainMiss({ ...before, 'file:src/\x0071ff72': 'b' }, before), '1 file changed: src/q\\xffr (added)', 'a name that is not UTF-8 is shown by its bytes');
  const many: Record<string, string> = { ...before };
  for (let i = 0; i < 12; i++) many[`file:f${i}`] = 'n';
  assert.match(explainMiss(many, before), /12 files changed: f0 \(added\), f1 \(added\), .*, and 7 more/);
  assert.match(explainMiss({ ...before, parent: 'p2' }, before, { parentStep: '[b 2/3] COPY . /' }), /^parent changed \(\[b 2\/3\] COPY \. \/\)$/);
  assert.match(explainMiss({ base: 'x@sha256:2' }, { base: 'x@sha256:1' }), /base image now x@sha256:2/);
  assert.match(explainMiss(before, undefined), /first build/);
  assert.match(explainMiss(before, before), /removed \(pruned\)/);
  const { ['file:gone']: _g, ...without } = before;
  void _g;
  assert.match(explainMiss(without, before), /gone \(removed\)/);
  const fields = { 'op:kind': 'exec', 'op:args': '["make"]', 'op:cwd': '"/"', 'mount:0': '{}' };
  assert.is(explainMiss({ ...fields, 'op:args': '["make","all"]', 'mount:0': '{"x":1}' }, fields), 'the instruction changed (args, --mount)');
  assert.is(explainMiss({ 'url:https://h/x': 'sha256:2' }, { 'url:https://h/x': 'sha256:1' }), 'the content at https://h/x changed');
});

test('cache index: records and step history round-trip', () => {
  const d = tmpdir();
  try {
    const idx = new CacheIndex(d);
    const rec = (key: string, size: number, lastUsed: string) => ({ key, layer: null, description: key, created: lastUsed, lastUsed, size });
    idx.save(rec('sha256:aa', 10, '2026-01-01T00:00:00Z'));
    idx.save(rec('sha256:bb', 20, '2026-01-02T00:00:00Z'));
    idx.save(rec('sha256:cc', 30, '2026-01-03T00:00:00Z'));
    assert.is(idx.lookup('sha256:bb')?.size, 20);
    assert.is(idx.list().length, 3);
    idx.rememberStep('step-1', { key: 'k', material: { a: '1' }, time: 'now' });
    assert.equal(idx.lastStep('step-1')?.material, { a: '1' });
    idx.remove('sha256:aa');
    assert.is(idx.lookup('sha256:aa'), undefined);
    assert.is(idx.list().find((r) => r.key === 'sha256:bb')?.lastUsed, '2026-01-02T00:00:00Z', 'a saved record keeps its use time');
    const before = Date.now() - 1000;
    idx.touch(idx.lookup('sha256:bb')!);
    assert.ok(Date.parse(idx.list().find((r) => r.key === 'sha256:bb')!.lastUsed) >= before, 'a hit moves the use time the prune policy reads');
    assert.is(idx.list().find((r) => r.key === 'sha256:cc')?.lastUsed, '2026-01-03T00:00:00Z', 'and only that record\'s');
    const stepFile = fs.readdirSync(path.join(d, 'cache', 'steps'))[0]!;
    const ino = fs.statSync(path.join(d, 'cache', 'steps', stepFile)).ino;
    idx.rememberStep('step-1', { key: 'k', material: { a: '1' }, time: 'later' });
    assert.is(fs.statSync(path.join(d, 'cache', 'steps', stepFile)).ino, ino, 'the same key again writes nothing');
    idx.rememberStep('step-1', { key: 'k2', material: { a: '2' }, time: 'later' });
    assert.equal(idx.lastStep('step-1')?.material, { a: '2' }, 'a new key is remembered');
  } finally {
    fs.rmSync(d, { recursive: true, force: true });
  }
});

test('cache index: a step record is parsed once while unchanged, and its key read from its head', () => {
  const d = tmpdir();
  try {
    const idx = new CacheIndex(d);
    idx.rememberStep('s', { key: 'sha256:k1', material: { a: '1' }, time: 'now' });
    const first = idx.lastStep('s');
    assert.is(idx.lastStep('s'), first, 'the second ask gets what the first parsed');
    // Another process (another index on the same store) replaces the record: it is read afresh.
    new CacheIndex(d).rememberStep('s', { key: 'sha256:k2', material: { a: '2' }, time: 'later' });
    assert.equal(idx.lastStep('s')?.material, { a: '2' });
    const file = path.join(d, 'cache', 'steps', fs.readdirSync(path.join(d, 'cache', 'steps'))[0]!);
    // A record whose key is not first (written by hand, or by another version) is parsed in full.
    fs.writeFileSync(file, JSON.stringify({ material: { a: '3' }, time: 't', key: 'sha256:k3' }));
    const ino = fs.statSync(file).ino;
    idx.rememberStep('s', { key: 'sha256:k3', material: { a: '3' }, time: 'u' });
    assert.is(fs.statSync(file).ino, ino, 'the same key, found by the full parse, writes nothing');
    // A damaged record is replaced by the next one remembered.
    fs.writeFileSync(file, '{"key":');
    idx.rememberStep('s', { key: 'sha256:k4', material: { a: '4' }, time: 'v' });
    assert.equal(idx.lastStep('s')?.material, { a: '4' });
    fs.writeFileSync(file, '{"material": {');
    idx.rememberStep('s', { key: 'sha256:k4', material: { a: '4' }, time: 'w' });
    assert.equal(idx.lastStep('s')?.key, 'sha256:k4', 'a record that does not parse is not taken for the same key');
    fs.rmSync(file);
    assert.is(idx.lastStep('s'), undefined, 'a removed record is gone, whatever was read before');
  } finally {
    fs.rmSync(d, { recursive: true, force: true });
  }
});

test.run();
