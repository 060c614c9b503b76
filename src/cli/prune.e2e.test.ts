/**
 * `container prune`, and Docker's question before every prune: asked on a terminal (a real pty,
 * through script(1)) unless -f, where only y/yes goes on; not asked without a terminal.
 */
import * as assert from 'uvu/assert';
import { cli, e2eHarness, onTerminal } from '../testutil/index.js';

const { it, root, ctx, test } = e2eHarness('prune');
const tsb = (args: string[]) => cli(args, { root });
const ids = async () => (await tsb(['ps', '-a', '-q', '--no-trunc'])).stdout.split('\n').filter(Boolean).sort();

it('container prune removes stopped containers only, after asking on a terminal', async () => {
  assert.is((await tsb(['build', '-t', 'prune-bb', ctx('')])).code, 0);
  for (const [name, cmd] of [['a', 'true'], ['b', 'echo x > /f']] as const) assert.is((await tsb(['run', '--name', name, 'prune-bb', 'sh', '-c', cmd])).code, 0);
  const live = await tsb(['run', '-d', '--name', 'live', 'prune-bb', 'sleep', '300']);
  assert.is(live.code, 0, live.stderr);
  try {
    const all = await ids();
    assert.is(all.length, 3);
    const env = { TSBUILD_ROOT: root };

    const no = await onTerminal(['container', 'prune'], env, [['[y/N] ', 'n\n']]);
    assert.match(no.stdout, 'WARNING! This will remove all stopped containers.');
    assert.match(no.stdout, 'Are you sure you want to continue? [y/N]');
    assert.match(no.stdout, 'cancelled: nothing was removed');
    assert.is(no.status, 1);
    assert.equal(await ids(), all, 'declined: nothing removed');

    // Without a terminal nobody could answer: no question; the filter keeps these new containers.
    const young = await tsb(['container', 'prune', '--filter', 'until=1h']);
    assert.is(young.code, 0, young.stderr);
    assert.not.match(young.stdout, 'Are you sure');
    assert.equal(await ids(), all);

    const yes = await onTerminal(['container', 'prune'], env, [['[y/N] ', 'y\n']]);
    assert.is(yes.status, 0, yes.stdout);
    assert.match(yes.stdout, 'Deleted Containers:');
    assert.match(yes.stdout, /Total reclaimed space: \d/);
    const left = await ids();
    assert.is(left.length, 1, 'the running container stays');
    for (const id of all.filter((x) => x !== left[0])) assert.match(yes.stdout, id, 'full ids of the removed, as Docker prints them');
    assert.is((await tsb(['inspect', '--type', 'container', '-f', '{{.Name}}', 'live'])).stdout.trim(), '/live');

    // -f never asks, even on a terminal; the other prunes ask the same way.
    const forced = await onTerminal(['container', 'prune', '-f'], env, []);
    assert.is(forced.status, 0);
    assert.not.match(forced.stdout, 'Are you sure');
    const sys = await onTerminal(['system', 'prune', '-a', '--volumes'], env, [['[y/N] ', '\n']]);
    assert.match(sys.stdout, /This will remove:\s+- all stopped containers\s+- all networks not used by at least one container\s+- all anonymous volumes not used by at least one container\s+- all images without at least one container associated to them\s+- all build cache/);
    assert.is(sys.status, 1, 'Enter alone is no');
    assert.match((await tsb(['images', '-q'])).stdout, /\w/, 'declined: the image stays');
    for (const args of [['image', 'prune'], ['volume', 'prune'], ['network', 'prune'], ['builder', 'prune']]) {
      const r = await onTerminal(args, env, [['[y/N] ', 'no\n']]);
      assert.match(r.stdout, 'WARNING! This will remove', args.join(' '));
      assert.is(r.status, 1, args.join(' '));
    }
  } finally {
    await tsb(['rm', '-f', 'live']);
  }
});

test.run();
