/** Pull and push against an in-memory registry that can lie: digests, sizes, platforms, schema 1. */
import { test } from 'uvu';
import { Readable } from 'node:stream';
import * as assert from 'uvu/assert';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { ContentStore, MediaType } from '../image/index.js';
import { tmpdir } from '../testutil/index.js';
import { RegistryClient } from './client.js';
import { pullImage } from './pull.js';
import { pushImage } from './push.js';
import { parseReference } from './reference.js';
import { BlobSources } from './sources.js';
import type { RegistryRequest } from './transport.js';

/** A request body as bytes: blob uploads are Node streams, the rest fetch bodies. */
async function bytesOf(b: BodyInit | Readable | undefined): Promise<Buffer> {
  if (b instanceof Readable) {
    const parts: Buffer[] = [];
    for await (const c of b) parts.push(c as Buffer);
    return Buffer.concat(parts);
  }
  return Buffer.from(await new Response(b).arrayBuffer());
}

const sha = (b: Buffer | string) => 'sha256:' + crypto.createHash('sha256').update(b).digest('hex');

class FakeRegistry {
  blobs = new Map<string, Buffer>();
  manifests = new Map<string, { body: Buffer; type: string }>();
  uploads = new Map<string, Buffer[]>();
  /** Lies to tell, by URL substring. */
  lies: { match: string; body?: Buffer; headers?: Record<string, string> }[] = [];
  log: string[] = [];
  handler = async (r: RegistryRequest): Promise<Response> => {
    const u = new URL(r.url);
    this.log.push(`${r.method} ${u.pathname}${u.search}`);
    const lie = this.lies.find((l) => r.url.includes(l.match));
    if (u.pathname === '/v2/') return new Response('{}');
    let m = /^\/v2\/(.+)\/manifests\/(.+)$/.exec(u.pathname);
    if (m) {
      if (r.method === 'PUT') {
        const body = await bytesOf(r.body!());
        this.manifests.set(`${m[1]}:${m[2]}`, { body, type: r.headers['content-type']! });
        this.manifests.set(`${m[1]}:${sha(body)}`, { body, type: r.headers['content-type']! });
        return new Response(null, { status: 201, headers: { 'docker-content-digest': sha(body) } });
      }
      const got = this.manifests.get(`${m[1]}:${m[2]}`);
      if (!got) return Response.json({ errors: [{ code: 'MANIFEST_UNKNOWN', message: 'manifest unknown' }] }, { status: 404 });
      return new Response(new Uint8Array(lie?.body ?? got.body), { headers: { 'content-type': got.type, 'docker-content-digest': sha(got.body), ...(lie?.headers ?? {}) } });
    }
    m = /^\/v2\/(.+)\/blobs\/(sha256:[a-f0-9]+)$/.exec(u.pathname);
    if (m) {
      const b = this.blobs.get(`${m[1]}@${m[2]}`);
      if (!b) return new Response(null, { status: 404 });
      if (r.method === 'HEAD') return new Response(null, { status: 200, headers: { 'content-length': String(b.length) } });
      const range = /bytes=(\d+)-/.exec(r.headers['range'] ?? '');
      const body = lie?.body ?? (range ? b.subarray(Number(range[1])) : b);
      return new Response(new Uint8Array(body), { status: range && !lie ? 206 : 200 });
    }
    m = /^\/v2\/(.+)\/blobs\/uploads\/(.*)$/.exec(u.pathname);
    if (m) {
      if (r.method === 'POST') {
        const from = u.searchParams.get('from');
        const have = from ? this.blobs.get(`${from}@${u.searchParams.get('mount')}`) : undefined;
        if (have) {
          this.blobs.set(`${m[1]}@${u.searchParams.get('mount')}`, have);
          return new Response(null, { status: 201 });
        }
        const id = crypto.randomBytes(4).toString('hex');
        this.uploads.set(id, []);
        return new Response(null, { status: 202, headers: { location: `/v2/${m[1]}/blobs/uploads/${id}` } });
      }
      const parts = this.uploads.get(m[2]!)!;
      if (r.body) parts.push(await bytesOf(r.body()));
      if (r.method === 'PATCH') return new Response(null, { status: 202, headers: { location: u.pathname } });
      const all = Buffer.concat(parts);
      const want = u.searchParams.get('digest')!;
      if (sha(all) !== want) return Response.json({ errors: [{ code: 'DIGEST_INVALID', message: 'digest did not match' }] }, { status: 400 });
      this.blobs.set(`${m[1]}@${want}`, all);
      return new Response(null, { status: 201 });
    }
    return new Response(null, { status: 404 });
  };
  client(): RegistryClient {
    return new RegistryClient({ domain: 'fake.example', base: this.handler, retryBaseMs: 1, credentials: async () => undefined });
  }
  addImage(repo: string, tag: string, o: { platforms?: string[]; mediaType?: string } = {}): { layer: Buffer; config: Buffer; manifest: Buffer } {
    const tar = Buffer.alloc(1024); // an empty tar: two zero blocks
    const layer = zlib.gzipSync(tar);
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [sha(tar)] }, history: [] }));
    this.blobs.set(`${repo}@${sha(layer)}`, layer);
    this.blobs.set(`${repo}@${sha(config)}`, config);
    const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: o.mediaType ?? MediaType.manifest, config: { mediaType: MediaType.config, digest: sha(config), size: config.length }, layers: [{ mediaType: MediaType.layerGzip, digest: sha(layer), size: layer.length }] }));
    this.manifests.set(`${repo}:${sha(manifest)}`, { body: manifest, type: o.mediaType ?? MediaType.manifest });
    if (o.platforms) {
      const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.index, manifests: o.platforms.map((p) => ({ mediaType: MediaType.manifest, digest: sha(manifest), size: manifest.length, platform: { os: p.split('/')[0], architecture: p.split('/')[1] } })) }));
      this.manifests.set(`${repo}:${tag}`, { body: index, type: MediaType.index });
    } else this.manifests.set(`${repo}:${tag}`, { body: manifest, type: o.mediaType ?? MediaType.manifest });
    return { layer, config, manifest };
  }
}

const dirs: string[] = [];
function store(): ContentStore {
  const d = tmpdir('tsb-pull-');
  dirs.push(d);
  return new ContentStore(d);
}
test.after(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

test('pull through an index to the host platform; name written last; blobs verified', async () => {
  const reg = new FakeRegistry();
  const img = reg.addImage('lib/x', '1', { platforms: ['linux/s390x', 'linux/amd64', 'linux/arm64'] });
  const s = store();
  const r = await pullImage({ client: reg.client(), ref: parseReference('fake.example/lib/x:1'), store: s, platform: { os: 'linux', architecture: 'amd64' } });
  assert.is(r.name, 'fake.example/lib/x:1');
  assert.is(r.descriptor.digest, sha(img.manifest));
  assert.ok(s.has(sha(img.layer)) && s.has(sha(img.config)));
  assert.is(s.resolve('fake.example/lib/x:1').manifestDigest, sha(img.manifest));
  await pullImage({ client: reg.client(), ref: parseReference('fake.example/lib/x:1'), store: s, platform: { os: 'linux', architecture: 'riscv64' } }).then(
    () => assert.unreachable(),
    (e: Error & { code: string }) => {
      assert.is(e.code, 'PLATFORM_UNAVAILABLE');
      assert.match(e.message, 'has no image for linux/riscv64 (it has: linux/s390x, linux/amd64, linux/arm64)');
    },
  );
});

test('a lying registry stores nothing: manifest bytes vs digest, Docker-Content-Digest, blob bytes, blob size', async () => {
  const reg = new FakeRegistry();
  const img = reg.addImage('lib/y', '1');
  const cases: [FakeRegistry['lies'][number], RegExp][] = [
    [{ match: `/manifests/${sha(img.manifest)}`, body: Buffer.from(img.manifest.toString().replace('"amd64"', '"amd65"') + ' ') }, /digest mismatch on manifest/],
    [{ match: '/manifests/1', headers: { 'docker-content-digest': sha('other') } }, /digest mismatch on manifest .*Docker-Content-Digest/],
    [{ match: `/blobs/${sha(img.layer)}`, body: Buffer.from(img.layer.map((b, i) => (i === 20 ? b ^ 1 : b))) }, /digest mismatch on blob sha256:/],
    [{ match: `/blobs/${sha(img.layer)}`, body: Buffer.concat([img.layer, Buffer.from('extra')]) }, /larger than the \d+ bytes its descriptor says/],
  ];
  for (const [lie, why] of cases) {
    reg.lies = [lie];
    const s = store();
    const ref = parseReference(lie.match.includes('/manifests/sha256') ? `fake.example/lib/y@${sha(img.manifest)}` : 'fake.example/lib/y:1');
    await pullImage({ client: reg.client(), ref, store: s }).then(
      () => assert.unreachable(`accepted ${lie.match}`),
      (e: Error) => assert.match(e.message, why),
    );
    assert.is(s.list().length, 0, 'no name');
    assert.not.ok(s.has(sha(img.layer)), 'no unverified layer');
    assert.not.ok(fs.existsSync(s.ingestPath(sha(img.layer))), 'no partial of the lying blob left');
    // A sibling download cancelled by the failure keeps its verified prefix to resume from (recovery
    // removes it after a day): it must be a prefix of an honest blob, never unverified bytes.
    for (const f of fs.readdirSync(path.join(s.root, 'tmp')).filter((n) => /^ingest-[a-f0-9]{64}$/.test(n))) {
      assert.is(f, path.basename(s.ingestPath(sha(img.config))), `only the config may be partial, found ${f}`);
      const got = fs.readFileSync(path.join(s.root, 'tmp', f));
      assert.ok(img.config.subarray(0, got.length).equals(got), 'the kept prefix is the honest config');
    }
  }
});

test('schema 1 and foreign documents are refused with what to do', async () => {
  const reg = new FakeRegistry();
  reg.manifests.set('lib/old:1', { body: Buffer.from(JSON.stringify({ schemaVersion: 1, name: 'lib/old', fsLayers: [] })), type: 'application/vnd.docker.distribution.manifest.v1+prettyjws' });
  await pullImage({ client: reg.client(), ref: parseReference('fake.example/lib/old:1'), store: store() }).then(
    () => assert.unreachable(),
    (e: Error) => assert.match(e.message, /deprecated schema 1 manifest/),
  );
  reg.manifests.set('lib/bad:1', { body: Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.manifest, config: { digest: 'sha256:nothex', size: 1 }, layers: [] })), type: MediaType.manifest });
  await pullImage({ client: reg.client(), ref: parseReference('fake.example/lib/bad:1'), store: store() }).then(
    () => assert.unreachable(),
    (e: Error) => assert.match(e.message, /invalid descriptor/),
  );
});

test('push: existence checks skip known blobs, chunked uploads, mounts from a known repository, manifest last', async () => {
  const reg = new FakeRegistry();
  reg.addImage('lib/src', '1');
  const s = store();
  const sources = new BlobSources(path.join(s.root, 'registry'));
  const pulled = await pullImage({ client: reg.client(), ref: parseReference('fake.example/lib/src:1'), store: s, sources });
  reg.log.length = 0;
  const r = await pushImage({ client: reg.client(), ref: parseReference('fake.example/lib/dst:2'), store: s, manifestDigest: pulled.descriptor.digest, compression: { type: 'gzip' }, sources, chunkSize: 7 });
  assert.is(r.digest, pulled.descriptor.digest, 'unchanged compression keeps the manifest bytes');
  assert.ok(reg.log.some((l) => l.includes('mount=') && l.includes('from=lib%2Fsrc')), reg.log.join('\n'));
  assert.is(reg.log.at(-1), 'PUT /v2/lib/dst/manifests/2', 'the manifest goes last');
  reg.log.length = 0;
  const z = await pushImage({ client: reg.client(), ref: parseReference('fake.example/lib/z:1'), store: s, manifestDigest: pulled.descriptor.digest, compression: { type: 'uncompressed' }, chunkSize: 300 });
  assert.ok(reg.log.filter((l) => l.startsWith('PATCH')).length >= 2, 'chunked');
  const man = JSON.parse(reg.manifests.get(`lib/z:${z.digest}`)!.body.toString());
  assert.is(man.layers[0].mediaType, MediaType.layer);
  assert.is(man.layers[0].digest, sha(Buffer.alloc(1024)), 'uncompressed layer digest is the diffID');
  reg.log.length = 0;
  await pushImage({ client: reg.client(), ref: parseReference('fake.example/lib/z:1'), store: s, manifestDigest: pulled.descriptor.digest, compression: { type: 'uncompressed' } });
  assert.not.ok(reg.log.some((l) => l.startsWith('POST')), 'everything already there: no uploads');
});

test('cancelling a download keeps its verified prefix; the next attempt resumes it with a Range request', async () => {
  const reg = new FakeRegistry();
  const img = reg.addImage('lib/slow', '1');
  const big = Buffer.from(crypto.randomBytes(256 << 10));
  const digest = sha(big);
  reg.blobs.set(`lib/slow@${digest}`, big);
  const inner = reg.handler;
  // The blob trickles out in 16 KiB pieces, 20 ms apart.
  reg.handler = async (r) => {
    if (!r.url.includes(digest) || r.method !== 'GET') return inner(r);
    const from = Number(/bytes=(\d+)-/.exec(r.headers['range'] ?? '')?.[1] ?? 0);
    let off = from;
    const body = new ReadableStream<Uint8Array>({
      async pull(c) {
        if (off >= big.length) return c.close();
        await new Promise((res) => setTimeout(res, 20));
        c.enqueue(new Uint8Array(big.subarray(off, off + (16 << 10))));
        off += 16 << 10;
      },
    });
    r.signal?.addEventListener('abort', () => body.cancel().catch(() => undefined));
    return new Response(body, { status: from ? 206 : 200 });
  };
  const s = store();
  const { fetchBlob } = await import('./blobs.js');
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 150);
  const desc = { mediaType: 'application/octet-stream', digest, size: big.length };
  await fetchBlob(reg.client(), 'lib/slow', desc, s, { signal: ac.signal }).then(
    () => assert.unreachable('the abort must stop the download'),
    (e: Error & { code: string }) => assert.is(e.code, 'CANCELLED'),
  );
  const partial = s.ingestPath(digest);
  const kept = fs.statSync(partial).size;
  assert.ok(kept > 0 && kept < big.length, `prefix kept: ${kept}`);
  assert.not.ok(s.has(digest));
  assert.not.ok(fs.lstatSync(partial + '.lock', { throwIfNoEntry: false }), 'lock released');
  const events: string[] = [];
  await fetchBlob(reg.client(), 'lib/slow', desc, s, { onEvent: (e) => events.push(e.type === 'start' ? `start@${e.offset}` : e.type) });
  assert.equal(events, [`start@${kept}`, 'done']);
  assert.ok(s.readBlob(digest).equals(big));
  void img;
});

test('push falls back to a monolithic PUT when the registry refuses chunked PATCH uploads (and back)', async () => {
  const reg = new FakeRegistry();
  reg.addImage('lib/src', '1');
  const s = store();
  const pulled = await pullImage({ client: reg.client(), ref: parseReference('fake.example/lib/src:1'), store: s });
  const inner = reg.handler;
  reg.handler = async (r) => (r.method === 'PATCH' ? new Response(null, { status: 405 }) : inner(r));
  reg.log.length = 0;
  await pushImage({ client: reg.client(), ref: parseReference('fake.example/lib/nochunks:1'), store: s, manifestDigest: pulled.descriptor.digest, compression: { type: 'gzip' }, chunkSize: 100 });
  assert.ok(reg.log.some((l) => l.startsWith('PUT /v2/lib/nochunks/blobs/uploads/') && l.includes('digest=')), reg.log.join('\n'));
  reg.handler = async (r) => (r.method === 'PUT' && r.url.includes('/blobs/uploads/') && r.body ? new Response(null, { status: 413 }) : inner(r));
  reg.log.length = 0;
  await pushImage({ client: reg.client(), ref: parseReference('fake.example/lib/nomono:1'), store: s, manifestDigest: pulled.descriptor.digest, compression: { type: 'gzip' } });
  assert.ok(reg.log.some((l) => l.startsWith('PATCH /v2/lib/nomono/')), 'a registry that refuses large PUTs gets chunks');
});

test.run();
