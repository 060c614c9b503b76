/**
 * `--cache-to type=inline`: the cache on the pushed image's own manifest, read back by an empty store
 * with `--cache-from type=registry,ref=IMAGE`, against a real registry on 127.0.0.1.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cli } from '../testutil/index.js';
import { registryFixture } from './registry.fixture.js';

const { it, ctx, env, newStore, registry } = registryFixture('inlinecache');

it('inline cache: the image carries its cache (same image id), an empty store hits every RUN from it', async () => {
  const d = ctx('RUN echo one > /one && echo one-ran\nCOPY app.txt /app.txt\nRUN cat /app.txt > /copy && echo two-ran\nCMD ["cat", "/one", "/copy"]\n', { 'app.txt': 'v1\n' });
  const ref = `${registry().host}/inline/app:1`;
  const a = newStore();
  const plain = await cli(['-q', d], { root: newStore(), env });
  assert.is(plain.code, 0, plain.stderr);
  const ba = await cli(['-q', '--progress', 'plain', '--cache-to', 'type=inline', '--push', '-t', ref, d], { root: a, env });
  assert.is(ba.code, 0, ba.stderr);
  assert.is(ba.stdout.trim(), plain.stdout.trim(), 'the cache is on the manifest: the image id is the one a plain build gives');
  const manifest = await cli(['inspect', '--format', '{{json .Manifest.annotations}}', ref], { root: a, env });
  assert.match(manifest.stdout, /dev\.tsbuild\.cache\.v1/);

  const b = newStore();
  const bb = await cli(['-q', '--progress', 'plain', '--cache-from', `type=registry,ref=${ref}`, d], { root: b, env });
  assert.is(bb.code, 0, bb.stderr);
  assert.is(bb.stdout.trim(), ba.stdout.trim());
  assert.not.match(bb.stderr, /^#\d+ [\d.]+ (one|two)-ran$/m, 'no RUN ran on the empty store');
  assert.is((await cli(['run', '--rm', bb.stdout.trim().slice(7)], { root: b, env })).stdout, 'one\nv1\n');

  // A change after the first RUN: that RUN still comes from the image, the second runs.
  const d2 = ctx('RUN echo one > /one && echo one-ran\nCOPY app.txt /app.txt\nRUN cat /app.txt > /copy && echo two-ran\nCMD ["cat", "/one", "/copy"]\n', { 'app.txt': 'v2\n' });
  const c = await cli(['--progress', 'plain', '--cache-from', `type=registry,ref=${ref}`, d2], { root: newStore(), env });
  assert.is(c.code, 0, c.stderr);
  assert.not.match(c.stderr, /^#\d+ [\d.]+ one-ran$/m);
  assert.match(c.stderr, /^#\d+ [\d.]+ two-ran$/m);
});

it('inline cache: an image built without one is a note, not an error; bad forms are refused with the right one', async () => {
  const d = ctx('RUN echo x > /x\n');
  const ref = `${registry().host}/inline/plain:1`;
  const a = newStore();
  assert.is((await cli(['-q', '--push', '-t', ref, d], { root: a, env })).code, 0);
  const b = await cli(['--progress', 'plain', '--cache-from', `type=registry,ref=${ref}`, d], { root: newStore(), env });
  assert.is(b.code, 0, b.stderr);
  assert.match(b.stderr, /nothing there yet/);
  for (const [flag, re] of [
    ['type=inline,mode=max', /type=inline carries mode=min only/],
    ['type=inline,ref=x', /type=inline takes no "ref"/],
  ] as const) {
    const r = await cli(['--cache-to', flag, d], { root: a, env });
    assert.is(r.code, 2, flag);
    assert.match(r.stderr, re);
  }
  const f = await cli(['--cache-from', 'type=inline', d], { root: a, env });
  assert.is(f.code, 2);
  assert.match(f.stderr, /give the image instead, --cache-from type=registry,ref=IMAGE/);
});

test.run();
