/**
 * Prune policy: which cache records go (`--all`, `until=`, `--keep-storage`, least recently used
 * first), the cache mounts that go with them, and the automatic GC that `<store>/config.json`
 * (`{"gc": {"keepStorage": "10GB"}}`) asks for after every build. Records go first, then one GC sweep
 * deletes what nothing needs any more.
 */
import { UsageError } from '../errors/index.js';
import type { CacheRecord } from '../cache/index.js';
import { listCacheMounts, removeCacheMount } from './cachemounts.js';
import { gcWithCache } from './gc.js';
import { readStoreConfig, type Store } from './store.js';

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
    for (const r of [...records].sort((a, b) => a.lastUsed.localeCompare(b.lastUsed))) {
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

/** After a build: prune down to `gc.keepStorage` of the store's config.json, when it sets one. */
export async function autoGc(s: Store): Promise<void> {
  const keep = readStoreConfig(s.root).gc?.keepStorage;
  if (!keep) return;
  await pruneCache(s, { keepStorage: parseSize(keep) });
}
