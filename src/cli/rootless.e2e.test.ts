/**
 * Rootless end to end: the test makes ordinary users (one with a subordinate id range, one without),
 * and as them builds, runs, pushes and pulls through the CLI. Everything they made goes at the end:
 * their namespace holders (by the pid each recorded), stores, users and /etc/subuid lines.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { busyboxPath, cli, freePort, programUnavailable, registryUnavailable, removeStore, sandboxUnavailable, startRegistry, testUnless, tmpdir, type TestRegistry } from '../testutil/index.js';
import { withoutUserNamespaces, as, cleanups, outerPid, spawnAs, context, gidOf, holderPid, inPod, killHolder, makeUser, pod, ranged, single, stageApp, uidOf, MULTI } from './rootless.fixture.js';

let registry: TestRegistry | undefined;
const skip = sandboxUnavailable() ?? programUnavailable('useradd', ['--help'], 'passwd') ?? programUnavailable('newuidmap', ['--help'], 'uidmap') ?? registryUnavailable();


test.before(async () => {
  if (skip) return;
  makeUser(ranged, true);
  makeUser(single, false);
  makeUser(pod, false);
  stageApp();
  registry = await startRegistry();
});

test.after(async () => {
  for (const u of [ranged, single, pod]) {
    // The holders were started by this test's commands; each recorded its pid.
    killHolder(u);
    if (u.home) fs.rmSync(u.home, { recursive: true, force: true });
  }
  await registry?.stop();
  for (const c of cleanups.reverse()) c();
});

testUnless(skip, 'a user with a subordinate range builds a multi-stage Dockerfile that chowns, runs it, and gets the image id root gets', async () => {
  const ctx = context(MULTI);
  try {
    const b = as(ranged, ['build', '-q', '-t', 'multi', '.'], { cwd: ctx });
    assert.is(b.code, 0, b.stderr);
    const id = b.stdout.trim().split('\n').pop()!;
    assert.match(id, /^sha256:[0-9a-f]{64}$/);
    assert.ok(fs.existsSync(path.join(ranged.home, '.local/share/tsbuild')), 'the store is under the user\'s XDG data directory');
    const r = as(ranged, ['run', '--rm', 'multi']);
    assert.is(r.code, 0, r.stderr);
    assert.is(r.stdout, '0\nmade\nby-bob\n1234:1234\n4321:0\n65000:3000\n');
    // Root, same Dockerfile and context: the same image.
    const root = tmpdir('tsb-rootless-rootstore-');
    try {
      const rb = await cli(['build', '-q', '-t', 'multi', ctx], { root });
      assert.is(rb.code, 0, rb.stderr);
      assert.is(rb.stdout.trim().split('\n').pop(), id);
    } finally {
      removeStore(root);
    }
    const info = as(ranged, ['info']);
    assert.match(info.stdout, /Rootless:\s+yes: user namespace mapping the user and its \/etc\/subuid range/);
  } finally {
    fs.rmSync(ctx, { recursive: true, force: true });
  }
});

testUnless(skip, 'rootless push to and pull from the local registry', async () => {
  const ref = `${registry!.host}/rootless/multi:1`;
  assert.is(as(ranged, ['tag', 'multi', ref]).code, 0);
  const p = as(ranged, ['push', ref]);
  assert.is(p.code, 0, p.stderr);
  assert.is(as(ranged, ['rmi', 'multi', ref]).code, 0);
  const pl = as(ranged, ['pull', ref]);
  assert.is(pl.code, 0, pl.stderr);
  const r = as(ranged, ['run', '--rm', '--network', 'none', ref]);
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stdout, '0\nmade\nby-bob\n1234:1234\n4321:0\n65000:3000\n');
  assert.is(as(ranged, ['tag', ref, 'multi']).code, 0);
});

testUnless(skip, 'pulling an image with a device node: skipped with a note, and the image runs', async () => {
  const ctx = context('RUN mknod /node c 1 3 && echo data > /file\nCMD ["sh", "-c", "cat /file; test -e /node || echo no-node"]\n');
  const root = tmpdir('tsb-rootless-rootstore-');
  const ref = `${registry!.host}/rootless/dev:1`;
  try {
    const b = await cli(['build', '-q', '-t', ref, ctx], { root });
    assert.is(b.code, 0, b.stderr);
    assert.is((await cli(['push', ref], { root })).code, 0);
    const p = as(ranged, ['pull', ref]);
    assert.is(p.code, 0, p.stderr);
    assert.match(p.stdout + p.stderr, /skipping char device "node": a rootless user namespace cannot create device nodes/);
    const r = as(ranged, ['run', '--rm', ref]);
    assert.is(r.code, 0, r.stderr);
    assert.is(r.stdout, 'data\nno-node\n');
  } finally {
    removeStore(root);
    fs.rmSync(ctx, { recursive: true, force: true });
  }
});

testUnless(skip, 'a rootless container\'s root cannot write a root-owned host file or directory through a bind mount', () => {
  const dir = tmpdir('tsb-rootless-bind-');
  try {
    fs.chmodSync(dir, 0o755);
    fs.writeFileSync(path.join(dir, 'secret'), 'root data\n', { mode: 0o644 });
    const r = as(ranged, ['run', '--rm', '-v', `${dir}:/h`, 'multi', 'sh', '-c', 'cat /h/secret; echo evil >> /h/secret; echo w=$?; touch /h/new; echo t=$?; chmod 777 /h/secret; echo c=$?']);
    assert.is(r.code, 0, r.stderr);
    assert.match(r.stdout, /root data/);
    assert.match(r.stdout, /w=1/);
    assert.match(r.stdout, /t=1/);
    assert.match(r.stdout, /c=1/);
    assert.is(fs.readFileSync(path.join(dir, 'secret'), 'utf8'), 'root data\n');
    assert.is(fs.statSync(path.join(dir, 'secret')).mode & 0o777, 0o644);
    assert.not.ok(fs.existsSync(path.join(dir, 'new')));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

testUnless(skip, 'rootless refusals and warnings: bridge networks, limits, another user\'s store', () => {
  const br = as(ranged, ['run', '--rm', '--network', 'bridge', 'multi', 'true']);
  assert.is(br.code, 125);
  assert.match(br.stderr, /rootless tsbuild has no bridge or user networks/);
  const lim = as(ranged, ['run', '--rm', '--memory', '64m', 'multi', 'true']);
  assert.is(lim.code, 0, lim.stderr);
  assert.match(lim.stderr, /resource limits are not applied/);
  // A detached container without a cgroup: top walks its process tree; pause and stats say why not.
  const d = as(ranged, ['run', '-d', '--network', 'none', 'multi', 'sh', '-c', 'sleep 60 & wait']);
  assert.is(d.code, 0, d.stderr);
  const cid = d.stdout.trim();
  try {
    assert.match(as(ranged, ['top', cid]).stdout, /sleep 60/);
    for (const cmd of [['pause', cid], ['stats', '--no-stream', cid]]) {
      const r = as(ranged, cmd);
      assert.is(r.code, 1);
      assert.match(r.stderr, new RegExp(`${cmd[0]} needs the container's cgroup, .*delegates a cgroup v2 subtree`));
    }
  } finally {
    as(ranged, ['rm', '-f', cid]);
  }
  const other = tmpdir('tsb-rootless-other-');
  try {
    fs.chmodSync(other, 0o755);
    const o = as(ranged, ['images'], { env: { TSBUILD_ROOT: other } });
    assert.is(o.code, 1);
    assert.match(o.stderr, /belongs to another user/);
    assert.not.match(o.stderr, /\n\s+at /, 'no stack trace');
  } finally {
    fs.rmSync(other, { recursive: true, force: true });
  }
});

testUnless(skip ?? programUnavailable('slirp4netns', ['--version'], 'slirp4netns'), 'rootless networking through slirp4netns: its own namespace by default, host loopback only when asked, -p published on the host', async () => {
  const http = await import('node:http');
  const hostPort = await freePort();
  // A server of its own process: this one blocks in spawnSync while the container talks to it.
  const www = tmpdir('tsb-rootless-www-');
  fs.writeFileSync(path.join(www, 'index.html'), 'from-host\n');
  const server = spawn(busyboxPath()!, ['httpd', '-f', '-p', `127.0.0.1:${hostPort}`, '-h', www], { stdio: 'ignore' });
  const get = 'printf "GET / HTTP/1.0\\r\\n\\r\\n" | nc -w 3 10.0.2.2 ' + hostPort;
  try {
    const d = as(ranged, ['run', '--rm', 'multi', 'sh', '-c', `ip -4 addr show tap0 | grep -o 'inet [0-9./]*'; cat /etc/resolv.conf; ${get} || echo refused`]);
    assert.is(d.code, 0, d.stderr);
    assert.match(d.stdout, /inet 10\.0\.2\.100\/24/);
    assert.match(d.stdout, /nameserver 10\.0\.2\.3/);
    assert.not.match(d.stdout, /from-host/, 'the host\'s loopback is closed by default');
    const a = as(ranged, ['run', '--rm', '--network', 'slirp4netns:allow_host_loopback=true', 'multi', 'sh', '-c', get]);
    assert.is(a.code, 0, a.stderr);
    assert.match(a.stdout, /from-host/);
    const bad = as(ranged, ['run', '--rm', '--network', 'slirp4netns:mtu=9000', 'multi', 'true']);
    assert.is(bad.code, 125);
    assert.match(bad.stderr, /unknown option mtu=9000; slirp4netns takes allow_host_loopback=true\|false/);
  } finally {
    server.kill('SIGKILL');
    fs.rmSync(www, { recursive: true, force: true });
  }
  const pub = await freePort();
  const id = as(ranged, ['run', '-d', '-p', `127.0.0.1:${pub}:80`, 'multi', 'sh', '-c', 'mkdir -p /www && echo from-container > /www/index.html && exec httpd -f -p 80 -h /www']);
  assert.is(id.code, 0, id.stderr);
  const cid = id.stdout.trim();
  try {
    assert.is(as(ranged, ['port', cid, '80']).stdout, `127.0.0.1:${pub}\n`);
    let body = '';
    for (let i = 0; i < 50 && !body; i++) {
      body = await new Promise<string>((resolve) => {
        http.get({ host: '127.0.0.1', port: pub, path: '/' }, (r) => {
          let t = '';
          r.on('data', (c: Buffer) => (t += c.toString()));
          r.on('end', () => resolve(t));
        }).on('error', () => setTimeout(() => resolve(''), 100));
      });
    }
    assert.is(body, 'from-container\n');
  } finally {
    as(ranged, ['rm', '-f', cid]);
  }
  // Exited ones may wait a moment for init to reap them (state Z): only live ones count.
  const live = () => spawnSync('ps', ['-u', ranged.name, '-o', 'stat=,comm='], { encoding: 'utf8' }).stdout.split('\n').map((l) => l.trim().split(/\s+/)).filter(([st, c]) => !st?.startsWith('Z') && (c === 'slirp4netns' || c === 'httpd'));
  for (let i = 0; i < 100 && live().length; i++) await new Promise((r) => setTimeout(r, 100));
  assert.equal(live(), [], 'slirp4netns and the container end with it');
});

testUnless(skip, 'Ctrl-C, from a terminal (the whole group) or sent to the outer tsbuild alone, cancels a rootless build once and cleanly; kill -9 leaves nothing running and a whole store', async () => {
  const ctx = context('RUN echo started && sleep 60\n');
  try {
    for (const how of ['group', 'outer'] as const) {
      const child = spawnAs(ranged, ['build', '--no-cache', '--progress', 'plain', '.'], ctx);
      let err = '';
      child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
      const done = new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? 1)));
      for (let i = 0; i < 300 && !/^#\d+ [\d.]+ started$/m.test(err); i++) await new Promise((r) => setTimeout(r, 100));
      assert.match(err, /^#\d+ [\d.]+ started$/m, `${how}: the RUN step began`);
      const outer = outerPid(child.pid!);
      assert.ok(outer, 'the outer tsbuild is found');
      if (how === 'group') process.kill(-child.pid!, 'SIGINT');
      else process.kill(outer!, 'SIGINT');
      const code = await done;
      assert.is(code, 130, `${how}: ${err}`);
      assert.match(err, /ERROR: build cancelled/, `${how}: cancelled once, with its clean-up, not forced`);
    }
    // kill -9 of the outer tsbuild: the inner one and its RUN step die with it (PDEATHSIG); the next
    // command recovers what they left, and no process of the build stays.
    const child = spawnAs(ranged, ['build', '--no-cache', '--progress', 'plain', '.'], ctx);
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const done = new Promise<void>((resolve) => child.on('close', () => resolve()));
    for (let i = 0; i < 300 && !/^#\d+ [\d.]+ started$/m.test(err); i++) await new Promise((r) => setTimeout(r, 100));
    process.kill(outerPid(child.pid!)!, 'SIGKILL');
    await done;
    const sleeping = () => spawnSync('ps', ['-u', ranged.name, '-o', 'stat=,args='], { encoding: 'utf8' }).stdout.split('\n').filter((l) => /sleep 60/.test(l) && !l.trim().startsWith('Z'));
    for (let i = 0; i < 150 && sleeping().length; i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(sleeping(), [], 'the RUN step died with the killed tsbuild');
    const doctor = as(ranged, ['doctor']);
    assert.is(doctor.code, 0, doctor.stdout + doctor.stderr);
  } finally {
    fs.rmSync(ctx, { recursive: true, force: true });
  }
});

testUnless(skip, 'without a subordinate range: a single-id map, a warning that says what it limits, and builds that need no other id', () => {
  const ctx = context('RUN echo ok > /ok\nCMD ["cat", "/ok"]\n');
  const bad = context('RUN echo ok > /ok && chown 1000 /ok\n');
  try {
    const b = as(single, ['build', '-q', '-t', 'one', '.'], { cwd: ctx });
    assert.is(b.code, 0, b.stderr);
    assert.match(b.stderr, /rootless with one id only \(no range for tsbrs[0-9a-f]+ in \/etc\/subuid\)/);
    const r = as(single, ['run', '--rm', 'one']);
    assert.is(r.code, 0, r.stderr);
    assert.is(r.stdout, 'ok\n');
    assert.not.match(r.stderr, /one id only/, 'the warning comes once, when the namespace is made');
    assert.match(as(single, ['info']).stdout, /mapping only the user's own id/);
    const f = as(single, ['build', '-q', '.'], { cwd: bad });
    assert.is(f.code, 1);
    assert.match(f.stderr, /chown: \/ok: Invalid argument/);
    // An image with files of other owners cannot be unpacked with one id: the error names file and fix.
    const p = as(single, ['pull', `${registry!.host}/rootless/multi:1`]);
    assert.is(p.code, 1);
    assert.match(p.stderr, /cannot give "[^"]*" owner \d+:\d+: that id is not mapped in this user namespace.*usermod --add-subuids/);
    assert.not.match(as(single, ['images']).stdout, /rootless\/multi/, 'no half-unpacked image is listed');
  } finally {
    fs.rmSync(ctx, { recursive: true, force: true });
    fs.rmSync(bad, { recursive: true, force: true });
  }
});

testUnless(skip, 'system migrate ends the namespace; the next command makes a new one and finds the same store', () => {
  const before = holderPid(single);
  assert.ok(before);
  const m = as(single, ['system', 'migrate']);
  assert.is(m.code, 0, m.stderr);
  assert.match(m.stdout, new RegExp(`holder pid ${before}`));
  const state = (() => {
    try {
      return fs.readFileSync(`/proc/${before}/stat`, 'utf8').replace(/^.*\) /, '')[0];
    } catch {
      return 'gone';
    }
  })();
  assert.ok(state === 'gone' || state === 'Z', `the old holder is gone (state ${state})`);
  const r = as(single, ['run', '--rm', 'one']);
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stdout, 'ok\n');
  assert.ok(holderPid(single) !== before);
});

test('as root: --userns host is accepted and keep-id takes no options; rootless: auto and --uidmap are refused, naming why', async () => {
  const root = tmpdir('tsb-userns-');
  try {
    const host = await cli(['run', '--rm', '--userns', 'host', 'no-such-image-here', 'true'], { root });
    assert.match(host.stderr, /no-such-image-here/, 'the flag passes; the image is what is missing');
    const keep = await cli(['run', '--rm', '--userns', 'keep-id:uid=1000', 'no-such-image-here', 'true'], { root });
    assert.is(keep.code, 125);
    assert.match(keep.stderr, /as root, keep-id keeps every id as it is and takes no options/);
  } finally {
    removeStore(root);
  }
  if (skip) return;
  for (const args of [['--userns=auto'], ['--uidmap', '0:100000:65536'], ['--gidmap', '0:100000:65536']]) {
    const r = as(ranged, ['run', '--rm', ...args, 'no-such-image-here', 'true']);
    assert.is(r.code, 125, args.join(' '));
    assert.match(r.stderr, /a rootless tsbuild runs containers in your own user namespace .* needs root on the host/);
  }
});

testUnless(sandboxUnavailable() ?? programUnavailable('setpriv', ['--version'], 'util-linux'), 'a kernel that allows no user namespaces: a clear error naming the setting, nothing left behind', async () => {
  const r = await withoutUserNamespaces(['images']);
  assert.is(r.code, 1, r.stderr);
  assert.match(r.stderr, /cannot create a user namespace for rootless tsbuild: the kernel allows no more user namespaces \(ENOSPC: user.max_user_namespaces is 0 or used up\)\. Unprivileged user namespaces must be allowed/);
  assert.not.match(r.stderr, /\n\s+at /, 'no stack trace');
});

testUnless(skip, 'the Kubernetes recipe\'s constraints: two pods build --push and share the registry cache; the second hits every step', () => {
  const ctx = context('RUN echo built > /out && sleep 0.1\nCMD ["cat", "/out"]\n');
  const pods = [tmpdir('tsb-rootless-pod-'), tmpdir('tsb-rootless-pod-'), tmpdir('tsb-rootless-pod-')];
  const ref = `${registry!.host}/k8s/app:1`, cache = `type=registry,ref=${registry!.host}/k8s/cache`;
  try {
    for (const w of pods) fs.chownSync(w, uidOf(pod), gidOf(pod));
    const args = ['build', '--progress', 'plain', '--push', '-t', ref, `--cache-to=${cache},mode=max`, `--cache-from=${cache}`, '.'];
    const first = inPod(pod, pods[0]!, args, ctx);
    assert.is(first.code, 0, first.stderr);
    assert.not.match(first.stderr, /RUN echo built[^\n]*\n#\d+ CACHED/);
    // A new pod starts with an empty store.
    const probe = inPod(pod, pods[1]!, ['run', '--rm', '--network', 'none', ref, 'true'], ctx);
    assert.is(probe.code, 125, 'the second pod has no image yet and pulls are off');
    const second = inPod(pod, pods[1]!, args, ctx);
    assert.is(second.code, 0, second.stderr);
    assert.match(second.stderr, /RUN echo built[^\n]*\n#\d+ CACHED/);
    const run = inPod(pod, pods[1]!, ['run', '--rm', ref], ctx);
    assert.is(run.code, 0, run.stderr);
    assert.is(run.stdout, 'built\n');
    // Without procMount: Unmasked a RUN step cannot mount its /proc: the error says what to set.
    const masked = inPod(pod, pods[2]!, ['build', '-q', '.'], ctx, { maskedProc: true });
    assert.is(masked.code, 1);
    assert.match(masked.stderr, /mount \/proc: Operation not permitted: .*procMount: Unmasked/);
  } finally {
    for (const w of pods) {
      killHolder(pod, w);
      fs.rmSync(w, { recursive: true, force: true });
    }
    fs.rmSync(ctx, { recursive: true, force: true });
  }
});

test.run();
