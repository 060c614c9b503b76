/** The solver, proven with counting fake ops: no filesystem, no kernel. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CancelledError } from '../errors/index.js';
import { createSolver, vertex, VertexError, type SolverEvent, type Vertex } from './solver.js';

type Op = { name: string; ms?: number; fail?: boolean };

function harness(concurrency = 4) {
  const runs = new Map<string, number>();
  const spans: { name: string; start: number; end: number }[] = [];
  const events: SolverEvent[] = [];
  const aborted = new Set<string>();
  const solver = createSolver<Op, string>({
    concurrency,
    onEvent: (e) => events.push(e),
    opFor: (v) => async (inputs, ctx) => {
      runs.set(v.op.name, (runs.get(v.op.name) ?? 0) + 1);
      const start = Date.now();
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(resolve, v.op.ms ?? 0);
        ctx.signal.addEventListener('abort', () => {
          aborted.add(v.op.name);
          clearTimeout(t);
          reject(new CancelledError());
        });
      });
      spans.push({ name: v.op.name, start, end: Date.now() });
      if (v.op.fail) throw new Error(`${v.op.name} broke`);
      return `${v.op.name}(${inputs.join(',')})`;
    },
  });
  return { solver, runs, spans, events, aborted };
}

const v = (name: string, inputs: Vertex<Op>[] = [], extra: Partial<Op> = {}) => vertex<Op>({ name, ...extra }, inputs, name);

test('inputs run before dependents and results flow through', async () => {
  const h = harness();
  const a = v('a');
  const b = v('b', [a]);
  const c = v('c', [a, b]);
  assert.is(await h.solver.solve(c), 'c(a(),b(a()))');
  assert.is(h.runs.get('a'), 1, 'a shared input runs once');
});

test('identical vertices are deduplicated by digest', async () => {
  const h = harness();
  const x1 = v('x');
  const x2 = v('x');
  assert.is(x1.digest, x2.digest);
  const top = v('top', [v('l', [x1]), v('r', [x2])]);
  await h.solver.solve(top);
  assert.is(h.runs.get('x'), 1);
  assert.is(h.runs.size, 4);
});

test('independent branches run in parallel, bounded by concurrency', async () => {
  const h = harness(2);
  const top = v('top', [v('p1', [], { ms: 150 }), v('p2', [], { ms: 150 })]);
  await h.solver.solve(top);
  const [s1, s2] = ['p1', 'p2'].map((n) => h.spans.find((s) => s.name === n)!);
  assert.ok(s1!.start < s2!.end && s2!.start < s1!.end, 'the two overlap in time');
  const h1 = harness(1);
  await h1.solver.solve(v('top', [v('p1', [], { ms: 80 }), v('p2', [], { ms: 80 })]));
  const [t1, t2] = ['p1', 'p2'].map((n) => h1.spans.find((s) => s.name === n)!);
  assert.ok(t1!.end <= t2!.start || t2!.end <= t1!.start, 'with concurrency 1 they do not overlap');
});

test('the first failure cancels running siblings and is what solve rejects with', async () => {
  const h = harness(4);
  const top = v('top', [v('slow', [], { ms: 5000 }), v('bad', [], { ms: 20, fail: true })]);
  const t0 = Date.now();
  const err = await h.solver.solve(top).then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof VertexError, String(err));
  assert.match((err as VertexError).message, /bad: bad broke/);
  assert.is((err as VertexError).vertex.name, 'bad');
  assert.ok(Date.now() - t0 < 2000, 'the slow sibling was cancelled, not waited for');
  assert.not.ok(h.runs.has('top'), 'dependents never start');
  const kinds = h.events.filter((e) => e.vertex.name === 'slow').map((e) => e.type);
  assert.equal(kinds, ['start', 'cancelled']);
});

test('an external abort cancels everything with CancelledError', async () => {
  const h = harness(4);
  const ac = new AbortController();
  const p = h.solver.solve(v('top', [v('long', [], { ms: 5000 })]), { signal: ac.signal });
  setTimeout(() => ac.abort(), 30);
  const err = await p.then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof CancelledError, String(err));
  assert.ok(h.aborted.has('long'), 'the running op saw its signal abort');
  assert.equal(h.events.filter((e) => e.vertex.name === 'long').map((e) => e.type), ['start', 'cancelled']);
  assert.not.ok(h.runs.has('top'), 'its dependent never started');
});

test('events: start then done, with durations, for every vertex', async () => {
  const h = harness();
  await h.solver.solve(v('b', [v('a', [], { ms: 20 })], { ms: 20 }));
  assert.equal(h.events.map((e) => `${e.type}:${e.vertex.name}`), ['start:a', 'done:a', 'start:b', 'done:b']);
  // A done event's duration is the time from its own start event, and covers the op's whole run.
  for (const name of ['a', 'b']) {
    const start = h.events.find((e) => e.type === 'start' && e.vertex.name === name)!;
    const done = h.events.find((e) => e.type === 'done' && e.vertex.name === name);
    assert.ok(done && done.type === 'done');
    assert.is(done.duration, done.time - start.time);
    const span = h.spans.find((x) => x.name === name)!;
    assert.ok(done.duration >= span.end - span.start, `${name}: the duration covers the op`);
  }
});

test('a second solve of an unchanged graph with a memoizing op executes nothing new', async () => {
  const seen = new Map<string, string>();
  let executed = 0;
  const solver = createSolver<Op, string>({
    opFor: (vx) => async (inputs, ctx) => {
      const hit = seen.get(vx.digest);
      if (hit) {
        ctx.markCached();
        return hit;
      }
      executed++;
      const r = `${vx.op.name}(${inputs.join(',')})`;
      seen.set(vx.digest, r);
      return r;
    },
  });
  const graph = () => v('c', [v('a'), v('b', [v('a')])]);
  await solver.solve(graph());
  assert.is(executed, 3);
  await solver.solve(graph());
  assert.is(executed, 3);
});

test('through the cache path: changing one input re-executes exactly its dependents', async () => {
  const records = new Map<string, string>();
  const executed: string[] = [];
  const solver = createSolver<Op, string>({
    opFor: (vx) => ({
      cacheKey: async (_inputs, keys) => ({ key: `${vx.op.name}:${vx.op.ms ?? 0}|${keys.join(',')}`, material: { op: vx.op.name } }),
      load: async (key) => records.get(key.key),
      run: async (inputs) => {
        executed.push(vx.op.name);
        return `${vx.op.name}(${inputs.join(',')})`;
      },
      save: async (key, r) => void records.set(key.key, r),
    }),
  });
  const graph = (bVersion: number) => {
    const a = v('a');
    const b = v('b', [a], { ms: bVersion });
    const c = v('c', [b]);
    const d = v('d', [a]);
    return v('top', [c, d]);
  };
  await solver.solve(graph(0));
  assert.equal(executed.sort(), ['a', 'b', 'c', 'd', 'top']);
  executed.length = 0;
  await solver.solve(graph(0));
  assert.equal(executed, [], 'an unchanged graph executes nothing');
  await solver.solve(graph(1));
  assert.equal(executed.sort(), ['b', 'c', 'top'], 'b changed: b and what depends on it, not a or d');
  const events: string[] = [];
  const s2 = createSolver<Op, string>({ opFor: () => ({ cacheKey: async () => ({ key: 'k', material: {} }), load: async () => 'x', run: async () => 'y' }), noCache: () => true, onEvent: (e) => { if (e.type === 'cache') events.push(`${e.hit}:${e.reason}`); } });
  assert.is(await s2.solve(v('z')), 'y', '--no-cache skips load');
  assert.equal(events, ['false:cache disabled (--no-cache)']);
});

test('two solvers sharing a cache and a claim: the work of one key runs once, the other waits and loads it', async () => {
  const records = new Map<string, string>();
  let executed = 0;
  const holders = new Map<string, Promise<void>>();
  // An in-memory version of the store's per-key lock.
  const claim = async (key: string, _signal: AbortSignal, onWait: (holder: string) => void) => {
    const held = holders.get(key);
    if (held) {
      onWait('the other solver');
      await held;
    }
    let release!: () => void;
    holders.set(key, new Promise<void>((r) => (release = r)));
    return () => {
      holders.delete(key);
      release();
    };
  };
  const statuses: string[] = [];
  const make = () =>
    createSolver<Op, string>({
      claim,
      onEvent: (e) => void (e.type === 'status' && statuses.push(e.message)),
      opFor: (vx) => ({
        cacheKey: async () => ({ key: vx.op.name, material: {} }),
        load: async (key) => records.get(key.key),
        run: async () => {
          executed++;
          await new Promise((r) => setTimeout(r, 30));
          return 'built';
        },
        save: async (key, r) => void records.set(key.key, r),
      }),
    });
  const [a, b] = await Promise.all([make().solve(v('shared')), make().solve(v('shared'))]);
  assert.equal([a, b], ['built', 'built']);
  assert.is(executed, 1, 'the shared work ran once');
  assert.equal(statuses, ['waiting for the other solver, which runs this same step']);
});

test.run();
