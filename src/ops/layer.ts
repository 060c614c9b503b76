/** Turning an active snapshot into the next state: diff → blob → commit under the layer's ChainID. */
import fs from 'node:fs';
import { chainIDs, diffUpperDir, diffTrees, materializeCopiedUpLinks, treeChanges, MediaType, END_OF_ARCHIVE, sha256, type History, type UpperDir } from '../image/index.js';

/** The digest of a tar with no entries: a tree diff that found nothing. */
const EMPTY_TAR = sha256(END_OF_ARCHIVE);
import { readLayerMeta, readXattrs } from '../runtime/index.js';
import { SnapshotError, type Mount, type Snapshotter } from '../snapshotter/index.js';
import { TsbuildError } from '../errors/index.js';
import { withMounted } from '../store/index.js';
import type { OpsEnv, StateRef } from './types.js';

/** Runs `fn` with the parent's tree mounted read-only (undefined when there is no parent). */
async function withLower<T>(env: OpsEnv, mounts: Mount[], fn: (dir: string | undefined) => Promise<T>): Promise<T> {
  return mounts.length === 0 ? fn(undefined) : withMounted(env.storeRoot, mounts, fn);
}

/**
 * A snapshot whose layer also holds its snapshot ancestors' own changes (this many of them): a COPY
 * written as only its changes on the previous result of the same step (copy.ts). Its layer is compared
 * with the tree under the last of them, which is the step's real parent.
 */
export const SQUASHED = 'tsbuild.squashed';

/** The snapshot a committed snapshot's layer is a change of: its parent, past the ancestors squashed into it. */
export async function layerParent(sn: Snapshotter, key: string): Promise<string | undefined> {
  const info = await sn.stat(key);
  let p = info.parent;
  for (let n = Number(info.labels[SQUASHED] ?? 0); n > 0 && p !== undefined; n--) p = (await sn.stat(p)).parent;
  return p;
}

/**
 * The layer of an overlay upperdir, compared with the parent's tree; with `squash` (committed snapshots
 * under the active one, top first), their upperdirs join it, merged as overlay merges them.
 */
async function upperBlob(env: OpsEnv, activeKey: string, upper: string, meta: { xattrs: Map<string, Record<string, Buffer>>; opaque: Set<string>; copiedUp: Set<string> }, squash: string[]): Promise<{ digest: string; size: number }> {
  const own = await env.snapshotter.diffBase?.(activeKey);
  const base = squash.length > 0 ? await env.snapshotter.diffBase?.(squash.at(-1)!) : own;
  const below: UpperDir[] = [];
  for (const k of squash) {
    const dir = await env.snapshotter.upperDir?.(k);
    if (!dir) throw new Error(`internal: snapshot ${k} has no upperdir to join into this layer`);
    const m = readLayerMeta(dir);
    below.push({ dir, opaque: m.opaque, xattrs: m.xattrs });
  }
  return withLower(env, base?.lower ?? [], async (lower) => {
    if (lower === undefined) return env.store.writeBlob(diffUpperDir(upper, { opaqueDirs: new Set(), sourceDateEpoch: env.sourceDateEpoch, xattrs: meta.xattrs, below }));
    if (own && materializeCopiedUpLinks(upper, lower, { index: own.index, copiedUp: meta.copiedUp }, meta.opaque) > 0) meta.xattrs = readLayerMeta(upper).xattrs;
    // Only the lower entries the upperdirs name are compared, so only their xattrs are read.
    const lowerXattrs = readXattrs(lower, Array.from(treeChanges(undefined, upper, { overlay: { opaque: new Set(), below } }), (c) => c.rel));
    return env.store.writeBlob(diffUpperDir(upper, { opaqueDirs: meta.opaque, sourceDateEpoch: env.sourceDateEpoch, xattrs: meta.xattrs, lower: { dir: lower, xattrs: lowerXattrs }, below }));
  });
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
 * Commits an active snapshot as the next state. `squash`: committed snapshots under it, top first,
 * whose own changes are part of this step's layer (an active snapshot prepared on the previous result
 * of the same step, holding only what changed since; overlay only).
 */
export async function commitState(env: OpsEnv, activeKey: string, parent: StateRef, history: History[], entry: History, squash: string[] = []): Promise<StateRef> {
  const upper = await env.snapshotter.upperDir?.(activeKey);
  let blob: { digest: string; size: number };
  if (upper) {
    if (squash.length === 0 && fs.readdirSync(upper).length === 0) {
      await env.snapshotter.remove(activeKey);
      return { ...parent, history: [...parent.history, ...history, { ...entry, empty_layer: true }] };
    }
    const meta = readLayerMeta(upper);
    blob = await noSpaceNamed(env, () => upperBlob(env, activeKey, upper, meta, squash));
    if (blob.digest === EMPTY_TAR) {
      await env.snapshotter.remove(activeKey);
      return { ...parent, history: [...parent.history, ...history, { ...entry, empty_layer: true }] };
    }
  } else {
    if (squash.length > 0) throw new Error(`internal: snapshotter ${env.snapshotter.driver} cannot join snapshots into one layer`);
    const dirs = await env.snapshotter.diffDirs?.(activeKey);
    if (!dirs) throw new Error(`snapshotter ${env.snapshotter.driver} offers no way to compute layer diffs`);
    const xattrs = { lower: dirs.lower ? readXattrs(dirs.lower) : undefined, upper: readXattrs(dirs.upper) };
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
  if (exists) await env.snapshotter.remove(activeKey);
  else {
    try {
      await env.snapshotter.commit(chain, activeKey, squash.length > 0 ? { [SQUASHED]: String(squash.length) } : undefined);
    } catch (e) {
      // A concurrent build committed the same content first: use theirs.
      if (!(e instanceof SnapshotError && e.code === 'SNAPSHOT_EXISTS')) throw e;
      await env.snapshotter.remove(activeKey);
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
