/** A build's results are held by its lease; a source that a GC took before the hold is resolved again. */
import fs from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { OpContext } from '../builder/index.js';
import type { OpResult } from '../ops/index.js';
import { tmpdir } from '../testutil/index.js';
import { leased } from './shared.js';

const root = tmpdir('tsb-shared-');
test.after(() => fs.rmSync(root, { recursive: true, force: true }));

const ctx: OpContext = { signal: new AbortController().signal, log: () => undefined, status: () => undefined, markCached: () => undefined };
const state = (snapshot: string): OpResult => ({ kind: 'state', snapshot, layers: [{ diffID: 'sha256:d', descriptor: { mediaType: 'm', digest: `sha256:${snapshot}-layer`, size: 1 } }], history: [] });

test('a source removed between its resolution and the hold is resolved again, then held', async () => {
  const held: string[] = [];
  const lease = { hold: (ids: string[]) => void held.push(...ids), close: () => undefined };
  let resolutions = 0;
  const gone = new Set(['first']);
  const h = leased(async () => state(++resolutions === 1 ? 'first' : 'second'), root, lease, true, async (r) => r.kind === 'state' && !gone.has(r.snapshot!));
  const r = await h.run([], ctx);
  assert.is(resolutions, 2, 'resolved again after a GC took the first result');
  assert.equal(r, state('second'));
  assert.equal(held, ['second', 'sha256:second-layer']);
});

test("a step's result and a cache hit are held; a miss holds nothing", async () => {
  const held: string[] = [];
  const lease = { hold: (ids: string[]) => void held.push(...ids), close: () => undefined };
  const h = leased({ run: async () => state('made'), load: async (k) => (k.key === 'hit' ? state('cached') : undefined) }, root, lease, false, async () => true);
  assert.is(await h.load!({ key: 'miss', material: {} }, [], ctx), undefined);
  await h.load!({ key: 'hit', material: {} }, [], ctx);
  await h.run([], ctx);
  assert.equal(held, ['cached', 'sha256:cached-layer', 'made', 'sha256:made-layer']);
});

test.run();
