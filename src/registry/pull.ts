/**
 * Pull: manifest (through an index or manifest list to the host's platform), then config and layers in
 * parallel, each verified while it streams, then the manifest is stored and named. Names are written
 * last, so an interrupted pull leaves only verified blobs (and resumable partials), never a name that
 * points at something incomplete.
 */
import { sha256, type ContentStore, type Descriptor, type ImageConfig, type ImageIndex, type Manifest } from '../image/index.js';
import type { RegistryClient } from './client.js';
import type { Readable } from 'node:stream';
import { fetchBlob, transferAll, type TransferEvent } from './blobs.js';
import { BlobFollower } from './follow.js';
import { DockerMediaType, MANIFEST_ACCEPT, isIndex, isManifest, layerCompression, selectManifest } from './media.js';
import { configPlatform, formatPlatform, hostPlatform, type Platform } from '../image/index.js';
import { familiarName, formatReference, type Reference } from './reference.js';
import type { BlobSources } from './sources.js';
import { RegistryError, linkedController } from './transport.js';

export interface PullOptions {
  client: RegistryClient;
  ref: Reference;
  store: ContentStore;
  platform?: Platform;
  concurrency?: number;
  signal?: AbortSignal;
  sources?: BlobSources;
  onEvent?: (e: TransferEvent) => void;
  /** Store under this name instead of the reference's familiar name (cache imports use none). */
  name?: string | null;
  /** Leave the naming to the caller (which unpacks first, so a failed pull names nothing). */
  deferTag?: boolean;
  /**
   * Runs while the layers download (after the config is in): `open` reads a layer's blob from its
   * start as it arrives, `complete` waits until it is all in the store. A pull then unpacks and
   * downloads at once.
   */
  whileLayers?: (image: { manifest: Manifest; config: ImageConfig; open: (digest: string) => Readable; complete: (digest: string) => Promise<void> }) => Promise<void>;
}

export interface PulledImage {
  name?: string;
  descriptor: Descriptor;
  manifest: Manifest;
  config: ImageConfig;
}

const CONFIG_LIMIT = 8 << 20;

function verifyBytes(bytes: Buffer, expected: string | undefined, what: string): string {
  const got = sha256(bytes);
  if (expected && expected.startsWith('sha256:') && expected !== got) {
    throw new RegistryError('DIGEST_MISMATCH', `digest mismatch on ${what}: expected ${expected}, got ${got}; nothing was stored`);
  }
  return got;
}

function parseJSON<T>(bytes: Buffer, what: string): T {
  try {
    return JSON.parse(bytes.toString('utf8')) as T;
  } catch {
    throw new RegistryError('MANIFEST_INVALID', `${what} is not valid JSON`);
  }
}

function mediaTypeOf(declared: string, doc: { mediaType?: string; manifests?: unknown; config?: unknown; schemaVersion?: number }): string {
  if (doc.schemaVersion === 1 || declared === DockerMediaType.schema1 || declared === 'application/vnd.docker.distribution.manifest.v1+json') return DockerMediaType.schema1;
  if (doc.mediaType) return doc.mediaType;
  if (isIndex(declared) || isManifest(declared)) return declared;
  return doc.manifests ? MANIFEST_ACCEPT[0]! : MANIFEST_ACCEPT[2]!;
}

function checkDescriptor(d: Descriptor | undefined, what: string): Descriptor {
  if (!d || typeof d.digest !== 'string' || !/^sha256:[a-f0-9]{64}$/.test(d.digest) || typeof d.size !== 'number' || d.size < 0 || !Number.isSafeInteger(d.size)) {
    throw new RegistryError('MANIFEST_INVALID', `${what} has an invalid descriptor (${JSON.stringify(d)?.slice(0, 120)})`);
  }
  return d;
}

/** Resolves a reference to one platform's manifest: its bytes, digest and parsed form. */
export async function resolveManifest(client: RegistryClient, ref: Reference, platform: Platform, signal?: AbortSignal): Promise<{ bytes: Buffer; digest: string; mediaType: string; manifest: Manifest; index?: { bytes: Buffer; digest: string } }> {
  const where = formatReference(ref);
  const first = await client.getManifest(ref.path, ref.digest ?? ref.tag!, MANIFEST_ACCEPT, signal);
  let digest = verifyBytes(first.bytes, ref.digest, `manifest ${where}`);
  if (!ref.digest && first.digestHeader) verifyBytes(first.bytes, first.digestHeader, `manifest ${where} (Docker-Content-Digest)`);
  let bytes = first.bytes;
  let doc = parseJSON<Manifest & ImageIndex>(bytes, `manifest ${where}`);
  let mediaType = mediaTypeOf(first.mediaType, doc);
  let index: { bytes: Buffer; digest: string } | undefined;
  if (isIndex(mediaType)) {
    index = { bytes, digest };
    const list = (doc.manifests ?? []).map((m, i) => checkDescriptor(m, `entry ${i} of index ${where}`));
    const pick = selectManifest(list, platform);
    if (!pick) {
      const have = list.map((m) => (m.platform ? formatPlatform(m.platform) : '?')).join(', ');
      throw new RegistryError('PLATFORM_UNAVAILABLE', `${where} has no image for ${formatPlatform(platform)} (it has: ${have || 'none'}); pass --platform to pick one`);
    }
    const child = await client.getManifest(ref.path, pick.digest, MANIFEST_ACCEPT, signal);
    digest = verifyBytes(child.bytes, pick.digest, `manifest ${pick.digest} of ${where}`);
    bytes = child.bytes;
    doc = parseJSON<Manifest & ImageIndex>(bytes, `manifest ${pick.digest}`);
    mediaType = mediaTypeOf(child.mediaType || pick.mediaType, doc);
  }
  if (mediaType === DockerMediaType.schema1) {
    throw new RegistryError('MANIFEST_UNSUPPORTED', `${where} uses Docker's deprecated schema 1 manifest, which tsbuild does not read; push it again with a current tool`);
  }
  if (!isManifest(mediaType)) throw new RegistryError('MANIFEST_UNSUPPORTED', `${where} is a ${mediaType}, not an image manifest`);
  checkDescriptor(doc.config, `config of ${where}`);
  if (!Array.isArray(doc.layers)) throw new RegistryError('MANIFEST_INVALID', `manifest ${where} has no layer list`);
  doc.layers.forEach((l, i) => {
    checkDescriptor(l, `layer ${i} of ${where}`);
    layerCompression(l.mediaType);
  });
  return { bytes, digest, mediaType, manifest: doc, index };
}

export async function pullImage(o: PullOptions): Promise<PulledImage> {
  const platform = o.platform ?? hostPlatform();
  const r = await resolveManifest(o.client, o.ref, platform, o.signal);
  const where = formatReference(o.ref);
  if (r.manifest.config.size > CONFIG_LIMIT) throw new RegistryError('MANIFEST_INVALID', `the config of ${where} claims ${r.manifest.config.size} bytes, above the ${CONFIG_LIMIT}-byte limit`);
  const layers = r.manifest.layers.filter((l) => l.mediaType !== DockerMediaType.foreign);
  const blobs = [r.manifest.config, ...layers];
  // The config first (it is small): an unpacker needs its diffIDs before the layers are down.
  await fetchBlob(o.client, o.ref.path, r.manifest.config, o.store, { signal: o.signal, onEvent: o.onEvent });
  const config = parseJSON<ImageConfig>(o.store.readBlob(r.manifest.config.digest), `config of ${where}`);
  const diffIDs = config.rootfs?.diff_ids ?? [];
  if (diffIDs.length !== r.manifest.layers.length) {
    throw new RegistryError('MANIFEST_INVALID', `${where}: its config lists ${diffIDs.length} layers but its manifest ${r.manifest.layers.length}`);
  }
  if (o.whileLayers) {
    // Unpacking reads each layer as it downloads; whichever fails first stops the other.
    const follow = new BlobFollower();
    const ac = linkedController(o.signal);
    const down = transferAll(layers, o.concurrency ?? 4, ac.signal, (d, signal) => fetchBlob(o.client, o.ref.path, d, o.store, { signal, onEvent: o.onEvent, follow }));
    const downloading = new Set(layers.map((l) => l.digest));
    const up = o.whileLayers({
      manifest: r.manifest,
      config,
      // A layer this pull does not download (a foreign one) is read from the store, which says it is missing.
      open: (digest) => (downloading.has(digest) ? follow.open(digest) : o.store.openBlob(digest)),
      complete: (digest) => follow.complete(digest),
    });
    down.catch(() => ac.abort());
    // The downloads are let finish when unpacking fails: bytes that do not match their digest are
    // then reported as such (the cause), rather than as whatever the unpacker made of them.
    const [d, u] = await Promise.allSettled([down, up]);
    if (d.status === 'rejected') throw d.reason;
    if (u.status === 'rejected') throw u.reason;
  } else {
    await transferAll(layers, o.concurrency ?? 4, o.signal, (d, signal) => fetchBlob(o.client, o.ref.path, d, o.store, { signal, onEvent: o.onEvent }));
  }
  await o.store.writeBlob(r.bytes, { digest: r.digest, size: r.bytes.length });
  o.sources?.record(o.client.domain, o.ref.path, blobs.map((b) => b.digest));
  const descriptor: Descriptor = { mediaType: r.mediaType, digest: r.digest, size: r.bytes.length, platform: configPlatform(config) };
  const name = o.name === null ? undefined : o.name ?? familiarName(o.ref);
  if (name && !o.deferTag) o.store.tag(name, descriptor);
  return { name, descriptor, manifest: r.manifest, config };
}
