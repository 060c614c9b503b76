/** images --filter: parsing and matching, without a store (before/since resolve through a stand-in). */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { filterImages, parseImageFilters } from './imagefilter.js';
import type { ImageSummary } from './images.js';
import type { Store } from '../store/index.js';

const img = (name: string | undefined, n: number, labels?: Record<string, string>): ImageSummary => ({
  name, id: `sha256:${String(n).repeat(64).slice(0, 64)}`, manifestDigest: `sha256:m${n}`, created: `2026-12-0${n}T00:00:00.000Z`, size: 1, labels,
});
const images = [img('app:1', 1, { team: 'a' }), img('localhost:5000/lib/x:latest', 2, { team: 'b' }), img(undefined, 3), img('app:2', 4, { team: 'a', tier: 'web' })];
// Only content.resolve is used, by before= and since=: a stand-in that knows these images' names.
const store = { content: { resolve: (ref: string) => ({ manifestDigest: images.find((i) => i.name === ref)!.manifestDigest }) } } as unknown as Store;
const names = (f: string[]) => filterImages(store, images, parseImageFilters(f)).map((i) => i.name ?? '<none>');

test('dangling, reference globs within a path component, labels, before and since; keys combine', () => {
  assert.equal(names(['dangling=true']), ['<none>']);
  assert.equal(names(['dangling=false']), ['app:1', 'localhost:5000/lib/x:latest', 'app:2']);
  assert.equal(names(['reference=app']), ['app:1', 'app:2']);
  assert.equal(names(['reference=app:2']), ['app:2']);
  assert.equal(names(['reference=*/x']), [], '* does not cross a /');
  assert.equal(names(['reference=*/lib/*']), ['localhost:5000/lib/x:latest'], 'one component per *');
  assert.equal(names(['reference=localhost:5000/*/*']), ['localhost:5000/lib/x:latest']);
  assert.equal(names(['reference=app:1', 'reference=app:2']), ['app:1', 'app:2'], 'one key: alternatives');
  assert.equal(names(['label=team=a']), ['app:1', 'app:2']);
  assert.equal(names(['label=tier']), ['app:2']);
  assert.equal(names(['label=team=a', 'label=tier=web']), ['app:2'], 'labels: all must match');
  assert.equal(names(['before=app:2']), ['app:1', 'localhost:5000/lib/x:latest', '<none>']);
  assert.equal(names(['since=app:1', 'dangling=false']), ['localhost:5000/lib/x:latest', 'app:2']);
});

test('a filter Docker does not have, or a bad value, is refused naming the accepted forms', () => {
  assert.throws(() => parseImageFilters(['colour=red']), /--filter colour=red: use dangling=…, reference=…, label=…, before=…, since=…/);
  assert.throws(() => parseImageFilters(['dangling=maybe']), /dangling=maybe: use true or false/);
  assert.throws(() => parseImageFilters(['reference=']), /use dangling/);
});

test.run();
