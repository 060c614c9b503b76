/**
 * Push: layers are compressed as asked (in parallel, streaming, reusing earlier variants), every blob is
 * checked, mounted or uploaded (in parallel, with retries), and the manifest goes last, so a registry
 * never names an image whose blobs it does not have.
 */
import PQueue from 'p-queue';
import { once } from 'node:events';
import { PassThrough, Readable } from 'node:stream';
import { compressedLayer, existingCompressed, sha256, MediaType, type CompressionSpec, type ContentStore, type Descriptor, type ImageConfig, type Manifest } from '../image/index.js';
import type { RegistryClient } from './client.js';
import { pushBlob, type TransferEvent } from './blobs.js';
import { formatReference, type Reference } from './reference.js';
import type { BlobSources } from './sources.js';
import { RegistryError, linkedController } from './transport.js';

export interface PushOptions {
  client: RegistryClient;
  ref: Reference;
  store: ContentStore;
  manifestDigest: string;
  compression: CompressionSpec;
  concurrency?: number;
  chunkSize?: number;
  signal?: AbortSignal;
  sources?: BlobSources;
  onEvent?: (e: TransferEvent | { type: 'compress'; digest: string }) => void;
}

export interface PushResult {
  digest: string;
  size: number;
  reference: string;
}

type LayerMaker = (layer: { diffID: string; descriptor: Descriptor }) => Promise<Descriptor>;

/** The manifest to push: layers compressed as asked; the original bytes when nothing changes. */
export async function manifestForPush(store: ContentStore, manifestDigest: string, compression: CompressionSpec, concurrency = 2, onCompress?: (d: string) => void, make?: LayerMaker): Promise<{ bytes: Buffer; mediaType: string; manifest: Manifest }> {
  const manifest = store.readJSON<Manifest>(manifestDigest);
  const config = store.readJSON<ImageConfig>(manifest.config.digest);
  const diffIDs = config.rootfs.diff_ids;
  const queue = new PQueue({ concurrency });
  const layers = await Promise.all(
    manifest.layers.map((d, i) =>
      queue.add(async () => {
        onCompress?.(d.digest);
        const layer = { diffID: diffIDs[i]!, descriptor: d };
        return make ? make(layer) : compressedLayer(store, layer, compression);
      }),
    ),
  );
  const same = layers.every((l, i) => l.digest === manifest.layers[i]!.digest && l.mediaType === manifest.layers[i]!.mediaType);
  if (same) {
    const bytes = store.readBlob(manifestDigest);
    return { bytes, mediaType: manifest.mediaType ?? MediaType.manifest, manifest };
  }
  const out: Manifest = {
    schemaVersion: 2,
    mediaType: MediaType.manifest,
    config: { mediaType: manifest.config.mediaType, digest: manifest.config.digest, size: manifest.config.size },
    layers: layers as Descriptor[],
    ...(manifest.annotations ? { annotations: manifest.annotations } : {}),
  };
  const bytes = Buffer.from(JSON.stringify(out));
  await store.writeBlob(bytes);
  return { bytes, mediaType: MediaType.manifest, manifest: out };
}

/**
 * A layer that must be compressed first is streamed to the registry while it is compressed (POST,
 * one PATCH with the stream, PUT with the digest), so compression and upload overlap instead of
 * following each other; the compressed blob is kept in the store as well. Any failure of the
 * streamed upload leaves the ordinary path to finish the job: the blob is in the store by then, and
 * pushBlob uploads it from there with its retries.
 */
async function compressWhileUploading(o: PushOptions, layer: { diffID: string; descriptor: Descriptor }): Promise<Descriptor> {
  const done = existingCompressed(o.store, layer, o.compression);
  if (done) return done;
  let location: string | undefined;
  try {
    location = (await o.client.startUpload(o.ref.path, undefined, o.signal)).location;
  } catch {
    return compressedLayer(o.store, layer, o.compression);
  }
  const pt = new PassThrough({ highWaterMark: 4 << 20 });
  let sent = false;
  const upload = o.client
    .request('PATCH', location!, {
      repo: o.ref.path,
      actions: ['pull', 'push'],
      headers: { 'content-type': 'application/octet-stream' },
      body: () => {
        // A stream can be sent once; a retry or auth re-send fails over to the stored blob.
        if (sent) throw new RegistryError('STREAM_ONCE', 'a streamed upload cannot be replayed');
        sent = true;
        return Readable.toWeb(pt) as unknown as BodyInit;
      },
      signal: o.signal,
    })
    .then(
      (res) => {
        if (res.status !== 202) pt.destroy(); // refused early: stop feeding it
        return res;
      },
      (e: unknown) => {
        pt.destroy();
        return e instanceof Error ? e : new Error(String(e));
      },
    );
  const tee = async function* (chunks: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    for await (const c of chunks) {
      if (!pt.destroyed && !pt.write(c)) await Promise.race([once(pt, 'drain'), once(pt, 'close')]);
      yield c;
    }
    pt.end();
  };
  let desc: Descriptor;
  try {
    desc = await compressedLayer(o.store, layer, o.compression, { tee });
  } finally {
    if (!pt.writableEnded) pt.destroy();
  }
  const res = await upload;
  if (res instanceof Error || res.status !== 202) {
    if (!(res instanceof Error)) await res.body?.cancel().catch(() => undefined);
    return desc;
  }
  await res.body?.cancel().catch(() => undefined);
  const put = new URL(o.client.absolute(res));
  put.searchParams.set('digest', desc.digest);
  const fin = await o.client.request('PUT', put.toString(), { repo: o.ref.path, actions: ['pull', 'push'], headers: { 'content-length': '0' }, signal: o.signal });
  await fin.body?.cancel().catch(() => undefined);
  if (fin.status === 201) o.onEvent?.({ type: 'done', digest: desc.digest, size: desc.size });
  return desc;
}

export async function pushImage(o: PushOptions): Promise<PushResult> {
  const stream = o.chunkSize === undefined || o.chunkSize <= 0;
  const m = await manifestForPush(o.store, o.manifestDigest, o.compression, o.concurrency ?? 2, (digest) => o.onEvent?.({ type: 'compress', digest }), stream ? (layer) => compressWhileUploading(o, layer) : undefined);
  const blobs = [m.manifest.config, ...m.manifest.layers];
  const queue = new PQueue({ concurrency: o.concurrency ?? 4 });
  const ac = linkedController(o.signal);
  const signal = ac.signal;
  try {
    await Promise.all(
      blobs.map((d) =>
        queue.add(() =>
          pushBlob(o.client, o.ref.path, d, o.store, { signal, chunkSize: o.chunkSize, mountFrom: o.sources?.lookup(o.client.domain, d.digest), onEvent: o.onEvent }),
        ),
      ),
    );
  } catch (e) {
    ac.abort();
    queue.clear();
    await queue.onIdle();
    throw e;
  }
  const digest = sha256(m.bytes);
  await o.client.putManifest(o.ref.path, o.ref.digest ?? o.ref.tag ?? 'latest', m.bytes, m.mediaType, o.signal);
  o.sources?.record(o.client.domain, o.ref.path, blobs.map((b) => b.digest));
  return { digest, size: m.bytes.length, reference: formatReference({ ...o.ref, tag: o.ref.tag, digest: undefined }) };
}
