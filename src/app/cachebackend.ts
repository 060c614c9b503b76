/**
 * Where a shared build cache lives: a registry (`type=registry,ref=…`) or a local directory
 * (`type=local,dest=…` / `src=…`), the latter an OCI image layout (`oci-layout`, `index.json`,
 * `blobs/sha256/…`) holding the same cache manifest a registry would, so a CI system's directory
 * cache (a cache action's path) carries it between runs. Both verify every blob's digest on the way in.
 */
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { TsbuildError } from '../errors/index.js';
import { MediaType, type Descriptor } from '../image/index.js';
import { CACHE_CONFIG_TYPE, fetchBlob, parseReference, pullCacheConfig, pushCache, type RemoteCacheConfig } from '../registry/index.js';
import type { Store } from '../store/index.js';
import { registryClient, transferLogger, type RegistryOptions } from './registry.js';

export interface CacheBackend {
  /** For messages: `localhost:5000/app:cache` or `local:/ci/cache`. */
  label: string;
  readConfig(): Promise<RemoteCacheConfig | undefined>;
  /** Copies a blob the config names into the store. */
  fetch(d: Descriptor, signal?: AbortSignal): Promise<void>;
  write(cfg: RemoteCacheConfig): Promise<void>;
}

export function registryBackend(store: Store, ref: string, ro: RegistryOptions, log: (l: string) => void, signal?: AbortSignal): CacheBackend {
  const r = parseReference(ref);
  const t = { client: registryClient(r.domain, ro, store.root, log), ref: r, store: store.content, signal, sources: store.blobSources };
  return {
    label: ref,
    readConfig: () => pullCacheConfig(t),
    fetch: (d, s) => fetchBlob(t.client, t.ref.path, d, store.content, { signal: s ?? signal }),
    write: async (cfg) => void (await pushCache({ ...t, onEvent: transferLogger(log) }, cfg)),
  };
}

const blobPath = (dir: string, digest: string) => path.join(dir, 'blobs', 'sha256', digest.replace(/^sha256:/, ''));

function readJSON<T>(file: string, what: string): T {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
  } catch (e) {
    throw new TsbuildError('CACHE_INVALID', `${what} ${file} cannot be read: ${(e as Error).message}; remove the directory to start a fresh cache`);
  }
}

export function localBackend(store: Store, dir: string): CacheBackend {
  const abs = path.resolve(dir);
  const copyIn = async (d: Descriptor, signal?: AbortSignal) => {
    if (store.content.has(d.digest)) return;
    const f = blobPath(abs, d.digest);
    if (!fs.existsSync(f)) throw new TsbuildError('CACHE_INVALID', `the cache at ${abs} names ${d.digest} but has no such blob: remove the directory to start a fresh cache`);
    // writeBlob hashes while it copies; a blob whose digest differs is refused.
    const got = await store.content.writeBlob(fs.createReadStream(f, { signal }) as AsyncIterable<Buffer>);
    if (got.digest !== d.digest) throw new TsbuildError('CACHE_INVALID', `the cache blob ${f} does not match its digest ${d.digest} (it hashes to ${got.digest}): the directory is damaged; remove it`);
  };
  return {
    label: `local:${abs}`,
    async readConfig() {
      if (!fs.existsSync(path.join(abs, 'index.json'))) return undefined;
      const index = readJSON<{ manifests?: Descriptor[] }>(path.join(abs, 'index.json'), 'the cache index');
      const m = index.manifests?.find((x) => x.annotations?.['org.opencontainers.image.ref.name'] === 'cache') ?? index.manifests?.[0];
      if (!m) return undefined;
      await copyIn(m);
      const manifest = JSON.parse(store.content.readBlob(m.digest).toString('utf8')) as { config?: Descriptor };
      const c = manifest.config;
      if (!c || c.mediaType !== CACHE_CONFIG_TYPE) throw new TsbuildError('CACHE_INVALID', `${abs} is not a tsbuild cache (config type ${c?.mediaType ?? 'none'})`);
      await copyIn(c);
      const cfg = JSON.parse(store.content.readBlob(c.digest).toString('utf8')) as RemoteCacheConfig;
      if (cfg.version !== 1 || !Array.isArray(cfg.records)) throw new TsbuildError('CACHE_INVALID', `unsupported tsbuild cache version ${String(cfg.version)} in ${abs}`);
      cfg.steps ??= {};
      cfg.mounts ??= [];
      return cfg;
    },
    fetch: copyIn,
    async write(cfg) {
      fs.mkdirSync(path.join(abs, 'blobs', 'sha256'), { recursive: true });
      const put = async (d: Descriptor, bytes?: Buffer) => {
        const f = blobPath(abs, d.digest);
        if (fs.existsSync(f)) return;
        const tmp = `${f}.tmp-${process.pid}`;
        if (bytes) fs.writeFileSync(tmp, bytes);
        else await pipeline(store.content.openBlob(d.digest), fs.createWriteStream(tmp));
        fs.renameSync(tmp, f);
      };
      const cfgBytes = Buffer.from(JSON.stringify(cfg));
      const cfgDesc: Descriptor = { mediaType: CACHE_CONFIG_TYPE, digest: (await store.content.writeBlob(cfgBytes)).digest, size: cfgBytes.length };
      const layers = new Map<string, Descriptor>();
      for (const r of cfg.records) if (r.layer) layers.set(r.layer.descriptor.digest, r.layer.descriptor);
      for (const m of cfg.mounts) layers.set(m.descriptor.digest, m.descriptor);
      for (const d of layers.values()) await put(d);
      await put(cfgDesc, cfgBytes);
      const manifestBytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.manifest, artifactType: CACHE_CONFIG_TYPE, config: cfgDesc, layers: [...layers.values()] }));
      const mDesc = { mediaType: MediaType.manifest, digest: (await store.content.writeBlob(manifestBytes)).digest, size: manifestBytes.length };
      await put(mDesc, manifestBytes);
      // The index last, replaced atomically: a crash before it leaves the previous cache whole.
      fs.writeFileSync(path.join(abs, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
      const index = { schemaVersion: 2, mediaType: MediaType.index, manifests: [{ ...mDesc, annotations: { 'org.opencontainers.image.ref.name': 'cache' } }] };
      fs.writeFileSync(path.join(abs, 'index.json.tmp'), JSON.stringify(index));
      fs.renameSync(path.join(abs, 'index.json.tmp'), path.join(abs, 'index.json'));
    },
  };
}
