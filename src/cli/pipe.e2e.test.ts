/**
 * Output into a pipe whose reader is gone (`tsbuild images | head -1`): a quiet end with 141, as a
 * program killed by SIGPIPE, never a Node stack trace; `run` ends its container and removes it.
 */
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { cli, cliPath, e2eHarness, mountsUnder } from '../testutil/index.js';

const { it, root, ctx, test } = e2eHarness('pipe');

/** Runs the CLI with its standard output a pipe nobody reads: the read end is closed at once. */
function withReaderGone(args: string[]): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const c = spawn(cliPath, args, { env: { ...process.env, TSBUILD_ROOT: root, TSBUILD_PULL: 'never', TSBUILD_NETWORK: 'host' }, stdio: ['ignore', 'pipe', 'pipe'] });
    c.stdout.destroy();
    let stderr = '';
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => c.kill('SIGKILL'), 60_000);
    c.on('error', reject);
    c.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stderr });
    });
  });
}

it('a listing into a closed pipe ends quietly with 141', async () => {
  for (const args of [['info'], ['images'], ['--help']]) {
    const r = await withReaderGone(args);
    assert.is(r.signal, null, `${args.join(' ')}: ended by ${r.signal}`);
    assert.ok(r.code === 141 || r.code === 0, `${args.join(' ')}: exit ${r.code}: ${r.stderr}`);
    assert.not.match(r.stderr, /EPIPE|node:events|at .*\.(c|m)?js/, `${args.join(' ')}: ${r.stderr}`);
  }
  // info writes more than once after the pipe broke: the first failed write must end it.
  assert.is((await withReaderGone(['info'])).code, 141);
});

it('run into a closed pipe ends its container (which would write for ever) and removes it', async () => {
  const b = await cli(['build', '-t', 'pipe-bb', ctx('')], { root });
  assert.is(b.code, 0, b.stderr);
  const r = await withReaderGone(['run', '--rm', 'pipe-bb', 'yes']);
  assert.is(r.code, 141, r.stderr);
  assert.not.match(r.stderr, /EPIPE|node:events/, r.stderr);
  assert.is((await cli(['ps', '-a', '-q'], { root })).stdout, '', 'the --rm container is gone');
  assert.equal(mountsUnder(root), [], 'no mount left');
  // save streams to stdout: cancelled, quietly, as the reader went away.
  const s = await withReaderGone(['save', 'pipe-bb']);
  assert.is(s.code, 141, s.stderr);
  assert.is(s.stderr, '');
});

test.run();
