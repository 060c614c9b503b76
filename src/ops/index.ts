/**
 * ops: the build's operations, one file each (source, exec, copy/add and mkdir, export), each with
 * its cache behaviour (keys.ts declares every op's key material; handles.ts loads and saves results).
 * `createOps(env, cache)` gives the solver its per-vertex work. Ops write only through snapshots and
 * the content store of the `OpsEnv` they are handed.
 *
 * Imports the modules below it (store, runtime, snapshotter, image, cache, parser, opspec, builder
 * types); never planner, app or cli.
 */
import type { OpContext, OpHandle, Vertex } from '../builder/index.js';
import type { PreviousCopy } from './copyreuse.js';
import { withCache, type CacheEnv } from './handles.js';
import { execOp } from './exec.js';
import { copyOp, mkdirOp } from './copy.js';
import { exportOp } from './export.js';
import { imageState, scratchState } from './source.js';
import type { OpResult, OpSpec, OpsEnv, StateRef, ContextRef } from './types.js';

export type { OpResult, BuildSecrets } from './types.js';
export { Downloads } from './fetch.js';
export { portableStepId } from './handles.js';
export type { RemoteCacheSource } from './handles.js';

function state(r: OpResult | undefined, what: string): StateRef {
  if (!r || r.kind !== 'state') throw new Error(`internal: ${what} expects a filesystem state input`);
  return r;
}

/** The builder asks this for each vertex's work; with a cache, each op gets its cache behaviour. */
export function createOps(env: OpsEnv, cache?: CacheEnv): (v: Vertex<OpSpec>) => OpHandle<OpResult> {
  return (v) => withCache(env, cache, v, runFor(env, v));
}

function runFor(env: OpsEnv, v: Vertex<OpSpec>): (inputs: OpResult[], ctx: OpContext, previous?: PreviousCopy) => Promise<OpResult> {
  const op = v.op;
  switch (op.kind) {
    case 'scratch':
      return async () => scratchState();
    case 'image':
      return async (_inputs, ctx) => imageState(env, op, ctx.signal);
    case 'context':
      return async (): Promise<ContextRef> => ({ kind: 'context', dir: op.dir, ignore: op.ignore });
    case 'exec':
      return async (inputs, ctx) => execOp(env, op, state(inputs[0], 'RUN'), inputs, ctx);
    case 'copy':
      return async (inputs, ctx, previous) => {
        const src = inputs[1];
        if (!src || src.kind === 'export') throw new Error('internal: COPY needs a source');
        return copyOp(env, op, state(inputs[0], 'COPY'), src, ctx, previous);
      };
    case 'mkdir':
      return async (inputs) => mkdirOp(env, op, state(inputs[0], 'WORKDIR'));
    case 'export':
      return async (inputs) => exportOp(env, op, state(inputs[0], 'export'));
  }
}

