/**
 * The cgroup drivers against fake trees (v1, v2, hybrid: the policy, without root), and v2 against a
 * real cgroup2 hierarchy the test mounts itself (joining and removing; this host delegates no v2
 * controllers, so limits on a real v2 tree cannot be shown here).
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { repoRoot, testUnless, tmpdir } from '../testutil/index.js';
import { allows, deviceProgram } from './devicebpf.js';
import { DEFAULT_DEVICE_RULES } from './security.js';
import { inheritCpuset } from './cgroups-v1.js';
import { reapCgroups } from './container.js';
import { blkioToIoWeight, cgroupManager, CgroupError, delegatedToUser, describeCgroups, detectCgroups, sharesToWeight, type CgroupLayout } from './cgroups.js';

const V1 = ['memory', 'cpu', 'cpuacct', 'pids', 'cpuset', 'blkio', 'devices', 'freezer'];

/** A fake v1 tree: one dir per controller with the files the kernel would have at our own cgroup. */
function fakeV1(): { root: string; layout: CgroupLayout } {
  const root = tmpdir('tsb-cg1-');
  const layout: CgroupLayout = { mode: 'v1', v1: new Map() };
  for (const c of V1) {
    const self = c === 'memory' ? '/outer/me' : '/';
    fs.mkdirSync(path.join(root, c, self), { recursive: true });
    layout.v1.set(c, { mount: path.join(root, c), self });
  }
  fs.writeFileSync(path.join(root, 'cpuset', 'cpuset.cpus'), '0-1');
  fs.writeFileSync(path.join(root, 'cpuset', 'cpuset.mems'), '0');
  return { root, layout };
}

const read = (f: string) => fs.readFileSync(f, 'utf8');

test('detect: a hybrid host from mountinfo and /proc/self/cgroup', () => {
  const d = tmpdir('tsb-cgd-');
  try {
    fs.mkdirSync(path.join(d, 'unified'));
    fs.writeFileSync(path.join(d, 'unified', 'cgroup.controllers'), 'hugetlb\n');
    const mi = [
      `30 25 0:26 / ${d}/memory rw,nosuid - cgroup cgroup rw,memory`,
      `31 25 0:27 / ${d}/cpu rw,nosuid - cgroup cgroup rw,cpu`,
      `32 25 0:28 / ${d}/unified rw,nosuid - cgroup2 cgroup2 rw`,
      `33 25 0:29 / /proc rw - proc proc rw`,
    ].join('\n');
    fs.writeFileSync(path.join(d, 'mountinfo'), mi);
    fs.writeFileSync(path.join(d, 'self'), '4:memory:/a/b\n1:cpu:/\n0::/\n');
    const l = detectCgroups(path.join(d, 'mountinfo'), path.join(d, 'self'));
    assert.is(l.mode, 'hybrid');
    assert.equal(l.v1.get('memory'), { mount: `${d}/memory`, self: '/a/b' });
    assert.equal([...l.v2!.controllers], ['hugetlb']);
    assert.match(describeCgroups(l), /^hybrid; v1: cpu, memory; v2 at .*unified: hugetlb$/);
    assert.is(cgroupManager(l).version, 1, 'memory on v1: the v1 driver');
  } finally {
    fs.rmSync(d, { recursive: true, force: true });
  }
});

test('v1: limits land in each controller under our own cgroup; stats, OOM and removal', async () => {
  const { root, layout } = fakeV1();
  try {
    const cg = cgroupManager(layout).create('ctr-1-x', {
      memory: 64 << 20, memorySwap: 128 << 20, memoryReservation: 32 << 20, cpuQuota: 50000, cpuPeriod: 100000, cpuShares: 512,
      cpusetCpus: '1', pidsLimit: 20, devices: [{ type: 'c', major: 1, minor: 3, access: 'rwm' }],
    });
    const at = (c: string, f: string) => read(path.join(root, c, layout.v1.get(c)!.self, 'tsbuild', 'ctr-1-x', f));
    assert.is(at('memory', 'memory.limit_in_bytes'), String(64 << 20));
    assert.is(at('memory', 'memory.memsw.limit_in_bytes'), String(128 << 20));
    assert.is(at('memory', 'memory.soft_limit_in_bytes'), String(32 << 20));
    assert.is(at('cpu', 'cpu.cfs_quota_us'), '50000');
    assert.is(at('cpu', 'cpu.shares'), '512');
    assert.is(at('cpuset', 'cpuset.cpus'), '1');
    assert.is(at('cpuset', 'cpuset.mems'), '0', 'a new cpuset inherits the parent\'s memory nodes');
    assert.is(at('pids', 'pids.max'), '20');
    assert.is(at('devices', 'devices.deny'), 'a');
    assert.is(at('devices', 'devices.allow'), 'c 1:3 rwm');
    assert.ok(cg.procsFiles.includes(path.join(root, 'memory', '/outer/me', 'tsbuild', 'ctr-1-x', 'cgroup.procs')), 'charged under our own memory cgroup');
    // Joined through each hierarchy's tasks: a write to cgroup.procs waits for an RCU grace period.
    assert.equal(cg.joinFiles, cg.procsFiles.map((f) => path.join(path.dirname(f), 'tasks')));
    const dir = (c: string) => path.join(root, c, layout.v1.get(c)!.self, 'tsbuild', 'ctr-1-x');
    fs.writeFileSync(path.join(dir('memory'), 'memory.usage_in_bytes'), '1048576');
    fs.writeFileSync(path.join(dir('cpuacct'), 'cpuacct.usage'), '5000000');
    fs.writeFileSync(path.join(dir('pids'), 'pids.current'), '3');
    fs.writeFileSync(path.join(dir('blkio'), 'blkio.throttle.io_service_bytes'), '8:0 Read 4096\n8:0 Write 8192\n8:0 Total 12288\n');
    fs.writeFileSync(path.join(dir('memory'), 'memory.oom_control'), 'oom_kill_disable 0\nunder_oom 0\noom_kill 1\n');
    assert.equal(cg.stats(), { cpuNanos: 5000000, memoryBytes: 1048576, memoryLimit: 64 << 20, pids: 3, readBytes: 4096, writeBytes: 8192 });
    assert.ok(cg.oomKilled());
    assert.equal(cgroupManager(layout).list(), ['ctr-1-x']);
    // A fake tree's directories hold files, which rmdir refuses; empty them as the kernel would.
    for (const c of V1) for (const d of [dir(c), path.dirname(dir(c))]) for (const f of fs.readdirSync(d, { withFileTypes: true })) if (f.isFile()) fs.rmSync(path.join(d, f.name));
    await cg.remove();
    assert.not.ok(fs.existsSync(dir('memory')));
    for (const c of V1) assert.not.ok(fs.existsSync(path.join(root, c, layout.v1.get(c)!.self, 'tsbuild')), `${c}: the emptied tsbuild/ parent goes too`);
    assert.ok(fs.existsSync(path.join(root, 'memory', '/outer/me')), 'our own cgroup stays');
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

// CI once left blkio/ and pids/ behind: a task slow to leave blkio made removal throw there, the
// controllers after it were never tried, and the listing (one hierarchy's) no longer showed the name.
test('v1: a controller that will not let go does not strand the others, and the next reap finishes it', async () => {
  const { root, layout } = fakeV1();
  try {
    const name = 'ctr-999999999-y'; // a pid above pid_max: its owner is dead
    const driver = cgroupManager(layout);
    const cg = driver.create(name, {});
    const dir = (c: string) => path.join(root, c, layout.v1.get(c)!.self, 'tsbuild', name);
    // A fake tree's cpuset directories hold the files inheritCpuset wrote; the kernel's would not stop rmdir.
    for (const d of [dir('cpuset'), path.dirname(dir('cpuset'))]) for (const f of ['cpuset.cpus', 'cpuset.mems']) fs.rmSync(path.join(d, f), { force: true });
    fs.writeFileSync(path.join(dir('blkio'), 'busy'), '');
    const err = await cg.remove().then(() => undefined, (e: unknown) => e);
    assert.instance(err, CgroupError, 'the failure is reported');
    for (const c of V1.filter((c) => c !== 'blkio')) assert.not.ok(fs.existsSync(dir(c)), `${c}: removed though blkio failed`);
    assert.equal(driver.list(), [name], 'still listed while one hierarchy has it');
    fs.rmSync(path.join(dir('blkio'), 'busy'));
    assert.is(await reapCgroups(driver), 1);
    assert.equal(driver.list(), []);
    for (const c of V1) assert.not.ok(fs.existsSync(path.dirname(dir(c))), `${c}: no tsbuild/ stays`);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('v1 cpuset: a new cgroup inherits CPUs and memory nodes, filling an ancestor another process made but left empty', () => {
  const root = tmpdir('tsb-cpuset-');
  try {
    fs.writeFileSync(path.join(root, 'cpuset.cpus'), '0-1\n');
    fs.writeFileSync(path.join(root, 'cpuset.mems'), '0\n');
    // `tsbuild/` was just made by a concurrent build (its files exist, empty, as the kernel makes them).
    const mid = path.join(root, 'tsbuild');
    fs.mkdirSync(mid);
    fs.writeFileSync(path.join(mid, 'cpuset.cpus'), '');
    fs.writeFileSync(path.join(mid, 'cpuset.mems'), '');
    const leaf = path.join(mid, 'build-1-x');
    fs.mkdirSync(leaf);
    fs.writeFileSync(path.join(leaf, 'cpuset.cpus'), '');
    fs.writeFileSync(path.join(leaf, 'cpuset.mems'), '');
    inheritCpuset(leaf);
    for (const d of [mid, leaf]) {
      assert.is(fs.readFileSync(path.join(d, 'cpuset.cpus'), 'utf8'), '0-1');
      assert.is(fs.readFileSync(path.join(d, 'cpuset.mems'), 'utf8'), '0');
    }
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('v1: a limit without its controller, or one the kernel lacks, is an error naming the flag', () => {
  const { root, layout } = fakeV1();
  try {
    layout.v1.delete('pids');
    assert.throws(() => cgroupManager(layout).create('ctr-1-a', { pidsLimit: 5 }), (e: unknown) => e instanceof CgroupError && /--pids-limit needs the cgroup pids controller/.test(e.message));
    // blkio.weight exists only with a scheduler that weighs (BFQ): a missing file says so.
    const blk = path.join(root, 'blkio', 'tsbuild', 'ctr-1-b');
    fs.mkdirSync(blk, { recursive: true });
    fs.mkdirSync(path.join(blk, 'blkio.weight'));
    assert.throws(() => cgroupManager(layout).create('ctr-1-b', { blkioWeight: 500 }), /--blkio-weight: the kernel refused 500/);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('v2: one hierarchy, controllers delegated down, Docker\'s unit conversions', () => {
  const root = tmpdir('tsb-cg2-');
  try {
    fs.mkdirSync(path.join(root, 'svc'), { recursive: true });
    const layout: CgroupLayout = { mode: 'v2', v1: new Map(), v2: { mount: root, self: '/svc', controllers: new Set(['cpu', 'io', 'memory', 'pids', 'cpuset']) } };
    const d = cgroupManager(layout);
    assert.is(d.version, 2);
    d.create('build-1-x/run-1-y', { memory: 64 << 20, memorySwap: 96 << 20, cpuQuota: 50000, cpuPeriod: 100000, cpuShares: 1024, pidsLimit: 0, blkioWeight: 500 });
    const dir = path.join(root, 'svc', 'tsbuild', 'build-1-x', 'run-1-y');
    assert.is(read(path.join(dir, 'memory.max')), String(64 << 20));
    assert.is(read(path.join(dir, 'memory.swap.max')), String(32 << 20), 'v2 swap excludes memory');
    assert.is(read(path.join(dir, 'cpu.max')), '50000 100000');
    assert.is(read(path.join(dir, 'cpu.weight')), String(sharesToWeight(1024)));
    assert.is(read(path.join(dir, 'pids.max')), 'max');
    assert.is(read(path.join(dir, 'io.weight')), `default ${blkioToIoWeight(500)}`);
    for (const p of ['svc', 'svc/tsbuild', 'svc/tsbuild/build-1-x']) assert.match(read(path.join(root, p, 'cgroup.subtree_control')), /\+cpu.*\+memory.*\+pids/, p);
    assert.is(sharesToWeight(2), 1);
    assert.is(sharesToWeight(262144), 10000);
    fs.writeFileSync(path.join(dir, 'memory.events'), 'low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n');
    fs.writeFileSync(path.join(dir, 'cpu.stat'), 'usage_usec 2500\nuser_usec 2000\n');
    fs.writeFileSync(path.join(dir, 'io.stat'), '8:0 rbytes=100 wbytes=200 rios=1 wios=2\n');
    const cg = d.open('build-1-x/run-1-y')!;
    assert.ok(cg.oomKilled());
    assert.is(cg.stats().cpuNanos, 2500000);
    assert.is(cg.stats().readBytes, 100);
    assert.throws(() => d.create('ctr-1-z', { oomKillDisable: true }), /cgroup v2 has no way to disable the OOM killer/);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

/** Why a cgroup2 hierarchy cannot be mounted here, or undefined. */
function cgroup2Unavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'not root';
  const d = tmpdir('tsb-cg2probe-');
  try {
    const r = spawnSync('mount', ['-t', 'cgroup2', 'none', d], { encoding: 'utf8' });
    if (r.status !== 0) return `cannot mount cgroup2: ${r.stderr.trim()}`;
    spawnSync('umount', [d]);
    return undefined;
  } finally {
    fs.rmSync(d, { recursive: true, force: true });
  }
}

testUnless(fs.existsSync('/sys/fs/cgroup/memory/tasks') ? undefined : 'no cgroup v1 memory hierarchy at /sys/fs/cgroup/memory', 'v1 on this host: a process joins every hierarchy through its join files (tasks), and its children follow', async () => {
  const d = cgroupManager();
  const name = `ctr-${process.pid}-v1join`;
  const cg = d.create(name, { pidsLimit: 50 });
  try {
    const joins = cg.joinFiles.map((f) => `echo 0 > ${f}`).join(' && ');
    const r = spawnSync('sh', ['-c', `${joins} && sh -c 'cat /proc/self/cgroup'`], { encoding: 'utf8' });
    assert.is(r.status, 0, r.stderr);
    const lines = r.stdout.trim().split('\n').filter((l) => !l.startsWith('0::'));
    for (const f of cg.joinFiles) {
      const hierarchy = f.split('/')[4]!;
      assert.ok(lines.some((l) => l.split(':')[1]!.split(',').includes(hierarchy) && l.endsWith(`/tsbuild/${name}`)), `a child in ${hierarchy}: ${r.stdout}`);
    }
  } finally {
    await cg.remove();
  }
  assert.not.ok(d.list().includes(name), 'removed');
});

testUnless(cgroup2Unavailable(), 'v2 on a real cgroup2 hierarchy: a process joins through cgroup.procs; removal kills stragglers', async () => {
  const mnt = tmpdir('tsb-cg2real-');
  const r = spawnSync('mount', ['-t', 'cgroup2', 'none', mnt], { encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  let child: ReturnType<typeof spawn> | undefined;
  const name = `ctr-${process.pid}-v2test`;
  try {
    const controllers = new Set(read(path.join(mnt, 'cgroup.controllers')).trim().split(/\s+/).filter(Boolean));
    const d = cgroupManager({ mode: 'v2', v1: new Map(), v2: { mount: mnt, self: '/', controllers } });
    const cg = d.create(name, {});
    assert.equal(cg.joinFiles, cg.procsFiles, 'v2 has only cgroup.procs');
    child = spawn('sleep', ['30'], { stdio: 'ignore' });
    fs.writeFileSync(cg.procsFiles[0]!, String(child.pid));
    assert.match(read(`/proc/${child.pid}/cgroup`), new RegExp(`0::/tsbuild/${name}`));
    assert.equal(d.list().filter((n) => n === name), [name]);
    await cg.remove();
    assert.not.ok(fs.existsSync(path.join(mnt, 'tsbuild', name)), 'removed, its process killed first');
    assert.not.ok(fs.existsSync(path.join(mnt, 'tsbuild')), 'and the tsbuild/ parent it emptied');
  } finally {
    if (child?.exitCode === null) child.kill('SIGKILL');
    if (fs.existsSync(path.join(mnt, 'tsbuild', name))) fs.rmdirSync(path.join(mnt, 'tsbuild', name));
    if (fs.existsSync(path.join(mnt, 'tsbuild'))) fs.rmdirSync(path.join(mnt, 'tsbuild'));
    spawnSync('umount', [mnt]);
    fs.rmSync(mnt, { recursive: true, force: true });
  }
});

test('rootless: limits only where a v2 subtree is delegated to the user (writable, with controllers)', () => {
  const root = tmpdir('tsb-cg2d-');
  try {
    const self = '/user.slice/user-1000.slice/user@1000.service/app.slice/x.scope';
    fs.mkdirSync(path.join(root, self), { recursive: true });
    fs.writeFileSync(path.join(root, self, 'cgroup.subtree_control'), '');
    const v2 = { mount: root, self, controllers: new Set(['memory', 'pids', 'cpu']) };
    const mine = (p: string) => p.startsWith(path.join(root, '/user.slice/user-1000.slice/user@1000.service'));
    assert.ok(delegatedToUser({ mode: 'v2', v1: new Map(), v2 }, mine));
    assert.not.ok(delegatedToUser({ mode: 'v2', v1: new Map(), v2 }, () => false), 'not writable: not delegated');
    assert.not.ok(delegatedToUser({ mode: 'v2', v1: new Map(), v2: { ...v2, controllers: new Set() } }, mine), 'no controllers');
    const hybrid: CgroupLayout = { mode: 'hybrid', v1: new Map([['memory', { mount: '/sys/fs/cgroup/memory', self: '/' }]]), v2 };
    assert.not.ok(delegatedToUser(hybrid, mine), 'memory on v1: only root makes cgroups there');
    assert.not.ok(delegatedToUser({ mode: 'v1', v1: hybrid.v1 }, mine));
    // Delegated: the v2 driver makes the container's cgroup under our own, as for root.
    cgroupManager({ mode: 'v2', v1: new Map(), v2 }).create('ctr-1-a', { memory: 32 << 20 });
    assert.is(read(path.join(root, self, 'tsbuild', 'ctr-1-a', 'memory.max')), String(32 << 20));
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('v2 device filter: the eBPF program allows exactly the rules (checked in an interpreter)', () => {
  const prog = deviceProgram([...DEFAULT_DEVICE_RULES, { type: 'b', major: 8, minor: 0, access: 'r' }]);
  assert.ok(allows(prog, 'c', 'rw', 1, 3), '/dev/null');
  assert.ok(allows(prog, 'c', 'rwm', 136, 7), 'a pty');
  assert.ok(allows(prog, 'c', 'm', 1, 1), 'mknod of anything');
  assert.not.ok(allows(prog, 'c', 'r', 1, 1), '/dev/mem is not readable');
  assert.not.ok(allows(prog, 'b', 'r', 8, 1), 'another disk');
  assert.ok(allows(prog, 'b', 'r', 8, 0), 'the --device given, read');
  assert.not.ok(allows(prog, 'b', 'w', 8, 0), 'but not written');
  assert.ok(allows(deviceProgram([{ type: 'a', major: '*', minor: '*', access: 'rwm' }]), 'b', 'rw', 8, 1), 'privileged: everything');
  assert.not.ok(allows(deviceProgram([]), 'c', 'r', 1, 3), 'no rules: nothing');
});

testUnless(cgroup2Unavailable(), 'v2 device filter on a real cgroup2: the helper attaches it; a process in the cgroup opens /dev/null, not /dev/zero', async () => {
  const mnt = tmpdir('tsb-cg2dev-');
  assert.is(spawnSync('mount', ['-t', 'cgroup2', 'none', mnt]).status, 0);
  const name = `ctr-${process.pid}-devtest`;
  try {
    const d = cgroupManager({ mode: 'v2', v1: new Map(), v2: { mount: mnt, self: '/', controllers: new Set() } });
    const cg = d.create(name, { devices: [{ type: 'c', major: 1, minor: 3, access: 'rwm' }] });
    assert.ok(cg.deviceFilter);
    const at = spawnSync(path.join(repoRoot, 'native/build/tsbuild-sandbox'), ['devices-attach', cg.deviceFilter!.cgroup], { input: JSON.stringify(cg.deviceFilter!.program), encoding: 'utf8' });
    assert.is(at.status, 0, at.stderr);
    const procs = cg.procsFiles[0]!;
    const r = spawnSync('sh', ['-c', `echo $$ > ${procs} && echo ok > /dev/null && echo null-ok; head -c1 /dev/zero >/dev/null || echo zero-denied`], { encoding: 'utf8' });
    assert.is(r.stdout, 'null-ok\nzero-denied\n', r.stderr);
    assert.match(r.stderr, /Operation not permitted/);
    await cg.remove();
  } finally {
    if (fs.existsSync(path.join(mnt, 'tsbuild', name))) fs.rmdirSync(path.join(mnt, 'tsbuild', name));
    if (fs.existsSync(path.join(mnt, 'tsbuild'))) fs.rmdirSync(path.join(mnt, 'tsbuild'));
    spawnSync('umount', [mnt]);
    fs.rmSync(mnt, { recursive: true, force: true });
  }
});

test.run();
