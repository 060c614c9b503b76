/**
 * End-to-end: real builds and runs through the CLI, each against its own store, on the real kernel.
 * Skipped (with the reason) where the machine cannot run the sandbox.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cli, conformanceDir, cliSpawn, mountsUnder, pidsMatching, programUnavailable, repoRoot, tmpdir, e2eHarness } from '../testutil/index.js';

const { it, itUnless, root, dirs, ctx } = e2eHarness('e2e');

function helloContext(): string {
  const d = tmpdir('tsb-hello-');
  dirs.push(d);
  fs.cpSync(path.join(repoRoot, 'examples/hello'), d, { recursive: true });
  fs.copyFileSync('/usr/bin/busybox', path.join(d, 'busybox'));
  return d;
}

it('examples/hello builds with --target and runs; the final stage runs its CMD', async () => {
  const d = helloContext();
  let r = await cli(['-t', 'hello', '--target', 'build', '--progress', 'plain', d], { root });
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stderr, /\[build 4\/4\] RUN chmod \+x hello.sh/);
  assert.not.match(r.stderr, /\[final/, 'the final stage is not built with --target build');
  r = await cli(['run', '--rm', 'hello', 'cat', '/src/greeting.txt'], { root });
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, /^hello from tsbuild, built in tsbuild as 0\n$/);
  r = await cli(['build', '-t', 'hello:final', '--progress', 'plain', d], { root });
  assert.is(r.code, 0, r.stderr);
  r = await cli(['run', '--rm', 'hello:final'], { root });
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stdout, 'hello from tsbuild, built in tsbuild as 0\n');
  r = await cli(['run', '--rm', 'hello:final', 'sh', '-c', 'exit 3'], { root });
  assert.is(r.code, 3, 'the container exit code becomes tsbuild\'s');
});

it('RUN sees only its own processes and its own hostname', async () => {
  const d = ctx('RUN ps; echo "host=$(hostname)"; echo "procs=$(ls /proc | grep -E "^[0-9]+$" | tr "\\n" " ")"\n');
  const r = await cli(['--progress', 'plain', d], { root });
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stderr, /host=tsbuild\n/);
  const psLines = r.stderr.split('\n').filter((l) => /^#\d+ [\d.]+ +\d+ +0 /.test(l));
  assert.ok(psLines.length >= 1 && psLines.length <= 3, `ps shows only the step's processes:\n${psLines.join('\n')}`);
  assert.match(r.stderr, /#\d+ [\d.]+ +1 +0 +\/bin\/sh -c ps/, 'the RUN shell is PID 1');
  const procs = /procs=([\d ]+)/.exec(r.stderr)![1]!.trim().split(' ').map(Number);
  assert.ok(procs.every((p) => p < 20), `pids are those of a new pid namespace: ${procs}`);
});

it('deleting a base file produces a whiteout and the file is gone at run time', async () => {
  const d = ctx('RUN mkdir -p /data/dir && echo a > /data/keep && echo b > /data/gone && echo c > /data/dir/old\nFROM base AS final\nCOPY --from=base /data /data\n');
  fs.appendFileSync(path.join(d, 'Dockerfile'), 'FROM base AS del\nRUN mkdir -p /data/dir && echo a > /data/keep && echo b > /data/gone && echo c > /data/dir/old\nRUN rm /data/gone && rm -rf /data/dir && mkdir /data/dir && echo n > /data/dir/new\n');
  let r = await cli(['-t', 'wh', '--target', 'del', '--progress', 'plain', d], { root });
  assert.is(r.code, 0, r.stderr);
  r = await cli(['inspect', 'wh'], { root });
  const info = JSON.parse(r.stdout)[0] as { Manifest: { layers: { digest: string }[] } };
  const last = info.Manifest.layers.at(-1)!.digest.slice(7);
  const t = spawnSync('tar', ['tf', path.join(root, 'blobs/sha256', last)], { encoding: 'utf8' });
  const names = t.stdout.split('\n');
  assert.ok(names.includes('data/.wh.gone'), `whiteout in the layer: ${names}`);
  // A directory deleted and re-created: a whiteout per hidden entry, as every driver's differ gives it
  // (docs/storage.md), not overlay's opaque marker.
  assert.ok(names.includes('data/dir/.wh.old') && !names.includes('data/dir/.wh..wh..opq'), `the old entry's whiteout in the layer: ${names}`);
  r = await cli(['run', '--rm', 'wh', 'sh', '-c', 'ls /data; ls /data/dir; test ! -e /data/gone'], { root });
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stdout, 'dir\nkeep\nnew\n');
});

async function waitFor(cond: () => boolean, ms = 30_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!cond() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  return cond();
}

async function killMidRun(sig: NodeJS.Signals): Promise<void> {
  const marker = `sleep ${60 + Math.floor(Math.random() * 1000)}`;
  const d = ctx(`RUN echo started && ${marker}\n`);
  const re = new RegExp(`^${marker}`);
  const child = cliSpawn(['--progress', 'plain', d], root);
  const exit = new Promise<number | null>((r) => child.on('close', (c) => r(c)));
  try {
    let err = '';
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    assert.ok(await waitFor(() => pidsMatching(re).length > 0), `the RUN is running: ${err}`);
    child.kill(sig);
    const code = await exit;
    assert.ok(code !== 0, `build exits non-zero after ${sig}`);
    assert.ok(await waitFor(() => pidsMatching(re).length === 0, 5000), 'no process of the build is left');
    assert.equal(mountsUnder(root), [], 'nothing stays mounted');
  } finally {
    child.kill('SIGKILL');
    for (const pid of pidsMatching(re)) process.kill(pid, 'SIGKILL');
  }
  const again = await cli(['--progress', 'plain', '-t', 'after-kill', ctx('RUN echo ok > /ok\n')], { root });
  assert.is(again.code, 0, again.stderr);
  const snaps = JSON.parse(fs.readFileSync(path.join(root, 'snapshots/overlayfs/metadata.json'), 'utf8')) as { snapshots: Record<string, { kind: string }> };
  assert.equal(Object.entries(snaps.snapshots).filter(([, v]) => v.kind !== 'committed').map(([k]) => k), [], 'no active snapshot is left');
}

it('Ctrl-C (SIGINT) mid-RUN leaves nothing mounted or running, and the next build works', () => killMidRun('SIGINT'));
it('SIGTERM mid-RUN leaves nothing mounted or running, and the next build works', () => killMidRun('SIGTERM'));
it('kill -9 mid-RUN leaves nothing mounted or running, and the next build works', () => killMidRun('SIGKILL'));

it('context file names that are not UTF-8 are copied byte for byte, cached by their bytes, and explained', async () => {
  const d = ctx('FROM base AS c\nCOPY . /c/\nFROM base AS made\nRUN mkdir /m && printf x > "/m/a$(printf \'\\377\')b"\nFROM base\nCOPY --from=c /c/sub /c/\nCOPY --from=made /m/ /m/\n');
  const bad = (dir: string, tail = '') => Buffer.concat([Buffer.from(`${dir}/q`), Buffer.from([0xff]), Buffer.from(`r${tail}`)]);
  fs.mkdirSync(path.join(d, 'sub'));
  fs.writeFileSync(bad(path.join(d, 'sub')), 'x');
  fs.mkdirSync(bad(path.join(d, 'sub'), '.d'));
  fs.writeFileSync(Buffer.concat([bad(path.join(d, 'sub'), '.d'), Buffer.from('/in')]), 'inner');
  fs.symlinkSync(bad('.'), path.join(d, 'sub', 'link'));
  const hex = async (args: string[]) => {
    const r = await cli(['run', '--rm', ...args], { root, env: { TSBUILD_PULL: 'never' } });
    assert.is(r.code, 0, r.stderr);
    return r.stdout;
  };
  const b = await cli(['-q', '-t', 'bytes', d], { root });
  assert.is(b.code, 0, b.stderr);
  // The shell's glob hands over the names' bytes as they are (busybox ls would print '?').
  const names = (await hex(['bytes', 'sh', '-c', 'for f in /c/* /m/*; do printf "%s\\n" "$f"; done | od -An -tx1 | tr -d " \\n"'])).trim();
  assert.is(names, Buffer.concat([Buffer.from('/c/link\n/c/q'), Buffer.from([0xff]), Buffer.from('r\n/c/q'), Buffer.from([0xff]), Buffer.from('r.d\n/m/a'), Buffer.from([0xff]), Buffer.from('b\n')]).toString('hex'));
  assert.is(await hex(['bytes', 'sh', '-c', 'cat /c/q*r.d/in; readlink /c/link | od -An -tx1 | tr -d " \\n"']), 'inner2e2f71ff720a');
  const again = await cli(['--progress', 'plain', '-t', 'bytes', d], { root });
  assert.is(again.code, 0, again.stderr);
  assert.not.match(again.stderr, /cache miss/, 'a rebuild hits: the bytes are the key');
  fs.writeFileSync(bad(path.join(d, 'sub')), 'y');
  const changed = await cli(['--progress', 'plain', '-t', 'bytes', d], { root });
  assert.is(changed.code, 0, changed.stderr);
  assert.match(changed.stderr, /cache miss: 1 file changed: sub\/q\\xffr\n/);
  // A pattern cannot name such a file (it would have to be spelled in the Dockerfile): said plainly.
  const g = ctx('FROM scratch AS c\nCOPY sub/q* /c/\n');
  fs.mkdirSync(path.join(g, 'sub'));
  fs.writeFileSync(bad(path.join(g, 'sub')), 'x');
  const r = await cli(['--target', 'c', g], { root });
  assert.is(r.code, 1);
  assert.match(r.stderr, /the file name "q\uFFFDr" in sub is not UTF-8, so a source pattern cannot name it: copy the directory that holds it/);
});

it('a Dockerfile syntax error names the file and the line', async () => {
  const d = ctx('COPY --nope a /b\n');
  const r = await cli(['--progress', 'plain', d], { root });
  assert.is(r.code, 1);
  assert.match(r.stderr, /Dockerfile:4: unknown flag: nope/);
  const e = tmpdir('tsb-empty-');
  dirs.push(e);
  fs.writeFileSync(path.join(e, 'Dockerfile'), '# nothing\n');
  const r2 = await cli([e], { root });
  assert.match(r2.stderr, /Dockerfile(:\d+)?: file with no instructions/);
});

it('an unknown image or stage says which', async () => {
  const d = ctx('FROM nosuchimage:1 AS other\nRUN true\n');
  let r = await cli(['--progress', 'plain', '--target', 'other', d], { root });
  assert.is(r.code, 1);
  assert.match(r.stderr, /Dockerfile:4: FROM nosuchimage:1: image "nosuchimage:1" not found in the local store/);
  r = await cli(['--progress', 'plain', '--target', 'nope', d], { root });
  assert.match(r.stderr, /target stage "nope" could not be found \(stages: base, other\)/);
  // A broken stage the target does not need does not fail the build.
  r = await cli(['--progress', 'plain', '--target', 'base', d], { root });
  assert.is(r.code, 0, r.stderr);
});

it('a failing RUN shows the command, its exit code and its last output, and exits non-zero', async () => {
  const d = ctx('RUN echo line-one; echo line-two >&2; exit 42\n');
  const r = await cli(['--progress', 'plain', d], { root });
  assert.is(r.code, 1);
  assert.match(r.stderr, /process "\/bin\/sh -c echo line-one; echo line-two >&2; exit 42" did not complete successfully: exit code: 42/);
  assert.match(r.stderr, /last lines of output ---\nline-one\nline-two/);
  assert.match(r.stderr, /at Dockerfile line 4 \(stage base\)/);
  const snaps = JSON.parse(fs.readFileSync(path.join(root, 'snapshots/overlayfs/metadata.json'), 'utf8')) as { snapshots: Record<string, { kind: string }> };
  assert.equal(Object.values(snaps.snapshots).filter((v) => v.kind !== 'committed'), []);
});

it('-q prints only the image id; --iidfile writes it; images, inspect and rmi', async () => {
  const d = ctx('LABEL a=b\nCMD ["true"]\n');
  const iid = path.join(d, 'iid');
  const r = await cli(['-q', '-t', 'quiet:1', '-t', 'quiet:2', '--iidfile', iid, d], { root });
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, /^sha256:[a-f0-9]{64}\n$/);
  assert.is(fs.readFileSync(iid, 'utf8'), r.stdout.trim());
  const imgs = await cli(['images'], { root });
  assert.match(imgs.stdout, /quiet +1 +[a-f0-9]{12}/);
  assert.match(imgs.stdout, /quiet +2 +[a-f0-9]{12}/);
  const ins = JSON.parse((await cli(['inspect', 'quiet:1'], { root })).stdout) as { Id: string; Config: { Labels: Record<string, string>; Cmd: string[] } }[];
  assert.is(ins[0]!.Id, r.stdout.trim());
  assert.equal(ins[0]!.Config.Labels, { a: 'b' });
  assert.equal(ins[0]!.Config.Cmd, ['true']);
  const blobsBefore = fs.readdirSync(path.join(root, 'blobs/sha256')).length;
  assert.is((await cli(['rmi', 'quiet:1'], { root })).code, 0);
  assert.is((await cli(['run', '--rm', 'quiet:2'], { root })).code, 0, 'the other name still works');
  const rmi = await cli(['rmi', 'quiet:2'], { root });
  assert.match(rmi.stdout, /Untagged: quiet:2\nDeleted: sha256:/);
  assert.ok(fs.readdirSync(path.join(root, 'blobs/sha256')).length < blobsBefore, 'blobs no image needs are removed');
  const gone = await cli(['run', '--rm', 'quiet:2'], { root });
  assert.is(gone.code, 125);
  assert.match(gone.stderr, /image "quiet:2" not found/);
});

it('run: -e, -w, -u, -t (a real pty), -i, --name, ps -a and rm', async () => {
  const d = ctx('RUN echo "app:x:1000:1000::/home/app:/bin/sh" >> /etc/passwd && echo "app:x:1000:" >> /etc/group\nENV FROM_IMAGE=yes\nWORKDIR /srv\n');
  assert.is((await cli(['-t', 'runner', '--progress', 'plain', d], { root })).code, 0);
  let r = await cli(['run', '--rm', '-e', 'A=1', '-w', '/tmp', '-u', 'app', 'runner', 'sh', '-c', 'echo $A $FROM_IMAGE $(pwd) $(id -u):$(id -g) $HOME'], { root });
  assert.is(r.stdout, '1 yes /tmp 1000:1000 /home/app\n', r.stderr);
  r = await cli(['run', '--rm', 'runner', 'pwd'], { root });
  assert.is(r.stdout, '/srv\n', 'WORKDIR is the default cwd');
  r = await cli(['run', '--rm', '-t', 'runner', 'sh', '-c', 'test -t 0 && test -t 1 && echo is-a-tty; tty'], { root });
  assert.is(r.stdout.replace(/\r/g, ''), 'is-a-tty\n/dev/pts/0\n', 'the pty comes from the container\'s own devpts');
  r = await cli(['run', '--rm', 'runner', 'sh', '-c', 'test -t 1 || echo not-a-tty'], { root });
  assert.is(r.stdout, 'not-a-tty\n');
  r = await cli(['run', '--rm', '-i', 'runner', 'sh', '-c', 'tr a-z A-Z'], { root, input: 'piped in\n' });
  assert.is(r.stdout, 'PIPED IN\n');
  r = await cli(['run', '--name', 'keeper', 'runner', 'sh', '-c', 'exit 4'], { root });
  assert.is(r.code, 4);
  const ps = await cli(['ps', '-a'], { root });
  assert.match(ps.stdout, /Exited \(4\) (\d+ seconds?|Less than a second) ago +keeper/);
  const dup = await cli(['run', '--name', 'keeper', 'runner', 'true'], { root });
  assert.is(dup.code, 125);
  assert.match(dup.stderr, /name "keeper" is already in use/);
  assert.is((await cli(['rmi', 'runner'], { root })).code, 1, 'an image a container uses is not removed');
  assert.is((await cli(['rm', 'keeper'], { root })).code, 0);
  assert.not.match((await cli(['ps', '-a'], { root })).stdout, /keeper/);
});

it('run: a missing command is exit 127 with a clear message; no CMD is a usage error', async () => {
  const d = ctx('');
  assert.is((await cli(['-t', 'nocmd', d], { root })).code, 0);
  let r = await cli(['run', '--rm', 'nocmd', 'no-such-binary'], { root });
  assert.is(r.code, 127);
  assert.match(r.stderr, /executable file not found: "no-such-binary"/);
  r = await cli(['run', '--rm', 'nocmd'], { root });
  assert.is(r.code, 125, 'a bad run command line is 125, as in Docker');
  assert.match(r.stderr, /has no CMD or ENTRYPOINT/);
});

it('run: SIGTERM is forwarded to the container; --init reaps zombies', async () => {
  const d = ctx('');
  assert.is((await cli(['-t', 'sig', d], { root })).code, 0);
  const child = cliSpawn(['run', '--rm', 'sig', 'sh', '-c', 'trap "echo got-term; exit 7" TERM; echo ready; while true; do sleep 0.1; done'], root);
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  const deadline = Date.now() + 20_000;
  while (!out.includes('ready') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  const exit = new Promise<number | null>((r) => child.on('close', (c) => r(c)));
  child.kill('SIGTERM');
  assert.is(await exit, 7);
  assert.match(out, /got-term/);
  const r = await cli(['run', '--rm', '--init', 'sig', 'sh', '-c', '(sleep 0.2 &); sleep 1; echo "pid=$$"; ps -o stat,comm | grep -c "^Z" || true'], { root });
  assert.match(r.stdout, /pid=(?!1\n)\d+\n0\n/, `with --init the command is not PID 1 and no zombie remains: ${r.stdout}`);
});

itUnless(programUnavailable('skopeo'), 'the store is an OCI layout that skopeo can read', async () => {
  const d = ctx('CMD ["sh"]\n');
  assert.is((await cli(['-t', 'layout', d], { root })).code, 0);
  const r = spawnSync('skopeo', ['inspect', `oci:${root}:layout`], { encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout) as { Layers: string[]; Architecture: string };
  assert.is(j.Layers.length, 2);
});

it('bad flags are usage errors with exit code 2 (125 for run, as Docker)', async () => {
  let r = await cli(['--nope', '.'], { root });
  assert.is(r.code, 2);
  assert.match(r.stderr, /unknown flag: --nope/);
  r = await cli(['run'], { root });
  assert.is(r.code, 125);
  r = await cli(['-t', 'UPPER', '.'], { root });
  assert.is(r.code, 2);
  assert.match(r.stderr, /invalid image name "UPPER:latest"/);
});

it('the conformance .dockerignore scenarios build as BuildKit builds them', async () => {
  const base = path.join(conformanceDir, 'dockerignore');
  const d = ctx('');
  assert.is((await cli(['-t', 'busybox', d], { root })).code, 0, 'a local busybox image for FROM busybox');
  const basic = tmpdir('tsb-di-');
  dirs.push(basic);
  fs.cpSync(path.join(base, 'basic'), basic, { recursive: true });
  for (const [f, c] of Object.entries({ foo: 'foo-contents', bar: 'bar-contents', baz: 'baz-contents', bay: 'bay-contents' })) fs.writeFileSync(path.join(basic, f), c);
  let r = await cli(['-t', 'di-basic', '--progress', 'plain', basic], { root });
  assert.is(r.code, 0, r.stderr);
  const info = JSON.parse((await cli(['inspect', 'di-basic'], { root })).stdout)[0] as { Manifest: { layers: { digest: string }[] } };
  const t = spawnSync('tar', ['tf', path.join(root, 'blobs/sha256', info.Manifest.layers[0]!.digest.slice(7))], { encoding: 'utf8' });
  assert.equal(t.stdout.trim().split('\n').sort(), ['bay', 'foo']);
  const invalid = tmpdir('tsb-di-');
  dirs.push(invalid);
  fs.cpSync(path.join(base, 'invalid'), invalid, { recursive: true });
  r = await cli(['--progress', 'plain', invalid], { root, timeoutMs: 30_000 });
  assert.is(r.code, 2);
  assert.match(r.stderr, /\.dockerignore: illegal exclusion pattern/);
  const per = tmpdir('tsb-di-');
  dirs.push(per);
  fs.cpSync(path.join(base, 'per-dockerfile'), per, { recursive: true });
  fs.writeFileSync(path.join(per, 'foo'), 'contents0');
  fs.writeFileSync(path.join(per, 'bar'), 'contents0');
  fs.writeFileSync(path.join(per, '.dockerignore'), 'foo\nbar\n');
  r = await cli(['--progress', 'plain', '-f', path.join(per, 'Dockerfile'), per], { root });
  assert.is(r.code, 0, r.stderr);
  r = await cli(['--progress', 'plain', '-f', path.join(per, 'Dockerfile2'), per], { root });
  assert.is(r.code, 0, r.stderr);
});

it('tsbuild parse prints the BuildKit dump for every conformance file', async () => {
  const dir = path.join(conformanceDir, 'testfiles');
  for (const c of fs.readdirSync(dir)) {
    const r = await cli(['parse', '-f', path.join(dir, c, 'Dockerfile')], { root });
    assert.is(r.stdout, fs.readFileSync(path.join(dir, c, 'result'), 'utf8'), c);
  }
  const j = await cli(['parse', '--format', 'json', '-f', path.join(repoRoot, 'examples/hello/Dockerfile')], { root });
  const parsed = JSON.parse(j.stdout) as { stages: { name: string; instructions: { kind: string; range: { startLine: number } }[] }[] };
  assert.equal(parsed.stages.map((s) => s.name), ['base', 'build', 'final']);
  assert.is(parsed.stages[1]!.instructions[0]!.kind, 'workdir');
  const bad = await cli(['parse', '-f', path.join(conformanceDir, 'testfiles-negative/env_no_value/Dockerfile')], { root });
  assert.is(bad.code, 1);
  assert.match(bad.stderr, /Dockerfile:\d+: ENV must have two arguments/);
});

test.run();
