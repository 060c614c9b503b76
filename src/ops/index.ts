import type { OpFn, OpHandle, Vertex } from '../builder/index.js';
import { withCache, type CacheEnv } from './handles.js';
import { execOp } from './exec.js';
import { copyOp, mkdirOp } from './copy.js';
import { exportOp } from './export.js';
import { imageState, scratchState } from './source.js';
import type { OpResult, OpSpec, OpsEnv, StateRef, ContextRef } from './types.js';

export type { OpSpec, OpResult, OpsEnv, StateRef, ContextRef, ExportRef, LayerRef, NetworkMode, BuildSecrets, RunMountSpec } from './types.js';
export { ExecError } from './exec.js';
export { Downloads } from './fetch.js';
export { CopyError, resolveChown } from './copy.js';
export { parseChmod, ChmodError } from './chmod.js';
export { canonicalJSON } from './export.js';

function state(r: OpResult | undefined, what: string): StateRef {
  if (!r || r.kind !== 'state') throw new Error(`internal: ${what} expects a filesystem state input`);
  return r;
}

/** The builder asks this for each vertex's work; with a cache, each op gets its cache behaviour. */
export function createOps(env: OpsEnv, cache?: CacheEnv): (v: Vertex<OpSpec>) => OpHandle<OpResult> {
  return (v) => withCache(env, cache, v, runFor(env, v));
}

function runFor(env: OpsEnv, v: Vertex<OpSpec>): OpFn<OpResult> {
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
      return async (inputs, ctx) => {
        const src = inputs[1];
        if (!src || src.kind === 'export') throw new Error('internal: COPY needs a source');
        return copyOp(env, op, state(inputs[0], 'COPY'), src, ctx);
      };
    case 'mkdir':
      return async (inputs) => mkdirOp(env, op, state(inputs[0], 'WORKDIR'));
    case 'export':
      return async (inputs) => exportOp(env, op, state(inputs[0], 'export'));
  }
}

export type { CacheEnv, RemoteCacheSource, RemoteCacheRecord } from './handles.js';
export { portableStepId } from './handles.js';
