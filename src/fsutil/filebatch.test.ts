/** Small files made in batches by the files addon: what a file gets, the order around a failure, the addon's own checks. */
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { dirsEach } from '../testutil/index.js';
import { loadAddon } from './addon.js';
import { BATCH_MAX_FILE, FileBatch, fileBatching } from './filebatch.js';

const dirs = dirsEach(['root'], 'tsb-fb');
const latin1 = (p: string) => Buffer.from(p).toString('latin1');

test('the addon is built and batching is on (npm ci builds it where Node has its headers)', () => {
  assert.equal(fileBatching(), { on: true });
});

test('files get their bytes, owner, mode and time whatever the umask and the parent give them', () => {
  const batch = FileBatch.open<string>(() => assert.unreachable('no file should fail'))!;
  fs.mkdirSync(path.join(dirs.root, 'g'));
  fs.chownSync(path.join(dirs.root, 'g'), 0, 1234);
  fs.chmodSync(path.join(dirs.root, 'g'), 0o2775);
  const want: [string, number, number, number][] = [
    ['plain', 0o644, 0, 0],
    ['open', 0o777, 0, 0],
    ['none', 0o000, 0, 0],
    ['suid', 0o4755, 7, 8],
    ['sgid', 0o2755, 0, 9],
    ['sticky', 0o1777, 0, 0],
    ['owned', 0o640, 7, 8],
    ['g/inherits', 0o644, 0, 0],
    ['g/keeps', 0o644, 0, 1234],
  ];
  const old = process.umask(0o077);
  try {
    for (const [name, mode, uid, gid] of want) batch.push(name, latin1(path.join(dirs.root, name)), Buffer.from(`${name}\n`), mode, uid, gid, 1700000000.25);
    batch.push('empty', latin1(path.join(dirs.root, 'empty')), Buffer.alloc(0), 0o644, 0, 0, -1.5);
    batch.flush();
  } finally {
    process.umask(old);
  }
  for (const [name, mode, uid, gid] of want) {
    const st = fs.statSync(path.join(dirs.root, name));
    assert.equal([name, st.mode & 0o7777, st.uid, st.gid], [name, mode, uid, gid]);
    assert.is(fs.readFileSync(path.join(dirs.root, name), 'utf8'), `${name}\n`);
    assert.is(st.mtimeMs, 1700000000250, name);
    assert.is(st.atimeMs, 1700000000250, name);
  }
  const e = fs.statSync(path.join(dirs.root, 'empty'));
  assert.equal([e.size, e.mtimeMs], [0, -1500], 'an empty file, a time before 1970');
});

test('a batch stops at a failure, which is settled before the files after it are made; no name is followed', () => {
  const outside = path.join(dirs.root, 'outside');
  fs.writeFileSync(outside, 'keep');
  fs.symlinkSync(outside, path.join(dirs.root, 'link'));
  fs.mkdirSync(path.join(dirs.root, 'taken'));
  const seen: string[] = [];
  const batch = FileBatch.open<string>((tag, data, call, errno) => {
    // What came after the failed file is not made yet.
    seen.push(`${tag}:${call}:${errno}:${data.toString()}:${fs.existsSync(path.join(dirs.root, 'after-' + tag))}`);
    if (tag === 'link') {
      fs.unlinkSync(path.join(dirs.root, 'link'));
      fs.writeFileSync(path.join(dirs.root, 'link'), data);
    }
  })!;
  for (const name of ['before', 'link', 'after-link', 'taken', 'after-taken', 'nodir', 'after-nodir']) {
    batch.push(name, latin1(path.join(dirs.root, name === 'nodir' ? 'nodir/x' : name)), Buffer.from(name), 0o644, 0, 0, 1700000000);
  }
  assert.is(batch.size, 7);
  batch.flush();
  assert.is(batch.size, 0);
  assert.equal(seen, ['link:open:17:link:false', 'taken:open:17:taken:false', 'nodir:open:2:nodir:false']);
  assert.is(fs.readFileSync(outside, 'utf8'), 'keep', 'the symlink was not followed');
  assert.is(fs.readFileSync(path.join(dirs.root, 'link'), 'utf8'), 'link', 'the handler replaced it');
  for (const n of ['before', 'after-link', 'after-taken', 'after-nodir']) assert.ok(fs.existsSync(path.join(dirs.root, n)), n);
});

test('an error thrown by the handler ends the batch, and the next batch starts empty', () => {
  const batch = FileBatch.open<string>(() => {
    throw new Error('refused');
  })!;
  fs.mkdirSync(path.join(dirs.root, 'taken'));
  batch.push('taken', latin1(path.join(dirs.root, 'taken')), Buffer.from('x'), 0o644, 0, 0, 0);
  batch.push('never', latin1(path.join(dirs.root, 'never')), Buffer.from('x'), 0o644, 0, 0, 0);
  assert.throws(() => batch.flush(), /refused/);
  assert.not.ok(fs.existsSync(path.join(dirs.root, 'never')));
  assert.is(batch.size, 0);
  batch.push('later', latin1(path.join(dirs.root, 'later')), Buffer.from('y'), 0o644, 0, 0, 0);
  batch.flush();
  assert.is(fs.readFileSync(path.join(dirs.root, 'later'), 'utf8'), 'y');
});

test('a full queue is made before more is queued: more files than a batch holds, more bytes than it holds, names not UTF-8', () => {
  const batch = FileBatch.open<number>(() => assert.unreachable('no file should fail'))!;
  const big = Buffer.alloc(BATCH_MAX_FILE, 7);
  for (let i = 0; i < 2500; i++) batch.push(i, latin1(path.join(dirs.root, `f${i}`)), i % 50 === 0 ? big : Buffer.from(String(i)), 0o644, 0, 0, 1700000000);
  const name = Buffer.concat([Buffer.from(dirs.root + '/'), Buffer.from([0xff, 0x41])]);
  batch.push(-1, name.toString('latin1'), Buffer.from('latin'), 0o600, 0, 0, 1700000000);
  batch.flush();
  assert.is(fs.readdirSync(dirs.root).length, 2501);
  assert.is(fs.readFileSync(path.join(dirs.root, 'f2499'), 'utf8'), '2499');
  assert.ok(fs.readFileSync(path.join(dirs.root, 'f2450')).equals(big));
  assert.is(fs.readFileSync(name, 'utf8'), 'latin');
});

test('the addon checks every offset before it makes anything', () => {
  const l = loadAddon<{ makeFiles(m: Float64Array, b: Buffer, s: number, c: number, st: Int32Array): void }>('files');
  assert.ok('addon' in l);
  const { makeFiles } = (l as { addon: { makeFiles(m: Float64Array, b: Buffer, s: number, c: number, st: Int32Array): void } }).addon;
  const p = path.join(dirs.root, 'ok');
  const bytes = Buffer.from(p + '\0' + 'data');
  const good = [0, p.length, p.length + 1, 4, 0o644, 0, 0, 0];
  const bad: [string, number[]][] = [
    ['data past the end', [0, p.length, p.length + 1, 5, 0o644, 0, 0, 0]],
    ['path past the end', [0, bytes.length, 0, 0, 0o644, 0, 0, 0]],
    ['path without its NUL', [0, p.length - 1, 0, 0, 0o644, 0, 0, 0]],
    ['a NUL inside the path', [0, p.length + 2, 0, 0, 0o644, 0, 0, 0]],
    ['a negative offset', [-1, p.length, 0, 0, 0o644, 0, 0, 0]],
  ];
  for (const [what, f] of bad) {
    assert.throws(() => makeFiles(new Float64Array([...good, ...f]), bytes, 0, 2, new Int32Array(2)), /outside the buffer|NUL/, what);
    assert.not.ok(fs.existsSync(p), `${what}: nothing made, not even the good file before it`);
  }
  assert.throws(() => makeFiles(new Float64Array(good), bytes, 0, 2, new Int32Array(2)), /expected/, 'meta for fewer files than count');
  assert.throws(() => makeFiles(new Float64Array(good), bytes, 2, 1, new Int32Array(2)), /expected/, 'start past count');
  const st = new Int32Array(2);
  makeFiles(new Float64Array(good), bytes, 0, 1, st);
  assert.equal([...st], [1, 0]);
  assert.is(fs.readFileSync(p, 'utf8'), 'data');
});

test('TSBUILD_FILE_BATCH=0: no batch, files are made one by one, and info says why', () => {
  process.env.TSBUILD_FILE_BATCH = '0';
  try {
    assert.is(FileBatch.open(() => undefined), null);
    assert.equal(fileBatching(), { on: false, reason: 'TSBUILD_FILE_BATCH=0' });
  } finally {
    delete process.env.TSBUILD_FILE_BATCH;
  }
});

test.run();
