/**
 * A generic DAG solver. It knows no Dockerfile, filesystem or HTTP: vertices carry opaque op data, and
 * `opFor` turns a vertex into work. Lifecycle of one `solve(root)`:
 *   1. every vertex reachable from `root` is visited once per digest (identical work is deduplicated);
 *   2. a vertex starts when all its inputs are done, through a p-queue bounded by `concurrency`, so
 *      independent branches run in parallel;
 *   3. the first failure aborts every running and pending vertex (their ops see the AbortSignal) and is
 *      the error `solve` rejects with; the external signal (Ctrl-C) does the same with CancelledError;
 *   4. progress is reported only as typed events through `onEvent`.
 */
import crypto from 'node:crypto';
import { CancelledError, TsbuildError } from '../errors/index.js';

export interface Vertex<Op = unknown> {
  /** Content digest of the op and its inputs' digests: equal digests are the same work. */
  digest: string;
  /** Human description, e.g. `[build 2/4] RUN make`. */
  name: string;
  op: Op;
  inputs: Vertex<Op>[];
  meta: Record<string, unknown>;
}

export function vertex<Op>(op: Op, inputs: Vertex<Op>[], name: string, meta: Record<string, unknown> = {}): Vertex<Op> {
  const digest = 'sha256:' + crypto.createHash('sha256').update(JSON.stringify({ op, inputs: inputs.map((i) => i.digest) })).digest('hex');
  return { digest, name, op, inputs, meta };
}

export type SolverEvent =
  | { type: 'start'; vertex: Vertex; time: number }
  | { type: 'log'; vertex: Vertex; stream: 'stdout' | 'stderr'; data: Buffer; time: number }
  | { type: 'status'; vertex: Vertex; message: string; time: number }
  | { type: 'cache'; vertex: Vertex; time: number; key: string; hit: boolean; reason?: string; material: Record<string, string> }
  | { type: 'done'; vertex: Vertex; time: number; duration: number; cached: boolean }
  | { type: 'error'; vertex: Vertex; time: number; error: unknown }
  | { type: 'cancelled'; vertex: Vertex; time: number };

export interface OpContext {
  signal: AbortSignal;
  log(stream: 'stdout' | 'stderr', data: Buffer): void;
  status(message: string): void;
  /** Tell the solver this vertex was answered from cache (shown as CACHED). */
  markCached(): void;
}

export type OpFn<R> = (inputs: R[], ctx: OpContext) => Promise<R>;

/** What a cache key is made of: named inputs, so that a miss can say which one changed. */
export interface CacheKey {
  key: string;
  material: Record<string, string>;
}

/**
 * One vertex's work. Lifecycle: `cacheKey` (from the inputs' results and keys; undefined = not
 * cacheable), then `load` (a hit ends here), else `run` and `save`. `explain` says why a key missed.
 */
export interface OpHandle<R> {
  cacheKey?(inputs: R[], inputKeys: string[], ctx: OpContext): Promise<CacheKey | undefined>;
  load?(key: CacheKey, inputs: R[], ctx: OpContext): Promise<R | undefined>;
  run: OpFn<R>;
  save?(key: CacheKey, result: R, inputs: R[]): Promise<void>;
  explain?(key: CacheKey): string;
}

export interface SolverOptions<Op, R> {
  opFor(v: Vertex<Op>): OpHandle<R> | OpFn<R>;
  concurrency?: number;
  onEvent?: (e: SolverEvent) => void;
  /** Vertices that must not be answered from cache (--no-cache, --no-cache-filter). */
  noCache?: (v: Vertex<Op>) => boolean;
  /**
   * Claims the right to run the work of a cache key that missed, across processes sharing the store,
   * as BuildKit's solver shares an in-flight vertex: resolves (with a release function) once no other
   * build runs the same key; `onWait` is called first when one does. The cache is looked up again
   * after a wait, so the second build takes the first one's result instead of repeating the work.
   */
  claim?: (key: string, signal: AbortSignal, onWait: (holder: string) => void) => Promise<() => void>;
}

export interface SolveOptions {
  signal?: AbortSignal;
}

export class VertexError extends TsbuildError {
  readonly vertex: Vertex;
  constructor(v: Vertex, cause: unknown) {
    super(cause instanceof TsbuildError ? cause.code : 'BUILD_STEP_FAILED', `${v.name}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.vertex = v;
  }
}

export interface Solver<Op, R> {
  solve(root: Vertex<Op>, opts?: SolveOptions): Promise<R>;
}

export function createSolver<Op, R>(o: SolverOptions<Op, R>): Solver<Op, R> {
  const emit = (e: SolverEvent) => o.onEvent?.(e);
  return {
    async solve(root, opts = {}) {
      const { default: PQueue } = await import('p-queue');
      const queue = new PQueue({ concurrency: Math.max(1, o.concurrency ?? 1) });
      const ac = new AbortController();
      const onExternal = () => ac.abort(new CancelledError());
      if (opts.signal?.aborted) throw new CancelledError();
      opts.signal?.addEventListener('abort', onExternal, { once: true });
      const results = new Map<string, Promise<{ r: R; key?: string }>>();
      let firstError: unknown;
      const run = (v: Vertex<Op>): Promise<{ r: R; key?: string }> => {
        let p = results.get(v.digest);
        if (p) return p;
        p = (async () => {
          const ins = await Promise.all(v.inputs.map(run));
          const inputs = ins.map((x) => x.r);
          if (ac.signal.aborted) throw ac.signal.reason ?? new CancelledError();
          return queue.add(async () => {
            if (ac.signal.aborted) throw ac.signal.reason ?? new CancelledError();
            const start = Date.now();
            let cached = false;
            emit({ type: 'start', vertex: v, time: start });
            const ctx: OpContext = {
              signal: ac.signal,
              log: (stream, data) => emit({ type: 'log', vertex: v, stream, data, time: Date.now() }),
              status: (message) => emit({ type: 'status', vertex: v, message, time: Date.now() }),
              markCached: () => (cached = true),
            };
            try {
              const h0 = o.opFor(v);
              const h: OpHandle<R> = typeof h0 === 'function' ? { run: h0 } : h0;
              const inputKeys = ins.map((x) => x.key);
              let key: CacheKey | undefined;
              if (h.cacheKey && inputKeys.every((k): k is string => k !== undefined)) key = await h.cacheKey(inputs, inputKeys, ctx);
              let r: R | undefined;
              let release: (() => void) | undefined;
              try {
                if (key) {
                  const skip = o.noCache?.(v) ?? false;
                  if (!skip) r = await h.load?.(key, inputs, ctx);
                  if (!skip && r === undefined && h.load && o.claim) {
                    let waited = false;
                    release = await o.claim(key.key, ac.signal, (holder) => {
                      waited = true;
                      ctx.status(`waiting for ${holder}, which runs this same step`);
                    });
                    if (waited) r = await h.load(key, inputs, ctx);
                  }
                  if (r !== undefined) cached = true;
                  emit({ type: 'cache', vertex: v, time: Date.now(), key: key.key, hit: r !== undefined, reason: r !== undefined ? undefined : skip ? 'cache disabled (--no-cache)' : h.explain?.(key), material: key.material });
                }
                if (r === undefined) {
                  r = await h.run(inputs, ctx);
                  if (key) await h.save?.(key, r, inputs);
                }
              } finally {
                release?.();
              }
              const now = Date.now();
              emit({ type: 'done', vertex: v, time: now, duration: now - start, cached });
              return { r, key: key?.key };
            } catch (e) {
              if (ac.signal.aborted) {
                // another vertex failed first, or the user cancelled: this one was stopped, not broken
                emit({ type: 'cancelled', vertex: v, time: Date.now() });
                throw e;
              }
              emit({ type: 'error', vertex: v, time: Date.now(), error: e });
              const err = e instanceof VertexError || e instanceof CancelledError ? e : new VertexError(v, e);
              if (firstError === undefined) {
                firstError = err;
                ac.abort(err);
              }
              throw err;
            }
          }) as Promise<{ r: R; key?: string }>;
        })();
        // Failures are reported once, through the root's rejection; siblings must not go unhandled.
        p.catch(() => undefined);
        results.set(v.digest, p);
        return p;
      };
      try {
        return (await run(root)).r;
      } catch (e) {
        if (opts.signal?.aborted) throw new CancelledError();
        throw firstError ?? e;
      } finally {
        opts.signal?.removeEventListener('abort', onExternal);
        queue.clear();
        await queue.onIdle();
      }
    },
  };
}
