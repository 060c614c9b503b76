/** --cache-to/--cache-from type=local: a build cache carried through a directory, as CI cache actions do. */
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { cli, e2eHarness, removeStore, tmpdir } from '../testutil/index.js';

const { it, root, ctx, test } = e2eHarness('lcache');
const extra: string[] = [];
test.after(() => {
  for (const d of extra) removeStore(d);
});

it('type=local: an empty store hits every step from the directory; mode=max covers other stages; a damaged blob is refused', async () => {
  const d = ctx('FROM base AS tools\nRUN echo tool > /tool\nFROM base AS final\nCOPY --from=tools /tool /tool\nRUN cat /tool > /seen\n');
  const dir = path.join(tmpdir('tsb-lcache-dir-'), 'cache');
  extra.push(path.dirname(dir));
  const r = await cli(['--progress', 'plain', '--cache-to', `type=local,dest=${dir},mode=max`, '-t', 'lc1', d], { root });
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stderr, new RegExp(`cache exported to local:${dir.replace(/[/.]/g, '\\$&')}: \\d+ records \\(mode=max\\)`));
  assert.ok(fs.existsSync(path.join(dir, 'index.json')) && fs.existsSync(path.join(dir, 'oci-layout')));
  const fresh = tmpdir('tsb-lcache-store-');
  extra.push(fresh);
  const again = await cli(['--progress', 'plain', '--cache-from', `type=local,src=${dir}`, '-t', 'lc1', d], { root: fresh });
  assert.is(again.code, 0, again.stderr);
  const ran = [...again.stderr.matchAll(/^#\d+ DONE/gm)].length;
  const cached = [...again.stderr.matchAll(/^#\d+ CACHED/gm)].length;
  assert.ok(cached >= 4, again.stderr);
  assert.is(ran, 1, 'only the export runs');
  const id1 = (await cli(['inspect', '-f', '{{.Id}}', 'lc1'], { root })).stdout;
  assert.is((await cli(['inspect', '-f', '{{.Id}}', 'lc1'], { root: fresh })).stdout, id1, 'the same image');
  // A blob changed on disk: the build refuses it by digest, naming the file.
  const blobs = fs.readdirSync(path.join(dir, 'blobs/sha256')).map((b) => path.join(dir, 'blobs/sha256', b)).sort((a, b) => fs.statSync(b).size - fs.statSync(a).size);
  fs.appendFileSync(blobs[0]!, 'x');
  const third = tmpdir('tsb-lcache-store-');
  extra.push(third);
  const bad = await cli(['--cache-from', `type=local,src=${dir}`, d], { root: third });
  assert.is(bad.code, 1);
  assert.match(bad.stderr, /does not match its digest|the directory is damaged/);
  // A missing directory is a first run, not an error; bad specs are refused.
  assert.is((await cli(['--cache-from', `type=local,src=${dir}-none`, d], { root })).code, 0);
  assert.match((await cli(['--cache-to', 'type=local,src=/x', d], { root })).stderr, /unknown option "src" for type=local/);
  assert.match((await cli(['--cache-to', 'type=gha', d], { root })).stderr, /use type=registry,ref=… or type=local,dest=DIR/);
});

it('--annotation: on the manifest (its digest changes with them); an index target without an index, and descriptor targets, refused', async () => {
  const d = ctx('RUN true\n');
  const r = await cli(['--annotation', 'org.opencontainers.image.source=https://example.test/app', '--annotation', 'manifest:team=db', '-t', 'annotated', d], { root });
  assert.is(r.code, 0, r.stderr);
  const info = JSON.parse((await cli(['inspect', 'annotated'], { root })).stdout)[0] as { Manifest: { annotations?: Record<string, string> } };
  assert.equal(info.Manifest.annotations, { 'org.opencontainers.image.source': 'https://example.test/app', team: 'db' });
  const bad = await cli(['--annotation', 'index:a=b', d], { root });
  assert.is(bad.code, 2);
  assert.match(bad.stderr, /a single-platform image has no index; annotate its manifest/);
  const other = await cli(['--annotation', 'manifest-descriptor:a=b', d], { root });
  assert.is(other.code, 2);
  assert.match(other.stderr, /tsbuild annotates the manifest or the index of a multi-platform image/);
});

it('--platform that nothing here can run is refused before anything is built, with the reason, also as one of several', async () => {
  const d = ctx('RUN true\n');
  const r = await cli(['--platform', 'linux/sparc64', d], { root });
  assert.is(r.code, 1);
  assert.match(r.stderr, /platform linux\/sparc64: tsbuild cannot run its programs on this linux\/\w+ machine \(no qemu-user emulation is known for it\); build it on a linux\/sparc64 machine/);
  assert.not.match(r.stderr, /#\d+ /, 'nothing ran');
  const two = await cli(['--platform', `${process.arch === 'arm64' ? 'linux/arm64' : 'linux/amd64'},linux/sparc64`, d], { root });
  assert.is(two.code, 1);
  assert.match(two.stderr, /platform linux\/sparc64: tsbuild cannot run its programs/);
  assert.not.match(two.stderr, /#\d+ /, 'nothing ran, not even the runnable platform');
});

test.run();
