/**
 * A stack of upperdirs (a COPY written as its changes on a full copy) gives the layer that one upperdir
 * holding the same merged changes gives: whiteouts and opaque directories in either, a file turned
 * into a directory, a new directory in the lower one growing in the upper one.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { diffTrees, keptStat, type EntryStat } from './treediff.js';
import { LayerSplice } from './tarsplice.js';
import { entryBlocks } from './diff.js';

const dirs: string[] = [];
test.after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

/** A tree from a spec: `path/` a directory, `path: body` a file, `path: null` a whiteout (0/0 device). */
function tree(spec: Record<string, string | null>): string {
  const root = fs.mkdtempSync('/tmp/tsb-treediff-');
  dirs.push(root);
  for (const [p, body] of Object.entries(spec)) {
    const full = path.join(root, p);
    if (p.endsWith('/')) {
      fs.mkdirSync(full, { recursive: true });
      continue;
    }
    fs.mkdirSync(path.dirname(full), { recursive: true });
    if (body === null) execFileSync('mknod', [full, 'c', '0', '0']);
    else fs.writeFileSync(full, body);
  }
  return root;
}

async function layer(gen: AsyncIterable<Buffer>): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const b of gen) out.push(b);
  return Buffer.concat(out);
}

/** The entry names of a tar, in order. */
function names(tar: Buffer): string[] {
  const out: string[] = [];
  for (let pos = 0; pos + 512 <= tar.length; ) {
    const name = tar.subarray(pos, pos + 100).toString('latin1').replace(/\0.*$/s, '');
    if (name === '') break;
    const size = parseInt(tar.subarray(pos + 124, pos + 136).toString('latin1').replace(/\0.*$/s, '').trim() || '0', 8);
    out.push(name);
    pos += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}

test('two upperdirs merged give the layer of one holding their merged changes', async () => {
  const lower = tree({ 'a/x': 'x0', 'a/y': 'y0', 'b/z': 'z0', 'b/keep': 'k', c: 'file', 'd/old': 'o' });
  // The full copy: a/x changed, a new directory n (overlay marks new directories opaque), b/z changed,
  // d replaced by an opaque directory.
  const base = tree({ 'a/x': 'x1', 'n/1': 'one', 'b/z': 'z1', 'd/new': 'n' });
  // The edit on it: a/y deleted, n/2 added, b/z deleted, c turned into a directory (opaque), a/x again.
  const top = tree({ 'a/y': null, 'a/x': 'x2', 'n/2': 'two', 'b/z': null, 'c/k': 'k' });
  // One upperdir with the same merged changes.
  const merged = tree({ 'a/x': 'x2', 'a/y': null, 'n/1': 'one', 'n/2': 'two', 'b/z': null, 'c/k': 'k', 'd/new': 'n' });
  for (const t of [base, top, merged, lower]) {
    execFileSync('sh', ['-c', 'find "$1" -exec chown -h 0:0 {} + && find "$1" -type d -exec chmod 755 {} + && find "$1" -type f -exec chmod 644 {} +', 'sh', t]);
  }
  const opts = { sourceDateEpoch: 0 };
  const stacked = await layer(diffTrees(lower, top, { ...opts, overlay: { opaque: new Set(['c']), below: [{ dir: base, opaque: new Set(['n', 'd']), xattrs: new Map() }] } }));
  const single = await layer(diffTrees(lower, merged, { ...opts, overlay: { opaque: new Set(['n', 'd', 'c']) } }));
  assert.equal(names(stacked), names(single));
  assert.equal(names(single), ['a/', 'a/x', 'a/.wh.y', 'b/', 'b/.wh.z', 'c/', 'c/k', 'd/', 'd/new', 'd/.wh.old', 'n/', 'n/1', 'n/2']);
  assert.ok(stacked.equals(single), 'byte for byte');
});

test('an upperdir without a lower: the stack is its merged files, whiteouts left out', async () => {
  const base = tree({ 'app/a': 'a', 'app/b': 'b' });
  const top = tree({ 'app/b': null, 'app/c': 'c' });
  const merged = tree({ 'app/a': 'a', 'app/c': 'c' });
  const stacked = await layer(diffTrees(undefined, top, { sourceDateEpoch: 0, overlay: { opaque: new Set(), below: [{ dir: base, opaque: new Set(), xattrs: new Map() }] } }));
  const single = await layer(diffTrees(undefined, merged, { sourceDateEpoch: 0, overlay: { opaque: new Set() } }));
  assert.equal(names(stacked), ['app/', 'app/a', 'app/c']);
  assert.ok(stacked.equals(single));
});

test('stats the caller already took of a lower upperdir stand for a second lstat, and give the same layer', async () => {
  const base = tree({ 'app/a': 'a', 'app/b': 'b' });
  const top = tree({ 'app/c': 'c' });
  const opts = (stats?: Map<string, EntryStat>) => ({ sourceDateEpoch: 0, overlay: { opaque: new Set<string>(), below: [{ dir: base, opaque: new Set<string>(), xattrs: new Map(), stats }] } });
  // The compact form a caller keeps, of a directory and a file.
  const taken = new Map(['app', 'app/a'].map((r) => [r, keptStat(fs.lstatSync(path.join(base, r)))]));
  const plain = await layer(diffTrees(undefined, top, opts()));
  assert.ok((await layer(diffTrees(undefined, top, opts(taken)))).equals(plain));
  // Used as given (the directory is one that cannot change): a mode it says wins over the disk's.
  const st = fs.lstatSync(path.join(base, 'app/a'));
  const said = Object.assign(Object.create(Object.getPrototypeOf(st) as object) as fs.Stats, st, { mode: (st.mode & ~0o7777) | 0o600 });
  const out = await layer(diffTrees(undefined, top, opts(new Map([['app/a', said]]))));
  const at = headerOffset(out, 'app/a');
  assert.is(out.subarray(at + 100, at + 107).toString(), '0000600');
});

test('an inferred stat is used only where its header is the spliced layer\'s; a wrong guess is lstat\'ed, the same layer either way', async () => {
  const base = tree({ 'app/a': 'aaaa', 'app/b': 'bb' });
  const top = tree({ 'app/c': 'c' });
  execFileSync('sh', ['-c', 'find "$1" -exec chown -h 0:0 {} + && find "$1" -type f -exec chmod 644 {} + && touch -d @1600000000.4 "$1"/app/a "$1"/app/b', 'sh', base]);
  // The base's own layer, spliced from as a COPY written on its last result does.
  const blob = path.join(tree({}), 'base.tar');
  fs.writeFileSync(blob, await layer(diffTrees(undefined, base, { sourceDateEpoch: 2000000000 })));
  const from = LayerSplice.open(blob)!;
  const guess = (over: Partial<EntryStat>): EntryStat => ({
    inferred: true, mode: 0o100644, uid: 0, gid: 0, size: 4, mtimeMs: 1600000000400, nlink: 1, dev: 0, ino: 0, rdev: 0,
    isFile: () => true, isDirectory: () => false, isSymbolicLink: () => false, isCharacterDevice: () => false, isBlockDevice: () => false, isFIFO: () => false, isSocket: () => false,
    ...over,
  });
  const run = (stats?: Map<string, EntryStat>) => layer(diffTrees(undefined, top, { sourceDateEpoch: 2000000000, splice: { layer: 1, from }, overlay: { opaque: new Set<string>(), below: [{ dir: base, opaque: new Set<string>(), xattrs: new Map(), stats }] } }));
  const plain = await run();
  try {
    assert.ok((await run(new Map([['app/a', guess({})]]))).equals(plain), 'a right guess');
    for (const wrong of [{ mtimeMs: 1600000001400 }, { mode: 0o100600 }, { uid: 5 }, { size: 3 }]) {
      assert.ok((await run(new Map([['app/a', guess(wrong)]]))).equals(plain), `a wrong guess: ${JSON.stringify(wrong)}`);
    }
  } finally {
    from.close();
  }
});

/** Where the tar header of `name` starts in a layer of small files. */
function headerOffset(t: Buffer, name: string): number {
  for (let o = 0; o + 512 <= t.length; ) {
    const n = t.subarray(o, o + 100).toString().replace(/\0.*$/s, '');
    if (n === name) return o;
    const size = parseInt(t.subarray(o + 124, o + 136).toString().replace(/\0.*$/s, '').trim() || '0', 8);
    o += 512 + Math.ceil(size / 512) * 512;
  }
  throw new Error(`${name} is not in the layer`);
}

test('small and large files: each entry\'s bytes, zero padding to 512, sizes around the boundaries', async () => {
  const sizes = [0, 1, 511, 512, 513, 4096, 256 * 1024, 256 * 1024 + 1, 300 * 1024];
  const body = (n: number) => Buffer.alloc(n, (n % 251) + 1);
  const root = tree({});
  for (const n of sizes) fs.writeFileSync(path.join(root, `f${n}`), body(n));
  const tar = await layer(diffTrees(undefined, root, {}));
  const seen: string[] = [];
  for (let pos = 0; pos + 512 <= tar.length; ) {
    const name = tar.subarray(pos, pos + 100).toString('latin1').replace(/\0.*$/s, '');
    if (name === '') break;
    const size = parseInt(tar.subarray(pos + 124, pos + 136).toString('latin1').replace(/\0.*$/s, '').trim() || '0', 8);
    const n = Number(name.slice(1));
    assert.ok(tar.subarray(pos + 512, pos + 512 + size).equals(body(n)), `${name}: content`);
    const end = pos + 512 + Math.ceil(size / 512) * 512;
    assert.ok(tar.subarray(pos + 512 + size, end).every((x) => x === 0), `${name}: padding is zeros`);
    seen.push(name);
    pos = end;
  }
  assert.equal(seen.sort(), sizes.map((n) => `f${n}`).sort());
});

test('a small file that grew or shrank since it was stat\'ed is an error, not a wrong layer', async () => {
  const root = tree({ grew: 'abc', shrank: 'abcdef' });
  for (const [f, change] of [['grew', 'abcdefgh'], ['shrank', 'a']] as const) {
    const full = path.join(root, f);
    const st = fs.lstatSync(full);
    fs.writeFileSync(full, change);
    const e = await layer(entryBlocks({ name: f, mode: 0o644, uid: 0, gid: 0, mtime: 0, size: 0 }, Buffer.from(full), st, new Map())).then(() => undefined, (x: Error) => x);
    assert.match(String(e?.message), /changed size while its layer was being written/, f);
  }
});

test.run();
