/**
 * Rootless storage and ids, end to end as an ordinary user (made and removed here): the
 * fuse-overlayfs fallback for kernels that refuse overlay in a user namespace, and `--userns keep-id`.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { programUnavailable, sandboxUnavailable, testUnless } from '../testutil/index.js';
import { as, cleanups, context, gidOf, killHolder, makeUser, ranged, single, stageApp, uidOf, MULTI } from './rootless.fixture.js';

const skip = sandboxUnavailable() ?? programUnavailable('useradd', ['--help'], 'passwd') ?? programUnavailable('newuidmap', ['--help'], 'uidmap') ?? programUnavailable('fuse-overlayfs', ['--version'], 'fuse-overlayfs');


test.before(() => {
  if (skip) return;
  makeUser(ranged, true);
  makeUser(single, false);
  stageApp();
});

test.after(() => {
  for (const u of [ranged, single]) {
    killHolder(u);
    if (u.home) fs.rmSync(u.home, { recursive: true, force: true });
  }
  for (const c of cleanups.reverse()) c();
});

testUnless(skip, 'a kernel that refuses overlay in a user namespace: the default becomes fuse-overlayfs, which gives the same image id', async () => {
  // The probe's remembered verdict stands in for an old kernel (this one allows overlay in a user namespace).
  const verdict = path.join(ranged.home, 'run/tsbuild/overlay-verdict');
  const ctx = context(MULTI);
  try {
    const first = as(ranged, ['build', '-q', '-t', 'multi', '.'], { cwd: ctx });
    assert.is(first.code, 0, first.stderr);
    const multiId = first.stdout.trim().split('\n').pop()!;
    const before = fs.readFileSync(verdict, 'utf8');
    assert.is(before, 'yes', 'this kernel mounts overlay in a user namespace');
    fs.writeFileSync(verdict, 'no');
    const info = as(ranged, ['info']);
    assert.match(info.stdout, /Snapshotter:\s+fuse-overlayfs/);
    assert.match(info.stdout, /fuse-overlayfs\s+available/);
    const b = as(ranged, ['build', '-q', '-t', 'multi-fuse', '.'], { cwd: ctx });
    assert.is(b.code, 0, b.stderr);
    assert.is(b.stdout.trim().split('\n').pop(), multiId, 'the image id of the overlay build');
    assert.ok(fs.existsSync(path.join(ranged.home, '.local/share/tsbuild/snapshots/fuse-overlayfs/metadata.json')), 'built on fuse-overlayfs');
    const r = as(ranged, ['run', '--rm', 'multi-fuse']);
    assert.is(r.code, 0, r.stderr);
    assert.is(r.stdout, '0\nmade\nby-bob\n1234:1234\n4321:0\n65000:3000\n');
    assert.is(as(ranged, ['rmi', 'multi-fuse']).code, 0);
    // A writable bind of the context: its writes are the step's alone (a scratch copy here, no kernel overlay).
    const rwCtx = context('FROM base\nRUN --mount=type=bind,rw,target=/c sh -c "echo x > /c/new && ls /c > /listed"\n');
    try {
      const rw = as(ranged, ['build', '-q', '-t', 'rw-fuse', '.'], { cwd: rwCtx });
      assert.is(rw.code, 0, rw.stderr);
      assert.match(as(ranged, ['run', '--rm', 'rw-fuse', 'cat', '/listed']).stdout, /Dockerfile\n(.*\n)*new\n/);
      assert.not.ok(fs.existsSync(path.join(rwCtx, 'new')), 'the context is untouched');
    } finally {
      fs.rmSync(rwCtx, { recursive: true, force: true });
    }
  } finally {
    fs.writeFileSync(verdict, 'yes');
    fs.rmSync(ctx, { recursive: true, force: true });
  }
});

testUnless(skip, '--userns keep-id: the user\'s own ids inside, its host files are its own there, the image\'s root stays root; uid= option, cp, inspect; refused without a range', async () => {
  const ctx = context('FROM base\nRUN mkdir -p /data /etc && echo r > /data/f && echo root:x:0:0:root:/root:/bin/sh > /etc/passwd && echo root:x:0: > /etc/group\n');
  const host = fs.mkdtempSync(path.join(ranged.home, 'kid-'));
  const [u, g] = [uidOf(ranged), gidOf(ranged)];
  try {
    fs.writeFileSync(path.join(host, 'mine'), 'm\n');
    fs.chownSync(host, u, g);
    fs.chownSync(path.join(host, 'mine'), u, g);
    const b = as(ranged, ['build', '-q', '-t', 'kid', '.'], { cwd: ctx });
    assert.is(b.code, 0, b.stderr);
    const r = as(ranged, ['run', '--rm', '--network', 'none', '--userns', 'keep-id', '-v', `${host}:/h`, 'kid', 'sh', '-c',
      'id -u; id -g; id -un; stat -c %u:%g / /data/f /h/mine; echo w > /h/new && stat -c %u:%g /h/new; echo $HOME; tail -1 /etc/passwd; cat /proc/self/uid_map | tr -s " " | sed "s/^ //"']);
    assert.is(r.code, 0, r.stderr);
    // As podman maps it: below the user's id the subordinate ids, the user itself, then the rest.
    assert.is(r.stdout, `${u}\n${g}\n${ranged.name}\n0:0\n0:0\n${u}:${g}\n${u}:${g}\n${ranged.home}\n${ranged.name}:*:${u}:${g}:${ranged.name}:${ranged.home}:/bin/sh\n0 1 ${u}\n${u} 0 1\n${u + 1} ${u + 1} ${65536 - u}\n`);
    assert.equal([fs.statSync(path.join(host, 'new')).uid, fs.statSync(path.join(host, 'new')).gid], [u, g], 'written as the user on the host');
    const o = as(ranged, ['run', '--rm', '--network', 'none', '--userns', 'keep-id:uid=1234,gid=1234', '-v', `${host}:/h`, 'kid', 'sh', '-c', 'id -u; stat -c %u /h/mine; stat -c %u /data/f']);
    assert.is(o.stdout, '1234\n1234\n0\n', o.stderr);
    // Detached: inspect says keep-id; cp gives files to the container's root, running and stopped.
    assert.is(as(ranged, ['run', '-d', '--name', 'kd', '--network', 'none', '--userns', 'keep-id', 'kid', 'sleep', '600']).code, 0);
    try {
      assert.is(as(ranged, ['inspect', '-f', '{{.HostConfig.UsernsMode}}', 'kd']).stdout.trim(), 'keep-id');
      assert.is(as(ranged, ['cp', path.join(host, 'mine'), 'kd:/running']).code, 0);
      assert.is(as(ranged, ['stop', '-t', '0', 'kd']).code, 0);
      const st = as(ranged, ['cp', path.join(host, 'mine'), 'kd:/stopped']);
      assert.is(st.code, 0, st.stderr);
      assert.is(as(ranged, ['start', 'kd']).code, 0);
      assert.is(as(ranged, ['exec', 'kd', 'stat', '-c', '%u:%g', '/running', '/stopped', '/data/f']).stdout, '0:0\n0:0\n0:0\n');
    } finally {
      as(ranged, ['rm', '-f', 'kd']);
    }
    const none = as(single, ['run', '--rm', '--userns', 'keep-id', 'no-such-image-here', 'true']);
    assert.is(none.code, 125);
    assert.match(none.stderr, /keep-id: you have no subordinate ids, .* add a range for your user to \/etc\/subuid/);
    const native = as(ranged, ['run', '--rm', '--snapshotter', 'native', '--userns', 'keep-id', 'kid', 'true']);
    assert.is(native.code, 125);
    assert.match(native.stderr, /needs the overlayfs or fuse-overlayfs snapshotter/);
  } finally {
    fs.rmSync(ctx, { recursive: true, force: true });
    fs.rmSync(host, { recursive: true, force: true });
  }
});

test.run();
