/** RUN --mount through the CLI: cache, bind, tmpfs, secret and ssh mounts. */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cli, programUnavailable, removeStore, repoRoot, tmpdir, e2eHarness } from '../testutil/index.js';

const { it, itUnless, skipPart, root, dirs, ctx } = e2eHarness('mnt');
const keygenWhy = programUnavailable('ssh-keygen', ['-?'], 'openssh-client');
skipPart(keygenWhy, 'ssh: a key file is served by an agent started for the build');
const build = async (d: string, args: string[] = []) => {
  const r = await cli(['--progress', 'plain', ...args, d], { root });
  assert.is(r.code, 0, r.stderr);
  return r.stderr;
};
const runIn = async (image: string, script: string) => (await cli(['run', '--rm', image, 'sh', '-c', script], { root })).stdout;
/** Every file name (and, with `contents`, all bytes) in every layer of an image. */
function layerText(image: string, contents = true): string {
  const info = JSON.parse(spawnSync(process.execPath, [path.join(repoRoot, 'bin/tsbuild.js'), 'inspect', image], { env: { ...process.env, TSBUILD_ROOT: root }, encoding: 'utf8' }).stdout)[0] as { Manifest: { layers: { digest: string }[] } };
  return info.Manifest.layers.map((l) => {
    const f = path.join(root, 'blobs/sha256', l.digest.slice(7));
    return spawnSync('tar', ['tvf', f], { encoding: 'utf8' }).stdout + (contents ? fs.readFileSync(f).toString('latin1') : '');
  }).join('\n');
}

it('a cache mount keeps files between builds and is absent from the image', async () => {
  const d = ctx('FROM base AS c\nARG N=1\nRUN --mount=type=cache,target=/root/.cache,id=pip echo "run $N" >> /root/.cache/log && cat /root/.cache/log > /seen\n');
  await build(d, ['-t', 'cm', '--build-arg', 'N=1']);
  await build(d, ['-t', 'cm', '--build-arg', 'N=2']);
  assert.is(await runIn('cm', 'cat /seen; ls -A /root 2>/dev/null | wc -l'), 'run 1\nrun 2\n0\n');
  assert.not.match(layerText('cm', false), /\.cache/);
  const ls = await cli(['cache', 'ls'], { root });
  assert.is(ls.code, 0);
});

it('sharing=locked serialises two concurrent builds; private gives each its own', async () => {
  const step = 'RUN --mount=type=cache,target=/c,id=lockme,sharing=locked echo "$(cut -d" " -f1 /proc/uptime) start" >> /c/log; sleep 1; echo "$(cut -d" " -f1 /proc/uptime) end" >> /c/log';
  const d = ctx(`FROM base AS l\n${step}\n`);
  const [a, b] = await Promise.all([cli(['--no-cache', '--progress', 'plain', d], { root }), cli(['--no-cache', '--progress', 'plain', d], { root })]);
  assert.is(a.code, 0, a.stderr);
  assert.is(b.code, 0, b.stderr);
  const reader = ctx('FROM base AS r\nRUN --mount=type=cache,target=/c,id=lockme cat /c/log > /log\n');
  await build(reader, ['-t', 'lockread', '--no-cache']);
  const events = (await runIn('lockread', 'cat /log')).trim().split('\n').map((l) => l.split(' ')[1]);
  assert.equal(events.slice(-4), ['start', 'end', 'start', 'end'], `no interleaving: ${events}`);
});

it('bind mounts: the context by default, another stage with from=, rw writes vanish', async () => {
  const d = ctx(
    'RUN mkdir /made && echo from-stage > /made/x\nFROM base AS b\n' +
      'RUN --mount=target=/ctx cat /ctx/data.txt > /got-ctx\n' +
      'RUN --mount=type=bind,from=base,source=/made,target=/m cat /m/x > /got-stage\n' +
      'RUN --mount=type=bind,target=/w,rw echo scribble > /w/new && cat /w/new > /got-rw\n' +
      'RUN --mount=type=bind,target=/ro touch /ro/nope 2>/dev/null && echo writable > /ro-result || echo read-only > /ro-result\n',
    { 'data.txt': 'context data\n' },
  );
  await build(d, ['-t', 'binds', '--target', 'b']);
  assert.is(await runIn('binds', 'cat /got-ctx /got-stage /got-rw /ro-result; ls /w /ctx /m 2>&1 | grep -c "No such file"'), 'context data\nfrom-stage\nscribble\nread-only\n3\n');
  assert.not.ok(fs.existsSync(path.join(d, 'new')), 'rw writes never reach the context');
  fs.writeFileSync(path.join(d, 'data.txt'), 'changed\n');
  const log = await build(d, ['-t', 'binds', '--target', 'b']);
  assert.match(log, /cache miss: 1 file changed: data.txt/, 'bound context files are part of the key');
});

it('tmpfs mounts are empty, writable, sized, and gone afterwards', async () => {
  const d = ctx('FROM base AS t\nRUN --mount=type=tmpfs,target=/t,size=1m echo hi > /t/f && cat /t/f > /got && (dd if=/dev/zero of=/t/big bs=1k count=4096 2>/dev/null && echo fit > /size || echo full > /size)\n');
  await build(d, ['-t', 'tmpfs', '--target', 't']);
  assert.is(await runIn('tmpfs', 'cat /got /size; ls -A /t 2>/dev/null | wc -l'), 'hi\nfull\n0\n');
});

it('secrets: readable in RUN, never in layers, config or history; env= only in that RUN; required is enforced', async () => {
  const secretFile = path.join(tmpdir('tsb-secret-'), 'token');
  dirs.push(path.dirname(secretFile));
  const value = 'S3CR3T-VALUE-' + Math.random().toString(36).slice(2);
  fs.writeFileSync(secretFile, value);
  const d = ctx(
    'FROM base AS s\nRUN --mount=type=secret,id=tok test "$(sha256sum < /run/secrets/tok | cut -d" " -f1)" = "' + '$EXPECT' + '" && echo file-ok > /file-ok\n' +
      'RUN --mount=type=secret,id=tok,env=TOKEN,target=/custom test -n "$TOKEN" && test -f /custom && echo env-ok > /env-ok\nRUN test -z "$TOKEN" && echo gone > /env-gone\n',
  );
  const hash = (await import('node:crypto')).createHash('sha256').update(value).digest('hex');
  fs.writeFileSync(path.join(d, 'Dockerfile'), fs.readFileSync(path.join(d, 'Dockerfile'), 'utf8').replace('$EXPECT', hash));
  await build(d, ['-t', 'secrets', '--target', 's', '--secret', `id=tok,src=${secretFile}`]);
  assert.is(await runIn('secrets', 'cat /file-ok /env-ok /env-gone; ls /run/secrets 2>&1 | grep -c "No such"'), 'file-ok\nenv-ok\ngone\n1\n');
  assert.not.ok(layerText('secrets').includes(value), 'the value is in no layer');
  const ins = (await cli(['inspect', 'secrets'], { root })).stdout;
  assert.not.ok(ins.includes(value), 'nor in the config or history');
  const ex = await cli(['--progress', 'plain', '--explain', 'json', '--target', 's', '--secret', `id=tok,src=${secretFile}`, d], { root });
  assert.not.ok(ex.stdout.includes(value) || ex.stderr.includes(value), 'nor in --explain output or logs');
  const missing = ctx('FROM base AS m\nRUN --mount=type=secret,id=needed,required=true true\n');
  const r = await cli(['--progress', 'plain', '--target', 'm', missing], { root });
  assert.is(r.code, 1);
  assert.match(r.stderr, /secret needed is required but was not provided: pass --secret id=needed,src=FILE/);
  const optional = ctx('FROM base AS o\nRUN --mount=type=secret,id=maybe test ! -e /run/secrets/maybe\n');
  await build(optional, ['--target', 'o']);
});

itUnless(programUnavailable('cc', ['--version'], 'gcc libc6-dev'), 'ssh: the agent socket is reachable from RUN through SSH_AUTH_SOCK', async () => {
  const src = path.join(repoRoot, 'testdata/sockcat.c');
  const d = ctx('FROM base AS s\nCOPY sockcat /sockcat\nRUN --mount=type=ssh /sockcat > /reply\nRUN --mount=type=ssh,id=other,target=/agent,mode=0660,uid=123,gid=456 stat -c "%a %u %g" /agent > /perm && SSH_AUTH_SOCK=/agent /sockcat >> /reply\n');
  const cc = spawnSync('cc', ['-static', '-O2', '-o', path.join(d, 'sockcat'), src], { encoding: 'utf8' });
  assert.is(cc.status, 0, `building the static test client: ${cc.stderr}`);
  const sockDir = tmpdir('tsb-agent-');
  dirs.push(sockDir);
  const sock = path.join(sockDir, 'agent.sock');
  let connections = 0;
  const server = net.createServer((c) => {
    connections++;
    c.on('data', () => c.end('pong'));
  });
  await new Promise<void>((r) => server.listen(sock, r));
  try {
    const modeBefore = fs.statSync(sock).mode;
    await build(d, ['-t', 'ssh', '--target', 's', '--ssh', `default=${sock}`, '--ssh', `other=${sock}`]);
    assert.is(connections, 2);
    assert.is(await runIn('ssh', 'cat /reply /perm'), 'pong\npong\n660 123 456\n');
    assert.is(fs.statSync(sock).mode, modeBefore, 'the user\'s agent socket is not changed');
    const keyDir = tmpdir('tsb-key-');
    dirs.push(keyDir);
    if (!keygenWhy) {
      const kg = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(keyDir, 'id')], { encoding: 'utf8' });
      assert.is(kg.status, 0, kg.stderr);
      const k = ctx('FROM base AS k\nCOPY sockcat /sockcat\nRUN --mount=type=ssh /sockcat ids > /ids\n');
      fs.copyFileSync(path.join(d, 'sockcat'), path.join(k, 'sockcat'));
      await build(k, ['-t', 'sshkey', '--target', 'k', '--ssh', `default=${path.join(keyDir, 'id')}`]);
      assert.is(await runIn('sshkey', 'cat /ids'), 'identities 1\n', 'a key file is served by an agent started for the build');
      assert.equal(fs.readdirSync(path.join(root, 'tmp')).filter((e) => e.startsWith('agent-')), [], 'the agent is gone after the build');
    }
    const opt = ctx('FROM base AS o\nRUN --mount=type=ssh test -z "$SSH_AUTH_SOCK"\nRUN --mount=type=ssh,required=true true\n');
    const r = await cli(['--progress', 'plain', '--target', 'o', opt], { root });
    assert.is(r.code, 1);
    assert.match(r.stderr, /ssh agent "default" is required but was not provided: pass --ssh default/);
    assert.match(r.stderr, /\[o 2\/3\] RUN --mount=type=ssh test -z "\$SSH_AUTH_SOCK"\n#\d+ (cache miss: .*\n#\d+ )?DONE/, 'without required=true the step runs without an agent');
  } finally {
    server.close();
  }
});

it('bad mount options are errors naming the line', async () => {
  for (const [m, re] of [
    ['type=cache', /mount target is required for cache mounts/],
    ['type=tmpfs,target=/x,mode=0700', /mode is not allowed for tmpfs mounts/],
    ['type=bind,target=/x,sharing=locked', /sharing is not allowed for bind mounts/],
    ['type=nope,target=/x', /unsupported mount type "nope"/],
    ['target=/x,tagret=/y', /unexpected key 'tagret'.*did you mean target/],
    ['type=bind,target=/', /invalid mount target "\/"/],
  ] as const) {
    const d = ctx(`FROM base AS e\nRUN --mount=${m} true\n`);
    const r = await cli(['--progress', 'plain', '--target', 'e', d], { root });
    assert.is(r.code, 1, m);
    assert.match(r.stderr, re, m);
    assert.match(r.stderr, /Dockerfile:5:/, m);
  }
});

it('cache mounts: ls --mounts, export to a directory and import into an empty store, prune', async () => {
  const d = ctx('FROM base AS e\nARG R=1\nRUN --mount=type=cache,target=/var/cache/apt,id=apt echo "$R" >> /var/cache/apt/runs && mkdir -p /var/cache/apt/sub && echo deep > /var/cache/apt/sub/f\n');
  await build(d, ['--build-arg', 'R=first']);
  const ls = await cli(['cache', 'ls', '--mounts'], { root });
  assert.match(ls.stdout, /\napt +\d/);
  const out = tmpdir('tsb-mounts-export-');
  dirs.push(out);
  assert.is((await cli(['cache', 'export-mounts', '--output', out], { root })).code, 0);
  const other = tmpdir('tsb-mnt-store2-');
  try {
    const imp = await cli(['cache', 'import-mounts', '--input', out], { root: other });
    assert.is(imp.code, 0, imp.stderr);
    const check = ctx('FROM base AS c\nRUN --mount=type=cache,target=/c,id=apt cat /c/runs /c/sub/f > /seen\n');
    const r = await cli(['-t', 'imported', '--progress', 'plain', check], { root: other });
    assert.is(r.code, 0, r.stderr);
    assert.is((await cli(['run', '--rm', 'imported', 'cat', '/seen'], { root: other })).stdout, 'first\ndeep\n');
  } finally {
    removeStore(other);
  }
  assert.is((await cli(['prune', '--all'], { root })).code, 0);
  assert.not.match((await cli(['cache', 'ls', '--mounts'], { root })).stdout, /\napt/);
});

it('mount rows: cache ro, new-dir mode/uid/gid, id sharing and BUILDKIT_CACHE_MOUNT_NS, variables in options, secret source=, restrictions', async () => {
  const d = ctx(
    'FROM base AS r\nARG T=/c1\nRUN --mount=type=cache,target=$T,id=shared-id,mode=0750,uid=11,gid=22 stat -c "%a %u %g" /c1 > /newdir && echo hi > /c1/f\n' +
      'RUN --mount=type=cache,target=/c2,id=shared-id cat /c2/f > /shared\n' +
      'RUN --mount=type=cache,target=/c3,id=shared-id,ro (touch /c3/x 2>/dev/null && echo writable || echo read-only) > /ro\n' +
      'RUN --mount=type=secret,source=tok cat /run/secrets/tok > /dev/null && echo src-ok > /src-ok\n',
  );
  const secret = path.join(d, 'tok.txt');
  fs.writeFileSync(secret, 'v');
  await build(d, ['-t', 'rows-m', '--target', 'r', '--secret', `id=tok,src=${secret}`]);
  assert.is(await runIn('rows-m', 'cat /newdir /shared /ro /src-ok'), '750 11 22\nhi\nread-only\nsrc-ok\n');
  const ns = ctx('FROM base AS n\nRUN --mount=type=cache,target=/c,id=shared-id ls /c | wc -l > /count\n');
  await build(ns, ['-t', 'rows-ns', '--target', 'n', '--build-arg', 'BUILDKIT_CACHE_MOUNT_NS=other']);
  assert.is(await runIn('rows-ns', 'cat /count'), '0\n', 'a namespaced id is a different cache');
  for (const [m, re] of [
    ['type=secret,id=a,from=base', /from is not allowed for secret mounts/],
    ['type=secret,id=a,source=b', /both id and source are set/],
    ['type=cache,target=/x,sharing=bogus', /unsupported sharing value "bogus"/],
  ] as const) {
    const e = ctx(`FROM base AS e\nRUN --mount=${m} true\n`);
    const r = await cli(['--progress', 'plain', '--target', 'e', e], { root });
    assert.match(r.stderr, re, m);
  }
});

test.run();
