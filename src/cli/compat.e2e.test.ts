/** Docker's build flags that CI scripts pass and that hold here as they are: the build runs, the image is the same. */
import * as assert from 'uvu/assert';
import { cli, e2eHarness } from '../testutil/index.js';

const { it, root, ctx, test } = e2eHarness('compat');

it('--load, --rm, --force-rm, --compress, --disable-content-trust, --provenance=false, --sbom=false, --isolation default, --builder: the same image', async () => {
  const d = ctx('RUN echo hi > /x\n');
  const plain = await cli(['build', '-q', '-t', 'compat-plain', d], { root });
  assert.is(plain.code, 0, plain.stderr);
  const flags = ['--load', '--rm', '--force-rm=true', '--compress', '--disable-content-trust', '--provenance=false', '--sbom', 'false', '--isolation', 'default', '--builder', 'ci-builder'];
  const r = await cli(['build', '-q', '-t', 'compat-flags', ...flags, d], { root });
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stdout, plain.stdout, 'the same image id');
  assert.match(r.stderr, 'WARNING: --builder ci-builder: tsbuild has no builder instances; building on this machine');
  assert.match((await cli(['images', 'compat-flags'], { root })).stdout, /^compat-flags\s+latest\s/m, '--load: in the store');
  const help = (await cli(['build', '--help'], { root })).stdout;
  assert.match(help, /--load\s+accepted/);
  assert.not.match(help, /--squash|--attest/, 'flags tsbuild does not have are not in --help');
});

test.run();
