/** The long-lived helper: mounts, unmounts and xattr listings; reports failures, serialises, never holds the process open. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { applyMeta, SandboxError } from './helper.js';
import { hostMountAsync, hostUnmountAsync, readLayerMetaAsync } from './mountserver.js';
import { tmpdir, mountsUnder, sandboxUnavailable } from '../testutil/index.js';

const why = sandboxUnavailable();
const it = why ? (n: string) => test.skip(`${n} (skipped: ${why})`) : test;
const base = tmpdir('tsb-mountsrv-');
test.after(async () => {
  // whatever a failed test left mounted
  for (const d of ['b', 'c'].map((x) => path.join(base, x))) {
    for (let i = 0; i < 10 && mountsUnder(d).length; i++) await hostUnmountAsync(d).catch(() => undefined);
  }
  fs.rmSync(base, { recursive: true, force: true });
});

it('mounts and unmounts through one helper; empty data and relative sources work', async () => {
  const a = path.join(base, 'a');
  const b = path.join(base, 'b');
  fs.mkdirSync(a);
  fs.mkdirSync(b);
  fs.writeFileSync(path.join(a, 'f'), 'x');
  await hostMountAsync({ type: 'tmpfs', source: 'tmpfs', flags: 0, data: 'size=1m' }, b);
  assert.is(mountsUnder(base).length, 1);
  await hostUnmountAsync(b);
  // a bind mount with empty data and a source relative to a working directory
  await hostMountAsync({ type: 'bind', source: 'a', flags: 4096 /* MS_BIND */, data: '', cwd: base }, b);
  assert.is(fs.readFileSync(path.join(b, 'f'), 'utf8'), 'x');
  await hostUnmountAsync(b);
  assert.is(mountsUnder(base).length, 0);
});

it('a failure is a SandboxError with the errno, and the helper keeps serving', async () => {
  const nowhere = path.join(base, 'not-a-mount');
  fs.mkdirSync(nowhere);
  await hostUnmountAsync(nowhere).then(
    () => assert.unreachable(),
    (e: unknown) => {
      assert.instance(e, SandboxError);
      assert.match((e as Error).message, /umount/);
    },
  );
  const c = path.join(base, 'c');
  fs.mkdirSync(c);
  // many at once: answered in order, one at a time
  await Promise.all(Array.from({ length: 5 }, () => hostMountAsync({ type: 'tmpfs', source: 'tmpfs', flags: 0, data: '' }, c)));
  assert.is(mountsUnder(c).length, 5);
  for (let i = 0; i < 5; i++) await hostUnmountAsync(c);
  assert.is(mountsUnder(base).length, 0);
});

it('xattr listings through the helper: every entry, in many chunks, with any bytes in names and values', async () => {
  const d = path.join(base, 'x');
  fs.mkdirSync(d);
  // A name with a newline and a byte that is not UTF-8 (paths are latin1 strings, one byte a character).
  const odd = 'odd\nname\xe9';
  fs.writeFileSync(Buffer.from(path.join(d, odd), 'latin1'), '');
  const value = Buffer.from([0, 1, 10, 255, 0x7b]);
  const meta = [{ op: 'setxattr' as const, path: Buffer.from(path.join(d, odd), 'latin1'), name: 'trusted.odd', value }];
  // Enough entries that the answer is hundreds of KiB, read in many pieces.
  for (let i = 0; i < 1500; i++) {
    fs.writeFileSync(path.join(d, `f${i}`), '');
    meta.push({ op: 'setxattr', path: Buffer.from(path.join(d, `f${i}`)), name: 'trusted.tsb', value: Buffer.alloc(64, i % 256) });
  }
  fs.mkdirSync(path.join(d, 'sub'));
  meta.push({ op: 'setxattr', path: Buffer.from(path.join(d, 'sub')), name: 'trusted.overlay.opaque', value: Buffer.from('y') });
  applyMeta(meta);
  const served = await readLayerMetaAsync(d);
  assert.is(served.xattrs.size, 1501);
  for (let i = 0; i < 1500; i++) assert.equal(served.xattrs.get(`f${i}`), { 'trusted.tsb': Buffer.alloc(64, i % 256) });
  assert.equal(served.xattrs.get(odd), { 'trusted.odd': value });
  assert.equal([...served.opaque], ['sub']);
  // Of named paths only; a missing one is skipped, and a mount in between is answered in order.
  const c = path.join(base, 'c');
  const [some] = await Promise.all([readLayerMetaAsync(d, [odd, 'f7', 'gone']), hostMountAsync({ type: 'tmpfs', source: 'tmpfs', flags: 0, data: '' }, c)]);
  await hostUnmountAsync(c);
  assert.equal([...some.xattrs.keys()].sort(), ['f7', odd].sort());
  assert.equal(some.xattrs.get('f7'), { 'trusted.tsb': Buffer.alloc(64, 7) });
  assert.is((await readLayerMetaAsync(d, [])).xattrs.size, 0);
});

it('a listing that fails names the directory, and the helper keeps serving', async () => {
  const gone = path.join(base, 'no-such-dir');
  await readLayerMetaAsync(gone).then(
    () => assert.unreachable(),
    (e: unknown) => {
      assert.instance(e, SandboxError);
      assert.match((e as Error).message, 'no-such-dir');
    },
  );
  assert.is((await readLayerMetaAsync(base, ['x/f1'])).xattrs.size, 1);
});

// The file ending at all proves the idle helper does not keep Node's event loop alive.
it('a process that used the helper ends cleanly when the helper exits while Node frees itself', () => {
  // Node closes the helper's stdin after 'exit' and turns its event loop once more; the helper then
  // exits, and reporting that exit into JS crashed V8 (SIGSEGV) once a synchronous child had run
  // (layers.test found it: readLayerMetaAsync, then applyMeta).
  const index = new URL('./index.js', import.meta.url).href;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', `
    import { spawnSync } from 'node:child_process';
    const { readLayerMetaAsync } = await import(${JSON.stringify(index)});
    await readLayerMetaAsync(${JSON.stringify(base)});
    spawnSync('/bin/true');
    console.log('done');
  `], { encoding: 'utf8', timeout: 30_000 });
  assert.equal([r.status, r.signal, r.stdout], [0, null, 'done\n'], r.stderr);
});

test.run();
