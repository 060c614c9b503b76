/** Turning an active snapshot into the next state: diff → blob → commit under the layer's ChainID. */
import fs from 'node:fs';
import { chainIDs, diffUpperDir, diffTrees, materializeCopiedUpLinks, treeChanges, MediaType, END_OF_ARCHIVE, sha256, type EntryStat, type History, type UpperDir, LayerSplice } from '../image/index.js';

/** The digest of a tar with no entries: a tree diff that found nothing. */
const EMPTY_TAR = sha256(END_OF_ARCHIVE);
import { overlayDirs, readLayerMetaAsync, type LayerMeta } from '../runtime/index.js';
import { SnapshotError, type Mount, type Snapshotter } from '../snapshotter/index.js';
import { TsbuildError } from '../errors/index.js';
import { unsyncedLabels, withMounted } from '../store/index.js';
import type { OpsEnv, StateRef } from './types.js';

/**
 * A build step's active snapshot, mounted `volatile`: overlay otherwise syncs the whole filesystem
 * the store is on when it is unmounted, every dirty page of it, not only the step's (a one-file COPY
 * build with 200 MB written elsewhere just before: 274 against 287 ms, the slowest of 12 320 against
 * 446 ms; on a quiet disk the same). commitState marks what it
 * commits as written unsynced, and the recovery sweep settles it (store/unsynced.ts): synced a minute
 * later in the same boot; after a restart removed, and unpacked again from its layer blob (which is
 * synced) when a build's cache next finds it (handles.ts), not run again.
 */
export async function prepareStep(env: OpsEnv, key: string, parent: string | undefined): Promise<Mount[]> {
  await env.snapshotter.prepare(key, parent);
  return env.snapshotter.mounts(key, { volatile: true });
}

/** Runs `fn` with the parent's tree mounted read-only (undefined when there is no parent). */
async function withLower<T>(env: OpsEnv, mounts: Mount[], fn: (dir: string | undefined) => Promise<T>): Promise<T> {
  return mounts.length === 0 ? fn(undefined) : withMounted(env.storeRoot, mounts, fn);
}

/**
 * A snapshot whose layer also holds its parent's own changes: a COPY written as only what differs on
 * the step's last full copy (copyreuse.ts). Its layer is compared with the tree under that full copy,
 * the step's real parent. `BASE_LAYER` names the full copy's layer blob, whose bytes it reuses.
 */
export const SQUASHED = 'tsbuild.squashed';
export const BASE_LAYER = 'tsbuild.base-layer';

/** A COPY's active snapshot prepared on a full copy (`base`, committed), and that copy's layer blob. */
export interface Onto {
  base: string;
  layer?: string;
  /** Entries of `base`'s upperdir the copy has lstat'ed, by walk path: the differ need not again. */
  stats?: ReadonlyMap<string, EntryStat>;
  /** `base`'s upperdir's xattrs and opaque marks, asked for early (the helper lists them while the copy runs). */
  meta?: Promise<LayerMeta>;
}

/** The snapshot a committed snapshot's layer is a change of: its parent, past the ancestors squashed into it. */
export async function layerParent(sn: Snapshotter, key: string): Promise<string | undefined> {
  const info = await sn.stat(key);
  let p = info.parent;
  for (let n = Number(info.labels[SQUASHED] ?? 0); n > 0 && p !== undefined; n--) p = (await sn.stat(p)).parent;
  return p;
}

/**
 * The layer of an overlay upperdir, compared with the parent's tree; `onto`: the full copy's upperdir
 * under it joins it, merged as overlay merges them, its files' bytes read from its layer blob.
 */
async function upperBlob(env: OpsEnv, activeKey: string, upper: string, meta: { xattrs: Map<string, Record<string, Buffer>>; opaque: Set<string>; copiedUp: Set<string> }, onto: Onto | undefined): Promise<{ digest: string; size: number }> {
  const own = await env.snapshotter.diffBase?.(activeKey);
  const base = onto ? await env.snapshotter.diffBase?.(onto.base) : own;
  const below: UpperDir[] = [];
  let splice: { layer: number; from: LayerSplice } | undefined;
  if (onto) {
    const dir = await env.snapshotter.upperDir?.(onto.base);
    if (!dir) throw new Error(`internal: snapshot ${onto.base} has no upperdir to join into this layer`);
    const m = await (onto.meta ?? readLayerMetaAsync(dir));
    below.push({ dir, opaque: m.opaque, xattrs: m.xattrs, stats: onto.stats });
    const from = onto.layer && env.store.has(onto.layer) ? LayerSplice.open(env.store.blobPath(onto.layer)) : undefined;
    if (from) splice = { layer: 1, from };
  }
  try {
    return await withLower(env, base?.lower ?? [], async (lower) => {
      if (lower === undefined) return env.store.writeBlob(diffUpperDir(upper, { opaqueDirs: new Set(), sourceDateEpoch: env.sourceDateEpoch, xattrs: meta.xattrs, below, splice }));
      if (own && materializeCopiedUpLinks(upper, lower, { index: own.index, copiedUp: meta.copiedUp }, meta.opaque) > 0) meta.xattrs = (await readLayerMetaAsync(upper)).xattrs;
      // Only the lower entries the upperdirs name are compared, so only their xattrs are read.
      const lowerXattrs = (await readLayerMetaAsync(lower, Array.from(treeChanges(undefined, upper, { overlay: { opaque: new Set(), below } }), (c) => c.rel))).xattrs;
      return env.store.writeBlob(diffUpperDir(upper, { opaqueDirs: meta.opaque, sourceDateEpoch: env.sourceDateEpoch, xattrs: meta.xattrs, lower: { dir: lower, xattrs: lowerXattrs }, below, splice }));
    });
  } finally {
    splice?.from.close();
  }
}

/** A full disk while the layer is written says so, with where and what to do (the partial blob is gone). */
async function noSpaceNamed<T>(env: OpsEnv, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
    throw new TsbuildError('NO_SPACE', `no space left on device writing this step's layer into the store at ${env.storeRoot}`, { cause: e });
  }
}

/**
 * Commits an active snapshot as the next state. `onto`: the active snapshot was prepared on a full copy
 * of the same step, holds only what differs from it, and its layer is both (overlay only).
 */
export async function commitState(env: OpsEnv, activeKey: string, parent: StateRef, history: History[], entry: History, onto?: Onto): Promise<StateRef> {
  const upper = await env.snapshotter.upperDir?.(activeKey);
  let blob: { digest: string; size: number };
  if (upper) {
    if (!onto && fs.readdirSync(upper).length === 0) {
      await env.snapshotter.remove(activeKey);
      return { ...parent, history: [...parent.history, ...history, { ...entry, empty_layer: true }] };
    }
    const meta = await readLayerMetaAsync(upper);
    blob = await noSpaceNamed(env, () => upperBlob(env, activeKey, upper, meta, onto));
    if (blob.digest === EMPTY_TAR) {
      await env.snapshotter.remove(activeKey);
      return { ...parent, history: [...parent.history, ...history, { ...entry, empty_layer: true }] };
    }
  } else {
    if (onto) throw new Error(`internal: snapshotter ${env.snapshotter.driver} cannot join snapshots into one layer`);
    const dirs = await env.snapshotter.diffDirs?.(activeKey);
    if (!dirs) throw new Error(`snapshotter ${env.snapshotter.driver} offers no way to compute layer diffs`);
    const xattrs = { lower: dirs.lower ? (await readLayerMetaAsync(dirs.lower)).xattrs : undefined, upper: (await readLayerMetaAsync(dirs.upper)).xattrs };
    blob = await noSpaceNamed(env, () => env.store.writeBlob(diffTrees(dirs.lower, dirs.upper, { sourceDateEpoch: env.sourceDateEpoch, xattrs })));
    if (blob.digest === EMPTY_TAR) {
      await env.snapshotter.remove(activeKey);
      return { ...parent, history: [...parent.history, ...history, { ...entry, empty_layer: true }] };
    }
  }
  const diffIDs = [...parent.layers.map((l) => l.diffID), blob.digest];
  const chain = chainIDs(diffIDs).at(-1)!;
  let exists = false;
  try {
    await env.snapshotter.stat(chain);
    exists = true;
  } catch (e) {
    if (!(e instanceof SnapshotError)) throw e;
  }
  // The same content as a snapshot the store has (a --no-cache build, or a concurrent build that
  // committed first): that one is used, and this duplicate's files are deleted later, not while the
  // build waits (seconds for a tree of many files).
  if (exists) await env.snapshotter.retire(activeKey, blob.size);
  else {
    try {
      await env.snapshotter.commit(chain, activeKey, { ...unsyncedLabels(), ...(onto ? { [SQUASHED]: '1', ...(onto.layer ? { [BASE_LAYER]: onto.layer } : {}) } : {}) });
    } catch (e) {
      if (!(e instanceof SnapshotError && e.code === 'SNAPSHOT_EXISTS')) throw e;
      await env.snapshotter.retire(activeKey, blob.size);
    }
  }
  return {
    kind: 'state',
    snapshot: chain,
    layers: [...parent.layers, { diffID: blob.digest, descriptor: { mediaType: MediaType.layer, digest: blob.digest, size: blob.size } }],
    history: [...parent.history, ...history, entry],
  };
}

/** The directory where a snapshot's own writes land (overlay upperdir, or a native full copy). */
export async function writableDir(env: OpsEnv, key: string): Promise<string | undefined> {
  return (await env.snapshotter.upperDir?.(key)) ?? (await env.snapshotter.diffDirs?.(key))?.upper;
}

/**
 * The upper directory of a step's mount when it is the kernel's overlay over lower layers, read from
 * the mount itself: a copy writes below the directories it makes straight into it (copytree.ts
 * `belowMade`). Not for fuse-overlayfs, which keeps its own idea of the upper's owners, nor a bind
 * mount, which is the directory itself.
 */
export function overlayUpper(env: OpsEnv, mounts: Mount[]): string | undefined {
  return env.snapshotter.driver === 'overlayfs' && mounts.length === 1 ? overlayDirs(mounts[0]!)?.upper : undefined;
}
