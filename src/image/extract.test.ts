/** Hostile-archive fixtures, each named after the attack, plus the ordinary paths. */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import path_ from 'node:path';
import { extractTar, ArchiveError, checkName } from './extract.js';
import { detectArchive } from './decompress.js';
import { encodeHeader, END_OF_ARCHIVE } from './tar.js';
import { dirsEach, programUnavailable, tarOf, testUnless } from '../testutil/index.js';

const dirs = dirsEach(['root', 'host'], 'tsb-x');
const archive = tarOf;

/** xorshift32 from `seed`: the same numbers below `n` every run. */
function xorshift(seed: number): (n: number) => number {
  return (n) => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
}

const run = (b: Buffer, opts = {}) => extractTar(Readable.from([b]), dirs.root, opts);
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
  const st = fs.statSync(path.join(dirs.root, 'd/f'));
  assert.equal([st.mode & 0o7777, st.uid, st.gid, st.mtimeMs / 1000], [0o4755, 7, 8, 1700000000]);
  assert.is(fs.statSync(path.join(dirs.root, 'd')).mode & 0o7777, 0o750);
  assert.is(fs.readlinkSync(path.join(dirs.root, 'd/l')), 'f');
  assert.is(fs.statSync(path.join(dirs.root, 'd/h')).ino, st.ino);
  assert.is(fs.statSync(path.join(dirs.root, 'd')).mtimeMs / 1000, 1700000000, 'directory times are set after their contents');
});

test('files get the archive\'s owner and mode whatever open(2) gave them: the umask, a set-group-id parent, a parent changed mid-archive', async () => {
  const modes = [0o644, 0o666, 0o777, 0o600, 0o000, 0o4755, 0o2755, 0o1777];
  await run(archive([
    { name: 'p', type: 'dir', mode: 0o755 },
    ...modes.map((mode, i) => ({ name: `p/m${i}`, mode })),
    ...modes.map((mode, i) => ({ name: `p/again${i}`, mode })),
    { name: 'p/owned', uid: 7, gid: 8 },
    { name: 'p/owned2', uid: 7, gid: 8 },
    { name: 'p/root', uid: 0, gid: 0 },
    // Files made in a set-group-id directory of group 1234 are born in that group.
    { name: 'g', type: 'dir', mode: 0o2775, uid: 0, gid: 1234 },
    { name: 'g/a', uid: 0, gid: 0 },
    { name: 'g/b', uid: 0, gid: 0 },
    { name: 'g/c', uid: 0, gid: 1234, mode: 0o644 },
    // `p` becomes such a directory later in the archive: what held for it before no longer does.
    { name: 'p', type: 'dir', mode: 0o2775, uid: 0, gid: 1234 },
    { name: 'p/late', uid: 0, gid: 0 },
    // The same through another name for a directory: `s` is a symlink to `t`, which changes as `t`.
    { name: 't', type: 'dir', mode: 0o755 },
    { name: 's', type: 'symlink', linkname: 't' },
    { name: 's/early', uid: 0, gid: 0 },
    { name: 't', type: 'dir', mode: 0o2775, uid: 0, gid: 1234 },
    { name: 's/later', uid: 0, gid: 0 },
  ]));
  const of = (n: string) => {
    const st = fs.lstatSync(path.join(dirs.root, n));
    return [st.mode & 0o7777, st.uid, st.gid];
  };
  modes.forEach((mode, i) => {
    assert.equal(of(`p/m${i}`), [mode, 0, 0], `p/m${i}`);
    assert.equal(of(`p/again${i}`), [mode, 0, 0], `p/again${i}`);
  });
  assert.equal(of('p/owned'), [0o644, 7, 8]);
  assert.equal(of('p/owned2'), [0o644, 7, 8]);
  assert.equal(of('p/root'), [0o644, 0, 0]);
  assert.equal(of('g/a'), [0o644, 0, 0]);
  assert.equal(of('g/b'), [0o644, 0, 0]);
  assert.equal(of('g/c'), [0o644, 0, 1234]);
  assert.equal(of('p/late'), [0o644, 0, 0]);
  assert.equal(of('t/early'), [0o644, 0, 0]);
  assert.equal(of('t/later'), [0o644, 0, 0]);
  // A name taken before (replaced on EEXIST) is made afresh with the same care.
  await run(archive([{ name: 'p/m0', mode: 0o640, uid: 3, gid: 4 }, { name: 'p/m1', mode: 0o644 }]));
  assert.equal(of('p/m0'), [0o640, 3, 4]);
  assert.equal(of('p/m1'), [0o644, 0, 0]);
});

test('names that are not UTF-8 are created byte for byte (files, directories, link targets); UTF-8 names as before', async () => {
  const raw = (...b: (string | number[])[]) => Buffer.concat(b.map((x) => (typeof x === 'string' ? Buffer.from(x) : Buffer.from(x))));
  const dir = raw('d', [0xff]);
  const file = raw('d', [0xff], '/f', [0xfe]);
  const h = { mode: 0o644, uid: 0, gid: 0, mtime: 1700000000, size: 0 };
  await run(Buffer.concat([
    encodeHeader({ ...h, name: dir, type: 'dir', mode: 0o755 }),
    encodeHeader({ ...h, name: file, type: 'file', size: 2 }),
    Buffer.from('hi'),
    Buffer.alloc(510),
    encodeHeader({ ...h, name: 'l', type: 'symlink', linkname: file }),
    encodeHeader({ ...h, name: 'h', type: 'hardlink', linkname: file }),
    encodeHeader({ ...h, name: 'café', type: 'file' }),
    END_OF_ARCHIVE,
  ]));
  const root = Buffer.from(dirs.root + '/');
  assert.is(fs.readFileSync(Buffer.concat([root, file]), 'utf8'), 'hi');
  assert.ok(fs.readlinkSync(Buffer.concat([root, raw('l')]), { encoding: 'buffer' }).equals(file), 'the link target keeps its bytes');
  assert.is(fs.statSync(Buffer.concat([root, raw('h')])).ino, fs.statSync(Buffer.concat([root, file])).ino);
  assert.ok(fs.existsSync(path.join(dirs.root, 'café')));
});

test('entry names: the usual ones taken as they are, every other resolved as before (200,000 random names)', () => {
  // The resolution every name went through before the usual ones were taken as they are.
  const reference = (raw: string): string | Error => {
    let depth = 0;
    for (const p of raw.split('/').filter((x) => x !== '' && x !== '.')) {
      depth += p === '..' ? -1 : 1;
      if (depth < 0) return new Error('escapes');
    }
    return path_.posix.normalize('/' + raw.replace(/^\.\/+/, '')).slice(1);
  };
  const pieces = ['a', 'bc', '.', '..', '/', '//', './', '../', '.wh.x', 'a..b', '...', ' '];
  const rand = xorshift(2463534242);
  for (let i = 0; i < 200000; i++) {
    let raw = '';
    for (let k = rand(7); k >= 0; k--) raw += pieces[rand(pieces.length)];
    const want = reference(raw);
    let got: string | Error;
    try {
      got = checkName(raw);
    } catch (e) {
      got = e instanceof ArchiveError ? new Error('escapes') : (e as Error);
    }
    assert.equal(got instanceof Error ? 'escapes' : got, want instanceof Error ? 'escapes' : want, JSON.stringify(raw));
  }
  for (const [raw, want] of [['./usr/bin/x', 'usr/bin/x'], ['usr/lib/', 'usr/lib/'], ['./', ''], ['a/./b', 'a/b'], ['a//b/', 'a/b/'], ['/etc/x', 'etc/x'], ['a/../b', 'b']]) {
    assert.is(checkName(raw!), want, raw);
  }
});

test('dotdot-escape: "../" that leaves the dirs.root is refused', async () => {
  await rejects(run(archive([{ name: '../../' + path.basename(dirs.host) + '/pwned', body: 'x' }])), /escapes the destination/);
  assert.equal(fs.readdirSync(dirs.host), []);
});

test('absolute-name: "/etc/x" lands inside the root', async () => {
  await run(archive([{ name: '/etc/abs', body: 'x' }]));
  assert.is(fs.readFileSync(path.join(dirs.root, 'etc/abs'), 'utf8'), 'x');
});

test('symlink-then-file: a planted symlink cannot redirect a later write outside', async () => {
  await run(archive([
    { name: 'escape', type: 'symlink', linkname: dirs.host },
    { name: 'escape/pwned', body: 'x' },
    { name: 'rel', type: 'symlink', linkname: '../../../../../../../../' + dirs.host },
    { name: 'rel/pwned2', body: 'y' },
  ]));
  assert.equal(fs.readdirSync(dirs.host), [], 'the dirs.host directory is untouched');
  assert.is(fs.readFileSync(path.join(dirs.root, dirs.host, 'pwned'), 'utf8'), 'x');
});

test('symlink-in-root: a symlink already in the dirs.root is resolved inside it', async () => {
  fs.symlinkSync(dirs.host, path.join(dirs.root, 'pre'));
  await run(archive([{ name: 'pre/file', body: 'x' }]));
  assert.equal(fs.readdirSync(dirs.host), []);
});

test('overwrite-symlink: a file entry replaces a symlink instead of writing through it', async () => {
  fs.writeFileSync(path.join(dirs.host, 'target'), 'original');
  await run(archive([{ name: 'victim', type: 'symlink', linkname: path.join(dirs.host, 'target') }, { name: 'victim', body: 'new' }]));
  assert.is(fs.readFileSync(path.join(dirs.host, 'target'), 'utf8'), 'original');
  assert.is(fs.readFileSync(path.join(dirs.root, 'victim'), 'utf8'), 'new');
});

test('an entry whose name is taken replaces what is there (created first, replaced on EEXIST); a directory over a directory keeps it', async () => {
  const at = (p: string) => path.join(dirs.root, p);
  fs.mkdirSync(at('wasdir/sub'), { recursive: true });
  fs.writeFileSync(at('wasdir/sub/old'), 'old');
  for (const f of ['wasfile', 'forlink', 'forhard', 'keep']) fs.writeFileSync(at(f), f);
  fs.mkdirSync(at('kept'));
  fs.writeFileSync(at('kept/inside'), 'stays');
  await run(archive([
    { name: 'wasdir', body: 'a file now' },
    { name: 'wasfile', type: 'dir', mode: 0o700 },
    { name: 'wasfile/child', body: 'under the new directory' },
    { name: 'forlink', type: 'symlink', linkname: 'keep' },
    { name: 'forhard', type: 'hardlink', linkname: 'keep' },
    { name: 'kept', type: 'dir', mode: 0o711 },
    { name: 'kept/new', body: 'beside' },
  ]));
  assert.is(fs.readFileSync(at('wasdir'), 'utf8'), 'a file now');
  assert.ok(fs.lstatSync(at('wasfile')).isDirectory());
  assert.is(fs.statSync(at('wasfile')).mode & 0o7777, 0o700);
  assert.is(fs.readFileSync(at('wasfile/child'), 'utf8'), 'under the new directory');
  assert.is(fs.readlinkSync(at('forlink')), 'keep');
  assert.is(fs.statSync(at('forhard')).ino, fs.statSync(at('keep')).ino);
  assert.is(fs.readFileSync(at('kept/inside'), 'utf8'), 'stays', 'a directory entry over a directory merges into it');
  assert.is(fs.readFileSync(at('kept/new'), 'utf8'), 'beside');
  assert.is(fs.statSync(at('kept')).mode & 0o7777, 0o711);
});

test('a file over a directory that an earlier entry of the same archive filled is replaced, and later entries resolve afresh', async () => {
  await run(archive([
    { name: 'x', type: 'dir' },
    { name: 'x/y', body: 'first' },
    { name: 'x', body: 'now a file' },
    { name: 'z/w', body: 'elsewhere' },
  ]));
  assert.is(fs.readFileSync(path.join(dirs.root, 'x'), 'utf8'), 'now a file');
  assert.is(fs.readFileSync(path.join(dirs.root, 'z/w'), 'utf8'), 'elsewhere');
});

test('hardlink-to-host: a hard link may only point at a file inside the root', async () => {
  fs.writeFileSync(path.join(dirs.host, 'secret'), 's');
  await rejects(run(archive([{ name: 'hl', type: 'hardlink', linkname: path.join(dirs.host, 'secret') }])), /hard link to .* not a file inside the destination/);
  await rejects(run(archive([{ name: 'hl2', type: 'hardlink', linkname: '../../../../' + dirs.host + '/secret' }])), /escapes the destination/);
  assert.is(fs.statSync(path.join(dirs.host, 'secret')).nlink, 1);
});

test('absurd-size: a header claiming a terabyte-scale entry is refused', async () => {
  const h = encodeHeader({ name: 'big', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, size: 2 ** 41 });
  await rejects(run(Buffer.concat([h, Buffer.alloc(512), END_OF_ARCHIVE])), /absurd sizes|truncated|invalid tar/);
});

test('truncated-archive: an entry shorter than its header says is an error', async () => {
  const b = archive([{ name: 'f', body: 'x'.repeat(2000) }]);
  await rejects(run(b, {}).then(() => run(b.subarray(0, 1024))), /truncated|invalid tar/);
});

test('a large file (written on the thread pool, one write in flight) arrives byte for byte from small pieces; truncated, it is an error', async () => {
  // 9 MiB + 3 bytes in 16 KiB pieces, as gunzip hands them over: batches, a last partial batch, odd sizes.
  const body = Buffer.alloc((9 << 20) + 3);
  for (let i = 0; i + 4 <= body.length; i += 4096) body.writeUInt32BE(i, i);
  const b = archive([{ name: 'big', body }, { name: 'after', body: 'ok' }]);
  const pieces: Buffer[] = [];
  for (let i = 0; i < b.length; i += 16 << 10) pieces.push(b.subarray(i, i + (16 << 10)));
  await extractTar(Readable.from(pieces), dirs.root);
  assert.ok(fs.readFileSync(path.join(dirs.root, 'big')).equals(body));
  assert.is(fs.readFileSync(path.join(dirs.root, 'after'), 'utf8'), 'ok');
  fs.rmSync(path.join(dirs.root, 'big'));
  fs.rmSync(path.join(dirs.root, 'after'));
  const fds = fs.readdirSync('/proc/self/fd').length;
  await rejects(extractTar(Readable.from([b.subarray(0, 512 + (5 << 20))]), dirs.root), /truncated/);
  assert.is(fs.readdirSync('/proc/self/fd').length, fds, 'no descriptor left open by a failed large write');
});

test('layer mode: whiteouts delete and opaque markers clear lower content', async () => {
  fs.mkdirSync(path.join(dirs.root, 'dir/sub'), { recursive: true });
  fs.writeFileSync(path.join(dirs.root, 'dir/old'), 'o');
  fs.writeFileSync(path.join(dirs.root, 'dir/sub/x'), 'x');
  fs.writeFileSync(path.join(dirs.root, 'gone'), 'g');
  await run(archive([
    { name: '.wh.gone' },
    { name: 'dir', type: 'dir', mode: 0o755 },
    { name: 'dir/.wh..wh..opq' },
    { name: 'dir/new', body: 'n' },
  ]), { whiteouts: true });
  assert.not.ok(fs.existsSync(path.join(dirs.root, 'gone')));
  assert.equal(fs.readdirSync(path.join(dirs.root, 'dir')), ['new']);
});

test('outside layer mode .wh. names are ordinary files', async () => {
  await run(archive([{ name: '.wh.keep', body: 'k' }]));
  assert.ok(fs.existsSync(path.join(dirs.root, '.wh.keep')));
});

for (const [prog, kind, pkg] of [['gzip', 'gzip', 'gzip'], ['bzip2', 'bzip2', 'bzip2'], ['xz', 'xz', 'xz-utils'], ['zstd', 'zstd', 'zstd']] as const) {
  testUnless(programUnavailable(prog, ['--version'], pkg), `archives compressed with ${kind} are detected by content`, async () => {
    const src = path.join(dirs.host, `${kind}.tar`);
    fs.writeFileSync(src, archive([{ name: 'f', body: 'x' }]));
    const r = spawnSync(prog, ['-kc', src], { maxBuffer: 1 << 20 });
    assert.is(r.status, 0, String(r.stderr));
    const f = path.join(dirs.host, `a.tar.${kind}`);
    fs.writeFileSync(f, r.stdout);
    assert.is(await detectArchive(f), kind, kind);
  });
}

test('an uncompressed tar is an archive; text, and compressed text, are not', async () => {
  const src = path.join(dirs.host, 'a.tar');
  fs.writeFileSync(src, archive([{ name: 'f', body: 'x' }]));
  assert.is(await detectArchive(src), 'none');
  const notTar = path.join(dirs.host, 'plain.txt');
  fs.writeFileSync(notTar, 'just text '.repeat(100));
  assert.is(await detectArchive(notTar), undefined);
  const gzText = path.join(dirs.host, 'text.gz');
  fs.writeFileSync(gzText, spawnSync('gzip', ['-c', notTar]).stdout);
  assert.is(await detectArchive(gzText), undefined, 'a compressed non-tar is not an archive');
});

test('without the helper, devices are skipped with a warning, never silently', async () => {
  const warnings: string[] = [];
  await run(archive([{ name: 'null', type: 'char', mode: 0o666, devmajor: 1, devminor: 3 }, { name: 'f', body: 'x', xattrs: { 'user.a': Buffer.from('1') } }]), { onWarning: (w: string) => warnings.push(w) });
  assert.not.ok(fs.existsSync(path.join(dirs.root, 'null')));
  assert.match(warnings.join('\n'), /skipping char "null"/);
  assert.match(warnings.join('\n'), /extended attributes in the archive are not applied/);
});

/** Every entry under `root`: name, type, mode, owner, times, link count, bytes or link target. */
function listing(root: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const n of fs.readdirSync(path.join(root, rel)).sort()) {
      const r = rel ? `${rel}/${n}` : n;
      const st = fs.lstatSync(path.join(root, r));
      const what = st.isSymbolicLink() ? `-> ${fs.readlinkSync(path.join(root, r))}` : st.isFile() ? fs.readFileSync(path.join(root, r), 'latin1') : 'dir';
      // A time the archive did not give (a directory it changed but did not name) is the moment of the run.
      const t = st.mtimeMs > Date.now() - 86400e3 ? 'now' : st.mtimeMs;
      out.push(`${r} ${(st.mode >>> 0).toString(8)} ${st.uid}:${st.gid} ${t} ${st.nlink} ${what}`);
      if (st.isDirectory()) walk(r);
    }
  };
  walk('');
  return out;
}

test('small files made in batches come out as made one by one: names taken, replaced, linked, whited out, 3,000 random entries', async () => {
  type Case = { pre?: (root: string) => void; entries: Parameters<typeof archive>[0]; whiteouts?: boolean };
  const rnd = xorshift(88172645);
  const many: Case['entries'] = [];
  for (let i = 0; i < 3000; i++) {
    const r = rnd(100);
    const name = `d${rnd(8)}/${rnd(3) ? '' : `s${rnd(3)}/`}f${rnd(400)}`;
    if (r < 80) many.push({ name, body: `${i}`.repeat(rnd(40)), mode: [0o644, 0o600, 0o755, 0o4755, 0o2711, 0o1777][rnd(6)], uid: rnd(3), gid: rnd(3), mtime: 1600000000 + i });
    else if (r < 85) many.push({ name, type: 'symlink', linkname: `f${rnd(400)}` });
    else if (r < 90) many.push({ name: name.slice(0, name.lastIndexOf('/')), type: 'dir', mode: [0o755, 0o2775][rnd(2)], gid: rnd(3) });
    else if (r < 95) many.push({ name: name.replace(/f(\d+)$/, '.wh.f$1'), whiteoutOnly: true } as never);
    else {
      const files = many.filter((e) => (e.type ?? 'file') === 'file' && e.body !== undefined);
      if (files.length) many.push({ name: `${name}x`, type: 'hardlink', linkname: files[files.length - 1]!.name });
    }
  }
  const cases: Record<string, Case> = {
    'a name taken twice, by a file, a symlink and a file again': { entries: [{ name: 'a', body: '1' }, { name: 'a', body: '22', mode: 0o600 }, { name: 'a', type: 'symlink', linkname: 'b' }, { name: 'a', body: '333' }] },
    'files over a symlink out of the root and over a directory': {
      pre: (root) => {
        fs.symlinkSync(dirs.host, path.join(root, 'out'));
        fs.mkdirSync(path.join(root, 'dir/sub'), { recursive: true });
        fs.writeFileSync(path.join(root, 'dir/sub/old'), 'old');
      },
      entries: [{ name: 'x', body: 'x' }, { name: 'out', body: 'not through' }, { name: 'y', body: 'y' }, { name: 'dir', body: 'a file now' }, { name: 'z', body: 'z' }],
    },
    'a hard link to a file just queued, then the file replaced': { entries: [{ name: 'f', body: 'first' }, { name: 'h', type: 'hardlink', linkname: 'f' }, { name: 'f', body: 'second' }] },
    'whiteouts and an opaque directory after files of the same layer': {
      whiteouts: true,
      pre: (root) => {
        fs.mkdirSync(path.join(root, 'o'));
        fs.writeFileSync(path.join(root, 'o/lower'), 'lower');
      },
      entries: [{ name: 'w', body: 'w' }, { name: '.wh.w' }, { name: 'o/new', body: 'new' }, { name: 'o/.wh..wh..opq' }, { name: 'w', body: 'again' }],
    },
    'a directory cached by an earlier file, then replaced by a file': {
      pre: (root) => fs.mkdirSync(path.join(root, 'f')),
      entries: [{ name: 'f/y', body: 'y' }, { name: 'f', body: 'file' }, { name: 'g', body: 'g' }],
    },
    'a file, then a file under its name': { entries: [{ name: 'a', body: 'a' }, { name: 'a/b', body: 'b' }, { name: 'c', body: 'c' }] },
    'a file where a later entry needs a directory': { entries: [{ name: 'p', body: 'p' }, { name: 'q', body: 'q' }, { name: 'p', type: 'dir' }, { name: 'p/r', body: 'r' }] },
    '3,000 random entries': { entries: many.map((e) => ((e as { whiteoutOnly?: boolean }).whiteoutOnly ? { name: e.name } : e)), whiteouts: true },
  };
  const outcome = async (root: string, c: Case) => {
    c.pre?.(root);
    const err = await extractTar(Readable.from([archive(c.entries)]), root, { whiteouts: c.whiteouts }).then(() => '', (e: Error) => e.message);
    return [err, ...listing(root)];
  };
  for (const [name, c] of Object.entries(cases)) {
    const one = fs.mkdtempSync(path.join(dirs.host, 'one-'));
    const batched = fs.mkdtempSync(path.join(dirs.host, 'batch-'));
    process.env.TSBUILD_FILE_BATCH = '0';
    let want: string[];
    try {
      want = await outcome(one, c);
    } finally {
      delete process.env.TSBUILD_FILE_BATCH;
    }
    assert.equal(await outcome(batched, c), want, name);
    assert.ok(want.length > 1, `${name}: something was made`);
  }
  assert.equal(fs.readdirSync(dirs.host).filter((n) => !n.startsWith('one-') && !n.startsWith('batch-')), [], 'nothing written outside the roots');
});

test.run();
