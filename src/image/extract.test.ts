/** Hostile-archive fixtures, each named after the attack, plus the ordinary paths. */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { encodeHeader, padding, END_OF_ARCHIVE, extractTar, detectArchive, ArchiveError, type TarHeader } from './index.js';
import { programUnavailable, testUnless, tmpdir } from '../testutil/index.js';
import { applyMeta, readXattrs } from '../runtime/index.js';

type E = Partial<TarHeader> & { name: string; body?: string };
function archive(entries: E[], opts: { truncate?: number } = {}): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const body = e.body ?? '';
    parts.push(encodeHeader({ type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 1700000000, size: Buffer.byteLength(body), ...e }));
    if (body) parts.push(Buffer.from(body), padding(Buffer.byteLength(body)));
  }
  parts.push(END_OF_ARCHIVE);
  const b = Buffer.concat(parts);
  return opts.truncate ? b.subarray(0, opts.truncate) : b;
}

let root = '';
let host = '';
test.before.each(() => {
  root = tmpdir('tsb-x-root-');
  host = tmpdir('tsb-x-host-');
});
test.after.each(() => {
  fs.rmSync(root, { recursive: true, force: true });
  fs.rmSync(host, { recursive: true, force: true });
});

const run = (b: Buffer, opts = {}) => extractTar(Readable.from([b]), root, opts);
const rejects = async (p: Promise<unknown>, re: RegExp) => {
  const e = await p.then(() => undefined, (x: unknown) => x);
  assert.ok(e instanceof ArchiveError, `expected ArchiveError, got ${String(e)}`);
  assert.match((e as Error).message, re);
};

test('ordinary archive: dirs, files, symlinks, hard links, modes, owners, times', async () => {
  await run(archive([
    { name: 'd', type: 'dir', mode: 0o750, uid: 5, gid: 6 },
    { name: 'd/f', body: 'hello', mode: 0o4755, uid: 7, gid: 8 },
    { name: 'd/l', type: 'symlink', linkname: 'f' },
    { name: 'd/h', type: 'hardlink', linkname: 'd/f' },
  ]));
  const st = fs.statSync(path.join(root, 'd/f'));
  assert.equal([st.mode & 0o7777, st.uid, st.gid, st.mtimeMs / 1000], [0o4755, 7, 8, 1700000000]);
  assert.is(fs.statSync(path.join(root, 'd')).mode & 0o7777, 0o750);
  assert.is(fs.readlinkSync(path.join(root, 'd/l')), 'f');
  assert.is(fs.statSync(path.join(root, 'd/h')).ino, st.ino);
  assert.is(fs.statSync(path.join(root, 'd')).mtimeMs / 1000, 1700000000, 'directory times are set after their contents');
});

test('dotdot-escape: "../" that leaves the root is refused', async () => {
  await rejects(run(archive([{ name: '../../' + path.basename(host) + '/pwned', body: 'x' }])), /escapes the destination/);
  assert.equal(fs.readdirSync(host), []);
});

test('absolute-name: "/etc/x" lands inside the root', async () => {
  await run(archive([{ name: '/etc/abs', body: 'x' }]));
  assert.is(fs.readFileSync(path.join(root, 'etc/abs'), 'utf8'), 'x');
});

test('symlink-then-file: a planted symlink cannot redirect a later write outside', async () => {
  await run(archive([
    { name: 'escape', type: 'symlink', linkname: host },
    { name: 'escape/pwned', body: 'x' },
    { name: 'rel', type: 'symlink', linkname: '../../../../../../../../' + host },
    { name: 'rel/pwned2', body: 'y' },
  ]));
  assert.equal(fs.readdirSync(host), [], 'the host directory is untouched');
  assert.is(fs.readFileSync(path.join(root, host, 'pwned'), 'utf8'), 'x');
});

test('symlink-in-root: a symlink already in the root is resolved inside it', async () => {
  fs.symlinkSync(host, path.join(root, 'pre'));
  await run(archive([{ name: 'pre/file', body: 'x' }]));
  assert.equal(fs.readdirSync(host), []);
});

test('overwrite-symlink: a file entry replaces a symlink instead of writing through it', async () => {
  fs.writeFileSync(path.join(host, 'target'), 'original');
  await run(archive([{ name: 'victim', type: 'symlink', linkname: path.join(host, 'target') }, { name: 'victim', body: 'new' }]));
  assert.is(fs.readFileSync(path.join(host, 'target'), 'utf8'), 'original');
  assert.is(fs.readFileSync(path.join(root, 'victim'), 'utf8'), 'new');
});

test('hardlink-to-host: a hard link may only point at a file inside the root', async () => {
  fs.writeFileSync(path.join(host, 'secret'), 's');
  await rejects(run(archive([{ name: 'hl', type: 'hardlink', linkname: path.join(host, 'secret') }])), /hard link to .* not a file inside the destination/);
  await rejects(run(archive([{ name: 'hl2', type: 'hardlink', linkname: '../../../../' + host + '/secret' }])), /escapes the destination/);
  assert.is(fs.statSync(path.join(host, 'secret')).nlink, 1);
});

test('absurd-size: a header claiming a terabyte-scale entry is refused', async () => {
  const h = encodeHeader({ name: 'big', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, size: 2 ** 41 });
  await rejects(run(Buffer.concat([h, Buffer.alloc(512), END_OF_ARCHIVE])), /absurd sizes|truncated|invalid tar/);
});

test('truncated-archive: an entry shorter than its header says is an error', async () => {
  const b = archive([{ name: 'f', body: 'x'.repeat(2000) }]);
  await rejects(run(b, {}).then(() => run(b.subarray(0, 1024))), /truncated|invalid tar/);
});

test('layer mode: whiteouts delete and opaque markers clear lower content', async () => {
  fs.mkdirSync(path.join(root, 'dir/sub'), { recursive: true });
  fs.writeFileSync(path.join(root, 'dir/old'), 'o');
  fs.writeFileSync(path.join(root, 'dir/sub/x'), 'x');
  fs.writeFileSync(path.join(root, 'gone'), 'g');
  await run(archive([
    { name: '.wh.gone' },
    { name: 'dir', type: 'dir', mode: 0o755 },
    { name: 'dir/.wh..wh..opq' },
    { name: 'dir/new', body: 'n' },
  ]), { whiteouts: true });
  assert.not.ok(fs.existsSync(path.join(root, 'gone')));
  assert.equal(fs.readdirSync(path.join(root, 'dir')), ['new']);
});

test('outside layer mode .wh. names are ordinary files', async () => {
  await run(archive([{ name: '.wh.keep', body: 'k' }]));
  assert.ok(fs.existsSync(path.join(root, '.wh.keep')));
});

for (const [prog, kind, pkg] of [['gzip', 'gzip', 'gzip'], ['bzip2', 'bzip2', 'bzip2'], ['xz', 'xz', 'xz-utils'], ['zstd', 'zstd', 'zstd']] as const) {
  testUnless(programUnavailable(prog, ['--version'], pkg), `archives compressed with ${kind} are detected by content`, async () => {
    const src = path.join(host, `${kind}.tar`);
    fs.writeFileSync(src, archive([{ name: 'f', body: 'x' }]));
    const r = spawnSync(prog, ['-kc', src], { maxBuffer: 1 << 20 });
    assert.is(r.status, 0, String(r.stderr));
    const f = path.join(host, `a.tar.${kind}`);
    fs.writeFileSync(f, r.stdout);
    assert.is(await detectArchive(f), kind, kind);
  });
}

test('an uncompressed tar is an archive; text, and compressed text, are not', async () => {
  const src = path.join(host, 'a.tar');
  fs.writeFileSync(src, archive([{ name: 'f', body: 'x' }]));
  assert.is(await detectArchive(src), 'none');
  const notTar = path.join(host, 'plain.txt');
  fs.writeFileSync(notTar, 'just text '.repeat(100));
  assert.is(await detectArchive(notTar), undefined);
  const gzText = path.join(host, 'text.gz');
  fs.writeFileSync(gzText, spawnSync('gzip', ['-c', notTar]).stdout);
  assert.is(await detectArchive(gzText), undefined, 'a compressed non-tar is not an archive');
});

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
  const st = fs.lstatSync(path.join(root, 'dev/null'));
  assert.ok(st.isCharacterDevice());
  assert.is(st.rdev, (1 << 8) | 3);
  assert.is(st.mode & 0o7777, 0o666);
  const blk = fs.lstatSync(path.join(root, 'dev/loop9'));
  assert.ok(blk.isBlockDevice());
  assert.is(blk.gid, 6);
  assert.ok(fs.lstatSync(path.join(root, 'fifo')).isFIFO());
  assert.is(fs.lstatSync(path.join(root, 'fifo')).uid, 5);
  const x = readXattrs(root);
  assert.ok(x.get('ping')?.['security.capability']?.equals(cap), 'the capability survives chown (set after it)');
  assert.is(x.get('ping')?.['user.note']?.toString(), 'n');
  assert.is(x.get('dev/null')?.['trusted.t']?.toString(), 'on-device');
  assert.is(x.get('link'), undefined);
  assert.match(warnings.join('\n'), /user\.\* attributes exist only on files and directories/);
});

test('without the helper, devices are skipped with a warning, never silently', async () => {
  const warnings: string[] = [];
  await run(archive([{ name: 'null', type: 'char', mode: 0o666, devmajor: 1, devminor: 3 }, { name: 'f', body: 'x', xattrs: { 'user.a': Buffer.from('1') } }]), { onWarning: (w: string) => warnings.push(w) });
  assert.not.ok(fs.existsSync(path.join(root, 'null')));
  assert.match(warnings.join('\n'), /skipping char "null"/);
  assert.match(warnings.join('\n'), /extended attributes in the archive are not applied/);
});

test('layer diff carries xattrs and devices: upperdir walk and tree comparison agree', async () => {
  const { diffUpperDir, diffTrees, readTar } = await import('./index.js');
  fs.writeFileSync(path.join(root, 'cap'), 'x');
  fs.chmodSync(path.join(root, 'cap'), 0o755);
  const cap = Buffer.from('0100000200200000000000000000000000000000', 'hex');
  applyMeta([
    { op: 'setxattr', path: path.join(root, 'cap'), name: 'security.capability', value: cap },
    { op: 'mknod', path: path.join(root, 'zero'), mode: fs.constants.S_IFCHR | 0o666, major: 1, minor: 5 },
  ]);
  fs.utimesSync(path.join(root, 'cap'), 100, 100);
  fs.utimesSync(path.join(root, 'zero'), 100, 100);
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
  const xattrs = readXattrs(root);
  const a = await collect(diffUpperDir(root, { opaqueDirs: new Set(), xattrs }));
  const b2 = await collect(diffTrees(undefined, root, { xattrs: { upper: xattrs } }));
  assert.equal(a, [`cap file 0:0 security.capability=${cap.toString('hex')}`, 'zero char 1:5 ']);
  assert.equal(b2, a);
  // Only an xattr changed: the tree comparison still sees it.
  fs.cpSync(root, host, { recursive: true, force: true });
  fs.rmSync(path.join(host, 'zero'));
  applyMeta([{ op: 'mknod', path: path.join(host, 'zero'), mode: fs.constants.S_IFCHR | 0o666, major: 1, minor: 5 }]);
  fs.utimesSync(path.join(host, 'cap'), 100, 100);
  fs.utimesSync(path.join(host, 'zero'), 100, 100);
  const d = await collect(diffTrees(host, root, { xattrs: { lower: readXattrs(host), upper: xattrs } }));
  assert.equal(d, [`cap file 0:0 security.capability=${cap.toString('hex')}`], 'the lower copy lacks the capability (cpSync drops xattrs)');
});

test.run();
