/**
 * Garbage collection: blobs no image names, and committed snapshots no image's layer chain (nor a
 * container) needs. Metadata first, disk after; what a live build is using is active, never committed,
 * so it is never a candidate.
 */
import { chainIDs, type ContentStore, type ImageConfig, type Manifest } from '../image/index.js';
import { SnapshotError, type Snapshotter } from '../snapshotter/index.js';
import type { Store } from './store.js';
import { liveLeases, withGcLock, type LiveLeases } from './leases.js';

export interface GcResult {
  blobBytes: number;
  snapshots: number;
}

/** Why each snapshot is kept: by which image, container or cache record, or as a parent. */
export type Holders = Map<string, string[]>;

/**
 * The roots of GC, with who holds each snapshot: every image's layer chain, the snapshots given in
 * `keep` (containers, cache records, with their reasons), active snapshots, and the parents of all
 * of them. GC removes the committed snapshots no one holds; `system df -v` shows the same answer.
 */
export async function snapshotHolders(store: ContentStore, snapshotter: Snapshotter, keep: Map<string, string[]> = new Map(), leases: LiveLeases = { holds: new Set() }): Promise<{ holders: Holders; infos: Map<string, { parent?: string; kind: string }> }> {
  const holders: Holders = new Map();
  const hold = (k: string, why: string) => holders.set(k, [...(holders.get(k) ?? []), why]);
  for (const [k, whys] of keep) for (const w of whys) hold(k, w);
  for (const rec of store.entries().map((r) => ({ d: r.manifest, name: r.name ?? r.manifest.digest.slice(7, 19) }))) {
    try {
      const m = store.readJSON<Manifest>(rec.d.digest);
      const c = store.readJSON<ImageConfig>(m.config.digest);
      for (const id of chainIDs(c.rootfs.diff_ids)) hold(id, `image ${rec.name}`);
    } catch {
      // an image with missing blobs keeps nothing
    }
  }
  const infos = new Map<string, { parent?: string; kind: string }>();
  await snapshotter.walk((i) => {
    infos.set(i.key, { parent: i.parent, kind: i.kind });
    if (leases.holds.has(i.key)) hold(i.key, 'a running build');
    else if (leases.since !== undefined && Date.parse(i.created) >= leases.since - LEASE_MARGIN_MS) hold(i.key, 'made while a build runs');
  });
  for (const [k, i] of infos) if (i.kind !== 'committed') hold(k, `${i.kind} (in use or left by a process)`);
  // Everything a held snapshot stands on is held too.
  for (const k of [...holders.keys()]) for (let p = infos.get(k)?.parent; p; p = infos.get(p)?.parent) if (!holders.has(p)) hold(p, `parent of ${k.slice(0, 19)}`);
  return { holders, infos };
}

/** Clock steps between the lease's time and the files' (both this machine's wall clock) are small. */
const LEASE_MARGIN_MS = 2000;

export async function gcStore(store: ContentStore, snapshotter: Snapshotter, keepSnapshots: Map<string, string[]> = new Map(), keepBlobs: string[] = [], leases: LiveLeases = { holds: new Set() }): Promise<GcResult> {
  const { holders, infos } = await snapshotHolders(store, snapshotter, keepSnapshots, leases);
  let removed = 0;
  for (let progress = true; progress; ) {
    progress = false;
    const parents = new Set([...infos.values()].map((i) => i.parent).filter(Boolean));
    for (const [k] of infos) {
      if (holders.has(k) || parents.has(k)) continue;
      infos.delete(k);
      progress = true;
      try {
        await snapshotter.remove(k);
        removed++;
      } catch (e) {
        // A command started on it since the walk (`run` of an image being removed), or it is gone.
        if (!(e instanceof SnapshotError && (e.code === 'SNAPSHOT_IN_USE' || e.code === 'SNAPSHOT_NOT_FOUND'))) throw e;
      }
    }
  }
  await snapshotter.cleanup();
  // A GC is asked for space: duplicates waiting to be deleted go too.
  await snapshotter.reapRetired(0);
  const since = leases.since === undefined ? undefined : leases.since - LEASE_MARGIN_MS;
  return { blobBytes: store.gcBlobs([...keepBlobs, ...leases.holds], since), snapshots: removed };
}

/** The store-level roots: containers' layers and cache records' snapshots and blobs, with reasons. */
export function storeRoots(s: Store): { snapshots: Map<string, string[]>; blobs: Map<string, string[]> } {
  const snapshots = new Map<string, string[]>();
  const blobs = new Map<string, string[]>();
  const add = (m: Map<string, string[]>, k: string, why: string) => m.set(k, [...(m.get(k) ?? []), why]);
  for (const c of s.containers.list()) if (c.snapshot) add(snapshots, c.snapshot, `container ${c.name}`);
  for (const r of s.cache.list()) {
    const what = `cache ${r.key.slice(7, 19)} (${r.description})`;
    if (r.snapshot) add(snapshots, r.snapshot, what);
    if (r.layer) add(blobs, r.layer.descriptor.digest, what);
  }
  return { snapshots, blobs };
}

/**
 * GC of a whole store: images, containers, cache records and running builds' leases are the roots.
 * Under the GC lock, so a build's cache hit is never removed under it.
 */
export async function gcWithCache(s: Store): Promise<GcResult> {
  return withGcLock(s.root, async () => {
    const roots = storeRoots(s);
    const r = await gcStore(s.content, s.snapshotter, roots.snapshots, [...roots.blobs.keys()], liveLeases(s.root));
    // Where blobs live in registries matters only for blobs we still have (cross-repository mounts).
    s.blobSources.retain((d) => s.content.has(d));
    return r;
  });
}

export interface Accounting {
  snapshots: { key: string; kind: string; size: number; holders: string[] }[];
  blobs: { digest: string; size: number; holders: string[] }[];
}

/**
 * What holds each snapshot and blob, by the same roots GC uses: an entry without holders is what
 * the next GC (any build, `prune`) removes. `system df -v` prints it.
 */
export async function storeAccounting(s: Store): Promise<Accounting> {
  const roots = storeRoots(s);
  const leases = liveLeases(s.root);
  const { holders, infos } = await snapshotHolders(s.content, s.snapshotter, roots.snapshots, leases);
  const snapshots: Accounting['snapshots'] = [];
  for (const [key, i] of infos) snapshots.push({ key, kind: i.kind, size: await s.snapshotter.usage(key).then((u) => u.size, () => 0), holders: holders.get(key) ?? [] });
  const blobHolders = new Map(roots.blobs);
  const add = (d: string, why: string) => blobHolders.set(d, [...(blobHolders.get(d) ?? []), why]);
  for (const d of leases.holds) if (d.startsWith('sha256:')) add(d, 'a running build');
  for (const rec of s.content.entries().map((r) => ({ d: r.manifest, index: r.index, name: r.name ?? r.manifest.digest.slice(7, 19) }))) {
    add(rec.d.digest, `image ${rec.name}`);
    if (rec.index) add(rec.index.digest, `image ${rec.name}`);
    try {
      const m = s.content.readJSON<Manifest>(rec.d.digest);
      for (const b of [m.config, ...m.layers]) add(b.digest, `image ${rec.name}`);
    } catch {
      // a damaged image: its manifest is held, the rest cannot be known (and GC keeps every blob)
    }
  }
  const blobs = s.content.blobs().map((b) => ({ ...b, holders: blobHolders.get(b.digest) ?? [] }));
  return { snapshots, blobs };
}
