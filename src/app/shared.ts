/**
 * A build's steps among other processes on the same store: a missed step is claimed so that concurrent
 * builds run it once (`claimStep`), and what a step takes from the store or makes in it is held by the
 * build's lease against GC run meanwhile by prune, rmi or another build (`leased`).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { CacheKey, OpContext, OpFn, OpHandle } from '../builder/index.js';
import { acquireLock } from '../fsutil/index.js';
import type { OpResult } from '../ops/index.js';
import { withGcLock, type Lease } from '../store/index.js';

/** What a result takes from the store: its snapshot and blobs, which GC must leave to this build. */
function usedBy(r: OpResult): string[] {
  if (r.kind === 'state') return [...(r.snapshot ? [r.snapshot] : []), ...r.layers.map((l) => l.descriptor.digest)];
  if (r.kind === 'export') return [r.manifest.digest, r.configDigest];
  return [];
}

/**
 * An op whose results are held by the build's lease. A cache hit is looked up under the GC lock, so a
 * GC running meanwhile either removed the snapshot first (a miss) or sees the hold (kept).
 */
export function leased(h0: OpHandle<OpResult> | OpFn<OpResult>, root: string, lease: Lease, locked: boolean): OpHandle<OpResult> {
  const h: OpHandle<OpResult> = typeof h0 === 'function' ? { run: h0 } : h0;
  const load = h.load;
  const held = async (key: CacheKey, inputs: OpResult[], ctx: OpContext) => {
    const r = await load!.call(h, key, inputs, ctx);
    if (r) lease.hold(usedBy(r));
    return r;
  };
  return {
    ...h,
    load: load && ((key, inputs, ctx) => (locked ? withGcLock(root, () => held(key, inputs, ctx), ctx.signal) : held(key, inputs, ctx))),
    run: async (inputs, ctx) => {
      const r = await h.run(inputs, ctx);
      lease.hold(usedBy(r));
      return r;
    },
  };
}

/**
 * One build at a time runs the work of a cache key on this store; the others wait and then take its
 * result from the cache. The lock is a directory in tmp/ naming its owner pid: a killed holder's is
 * taken over at once, and recovery reaps it.
 */
export async function claimStep(storeRoot: string, key: string, signal: AbortSignal, onWait: (holder: string) => void): Promise<() => void> {
  const lock = path.join(storeRoot, 'tmp', `step-${crypto.createHash('sha256').update(key).digest('hex')}.lock`);
  const now = await acquireLock(lock, { wait: false });
  if (now) return now;
  let owner = '';
  try {
    owner = fs.readFileSync(path.join(lock, 'owner'), 'utf8').trim();
  } catch {
    // released meanwhile
  }
  onWait(owner === String(process.pid) ? 'another step of this build' : `another build${owner ? ` (pid ${owner})` : ''}`);
  return (await acquireLock(lock, { wait: true, signal }))!;
}
