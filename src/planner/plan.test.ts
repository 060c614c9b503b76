/** The planner without I/O: Dockerfile text in, vertices and image config out. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Vertex } from '../builder/index.js';
import { normalizePlatform, type ImageConfig } from '../image/index.js';
import type { OpSpec } from '../opspec/index.js';
import { parseDockerfile } from '../parser/index.js';
import { planBuild, type BuildGraph, type NamedContext } from './index.js';

const baseConfig = (extra: Partial<ImageConfig['config']> = {}): ImageConfig => ({
  architecture: 'amd64',
  os: 'linux',
  config: { Env: ['PATH=/bin', 'FROM_BASE=1'], Cmd: ['base-cmd'], ...extra },
  rootfs: { type: 'layers', diff_ids: [] },
  history: [],
});

async function plan(text: string, opts: { target?: string; args?: Record<string, string>; images?: Record<string, ImageConfig>; platform?: string; named?: Map<string, NamedContext>; resolved?: string[] } = {}): Promise<BuildGraph> {
  const images = opts.images ?? { base: baseConfig() };
  return planBuild({
    dockerfile: parseDockerfile(text),
    buildArgs: new Map(Object.entries(opts.args ?? {})),
    target: opts.target,
    contextDir: '/ctx',
    ignore: [],
    names: ['out:latest'],
    network: 'host',
    ...(opts.platform ? { platform: normalizePlatform(opts.platform) } : {}),
    ...(opts.named ? { namedContexts: opts.named } : {}),
    resolveImage: async (name) => {
      opts.resolved?.push(name);
      const c = images[name];
      if (!c) throw Object.assign(new (await import('../errors/index.js')).NotFoundError(`image "${name}" not found`));
      return { name, manifestDigest: 'sha256:' + '0'.repeat(64), config: c };
    },
  });
}

test('a base image of another platform than the build\'s is a warning naming both (BuildKit\'s InvalidBaseImagePlatform)', async () => {
  const other = await plan('FROM base\nRUN true\n', { platform: 'linux/s390x' });
  const w = other.warnings.find((x) => x.message.startsWith('InvalidBaseImagePlatform'));
  assert.ok(w, JSON.stringify(other.warnings));
  assert.is(w!.line, 1);
  assert.match(w!.message, 'Base image base was pulled with platform "linux/amd64", expected "linux/s390x" for current build');
  const same = await plan('FROM base\nRUN true\n', { platform: 'linux/amd64' });
  assert.not.ok(same.warnings.some((x) => x.message.startsWith('InvalidBaseImagePlatform')));
});

test('--build-context: a local directory for COPY --from and FROM, an image for FROM, replacing a stage of that name', async () => {
  const resolved: string[] = [];
  const named = new Map<string, NamedContext>([['assets', { kind: 'local', dir: '/src/assets' }], ['docker.io/library/base:latest', { kind: 'image', ref: 'other' }], ['tools', { kind: 'local', dir: '/src/tools' }]]);
  const images = { base: baseConfig(), other: baseConfig({ Cmd: ['other-cmd'] }) };
  const g = await plan('FROM base AS assets\nRUN exit 1\nFROM base\nCOPY --from=assets /logo.png /srv/\nRUN --mount=from=Tools,target=/t /t/make\n', { named, images, resolved });
  const ops = chain(g.root.inputs[0]!);
  assert.equal(resolved, ['other'], 'FROM base means the image the context names; the replaced stage is not planned');
  assert.is(exported(g).config.config.Cmd![0], 'other-cmd');
  const copy = g.root.inputs[0]!.inputs[0]!;
  assert.is(copy.op.kind, 'copy');
  assert.equal(copy.inputs[1]!.op, { kind: 'context', dir: '/src/assets', ignore: [] }, 'COPY --from: the directory, without the .dockerignore');
  assert.equal(g.root.inputs[0]!.inputs[1]!.op, { kind: 'context', dir: '/src/tools', ignore: [] }, 'RUN --mount from= (names are not case-sensitive)');
  assert.ok(ops.length >= 3);
  const local = await plan('FROM assets\nCMD ["x"]\n', { named });
  const start = chain(local.root.inputs[0]!);
  assert.is(start[0]!.kind, 'scratch');
  assert.is(start[1]!.kind, 'copy', 'FROM a local context: its files copied onto nothing');
  assert.equal(exported(local).config.config.Env, ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], 'an empty config');
});

function exported(g: BuildGraph): Extract<OpSpec, { kind: 'export' }> {
  if (g.root.op.kind !== 'export') throw new Error('root is not an export');
  return g.root.op;
}

function chain(v: Vertex<OpSpec>): OpSpec[] {
  const out: OpSpec[] = [];
  for (let x: Vertex<OpSpec> | undefined = v; x; x = x.inputs[0]) out.unshift(x.op);
  return out;
}

test('ENV: all references in one ENV see the values from before it', async () => {
  const g = await plan('FROM base\nENV abc=hello\nENV abc=bye def=$abc\nENV ONE TWO= THREE=world\n');
  const env = exported(g).config.config.Env!;
  assert.ok(env.includes('abc=bye'));
  assert.ok(env.includes('def=hello'));
  assert.ok(env.includes('ONE=TWO= THREE=world'), 'legacy form takes the rest of the line');
  assert.ok(env.includes('FROM_BASE=1'), 'inherited from the base');
});

// Expected values are what BuildKit (dockerd 20.10) produced for these lines, as reported in #21.
test('# escape=`: a backslash is an ordinary character in every expanded instruction; the backtick escapes', async () => {
  const text = '# escape=`\nFROM base\nARG A=C:\\arg\nENV P=C:\\path Q="a\\b" R=x`y S=$A\nLABEL l=C:\\dir\nWORKDIR C:\\w\nUSER u\\1\nCOPY a\\b C:\\dst\\\nSTOPSIGNAL SIG`TERM\n';
  const g = await plan(text);
  const c = exported(g).config.config;
  for (const e of ['P=C:\\path', 'Q=a\\b', 'R=xy', 'S=C:\\arg']) assert.ok(c.Env!.includes(e), `${e} in ${c.Env!.join(' ')}`);
  assert.equal(c.Labels, { l: 'C:\\dir' });
  assert.is(c.WorkingDir, '/C:\\w');
  assert.is(c.User, 'u\\1');
  assert.is(c.StopSignal, 'SIGTERM');
  const copy = chain(g.root.inputs[0]!).find((o) => o.kind === 'copy') as Extract<OpSpec, { kind: 'copy' }>;
  assert.equal(copy.sources, ['a\\b']);
  assert.is(copy.dest, '/C:\\w/C:\\dst\\');
  // The same lines under the default escape: the backslash escapes, as in BuildKit.
  const d = exported(await plan('FROM base\nENV P=C:\\path Q="a\\b"\n')).config.config.Env!;
  assert.ok(d.includes('P=C:path') && d.includes('Q=a\\b'), d.join(' '));
});

test('FROM scratch: the config has PATH and WorkingDir "/" as BuildKit\'s empty image has', async () => {
  const c = exported(await plan('FROM scratch\nLABEL a=b\n')).config.config;
  assert.is(c.WorkingDir, '/');
  assert.equal(c.Env, ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin']);
  assert.equal(c.Labels, { a: 'b' });
});

test('ENTRYPOINT clears an inherited CMD; a CMD in the same stage is kept', async () => {
  let g = await plan('FROM base\nENTRYPOINT ["ep"]\n');
  assert.is(exported(g).config.config.Cmd, null);
  assert.equal(exported(g).config.config.Entrypoint, ['ep']);
  g = await plan('FROM base\nCMD ["c"]\nENTRYPOINT ep arg\n');
  assert.equal(exported(g).config.config.Cmd, ['c']);
  assert.equal(exported(g).config.config.Entrypoint, ['/bin/sh', '-c', 'ep arg']);
  g = await plan('FROM base\nSHELL ["/bin/bash", "-eu", "-c"]\nCMD echo hi\n');
  assert.equal(exported(g).config.config.Cmd, ['/bin/bash', '-eu', '-c', 'echo hi']);
});

test('--target plans only the stages it needs: a broken unused stage does not fail', async () => {
  const text = 'FROM base AS a\nRUN a\nFROM nosuchimage AS broken\nRUN b\nFROM a AS c\nRUN c\n';
  const g = await plan(text, { target: 'c' });
  assert.equal(g.stagesBuilt, ['a', 'c']);
  await plan(text, { target: 'broken' }).then(
    () => assert.unreachable('an unknown image fails'),
    (e: Error) => assert.match(e.message, /Dockerfile:3: FROM nosuchimage: image "nosuchimage" not found/),
  );
  await plan(text, { target: 'zzz' }).then(
    () => assert.unreachable(),
    (e: Error) => assert.match(e.message, /target stage "zzz" could not be found \(stages: a, broken, c\)/),
  );
});

test('a stage used twice is the same vertex (built once)', async () => {
  const g = await plan('FROM base AS a\nRUN make\nFROM base AS b\nCOPY --from=a /x /x1\nCOPY --from=0 /x /x2\n');
  const copies: Vertex<OpSpec>[] = [];
  for (let x: Vertex<OpSpec> | undefined = g.root.inputs[0]; x; x = x.inputs[0]) if (x.op.kind === 'copy') copies.push(x);
  assert.is(copies.length, 2);
  assert.is(copies[0]!.inputs[1]!.digest, copies[1]!.inputs[1]!.digest);
});

test('ARG: global ARG in FROM, re-declaration inherits, --build-arg overrides, unused args warn', async () => {
  const text = 'ARG IMG=base\nARG V=1\nFROM ${IMG}\nARG V\nARG W=dflt\nRUN echo $V $W\n';
  let g = await plan(text);
  const run = chain(g.root.inputs[0]!).find((o) => o.kind === 'exec') as Extract<OpSpec, { kind: 'exec' }>;
  assert.ok(run.env.includes('V=1') && run.env.includes('W=dflt'), run.env.join(' '));
  assert.is(run.createdBy, 'RUN |2 V=1 W=dflt /bin/sh -c echo $V $W # buildkit');
  g = await plan(text, { args: { V: '2', NOPE: 'x' } });
  const run2 = chain(g.root.inputs[0]!).find((o) => o.kind === 'exec') as Extract<OpSpec, { kind: 'exec' }>;
  assert.ok(run2.env.includes('V=2'));
  assert.ok(g.warnings.some((w) => /build-args \[NOPE\] were not consumed/.test(w.message)));
  g = await plan('FROM base\nARG TARGETARCH\nRUN echo $TARGETARCH\n');
  const run3 = chain(g.root.inputs[0]!).find((o) => o.kind === 'exec') as Extract<OpSpec, { kind: 'exec' }>;
  assert.ok(run3.env.some((e) => /^TARGETARCH=\w+/.test(e)));
});

test('ARG is not in the image config; ENV wins over an ARG of the same name in RUN', async () => {
  const g = await plan('FROM base\nARG X=arg\nENV X=env\nRUN echo $X\n');
  const run = chain(g.root.inputs[0]!).find((o) => o.kind === 'exec') as Extract<OpSpec, { kind: 'exec' }>;
  assert.equal(run.env.filter((e) => e.startsWith('X=')), ['X=env']);
  assert.not.ok(exported(g).config.config.Env!.some((e) => e.startsWith('X=arg')));
});

test('WORKDIR chains relative paths and becomes a mkdir step; COPY destinations are under it', async () => {
  const g = await plan('FROM base\nWORKDIR /a\nWORKDIR b\nCOPY f rel/\nCOPY g .\n');
  assert.is(exported(g).config.config.WorkingDir, '/a/b');
  const ops = chain(g.root.inputs[0]!);
  assert.equal(ops.filter((o) => o.kind === 'mkdir').map((o) => (o as { path: string }).path), ['/a', '/a/b']);
  assert.equal(ops.filter((o) => o.kind === 'copy').map((o) => (o as { dest: string }).dest), ['/a/b/rel/', '/a/b/']);
});

test('EXPOSE, LABEL, VOLUME, STOPSIGNAL, HEALTHCHECK, USER, MAINTAINER set the config', async () => {
  const g = await plan(
    'FROM base\nARG P=8080\nEXPOSE 80/UDP 90-91 $P\nLABEL "a b"="c d" k=v\nLABEL legacy value with spaces\nVOLUME /v1 /v2\nSTOPSIGNAL SIGKILL\n' +
      'HEALTHCHECK --interval=5s --timeout=1m30s --retries=3 CMD curl -f http://localhost/\nUSER 1000:1000\nMAINTAINER Erik <e@x>\n',
  );
  const e = exported(g);
  const c = e.config.config;
  assert.equal(Object.keys(c.ExposedPorts!).sort(), ['80/udp', '8080/tcp', '90/tcp', '91/tcp']);
  assert.equal(c.Labels, { 'a b': 'c d', k: 'v', legacy: 'value with spaces' });
  assert.equal(c.Volumes, { '/v1': {}, '/v2': {} });
  assert.is(c.StopSignal, 'SIGKILL');
  assert.equal(c.Healthcheck, { Test: ['CMD-SHELL', 'curl -f http://localhost/'], Interval: 5e9, Timeout: 90e9, Retries: 3 });
  assert.is(c.User, '1000:1000');
  assert.is(e.config.author, 'Erik <e@x>');
  assert.ok(e.history.every((h) => h.empty_layer), 'config-only instructions add empty-layer history');
});

test('bad values are errors with the line: signal, healthcheck, port', async () => {
  for (const [text, re] of [
    ['FROM base\nSTOPSIGNAL SIGNOPE\n', /Dockerfile:2: invalid signal: SIGNOPE/],
    ['FROM base\nHEALTHCHECK --retries=-1 CMD true\n', /retries cannot be negative/],
    ['FROM base\nHEALTHCHECK --interval=1us CMD true\n', /cannot be less than 1ms/],
    ['FROM base\nHEALTHCHECK CONNECT x\n', /Unknown type "CONNECT" in HEALTHCHECK \(try CMD\)/],
    ['FROM base\nEXPOSE 70000\n', /invalid port range/],
    ['FROM base\nCOPY --from=$X /a /b\n', /variables are not supported in --from/],
  ] as const) {
    await plan(text).then(() => assert.unreachable(text), (e: Error) => assert.match(e.message, re, text));
  }
});

test('ONBUILD triggers of the base run first and are cleared', async () => {
  const images = { parent: baseConfig({ OnBuild: ['RUN echo from-trigger'] }) };
  const g = await plan('FROM parent\nRUN echo mine\n', { images });
  const runs = chain(g.root.inputs[0]!).filter((o) => o.kind === 'exec') as Extract<OpSpec, { kind: 'exec' }>[];
  assert.equal(runs.map((r) => r.args.at(-1)), ['echo from-trigger', 'echo mine']);
  assert.is(exported(g).config.config.OnBuild, null);
  const g2 = await plan('FROM base\nONBUILD RUN echo later\n');
  assert.equal(exported(g2).config.config.OnBuild, ['RUN echo later']);
});

test('RUN heredocs: a lone heredoc is the script; otherwise bodies go to the shell', async () => {
  let g = await plan('FROM base\nRUN <<EOF\necho one\necho two\nEOF\n');
  let run = chain(g.root.inputs[0]!).find((o) => o.kind === 'exec') as Extract<OpSpec, { kind: 'exec' }>;
  assert.equal(run.args, ['/bin/sh', '-c', 'echo one\necho two\n']);
  g = await plan('FROM base\nRUN <<A cat > /a && <<B cat > /b\nbody-a\nA\nbody-b\nB\n');
  run = chain(g.root.inputs[0]!).find((o) => o.kind === 'exec') as Extract<OpSpec, { kind: 'exec' }>;
  assert.equal(run.args, ['/bin/sh', '-c', '<<A cat > /a && <<B cat > /b\nbody-a\nA\nbody-b\nB\n']);
});

test('COPY heredoc sources expand unless the delimiter is quoted', async () => {
  const g = await plan('FROM base\nARG FOO=bar\nCOPY <<EOT /s\nhello ${FOO} "q"\nEOT\nCOPY <<"EOT" /t\n${FOO}\nEOT\n');
  const copies = chain(g.root.inputs[0]!).filter((o) => o.kind === 'copy') as Extract<OpSpec, { kind: 'copy' }>[];
  assert.equal(copies.map((c) => c.contents[0]!.data), ['hello bar "q"\n', '${FOO}\n']);
});

test('RUN --network overrides the build default; an invalid one is a parse error', async () => {
  const g = await plan('FROM base\nRUN --network=none ping\nRUN true\n');
  const runs = chain(g.root.inputs[0]!).filter((o) => o.kind === 'exec') as Extract<OpSpec, { kind: 'exec' }>[];
  assert.equal(runs.map((r) => r.network), ['none', 'host']);
  await plan('FROM base\nRUN --network=bridge x\n').then(() => assert.unreachable(), (e: Error) => assert.match(e.message, /invalid network mode "bridge"/));
});

test.run();
