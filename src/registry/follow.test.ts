/** Reading a blob while it downloads: what is read is what was written, in order; a restart and a failure are said. */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Writeback } from '../fsutil/index.js';
import { droppableTmpdir, pageCacheBytes, tmpdir } from '../testutil/index.js';
import { BlobFollower } from './follow.js';

const D = 'sha256:' + 'a'.repeat(64);

async function rejection(p: Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await p;
  } catch (e) {
    return e as Error & { code?: string };
  }
  assert.unreachable('expected a rejection');
  throw new Error('unreachable');
}

async function readAll(r: NodeJS.ReadableStream): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

test('a reader opened before the download begins gets every byte as it lands, then the blob after its rename', async () => {
  const dir = tmpdir('tsb-follow-');
  try {
    const f = new BlobFollower();
    const reading = readAll(f.open(D));
    const partial = path.join(dir, 'partial');
    const fh = fs.openSync(partial, 'w');
    f.begin(D, partial, 0);
    let written = 0;
    for (const part of ['hello ', 'while ', 'it ', 'downloads']) {
      fs.writeSync(fh, part);
      written += part.length;
      f.progress(D, written);
      await new Promise((r) => setTimeout(r, 5));
    }
    fs.closeSync(fh);
    const final = path.join(dir, 'blob');
    fs.renameSync(partial, final);
    f.done(D, final, written);
    assert.is((await reading).toString(), 'hello while it downloads');
    // Opened after it is complete: read from where it went.
    assert.is((await readAll(f.open(D))).toString(), 'hello while it downloads');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a large blob read as it downloads leaves none of its pages cached once complete; the reader got every byte', async () => {
  const dir = droppableTmpdir('tsb-follow-');
  if (!dir) return;
  try {
    const f = new BlobFollower();
    const reading = readAll(f.open(D));
    const partial = path.join(dir, 'partial');
    const fd = fs.openSync(partial, 'w');
    // As fetchBlob writes: writeback starts behind the writes, the follower drops what it read.
    const behind = new Writeback(fd);
    f.begin(D, partial, 0);
    const h = crypto.createHash('sha256');
    for (let i = 1; i <= 32; i++) {
      const b = crypto.randomBytes(1 << 20);
      h.update(b);
      fs.writeSync(fd, b);
      behind.written(i << 20);
      f.progress(D, i << 20);
      await new Promise((r) => setImmediate(r));
    }
    // Settled before the close: advice still queued would reach whatever file reuses the number.
    await behind.done();
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    const final = path.join(dir, 'blob');
    fs.renameSync(partial, final);
    f.done(D, final, 32 << 20);
    const got = await reading;
    assert.is(crypto.createHash('sha256').update(got).digest('hex'), h.digest('hex'));
    assert.is(pageCacheBytes(final), 0);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a download that starts over fails the readers that went past its new start; complete() waits for the blob; a failure reaches readers', async () => {
  const dir = tmpdir('tsb-follow-');
  try {
    const f = new BlobFollower();
    const partial = path.join(dir, 'partial');
    fs.writeFileSync(partial, 'first try');
    f.begin(D, partial, 0);
    f.progress(D, 9);
    const r = f.open(D);
    const got = readAll(r);
    got.catch(() => undefined);
    await new Promise((res) => setTimeout(res, 5));
    f.begin(D, partial, 0); // the server ignored the Range: the file is written again from 0
    assert.is((await rejection(got)).code, 'FOLLOW_RESTARTED');
    let completed = false;
    const waiting = f.complete(D).then(() => (completed = true));
    await new Promise((res) => setTimeout(res, 5));
    assert.not.ok(completed);
    f.done(D, partial, 9);
    await waiting;
    assert.ok(completed);

    const g = new BlobFollower();
    const reader = readAll(g.open(D));
    reader.catch(() => undefined);
    g.failed(D, new Error('connection refused'));
    assert.match((await rejection(reader)).message, /connection refused/);
    assert.match((await rejection(g.complete(D))).message, /connection refused/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
