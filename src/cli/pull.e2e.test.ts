/**
 * Pulls that fail after the download: the image is named only once its layers are unpacked, so a
 * pull that fails while extracting leaves nothing that lists but cannot run. And what a restart of
 * the machine does to layers unpacked without a sync.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { asIfRestarted, cli, snapshotTable } from '../testutil/index.js';
import { registryFixture } from './registry.fixture.js';

const { it, root, env, newStore, buildHello, storeManifest, registry } = registryFixture('pull');

const sha = (b: Buffer) => `sha256:${crypto.createHash('sha256').update(b).digest('hex')}`;

/** PUTs a blob into the test registry (monolithic upload). */
async function putBlob(host: string, repo: string, bytes: Buffer): Promise<string> {
  const start = await fetch(`http://${host}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  const loc = new URL(start.headers.get('location')!, `http://${host}`);
  loc.searchParams.set('digest', sha(bytes));
  const r = await fetch(loc, { method: 'PUT', body: new Uint8Array(bytes), headers: { 'content-type': 'application/octet-stream' } });
  assert.is(r.status, 201, await r.text());
  return sha(bytes);
}

it('a pull whose layer does not unpack to the diffID its config names fails and names nothing; the store stays usable', async () => {
  await buildHello('liar');
  const host = registry().host;
  const good = `${host}/tests/liar:good`;
  assert.is((await cli(['push', 'liar', good], { root, env })).code, 0);
  // The same layers, with a config that lies about what the last one unpacks to.
  const m = storeManifest(root, 'liar:latest');
  const cfg = JSON.parse((await (await fetch(`http://${host}/v2/tests/liar/blobs/${m.config.digest}`)).text())) as { rootfs: { diff_ids: string[] } };
  cfg.rootfs.diff_ids[cfg.rootfs.diff_ids.length - 1] = `sha256:${'ab'.repeat(32)}`;
  const cfgBytes = Buffer.from(JSON.stringify(cfg));
  const cfgDigest = await putBlob(host, 'tests/liar', cfgBytes);
  const pushed = JSON.parse(await (await fetch(`http://${host}/v2/tests/liar/manifests/good`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } })).text()) as { config: { digest: string; size: number } };
  pushed.config = { ...pushed.config, digest: cfgDigest, size: cfgBytes.length };
  const put = await fetch(`http://${host}/v2/tests/liar/manifests/bad`, { method: 'PUT', body: JSON.stringify(pushed), headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' } });
  assert.is(put.status, 201, await put.text());

  const s = newStore();
  const bad = await cli(['pull', `${host}/tests/liar:bad`], { root: s, env });
  assert.is(bad.code, 1);
  assert.match(bad.stderr, /unpacks to sha256:[a-f0-9]{64}, but the image config says sha256:(ab){32}/, bad.stderr);
  const ls = await cli(['images'], { root: s, env });
  assert.not.match(ls.stdout, /liar/, 'the failed pull named no image');
  const run = await cli(['run', '--rm', '--pull', 'never', `${host}/tests/liar:bad`], { root: s, env });
  assert.match(run.stderr, /not found in the local store/);
  const ok = await cli(['run', '--rm', good], { root: s, env });
  assert.is(ok.code, 0, ok.stderr);
  assert.is(ok.stdout, 'hello liar\n', 'the good image pulls and runs in the same store');
});

it('layers are committed with the boot they were unpacked in; after a restart they are unpacked again', async () => {
  await buildHello('reboot');
  const host = registry().host;
  const ref = `${host}/tests/reboot:1`;
  assert.is((await cli(['push', 'reboot', ref], { root, env })).code, 0);
  const s = newStore();
  const pulled = await cli(['pull', '-q', ref], { root: s, env });
  assert.is(pulled.code, 0, pulled.stderr);
  const read = () => snapshotTable(s);
  const boot = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  const layers = Object.entries(read().snapshots).filter(([, r]) => r.kind === 'committed');
  assert.ok(layers.length >= 2, 'a base layer and the COPY');
  for (const [k, r] of layers) assert.is(r.labels['tsbuild.unsynced-boot'], boot, k);
  asIfRestarted(s);
  const run = await cli(['run', '--rm', '--pull', 'never', ref], { root: s, env });
  assert.is(run.code, 0, run.stderr);
  assert.match(run.stderr, new RegExp(`removed ${layers.length} snapshot\\(s\\) unpacked .* before this machine restarted`));
  assert.is(run.stdout, 'hello reboot\n', 'unpacked again from the stored blobs');
  for (const [k, r] of Object.entries(read().snapshots)) if (r.kind === 'committed') assert.is(r.labels['tsbuild.unsynced-boot'], boot, k);
  const again = await cli(['run', '--rm', '--pull', 'never', ref], { root: s, env });
  assert.is(again.stderr, '', 'said once');
});

test.run();
