/**
 * Build cache operations: list records and cache mounts, export and import cache mounts (a directory
 * or a registry), prune. The policy itself (what prune drops, the cache-mount layout) is the store's.
 */
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { UsageError } from '../errors/index.js';
import type { CacheRecord } from '../cache/index.js';
import { listCacheMounts, mountTar, pruneCache, restoreMount, type CacheMountInfo, type PruneOptions, type Store } from '../store/index.js';
import { logger, type OpOptions } from './events.js';
import type { RegistryOptions } from './registry.js';
import { exportMountsToRegistry, importMountsFromRegistry } from './remotecache.js';
import { byText } from '../fsutil/index.js';

/** Records, most recently used first. */
export function listCacheRecords(store: Store): CacheRecord[] {
  return store.cache.list().sort((a, b) => byText(b.lastUsed, a.lastUsed));
}

export function listMounts(store: Store): CacheMountInfo[] {
  return listCacheMounts(store.root);
}

/** Where cache mounts go or come from: a directory, or a registry reference. */
export type MountsLocation = { dir: string } | { registry: string };

/** `DIR`, `type=local,dest=DIR` or `type=registry,ref=R`, as `--output`/`--input` give it. */
export function parseMountsLocation(v: string, flag: string): MountsLocation {
  if (!v.startsWith('type=')) return { dir: v };
  const kv = new Map(v.split(',').map((x) => [x.slice(0, x.indexOf('=')), x.slice(x.indexOf('=') + 1)] as [string, string]));
  if (kv.get('type') === 'local') {
    const dir = kv.get('dest') ?? kv.get('src');
    if (!dir) throw new UsageError(`${flag} ${v}: give dest=DIR`);
    return { dir };
  }
  if (kv.get('type') !== 'registry') throw new UsageError(`${flag} ${v}: use a directory or type=registry,ref=R`);
  const ref = kv.get('ref');
  if (!ref) throw new UsageError(`${flag} ${v}: give ref=REGISTRY/NAME:TAG`);
  return { registry: ref };
}

const INDEX = 'tsbuild-cache-mounts.json';

/** Writes every cache mount to `to`; returns how many. */
export async function exportMounts(store: Store, to: MountsLocation, ro: RegistryOptions, o: OpOptions = {}): Promise<number> {
  if ('registry' in to) return exportMountsToRegistry(store, to.registry, ro, { signal: o.signal, log: logger(o) });
  fs.mkdirSync(to.dir, { recursive: true });
  const index: Record<string, string> = {};
  for (const m of listCacheMounts(store.root)) {
    const file = `${path.basename(m.dir)}.tar`;
    await pipeline(mountTar(m.dir), fs.createWriteStream(path.join(to.dir, file)));
    index[m.id] = file;
  }
  fs.writeFileSync(path.join(to.dir, INDEX), JSON.stringify({ version: 1, mounts: index }, null, 1));
  return Object.keys(index).length;
}

/** Replaces local cache mounts with those at `from`; returns how many. */
export async function importMounts(store: Store, from: MountsLocation, ro: RegistryOptions, o: OpOptions = {}): Promise<number> {
  if ('registry' in from) return importMountsFromRegistry(store, from.registry, ro, { signal: o.signal, log: logger(o) });
  const manifest = path.join(from.dir, INDEX);
  if (!fs.existsSync(manifest)) throw new UsageError(`${from.dir} has no ${INDEX}: give a directory written by "tsbuild cache export-mounts"`);
  const { mounts } = JSON.parse(fs.readFileSync(manifest, 'utf8')) as { mounts: Record<string, string> };
  let n = 0;
  for (const [id, file] of Object.entries(mounts)) {
    if (file.includes('/') || file.startsWith('.')) throw new UsageError(`${manifest}: bad entry ${file}`);
    await restoreMount(store.root, id, fs.createReadStream(path.join(from.dir, file)));
    n++;
  }
  return n;
}

export async function prune(store: Store, o: PruneOptions): Promise<{ records: number; bytes: number }> {
  return pruneCache(store, o);
}
