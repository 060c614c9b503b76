/**
 * Where layers meet the kernel: extraction applies device nodes, fifos and xattrs through the
 * sandbox helper, and both layer differs (upperdir walk, tree comparison) read them back the same.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { diffTrees, diffUpperDir, extractTar, readTar } from '../image/index.js';
import { applyMeta, readLayerMetaAsync } from '../runtime/index.js';
import { dirsEach, tarOf } from '../testutil/index.js';

const dirs = dirsEach(['root', 'host'], 'tsb-lk');
const archive = tarOf;

const run = (b: Buffer, opts = {}) => extractTar(Readable.from([b]), dirs.root, opts);

test('device nodes, fifos and xattrs (security.capability included) are applied through the helper', async () => {
  const cap = Buffer.from('0100000200200000000000000000000000000000', 'hex');
  const b = archive([
    { name: 'dev/', type: 'dir', mode: 0o755 },
    { name: 'dev/null', type: 'char', mode: 0o666, devmajor: 1, devminor: 3, xattrs: { 'trusted.t': Buffer.from('on-device') } },
    { name: 'dev/loop9', type: 'block', mode: 0o660, gid: 6, devmajor: 7, devminor: 9 },
    { name: 'fifo', type: 'fifo', mode: 0o600, uid: 5 },
    { name: 'ping', mode: 0o755, body: 'binary', uid: 0, xattrs: { 'security.capability': cap, 'user.note': Buffer.from('n') } },
    { name: 'link', type: 'symlink', linkname: 'ping', xattrs: { 'user.no': Buffer.from('x') } },
  ]);
  const warnings: string[] = [];
  await run(b, { applyMeta, onWarning: (w: string) => warnings.push(w) });
  const st = fs.lstatSync(path.join(dirs.root, 'dev/null'));
  assert.ok(st.isCharacterDevice());
  assert.is(st.rdev, (1 << 8) | 3);
  assert.is(st.mode & 0o7777, 0o666);
  const blk = fs.lstatSync(path.join(dirs.root, 'dev/loop9'));
  assert.ok(blk.isBlockDevice());
  assert.is(blk.gid, 6);
  assert.ok(fs.lstatSync(path.join(dirs.root, 'fifo')).isFIFO());
  assert.is(fs.lstatSync(path.join(dirs.root, 'fifo')).uid, 5);
  const x = (await readLayerMetaAsync(dirs.root)).xattrs;
  assert.ok(x.get('ping')?.['security.capability']?.equals(cap), 'the capability survives chown (set after it)');
  assert.is(x.get('ping')?.['user.note']?.toString(), 'n');
  assert.is(x.get('dev/null')?.['trusted.t']?.toString(), 'on-device');
  assert.is(x.get('link'), undefined);
  assert.match(warnings.join('\n'), /user\.\* attributes exist only on files and directories/);
});

test('layer diff carries xattrs and devices: upperdir walk and tree comparison agree', async () => {
  fs.writeFileSync(path.join(dirs.root, 'cap'), 'x');
  fs.chmodSync(path.join(dirs.root, 'cap'), 0o755);
  const cap = Buffer.from('0100000200200000000000000000000000000000', 'hex');
  applyMeta([
    { op: 'setxattr', path: path.join(dirs.root, 'cap'), name: 'security.capability', value: cap },
    { op: 'mknod', path: path.join(dirs.root, 'zero'), mode: fs.constants.S_IFCHR | 0o666, major: 1, minor: 5 },
  ]);
  fs.utimesSync(path.join(dirs.root, 'cap'), 100, 100);
  fs.utimesSync(path.join(dirs.root, 'zero'), 100, 100);
  const collect = async (gen: AsyncIterable<Buffer>) => {
    const out: string[] = [];
    const chunks: Buffer[] = [];
    for await (const c of gen) chunks.push(c);
    for await (const e of readTar(Readable.from([Buffer.concat(chunks)]))) {
      out.push(`${e.header.name} ${e.header.type} ${e.header.devmajor}:${e.header.devminor} ${Object.entries(e.header.xattrs).map(([k, v]) => `${k}=${v.toString('hex')}`).join(',')}`);
      for await (const c of e.body) void c;
    }
    return out;
  };
  const xattrs = (await readLayerMetaAsync(dirs.root)).xattrs;
  const a = await collect(diffUpperDir(dirs.root, { opaqueDirs: new Set(), xattrs }));
  const b2 = await collect(diffTrees(undefined, dirs.root, { xattrs: { upper: xattrs } }));
  assert.equal(a, [`cap file 0:0 security.capability=${cap.toString('hex')}`, 'zero char 1:5 ']);
  assert.equal(b2, a);
  // Only an xattr changed: the tree comparison still sees it.
  fs.cpSync(dirs.root, dirs.host, { recursive: true, force: true });
  fs.rmSync(path.join(dirs.host, 'zero'));
  applyMeta([{ op: 'mknod', path: path.join(dirs.host, 'zero'), mode: fs.constants.S_IFCHR | 0o666, major: 1, minor: 5 }]);
  fs.utimesSync(path.join(dirs.host, 'cap'), 100, 100);
  fs.utimesSync(path.join(dirs.host, 'zero'), 100, 100);
  const d = await collect(diffTrees(dirs.host, dirs.root, { xattrs: { lower: (await readLayerMetaAsync(dirs.host)).xattrs, upper: xattrs } }));
  assert.equal(d, [`cap file 0:0 security.capability=${cap.toString('hex')}`], 'the lower copy lacks the capability (cpSync drops xattrs)');
});

test('fuse-overlayfs upperdir marks give the kernel overlay\'s layer (opaque file, .wh. whiteout files, marks in new directories)', async () => {
  const lower = fs.mkdtempSync('/tmp/tsb-lk-lower-');
  try {
    fs.mkdirSync(path.join(lower, 'd'));
    fs.writeFileSync(path.join(lower, 'd/a'), 'a');
    fs.writeFileSync(path.join(lower, 'x'), 'x');
    fs.writeFileSync(path.join(lower, 'y'), 'y');
    // The same changes in both forms: d emptied and refilled (opaque), x and y deleted, q a new directory.
    const fill = (up: string) => {
      for (const dir of ['d', 'q']) fs.mkdirSync(path.join(up, dir));
      fs.writeFileSync(path.join(up, 'd/n'), 'n');
      fs.writeFileSync(path.join(up, 'q/m'), 'm');
    };
    const kernel = dirs.root;
    const fuse = dirs.host;
    fill(kernel);
    applyMeta([
      { op: 'mknod', path: path.join(kernel, 'x'), mode: fs.constants.S_IFCHR, major: 0, minor: 0 },
      { op: 'mknod', path: path.join(kernel, 'y'), mode: fs.constants.S_IFCHR, major: 0, minor: 0 },
    ]);
    fill(fuse);
    // fuse-overlayfs: a file (and a whiteout) in every directory it made, a `.wh.` file where mknod fails.
    for (const dir of ['d', 'q']) fs.writeFileSync(path.join(fuse, dir, '.wh..wh..opq'), '');
    applyMeta([{ op: 'mknod', path: path.join(fuse, 'd/.wh..opq'), mode: fs.constants.S_IFCHR, major: 0, minor: 0 }, { op: 'mknod', path: path.join(fuse, 'y'), mode: fs.constants.S_IFCHR, major: 0, minor: 0 }]);
    fs.writeFileSync(path.join(fuse, '.wh.x'), '');
    for (const up of [kernel, fuse]) for (const p of ['d/n', 'q/m', 'd', 'q']) fs.utimesSync(path.join(up, p), 100, 100);
    const bytes = async (up: string, opaque: string[]) => {
      const chunks: Buffer[] = [];
      for await (const c of diffUpperDir(up, { opaqueDirs: new Set(opaque), lower: { dir: lower, xattrs: new Map() } })) chunks.push(c);
      return Buffer.concat(chunks);
    };
    const k = await bytes(kernel, ['d']);
    const f = await bytes(fuse, []);
    const names: string[] = [];
    for await (const e of readTar(Readable.from([f]))) {
      names.push(e.header.name);
      for await (const c of e.body) void c;
    }
    assert.equal(names, ['d/', 'd/.wh.a', 'd/n', 'q/', 'q/m', '.wh.x', '.wh.y'], 'the opaque directory hides its lower entry; no fuse marks in the layer');
    assert.ok(k.equals(f), 'byte-identical to the kernel form');
  } finally {
    fs.rmSync(lower, { recursive: true, force: true });
  }
});

test.run();
