/**
 * Round trips with a real Docker Engine. `save` → `docker load` keeps the image id and runs;
 * `docker save` of an image Docker built on top → `tsbuild load` keeps its id and runs. When no
 * daemon answers and `dockerd` is installed (Debian's docker.io), the test starts a private one of
 * its own: its own data and exec roots, socket and config, no bridge and no iptables rules, stopped
 * and removed at the end. Nothing is pulled.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as assert from 'uvu/assert';
import { cli, e2eHarness, mountsUnder } from '../testutil/index.js';
import { detectCgroups } from '../runtime/index.js';

const { itUnless, root, ctx, test } = e2eHarness('dock');
// Debian's docker.io CLI, else whatever `docker` is on PATH.
const DOCKER = fs.existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker';
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tsb-dock-'));
let env: NodeJS.ProcessEnv = { ...process.env, DOCKER_BUILDKIT: '0' };
const docker = (args: string[], input?: string) => spawnSync(DOCKER, args, { encoding: 'utf8', input, timeout: 120_000, env });
const answers = () => spawnSync(DOCKER, ['info', '--format', '{{.ServerVersion}}'], { encoding: 'utf8', timeout: 10_000, env }).status === 0;

let daemon: ChildProcess | undefined;
// Docker never removes its containers' parent cgroup (/docker by default): a name of this test's own
// that it removes from every hierarchy at the end.
const CGROUP_PARENT = `tsb-dock-${process.pid}`;
const dd = path.join(tmp, 'd');
if (!answers() && spawnSync('dockerd', ['--version']).status === 0) {
  fs.mkdirSync(dd);
  fs.writeFileSync(path.join(dd, 'daemon.json'), '{}');
  env = { ...env, DOCKER_HOST: `unix://${dd}/sock` };
  daemon = spawn('dockerd', ['--config-file', `${dd}/daemon.json`, '--data-root', `${dd}/data`, '--exec-root', `${dd}/exec`, '--pidfile', `${dd}/pid`,
    '-H', `unix://${dd}/sock`, '--exec-opt', 'native.cgroupdriver=cgroupfs', '--cgroup-parent', CGROUP_PARENT, '--bridge', 'none', '--iptables=false', '--ip6tables=false', '--ip-masq=false', '--ip-forward=false', '--log-level', 'error'], { stdio: ['ignore', 'ignore', fs.openSync(path.join(tmp, 'dockerd.log'), 'w')] });
  // Registration below needs to know now whether a daemon answers: wait here (up to 30 s).
  // (The event loop is blocked here, so its exit shows as a zombie, not as exitCode.)
  const alive = () => / [^Z] /.test(fs.existsSync(`/proc/${daemon!.pid}/stat`) ? fs.readFileSync(`/proc/${daemon!.pid}/stat`, 'utf8').replace(/^.*\)/, '') : ' Z ');
  for (let i = 0; i < 150 && !answers() && alive(); i++) spawnSync('sleep', ['0.2']);
}
const why = answers() ? undefined : `no Docker Engine answers here and none could be started (install docker.io to run it${daemon ? `; dockerd said: ${fs.readFileSync(path.join(tmp, 'dockerd.log'), 'utf8').trim().split('\n').pop()}` : ''})`;
const tag = `tsb-interop-${process.pid}`;

/** The private daemon, the containerd it started, and whatever they left mounted, go. */
async function stopDaemon(d: ChildProcess): Promise<void> {
  const exited = new Promise<void>((resolve) => (d.exitCode !== null || d.signalCode !== null ? resolve() : d.once('exit', () => resolve())));
  let containerdPid = 0;
  try {
    containerdPid = Number(fs.readFileSync(path.join(dd, 'exec/containerd/containerd.pid'), 'utf8'));
  } catch {
    // it never started one
  }
  d.kill('SIGTERM');
  const timer = setTimeout(() => d.kill('SIGKILL'), 20_000);
  await exited;
  clearTimeout(timer);
  // dockerd stops the containerd it started when it stops cleanly; after a SIGKILL it is left.
  if (containerdPid > 0 && fs.existsSync(`/proc/${containerdPid}`) && fs.readFileSync(`/proc/${containerdPid}/cmdline`, 'utf8').includes(dd)) process.kill(containerdPid, 'SIGKILL');
  const left = mountsUnder(dd).map((l) => l.split(' ')[4]).filter((m): m is string => !!m && m.startsWith(dd)).reverse();
  for (const m of left) spawnSync('umount', ['-l', m]);
  // A relative parent is made below the cgroup dockerd runs in (this test's own), in each hierarchy.
  const l = detectCgroups();
  const own = [...[...l.v1.values()].map((h) => path.join(h.mount, h.self)), ...(l.v2 ? [path.join(l.v2.mount, l.v2.self)] : [])];
  for (const dir of new Set(own)) removeCgroupTree(path.join(dir, CGROUP_PARENT));
}

/** A cgroup directory and the ones below it, deepest first (a cgroup is removed with rmdir). */
function removeCgroupTree(dir: string): void {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) return;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) removeCgroupTree(path.join(dir, e.name));
  fs.rmdirSync(dir);
}

test.after(async () => {
  if (daemon) await stopDaemon(daemon).catch((e: unknown) => console.error(`stopping the test's dockerd: ${String(e)}`));
  else if (!why) docker(['rmi', '-f', `${tag}-a:latest`, `${tag}-b:latest`]);
  fs.rmSync(tmp, { recursive: true, force: true });
});

itUnless(why, 'save → docker load: the same image id, and Docker runs it; docker save of an image built on it → tsbuild load: the same id, and tsbuild runs it', async () => {
  const b = await cli(['build', '-q', '-t', `${tag}-a`, ctx('FROM base\nRUN echo made-by-tsbuild > /t.txt\nCMD ["cat", "/t.txt"]\n')], { root });
  assert.is(b.code, 0, b.stderr);
  const id = b.stdout.trim().split('\n').pop()!;
  const archive = path.join(tmp, 'a.tar');
  assert.is((await cli(['save', '-o', archive, `${tag}-a`], { root })).code, 0);
  const load = docker(['load', '-i', archive]);
  assert.is(load.status, 0, load.stderr);
  assert.is(docker(['image', 'inspect', '-f', '{{.Id}}', `${tag}-a:latest`]).stdout.trim(), id, "Docker's id is tsbuild's");
  const run = docker(['run', '--rm', '--network', 'none', `${tag}-a:latest`]);
  assert.is(run.stdout, 'made-by-tsbuild\n', run.stderr);

  const dctx = path.join(tmp, 'ctx');
  fs.mkdirSync(dctx);
  fs.writeFileSync(path.join(dctx, 'Dockerfile'), `FROM ${tag}-a:latest\nRUN echo made-by-docker > /d.txt\nCMD ["cat", "/t.txt", "/d.txt"]\n`);
  const db = docker(['build', '-q', '--network', 'none', '-t', `${tag}-b`, dctx]);
  assert.is(db.status, 0, db.stderr);
  const dockerId = docker(['image', 'inspect', '-f', '{{.Id}}', `${tag}-b:latest`]).stdout.trim();
  const back = path.join(tmp, 'b.tar');
  assert.is(docker(['save', '-o', back, `${tag}-b:latest`]).status, 0);
  const tl = await cli(['load', '-i', back], { root });
  assert.is(tl.code, 0, tl.stderr);
  assert.match((await cli(['images', '--no-trunc'], { root })).stdout, new RegExp(`${tag}-b +latest +${dockerId}`), "tsbuild's id is Docker's");
  const tr = await cli(['run', '--rm', '--network', 'none', `${tag}-b`], { root });
  assert.is(tr.stdout, 'made-by-tsbuild\nmade-by-docker\n', tr.stderr);
});

test.run();
