import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { NewFileMeta } from '../fsutil/index.js';
import { tmpdir } from '../testutil/index.js';
import { copyTo, type CopyCtx } from './copytree.js';

const ctx = (dstRoot: string, owner: { uid: number; gid: number }): CopyCtx => ({
  dstRoot, owner, ignored: () => false, excluded: () => false, signal: new AbortController().signal,
  modeOfFile: (mode) => mode & 0o7777, created: new NewFileMeta(),
});
const of = (p: string) => {
  const st = fs.lstatSync(p);
  return [st.mode & 0o7777, st.uid, st.gid];
};

test('COPY gives every file its owner and mode whatever open(2) gave it: the umask, a set-group-id destination, later sources', () => {
  if (process.getuid?.() !== 0) return console.log('  skipped: not root (files of other owners)');
  const dir = tmpdir('tsb-copytree-');
  try {
    const src = path.join(dir, 'src');
    const modes = [0o644, 0o666, 0o777, 0o600, 0o000, 0o4755, 0o2755, 0o1777];
    fs.mkdirSync(path.join(src, 'p'), { recursive: true });
    for (const [i, m] of modes.entries()) {
      for (const n of [`m${i}`, `again${i}`]) {
        fs.writeFileSync(path.join(src, 'p', n), n);
        fs.chmodSync(path.join(src, 'p', n), m);
      }
    }
    // A destination directory the image has: set-group-id, group 1234. New files there are born in
    // that group; the COPY's owner is what they must end with.
    const dst = path.join(dir, 'dst');
    fs.mkdirSync(path.join(dst, 'g'), { recursive: true });
    fs.chownSync(path.join(dst, 'g'), 0, 1234);
    fs.chmodSync(path.join(dst, 'g'), 0o2775);
    const c = ctx(dst, { uid: 0, gid: 0 });
    copyTo(path.join(src, 'p'), 'p', path.join(dst, 'p'), c);
    modes.forEach((m, i) => {
      assert.equal(of(path.join(dst, 'p', `m${i}`)), [m, 0, 0], `p/m${i}`);
      assert.equal(of(path.join(dst, 'p', `again${i}`)), [m, 0, 0], `p/again${i}`);
    });
    copyTo(path.join(src, 'p', 'm0'), 'p/m0', path.join(dst, 'g', 'a'), c);
    copyTo(path.join(src, 'p', 'again0'), 'p/again0', path.join(dst, 'g', 'b'), c);
    assert.equal(of(path.join(dst, 'g', 'a')), [0o644, 0, 0]);
    assert.equal(of(path.join(dst, 'g', 'b')), [0o644, 0, 0]);
    // --chown 7:8 into the same directories, through the same memo.
    const c7 = { ...ctx(dst, { uid: 7, gid: 8 }), created: c.created };
    copyTo(path.join(src, 'p', 'm1'), 'p/m1', path.join(dst, 'g', 'c'), c7);
    copyTo(path.join(src, 'p', 'm1'), 'p/m1', path.join(dst, 'p', 'extra'), c7);
    assert.equal(of(path.join(dst, 'g', 'c')), [0o666, 7, 8]);
    assert.equal(of(path.join(dst, 'p', 'extra')), [0o666, 7, 8]);
    // A source directory that is itself set-group-id: its mode is set after its files are made, and
    // a later source of the same COPY is copied into it then.
    fs.mkdirSync(path.join(src, 's'));
    fs.writeFileSync(path.join(src, 's', 'x'), 'x');
    fs.chmodSync(path.join(src, 's'), 0o2775);
    const c7s = ctx(dst, { uid: 7, gid: 8 });
    copyTo(path.join(src, 's'), 's', path.join(dst, 's'), c7s);
    copyTo(path.join(src, 'p', 'm0'), 'p/m0', path.join(dst, 's', 'y'), c7s);
    assert.equal(of(path.join(dst, 's')), [0o2775, 7, 8]);
    assert.equal(of(path.join(dst, 's', 'x')), [0o644, 7, 8]);
    assert.equal(of(path.join(dst, 's', 'y')), [0o644, 7, 8]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('below a directory it made, a copy writes into the upper directory: by text and by bytes, under a store path that is not ASCII', () => {
  // Two plain directories stand for the overlay mount and its upper one, so where each entry went shows.
  const dir = tmpdir('tsb-copytree-ü-');
  try {
    const src = path.join(dir, 'src');
    fs.mkdirSync(path.join(src, 'sub'), { recursive: true });
    fs.writeFileSync(path.join(src, 'a'), 'a');
    fs.writeFileSync(path.join(src, 'sub', 'b'), 'b');
    fs.writeFileSync(Buffer.concat([Buffer.from(path.join(src, 'sub') + '/'), Buffer.from([0x6e, 0xff])]), 'raw');
    // A directory whose name is not UTF-8 is made by bytes: the mapping works on bytes then.
    const rawDir = (root: string) => Buffer.concat([Buffer.from(root + '/'), Buffer.from([0x64, 0xfe])]);
    fs.mkdirSync(rawDir(src));
    fs.writeFileSync(Buffer.concat([rawDir(src), Buffer.from('/x')]), 'x');
    const [mnt, upper] = [path.join(dir, 'mnt'), path.join(dir, 'upper')];
    fs.mkdirSync(mnt);
    // What overlay's mkdir through the mount would have made in the upper directory.
    fs.mkdirSync(path.join(upper, 'new'), { recursive: true });
    copyTo(src, '', path.join(mnt, 'new'), { ...ctx(mnt, { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 }), upper });
    assert.equal(fs.readdirSync(path.join(mnt, 'new')), [], 'nothing below the new directory went through the mount');
    assert.is(fs.readFileSync(path.join(upper, 'new', 'a'), 'utf8'), 'a');
    assert.is(fs.readFileSync(path.join(upper, 'new', 'sub', 'b'), 'utf8'), 'b');
    assert.is(fs.readFileSync(Buffer.concat([Buffer.from(path.join(upper, 'new', 'sub') + '/'), Buffer.from([0x6e, 0xff])]), 'utf8'), 'raw');
    // In a directory that was already there, entries go through the mount; below one made in it, not.
    fs.mkdirSync(path.join(mnt, 'old'));
    fs.mkdirSync(path.join(upper, 'old', 'sub'), { recursive: true });
    fs.mkdirSync(rawDir(path.join(upper, 'old')));
    copyTo(src, '', path.join(mnt, 'old'), { ...ctx(mnt, { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 }), upper });
    assert.is(fs.readFileSync(path.join(mnt, 'old', 'a'), 'utf8'), 'a');
    assert.equal(fs.readdirSync(path.join(mnt, 'old', 'sub')), []);
    assert.is(fs.readFileSync(path.join(upper, 'old', 'sub', 'b'), 'utf8'), 'b');
    assert.not.ok(fs.existsSync(path.join(upper, 'old', 'a')));
    assert.is(fs.readFileSync(Buffer.concat([rawDir(path.join(upper, 'old')), Buffer.from('/x')]), 'utf8'), 'x');
    assert.equal(fs.readdirSync(rawDir(path.join(mnt, 'old'))), []);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
