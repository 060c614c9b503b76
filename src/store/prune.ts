/**
 * Prune policy: which cache records go (`--all`, `until=`, `--keep-storage`, least recently used
 * first), the cache mounts that go with them, and the automatic GC after every build: retired trees
 * beyond `gc.keepRetired`, and the cache beyond `gc.keepStorage` when `<store>/config.json` sets it
 * (`{"gc": {"keepStorage": "10GB"}}`). Records go first, then one GC sweep deletes what nothing
 * needs any more.
 */
import fs from 'node:fs';
import path from 'node:path';
import { errnoCode, TsbuildError, UsageError } from '../errors/index.js';
import type { CacheRecord } from '../cache/index.js';
import { listCacheMounts, removeCacheMount } from './cachemounts.js';
import { gcWithCache } from './gc.js';
import { readStoreConfig, type Store } from './store.js';
import { byText } from '../fsutil/index.js';

export function parseSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)$/i.exec(s.trim());
  if (!m) throw new UsageError(`invalid size "${s}": use a number with an optional unit, e.g. 512MB or 10GB`);
  const unit = m[2]!.toLowerCase();
  const base = m[3]!.toLowerCase().startsWith('i') ? 1024 : 1000;
  const pow = { '': 0, k: 1, m: 2, g: 3, t: 4 }[unit] ?? 0;
  return Math.round(parseFloat(m[1]!) * base ** pow);
}

export function parseUntil(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(s|m|h|d)$/.exec(s.trim());
  if (!m) throw new UsageError(`invalid duration "${s}": use e.g. 30m, 24h or 7d`);
  return parseFloat(m[1]!) * { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3 }[m[2] as 's' | 'm' | 'h' | 'd'];
}

export interface PruneOptions {
  all?: boolean;
  untilMs?: number;
  keepStorage?: number;
}

/** Records to drop: older than `until`, then least recently used until the rest fits `keepStorage`. */
export function selectPrune(records: CacheRecord[], o: PruneOptions & { now?: number }): CacheRecord[] {
  if (o.all) return records;
  const now = o.now ?? Date.now();
  const drop = new Set<CacheRecord>();
  if (o.untilMs !== undefined) for (const r of records) if (now - Date.parse(r.lastUsed) > o.untilMs) drop.add(r);
  if (o.keepStorage !== undefined) {
    let total = records.filter((r) => !drop.has(r)).reduce((a, r) => a + r.size, 0);
    for (const r of [...records].sort((a, b) => byText(a.lastUsed, b.lastUsed))) {
      if (total <= o.keepStorage) break;
      if (drop.has(r)) continue;
      drop.add(r);
      total -= r.size;
    }
  }
  if (o.untilMs === undefined && o.keepStorage === undefined) return records;
  return [...drop];
}

export async function pruneCache(s: Store, o: PruneOptions): Promise<{ records: number; bytes: number }> {
  const idx = s.cache;
  const drop = selectPrune(idx.list(), o);
  for (const r of drop) idx.remove(r.key);
  // Cache mounts go with the rest: all of them, or those unused for longer than `until`.
  if (o.keepStorage === undefined) {
    for (const m of listCacheMounts(s.root)) {
      if (o.untilMs !== undefined && !o.all && Date.now() - m.lastUsed.getTime() <= o.untilMs) continue;
      removeCacheMount(m);
    }
  }
  const g = await gcWithCache(s);
  return { records: drop.length, bytes: g.blobBytes };
}

/**
 * How many bytes of retired snapshot trees (duplicates a build made of snapshots the store has) may
 * wait to be deleted: `gc.keepRetired` of config.json, 1GB by default. A build deletes the oldest
 * beyond it before it ends; every prune and `rmi` deletes them all.
 */
const DEFAULT_KEEP_RETIRED = '1GB';

/** The store's GC settings from config.json, in bytes; a value that does not parse names its key. */
export function gcConfig(root: string): { keepRetired: number; keepStorage?: number } {
  const gc = readStoreConfig(root).gc;
  return {
    keepRetired: configSize(root, 'gc.keepRetired', gc?.keepRetired ?? DEFAULT_KEEP_RETIRED),
    // An empty value leaves the cache unbounded, as a missing one does (and as it did before).
    keepStorage: gc?.keepStorage !== undefined && gc.keepStorage !== '' ? configSize(root, 'gc.keepStorage', gc.keepStorage) : undefined,
  };
}

/**
 * Whether the filesystem holding `dir` has less than a tenth of its space or of its inodes free
 * (a filesystem without an inode count, such as btrfs, reports none and is judged by space).
 */
export function storeShort(dir: string): boolean {
  try {
    const st = fs.statfsSync(dir);
    return st.bavail < st.blocks / 10 || (st.files > 0 && st.ffree < st.files / 10);
  } catch {
    return false;
  }
}

/**
 * After a build: retired trees beyond `gc.keepRetired` and, while the store's filesystem is short
 * (`storeShort`), the rest oldest first; then the cache down to `gc.keepStorage`, when set.
 */
export async function autoGc(s: Store): Promise<void> {
  const gc = gcConfig(s.root);
  await s.snapshotter.reapRetired(gc.keepRetired, () => storeShort(s.root));
  if (gc.keepStorage !== undefined) await pruneCache(s, { keepStorage: gc.keepStorage });
}

/** Whether `e`, or an error under it, is a full disk (no space or no inodes left). */
function diskFull(e: unknown): boolean {
  for (let x = e; x instanceof Error; x = x.cause) {
    if (errnoCode(x) === 'ENOSPC' || (x instanceof TsbuildError && x.code === 'NO_SPACE')) return true;
  }
  return false;
}

/**
 * After a build that failed on a full disk: every retired tree is deleted, so that the same build
 * run again finds the room they held. What was deleted, or undefined for another failure.
 */
export async function reapAfterFull(s: Store, e: unknown): Promise<{ trees: number; bytes: number } | undefined> {
  if (!diskFull(e)) return undefined;
  return s.snapshotter.reapRetired(0);
}

function configSize(root: string, key: string, v: unknown): number {
  if (typeof v === 'number' && Number.isFinite(v) && v >= 0) return v;
  const where = ` (${key} in ${path.join(root, 'config.json')})`;
  if (typeof v !== 'string') throw new UsageError(`invalid size ${JSON.stringify(v)}: use a number with an optional unit, e.g. 512MB or 10GB${where}`);
  try {
    return parseSize(v);
  } catch (e) {
    throw new UsageError(`${(e as Error).message}${where}`);
  }
}
