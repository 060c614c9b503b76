/**
 * Push compresses a layer while it uploads (one streamed PATCH, then the PUT with the digest). A
 * registry that refuses that PATCH gets the layer compressed first and uploaded with retries, and
 * the image is the same either way; the next push finds the layer in the registry by its digest.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { cli, startFaultProxy } from '../testutil/index.js';
import { registryFixture } from './registry.fixture.js';

const { it, root, env, skopeo, buildHello, registry } = registryFixture('pstream');

it('a streamed push and a push whose streamed PATCH is refused give the same image; a repeat push sends no layer bytes', async () => {
  await buildHello('streamed');
  fs.rmSync(path.join(root, 'compressed'), { recursive: true, force: true });
  const direct = `${registry().host}/tests/streamed:1`;
  const r1 = await cli(['push', 'streamed', direct], { root, env });
  assert.is(r1.code, 0, r1.stderr);
  const d1 = /digest: (sha256:[a-f0-9]{64})/.exec(r1.stdout)![1];
  const stored = fs.readdirSync(path.join(root, 'blobs/sha256'));

  const proxy = await startFaultProxy(registry().host);
  try {
    // Every streamed PATCH fails (HTTP 500, also on retry): each layer falls back to compress + upload.
    fs.rmSync(path.join(root, 'compressed'), { recursive: true, force: true });
    proxy.inject('error-500', { times: 100, match: /\/blobs\/uploads\//, method: 'PATCH' });
    const viaProxy = `${proxy.host}/tests/refused:1`;
    const r2 = await cli(['push', 'streamed', viaProxy], { root, env });
    assert.is(r2.code, 0, r2.stderr);
    assert.ok(proxy.hits >= 1, 'the streamed PATCH was tried');
    assert.is(/digest: (sha256:[a-f0-9]{64})/.exec(r2.stdout)![1], d1, 'the same manifest');
    assert.ok(fs.readdirSync(path.join(root, 'blobs/sha256')).length > stored.length, 'the fallback stored the compressed layer');
  } finally {
    await proxy.stop();
  }
  const remote = JSON.parse(skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${registry().host}/tests/refused:1`]).out) as { layers: { digest: string }[] };
  const first = JSON.parse(skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${direct}`]).out) as { layers: { digest: string }[] };
  assert.equal(remote.layers, first.layers);

  // Pushed before: found in the registry by its remembered digest (mounted), nothing uploaded.
  const r3 = await cli(['push', 'streamed', `${registry().host}/tests/again:1`], { root, env });
  assert.is(r3.code, 0, r3.stderr);
  assert.not.match(r3.stderr, /: done/);
  assert.match(r3.stderr, /mounted from|already there/);
});

test.run();
