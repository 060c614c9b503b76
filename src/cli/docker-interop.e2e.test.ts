/**
 * Round trips with a real Docker Engine, when one answers on this machine (none is installed for the
 * tests: the benchmark peers start one). `save` → `docker load` keeps the image id and runs;
 * `docker save` of an image Docker built on top → `tsbuild load` keeps its id and runs. Nothing is
 * pulled; the images this test gives Docker are removed at the end.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as assert from 'uvu/assert';
import { cli, e2eHarness } from '../testutil/index.js';

const { itUnless, root, ctx, test } = e2eHarness('dock');
// Debian's docker.io CLI, else whatever `docker` is on PATH.
const DOCKER = fs.existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker';
const docker = (args: string[], input?: string) => spawnSync(DOCKER, args, { encoding: 'utf8', input, timeout: 120_000, env: { ...process.env, DOCKER_BUILDKIT: '0' } });
const info = spawnSync(DOCKER, ['info', '--format', '{{.ServerVersion}}'], { encoding: 'utf8', timeout: 10_000 });
const why = info.status === 0 ? undefined : 'no Docker Engine answers here (apt-get install docker.io and start dockerd to run it)';
const tag = `tsb-interop-${process.pid}`;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tsb-dock-'));
test.after(() => {
  if (!why) docker(['rmi', '-f', `${tag}-a:latest`, `${tag}-b:latest`]);
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
