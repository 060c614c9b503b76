/**
 * A full disk (#21): a store on a small tmpfs the test mounts. A RUN, a COPY, a layer commit and a pull
 * that run out of space fail with "no space left on device" naming what was being written and what to
 * do; nothing half written stays for later commands to trust, and after a prune the store builds again.
 */
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { cli, mountsUnder, readJSON, tmpdir } from '../testutil/index.js';
import { registryFixture } from './registry.fixture.js';

const fixture = registryFixture('full');
const { h, it, root, ctx, registry } = fixture;
// Nothing here may reach out: a base missing from a store is an error, not a pull from Docker Hub.
const env = { ...fixture.env, TSBUILD_PULL: 'never' };
const mnt = tmpdir('tsb-full-');
let mounted = false;
h.test.before(() => {
  mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=48m', 'tmpfs', mnt]).status === 0;
});
h.test.after(() => {
  if (mounted) spawnSync('umount', [mnt]);
  fs.rmSync(mnt, { recursive: true, force: true });
});

const HINT = /the filesystem is full: free space \(tsbuild system prune -a, tsbuild prune --all, or elsewhere on that disk\) and run the command again/;

function consistent(store: string): void {
  assert.equal(mountsUnder(store), [], 'nothing stays mounted');
  const meta = readJSON<{ snapshots: Record<string, { kind: string }> }>(path.join(store, 'snapshots/overlayfs/metadata.json'));
  assert.equal(Object.entries(meta.snapshots).filter(([, v]) => v.kind !== 'committed').map(([k]) => k), [], 'no snapshot left half made');
  const tmp = fs.readdirSync(path.join(store, 'tmp')).filter((e) => e !== 'mnt' && !e.endsWith('.lock') && e !== 'live');
  assert.equal(tmp, [], 'nothing half written in tmp/');
}

it('RUN, COPY, layer commit and pull on a full disk: a clear error each time, a consistent store, and it builds again after a prune', async () => {
  assert.ok(mounted, 'the test tmpfs is mounted');
  const store = path.join(mnt, 'store');
  const d = ctx('RUN echo ok > /ok\n');
  fs.writeFileSync(path.join(d, 'big.bin'), crypto.randomBytes(60 << 20));
  const base = await cli(['-q', '-t', 'ok', '--target', 'base', d], { root: store, env });
  assert.is(base.code, 0, base.stderr);
  const write = (name: string, text: string) => fs.writeFileSync(path.join(d, name), text);

  write('Dockerfile.run', 'FROM ok\nRUN dd if=/dev/zero of=/big bs=1M count=100\n');
  let r = await cli(['-f', path.join(d, 'Dockerfile.run'), d], { root: store, env });
  assert.is(r.code, 1);
  assert.match(r.stderr, /No space left on device/, 'the RUN says it, in its own words');
  consistent(store);

  write('Dockerfile.copy', 'FROM ok\nCOPY big.bin /big.bin\n');
  r = await cli(['-f', path.join(d, 'Dockerfile.copy'), d], { root: store, env });
  assert.is(r.code, 1);
  assert.match(r.stderr, /COPY big.bin \/big.bin: no space left on device copying \/big.bin into the image \(store at /);
  assert.match(r.stderr, HINT);
  consistent(store);

  write('Dockerfile.commit', 'FROM ok\nRUN dd if=/dev/urandom of=/big bs=1M count=30 2>/dev/null\n');
  r = await cli(['-f', path.join(d, 'Dockerfile.commit'), d], { root: store, env });
  assert.is(r.code, 1);
  assert.match(r.stderr, /no space left on device writing this step's layer into the store at /);
  assert.match(r.stderr, HINT);
  consistent(store);

  // A pull of an image larger than the space left (built and pushed from the roomy store).
  assert.is((await cli(['-q', '-t', 'ok', '--target', 'base', d], { root, env })).code, 0);
  const big = await cli(['-q', '-t', 'bigimg', '-f', path.join(d, 'Dockerfile.copy'), d], { root, env });
  assert.is(big.code, 0, big.stderr);
  const ref = `${registry().host}/full/big:1`;
  assert.is((await cli(['push', 'bigimg', ref], { root, env })).code, 0);
  r = await cli(['pull', ref], { root: store, env });
  assert.is(r.code, 1);
  assert.match(r.stderr, /no space left on device downloading blob sha256:[0-9a-f]{64} \(\d+ bytes\) from 127\.0\.0\.1:\d+\/full\/big into the store; nothing of it was kept/);
  assert.match(r.stderr, HINT);
  consistent(store);
  assert.not.match((await cli(['images'], { root: store, env })).stdout, /full\/big/, 'no name for a half-pulled image');

  // The store works again once space is freed (`ok` stays: a base for the next build).
  assert.is((await cli(['prune', '--all'], { root: store, env })).code, 0);
  write('Dockerfile.small', 'FROM ok\nRUN dd if=/dev/zero of=/small bs=1M count=4 2>/dev/null\n');
  const ok = await cli(['-q', '-t', 'small', '-f', path.join(d, 'Dockerfile.small'), d], { root: store, env });
  assert.is(ok.code, 0, ok.stderr);
  assert.is((await cli(['run', '--rm', 'small', 'cat', '/ok'], { root: store, env })).stdout, 'ok\n');
});

h.test.run();
