/** A name on an image index (a multi-platform build): resolution per platform, ids, GC and listing. */
import fs from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { tmpdir } from '../testutil/index.js';
import { ContentStore } from './store.js';
import { hostPlatform } from './platform.js';
import { MediaType, type Descriptor } from './types.js';

async function image(s: ContentStore, arch: string, layer: string): Promise<Descriptor> {
  const l = await s.writeBlob(layer);
  const config = await s.writeBlob(JSON.stringify({ architecture: arch, os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [l.digest] }, history: [] }));
  const m = await s.writeBlob(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.manifest, config: { mediaType: MediaType.config, ...config }, layers: [{ mediaType: MediaType.layer, ...l }] }));
  return { mediaType: MediaType.manifest, ...m, platform: { os: 'linux', architecture: arch } };
}

test('a name on an index: this machine entry by default, another by platform, an absent one listed; ids of every kind; GC keeps every entry', async () => {
  const root = tmpdir('tsb-idx-');
  try {
    const s = new ContentStore(root);
    const host = hostPlatform().architecture;
    const otherArch = host === 'arm64' ? 'amd64' : 'arm64';
    const a = await image(s, host, 'host layer');
    const b = await image(s, otherArch, 'other layer');
    const idxBlob = await s.writeBlob(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.index, manifests: [a, b] }));
    const idx = { mediaType: MediaType.index, ...idxBlob };
    s.tag('multi:1', idx);
    const mine = s.resolve('multi:1');
    assert.is(mine.manifestDigest, a.digest);
    assert.is(mine.index?.digest, idx.digest);
    assert.is(mine.config.architecture, host);
    assert.is(s.resolve('multi:1', { os: 'linux', architecture: otherArch }).manifestDigest, b.digest);
    assert.throws(() => s.resolve('multi:1', { os: 'linux', architecture: 's390x' }), (e: Error & { code?: string }) => e.code === 'PLATFORM_NOT_IN_INDEX' && /has no linux\/s390x image \(it has: linux\/\w+, linux\/\w+\)/.test(e.message));
    // By the index digest, an entry's digest, or an entry's image id (config digest).
    assert.is(s.resolve(idx.digest.slice(7, 19)).manifestDigest, a.digest);
    assert.is(s.resolve(b.digest).manifestDigest, b.digest);
    const bConfig = s.readJSON<{ config: { digest: string } }>(b.digest).config.digest;
    assert.is(s.resolve(bConfig.slice(7, 19)).manifestDigest, b.digest);
    // Entries are listed one by one, each with its index.
    const entries = s.entries().filter((e) => e.name === 'multi:1');
    assert.equal(entries.map((e) => e.manifest.digest), [a.digest, b.digest]);
    assert.ok(entries.every((e) => e.index?.digest === idx.digest));
    // GC keeps the index, both manifests, configs and layers; once untagged, all go.
    const stray = await s.writeBlob('nobody needs this');
    s.gcBlobs();
    for (const d of [idx.digest, a.digest, b.digest, bConfig]) assert.ok(s.has(d), d);
    assert.not.ok(s.has(stray.digest));
    s.untag('multi:1');
    s.gcBlobs();
    for (const d of [idx.digest, a.digest, b.digest, bConfig]) assert.not.ok(s.has(d), d);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test.run();
