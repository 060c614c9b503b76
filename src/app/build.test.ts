/**
 * app.build in-process, on a store assembled from its parts around a snapshotter that counts what it
 * is asked and can be told to fail: no CLI spawned, events observed directly.
 */
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CacheIndex } from '../cache/index.js';
import { CancelledError, UsageError } from '../errors/index.js';
import { ContentStore, type ImageConfig, type Manifest } from '../image/index.js';
import { BlobSources } from '../registry/index.js';
import { Containers, Networks, Volumes } from '../runtime/index.js';
import { NativeSnapshotter, type Snapshotter } from '../snapshotter/index.js';
import type { Store } from '../store/index.js';
import { removeStore, sandboxUnavailable, testUnless, tmpdir } from '../testutil/index.js';
import { build } from './build.js';
import type { AppEvent } from './events.js';

interface Counting extends Snapshotter {
  calls: Map<string, number>;
  failPrepare?: Error;
}

/** A native snapshotter behind a proxy that counts calls per method and can make prepare fail. */
function countingSnapshotter(dir: string): Counting {
  const inner = new NativeSnapshotter(dir);
  const calls = new Map<string, number>();
  const state: { failPrepare?: Error } = {};
  const proxy = new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop === 'calls') return calls;
      if (prop === 'failPrepare') return state.failPrepare;
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        calls.set(String(prop), (calls.get(String(prop)) ?? 0) + 1);
        if (prop === 'prepare' && state.failPrepare) return Promise.reject(state.failPrepare);
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
    set(_t, prop, value) {
      if (prop === 'failPrepare') state.failPrepare = value as Error;
      return true;
    },
  });
  return proxy as unknown as Counting;
}

function fakeStore(): Store & { snapshotter: Counting } {
  const root = tmpdir('tsb-app-store-');
  return {
    root,
    content: new ContentStore(root),
    snapshotter: countingSnapshotter(path.join(root, 'snapshots', 'native')),
    containers: new Containers(root),
    volumes: new Volumes(root),
    networks: new Networks(root),
    cache: new CacheIndex(root),
    blobSources: new BlobSources(path.join(root, 'registry')),
  };
}

function context(files: Record<string, string>): string {
  const dir = tmpdir('tsb-app-ctx-');
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
  return dir;
}

const cleanup: string[] = [];
test.after(() => {
  for (const d of cleanup) removeStore(d);
});

const why = sandboxUnavailable();
const DOCKERFILE = 'FROM scratch\nCOPY a.txt /a.txt\nLABEL org.example.x=1\nCMD ["/a"]\n';

testUnless(why, 'build: a Dockerfile becomes a named image, with events and no CLI', async () => {
  const store = fakeStore();
  const ctx = context({ Dockerfile: DOCKERFILE, 'a.txt': 'hello\n' });
  cleanup.push(store.root, ctx);
  const events: AppEvent[] = [];
  const r = await build(store, { context: ctx, tags: ['app-test:1'] }, { onEvent: (e) => events.push(e) });
  assert.is(r.names[0], 'app-test:1');
  const img = store.content.resolve('app-test:1');
  assert.is(img.configDigest, r.imageId);
  assert.is(img.manifest.layers.length, 1, 'one layer: the COPY');
  assert.equal(img.config.config?.Labels, { 'org.example.x': '1' });
  assert.equal(img.config.config?.Cmd, ['/a']);
  const solverTypes = events.filter((e) => e.type === 'solver').map((e) => (e.type === 'solver' ? `${e.event.type}:${e.event.vertex.name}` : ''));
  assert.ok(solverTypes.includes('done:[stage-0 2/4] COPY a.txt /a.txt'), solverTypes.join('\n'));
  assert.is(events.filter((e) => e.type === 'solved').length, 1);
  assert.ok(r.steps.length >= 1 && r.steps.every((s) => !s.hit), 'a first build misses');
  const prepares = store.snapshotter.calls.get('prepare') ?? 0;
  assert.ok(prepares >= 1);

  // The same build again: every step from the cache, nothing prepared, the same image.
  const again = await build(store, { context: ctx, tags: ['app-test:1'] });
  assert.is(again.imageId, r.imageId);
  assert.ok(again.steps.every((s) => s.hit), JSON.stringify(again.steps));
  assert.is(store.snapshotter.calls.get('prepare'), prepares, 'a cached build prepares no snapshot');
  const m = store.content.readJSON<Manifest>(again.manifestDigest);
  assert.is(store.content.readJSON<ImageConfig>(m.config.digest).created, '1970-01-01T00:00:00Z', 'reproducible by default');
});

testUnless(why, 'build: a failing snapshotter fails the build with its error; nothing is named, nothing left active', async () => {
  const store = fakeStore();
  const ctx = context({ Dockerfile: DOCKERFILE, 'a.txt': 'x\n' });
  cleanup.push(store.root, ctx);
  store.snapshotter.failPrepare = new Error('disk on fire');
  const err = await build(store, { context: ctx, tags: ['broken:1'] }).then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof Error && /disk on fire/.test(err.message), String(err));
  assert.is(store.content.list().length, 0);
  const left: string[] = [];
  await store.snapshotter.walk((i) => void (i.kind !== 'committed' && left.push(i.key)));
  assert.equal(left, []);
});

test('build: bad requests are refused before the store is touched', async () => {
  const store = fakeStore();
  const ctx = context({ Dockerfile: DOCKERFILE, 'a.txt': 'x\n' });
  cleanup.push(store.root, ctx);
  const refuse = async (req: Parameters<typeof build>[1], re: RegExp) => {
    const e = await build(store, req).then(() => undefined, (x: unknown) => x);
    assert.ok(e instanceof UsageError, String(e));
    assert.match((e as Error).message, re);
  };
  await refuse({ context: path.join(ctx, 'nope') }, /build context .* does not exist/);
  await refuse({ context: ctx, network: 'bridge' as 'host' }, /--network bridge: RUN steps support host, none or default/);
  await refuse({ context: ctx, jobs: 0 }, /--jobs 0: give a number of at least 1/);
  await refuse({ context: ctx, allow: ['device'] }, /--allow device: known entitlements are/);
  await refuse({ context: ctx, tags: ['UPPER:case'] }, /./);
  await refuse({ context: ctx, dockerfile: path.join(ctx, 'Missing') }, /does not exist \(give one with -f\)/);
  assert.equal([...store.snapshotter.calls.keys()], [], 'the snapshotter was never called');
});

testUnless(why, 'build: an aborted signal cancels before any step runs', async () => {
  const store = fakeStore();
  const ctx = context({ Dockerfile: DOCKERFILE, 'a.txt': 'x\n' });
  cleanup.push(store.root, ctx);
  const ac = new AbortController();
  ac.abort();
  const e = await build(store, { context: ctx }, { signal: ac.signal }).then(() => undefined, (x: unknown) => x);
  assert.ok(e instanceof CancelledError, String(e));
  assert.is(store.snapshotter.calls.get('prepare') ?? 0, 0);
});

test.run();
