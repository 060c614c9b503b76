/** Splicing an earlier layer's bytes: every file found by its exact header, read through the window or on its own. */
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { encodeHeader, padding, END_OF_ARCHIVE, type TarHeader } from './tar.js';
import { LayerSplice } from './tarsplice.js';
import { tmpdir } from '../testutil/index.js';

async function all(g: AsyncGenerator<Buffer> | undefined): Promise<Buffer | undefined> {
  if (!g) return undefined;
  const parts: Buffer[] = [];
  for await (const b of g) parts.push(b);
  return Buffer.concat(parts);
}

const header = (name: string, size: number, mtime = 1000): Buffer => encodeHeader({ name, type: 'file', mode: 0o644, uid: 0, gid: 0, size, mtime } as TarHeader);

test('files of every size come back byte for byte, in order, out of order, and across the window', async () => {
  const dir = tmpdir('tsb-splice-');
  try {
    // Small files filling more than one 1 MiB window, an empty one, a long (PAX) name, one larger
    // than the window, and a directory and a symlink, which are not spliced.
    const files: [string, Buffer][] = [];
    for (let i = 0; i < 3000; i++) files.push([`d/f${String(i).padStart(4, '0')}`, Buffer.from(`${i}\n`.repeat(i % 7))]);
    files.push([`long/${'n'.repeat(150)}`, Buffer.from('long name\n')]);
    files.push(['zbig', Buffer.alloc((1 << 20) + 12345, 7)]);
    const parts: Buffer[] = [encodeHeader({ name: 'd', type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0, mtime: 1000 } as TarHeader)];
    for (const [name, body] of files) parts.push(header(name, body.length), body, padding(body.length));
    parts.push(encodeHeader({ name: 'link', type: 'symlink', linkname: 'zbig', mode: 0o777, uid: 0, gid: 0, size: 0, mtime: 1000 } as TarHeader), END_OF_ARCHIVE);
    const layer = path.join(dir, 'layer.tar');
    fs.writeFileSync(layer, Buffer.concat(parts));
    const s = LayerSplice.open(layer)!;
    try {
      for (const [name, body] of files) assert.ok((await all(s.content(name, header(name, body.length))))?.equals(body), name);
      for (const [name, body] of [...files].reverse().slice(0, 200)) assert.ok((await all(s.content(name, header(name, body.length))))?.equals(body), `${name}, backwards`);
      // A different header (another time, another size) or no such file: the caller reads the file.
      assert.is(s.content('d/f0003', header('d/f0003', 6, 2000)), undefined);
      assert.is(s.content('d/f0003', header('d/f0003', 7)), undefined);
      assert.is(s.content('nope', header('nope', 0)), undefined);
      assert.is(s.content('link', header('link', 0)), undefined);
      // Bytes handed out stay as they were while later reads move the window.
      const first = await all(s.content('d/f0001', header('d/f0001', 2)));
      await all(s.content('zbig', header('zbig', (1 << 20) + 12345)));
      await all(s.content('d/f2999', header('d/f2999', files[2999]![1].length)));
      assert.is(first!.toString(), '1\n');
    } finally {
      s.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('an earlier layer cut short: the index stops where it ends, and a file cut in two is an error, not short bytes', async () => {
  const dir = tmpdir('tsb-splice-');
  try {
    const body = Buffer.alloc(5000, 1);
    const whole = Buffer.concat([header('a', 3), Buffer.from('ab\n'), padding(3), header('b', body.length), body, padding(body.length), END_OF_ARCHIVE]);
    const layer = path.join(dir, 'layer.tar');
    fs.writeFileSync(layer, whole);
    const s = LayerSplice.open(layer)!;
    try {
      fs.truncateSync(layer, 1024 + 512 + 1000);
      assert.is((await all(s.content('a', header('a', 3))))!.toString(), 'ab\n');
      try {
        await all(s.content('b', header('b', body.length)));
        assert.unreachable('read a file cut in two');
      } catch (e) {
        assert.match((e as Error).message, /ended inside/);
      }
    } finally {
      s.close();
    }
    const cut = LayerSplice.open(layer)!;
    try {
      assert.is(cut.content('b', header('b', body.length)) === undefined, false, 'b is indexed: its header is whole');
      fs.truncateSync(layer, 1024 + 100);
    } finally {
      cut.close();
    }
    const shorter = LayerSplice.open(layer)!;
    try {
      assert.is(shorter.content('b', header('b', body.length)), undefined);
    } finally {
      shorter.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
