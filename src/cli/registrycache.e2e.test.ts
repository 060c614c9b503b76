/**
 * Build cache through a registry (--cache-to/--cache-from, cache mounts) and layers with device nodes
 * and xattrs through push and pull, against a real registry on 127.0.0.1.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { cli, repoRoot } from '../testutil/index.js';
import { registryFixture } from './registry.fixture.js';

const { it, root, ctx, env, newStore, registry } = registryFixture('regcache');

it('remote cache: --cache-to on store A, --cache-from on an empty store B hits every step (no RUN runs); cache mounts travel; misses explained', async () => {
  const d = ctx(
    'FROM base AS deps\nRUN --mount=type=cache,target=/cache echo dep > /dep.txt && echo warm > /cache/stamp && echo deps-ran\n' +
      'FROM base\nCOPY --from=deps /dep.txt /dep.txt\nCOPY app.txt /app.txt\nRUN echo final-ran && touch /ran.txt\nCMD ["cat", "/dep.txt", "/app.txt"]\n',
    { 'app.txt': 'v1\n' },
  );
  const cref = `${registry().host}/cache/app:buildcache`;
  const a = newStore();
  const ba = await cli(['-q', '--progress', 'plain', '--cache-to', `type=registry,ref=${cref},mode=max,mounts=true`, d], { root: a, env });
  assert.is(ba.code, 0, ba.stderr);
  assert.match(ba.stderr, /cache exported to .*records \(mode=max\), 1 cache mounts/);
  const b = newStore();
  const bb = await cli(['-q', '--progress', 'plain', '--explain', 'json', '--cache-from', `type=registry,ref=${cref},mounts=true`, d], { root: b, env });
  assert.is(bb.code, 0, bb.stderr);
  const lines = bb.stdout.trim().split('\n');
  const id = lines.pop()!;
  assert.is(id, ba.stdout.trim(), 'the same image on both machines');
  const explained = JSON.parse(lines.join('\n')) as { steps: { step: string; hit: boolean }[] };
  assert.ok(explained.steps.length >= 5, JSON.stringify(explained.steps));
  for (const st of explained.steps) assert.ok(st.hit, `${st.step} should be a cache hit`);
  assert.not.match(bb.stderr, /^#\d+ [\d.]+ (deps|final)-ran$/m, 'no RUN executed on store B');
  const mounts = await cli(['cache', 'ls', '--mounts'], { root: b, env });
  assert.match(mounts.stdout, /\/cache/, 'the cache mount was restored');
  assert.is((await cli(['run', '--rm', id.slice(7)], { root: b, env })).stdout, 'dep\nv1\n');
  // A third, empty machine with a changed file: the miss says why, from the exported step history.
  fs.writeFileSync(path.join(d, 'app.txt'), 'v2\n');
  const c = newStore();
  const bc = await cli(['--progress', 'plain', '--explain', 'text', '--cache-from', `type=registry,ref=${cref}`, d], { root: c, env });
  assert.is(bc.code, 0, bc.stderr);
  assert.match(bc.stdout, /COPY app.txt \/app.txt\n  MISS: 1 file changed: app.txt/);
  assert.not.match(bc.stderr, /^#\d+ [\d.]+ deps-ran$/m, 'the deps stage still came from the registry');
  assert.match(bc.stderr, /^#\d+ [\d.]+ final-ran$/m, 'the RUN after the changed COPY ran');
  // min mode exports only what made the final image; a missing cache ref is a note, not an error.
  const bm = await cli(['--progress', 'plain', '--cache-to', `type=registry,ref=${registry().host}/cache/app:min`, '--cache-from', `type=registry,ref=${registry().host}/cache/none:x`, d], { root: c, env });
  assert.is(bm.code, 0, bm.stderr);
  assert.match(bm.stderr, /nothing there yet/);
  const bad = await cli(['--cache-from', 'type=s3,bucket=x', d], { root: c, env });
  assert.is(bad.code, 2);
  assert.match(bad.stderr, /use type=registry,ref=… or type=local,src=DIR/);
});

it('cache export-mounts / import-mounts through a registry between two empty stores', async () => {
  const d = ctx('RUN --mount=type=cache,id=pkgs,target=/var/cache/pkgs sh -c \'echo "$(cat /var/cache/pkgs/n 2>/dev/null || echo 0)+1" > /var/cache/pkgs/n; echo seen: $(cat /var/cache/pkgs/n)\'\n');
  const a = newStore();
  const ba = await cli(['--progress', 'plain', d], { root: a, env });
  assert.is(ba.code, 0, ba.stderr);
  assert.match(ba.stderr, /seen: 0\+1/);
  const ref = `${registry().host}/cache/mounts:ci`;
  const ex = await cli(['cache', 'export-mounts', '--output', `type=registry,ref=${ref}`], { root: a, env });
  assert.is(ex.code, 0, ex.stderr);
  assert.match(ex.stdout, /exported 1 cache mounts/);
  const b = newStore();
  const im = await cli(['cache', 'import-mounts', '--input', `type=registry,ref=${ref}`], { root: b, env });
  assert.is(im.code, 0, im.stderr);
  assert.match(im.stdout, /imported 1 cache mounts/);
  const bb = await cli(['--progress', 'plain', d], { root: b, env });
  assert.is(bb.code, 0, bb.stderr);
  assert.match(bb.stderr, /seen: 0\+1\+1/, 'the build on store B found the exported cache mount');
  const none = await cli(['cache', 'import-mounts', '--input', `type=registry,ref=${registry().host}/cache/absent:x`], { root: b, env });
  assert.is(none.code, 2);
  assert.match(none.stderr, /no tsbuild cache at/);
});

it('device nodes and xattrs (security.capability) survive build, diff on overlayfs and native, push, pull and unpack', async () => {
  const d = ctx('COPY xattr /usr/bin/xattr\nRUN mknod /dev-null c 1 3 && mknod /fifo p && echo bin > /tool && chmod 755 /tool && /usr/bin/xattr set /tool security.capability 0100000200200000000000000000000000000000 && /usr/bin/xattr set /tool user.origin 6869\n');
  const cc = spawnSync('cc', ['-static', '-O2', '-o', path.join(d, 'xattr'), path.join(repoRoot, 'testdata/xattr.c')], { encoding: 'utf8' });
  assert.is(cc.status, 0, cc.stderr);
  const ids: string[] = [];
  for (const driver of ['overlayfs', 'native']) {
    const r = await cli(['-q', '--snapshotter', driver, '-t', `special-${driver}`, d], { root, env });
    assert.is(r.code, 0, r.stderr);
    ids.push(r.stdout.trim());
  }
  assert.is(ids[0], ids[1], 'both drivers give the same image (devices and xattrs in the layer)');
  const ref = `${registry().host}/tests/special:1`;
  assert.is((await cli(['push', 'special-overlayfs', ref], { root, env })).code, 0);
  for (const driver of ['overlayfs', 'native']) {
    const s = newStore();
    const r = await cli(['run', '--rm', '--snapshotter', driver, ref, 'sh', '-c', 'ls -l /dev-null /fifo | cut -c1; stat -c "%t:%T" /dev-null; xattr get /tool security.capability; xattr get /tool user.origin'], { root: s, env });
    assert.is(r.code, 0, r.stderr);
    assert.is(r.stdout, 'c\np\n1:3\n0100000200200000000000000000000000000000\n6869\n', `${driver}: ${r.stderr}`);
  }
});

test.run();
