/**
 * A build's steps among other processes on the same store: a missed step is claimed so that concurrent
 * builds run it once (`claimStep`), and what a step takes from the store or makes in it is held by the
 * build's lease against GC run meanwhile by prune, rmi or another build (`leased`).
 */
import crypto from 'node:crypto';
import path from 'node:path';
import type { OpFn, OpHandle } from '../builder/index.js';
import { acquireLock, lockOwner } from '../fsutil/index.js';
import type { OpResult } from '../ops/index.js';
import { withGcLock, type Lease } from '../store/index.js';

/** What a result takes from the store: its snapshot and blobs, which GC must leave to this build. */
function usedBy(r: OpResult): string[] {
  if (r.kind === 'state') return [...(r.snapshot ? [r.snapshot] : []), ...r.layers.map((l) => l.descriptor.digest)];
  if (r.kind === 'export') return [r.manifest.digest, r.configDigest];
  return [];
}

/** Whether a result's snapshot and blobs are all still in the store. */
export type Present = (r: OpResult) => Promise<boolean>;

/**
 * An op whose results are held by the build's lease. A cache hit is looked up under the GC lock, so a
 * GC running meanwhile either removed the snapshot first (a miss) or sees the hold (kept). A source (a
 * base image, which may be pulled: too long to hold the lock for) is resolved without it, then held
 * under it once it is checked to be still there; resolved again if a GC took it in between.
 */
export function leased(h0: OpHandle<OpResult> | OpFn<OpResult>, root: string, lease: Lease, source: boolean, present: Present): OpHandle<OpResult> {
  const h: OpHandle<OpResult> = typeof h0 === 'function' ? { run: h0 } : h0;
  const load = h.load;
  const hold = (r: OpResult | undefined) => {
    if (r) lease.hold(usedBy(r));
    return r;
  };
  /** Resolves a source and holds it; at most three tries against a GC that keeps removing it. */
  const resolved = async (get: () => Promise<OpResult | undefined>, signal: AbortSignal): Promise<OpResult | undefined> => {
    for (let attempt = 0; ; attempt++) {
      const r = await get();
      if (!r) return r;
      const kept = await withGcLock(root, async () => ((await present(r)) ? hold(r) : undefined), signal);
      if (kept || attempt === 2) return kept ?? r;
    }
  };
  return {
    ...h,
    load:
      load &&
      ((key, inputs, ctx) => {
        const get = () => load.call(h, key, inputs, ctx);
        return source ? resolved(get, ctx.signal) : withGcLock(root, async () => hold(await get()), ctx.signal);
      }),
    run: async (inputs, ctx) => {
      if (source) return (await resolved(() => h.run(inputs, ctx), ctx.signal))!;
      // What a step makes is new: GC keeps everything made while a lease is open.
      return hold(await h.run(inputs, ctx))!;
    },
  };
}

/**
 * One build at a time runs the work of a cache key on this store; the others wait and then take its
 * result from the cache. The lock in tmp/ names its owner pid: a killed holder's is
 * taken over at once, and recovery reaps it.
 */
export async function claimStep(storeRoot: string, key: string, signal: AbortSignal, onWait: (holder: string) => void): Promise<() => void> {
  const lock = path.join(storeRoot, 'tmp', `step-${crypto.createHash('sha256').update(key).digest('hex')}.lock`);
  const now = await acquireLock(lock, { wait: false });
  if (now) return now;
  const owner = lockOwner(lock);
  onWait(owner === process.pid ? 'another step of this build' : `another build${owner ? ` (pid ${owner})` : ''}`);
  return (await acquireLock(lock, { wait: true, signal }))!;
}
