/**
 * Host mounts, unmounts and xattr listings, each test both ways: in this process through the mounts
 * addon, and through the long-lived helper (TSBUILD_MOUNT_ADDON=0). Both report failures the same,
 * and neither holds the process open.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { applyMeta, SandboxError } from './helper.js';
import { hostMountAsync, hostMountMethod, hostUnmountAsync, readLayerMetaAsync } from './mountserver.js';
import { tmpdir, mountsUnder, sandboxUnavailable } from '../testutil/index.js';

const why = sandboxUnavailable();
const addonBuilt = fs.existsSync(new URL('../../native/build/tsbuild-mounts.node', import.meta.url));
/** Registers the test once per way; the addon's is skipped where it was not built. */
const it = (n: string, fn: () => Promise<void> | void) => {
  for (const [way, value] of [['the addon', '1'], ['the helper', '0']] as const) {
    const name = `${n} (${way})`;
    const skip = why ?? (value === '1' && !addonBuilt ? 'the mounts addon was not built' : undefined);
    if (skip) {
      test.skip(`${name} (skipped: ${skip})`);
      continue;
    }
    test(name, async () => {
      process.env.TSBUILD_MOUNT_ADDON = value;
      try {
        await fn();
      } finally {
        delete process.env.TSBUILD_MOUNT_ADDON;
      }
    });
  }
};
const base = tmpdir('tsb-mountsrv-');
test.after(async () => {
  // whatever a failed test left mounted
  for (const d of ['b', 'c'].map((x) => path.join(base, x))) {
    for (let i = 0; i < 10 && mountsUnder(d).length; i++) await hostUnmountAsync(d).catch(() => undefined);
  }
  fs.rmSync(base, { recursive: true, force: true });
});

it('mounts and unmounts; empty data and relative sources work, and this process keeps its working directory', async () => {
  const a = path.join(base, 'a');
  const b = path.join(base, 'b');
  fs.mkdirSync(a, { recursive: true });
  fs.mkdirSync(b, { recursive: true });
  const cwd = process.cwd();
  fs.writeFileSync(path.join(a, 'f'), 'x');
  await hostMountAsync({ type: 'tmpfs', source: 'tmpfs', flags: 0, data: 'size=1m' }, b);
  assert.is(mountsUnder(base).length, 1);
  await hostUnmountAsync(b);
  // a bind mount with empty data and a source relative to a working directory
  await hostMountAsync({ type: 'bind', source: 'a', flags: 4096 /* MS_BIND */, data: '', cwd: base }, b);
  assert.is(fs.readFileSync(path.join(b, 'f'), 'utf8'), 'x');
  assert.is(process.cwd(), cwd, 'the mount\'s working directory was its own');
  // The thread pool's threads too: a relative path read there still means this process's directory.
  assert.is(await fs.promises.readFile(path.relative(cwd, path.join(a, 'f')), 'utf8'), 'x');
  await hostUnmountAsync(b);
  assert.is(mountsUnder(base).length, 0);
  // An overlay whose lowerdirs are relative to a working directory, as the snapshotter mounts them.
  for (const x of ['l1', 'l2']) {
    fs.mkdirSync(path.join(base, x), { recursive: true });
    fs.writeFileSync(path.join(base, x, x), x);
  }
  await hostMountAsync({ type: 'overlay', source: 'overlay', flags: 1 /* MS_RDONLY */, data: 'lowerdir=l2:l1', cwd: base }, b);
  assert.equal(fs.readdirSync(b).sort(), ['l1', 'l2']);
  await hostUnmountAsync(b);
  assert.is(mountsUnder(base).length, 0);
});

it('tsbuild info says which way', () => {
  assert.match(hostMountMethod(), process.env.TSBUILD_MOUNT_ADDON === '0' ? /through the helper's serve process \(TSBUILD_MOUNT_ADDON=0\)/ : /in this process \(native\/build\/tsbuild-mounts\.node\)/);
});

it('a failure is a SandboxError with the errno, and the next call is served', async () => {
  const nowhere = path.join(base, 'not-a-mount');
  fs.mkdirSync(nowhere, { recursive: true });
  await hostUnmountAsync(nowhere).then(
    () => assert.unreachable(),
    (e: unknown) => {
      assert.instance(e, SandboxError);
      assert.is((e as SandboxError).failure.errno, 22, 'EINVAL: not a mount point');
      assert.match((e as Error).message, /sandbox setup failed: host: umount .*not-a-mount: Invalid argument/);
    },
  );
  const c = path.join(base, 'c');
  fs.mkdirSync(c, { recursive: true });
  // many at once
  await Promise.all(Array.from({ length: 5 }, () => hostMountAsync({ type: 'tmpfs', source: 'tmpfs', flags: 0, data: '' }, c)));
  assert.is(mountsUnder(c).length, 5);
  for (let i = 0; i < 5; i++) await hostUnmountAsync(c);
  assert.is(mountsUnder(base).length, 0);
});

it('xattr listings: every entry, in many chunks, with any bytes in names and values', async () => {
  const d = path.join(base, 'x');
  fs.rmSync(d, { recursive: true, force: true });
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

it('a listing that fails names the directory, and the next is served', async () => {
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
  `], { encoding: 'utf8', timeout: 30_000, env: { ...process.env } });
  assert.equal([r.status, r.signal, r.stdout], [0, null, 'done\n'], r.stderr);
});

test.run();
