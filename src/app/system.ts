/** `image prune` and `system df`: what images, containers and build cache hold, and removing unused images. */
import { STORED, type Manifest } from '../image/index.js';
import type { ContainerState } from '../runtime/index.js';
import { gcWithCache, storeAccounting, type Accounting, type Store } from '../store/index.js';
import { listVolumes } from './volumes.js';

export interface ImagePruneOptions {
  /** Every image no container uses, not only untagged ones. */
  all?: boolean;
  /** Only images stored longer ago than this (ms). */
  untilMs?: number;
}

/** Removes untagged images (with `all`, every image no container uses); returns what went and the bytes freed. */
export async function pruneImages(store: Store, o: ImagePruneOptions = {}): Promise<{ deleted: string[]; untagged: string[]; bytes: number }> {
  const used = new Set(store.containers.list().map((c) => c.imageId));
  const old = (stored: string | undefined) => o.untilMs === undefined || (stored !== undefined && Date.now() - Date.parse(stored) > o.untilMs);
  // A damaged manifest has no id to match: it is never pruned here (rmi of its name removes it).
  const configOf = (digest: string) => {
    try {
      return store.content.readJSON<Manifest>(digest).config.digest;
    } catch {
      return undefined;
    }
  };
  const deleted: string[] = [];
  const untagged: string[] = [];
  for (const d of store.content.dangling()) {
    const id = configOf(d.digest);
    if (id === undefined || used.has(id) || !old(d.annotations?.[STORED])) continue;
    store.content.removeDangling(d.digest);
    deleted.push(id);
  }
  if (o.all) {
    const entries = store.content.entries();
    for (const r of store.content.list()) {
      // A multi-platform name is unused only when no container uses any of its platforms' images.
      const ids = entries.filter((e) => e.name === r.name).map((e) => configOf(e.manifest.digest));
      if (ids.length === 0 || ids.some((id) => id === undefined || used.has(id)) || !old(r.manifest.annotations?.[STORED])) continue;
      store.content.untag(r.name);
      untagged.push(r.name);
      if (!store.content.list().some((x) => x.manifest.digest === r.manifest.digest)) deleted.push(...(ids as string[]));
    }
  }
  const g = await gcWithCache(store);
  return { deleted, untagged, bytes: g.blobBytes };
}

export interface DfRow {
  type: 'Images' | 'Containers' | 'Local Volumes' | 'Build Cache';
  total: number;
  active: number;
  size: number;
  reclaimable: number;
}

/** `system df`: Docker's four rows. Image sizes count each layer blob once, however many images share it. */
export async function diskUsage(store: Store): Promise<DfRow[]> {
  const containers = store.containers.list();
  const usedIds = new Set(containers.map((c) => c.imageId));
  const blobs = new Map<string, { size: number; used: boolean }>();
  const images = store.content.entries().map((r) => r.manifest.digest);
  const unique = [...new Set(images)];
  let active = 0;
  for (const digest of unique) {
    let m: Manifest;
    try {
      m = store.content.readJSON<Manifest>(digest);
    } catch {
      continue; // a damaged image is named by `images`; it does not stop the accounting of the rest
    }
    const inUse = usedIds.has(m.config.digest);
    if (inUse) active++;
    for (const d of [m.config, ...m.layers]) {
      const b = blobs.get(d.digest) ?? { size: d.size, used: false };
      b.used ||= inUse;
      blobs.set(d.digest, b);
    }
  }
  const sum = (f: (b: { size: number; used: boolean }) => boolean) => [...blobs.values()].filter(f).reduce((a, b) => a + b.size, 0);
  let ctrSize = 0;
  for (const c of containers) ctrSize += await store.snapshotter.usage(c.snapshot).then((u) => u.size, () => 0);
  const cache = store.cache.list();
  // Retired trees (duplicates waiting to be deleted) are build cache no build can use: all reclaimable.
  const cacheSize = cache.reduce((a, r) => a + r.size, 0) + store.snapshotter.retired().bytes;
  const vols = listVolumes(store, [], true);
  return [
    { type: 'Images', total: unique.length, active, size: sum(() => true), reclaimable: sum((b) => !b.used) },
    { type: 'Containers', total: containers.length, active: containers.filter((c) => c.status === 'running').length, size: ctrSize, reclaimable: ctrSize },
    { type: 'Local Volumes', total: vols.length, active: vols.filter((v) => v.Links > 0).length, size: vols.reduce((a, v) => a + v.Size, 0), reclaimable: vols.filter((v) => v.Links === 0).reduce((a, v) => a + v.Size, 0) },
    { type: 'Build Cache', total: cache.length, active: 0, size: cacheSize, reclaimable: cacheSize },
  ];
}

export interface DfVerbose {
  images: { name?: string; id: string; created?: string; size: number; shared: number; unique: number; containers: number }[];
  containers: { c: ContainerState; size: number }[];
  cache: { id: string; description: string; size: number; created: string; lastUsed: string; shared: boolean }[];
  /** What holds each snapshot and blob; entries without holders go at the next GC. */
  accounting: Accounting;
}

/** `system df -v`: per image (shared and unique sizes), per container, per cache record, and the store's accounting. */
export async function diskUsageVerbose(store: Store): Promise<DfVerbose> {
  const containers = store.containers.list();
  const recs = store.content.entries().map((r) => ({ d: r.manifest, name: r.name }));
  const manifests = new Map<string, Manifest>();
  const users = new Map<string, number>();
  for (const r of recs) {
    try {
      const m = store.content.readJSON<Manifest>(r.d.digest);
      manifests.set(r.d.digest, m);
      for (const l of new Set(m.layers.map((x) => x.digest))) users.set(l, (users.get(l) ?? 0) + 1);
    } catch {
      // damaged: named by `images`
    }
  }
  const images: DfVerbose['images'] = [];
  for (const r of recs) {
    const m = manifests.get(r.d.digest);
    if (!m) continue;
    const size = m.layers.reduce((a, l) => a + l.size, 0);
    const shared = m.layers.filter((l) => (users.get(l.digest) ?? 0) > 1).reduce((a, l) => a + l.size, 0);
    images.push({ name: r.name, id: m.config.digest, created: r.d.annotations?.[STORED], size, shared, unique: size - shared, containers: containers.filter((c) => c.imageId === m.config.digest).length });
  }
  const ctr: DfVerbose['containers'] = [];
  for (const c of containers) ctr.push({ c, size: c.snapshot ? await store.snapshotter.usage(c.snapshot).then((u) => u.size, () => 0) : 0 });
  const imageLayers = new Set([...manifests.values()].flatMap((m) => m.layers.map((l) => l.digest)));
  const cache = store.cache.list().map((r) => ({
    id: r.key.replace(/^sha256:/, '').slice(0, 12), description: r.description, size: r.size, created: r.created, lastUsed: r.lastUsed,
    shared: r.layer !== null && imageLayers.has(r.layer.descriptor.digest),
  }));
  return { images, containers: ctr, cache, accounting: await storeAccounting(store) };
}
