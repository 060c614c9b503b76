/** The long-lived mount helper: mounts and unmounts, reports failures, serialises, never holds the process open. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { hostMountAsync, hostUnmountAsync, SandboxError } from './helper.js';
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

// The file ending at all proves the idle helper does not keep Node's event loop alive.
test.run();
