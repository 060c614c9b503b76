/**
 * Build cache in a registry. One manifest per cache ref: its config (`CACHE_CONFIG_TYPE`) lists cache
 * records (key → layer, by diffID and the pushed blob), the last key material of each step (so misses
 * after an import are explained like local ones) and exported cache mounts; its layers are the blobs
 * those entries name, so the registry keeps them alive and `skopeo` can copy a cache like an image.
 */
import zlib from 'node:zlib';
import { MediaType, sha256, type ContentStore, type Descriptor } from '../image/index.js';
import type { RegistryClient } from './client.js';
import { fetchBlob, pushBlob, transferAll, type TransferEvent } from './blobs.js';
import type { Reference } from './reference.js';
import type { BlobSources } from './sources.js';
import { RegistryError } from './transport.js';

export const CACHE_CONFIG_TYPE = 'application/vnd.tsbuild.cache.config.v1+json';
export const CACHE_MOUNT_TYPE = 'application/vnd.tsbuild.cache.mount.v1.tar+gzip';
/**
 * `--cache-to type=inline`: the cache config rides on the image manifest as this annotation (gzip,
 * base64), so the image's config, and its id, stay what they are without it.
 */
export const INLINE_CACHE_ANNOTATION = 'dev.tsbuild.cache.v1';

export function encodeInlineCache(cfg: RemoteCacheConfig): string {
  return zlib.gzipSync(Buffer.from(JSON.stringify(cfg))).toString('base64');
}

function decodeInlineCache(text: string, where: string): RemoteCacheConfig {
  try {
    return JSON.parse(zlib.gunzipSync(Buffer.from(text, 'base64'), { maxOutputLength: 64 << 20 }).toString('utf8')) as RemoteCacheConfig;
  } catch (e) {
    throw new RegistryError('CACHE_INVALID', `the inline cache on ${where} cannot be read (${(e as Error).message}); rebuild that image with --cache-to type=inline`);
  }
}

export interface RemoteRecord {
  key: string;
  snapshot?: string;
  layer: { diffID: string; descriptor: Descriptor } | null;
  description: string;
  created: string;
}

export interface RemoteStep {
  key: string;
  material: Record<string, string>;
}

export interface RemoteMount {
  id: string;
  descriptor: Descriptor;
}

export interface RemoteCacheConfig {
  version: 1;
  records: RemoteRecord[];
  /** By portable step id (`Dockerfile#stage#n`, without the machine's context path). */
  steps: Record<string, RemoteStep>;
  mounts: RemoteMount[];
}

export interface CacheTransfer {
  client: RegistryClient;
  ref: Reference;
  store: ContentStore;
  signal?: AbortSignal;
  sources?: BlobSources;
  onEvent?: (e: TransferEvent) => void;
  concurrency?: number;
}

/** Pushes every blob the config names, then the config, then the manifest. */
export async function pushCache(o: CacheTransfer, config: RemoteCacheConfig): Promise<string> {
  const blobs = new Map<string, Descriptor>();
  for (const r of config.records) if (r.layer) blobs.set(r.layer.descriptor.digest, r.layer.descriptor);
  for (const m of config.mounts) blobs.set(m.descriptor.digest, m.descriptor);
  const cfgBytes = Buffer.from(JSON.stringify(config));
  const cfg = await o.store.writeBlob(cfgBytes);
  const cfgDesc: Descriptor = { mediaType: CACHE_CONFIG_TYPE, digest: cfg.digest, size: cfg.size };
  const all = [cfgDesc, ...blobs.values()];
  await transferAll(all, o.concurrency ?? 4, o.signal, (d, signal) => pushBlob(o.client, o.ref.path, d, o.store, { signal, mountFrom: o.sources?.lookup(o.client.domain, d.digest), onEvent: o.onEvent }));
  const manifest = { schemaVersion: 2, mediaType: MediaType.manifest, artifactType: CACHE_CONFIG_TYPE, config: cfgDesc, layers: [...blobs.values()] };
  const bytes = Buffer.from(JSON.stringify(manifest));
  await o.client.putManifest(o.ref.path, o.ref.digest ?? o.ref.tag ?? 'latest', bytes, MediaType.manifest, o.signal);
  o.sources?.record(o.client.domain, o.ref.path, all.map((d) => d.digest));
  return sha256(bytes);
}

/** The cache config at `ref`, or undefined when there is none yet (a first CI run). */
export async function pullCacheConfig(o: CacheTransfer): Promise<RemoteCacheConfig | undefined> {
  let got;
  try {
    got = await o.client.getManifest(o.ref.path, o.ref.digest ?? o.ref.tag ?? 'latest', [MediaType.manifest], o.signal);
  } catch (e) {
    if (e instanceof RegistryError && (e.code === 'MANIFEST_UNKNOWN' || e.code === 'NAME_UNKNOWN')) return undefined;
    throw e;
  }
  const digest = sha256(got.bytes);
  if (o.ref.digest && o.ref.digest !== digest) throw new RegistryError('DIGEST_MISMATCH', `digest mismatch on cache manifest ${o.ref.digest}: got ${digest}`);
  let manifest: { config?: Descriptor; annotations?: Record<string, string> };
  try {
    manifest = JSON.parse(got.bytes.toString('utf8')) as { config?: Descriptor };
  } catch {
    throw new RegistryError('MANIFEST_INVALID', `the cache manifest at ${o.client.domain}/${o.ref.path} is not JSON`);
  }
  const where = `${o.client.domain}/${o.ref.path}:${o.ref.tag ?? o.ref.digest}`;
  const inline = manifest.annotations?.[INLINE_CACHE_ANNOTATION];
  let cfg: RemoteCacheConfig;
  if (manifest.config?.mediaType !== CACHE_CONFIG_TYPE) {
    // An image: its inline cache, if it was built with one; else nothing to use (as BuildKit).
    if (manifest.config?.mediaType === MediaType.config && inline === undefined) return undefined;
    if (inline === undefined) throw new RegistryError('CACHE_INVALID', `${where} is not a tsbuild cache (config type ${manifest.config?.mediaType ?? 'none'}); use a separate ref for --cache-to`);
    cfg = decodeInlineCache(inline, where);
  } else {
    if (manifest.config.size > 64 << 20) throw new RegistryError('CACHE_INVALID', `the cache config claims ${manifest.config.size} bytes, above the 64 MiB limit`);
    await fetchBlob(o.client, o.ref.path, manifest.config, o.store, { signal: o.signal });
    cfg = JSON.parse(o.store.readBlob(manifest.config.digest).toString('utf8')) as RemoteCacheConfig;
  }
  if (cfg.version !== 1 || !Array.isArray(cfg.records)) throw new RegistryError('CACHE_INVALID', `unsupported tsbuild cache version ${String(cfg.version)} at ${o.client.domain}/${o.ref.path}`);
  cfg.steps ??= {};
  cfg.mounts ??= [];
  return cfg;
}
