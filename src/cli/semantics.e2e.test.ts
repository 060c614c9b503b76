/**
 * Build semantics through the CLI (issue: every instruction, multi-stage DAG, --target, build args):
 * each case builds a small Dockerfile and checks the image config (inspect) or files (run).
 */
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cli, tmpdir, e2eHarness } from '../testutil/index.js';

const { it, root, dirs, ctx } = e2eHarness('sem');

async function build(d: string, args: string[] = [], env?: Record<string, string>) {
  const r = await cli(['--progress', 'plain', ...args, d], { root, env });
  assert.is(r.code, 0, r.stderr);
  return r;
}
async function runIn(image: string, script: string): Promise<string> {
  const r = await cli(['run', '--rm', '--entrypoint=', image, 'sh', '-c', script], { root });
  assert.is(r.code, 0, r.stderr);
  return r.stdout;
}
interface Inspect { Id: string; Digest: string; Author?: string; Config: Record<string, unknown>; History: { created_by: string; empty_layer?: boolean }[]; RootFS: { Layers: string[] } }
async function inspect(image: string): Promise<Inspect> {
  return (JSON.parse((await cli(['inspect', image], { root })).stdout) as Inspect[])[0]!;
}

it('independent stages run at the same time; --jobs 1 runs them one after the other', async () => {
  const stage = (n: string) => `FROM base AS ${n}\nRUN echo ${n}; cut -d" " -f1 /proc/uptime > /start; sleep 2; cut -d" " -f1 /proc/uptime > /end\n`;
  const d = ctx(stage('a') + stage('b') + 'FROM base AS final\nCOPY --from=a /start /a.start\nCOPY --from=a /end /a.end\nCOPY --from=b /start /b.start\nCOPY --from=b /end /b.end\n');
  const spans = async (tag: string) => {
    const out = await runIn(tag, 'cat /a.start /a.end /b.start /b.end');
    const [as, ae, bs, be] = out.trim().split('\n').map(Number) as [number, number, number, number];
    return { as, ae, bs, be };
  };
  await build(d, ['-t', 'par', '--jobs', '4']);
  const p = await spans('par');
  assert.ok(p.as < p.be && p.bs < p.ae, `the two 2 s stages overlap: ${JSON.stringify(p)}`);
  await build(d, ['-t', 'seq', '--jobs', '1', '--no-cache']);
  const q = await spans('seq');
  assert.ok(q.ae <= q.bs || q.be <= q.as, `with --jobs 1 they do not overlap: ${JSON.stringify(q)}`);
});

it('config instructions: every field BuildKit sets', async () => {
  const d = ctx(
    'FROM base AS cfg\nARG PORT=8080\nENV A=1 B="two words"\nENV abc=hello\nENV abc=bye def=$abc\nLABEL "com.x"="y z" other=$A\nEXPOSE 80/UDP 90-91 $PORT\n' +
      'VOLUME ["/data"]\nVOLUME /v1 /v2\nUSER 1000:1000\nWORKDIR /w\nWORKDIR sub\nSTOPSIGNAL SIGKILL\nSHELL ["/bin/sh", "-ec"]\n' +
      'HEALTHCHECK --interval=5s --timeout=3s --start-period=1s --start-interval=2s --retries=4 CMD wget -q localhost\n' +
      'ONBUILD RUN echo child\nMAINTAINER Someone <s@x>\nENTRYPOINT ["/bin/sh"]\nCMD echo hi\n',
  );
  await build(d, ['-t', 'cfg', '--target', 'cfg']);
  const i = await inspect('cfg');
  const c = i.Config as { Env: string[]; Labels: Record<string, string>; ExposedPorts: object; Volumes: object; User: string; WorkingDir: string; StopSignal: string; Shell: string[]; Healthcheck: object; OnBuild: string[]; Entrypoint: string[]; Cmd: string[] };
  for (const e of ['A=1', 'B=two words', 'abc=bye', 'def=hello']) assert.ok(c.Env.includes(e), e);
  assert.ok(c.Env.some((e) => e.startsWith('PATH=')), 'FROM scratch gets a default PATH');
  assert.equal(c.Labels, { 'com.x': 'y z', other: '1' });
  assert.equal(Object.keys(c.ExposedPorts).sort(), ['80/udp', '8080/tcp', '90/tcp', '91/tcp']);
  assert.equal(Object.keys(c.Volumes).sort(), ['/data', '/v1', '/v2']);
  assert.is(c.User, '1000:1000');
  assert.is(c.WorkingDir, '/w/sub');
  assert.is(c.StopSignal, 'SIGKILL');
  assert.equal(c.Shell, ['/bin/sh', '-ec']);
  assert.equal(c.Healthcheck, { Test: ['CMD-SHELL', 'wget -q localhost'], Interval: 5e9, Timeout: 3e9, StartPeriod: 1e9, StartInterval: 2e9, Retries: 4 });
  assert.equal(c.OnBuild, ['RUN echo child']);
  assert.equal(c.Entrypoint, ['/bin/sh']);
  assert.equal(c.Cmd, ['/bin/sh', '-ec', 'echo hi']);
  assert.is(i.Author, 'Someone <s@x>');
  assert.ok(i.History.some((h) => h.created_by === 'ENV A=1 B=two words' && h.empty_layer));
  assert.is(await runIn('cfg', 'stat -c %u:%g /w/sub'), '1000:1000\n', 'WORKDIR is owned by the USER');
});

it('ENTRYPOINT resets an inherited CMD; ONBUILD triggers run in the child only', async () => {
  const d = ctx('CMD ["inherited"]\nONBUILD RUN echo triggered > /trigger\nFROM base AS child\nENTRYPOINT ["/bin/echo"]\n');
  await build(d, ['-t', 'ob-parent', '--target', 'base']);
  await build(d, ['-t', 'ob-child', '--target', 'child']);
  const ci = await inspect('ob-child');
  assert.is((ci.Config as { Cmd: unknown }).Cmd, null);
  assert.is(await runIn('ob-child', 'cat /trigger'), 'triggered\n');
  assert.is((ci.Config as { OnBuild: unknown }).OnBuild, null, 'triggers are not inherited by grandchildren');
  const img = ctx('');
  fs.writeFileSync(path.join(img, 'Dockerfile'), 'FROM ob-parent\nRUN test -f /trigger\nFROM ob-parent AS second\n');
  await build(img, ['-t', 'ob-from-image', '--target', 'second']);
  assert.is(await runIn('ob-from-image', 'cat /trigger'), 'triggered\n', 'a local image with ONBUILD runs it when used in FROM');
});

it('ARG: global in FROM, defaults, --build-arg overrides, RUN sees ARGs, unused build-arg warning, platform args', async () => {
  const d = ctx('FROM base AS a\nARG V\nARG W=dflt\nRUN echo "$V $W $TARGETARCH" > /args\nARG TARGETARCH\nRUN echo "$TARGETARCH" > /arch\n');
  fs.writeFileSync(path.join(d, 'Dockerfile'), 'ARG V=one\nARG BASE=base\n' + fs.readFileSync(path.join(d, 'Dockerfile'), 'utf8').replace('FROM base AS a', 'FROM ${BASE} AS a'));
  const r = await build(d, ['-t', 'args', '--build-arg', 'W=over', '--build-arg', 'UNUSED=1']);
  assert.match(r.stderr, /build-args \[UNUSED\] were not consumed/);
  assert.is(await runIn('args', 'cat /args'), 'one over \n', 'TARGETARCH is only visible once declared');
  assert.match(await runIn('args', 'cat /arch'), /^(amd64|arm64|arm|386|ppc64le|s390x|riscv64)\n$/);
  const i = await inspect('args');
  assert.not.ok((i.Config as { Env: string[] }).Env.some((e) => e.startsWith('W=')), 'ARGs are not persisted in the config');
});

it('FROM --platform: this machine\'s platform builds; one that nothing here can run is refused clearly', async () => {
  const ok = ctx('FROM --platform=$BUILDPLATFORM base AS p\nRUN true\n');
  await build(ok, ['--target', 'p']);
  const bad = ctx('FROM --platform=linux/sparc64 scratch AS p\nRUN true\n');
  const r = await cli(['--progress', 'plain', '--target', 'p', bad], { root });
  assert.is(r.code, 1);
  assert.match(r.stderr, /platform linux\/sparc64: tsbuild cannot run its programs on this linux\/\w+ machine \(no qemu-user emulation is known for it\); build it on a linux\/sparc64 machine/);
  const empty = ctx('FROM --platform=$NOPE scratch AS p\nRUN true\n');
  const e = await cli(['--progress', 'plain', '--target', 'p', empty], { root });
  assert.match(e.stderr, /the platform is empty after expansion/);
});

it('COPY: wildcards, directory contents, trailing slashes, --chown by name and id, --chmod octal and symbolic, --exclude, --parents', async () => {
  const d = ctx(
    'RUN echo "app:x:1234:2345::/home/app:/bin/sh" >> /etc/passwd && echo "grp:x:3456:" >> /etc/group\nFROM base AS c\n' +
      'COPY dir /into/\nCOPY *.txt /txts/\nCOPY one.txt /renamed\nCOPY --chown=app:grp one.txt /owned-names\nCOPY --chown=42 one.txt /owned-id\n' +
      // BuildKit (dockerd 20.10): a name alone takes its passwd group, a number alone gid = uid, a name
      // the image lacks is 0 with the build going on (a COPY before the adduser).
      'COPY --chown=app one.txt /owned-user\nCOPY --chown=1234 one.txt /owned-num\nCOPY --chown=ghost:ghost one.txt /owned-ghost\nCOPY --chown=app:ghost one.txt /owned-half\n' +
      'COPY --chmod=0700 one.txt /m-octal\nCOPY --chmod=u=rwX,go=rX dir /m-sym/\nCOPY --chmod=+x one.txt /m-plusx\n' +
      'COPY --exclude=*.md --exclude=skip dir /ex/\nCOPY --parents ./dir/a.txt ./dir/sub/b.txt /par/\nCOPY --parents dir/./sub/b.txt /par2/\nUSER 1000\nCOPY one.txt /as-user\n',
    { 'dir/a.txt': 'a', 'dir/sub/b.txt': 'b', 'dir/readme.md': 'r', 'dir/skip': 's', 'one.txt': '1', 'two.txt': '2' },
  );
  fs.chmodSync(path.join(d, 'one.txt'), 0o640);
  const built = await build(d, ['-t', 'copies', '--target', 'c']);
  assert.match(built.stderr, /WARNING: --chown=ghost:ghost: no user ghost and no group ghost in the image's \/etc\/passwd and \/etc\/group, so the files are owned by 0:0/);
  assert.match(built.stderr, /WARNING: --chown=app:ghost: no group ghost .* owned by 1234:0/);
  const out = await runIn('copies', [
    'stat -c "%u:%g" /owned-user /owned-num /owned-ghost /owned-half',
    'ls /into | tr "\\n" " "; echo',
    'ls /txts | tr "\\n" " "; echo',
    'cat /renamed; echo',
    'stat -c "%u:%g %a" /owned-names /owned-id /m-octal /m-plusx /as-user /renamed',
    'stat -c "%a" /m-sym/a.txt /m-sym/sub',
    'ls /ex | tr "\\n" " "; echo',
    'find /par /par2 -type f | sort | tr "\\n" " "; echo',
  ].join('; '));
  assert.is(out, [
    '1234:2345', '1234:1234', '0:0', '1234:0',
    'a.txt readme.md skip sub ',
    'one.txt two.txt ',
    '1',
    '1234:3456 640', '42:42 640', '0:0 700', '0:0 751', '0:0 640', '0:0 640',
    '644', '755',
    'a.txt sub ',
    '/par/dir/a.txt /par/dir/sub/b.txt /par2/sub/b.txt ',
  ].join('\n') + '\n');
  const multi = ctx('COPY one.txt two.txt /notadir\n', { 'one.txt': '1', 'two.txt': '2' });
  const r = await cli(['--progress', 'plain', multi], { root });
  assert.match(r.stderr, /When using COPY with more than one source file, the destination must be a directory and end with a \//);
  const missing = ctx('COPY nope.txt /x\n');
  const m = await cli(['--progress', 'plain', missing], { root });
  assert.match(m.stderr, /file not found in build context or excluded by .dockerignore: "nope.txt" does not exist/);
});

function makeTar(dir: string, name: string, files: Record<string, string>): string {
  const src = tmpdir('tsb-tarsrc-');
  try {
    for (const [f, c] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(src, f)), { recursive: true });
      fs.writeFileSync(path.join(src, f), c);
    }
    const out = path.join(dir, name);
    const r = spawnSync('tar', ['-cf', out, '-C', src, '.']);
    assert.is(r.status, 0);
    return out;
  } finally {
    fs.rmSync(src, { recursive: true, force: true });
  }
}

it('ADD: local archives are extracted (plain, gzip, bzip2, xz, zstd), --unpack=false keeps them, COPY never extracts', async () => {
  const d = ctx('FROM base AS a\nADD plain.tar /plain/\nADD --unpack=false plain.tar /kept/\nCOPY plain.tar /copied/\n');
  makeTar(d, 'plain.tar', { 'x/inside.txt': 'inside' });
  const lines = ['ADD plain.tar /plain/', 'ADD --unpack=false plain.tar /kept/', 'COPY plain.tar /copied/'];
  const checks = ['test -f /plain/x/inside.txt', 'test -f /kept/plain.tar', 'test -f /copied/plain.tar'];
  for (const [prog, ext] of [['gzip', 'gz'], ['bzip2', 'bz2'], ['xz', 'xz'], ['zstd', 'zst']] as const) {
    const r = spawnSync(prog, ['-kc', path.join(d, 'plain.tar')]);
    if (r.error) continue;
    fs.writeFileSync(path.join(d, `a.tar.${ext}`), r.stdout);
    lines.push(`ADD a.tar.${ext} /${ext}/`);
    checks.push(`test "$(cat /${ext}/x/inside.txt)" = inside`);
  }
  fs.writeFileSync(path.join(d, 'Dockerfile'), fs.readFileSync(path.join(d, 'Dockerfile'), 'utf8').replace(/FROM base AS a\n[\s\S]*/, 'FROM base AS a\n' + lines.join('\n') + '\n'));
  await build(d, ['-t', 'adds', '--target', 'a']);
  await runIn('adds', checks.join(' && '));
});

it('ADD: URLs with --checksum; a wrong checksum and an unreachable URL fail clearly', async () => {
  const body = 'downloaded content\n';
  const digest = 'sha256:' + crypto.createHash('sha256').update(body).digest('hex');
  let dataRequests = 0;
  const server = http.createServer((req, res) => {
    if (req.url === '/private/p.txt') {
      const ok = req.headers.authorization === 'Bearer sekrit-token';
      res.writeHead(ok ? 200 : 401);
      res.end(ok ? 'private\n' : '');
    } else if (req.url === '/files/data.txt') {
      dataRequests++;
      res.writeHead(200, { 'last-modified': 'Wed, 01 Jan 2020 00:00:00 GMT', 'content-type': 'text/plain' });
      res.end(body);
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  try {
    const url = `http://127.0.0.1:${port}/files/data.txt`;
    const d = ctx(`FROM base AS u\nADD ${url} /dl/\nADD --checksum=${digest} ${url} /exact\n`);
    await build(d, ['-t', 'urls', '--target', 'u']);
    assert.is(dataRequests, 1, 'one download per URL and build: the cache key and both ADD steps share it');
    assert.is(await runIn('urls', 'stat -c "%a %Y" /dl/data.txt; cat /exact'), `600 1577836800\n${body}`);
    const bad = ctx(`FROM base AS u\nADD --checksum=sha256:${'0'.repeat(64)} ${url} /x\n`);
    let r = await cli(['--progress', 'plain', '--target', 'u', bad], { root });
    assert.is(r.code, 1);
    assert.match(r.stderr, /checksum mismatch: expected sha256:0{64}, got sha256:[a-f0-9]{64}/);
    const priv = ctx(`FROM base AS u\nADD --checksum=sha256:${crypto.createHash('sha256').update('private\n').digest('hex')} http://127.0.0.1:${port}/private/p.txt /p.txt\n`);
    r = await cli(['--progress', 'plain', '--target', 'u', priv], { root });
    assert.match(r.stderr, /answered 401 .*--secret id=HTTP_AUTH_TOKEN_127\.0\.0\.1/);
    r = await cli(['--progress', 'plain', '--target', 'u', '-t', 'private', '--secret', 'id=HTTP_AUTH_TOKEN_127.0.0.1,env=TSB_TEST_TOKEN', priv], { root, env: { TSB_TEST_TOKEN: 'sekrit-token' } });
    assert.is(r.code, 0, r.stderr);
    assert.is(await runIn('private', 'cat /p.txt'), 'private\n');
    const missing = ctx(`FROM base AS u\nADD http://127.0.0.1:${port}/nope /x\n`);
    r = await cli(['--progress', 'plain', '--target', 'u', missing], { root });
    assert.match(r.stderr, /the server answered 404/);
  } finally {
    server.close();
  }
  const down = ctx('FROM base AS u\nADD http://127.0.0.1:1/x /x\n');
  const r = await cli(['--progress', 'plain', '--target', 'u', down], { root });
  assert.is(r.code, 1);
  assert.match(r.stderr, /cannot download it .*check the URL and that the host is reachable/);
});

it('hostile: context symlinks, image symlinks, WORKDIR and crafted archives never touch the host', async () => {
  const outside = tmpdir('tsb-outside-');
  dirs.push(outside);
  fs.writeFileSync(path.join(outside, 'secret'), 'host secret');
  const d = ctx(
    'RUN mkdir -p /real && ln -s /real /img-link && ln -s ' + outside + ' /host-link\nFROM base AS h\n' +
      'COPY linkdir /linkdir/\nCOPY one.txt /img-link/one.txt\nCOPY one.txt /host-link/planted\nWORKDIR /host-link/wd\n',
    { 'one.txt': '1', 'linkdir/x': 'x' },
  );
  fs.symlinkSync(outside, path.join(d, 'linkdir/out'));
  await build(d, ['-t', 'hostile', '--target', 'h']);
  const out = await runIn('hostile', 'readlink /linkdir/out; cat /real/one.txt; ls ' + outside);
  assert.match(out, new RegExp(`^${outside}\\n1planted\\nwd\\n$`), `nested symlinks are copied as links; image symlinks resolve inside the image: ${out}`);
  const leak = ctx('FROM base AS l\nCOPY leak /leak\n');
  fs.symlinkSync(path.join(outside, 'secret'), path.join(leak, 'leak'));
  const lr = await cli(['--progress', 'plain', '--target', 'l', leak], { root });
  assert.is(lr.code, 1, 'a context symlink to a host file is resolved inside the context, where its target does not exist');
  assert.match(lr.stderr, /"leak" does not exist/);
  assert.equal(fs.readdirSync(outside), ['secret'], 'the host directory is untouched');
  const evil = ctx('FROM base AS e\nADD evil.tar /dest/\n');
  const { encodeHeader, END_OF_ARCHIVE } = await import('../image/index.js');
  fs.writeFileSync(path.join(evil, 'evil.tar'), Buffer.concat([encodeHeader({ name: '../../../../../../../' + outside + '/pwned', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 0 }), END_OF_ARCHIVE]));
  const r = await cli(['--progress', 'plain', '--target', 'e', evil], { root });
  assert.is(r.code, 1);
  assert.match(r.stderr, /escapes the destination with "\.\."/);
  assert.equal(fs.readdirSync(outside), ['secret']);
});

it('RUN heredocs: script body, shebang body, files fed to commands', async () => {
  const d = ctx('FROM base AS h\nRUN <<EOF\necho one > /one\necho two >> /one\nEOF\nRUN <<EOF\n#!/bin/sh\necho "via $0" > /shebang\nEOF\nRUN <<A cat > /a && <<B cat > /b\nbody-a\nA\nbody-b\nB\n');
  await build(d, ['-t', 'heredocs', '--target', 'h']);
  assert.is(await runIn('heredocs', 'cat /one /shebang /a /b; ls /dev/pipes 2>/dev/null || echo no-pipes'), 'one\ntwo\nvia /dev/pipes/EOF\nbody-a\nbody-b\nno-pipes\n');
});

it('SOURCE_DATE_EPOCH: two builds of the same inputs give the same image digest', async () => {
  const d = ctx('FROM base AS s1\nRUN echo built > /f && mkdir -p /d/e && touch /d/e/g\nFROM base AS s2\nCOPY --from=s1 /f /f\nCOPY one.txt /one\nRUN ln -s /f /link\n', { 'one.txt': '1' });
  const env = { SOURCE_DATE_EPOCH: '1700000000' };
  const a = (await build(d, ['-q'], env)).stdout.trim();
  await new Promise((r) => setTimeout(r, 1100));
  const b = (await build(d, ['-q'], env)).stdout.trim();
  assert.is(a, b, 'same image id');
  const i = await inspect(a);
  assert.ok(i.History.length > 0);
  const c = (await build(d, ['-q'], { SOURCE_DATE_EPOCH: '1700000001' })).stdout.trim();
  assert.is.not(a, c, 'a different epoch is a different image');
});

it('COPY --link: the layer does not depend on the base, and destination symlinks are not followed', async () => {
  const d = ctx(
    'RUN mkdir /real && ln -s /real /app\nFROM base AS one\nRUN echo one > /marker\nCOPY --link --chown=7:8 files/ /app/\n' +
      'FROM base AS two\nRUN echo two > /marker\nCOPY --link --chown=7:8 files/ /app/\n',
    { 'files/f.txt': 'linked\n' },
  );
  await build(d, ['-t', 'link-one', '--target', 'one']);
  await build(d, ['-t', 'link-two', '--target', 'two']);
  const [a, b] = [await inspect('link-one'), await inspect('link-two')];
  assert.is(a.RootFS.Layers.at(-1), b.RootFS.Layers.at(-1), 'the same --link layer on different bases');
  assert.is.not(a.RootFS.Layers.at(-2), b.RootFS.Layers.at(-2));
  assert.is(await runIn('link-one', 'cat /app/f.txt /marker; stat -c %u:%g /app/f.txt; test -L /app && echo link || echo dir; ls /real | wc -l'), 'linked\none\n7:8\ndir\n0\n');
  // Extracted straight into its tree, not synced: committed with the boot it was written in.
  const chain = (a.RootFS.Layers as string[]).reduce((c, l) => (c === '' ? l : `sha256:${crypto.createHash('sha256').update(`${c} ${l}`).digest('hex')}`), '');
  const table = JSON.parse(fs.readFileSync(path.join(root, 'snapshots', 'overlayfs', 'metadata.json'), 'utf8')) as { snapshots: Record<string, { labels: Record<string, string> }> };
  assert.is(table.snapshots[chain]?.labels['tsbuild.unsynced-boot'], fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim());
});

it('RUN --network=none has only loopback; --security=insecure needs --allow and then has every capability', async () => {
  const d = ctx('FROM base AS n\nRUN --network=none ls /sys/class/net > /ifaces\nRUN grep CapEff /proc/self/status > /caps-default\nRUN --security=insecure grep CapEff /proc/self/status > /caps-insecure\n');
  const denied = await cli(['--progress', 'plain', '--target', 'n', d], { root });
  assert.is(denied.code, 1);
  assert.match(denied.stderr, /needs the security.insecure entitlement: build with --allow security.insecure/);
  await build(d, ['-t', 'netsec', '--target', 'n', '--allow', 'security.insecure']);
  const out = await runIn('netsec', 'cat /ifaces /caps-default /caps-insecure');
  const [ifaces, def, ins] = out.trim().split('\n');
  assert.is(ifaces, 'lo');
  assert.match(def!, /CapEff:\t00000000a80425fb/);
  const bits = (line: string) => BigInt('0x' + line.split('\t')[1]);
  const [d0, i0] = [bits(def!), bits(ins!)];
  assert.ok((i0 & d0) === d0 && i0 > d0, `insecure has every default capability and more: ${ins}`);
  assert.ok((i0 & (1n << 21n)) !== 0n, 'CAP_SYS_ADMIN included');
});

it('remaining rows: ONBUILD COPY --from in the child, WORKDIR with unset vars, RUN under SHELL, ENTRYPOINT+CMD at run time, relative mount targets', async () => {
  const d = ctx(
    'RUN echo from-helper > /helper.txt\nONBUILD COPY --from=helper /helper.txt /from-trigger.txt\n' +
      'FROM base AS helper\nRUN echo child-helper > /helper.txt\n' +
      'FROM base AS child\nENV DIRPATH=/path\nWORKDIR $DIRPATH/$NOPE\nRUN pwd > /wd\n' +
      'SHELL ["/bin/sh", "-c", "echo shell-used > /shell; eval $0"]\nRUN true\n' +
      'WORKDIR /mnt-base\nRUN --mount=type=tmpfs,target=rel touch /mnt-base/rel/x && echo mounted > /rel-ok\n' +
      'ENTRYPOINT ["echo", "ep"]\nCMD ["cmd-arg"]\n',
  );
  await build(d, ['-t', 'rows-base', '--target', 'base']);
  // The child uses the image: its trigger's --from=helper must name a stage of the child's Dockerfile.
  const rest = fs.readFileSync(path.join(d, 'Dockerfile'), 'utf8').split('FROM base AS child')[1]!;
  fs.writeFileSync(path.join(d, 'helper.txt'), 'child-helper\n');
  fs.writeFileSync(path.join(d, 'Dockerfile'), 'FROM scratch AS helper\nCOPY helper.txt /helper.txt\nFROM rows-base AS child' + rest);
  await build(d, ['-t', 'rows', '--target', 'child']);
  assert.is(await runIn('rows', 'cat /from-trigger.txt /wd /shell /rel-ok; ls /mnt-base/rel 2>/dev/null | wc -l'), 'child-helper\n/path\nshell-used\nmounted\n0\n');
  const r = await cli(['run', '--rm', 'rows'], { root });
  assert.is(r.stdout, 'ep cmd-arg\n', 'ENTRYPOINT + CMD');
  const r2 = await cli(['run', '--rm', 'rows', 'other'], { root });
  assert.is(r2.stdout, 'ep other\n', 'arguments replace CMD, not ENTRYPOINT');
  const bad = ctx('ARG X=base\nFROM base AS e\nRUN --mount=from=$X,target=/x true\n');
  const b = await cli(['--progress', 'plain', '--target', 'e', bad], { root });
  assert.match(b.stderr, /'from' doesn't support variable expansion/);
});

it('COPY of a FIFO, alone or in a directory, makes a FIFO (as BuildKit does), with its mode', async () => {
  const d = ctx('FROM base AS f\nCOPY pipe /pipe\nCOPY dir /dir/\n', { 'dir/file': 'x' });
  assert.is(spawnSync('mkfifo', ['-m', '0640', path.join(d, 'pipe')]).status, 0);
  assert.is(spawnSync('mkfifo', [path.join(d, 'dir/inner')]).status, 0);
  await build(d, ['-t', 'fifos', '--target', 'f']);
  const out = await runIn('fifos', 'test -p /pipe && test -p /dir/inner && cat /dir/file && stat -c %a /pipe');
  assert.is(out, 'x640\n');
});

it('a symlink loop in the build context is named as one, in the context (not "in the image")', async () => {
  const d = ctx('FROM base AS l\nCOPY a /a\n');
  fs.symlinkSync('b', path.join(d, 'a'));
  fs.symlinkSync('a', path.join(d, 'b'));
  const r = await cli(['--progress', 'plain', '--target', 'l', d], { root });
  assert.is(r.code, 1);
  assert.match(r.stderr, /too many levels of symbolic links resolving a in the COPY\/ADD sources \(the build context or --from\): a symlink loop/);
  assert.match(r.stderr, /at Dockerfile line \d+/);
});

// The layer differ met a lower file where the upper has a directory (ENOTDIR), and the build failed.
it('a RUN that turns a file into a directory, and a directory into a file', async () => {
  const d = ctx('FROM base\nRUN touch /x && mkdir -p /d/e\nRUN rm /x && mkdir /x && touch /x/y && rm -r /d && echo f > /d\n');
  await build(d, ['-t', 'retype']);
  assert.is(await runIn('retype', 'ls /x; cat /d'), 'y\nf\n');
});

test.run();
