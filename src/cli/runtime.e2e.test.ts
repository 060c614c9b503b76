/**
 * Docker's security defaults and cgroup limits, observed from inside containers (`run`) and inside
 * build RUN steps, and from outside: no cgroup is left behind, not even after kill -9 of tsbuild.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import { cli, cliSpawn, e2eHarness, removeStore, type CliResult } from '../testutil/index.js';
import path from 'node:path';
import { cgroups, detectCgroups } from '../runtime/index.js';

const { it, root, ctx } = e2eHarness('rt');

/** Runs the CLI as a child whose pid the test knows (cgroup names carry it). */
function spawnCli(args: string[]): Promise<CliResult & { pid: number }> {
  return new Promise((resolve) => {
    const c = cliSpawn(args, root);
    let stdout = '', stderr = '';
    c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    c.on('close', (code) => resolve({ code: code ?? 128, stdout, stderr, pid: c.pid! }));
  });
}

/** `<own cgroup>/tsbuild` in each hierarchy that has one (there should be none when nothing runs). */
function tsbuildDirs(): string[] {
  const l = detectCgroups();
  const roots = [...[...l.v1].filter(([c]) => !c.startsWith('name=')).map(([, h]) => path.join(h.mount, h.self)), ...(l.v2 ? [path.join(l.v2.mount, l.v2.self)] : [])];
  return roots.map((r) => path.join(r, 'tsbuild')).filter((d) => fs.existsSync(d));
}

const ours = (pid: number) => cgroups().list().filter((n) => n.includes(`-${pid}-`));
const run = (args: string[]) => cli(['run', '--rm', ...args], { root });

// What RUN steps and containers should see by default (Docker's 14 capabilities, 0xa80425fb).
const DEFAULTS_SCRIPT = [
  'grep -q "^CapEff:.*00000000a80425fb" /proc/self/status',
  'grep -q "^NoNewPrivs:.*1" /proc/self/status',
  'grep -q "^Seccomp:.*2" /proc/self/status',
  '! unshare -U true 2>/dev/null',
  '! mount -t tmpfs none /mnt 2>/dev/null',
  '! sh -c "echo x > /proc/sys/kernel/domainname" 2>/dev/null',
  '[ ! -s /proc/keys ]',
  '[ ! -s /proc/timer_list ]',
  '! touch /sys/x 2>/dev/null',
  'mknod /m c 1 1 && ! head -c1 /m 2>/dev/null',
  'echo defaults-ok',
].join(' && ');

it('build: the image for these tests', async () => {
  const d = ctx('RUN mkdir -p /mnt /tmp\n');
  const r = await cli(['-t', 'rt', d], { root });
  assert.is(r.code, 0, r.stderr);
});

it('run: Docker\'s defaults, seen from inside (caps, no_new_privs, seccomp, masks, read-only /proc/sys, no mount, devices)', async () => {
  const r = await run(['rt', 'sh', '-c', DEFAULTS_SCRIPT]);
  assert.is(r.stdout, 'defaults-ok\n', r.stderr);
  const u = await run(['rt', 'unshare', '-U', 'true']);
  assert.match(u.stderr, /Operation not permitted/, 'a syscall the default filter denies fails with EPERM');
  const open = await run(['--security-opt', 'seccomp=unconfined', 'rt', 'unshare', '-U', 'true']);
  assert.is(open.code, 0, `and works unconfined: ${open.stderr}`);
  const nnp = await run(['--security-opt', 'no-new-privileges=false', 'rt', 'grep', 'NoNewPrivs', '/proc/self/status']);
  assert.match(nnp.stdout, /NoNewPrivs:\s+0/);
});

it('run: an --rm container\'s root is mounted volatile (its end waits for no sync of the store\'s filesystem, as podman does); a kept one\'s is not', async () => {
  const root_ = ['sh', '-c', 'grep " / / " /proc/self/mountinfo'];
  const r = await run(['rt', ...root_]);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, /overlay .*volatile/);
  const k = await cli(['run', '--name', 'kept-root', 'rt', ...root_], { root });
  try {
    assert.is(k.code, 0, k.stderr);
    assert.match(k.stdout, /overlay /);
    assert.not.match(k.stdout, /volatile/);
  } finally {
    await cli(['rm', 'kept-root'], { root });
  }
});

it('run: --cap-add/--cap-drop, --privileged (can mount; only what the host can grant), --device', async () => {
  let r = await run(['--cap-drop', 'ALL', '--cap-add', 'NET_ADMIN', 'rt', 'grep', 'CapEff', '/proc/self/status']);
  assert.match(r.stdout, /CapEff:\s+0000000000001000/);
  r = await run(['--cap-drop', 'chown', 'rt', 'grep', 'CapEff', '/proc/self/status']);
  assert.match(r.stdout, /CapEff:\s+00000000a80425fa/);
  const host = fs.readFileSync('/proc/self/status', 'utf8').match(/CapBnd:\s+(\w+)/)![1];
  r = await run(['--privileged', 'rt', 'sh', '-c', 'mount -t tmpfs none /mnt && echo mounted; grep CapEff /proc/self/status; grep Seccomp: /proc/self/status; echo 1 > /proc/sys/vm/drop_caches 2>/dev/null; ls /dev/loop-control']);
  assert.match(r.stdout, /^mounted\n/, r.stderr);
  assert.match(r.stdout, new RegExp(`CapEff:\\s+${host}`), 'every capability tsbuild holds, and no more');
  assert.match(r.stdout, /Seccomp:\s+0/);
  assert.match(r.stdout, /\/dev\/loop-control/, 'host devices');
  r = await run(['--device', '/dev/null:/dev/mynull', 'rt', 'sh', '-c', 'echo x > /dev/mynull && echo ok']);
  assert.is(r.stdout, 'ok\n', r.stderr);
  r = await run(['--cap-add', 'FLY', 'rt', 'true']);
  assert.is(r.code, 125);
  assert.match(r.stderr, /--cap-add FLY: unknown capability/);
});

it('run: a memory hog is OOM-killed (137, with the limit); a fork bomb stops at --pids-limit', async () => {
  let r = await run(['--memory', '32m', 'rt', 'sh', '-c', 'x=a; while true; do x="$x$x"; done']);
  assert.is(r.code, 137);
  assert.match(r.stderr, /container killed: out of memory \(limit 32 MiB\)/);
  r = await run(['--pids-limit', '20', 'rt', 'sh', '-c', 'for i in $(seq 50); do sleep 5 & done; echo all-started']);
  assert.is.not(r.code, 0);
  assert.match(r.stderr, /can't fork: Resource temporarily unavailable/, 'the 21st process is refused');
  assert.not.match(r.stdout, /all-started/);
  r = await run(['--memory', '12qb', 'rt', 'true']);
  assert.is(r.code, 125);
  assert.match(r.stderr, /--memory 12qb: use a number with an optional unit/);
  r = await run(['--cpus', '-1', 'rt', 'true']);
  assert.match(r.stderr, /--cpus -1: use a positive number of CPUs/);
  r = await run(['--ulimit', 'nofile=99999999', 'rt', 'true']);
  assert.match(r.stderr, /above this host's hard limit/);
  r = await run(['--ulimit', 'nofile=100:200', 'rt', 'sh', '-c', 'ulimit -n; ulimit -Hn']);
  assert.is(r.stdout, '100\n200\n');
});

it('run: --cpus 0.5 gives about half a core (stats measures it); stats lists the container', async () => {
  const c = cliSpawn(['run', '--rm', '--name', 'spin', '--cpus', '0.5', 'rt', 'sh', '-c', 'end=$(( $(date +%s) + 6 )); while [ $(date +%s) -lt $end ]; do :; done'], root);
  try {
    let s: CliResult | undefined;
    for (let i = 0; i < 50; i++) {
      await new Promise((r) => setTimeout(r, 200));
      s = await cli(['stats', '--no-stream'], { root });
      if (/spin/.test(s.stdout)) break;
    }
    assert.match(s!.stdout, /CONTAINER ID\s+NAME\s+CPU %\s+MEM USAGE \/ LIMIT/);
    const line = s!.stdout.split('\n').find((l) => /\bspin\b/.test(l));
    assert.ok(line, s!.stdout);
    const cpu = parseFloat(/\s([\d.]+)%/.exec(line!)![1]!);
    // The cap is what --cpus sets; the floor only shows it ran (a busy CI host may give it less).
    assert.ok(cpu > 15 && cpu < 70, `about half a core: ${cpu}%`);
  } finally {
    await new Promise((r) => c.on('close', r));
  }
});

it('build: the same defaults in RUN steps; --memory and --pids-limit limit every step; --security=insecure is privileged', async () => {
  const d = ctx(`FROM base AS t\nRUN mkdir -p /mnt /tmp\nRUN ${DEFAULTS_SCRIPT}\n`);
  let r = await cli(['--progress', 'plain', '--target', 't', d], { root });
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stderr, /defaults-ok/);
  const hog = ctx('FROM base AS h\nRUN x=a; while true; do x="$x$x"; done\n');
  r = await cli(['--progress', 'plain', '--memory', '32m', '--target', 'h', hog], { root });
  assert.is(r.code, 1);
  assert.match(r.stderr, /exit code: 137 \(container killed: out of memory \(limit 32 MiB\)\)/);
  const bomb = ctx('FROM base AS b\nRUN for i in $(seq 50); do sleep 5 & done\n');
  r = await cli(['--progress', 'plain', '--pids-limit', '20', '--target', 'b', bomb], { root });
  assert.is(r.code, 1);
  assert.match(r.stderr, /can't fork: Resource temporarily unavailable/);
  const ins = ctx('FROM base AS i\nRUN mkdir -p /mnt\nRUN --security=insecure mount -t tmpfs none /mnt && grep CapEff /proc/self/status\n');
  r = await cli(['--progress', 'plain', '--allow', 'security.insecure', '--target', 'i', ins], { root });
  assert.is(r.code, 0, r.stderr);
});

it('build: --cpuset-cpus, --cpu-shares, --cpu-quota/--cpu-period and --memory-swap limit every RUN step (read from the step\'s cgroup while it runs)', async () => {
  const d = ctx('FROM base AS c\nRUN grep Cpus_allowed_list /proc/self/status; echo "step-$((1+1))"; sleep 3\n');
  const c = cliSpawn(['--progress', 'plain', '--no-cache', '--target', 'c', '--cpuset-cpus', '0', '--cpu-shares', '512', '--cpu-quota', '50000', '--cpu-period', '100000', '--memory', '64m', '--memory-swap', '128m', d], root);
  const seen: Record<string, string> = {};
  const read = () => {
    for (const dir of tsbuildDirs()) {
      for (const b of fs.readdirSync(dir).filter((n) => n.startsWith(`build-${c.pid}-`))) {
        for (const step of fs.readdirSync(path.join(dir, b)).filter((n) => n.startsWith('run-'))) {
          for (const f of ['cpu.cfs_quota_us', 'cpu.cfs_period_us', 'cpu.shares', 'cpuset.cpus', 'memory.limit_in_bytes', 'memory.memsw.limit_in_bytes', 'cpu.max', 'memory.max', 'memory.swap.max']) {
            const file = path.join(dir, b, step, f);
            if (fs.existsSync(file)) seen[f] = fs.readFileSync(file, 'utf8').trim();
          }
        }
      }
    }
  };
  let stderr = '';
  c.stdout.resume();
  c.stderr.on('data', (x: Buffer) => {
    stderr += x.toString();
    // "step-2" is printed by the step (its command line says step-$((1+1))): the step's cgroup exists now.
    if (/\bstep-2\b/.test(stderr) && Object.keys(seen).length === 0) read();
  });
  const code = await new Promise<number>((resolve) => c.on('close', (x) => resolve(x ?? 128)));
  assert.is(code, 0, stderr);
  assert.match(stderr, /Cpus_allowed_list:\s+0\n/);
  if (seen['cpu.max'] !== undefined) {
    assert.is(seen['cpu.max'], '50000 100000');
    assert.is(seen['memory.max'], String(64 << 20));
  } else {
    assert.equal([seen['cpu.cfs_quota_us'], seen['cpu.cfs_period_us'], seen['cpu.shares'], seen['cpuset.cpus'], seen['memory.limit_in_bytes']], ['50000', '100000', '512', '0', String(64 << 20)], JSON.stringify(seen));
    if (seen['memory.memsw.limit_in_bytes'] !== undefined) assert.is(seen['memory.memsw.limit_in_bytes'], String(128 << 20));
  }
  // Checked before anything starts, as for run.
  const bad = await cli(['--cpu-shares', 'lots', '--target', 'c', d], { root });
  assert.is(bad.code, 2);
  assert.match(bad.stderr, /--cpu-shares lots/);
});

it('run: cpuset, shares, swap and reservation are applied; a limit the host cannot apply is a clear error; info says what the host has', async () => {
  let r = await run(['--cpuset-cpus', '0', '--cpu-shares', '512', '--memory', '64m', '--memory-swap', '128m', '--memory-reservation', '32m', 'rt', 'sh', '-c', 'grep Cpus_allowed_list /proc/self/status; nproc']);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, /Cpus_allowed_list:\s+0\n1\n/);
  const blkio = fs.existsSync('/sys/fs/cgroup/blkio/blkio.weight') || fs.existsSync('/sys/fs/cgroup/io.weight');
  r = await run(['--blkio-weight', '500', 'rt', 'true']);
  if (blkio) assert.is(r.code, 0, r.stderr);
  else assert.match(r.stderr, /--blkio-weight: this host's kernel has no blkio.weight .*leave --blkio-weight out/);
  const info = JSON.parse((await cli(['info', '--format', 'json'], { root })).stdout) as { cgroups: string; capabilities: number };
  assert.match(info.cgroups, /^(v1|v2|hybrid)(; |$)/);
  assert.ok(info.capabilities > 0);
});

it('build: limits from the store\'s config.json apply to every RUN step', async () => {
  const other = `${root}-cfg`;
  fs.mkdirSync(other, { recursive: true });
  try {
    fs.writeFileSync(`${other}/config.json`, JSON.stringify({ build: { memory: '32m', 'pids-limit': 200, cpus: 1 } }));
    const hog = ctx('FROM base AS h\nRUN x=a; while true; do x="$x$x"; done\n');
    let r = await cli(['--progress', 'plain', '--target', 'h', hog], { root: other });
    assert.is(r.code, 1);
    assert.match(r.stderr, /out of memory \(limit 32 MiB\)/);
    // Every limit flag of build, by run's flag name (kebab-case or camelCase); a bad value names the file.
    fs.writeFileSync(`${other}/config.json`, JSON.stringify({ build: { 'cpuset-cpus': '0', cpuShares: 512, memory: '64m', 'memory-swap': '128m' } }));
    r = await cli(['--progress', 'plain', '--no-cache', '--target', 'c', ctx('FROM base AS c\nRUN grep Cpus_allowed_list /proc/self/status\n')], { root: other });
    assert.is(r.code, 0, r.stderr);
    assert.match(r.stderr, /Cpus_allowed_list:\s+0\n/);
    fs.writeFileSync(`${other}/config.json`, JSON.stringify({ build: { 'cpu-shares': 'lots' } }));
    r = await cli(['--target', 'c', ctx('FROM base AS c\nRUN true\n')], { root: other });
    assert.is(r.code, 2);
    assert.match(r.stderr, /config\.json, "build": --cpu-shares lots/);
  } finally {
    removeStore(other);
  }
});

it('no cgroup is left: after a run, after a build, and after kill -9 of tsbuild (the next command reaps it)', async () => {
  const r = await spawnCli(['run', '--rm', 'rt', 'true']);
  assert.is(r.code, 0, r.stderr);
  assert.equal(ours(r.pid), []);
  const b = await spawnCli(['--no-cache', '--target', 'base', ctx('RUN true\n')]);
  assert.is(b.code, 0, b.stderr);
  assert.equal(ours(b.pid), [], 'the build cgroup and its step cgroups are gone');
  const c = cliSpawn(['run', '--rm', 'rt', 'sleep', '30'], root);
  for (let i = 0; i < 300 && ours(c.pid!).length === 0; i++) await new Promise((res) => setTimeout(res, 50));
  assert.is(ours(c.pid!).length, 1, 'the container has its cgroup while it runs');
  c.kill('SIGKILL');
  await new Promise((res) => c.on('close', res));
  await cli(['ps'], { root });
  assert.equal(ours(c.pid!), [], 'reaped by the next command');
  const left = tsbuildDirs();
  // What stayed, and what still runs in it, so a failure says why (CI once saw blkio/ and pids/ stay).
  const why = left.map((d) => `${d}: ${fs.readdirSync(d, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => `${e.name} [${fs.readFileSync(path.join(d, e.name, 'cgroup.procs'), 'utf8').trim().replace(/\n/g, ' ')}]`).join(', ') || 'empty'}`);
  assert.equal(left, [], `no tsbuild/ directory stays in any hierarchy once its last cgroup is gone: ${why.join('; ')}`);
});

test.run();
