/** WriteBehind: batches in order, one write in flight, what a failure keeps. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { WriteBehind } from './writebehind.js';

/** A fake file: positional writes, each taking a turn of the event loop, short writes on demand. */
function fakeFile(o: { short?: boolean | number; failAt?: number } = {}) {
  const out = Buffer.alloc(1 << 16);
  let inFlight = 0;
  let maxInFlight = 0;
  let writes = 0;
  const write = async (parts: Buffer[], pos: number) => {
    assert.ok(parts.length <= 1024, 'at most IOV_MAX pieces per write');
    const b = Buffer.concat(parts);
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    await new Promise((r) => setTimeout(r, 1));
    inFlight--;
    if (o.failAt !== undefined && writes++ === o.failAt) throw new Error('EIO');
    const n = o.short ? Math.min(b.length, o.short === true ? 3 : o.short) : b.length;
    b.copy(out, pos, 0, n);
    return n;
  };
  return { out, write, max: () => maxInFlight };
}

test('pieces land in order, in batches, one write in flight, short writes continued; onWritten hears each batch', async () => {
  const f = fakeFile({ short: true });
  const heard: number[] = [];
  const w = new WriteBehind(f.write, { start: 5, batch: 10, onWritten: (n) => heard.push(n) });
  const text = 'the quick brown fox jumps over the lazy dog';
  for (let i = 0; i < text.length; i += 4) await w.push(Buffer.from(text.slice(i, i + 4)));
  assert.is(await w.end(), 5 + text.length);
  assert.is(f.out.subarray(5, 5 + text.length).toString(), text);
  assert.is(f.max(), 1);
  assert.equal(heard, [17, 29, 41, 48]);
});

test('a failed write is the error of end(); abandon(true) writes the rest only when nothing before it failed', async () => {
  const f = fakeFile({ failAt: 0 });
  const w = new WriteBehind(f.write, { batch: 4 });
  await w.push(Buffer.from('abcd'));
  await w.push(Buffer.from('ef'));
  await w.abandon(true);
  assert.is(f.out.subarray(0, 6).toString('latin1'), '\0'.repeat(6), 'no hole: nothing after a failed write');

  const g = fakeFile();
  const k = new WriteBehind(g.write, { batch: 4 });
  await k.push(Buffer.from('abcd'));
  await k.push(Buffer.from('ef'));
  await k.abandon(true);
  assert.is(g.out.subarray(0, 6).toString(), 'abcdef', 'what was pushed is kept for a resume');

  const h = fakeFile({ failAt: 1 });
  const e = new WriteBehind(h.write, { batch: 2 });
  const failed = await (async () => {
    for (const p of ['ab', 'cd', 'ef']) await e.push(Buffer.from(p));
    await e.end();
  })().then(() => undefined, (x: unknown) => x);
  assert.match(String(failed), /EIO/);
});

test('a batch goes out as its pieces, many of them, with short writes ending inside a piece', async () => {
  const f = fakeFile({ short: 1001 });
  const w = new WriteBehind(f.write, { batch: 3000 });
  const pieces = Array.from({ length: 2500 }, (_, i) => Buffer.from([i % 251, (i * 7) % 251]));
  for (const p of pieces) await w.push(p);
  await w.push(Buffer.alloc(0));
  assert.is(await w.end(), 5000);
  assert.ok(f.out.subarray(0, 5000).equals(Buffer.concat(pieces)));
});

test.run();
