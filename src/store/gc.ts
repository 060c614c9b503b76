/**
 * Garbage collection: blobs no image names, and committed snapshots no image's layer chain (nor a
 * container) needs. Metadata first, disk after; what a live build is using is active, never committed,
 * so it is never a candidate.
 */
import { chainIDs, type ContentStore, type ImageConfig, type Manifest } from '../image/index.js';
import type { Snapshotter } from '../snapshotter/index.js';
import type { Store } from './store.js';

export interface GcResult {
  blobBytes: number;
  snapshots: number;
}

export async function gcStore(store: ContentStore, snapshotter: Snapshotter, keepSnapshots: string[] = [], keepBlobs: string[] = []): Promise<GcResult> {
  const keep = new Set<string>(keepSnapshots);
  for (const rec of [...store.list().map((r) => r.manifest), ...store.dangling()]) {
    try {
      const m = store.readJSON<Manifest>(rec.digest);
      const c = store.readJSON<ImageConfig>(m.config.digest);
      for (const id of chainIDs(c.rootfs.diff_ids)) keep.add(id);
    } catch {
      // an image with missing blobs keeps nothing
    }
  }
  const infos = new Map<string, { parent?: string; kind: string }>();
  await snapshotter.walk((i) => void infos.set(i.key, { parent: i.parent, kind: i.kind }));
  // Everything a kept or active snapshot stands on is kept too.
  for (const [k, i] of infos) if (i.kind !== 'committed') keep.add(k);
  for (const k of [...keep]) for (let p = infos.get(k)?.parent; p; p = infos.get(p)?.parent) keep.add(p);
  let removed = 0;
  for (let progress = true; progress; ) {
    progress = false;
    const parents = new Set([...infos.values()].map((i) => i.parent).filter(Boolean));
    for (const [k] of infos) {
      if (keep.has(k) || parents.has(k)) continue;
      await snapshotter.remove(k);
      infos.delete(k);
      removed++;
      progress = true;
    }
  }
  await snapshotter.cleanup();
  return { blobBytes: store.gcBlobs(keepBlobs), snapshots: removed };
}

/** GC of a whole store: images, containers and cache records are the roots. */
export async function gcWithCache(s: Store): Promise<GcResult> {
  const recs = s.cache.list();
  const snapshots = recs.flatMap((r) => (r.snapshot ? [r.snapshot] : []));
  const blobs = recs.flatMap((r) => (r.layer ? [r.layer.descriptor.digest] : []));
  const r = await gcStore(s.content, s.snapshotter, [...s.containers.list().map((c) => c.snapshot), ...snapshots], blobs);
  // Where blobs live in registries matters only for blobs we still have (cross-repository mounts).
  s.blobSources.retain((d) => s.content.has(d));
  return r;
}
