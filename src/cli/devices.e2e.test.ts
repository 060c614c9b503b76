/**
 * A device or a FIFO given as an output path is written into, never replaced: `save -o /dev/null`
 * once renamed its archive over the host's /dev/null. The test's own device node and FIFO stand in
 * for /dev/null, so a regression cannot touch the real one. (`cp` to a device: lifecycle-faults.)
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import * as assert from 'uvu/assert';
import { cli, e2eHarness, tmpdir } from '../testutil/index.js';

const { it, test, root, dirs, ctx } = e2eHarness('dev');

/** Runs `tsbuild ARGS` while `cat` reads `fifo`; the bytes it read. A writer that never opens the FIFO ends the reader after 30 s. */
async function throughFifo(fifo: string, args: string[]): Promise<{ code: number; stderr: string; bytes: number }> {
  const reader = spawn('sh', ['-c', `wc -c < '${fifo}'`], { stdio: ['ignore', 'pipe', 'ignore'] });
  const closed = new Promise((res) => reader.on('close', res));
  let count = '';
  reader.stdout.on('data', (d: Buffer) => (count += d.toString()));
  const guard = setTimeout(() => reader.kill(), 30_000);
  const r = await cli(args, { root });
  if (r.code !== 0) reader.kill();
  await closed;
  clearTimeout(guard);
  return { code: r.code, stderr: r.stderr, bytes: Number(count.trim()) };
}

it('save -o and --output dest= write into a device or a FIFO and leave it one', async () => {
  const d = ctx('RUN echo made > /made\n');
  const b = await cli(['-q', '-t', 'dev:1', d], { root });
  assert.is(b.code, 0, b.stderr);
  const out = tmpdir('tsb-dev-');
  dirs.push(out);
  assert.is((await cli(['save', '-o', path.join(out, 'd.tar'), 'dev:1'], { root })).code, 0);
  assert.is((await cli(['-q', '-o', `type=tar,dest=${path.join(out, 'fs.tar')}`, d], { root })).code, 0);

  const nul = path.join(out, 'null');
  assert.is(spawnSync('mknod', ['-m', '666', nul, 'c', '1', '3']).status, 0);
  let r = await cli(['save', '-o', nul, 'dev:1'], { root });
  assert.is(r.code, 0, r.stderr);
  r = await cli(['-q', '-o', `type=tar,dest=${nul}`, d], { root });
  assert.is(r.code, 0, r.stderr);
  const st = fs.lstatSync(nul);
  assert.ok(st.isCharacterDevice() && (st.mode & 0o777) === 0o666, 'still the null device, mode 666');

  const fifo = path.join(out, 'fifo');
  assert.is(spawnSync('mkfifo', [fifo]).status, 0);
  const saved = await throughFifo(fifo, ['save', '-o', fifo, 'dev:1']);
  assert.is(saved.code, 0, saved.stderr);
  assert.is(saved.bytes, fs.statSync(path.join(out, 'd.tar')).size, 'the archive went through the FIFO');
  const exported = await throughFifo(fifo, ['-q', '-o', `type=tar,dest=${fifo}`, d]);
  assert.is(exported.code, 0, exported.stderr);
  assert.is(exported.bytes, fs.statSync(path.join(out, 'fs.tar')).size, 'the filesystem tar went through the FIFO');
  assert.ok(fs.lstatSync(fifo).isFIFO(), 'still a FIFO');
  assert.equal(fs.readdirSync(out).filter((f) => f.includes('.tmp-')), [], 'no temp file beside them');
});

test.run();
