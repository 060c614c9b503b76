/**
 * Containers that outlive the command: run -d under a monitor, ps, logs, exec, stop, kill, wait,
 * restart policies, health checks, cp, pause, rm -f, and the truth of the record after kill -9 of the
 * monitor or of `tsbuild run -d` itself. Every container a test starts is removed (rm -f) even when
 * it fails, and the after-hook kills any monitor still recorded, by the pid in its record.
 */
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { cli, cliPath, cliSpawn, e2eHarness } from '../testutil/index.js';
import { cgroups } from '../runtime/index.js';
import { openStore } from '../store/index.js';

const { it, root, ctx, test } = e2eHarness('lc');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const tsb = (args: string[], input?: string) => cli(args, { root, input });

/** Live and not a zombie (this machine's init may be slow to reap). */
function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^[ZX]$/.test(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0]!);
  } catch {
    return false;
  }
}

interface Rec { id: string; pid?: number; containerPid?: number; status: string }
function records(): Rec[] {
  const dir = path.join(root, 'containers');
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir).filter((d) => !d.startsWith('.')).flatMap((d) => {
    try {
      return [JSON.parse(fs.readFileSync(path.join(dir, d, 'state.json'), 'utf8')) as Rec];
    } catch {
      return [];
    }
  });
}

// The monitors are ours (started by the CLI we ran): end any left by a failed test, by recorded pid.
test.after(() => {
  for (const r of records()) {
    for (const pid of [r.containerPid, r.pid]) {
      if (pid && alive(pid)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
    }
  }
});

async function inspect(name: string, tmpl: string): Promise<string> {
  const r = await tsb(['inspect', '--type', 'container', '-f', tmpl, name]);
  assert.is(r.code, 0, r.stderr);
  return r.stdout.trim();
}

async function until(what: string, fn: () => Promise<boolean> | boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) assert.unreachable(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** Runs `fn` and removes the named containers afterwards, whatever happened. */
async function withContainers(names: string[], fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } finally {
    for (const n of names) await tsb(['rm', '-f', n]);
  }
}

const mountsOf = () => fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(root));

it('build: the images for these tests', async () => {
  const d = ctx(
    'RUN mkdir -p /tmp /srv && echo "app:x:1000:1000::/home/app:/bin/sh" >> /etc/passwd && echo "root:x:0:0:root:/root:/bin/sh" >> /etc/passwd && echo "app:x:1000:" >> /etc/group\n' +
      'COPY trap.sh /trap.sh\nRUN chmod +x /trap.sh\nSTOPSIGNAL SIGUSR1\n',
    { 'trap.sh': '#!/bin/sh\ntrap \'echo got-usr1; exit 0\' USR1\necho ready\nwhile true; do sleep 0.1; done\n' },
  );
  const r = await tsb(['-t', 'lc', d]);
  assert.is(r.code, 0, r.stderr);
  const h = ctx('RUN mkdir -p /tmp\nHEALTHCHECK --interval=200ms --retries=2 CMD test -e /tmp/healthy\nCMD ["sleep", "600"]\n');
  assert.is((await tsb(['-t', 'lc-health', h])).code, 0);
});

it('run -d: prints the id and returns; ps shows it; logs keep stdout and stderr apart; logs -f follows to the end', async () => {
  await withContainers(['loop'], async () => {
    const r = await tsb(['run', '-d', '--name', 'loop', 'lc', 'sh', '-c', 'i=0; while [ $i -lt 400 ]; do echo out $i; echo err $i >&2; i=$((i+1)); sleep 0.05; done']);
    assert.is(r.code, 0, r.stderr);
    assert.match(r.stdout, /^[0-9a-f]{64}\n$/);
    const ps = await tsb(['ps']);
    assert.match(ps.stdout, /Up .* +loop\n/);
    assert.match((await tsb(['ps', '-q'])).stdout, new RegExp(`^${r.stdout.slice(0, 12)}$`, 'm'));
    assert.is((await tsb(['ps', '--filter', 'status=exited', '--format', '{{.Names}}'])).stdout, '');
    assert.is((await tsb(['ps', '--filter', 'name=oo', '--format', '{{.Names}} {{.State}}'])).stdout, 'loop running\n');
    await until('some output', async () => (await tsb(['logs', 'loop'])).stdout.includes('out 2\n'));
    const logs = await tsb(['logs', 'loop']);
    assert.not.match(logs.stdout, /err/, 'stderr is not in stdout');
    assert.match(logs.stderr, /^err 0\nerr 1\n/);
    const tail = await tsb(['logs', '--tail', '2', '-t', 'loop']);
    assert.match(tail.stdout, /^\d{4}-\d\d-\d\dT[\d:.]+Z out \d+\n$/, 'the last two lines: one of each stream');
    assert.match(tail.stderr, /^\d{4}-\d\d-\d\dT[\d:.]+Z err \d+\n$/);
    // -f streams lines written after it started, and ends by itself when the container ends.
    const f = await tsb(['logs', '-f', '--since', '1s', 'loop']);
    assert.is(f.code, 0, f.stderr);
    assert.match(f.stdout, /out 399\n$/);
    assert.match((await tsb(['ps', '-a'])).stdout, /Exited \(0\) .* +loop\n/);
    assert.is((await tsb(['wait', 'loop'])).stdout, '0\n');
  });
});

it('logs rotate at --log-opt max-size into max-file files; logs reads what is kept, oldest first', async () => {
  await withContainers(['rot'], async () => {
    assert.is((await tsb(['run', '-d', '--name', 'rot', '--log-opt', 'max-size=2k', '--log-opt', 'max-file=2', 'lc', 'sh', '-c', 'i=0; while [ $i -lt 300 ]; do echo line $i; i=$((i+1)); done'])).code, 0);
    assert.is((await tsb(['wait', 'rot'])).stdout, '0\n');
    const log = await inspect('rot', '{{.LogPath}}');
    assert.ok(fs.existsSync(`${log}.1`));
    assert.not.ok(fs.existsSync(`${log}.2`));
    assert.ok(fs.statSync(log).size <= 2048 && fs.statSync(`${log}.1`).size <= 2048);
    const out = (await tsb(['logs', 'rot'])).stdout.trim().split('\n');
    assert.is(out.at(-1), 'line 299');
    assert.not.ok(out.includes('line 0'));
    const bad = await tsb(['run', '-d', '--log-opt', 'max-size=lots', 'lc', 'true']);
    assert.is(bad.code, 125);
    assert.match(bad.stderr, /--log-opt max-size=lots: use a size such as 10m/);
  });
});

it('exec: the same pid namespace, filesystem, user, environment and security settings; exit codes; -t', async () => {
  await withContainers(['ex'], async () => {
    assert.is((await tsb(['run', '-d', '--name', 'ex', '-e', 'FROM_RUN=1', '--cap-drop', 'chown', 'lc', 'sh', '-c', 'echo made > /tmp/made; exec sleep 600'])).code, 0);
    let r = await tsb(['exec', 'ex', 'sh', '-c', 'cat /proc/1/cmdline | tr "\\0" " "; cat /tmp/made; echo $FROM_RUN; id -u']);
    assert.is(r.stdout, 'sleep 600 made\n1\n0\n', r.stderr);
    const ctr = await tsb(['exec', 'ex', 'grep', '-E', '^(CapEff|NoNewPrivs|Seccomp):', '/proc/self/status']);
    assert.match(ctr.stdout, /CapEff:\s+00000000a80425fa/, 'the container\'s capabilities (without CHOWN)');
    assert.match(ctr.stdout, /NoNewPrivs:\s+1/);
    assert.match(ctr.stdout, /Seccomp:\s+2/);
    r = await tsb(['exec', '-u', 'app', '-w', '/srv', '-e', 'X=y', 'ex', 'sh', '-c', 'echo $(id -u) $(pwd) $X $HOME']);
    assert.is(r.stdout, '1000 /srv y /home/app\n', r.stderr);
    r = await tsb(['exec', 'ex', 'sh', '-c', 'exit 7']);
    assert.is(r.code, 7);
    r = await tsb(['exec', 'ex', 'no-such-binary']);
    assert.is(r.code, 127);
    assert.match(r.stderr, /executable file not found/);
    r = await tsb(['exec', '-t', 'ex', 'sh', '-c', 'test -t 1 && tty']);
    assert.match(r.stdout, /^\/dev\/pts\/\d+\r?\n$/, r.stderr);
    r = await tsb(['exec', '-i', 'ex', 'tr', 'a-z', 'A-Z'], 'in\n');
    assert.is(r.stdout, 'IN\n');
    const top = await tsb(['top', 'ex']);
    assert.match(top.stdout, /^UID +PID +PPID/);
    assert.match(top.stdout, /sleep 600/);
  });
});

it('stop honours STOPSIGNAL and --stop-signal, then SIGKILL after -t; kill sends a signal; wait prints the code', async () => {
  await withContainers(['sig', 'stubborn', 'k', 'in'], async () => {
    assert.is((await tsb(['run', '-d', '--name', 'sig', 'lc', '/trap.sh'])).code, 0);
    await until('the trap to be set', async () => (await tsb(['logs', 'sig'])).stdout.includes('ready'));
    let r = await tsb(['stop', '-t', '30', 'sig']);
    assert.is(r.stdout, 'sig\n', r.stderr);
    assert.is(await inspect('sig', '{{.State.ExitCode}}'), '0', 'the image\'s STOPSIGNAL (SIGUSR1) ended it, not SIGKILL');
    assert.match((await tsb(['logs', 'sig'])).stdout, /got-usr1/);
    // sleep as PID 1 has no handler: SIGTERM does nothing, SIGKILL after the timeout does.
    assert.is((await tsb(['run', '-d', '--name', 'stubborn', '--stop-signal', 'SIGTERM', 'lc', 'sleep', '600'])).code, 0);
    r = await tsb(['stop', '-t', '1', 'stubborn']);
    assert.is(r.code, 0, r.stderr);
    assert.is((await tsb(['wait', 'stubborn'])).stdout, '137\n');
    assert.is((await tsb(['stop', 'stubborn'])).code, 0, 'stopping a stopped container is not an error (as Docker)');
    assert.is((await tsb(['run', '-d', '--name', 'k', 'lc', '/trap.sh'])).code, 0);
    await until('the trap to be set', async () => (await tsb(['logs', 'k'])).stdout.includes('ready'));
    assert.is((await tsb(['kill', '-s', 'USR1', 'k'])).code, 0);
    assert.is((await tsb(['wait', 'k'])).stdout, '0\n');
    r = await tsb(['kill', 'k']);
    assert.is(r.code, 1);
    assert.match(r.stderr, /is not running/);
    // --init detached: the init forwards SIGTERM to sleep, which dies of it (143), long before the timeout.
    assert.is((await tsb(['run', '-d', '--init', '--name', 'in', '--stop-signal', 'TERM', 'lc', 'sleep', '600'])).code, 0);
    assert.is((await tsb(['stop', '-t', '600', 'in'])).code, 0);
    assert.is((await tsb(['wait', 'in'])).stdout, '143\n');
    assert.is((await tsb(['rm', 'in'])).code, 0);
  });
});

it('--restart on-failure:2 restarts exactly twice; always restarts until stop; --rm -d removes the container when it ends', async () => {
  await withContainers(['rf', 'al'], async () => {
    assert.is((await tsb(['run', '-d', '--name', 'rf', '--restart', 'on-failure:2', 'lc', 'sh', '-c', 'echo boom; exit 3'])).code, 0);
    assert.is((await tsb(['wait', 'rf'])).stdout, '3\n');
    assert.is(await inspect('rf', '{{.RestartCount}} {{.State.Status}}'), '2 exited');
    assert.is((await tsb(['logs', 'rf'])).stdout, 'boom\nboom\nboom\n', 'the first run and two restarts');
    assert.is((await tsb(['run', '-d', '--name', 'al', '--restart', 'always', 'lc', 'sh', '-c', 'echo up; sleep 0.2'])).code, 0);
    await until('two restarts', async () => Number(await inspect('al', '{{.RestartCount}}')) >= 2);
    assert.is((await tsb(['stop', '-t', '1', 'al'])).code, 0);
    const n = await inspect('al', '{{.RestartCount}}');
    await sleep(1000);
    assert.is(await inspect('al', '{{.RestartCount}} {{.State.Status}}'), `${n} exited`, 'a stopped container is not restarted');
    const bad = await tsb(['run', '-d', '--restart', 'sometimes', 'lc', 'true']);
    assert.is(bad.code, 125);
    assert.match(bad.stderr, /--restart sometimes: use no, on-failure/);
    const gone = await tsb(['run', '-d', '--rm', 'lc', 'true']);
    assert.is(gone.code, 0, gone.stderr);
    await until('--rm to remove it', async () => !(await tsb(['ps', '-a', '--no-trunc'])).stdout.includes(gone.stdout.trim()));
  });
});

it('health: the image\'s HEALTHCHECK turns unhealthy, then healthy, in ps and inspect; --no-healthcheck turns it off', async () => {
  await withContainers(['hc', 'nohc'], async () => {
    assert.is((await tsb(['run', '-d', '--name', 'hc', 'lc-health'])).code, 0);
    await until('unhealthy', async () => (await inspect('hc', '{{.State.Health.Status}}')) === 'unhealthy');
    assert.match((await tsb(['ps'])).stdout, /\(unhealthy\) +hc/);
    assert.is((await tsb(['exec', 'hc', 'touch', '/tmp/healthy'])).code, 0);
    await until('healthy', async () => (await inspect('hc', '{{.State.Health.Status}}')) === 'healthy');
    assert.match((await tsb(['ps'])).stdout, /\(healthy\) +hc/);
    assert.is((await tsb(['run', '-d', '--name', 'nohc', '--no-healthcheck', 'lc-health'])).code, 0);
    await sleep(600);
    const st = await tsb(['ps', '--filter', 'name=nohc', '--format', '{{.Status}}']);
    assert.match(st.stdout, /^Up [^(]*$/);
    assert.is(await inspect('nohc', '{{.State.Status}}'), 'running');
  });
});

it('cp: a file and a directory round trip, into running and stopped containers; a symlink in the container does not lead out', async () => {
  const host = fs.mkdtempSync(path.join(os.tmpdir(), 'tsb-cp-'));
  await withContainers(['cp1'], async () => {
    fs.writeFileSync(path.join(host, 'f.txt'), 'from host\n');
    fs.mkdirSync(path.join(host, 'dir/sub'), { recursive: true });
    fs.writeFileSync(path.join(host, 'dir/sub/x'), 'x\n');
    assert.is((await tsb(['run', '-d', '--name', 'cp1', 'lc', 'sh', '-c', 'ln -s / /escape; exec sleep 600'])).code, 0);
    assert.is((await tsb(['cp', path.join(host, 'f.txt'), 'cp1:/tmp/'])).code, 0);
    assert.is((await tsb(['cp', path.join(host, 'dir'), 'cp1:/srv/dir'])).code, 0);
    assert.is((await tsb(['exec', 'cp1', 'sh', '-c', 'cat /tmp/f.txt /srv/dir/sub/x; stat -c %u /tmp/f.txt'])).stdout, 'from host\nx\n0\n');
    assert.is((await tsb(['cp', 'cp1:/srv/dir', path.join(host, 'back')])).code, 0);
    assert.is(fs.readFileSync(path.join(host, 'back/sub/x'), 'utf8'), 'x\n');
    const marker = `tsb-cp-escape-${process.pid}`;
    assert.is((await tsb(['cp', path.join(host, 'f.txt'), `cp1:/escape/tmp/${marker}`])).code, 0);
    assert.not.ok(fs.existsSync(`/tmp/${marker}`), 'written inside the container, not on the host');
    assert.is((await tsb(['exec', 'cp1', 'cat', `/tmp/${marker}`])).stdout, 'from host\n');
    assert.is((await tsb(['stop', '-t', '0', 'cp1'])).code, 0);
    assert.is((await tsb(['cp', 'cp1:/tmp/f.txt', path.join(host, 'stopped.txt')])).code, 0, 'a stopped container is read from its snapshot');
    assert.is(fs.readFileSync(path.join(host, 'stopped.txt'), 'utf8'), 'from host\n');
    const missing = await tsb(['cp', 'cp1:/nope', host]);
    assert.is(missing.code, 1);
    assert.match(missing.stderr, /Could not find the file \/nope in container cp1/);
    assert.is(mountsOf().length, 0, 'nothing left mounted');
  });
  fs.rmSync(host, { recursive: true, force: true });
});

it('pause freezes every process (no output while paused), unpause thaws; exec into a paused container is refused', async () => {
  await withContainers(['pz'], async () => {
    assert.is((await tsb(['run', '-d', '--name', 'pz', 'lc', 'sh', '-c', 'while true; do echo tick; sleep 0.05; done'])).code, 0);
    await until('ticks', async () => (await tsb(['logs', 'pz'])).stdout.length > 0);
    assert.is((await tsb(['pause', 'pz'])).code, 0);
    assert.match((await tsb(['ps'])).stdout, /\(Paused\) +pz/);
    const before = (await tsb(['logs', 'pz'])).stdout.length;
    await sleep(800);
    assert.is((await tsb(['logs', 'pz'])).stdout.length, before, 'frozen processes write nothing');
    const ex = await tsb(['exec', 'pz', 'true']);
    assert.is(ex.code, 1);
    assert.match(ex.stderr, /is paused, unpause the container before exec/);
    assert.is((await tsb(['unpause', 'pz'])).code, 0);
    await until('ticks again', async () => (await tsb(['logs', 'pz'])).stdout.length > before);
  });
});

it('rm -f of a running container leaves no process, mount or cgroup; names, start, restart, rename, and errors as Docker gives them', async () => {
  await withContainers(['a1', 'a2'], async () => {
    const id = (await tsb(['run', '-d', '--name', 'a1', 'lc', 'sleep', '600'])).stdout.trim();
    const dup = await tsb(['run', '-d', '--name', 'a1', 'lc', 'true']);
    assert.is(dup.code, 125);
    assert.match(dup.stderr, new RegExp(`name "a1" is already in use by container ${id}`));
    // Two commands racing for one name: exactly one gets it.
    const race = await Promise.all([tsb(['run', '-d', '--name', 'a0', 'lc', 'true']), tsb(['run', '-d', '--name', 'a0', 'lc', 'true'])]);
    assert.equal(race.map((x) => x.code).sort(), [0, 125]);
    assert.is((await tsb(['rm', '-f', 'a0'])).code, 0);
    const pid = Number(await inspect('a1', '{{.State.Pid}}'));
    const mon = Number(await inspect('a1', '{{.State.MonitorPid}}'));
    assert.ok(alive(pid) && alive(mon));
    const norm = await tsb(['rm', 'a1']);
    assert.is(norm.code, 1);
    assert.match(norm.stderr, /stop it first/);
    assert.is((await tsb(['rm', '-f', 'a1'])).stdout, 'a1\n');
    assert.not.ok(alive(pid), 'the container process is gone');
    assert.not.ok(alive(mon), 'the monitor is gone');
    assert.is(mountsOf().length, 0);
    assert.equal(cgroups().list().filter((n) => n.includes(`-${mon}-`)), []);
    for (const cmd of [['exec', 'a1', 'true'], ['stop', 'a1'], ['logs', 'a1'], ['inspect', '--type', 'container', 'a1']]) {
      const r = await tsb(cmd);
      assert.is(r.code, 1, cmd.join(' '));
      assert.match(r.stderr, /No such container: a1/);
    }
    // Generated names are unique; start, restart and rename work on a stopped container.
    assert.is((await tsb(['run', '-d', 'lc', 'true'])).code, 0);
    assert.is((await tsb(['run', '-d', 'lc', 'true'])).code, 0);
    const names = (await tsb(['ps', '-a', '--format', '{{.Names}}'])).stdout.trim().split('\n');
    assert.is(new Set(names).size, names.length);
    for (const n of names) assert.match(n, /^[a-z]+_[a-z]+\d*$/);
    assert.is((await tsb(['rm', '-f', ...names])).code, 0);
    assert.is((await tsb(['run', '-d', '--name', 'a2', 'lc', 'sh', '-c', 'echo run; sleep 600'])).code, 0);
    assert.is((await tsb(['stop', '-t', '0', 'a2'])).code, 0);
    const ex = await tsb(['exec', 'a2', 'true']);
    assert.match(ex.stderr, /is not running/);
    assert.is((await tsb(['start', 'a2'])).code, 0);
    assert.match((await tsb(['ps'])).stdout, /Up .* +a2/);
    assert.is((await tsb(['restart', '-t', '0', 'a2'])).code, 0);
    assert.is((await tsb(['logs', 'a2'])).stdout, 'run\nrun\nrun\n', 'one run, a start and a restart on the same container');
    assert.is((await tsb(['rename', 'a2', 'a3'])).code, 0);
    assert.is((await tsb(['rename', 'a3', 'a2'])).code, 0);
  });
});

it('attach: the output from now on, input with run -d -i; it ends when the container ends', async () => {
  await withContainers(['att'], async () => {
    assert.is((await tsb(['run', '-d', '-i', '--name', 'att', 'lc', 'sh', '-c', 'while read l; do echo "got $l"; done'])).code, 0);
    const a = spawn(process.execPath, [cliPath, 'attach', 'att'], { env: { ...process.env, TSBUILD_ROOT: root }, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    a.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const closed = new Promise<number>((r) => a.on('close', (code) => r(code ?? -1)));
    try {
      await until('attach to connect', async () => {
        a.stdin.write('ping\n');
        await sleep(200);
        return out.includes('got ping');
      });
      assert.is((await tsb(['stop', '-t', '1', 'att'])).code, 0);
      assert.is(await closed, 137, 'attach returns when the container ends, with its exit code (SIGKILL after the timeout)');
      assert.match((await tsb(['logs', 'att'])).stdout, /got ping/, 'what attach saw is in the log too');
    } finally {
      a.kill('SIGKILL');
    }
    const stopped = await tsb(['attach', 'att']);
    assert.is(stopped.code, 1);
    assert.match(stopped.stderr, /cannot attach to a stopped container/);
  });
});

it('kill -9 of the monitor: the container dies with it, ps -a says why, rm cleans everything', async () => {
  await withContainers(['victim'], async () => {
    assert.is((await tsb(['run', '-d', '--name', 'victim', 'lc', 'sleep', '600'])).code, 0);
    const pid = Number(await inspect('victim', '{{.State.Pid}}'));
    const mon = Number(await inspect('victim', '{{.State.MonitorPid}}'));
    process.kill(mon, 'SIGKILL');
    await until('the container to die with its monitor', () => !alive(pid));
    assert.match((await tsb(['ps', '-a'])).stdout, /Exited \(137\) .* +victim/);
    assert.match(await inspect('victim', '{{.State.Error}}'), new RegExp(`monitor \\(pid ${mon}\\) died`));
    assert.is((await tsb(['rm', 'victim'])).code, 0);
    assert.is(mountsOf().length, 0);
    assert.equal(cgroups().list().filter((n) => n.includes(`-${mon}-`)), [], 'its cgroup was reclaimed');
  });
});

it('kill -9 of an attached `tsbuild run`: ps -a says it exited and why; a damaged record shows as Dead and rm removes it', async () => {
  await withContainers(['att9'], async () => {
    const c = spawn(process.execPath, [cliPath, 'run', '--name', 'att9', 'lc', 'sleep', '600'], { env: { ...process.env, TSBUILD_ROOT: root }, stdio: 'ignore' });
    const closed = new Promise((r) => c.on('close', r));
    try {
      await until('it to run', async () => (await tsb(['ps', '--filter', 'name=att9', '-q'])).stdout !== '');
    } finally {
      c.kill('SIGKILL');
      await closed;
    }
    await until('ps -a to say it exited', async () => /Exited \(137\) .* +att9/.test((await tsb(['ps', '-a'])).stdout));
    assert.match(await inspect('att9', '{{.State.Error}}'), new RegExp(`tsbuild run \\(pid ${c.pid}\\) died`));
  });
  const id = (await tsb(['run', '-d', 'lc', 'true'])).stdout.trim();
  assert.is((await tsb(['wait', id])).stdout, '0\n');
  fs.writeFileSync(path.join(root, 'containers', id, 'state.json'), '{"id": "torn');
  const ps = await tsb(['ps', '-a']);
  assert.is(ps.code, 0, `a damaged record does not break ps: ${ps.stderr}`);
  assert.match(ps.stdout, new RegExp(`${id.slice(0, 12)} .*Dead`));
  const rm = await tsb(['rm', id.slice(0, 12)]);
  assert.is(rm.code, 0, rm.stderr);
  assert.is((await tsb(['ps', '-aq'])).stdout, '');
  assert.is((await tsb(['run', '--rm', 'lc', 'true'])).code, 0, 'and run works');
});

it('kill -9 of `tsbuild run -d` at any moment: ps -a stays true and rm -f cleans up', async () => {
  for (const delay of [0, 60, 150, 250, 400]) {
    const c = cliSpawn(['run', '-d', 'lc', 'sleep', '600'], root);
    await sleep(delay);
    c.kill('SIGKILL');
    await new Promise((r) => c.on('close', r));
  }
  await sleep(300);
  // Every record's state matches its processes: "running" only with a live monitor.
  for (const r of records()) {
    const st = await inspect(r.id, '{{.State.Status}} {{.State.MonitorPid}}');
    const [status, mon] = st.split(' ');
    if (status === 'running') assert.ok(alive(Number(mon)), `running with a live monitor: ${st}`);
  }
  const all = (await tsb(['ps', '-aq'])).stdout.trim().split('\n').filter(Boolean);
  if (all.length) assert.is((await tsb(['rm', '-f', ...all])).code, 0);
  assert.is((await tsb(['ps', '-a', '-q'])).stdout, '');
  assert.is(mountsOf().length, 0);
  // The next command's recovery leaves no container layer behind, not even one made just before a kill.
  const store = await openStore(root);
  const ctrs: string[] = [];
  await store.snapshotter.walk((i) => {
    if (i.key.startsWith('ctr-')) ctrs.push(i.key);
  });
  await store.snapshotter.close();
  assert.equal(ctrs, [], 'no container layer is left');
});
test.run();
