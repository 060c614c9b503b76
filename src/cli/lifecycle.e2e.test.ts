/**
 * Containers that outlive the command: run -d under a monitor, ps, logs (and their rotation), exec,
 * stop, kill, wait, restart policies and health checks. Every container a test starts is removed
 * (rm -f) even when it fails; the fixture's after-hook ends any monitor still recorded.
 */
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import { lifecycleFixture, sleep, until } from './lifecycle.fixture.js';

const { it, test, tsb, inspect, withContainers, buildImages } = lifecycleFixture('lc');

it('build: the images for these tests', buildImages);

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
    // -d: returns once started; the process goes on without this command.
    r = await tsb(['exec', '-d', 'ex', 'sh', '-c', 'sleep 0.3; echo bg > /tmp/bg']);
    assert.is(r.code, 0, r.stderr);
    assert.is(r.stdout, '');
    await until('the detached exec to finish', async () => (await tsb(['exec', 'ex', 'cat', '/tmp/bg'])).stdout === 'bg\n');
    r = await tsb(['exec', '-d', 'ex', 'no-such-binary']);
    assert.is(r.code, 127);
    assert.match(r.stderr, /executable file not found/);
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

test.run();
