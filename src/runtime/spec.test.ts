/** Sandbox policy without root: spec building, limits, users, mount flags, layered lookups. */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { buildSpec, currentLimits, defaultRlimits } from './spec.js';
import { DEFAULT_CAPS } from './security.js';
import { resolveUser } from './user.js';
import { toSysMount, MS } from './mounts.js';
import { findInLayers, layerDirs, missingMountPoints, removeMountStubs } from './layers.js';
import { tmpdir } from '../testutil/index.js';

test('rlimits never exceed the current hard limit (root may lack CAP_SYS_RESOURCE)', () => {
  const dir = tmpdir();
  try {
    const f = path.join(dir, 'limits');
    fs.writeFileSync(f, 'Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 20000                files\n');
    assert.equal(defaultRlimits(currentLimits(f)), [{ type: 'RLIMIT_NOFILE', soft: 20000, hard: 20000 }]);
    fs.writeFileSync(f, 'Max open files            unlimited            unlimited            files\n');
    assert.equal(defaultRlimits(currentLimits(f)), [{ type: 'RLIMIT_NOFILE', soft: 1048576, hard: 1048576 }]);
    assert.equal(defaultRlimits(currentLimits(path.join(dir, 'missing'))), [{ type: 'RLIMIT_NOFILE', soft: 1048576, hard: 1048576 }]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('spec: namespaces per network mode, caps effective only for root, mounts and masks', () => {
  const common = { rootPath: '/r', rootMounts: [{ type: 'bind', source: '/s', options: ['rbind', 'rw'] }], args: ['sh'], env: [], cwd: '/', gid: 0, hostname: 'h', caps: DEFAULT_CAPS };
  const host = buildSpec({ ...common, uid: 0, network: 'host' });
  assert.equal(host.linux.namespaces.map((n) => n.type), ['mount', 'pid', 'uts', 'ipc']);
  assert.is(host.loopbackUp, false);
  assert.ok(host.process.capabilities.effective.length === 14);
  const none = buildSpec({ ...common, uid: 1000, network: 'none' });
  assert.ok(none.linux.namespaces.some((n) => n.type === 'network'));
  assert.is(none.loopbackUp, true);
  assert.equal(none.process.capabilities.effective, [], 'non-root gets no effective capabilities');
  assert.ok(host.mounts.some((m) => m.destination === '/sys' && (m.flags & MS.RDONLY) !== 0), '/sys is read-only');
  assert.ok(host.mounts.some((m) => m.destination === '/dev/null' && m.file && (m.flags & MS.BIND) !== 0));
  assert.ok(host.linux.maskedPaths.includes('/proc/kcore'));
  assert.equal(host.root.mounts[0], { type: 'none', source: '/s', flags: MS.BIND | MS.REC, data: '', cwd: undefined });
});

test('mount options become flags and data', () => {
  assert.equal(toSysMount({ type: 'overlay', source: 'overlay', options: ['ro', 'lowerdir=a:b', 'nodev'], cwd: '/x' }), {
    type: 'overlay', source: 'overlay', flags: MS.RDONLY | MS.NODEV, data: 'lowerdir=a:b', cwd: '/x',
  });
  assert.is(toSysMount({ type: 'tmpfs', source: 'tmpfs', options: ['rw', 'size=1m', 'noexec'] }).flags, MS.NOEXEC);
});

test('users: names, numbers, groups, supplementary groups, HOME, errors', () => {
  const passwd = 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:App:/home/app:/bin/sh\n';
  const group = 'root:x:0:\nappgrp:x:1001:\nextra:x:2000:app,other\nwheel:x:10:app\n';
  assert.equal(resolveUser('', undefined, undefined), { uid: 0, gid: 0, additionalGids: [], home: '/root' });
  assert.equal(resolveUser('app', passwd, group), { uid: 1000, gid: 1001, additionalGids: [2000, 10], home: '/home/app' });
  assert.equal(resolveUser('app:extra', passwd, group), { uid: 1000, gid: 2000, additionalGids: [], home: '/home/app' });
  assert.equal(resolveUser('4242', passwd, group), { uid: 4242, gid: 0, additionalGids: [], home: '/' });
  assert.equal(resolveUser('4242:7', undefined, undefined), { uid: 4242, gid: 7, additionalGids: [], home: '/' });
  assert.throws(() => resolveUser('ghost', passwd, group), /unable to find user ghost/);
  assert.throws(() => resolveUser('app:ghosts', passwd, group), /unable to find group ghosts/);
});

test('layered lookups follow overlay rules; mount stubs are removed only when empty', () => {
  const dir = tmpdir();
  try {
    const [upper, l1, l2] = ['upper', 'l1', 'l2'].map((d) => path.join(dir, d)) as [string, string, string];
    for (const d of [upper, l1, l2]) fs.mkdirSync(d);
    fs.mkdirSync(path.join(l2, 'etc'));
    fs.writeFileSync(path.join(l2, 'etc/passwd'), 'old');
    fs.mkdirSync(path.join(l1, 'etc'));
    fs.writeFileSync(path.join(l1, 'etc/passwd'), 'new');
    const dirs = layerDirs([{ type: 'overlay', source: 'overlay', options: ['lowerdir=l1:l2', 'upperdir=upper', 'workdir=w'], cwd: dir }]);
    assert.equal(dirs, [upper, l1, l2]);
    assert.is(findInLayers(dirs, '/etc/passwd'), path.join(l1, 'etc/passwd'));
    assert.is(findInLayers(dirs, '/nope'), undefined);
    const stubs = missingMountPoints(dirs, ['/proc', '/etc/hosts', '/etc/passwd']);
    assert.equal(stubs.sort(), ['/etc/hosts', '/proc']);
    // Under a missing directory everything is missing, deepest first; a whiteout hides a directory.
    fs.mkdirSync(path.join(l2, 'dev'));
    fs.mkdirSync(path.join(l2, 'dev/pts'));
    spawnSync('mknod', [path.join(l1, 'dev'), 'c', '0', '0']);
    assert.equal(missingMountPoints(dirs, ['/sys/fs/cgroup', '/sys', '/dev/pts', '/etc/passwd']), ['/sys/fs/cgroup', '/sys/fs', '/dev/pts', '/sys', '/dev']);
    fs.rmSync(path.join(l1, 'dev'));
    fs.mkdirSync(path.join(upper, 'proc'));
    fs.writeFileSync(path.join(upper, 'etc-hosts-placeholder'), '');
    fs.mkdirSync(path.join(upper, 'etc'));
    fs.writeFileSync(path.join(upper, 'etc/hosts'), '');
    removeMountStubs(upper, stubs);
    assert.equal(fs.readdirSync(upper).sort(), ['etc', 'etc-hosts-placeholder']);
    assert.equal(fs.readdirSync(path.join(upper, 'etc')), []);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
