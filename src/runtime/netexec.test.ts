/** The runner network setup uses for ip and nft: output, input, and the two errors a user sees. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { TsbuildError } from '../errors/index.js';
import { run } from './netexec.js';

test('returns the tool\'s output and feeds it the input given', async () => {
  assert.is(await run('sh', ['-c', 'cat; echo done'], 'table inet x {}\n'), 'table inet x {}\ndone\n');
  assert.is(await run('sh', ['-c', 'echo no input wanted']), 'no input wanted\n');
});

test('a failing tool is NETWORK_SETUP with its command line and stderr', async () => {
  const e = await run('sh', ['-c', 'echo "RTNETLINK answers: File exists" >&2; exit 2']).then(() => undefined, (x: unknown) => x);
  assert.instance(e, TsbuildError);
  assert.is((e as TsbuildError).code, 'NETWORK_SETUP');
  assert.match((e as Error).message, /^sh -c .*: RTNETLINK answers: File exists$/);
  const quiet = await run('sh', ['-c', 'exit 3']).then(() => undefined, (x: unknown) => x);
  assert.match((quiet as Error).message, /exit status 3$/);
});

test('a missing tool is NETWORK_TOOLS, saying what to install or which network to use instead', async () => {
  const e = await run('tsbuild-no-such-ip', ['link']).then(() => undefined, (x: unknown) => x);
  assert.is((e as TsbuildError).code, 'NETWORK_TOOLS');
  assert.match((e as Error).message, /apt-get install -y iproute2 nftables\), or run with --network host or none/);
});

test.run();
