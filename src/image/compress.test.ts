import { test } from 'uvu';
import * as assert from 'uvu/assert';
import crypto from 'node:crypto';
import zlib from 'node:zlib';
import { Readable } from 'node:stream';
import { parallelGzip, storedGzip } from './compress.js';

async function gz(data: Buffer, chunk = 100_000, level = 6): Promise<Buffer> {
  const parts: Buffer[] = [];
  const pieces: Buffer[] = [];
  for (let i = 0; i < data.length; i += chunk) pieces.push(data.subarray(i, i + chunk));
  for await (const c of parallelGzip(Readable.from(pieces), level, 256 << 10, 3)) parts.push(c);
  return Buffer.concat(parts);
}

test('parallel gzip: any gunzip reads it back; deterministic; incompressible blocks are stored', async () => {
  const text = Buffer.from(Array.from({ length: 60000 }, (_, i) => `line ${i} text ${i % 13}\n`).join(''));
  const rnd = crypto.randomBytes(700 << 10);
  const mixed = Buffer.concat([text, rnd, text]);
  for (const data of [Buffer.alloc(0), Buffer.from('x'), text, rnd, mixed]) {
    const a = await gz(data);
    assert.ok(zlib.gunzipSync(a).equals(data), `round trip of ${data.length} bytes`);
    assert.ok((await gz(data, 7777)).equals(a), 'the same bytes whatever the input chunking');
    assert.ok((await gz(data, 256 << 10)).equals(a), 'the same bytes from pieces of exactly one block (used without a copy)');
  }
  assert.ok((await gz(text)).length < text.length / 4, 'text compresses');
  const r = await gz(rnd);
  assert.ok(r.length < rnd.length + 1024, 'random data is stored, not inflated by much');
});

test('stored gzip members are valid at block boundaries', () => {
  for (const n of [0, 1, 65535, 65536, 131070, 131071, 200_000]) {
    const b = crypto.randomBytes(n);
    assert.ok(zlib.gunzipSync(storedGzip(b)).equals(b), `${n} bytes`);
  }
});

test.run();
