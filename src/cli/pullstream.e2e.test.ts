/**
 * Pull unpacks layers while they download. A download that starts over (a registry that ignores
 * the Range of a resumed request) makes the layer unpack again from the finished blob; the image is
 * the one pushed.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cli, startFaultProxy } from '../testutil/index.js';
import { registryFixture } from './registry.fixture.js';

const { it, root, env, skopeo, buildHello, registry, newStore } = registryFixture('pullstream');

it('a layer whose download starts over mid-unpack is unpacked again from the store; the pulled image runs', async () => {
  await buildHello('restarting');
  const direct = `${registry().host}/tests/restarting:1`;
  assert.is((await cli(['push', 'restarting', direct], { root, env })).code, 0);
  const pushed = JSON.parse(skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${direct}`]).out) as { layers: { digest: string }[] };
  const proxy = await startFaultProxy(registry().host);
  try {
    const big = pushed.layers[0]!.digest; // busybox: the large one
    proxy.inject('restart-ignoring-range', { times: 2, match: new RegExp(big) });
    const s = newStore();
    const ref = `${proxy.host}/tests/restarting:1`;
    const r = await cli(['pull', ref], { root: s, env });
    assert.is(r.code, 0, r.stderr);
    assert.is(proxy.hits, 2, 'cut once, then sent whole again');
    assert.is((await cli(['run', '--rm', ref], { root: s, env })).stdout, 'hello restarting\n');
  } finally {
    await proxy.stop();
  }
});

test.run();
