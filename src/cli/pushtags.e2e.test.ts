/**
 * push and pull --all-tags (#19): every local tag of a repository goes to the test registry, and every
 * tag the registry lists comes back into an empty store, as Docker's.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cli } from '../testutil/index.js';
import { registryFixture } from './registry.fixture.js';

const { it, root, env, skopeo, buildHello, registry, newStore } = registryFixture('tags');

it('push --all-tags pushes every local tag of a repository; a tag or a destination with it is refused', async () => {
  await buildHello('alltags');
  const repo = `${registry().host}/tests/alltags`;
  for (const t of ['1', '2']) assert.is((await cli(['tag', 'alltags', `${repo}:${t}`], { root, env })).code, 0);
  const r = await cli(['push', '-a', repo], { root, env });
  assert.is(r.code, 0, r.stderr);
  const esc = repo.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  assert.match(r.stdout, new RegExp(`^${esc}:1: digest: sha256:[a-f0-9]{64}\n${esc}:2: digest: sha256:[a-f0-9]{64}\n$`));
  const tags = skopeo(['list-tags', '--tls-verify=false', `docker://${repo}`]);
  assert.is(tags.code, 0, tags.out);
  assert.equal((JSON.parse(tags.out) as { Tags: string[] }).Tags.sort(), ['1', '2']);
  for (const bad of [['push', '-a', `${repo}:1`], ['push', '--all-tags', repo, `${repo}-copy`]]) {
    const b = await cli(bad, { root, env });
    assert.is(b.code, 2, b.stderr);
    assert.match(b.stderr, /push --all-tags takes a repository without a tag or destination/);
  }
  const none = await cli(['push', '-a', `${registry().host}/tests/nothing-here`], { root, env });
  assert.match(none.stderr, /An image does not exist locally with the repository/);

  const empty = newStore();
  const pulled = await cli(['pull', '-a', repo], { root: empty, env });
  assert.is(pulled.code, 0, pulled.stderr);
  assert.match(pulled.stdout, new RegExp(`^${esc}:1: sha256:[a-f0-9]{64}\n${esc}:2: sha256:[a-f0-9]{64}\n$`));
  const names = await cli(['images', '--format', '{{.Repository}}:{{.Tag}}'], { root: empty, env });
  assert.equal(names.stdout.split('\n').filter(Boolean).sort(), [`${repo}:1`, `${repo}:2`]);
  const tagged = await cli(['pull', '-a', `${repo}:1`], { root: empty, env });
  assert.is(tagged.code, 2);
  assert.match(tagged.stderr, /pull --all-tags takes a repository without a tag or digest/);
  const unknown = await cli(['pull', '-a', `${registry().host}/tests/never-pushed`], { root: empty, env });
  assert.is(unknown.code, 1);
  assert.match(unknown.stderr, /repository unknown|has no tags/);
});

test.run();
