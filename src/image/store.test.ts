/** The content store's names: one record per tag, bare-name aliases and registry ports not confused. */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { droppableTmpdir, pageCacheBytes, tmpdir } from '../testutil/index.js';
import { ContentStore, STORED } from './store.js';

test('a pulled localhost:5000/x:latest is one image, not two (the alias for skopeo is not listed)', async () => {
  const root = tmpdir('tsb-cs-');
  try {
    const s = new ContentStore(root);
    const blob = await s.writeBlob(Buffer.from('{}'));
    const desc = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: blob.digest, size: blob.size };
    s.tag('localhost:5000/busybox:latest', desc);
    s.tag('app:1', desc);
    const names = s.list().map((r) => r.name).sort();
    assert.equal(names, ['localhost:5000/busybox:latest', 'app:1'].sort());
    const idx = JSON.parse(fs.readFileSync(`${root}/index.json`, 'utf8')) as { manifests: { annotations: Record<string, string> }[] };
    assert.ok(idx.manifests.some((m) => m.annotations['org.opencontainers.image.ref.name'] === 'localhost:5000/busybox'), 'the alias is still there for skopeo');
    const rec = s.list().find((r) => r.name === 'app:1')!;
    assert.ok(Date.now() - Date.parse(rec.manifest.annotations![STORED]!) < 60_000, 'when it was named in this store');
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('a cache-hit rebuild writes nothing: an intact small blob is not rewritten, a damaged one is; a name already on the manifest keeps its entry and time', async () => {
  const root = tmpdir('tsb-cs-');
  try {
    const s = new ContentStore(root);
    const blob = await s.writeBlob('{"a":1}');
    const file = s.blobPath(blob.digest);
    const ino = fs.statSync(file).ino;
    assert.equal(await s.writeBlob('{"a":1}'), blob);
    assert.is(fs.statSync(file).ino, ino, 'not rewritten');
    fs.writeFileSync(file, '{"a":2}');
    assert.equal(await s.writeBlob('{"a":1}'), blob);
    assert.is(fs.readFileSync(file, 'utf8'), '{"a":1}', 'a damaged copy is replaced');
    const desc = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: blob.digest, size: blob.size };
    s.tag('app:latest', desc);
    const before = fs.readFileSync(`${root}/index.json`, 'utf8');
    const idxIno = fs.statSync(`${root}/index.json`).ino;
    await new Promise((r) => setTimeout(r, 5));
    s.tag('app:latest', desc);
    assert.is(fs.statSync(`${root}/index.json`).ino, idxIno, 'index.json not rewritten');
    assert.is(fs.readFileSync(`${root}/index.json`, 'utf8'), before, 'the stored time is the first one');
    const other = await s.writeBlob('{"b":1}');
    s.tag('app:latest', { ...desc, digest: other.digest, size: other.size });
    assert.is(s.list().find((r) => r.name === 'app:latest')!.manifest.digest, other.digest, 'a new manifest moves the name');
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('a large blob written in many pieces, its writeback started behind them, is stored intact and stays cached for the push that reads it next', async () => {
  const root = droppableTmpdir('tsb-cs-');
  if (!root) return;
  try {
    const s = new ContentStore(root);
    const h = crypto.createHash('sha256');
    async function* pieces() {
      // A layer's shape: many pieces, some small.
      for (let i = 0; i < 40; i++) {
        const b = crypto.randomBytes(i % 2 ? 512 : (1 << 20) - 512);
        h.update(b);
        yield b;
      }
    }
    const blob = await s.writeBlob(pieces());
    assert.is(blob.digest, 'sha256:' + h.digest('hex'));
    assert.is(blob.size, 20 << 20);
    assert.is(pageCacheBytes(s.blobPath(blob.digest)), 20 << 20);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('openBlob verifies as it streams: a flipped byte ends the stream with the blob and its file named', async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tsb-cs-'));
  try {
    const cs = new ContentStore(root);
    const { digest } = await cs.writeBlob(Buffer.alloc(3 << 20, 7));
    let n = 0;
    for await (const c of cs.openBlob(digest)) n += (c as Buffer).length;
    assert.is(n, 3 << 20);
    assert.is(await cs.checkBlob(digest), undefined);
    const file = cs.blobPath(digest);
    const b = fs.readFileSync(file);
    b[(2 << 20) + 5] ^= 1;
    fs.writeFileSync(file, b);
    const bad = await cs.checkBlob(digest);
    assert.ok(bad && (bad as { code?: string }).code === 'BLOB_CORRUPT');
    assert.match(bad!.message, `blob ${digest} in the store is corrupt: ${file} hashes to sha256:`);
    let part = 0;
    for await (const c of cs.openBlob(digest, { start: 0, end: 99 })) part += (c as Buffer).length;
    assert.is(part, 100, 'a range is read as it is (the receiver checks the whole)');
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test.run();
