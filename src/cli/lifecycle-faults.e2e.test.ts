/**
 * Containers that outlive the command, continued: cp, pause, rm -f, names, start/restart/rename,
 * attach, and the truth of the record after kill -9 of the monitor, of an attached `tsbuild run` and
 * of `tsbuild run -d` itself, and after a damaged record.
 */
import * as assert from 'uvu/assert';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cliPath, cliSpawn } from '../testutil/index.js';
import { cgroups } from '../runtime/index.js';
import { openStore } from '../store/index.js';
import { alive, lifecycleFixture, sleep, until } from './lifecycle.fixture.js';

const { it, test, root, tsb, inspect, withContainers, mountsOf, records, buildImages } = lifecycleFixture('lc2');

it('build: the images for these tests', buildImages);

it('cp: a file and a directory round trip, into running and stopped containers; a symlink in the container does not lead out', async () => {
  const host = fs.mkdtempSync(path.join(os.tmpdir(), 'tsb-cp-'));
  try {
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
      // `-`: a tar stream out of the container, and into a directory of it.
      const env = { ...process.env, TSBUILD_ROOT: root };
      const out = spawnSync(cliPath, ['cp', 'cp1:/srv/dir', '-'], { env, maxBuffer: 16 << 20 });
      assert.is(out.status, 0, String(out.stderr));
      const names = spawnSync('tar', ['-t'], { input: out.stdout, encoding: 'utf8' }).stdout.split('\n');
      assert.ok(names.includes('dir/sub/x'), names.join(' '));
      const tarIn = spawnSync('tar', ['-C', host, '-c', 'f.txt']).stdout;
      const put = spawnSync(cliPath, ['cp', '-', 'cp1:/srv'], { env, input: tarIn });
      assert.is(put.status, 0, String(put.stderr));
      assert.is((await tsb(['exec', 'cp1', 'cat', '/srv/f.txt'])).stdout, 'from host\n');
      const marker = `tsb-cp-escape-${process.pid}`;
      assert.is((await tsb(['cp', path.join(host, 'f.txt'), `cp1:/escape/tmp/${marker}`])).code, 0);
      assert.not.ok(fs.existsSync(`/tmp/${marker}`), 'written inside the container, not on the host');
      assert.is((await tsb(['exec', 'cp1', 'cat', `/tmp/${marker}`])).stdout, 'from host\n');
      assert.is((await tsb(['stop', '-t', '0', 'cp1'])).code, 0);
      assert.is((await tsb(['cp', 'cp1:/tmp/f.txt', path.join(host, 'stopped.txt')])).code, 0, 'a stopped container is read from its snapshot');
      assert.is(fs.readFileSync(path.join(host, 'stopped.txt'), 'utf8'), 'from host\n');
      // A device or a FIFO on the host is written into, never replaced (the test's own null device
      // stands in for /dev/null, so a regression cannot touch the real one).
      const nul = path.join(host, 'null');
      assert.is(spawnSync('mknod', ['-m', '666', nul, 'c', '1', '3']).status, 0);
      assert.is((await tsb(['cp', 'cp1:/tmp/f.txt', nul])).code, 0);
      const nst = fs.lstatSync(nul);
      assert.ok(nst.isCharacterDevice() && (nst.mode & 0o777) === 0o666, 'still the null device, mode 666');
      const fifo = path.join(host, 'fifo');
      assert.is(spawnSync('mkfifo', [fifo]).status, 0);
      const reader = spawn('cat', [fifo], { stdio: ['ignore', 'pipe', 'ignore'] });
      const closed = new Promise((res) => reader.on('close', res));
      let got = '';
      reader.stdout.on('data', (d: Buffer) => (got += d.toString()));
      const guard = setTimeout(() => reader.kill(), 30_000);
      const viaFifo = await tsb(['cp', 'cp1:/tmp/f.txt', fifo]);
      if (viaFifo.code !== 0) reader.kill();
      await closed;
      clearTimeout(guard);
      assert.is(viaFifo.code, 0, viaFifo.stderr);
      assert.is(got, 'from host\n');
      assert.ok(fs.lstatSync(fifo).isFIFO(), 'still a FIFO');
      const missing = await tsb(['cp', 'cp1:/nope', host]);
      assert.is(missing.code, 1);
      assert.match(missing.stderr, /Could not find the file \/nope in container cp1/);
      assert.is(mountsOf().length, 0, 'nothing left mounted');
    });
  } finally {
    fs.rmSync(host, { recursive: true, force: true });
  }
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
    const a = spawn(cliPath, ['attach', 'att'], { env: { ...process.env, TSBUILD_ROOT: root }, stdio: ['pipe', 'pipe', 'pipe'] });
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
    // The detach keys (ctrl-p ctrl-q by default) leave the container running.
    assert.is((await tsb(['start', 'att'])).code, 0);
    const b = spawn(cliPath, ['attach', 'att'], { env: { ...process.env, TSBUILD_ROOT: root }, stdio: ['pipe', 'pipe', 'pipe'] });
    let seen = '';
    b.stdout.on('data', (d: Buffer) => (seen += d.toString()));
    const bClosed = new Promise<number>((r) => b.on('close', (code) => r(code ?? -1)));
    try {
      await until('the second attach to connect', async () => {
        b.stdin.write('again\n');
        await sleep(200);
        return seen.includes('got again');
      });
      b.stdin.write(Buffer.from([0x10, 0x11]));
      assert.is(await bClosed, 0, 'detached with ctrl-p ctrl-q');
      assert.is(await inspect('att', '{{.State.Status}}'), 'running');
    } finally {
      b.kill('SIGKILL');
    }
    assert.is((await tsb(['stop', '-t', '1', 'att'])).code, 0);
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
    const c = spawn(cliPath, ['run', '--name', 'att9', 'lc', 'sleep', '600'], { env: { ...process.env, TSBUILD_ROOT: root }, stdio: 'ignore' });
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
    // Listened for at once: a fast `run -d` may finish before the kill, and its close must not be missed.
    const closed = new Promise((r) => c.on('close', r));
    await sleep(delay);
    c.kill('SIGKILL');
    await closed;
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
