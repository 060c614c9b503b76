/**
 * Push: layers are compressed as asked (in parallel, streaming, reusing earlier variants), every blob is
 * checked, mounted or uploaded (in parallel, with retries), and the manifest goes last, so a registry
 * never names an image whose blobs it does not have.
 */
import { compressedLayer, compressingLayer, existingCompressed, isIndexDocument, knownVariant, sha256, MediaType, type CompressionSpec, type ContentStore, type Descriptor, type ImageConfig, type ImageIndex, type Manifest } from '../image/index.js';
import type { RegistryClient } from './client.js';
import { pushBlob, pushStreamed, remoteHas, transferAll, type TransferEvent } from './blobs.js';
import { formatReference, type Reference } from './reference.js';
import type { BlobSources } from './sources.js';

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
  /** Put the manifest under its digest, not the reference's tag (an index's entries). */
  byDigest?: boolean;
}

export interface PushResult {
  digest: string;
  size: number;
  reference: string;
}

/** The manifest to push: layers compressed as asked; the original bytes when nothing changes. */
export async function manifestForPush(store: ContentStore, manifestDigest: string, compression: CompressionSpec, concurrency = 2, onCompress?: (d: string) => void, known = new Map<string, Descriptor>()): Promise<{ bytes: Buffer; mediaType: string; manifest: Manifest }> {
  const manifest = store.readJSON<Manifest>(manifestDigest);
  const config = store.readJSON<ImageConfig>(manifest.config.digest);
  const diffIDs = config.rootfs.diff_ids;
  const { default: PQueue } = await import('p-queue');
  const queue = new PQueue({ concurrency });
  const layers = await Promise.all(
    manifest.layers.map((d, i) =>
      queue.add(async () => {
        const k = known.get(diffIDs[i]!);
        if (k) return k;
        onCompress?.(d.digest);
        return compressedLayer(store, { diffID: diffIDs[i]!, descriptor: d }, compression);
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

export async function pushImage(o: PushOptions): Promise<PushResult> {
  const head = o.store.readJSON<Manifest & { manifests?: unknown }>(o.manifestDigest);
  if (isIndexDocument(head)) return pushIndex(o);
  const streamed = await streamCompressedLayers(o, head);
  const m = await manifestForPush(o.store, o.manifestDigest, o.compression, o.concurrency ?? 2, (digest) => o.onEvent?.({ type: 'compress', digest }), streamed);
  const sent = new Set([...streamed.values()].map((d) => d.digest));
  const blobs = [m.manifest.config, ...m.manifest.layers.filter((l) => !sent.has(l.digest))];
  await transferAll(blobs, o.concurrency ?? 4, o.signal, (d, signal) =>
    pushBlob(o.client, o.ref.path, d, o.store, { signal, chunkSize: o.chunkSize, mountFrom: o.sources?.lookup(o.client.domain, d.digest), onEvent: o.onEvent }),
  );
  const digest = sha256(m.bytes);
  await o.client.putManifest(o.ref.path, o.byDigest ? digest : o.ref.digest ?? o.ref.tag ?? 'latest', m.bytes, m.mediaType, o.signal);
  o.sources?.record(o.client.domain, o.ref.path, [...blobs.map((b) => b.digest), ...sent]);
  return { digest, size: m.bytes.length, reference: formatReference({ ...o.ref, tag: o.ref.tag, digest: undefined }) };
}

/**
 * A multi-platform image: each platform's image pushed by digest (its layers compressed as asked,
 * which may change its digest), then an index of what was pushed, under the reference's tag.
 */
async function pushIndex(o: PushOptions): Promise<PushResult> {
  const index = o.store.readJSON<ImageIndex>(o.manifestDigest);
  const entries: Descriptor[] = [];
  for (const e of index.manifests ?? []) {
    const r = await pushImage({ ...o, manifestDigest: e.digest, byDigest: true });
    entries.push({ ...e, mediaType: MediaType.manifest, digest: r.digest, size: r.size });
  }
  const same = entries.every((e, i) => e.digest === index.manifests[i]!.digest);
  const bytes = same ? o.store.readBlob(o.manifestDigest) : Buffer.from(JSON.stringify({ ...index, manifests: entries }));
  const digest = sha256(bytes);
  await o.client.putManifest(o.ref.path, o.ref.digest ?? o.ref.tag ?? 'latest', bytes, MediaType.index, o.signal);
  return { digest, size: bytes.length, reference: formatReference({ ...o.ref, tag: o.ref.tag, digest: undefined }) };
}

/**
 * Layers that need compressing are compressed as they upload, overlapping the two as skopeo does (a
 * 512 MiB layer took 2.6 s to compress into the store, then 3.7 s to upload). A layer compressed by
 * an earlier push is looked for in the registry first, by its remembered digest. Returns the pushed
 * layers by diffID. A failed stream (a registry that refuses streamed PATCHes, an auth challenge
 * mid-upload) leaves that layer to the usual path: compressed into the store, uploaded with retries.
 */
async function streamCompressedLayers(o: PushOptions, manifest: Manifest): Promise<Map<string, Descriptor>> {
  const pushed = new Map<string, Descriptor>();
  if (o.compression.type === 'uncompressed' || o.chunkSize) return pushed;
  const diffIDs = o.store.readJSON<ImageConfig>(manifest.config.digest).rootfs.diff_ids;
  const todo = manifest.layers.map((d, i) => ({ diffID: diffIDs[i]!, descriptor: d })).filter((l) => !existingCompressed(o.store, l, o.compression));
  const upload = { signal: o.signal, onEvent: o.onEvent };
  await transferAll(todo.map((l) => l.descriptor), o.concurrency ?? 2, o.signal, async (d, signal) => {
    const layer = todo.find((l) => l.descriptor === d)!;
    if (pushed.has(layer.diffID)) return;
    const known = knownVariant(o.store, layer, o.compression);
    if (known && (await remoteHas(o.client, o.ref.path, known, { ...upload, signal, mountFrom: o.sources?.lookup(o.client.domain, known.digest) }))) {
      pushed.set(layer.diffID, known);
      return;
    }
    o.onEvent?.({ type: 'compress', digest: d.digest });
    const src = compressingLayer(o.store, layer, o.compression);
    try {
      const blob = await pushStreamed(o.client, o.ref.path, src, signal);
      pushed.set(layer.diffID, blob);
      o.onEvent?.({ type: 'done', digest: blob.digest, size: blob.size });
    } catch (e) {
      src.stream.destroy();
      if (signal.aborted) throw e;
    }
  });
  return pushed;
}
