/**
 * Cache behaviour of each op: what its key is made of, how a cached result is rebuilt from a record,
 * and what is saved. Keys name parents by their content (the snapshot ChainID), never by position, so a
 * record can only be reused on top of exactly the filesystem it was built on.
 */
import type { CacheKey, OpContext, OpHandle, Vertex } from '../builder/index.js';
import { digestOf, explainMiss, type CacheIndex, type CacheRecord, type ChecksumMemos } from '../cache/index.js';
import { chainIDs, type Descriptor, type History } from '../image/index.js';
import { TsbuildError } from '../errors/index.js';
import { unpackLayers } from '../store/index.js';
import { SnapshotError } from '../snapshotter/index.js';
import { contextMaterial, isURL } from './copysource.js';
import { Downloads } from './fetch.js';
import { opMaterial } from './keys.js';
import { layerParent } from './layer.js';
import { copyTimesOf, noteWalkTimes, previousCopy, type PreviousCopy } from './copyreuse.js';
import path from 'node:path';
import type { OpResult, OpSpec, OpsEnv, StateRef } from './types.js';

export interface CacheEnv {
  index: CacheIndex;
  /** The checksum memos of the build's contexts. */
  memo: ChecksumMemos;
  /** Records imported from elsewhere (`--cache-from`), consulted when the local index misses. */
  remote?: RemoteCacheSource;
}

/** A source of cache records whose layers can be fetched into the content store on a hit. */
export interface RemoteCacheSource {
  lookup(key: string): RemoteCacheRecord | undefined;
  /** The last key material of a step, by portable id (`Dockerfile#stage#n`). */
  lastStep(portableStepId: string): { key: string; material: Record<string, string> } | undefined;
  fetch(descriptor: Descriptor, signal?: AbortSignal): Promise<void>;
}

export interface RemoteCacheRecord {
  key: string;
  snapshot?: string;
  layer: { diffID: string; descriptor: Descriptor } | null;
  description: string;
  created: string;
}

/** A step id without the machine-specific context path, so it matches across CI runners. */
export function portableStepId(stepId: string): string {
  return stepId.split('#').slice(1).join('#');
}

/** Makes a remote record local: fetches and unpacks its layer onto the parent, then saves it. */
async function importRecord(env: OpsEnv, c: CacheEnv, key: string, parent: StateRef, signal: AbortSignal): Promise<CacheRecord | undefined> {
  const r = c.remote?.lookup(key);
  if (!r) return undefined;
  if (r.layer) {
    await c.remote!.fetch(r.layer.descriptor, signal);
    const top = await unpackLayers(env, [...parent.layers, r.layer], { signal });
    if (top !== r.snapshot) return undefined;
  } else if (r.snapshot !== parent.snapshot) return undefined;
  const rec: CacheRecord = { key, snapshot: r.snapshot, layer: r.layer, description: r.description, created: r.created, lastUsed: new Date().toISOString(), size: r.layer?.descriptor.size ?? 0 };
  c.index.save(rec);
  return rec;
}

/**
 * A record whose snapshot is gone while its layer blob is here: build steps' snapshots are written
 * unsynced (layer.ts), and the sweep after a restart removes them (store/unsynced.ts). The snapshot is
 * unpacked again from the blob onto this parent, as a pulled image's layer is, instead of the step
 * being run again. False (a miss) when the record's snapshot is not that layer on this parent, or
 * the blob does not unpack to its diffID.
 */
async function restoreSnapshot(env: OpsEnv, rec: CacheRecord, parent: StateRef, ctx: OpContext): Promise<boolean> {
  if (!rec.layer || !env.store.has(rec.layer.descriptor.digest)) return false;
  const layers = [...parent.layers, rec.layer];
  if (chainIDs(layers.map((l) => l.diffID)).at(-1) !== rec.snapshot) return false;
  try {
    if ((await unpackLayers(env, layers, { signal: ctx.signal })) !== rec.snapshot) return false;
  } catch (e) {
    if (ctx.signal.aborted || !(e instanceof TsbuildError)) throw e;
    ctx.status(`the cached layer did not unpack (${e.message}); running the step`);
    return false;
  }
  ctx.status('cached layer unpacked again: its snapshot was lost in a restart');
  return true;
}

function stateOf(r: OpResult | undefined): StateRef | undefined {
  return r && r.kind === 'state' ? r : undefined;
}

function parentId(s: StateRef | undefined): string {
  if (!s) return 'none';
  return s.snapshot ?? 'scratch';
}

/**
 * A step's full key material: the op's own (declared per op kind in keys.ts), the snapshotter driver,
 * and what it reads from its inputs: the parent snapshot by ChainID, context files by content, another
 * stage by ChainID, a URL's content when no --checksum names it.
 */
async function material(env: OpsEnv, c: CacheEnv, v: Vertex<OpSpec>, inputs: OpResult[], ctx: OpContext): Promise<Record<string, string> | undefined> {
  const op = v.op;
  const m = opMaterial(op);
  if (!m || op.kind === 'scratch' || op.kind === 'image' || op.kind === 'context') return m;
  m['driver'] = env.snapshotter.driver;
  m['parent'] = parentId(stateOf(inputs[0]));
  if (op.kind === 'exec') {
    op.mounts.forEach((mt, i) => {
      const src = mt.input !== undefined ? inputs[mt.input] : undefined;
      // What a bind mount shows is an input of the step; a cache mount's contents never are.
      if (mt.type !== 'bind') return;
      if (src?.kind === 'context') {
        const files = contextMaterial({ sources: [mt.source || '.'], excludes: [], verb: 'COPY' }, src.dir, src.ignore, c.memo.forContext(src.dir));
        for (const [k, val] of Object.entries(files)) m[`mount:${i}:${k}`] = val;
      } else m[`mount:${i}:src`] = parentId(stateOf(src));
    });
  }
  if (op.kind === 'copy') {
    const src = inputs[1];
    if (src?.kind === 'context') {
      const times: Record<string, number> = Object.create(null) as Record<string, number>;
      Object.assign(m, contextMaterial(op, src.dir, src.ignore, c.memo.forContext(src.dir), times));
      noteWalkTimes(m, times);
    }
    else m['src'] = parentId(stateOf(src));
    for (const s of op.sources.filter((x) => op.verb === 'ADD' && isURL(x))) {
      // No --checksum: the content decides, as in BuildKit; the step reuses this download on a miss.
      m[`url:${s}`] = op.checksum ?? (await downloadsFor(env).get(s, undefined, ctx.signal)).digest;
    }
  }
  return m;
}

/** Downloads for key computation when the build gave none (an op used on its own, in tests). */
function downloadsFor(env: OpsEnv): Downloads {
  return env.downloads ?? (env.downloads = new Downloads(path.join(env.storeRoot, 'tmp', `dl-${process.pid}-${Date.now().toString(36)}`), env.secrets));
}

function stepId(v: Vertex<OpSpec>): string | undefined {
  const id = v.meta['stepId'];
  return typeof id === 'string' ? id : undefined;
}

function entryFor(env: OpsEnv, op: OpSpec, created?: string): History {
  const createdBy = 'createdBy' in op ? op.createdBy : '';
  return { created: created ?? env.created, created_by: createdBy, comment: 'buildkit.dockerfile.v0' };
}

/** Wraps an op's work with its cache behaviour. */
export function withCache(env: OpsEnv, c: CacheEnv | undefined, v: Vertex<OpSpec>, run: (inputs: OpResult[], ctx: OpContext, previous?: PreviousCopy) => Promise<OpResult>): OpHandle<OpResult> {
  if (!c) return { run: (inputs, ctx) => run(inputs, ctx) };
  const op = v.op;
  const source = op.kind === 'scratch' || op.kind === 'image' || op.kind === 'context';
  /** The key the cache was asked for and did not have (never set under --no-cache, which skips load). */
  let missed: CacheKey | undefined;
  return {
    async run(inputs, ctx) {
      // Before save: the step's last key is still the previous build's.
      const previous = missed ? await previousCopy(env, c.index, stepId(v), op, missed, stateOf(inputs[0])?.snapshot) : undefined;
      return run(inputs, ctx, previous);
    },
    async cacheKey(inputs, _keys, ctx): Promise<CacheKey | undefined> {
      const m = await material(env, c, v, inputs, ctx);
      return m ? { key: digestOf(m), material: m } : undefined;
    },
    async load(key, inputs, ctx) {
      if (source) return run(inputs, ctx);
      missed = key;
      const parent = stateOf(inputs[0]);
      if (!parent) return undefined;
      const rec = c.index.lookup(key.key) ?? (await importRecord(env, c, key.key, parent, ctx.signal));
      if (!rec) return undefined;
      if (rec.snapshot) {
        try {
          // A layer's snapshot must sit on this parent (past any snapshots squashed into its layer).
          const on = rec.layer ? await layerParent(env.snapshotter, rec.snapshot) : (await env.snapshotter.stat(rec.snapshot), rec.snapshot);
          if (on !== parent.snapshot) return undefined;
        } catch (e) {
          if (!(e instanceof SnapshotError)) throw e;
          if (!(await restoreSnapshot(env, rec, parent, ctx))) return undefined;
        }
      } else if (rec.layer || parent.snapshot) return undefined;
      if (rec.layer && !env.store.has(rec.layer.descriptor.digest)) return undefined;
      c.index.touch(rec);
      const id = stepId(v);
      if (id) c.index.rememberStep(id, { key: key.key, material: key.material, time: new Date().toISOString() });
      const history = 'history' in op ? op.history : [];
      const entry = entryFor(env, op, rec.created);
      if (!rec.layer) return { ...parent, history: [...parent.history, ...history, { ...entry, empty_layer: true }] };
      return { kind: 'state', snapshot: rec.snapshot, layers: [...parent.layers, rec.layer], history: [...parent.history, ...history, entry] };
    },
    async save(key, result, inputs) {
      if (source) return;
      const id = stepId(v);
      if (id) c.index.rememberStep(id, { key: key.key, material: key.material, time: new Date().toISOString() });
      const parent = stateOf(inputs[0]);
      const st = stateOf(result);
      if (!st || !parent) return;
      const times = op.kind === 'copy' ? copyTimesOf(st) : undefined;
      if (id && times) c.index.rememberCopyTimes(id, times);
      const added = st.layers.length > parent.layers.length ? st.layers.at(-1)! : null;
      const now = new Date().toISOString();
      c.index.save({ key: key.key, snapshot: st.snapshot, layer: added, description: v.name, created: st.history.at(-1)?.created ?? env.created, lastUsed: now, size: added?.descriptor.size ?? 0 });
    },
    explain(key) {
      const id = stepId(v);
      const last = id ? c.index.lastStep(id) ?? c.remote?.lastStep(portableStepId(id)) : undefined;
      return explainMiss(key.material, last?.material, { parentStep: v.inputs[0]?.name });
    },
  };
}
