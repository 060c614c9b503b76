/** Page cache advice: what a followed file keeps in the page cache, measured with fincore; advice never breaks a write. */
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { droppableTmpdir, pageCacheBytes as resident, tmpdir } from '../testutil/index.js';
import { pageCacheAdvice, ReadDrop, Writeback } from './pagecache.js';

const MiB = 1 << 20;

/** Writes `mib` MiB of random bytes in 1 MiB writes, telling `behind` (when given) after each; fsyncs. */
function writeFile(file: string, mib: number, behind?: (fd: number) => Writeback): { fd: number; digest: string; wb?: Writeback } {
  const fd = fs.openSync(file, 'w+');
  const wb = behind?.(fd);
  const h = crypto.createHash('sha256');
  for (let i = 0; i < mib; i++) {
    const b = crypto.randomBytes(MiB);
    h.update(b);
    fs.writeSync(fd, b, 0, b.length, i * MiB);
    wb?.written((i + 1) * MiB);
  }
  fs.fsyncSync(fd);
  return { fd, digest: h.digest('hex'), wb };
}

const digestOf = (file: string) => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');

test('the addon is built and advice is on (npm ci builds it where Node has its headers)', () => {
  assert.equal(pageCacheAdvice(), { on: true });
});

test('a writer keeps its pages (and its bytes); a reader drops what it read a window behind, and all at the end', async () => {
  const dir = droppableTmpdir('tsb-pagecache-');
  if (!dir) return;
  try {
    const f = path.join(dir, 'followed');
    const w = writeFile(f, 40, (fd) => new Writeback(fd));
    await w.wb!.done();
    assert.is(resident(f), 40 * MiB);
    const rd = fs.openSync(f, 'r');
    const r = new ReadDrop(rd);
    r.read(4 * MiB);
    r.read(15 * MiB);
    await r.settle();
    assert.is(resident(f), 40 * MiB, 'less than a window behind the reader: nothing dropped');
    r.read(30 * MiB);
    await r.settle();
    assert.is(resident(f), 18 * MiB, 'what was read more than a window ago went');
    await r.end(40 * MiB);
    assert.is(resident(f), 0);
    fs.closeSync(rd);
    fs.closeSync(w.fd);
    assert.is(digestOf(f), w.digest);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('advice on what has no page cache (a fifo) is given up quietly: nothing throws or rejects, the writes go on', async () => {
  const dir = tmpdir('tsb-pagecache-');
  try {
    const fifo = path.join(dir, 'fifo');
    assert.is(spawnSync('mkfifo', [fifo]).status, 0);
    // Read and write ends in one descriptor: the open does not wait for a reader.
    const fd = fs.openSync(fifo, 'r+');
    const d = new Writeback(fd);
    const r = new ReadDrop(fd);
    for (let i = 1; i <= 40; i++) {
      assert.is(fs.writeSync(fd, Buffer.from('x')), 1);
      fs.readSync(fd, Buffer.alloc(1));
      d.written(i * MiB);
      r.read(i * MiB);
    }
    await d.done();
    await r.end(40 * MiB);
    fs.closeSync(fd);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('TSBUILD_PAGECACHE_ADVICE=0 turns it off and says so', () => {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', `
    import { pageCacheAdvice } from ${JSON.stringify(new URL('./pagecache.js', import.meta.url).href)};
    console.log(JSON.stringify(pageCacheAdvice()));
  `], { env: { ...process.env, TSBUILD_PAGECACHE_ADVICE: '0' }, encoding: 'utf8' });
  assert.equal(JSON.parse(r.stdout), { on: false, reason: 'TSBUILD_PAGECACHE_ADVICE=0' });
});

test.run();
