import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Readable } from 'node:stream';
import { encodeHeader, padding, END_OF_ARCHIVE } from './tar.js';
import { num, printable, readTar, TarFormatError, type ReadHeader } from './tarread.js';
import { ArchiveError } from './extract.js';

async function readAll(chunks: Buffer[], chunkSize = 7): Promise<{ h: ReadHeader; data: string }[]> {
  const all = Buffer.concat(chunks);
  // Small chunks: every field and body crosses chunk boundaries.
  const pieces: Buffer[] = [];
  for (let i = 0; i < all.length; i += chunkSize) pieces.push(all.subarray(i, i + chunkSize));
  const out: { h: ReadHeader; data: string }[] = [];
  for await (const e of readTar(Readable.from(pieces))) {
    const parts: Buffer[] = [];
    for await (const c of e.body) parts.push(c);
    out.push({ h: e.header, data: Buffer.concat(parts).toString() });
  }
  return out;
}

test('reads what the writer writes: long names, PAX, binary xattrs, devices, big ids', async () => {
  const cap = Buffer.from('0100000200200000000000000000000000000000', 'hex'); // has NUL bytes
  const long = 'd/' + 'x'.repeat(150) + '/ü.txt';
  const entries = await readAll([
    encodeHeader({ name: 'dir', type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0, mtime: 5 }),
    encodeHeader({ name: long, type: 'file', mode: 0o4755, uid: 3_000_000, gid: 7, size: 5, mtime: 9, xattrs: { 'security.capability': cap, 'user.note': Buffer.from('a=b\nc') } }),
    Buffer.from('hello'),
    padding(5),
    encodeHeader({ name: 'dev/null', type: 'char', mode: 0o666, uid: 0, gid: 0, size: 0, mtime: 0, devmajor: 1, devminor: 3 }),
    encodeHeader({ name: 'l', type: 'symlink', mode: 0o777, uid: 0, gid: 0, size: 0, mtime: 0, linkname: 'y'.repeat(200) }),
    END_OF_ARCHIVE,
    Buffer.alloc(4096), // record padding after the end marker
  ]);
  assert.is(entries.length, 4);
  assert.is(entries[0]!.h.name, 'dir/');
  assert.is(entries[0]!.h.type, 'dir');
  const f = entries[1]!;
  assert.is(f.h.name, long);
  assert.is(f.h.uid, 3_000_000);
  assert.is(f.h.mode, 0o4755);
  assert.is(f.data, 'hello');
  assert.ok(f.h.xattrs['security.capability']!.equals(cap), 'binary xattr value survives (NULs included)');
  assert.is(f.h.xattrs['user.note']!.toString(), 'a=b\nc');
  assert.equal([entries[2]!.h.type, entries[2]!.h.devmajor, entries[2]!.h.devminor], ['char', 1, 3]);
  assert.is(entries[3]!.h.linkname, 'y'.repeat(200));
});

test('GNU long names and base-256 numbers (as GNU tar and Go write them)', async () => {
  const name = 'n'.repeat(300);
  const gnu = encodeHeader({ name: '././@LongLink', type: 'file', mode: 0o644, uid: 0, gid: 0, size: name.length + 1, mtime: 0 });
  gnu.write('L', 156);
  let sum = 0;
  gnu.fill(' ', 148, 156);
  for (let i = 0; i < 512; i++) sum += gnu[i]!;
  gnu.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'ascii');
  const main = encodeHeader({ name: 'short', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 1, mtime: 0 });
  // uid in base-256
  main.fill(0, 108, 116);
  main[108] = 0x80;
  main.writeUInt32BE(5_000_000, 112);
  main.fill(' ', 148, 156);
  sum = 0;
  for (let i = 0; i < 512; i++) sum += main[i]!;
  main.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'ascii');
  const e = await readAll([gnu, Buffer.from(name + '\0'), padding(name.length + 1), main, Buffer.from('z'), padding(1), END_OF_ARCHIVE]);
  assert.is(e[0]!.h.name, name);
  assert.is(e[0]!.h.uid, 5_000_000);
  assert.is(e[0]!.data, 'z');
});

test('binary-garbage: an error quoting a header field escapes its bytes and caps its length', async () => {
  // A header with a valid checksum whose size field holds terminal escapes and high bytes.
  const junk = encodeHeader({ name: 'f', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 1, mtime: 0 });
  junk.write('\x1b[2J\x07\xff\xfe', 124, 'latin1');
  junk.fill(' ', 148, 156);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += junk[i]!;
  junk.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'ascii');
  const e = await readAll([junk]).then(() => undefined, (x: unknown) => x as Error);
  assert.ok(e, 'refused');
  assert.match(e!.message, /bad size field ".*\\x1b/, e!.message);
  assert.not.match(e!.message, /[\x00-\x1f\x7f-\xff]/, `no raw bytes: ${JSON.stringify(e!.message)}`);
  assert.is(printable('a\x1bb'), 'a\\x1bb');
  assert.is(printable('x'.repeat(40)), `${'x'.repeat(32)}…`);
});

test('hostile or broken input: bad checksum, truncation, absurd extended headers', async () => {
  const good = encodeHeader({ name: 'f', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 10, mtime: 0 });
  const bad = Buffer.from(good);
  bad[0] = 0x67;
  const cases: [Buffer[], RegExp][] = [
    [[bad, Buffer.alloc(512)], /checksum/],
    [[good, Buffer.from('short')], /truncated/],
    [[good.subarray(0, 300)], /end of data inside a header/],
  ];
  const huge = encodeHeader({ name: 'PaxHeaders/x', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 1 << 30, mtime: 0 });
  huge.write('x', 156);
  huge.fill(' ', 148, 156);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += huge[i]!;
  huge.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'ascii');
  cases.push([[huge], /extended header of 1073741824 bytes/]);
  for (const [chunks, why] of cases) {
    try {
      await readAll(chunks);
      assert.unreachable(String(why));
    } catch (e) {
      assert.instance(e, TarFormatError);
      assert.instance(e, ArchiveError);
      assert.match((e as Error).message, why);
    }
  }
});

test('an entry whose body the caller skips does not misalign the next', async () => {
  const chunks = [encodeHeader({ name: 'a', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 1000, mtime: 0 }), Buffer.alloc(1000, 97), padding(1000), encodeHeader({ name: 'b', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 1, mtime: 0 }), Buffer.from('b'), padding(1), END_OF_ARCHIVE];
  const names: string[] = [];
  for await (const e of readTar(Readable.from([Buffer.concat(chunks)]))) {
    names.push(e.header.name);
    for await (const c of e.body) {
      void c;
      break; // abandon half way
    }
  }
  assert.equal(names, ['a', 'b']);
});

test('a body already at hand comes as `data` too, and `body` yields the same bytes; split bodies stream as before, whatever the piece size', async () => {
  const file = (name: string, body: Buffer) => [encodeHeader({ name, type: 'file', mode: 0o644, uid: 0, gid: 0, size: body.length, mtime: 0 }), body, padding(body.length)];
  const big = Buffer.alloc(200_000, 7);
  const archive = Buffer.concat([...file('small', Buffer.from('tiny')), ...file('empty', Buffer.alloc(0)), ...file('big', big), ...file('after', Buffer.from('end')), END_OF_ARCHIVE]);
  for (const pieceSize of [archive.length, 65536, 4096, 513, 7]) {
    const pieces: Buffer[] = [];
    for (let i = 0; i < archive.length; i += pieceSize) pieces.push(archive.subarray(i, i + pieceSize));
    const got: { name: string; data?: string; body: Buffer }[] = [];
    let n = 0;
    for await (const e of readTar(Readable.from(pieces))) {
      // Alternate: use `data` when given for some entries, always read `body` for the others.
      const parts: Buffer[] = [];
      if (!(e.data && n++ % 2 === 0)) for await (const c of e.body) parts.push(c);
      got.push({ name: e.header.name, data: e.data?.toString('latin1'), body: e.data && parts.length === 0 ? e.data : Buffer.concat(parts) });
    }
    assert.equal(got.map((g) => g.name), ['small', 'empty', 'big', 'after'], `piece size ${pieceSize}`);
    assert.is(got[0]!.body.toString(), 'tiny');
    assert.is(got[1]!.body.length, 0);
    assert.ok(got[2]!.body.equals(big), `piece size ${pieceSize}: the large body`);
    assert.is(got[3]!.body.toString(), 'end');
    for (const g of got) if (g.data !== undefined) assert.is(g.data, g.body.toString('latin1'), `${g.name}: data and body agree`);
    if (pieceSize === archive.length) assert.is(got[0]!.data, 'tiny', 'the whole archive in one piece: a small body is at hand');
    if (pieceSize === 513) assert.is(got[0]!.data, undefined, 'a body not yet read in whole streams');
  }
});

test('numeric fields: octal with spaces and NULs read from the bytes, odd whitespace as before, junk refused', () => {
  const field = (text: string, len = 12) => {
    const b = Buffer.alloc(len);
    b.write(text, 'latin1');
    return b;
  };
  const ok: [string, number][] = [
    ['00000000644\0', 0o644],
    ['   644 \0', 0o644],
    ['644', 0o644],
    ['', 0],
    ['        ', 0],
    ['77777777777\0', 0o77777777777],
    ['777777777777', 0o777777777777],
    ['\t644\n', 0o644],
    ['644\0junk', 0o644],
  ];
  for (const [text, want] of ok) assert.is(num(field(text), 0, 12, 'size'), want, JSON.stringify(text));
  for (const bad of ['12a', '1 2', '-1', '8', '0x10', '644 x']) {
    assert.throws(() => num(field(bad), 0, 12, 'size'), (e: unknown) => e instanceof TarFormatError && /bad size field/.test((e as Error).message), JSON.stringify(bad));
  }
  // base-256 (GNU) is unchanged
  const big = Buffer.alloc(12);
  big[0] = 0x80;
  big.writeUIntBE(2 ** 40, 6, 6);
  assert.is(num(big, 0, 12, 'size'), 2 ** 40);
});

test.run();
