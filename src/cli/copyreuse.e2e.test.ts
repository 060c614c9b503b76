/**
 * #18: a COPY whose context changed is written as only its changes on the same step's last result.
 * Every edit below is built twice, on the cache and with --no-cache (a full copy), and must give the
 * same layers: content, modes, owners, deletions, type changes, and mtimes (the context's files dated
 * before SOURCE_DATE_EPOCH, so theirs are in the layer, and what the build itself dates is clamped).
 */
import fs from 'node:fs';
import path from 'node:path';
import * as assert from 'uvu/assert';
import { cli, e2eHarness, removeStore, tmpdir } from '../testutil/index.js';

const { it, root: sharedRoot, ctx, test } = e2eHarness('copyreuse');
/**
 * Each variant has a store of its own: cache keys do not include SOURCE_DATE_EPOCH, so a layer one
 * epoch clamped would be a hit for the other (a known problem, outside this test).
 */
let root = sharedRoot;

const REUSED = /copied only what changed: (\d+) file\(s\) kept from this step's last full copy, (\d+) removed/;
const REFUSED = /copying in full, not on this step's last result: (.*)/;

async function build(d: string, args: string[], env: Record<string, string> = {}): Promise<{ log: string; layers: string[] }> {
  const r = await cli(['--progress', 'plain', '-t', 'reuse', ...args, d], { root, env });
  assert.is(r.code, 0, r.stderr);
  const info = JSON.parse((await cli(['inspect', 'reuse'], { root })).stdout) as { RootFS: { Layers: string[] } }[];
  return { log: r.stderr, layers: info[0]!.RootFS.Layers };
}

/** Builds on the cache, then without it; the same layers both ways. Returns the cached build's log. */
async function same(d: string, env: Record<string, string> = {}): Promise<string> {
  const warm = await build(d, [], env);
  const cold = await build(d, ['--no-cache'], env);
  assert.not.match(cold.log, REUSED, '--no-cache copies in full');
  assert.equal(warm.layers, cold.layers, `layers differ from a full copy:\n${warm.log}`);
  return warm.log;
}

const write = (d: string, rel: string, body: string) => {
  fs.mkdirSync(path.dirname(path.join(d, rel)), { recursive: true });
  fs.writeFileSync(path.join(d, rel), body);
};

function files(n: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < n; i++) out[`app/sub/f${i}`] = `file ${i}\n`;
  return { ...out, 'app/other/a': 'a\n', 'app/shared': 'from the context\n' };
}

// The parent has /app/keep/p and /app/shared; the COPY overwrites /app/shared.
const DOCKERFILE = 'FROM base\nRUN mkdir -p /app/keep && echo parent > /app/keep/p && echo parent > /app/shared\nCOPY app /app\nRUN cat /app/sub/f7 > /seen\n';

/** Dates every entry under `dir` in 2020, a second apart, so each has its own time. */
function age(dir: string, t = { s: Date.UTC(2020, 0, 1) / 1000 }): void {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) age(p, t);
    if (!e.isSymbolicLink()) fs.utimesSync(p, t.s, ++t.s);
  }
  fs.utimesSync(dir, t.s, ++t.s);
}

for (const [name, env] of [
  ['default times (clamped to 0)', {}],
  ['SOURCE_DATE_EPOCH 2025: the context\'s own times are in the layer', { SOURCE_DATE_EPOCH: String(Date.UTC(2025, 0, 1) / 1000) }],
] as const) {
  it(`COPY on the last result equals a full copy, edit after edit: ${name}`, async () => {
    root = tmpdir('tsb-copyreuse-store-');
    try {
      await edits(env);
    } finally {
      removeStore(root);
      root = sharedRoot;
    }
  });
}

async function edits(env: Record<string, string>): Promise<void> {
    const d = ctx(DOCKERFILE, files(200));
    fs.symlinkSync('sub/f1', path.join(d, 'app/link'));
    age(path.join(d, 'app'));
    await build(d, [], env);

    write(d, 'app/sub/f7', 'edited\n');
    const edit = await same(d, env);
    assert.match(edit, REUSED);
    assert.is(REUSED.exec(edit)![2], '0');
    assert.ok(Number(REUSED.exec(edit)![1]) >= 200, 'the unchanged files are kept');
    // Known so by the times the first build recorded for its result, without a look at each entry.
    assert.ok(Number(/\((\d+) known unchanged by the times recorded last time\)/.exec(edit)?.[1]) >= 200, edit);

    write(d, 'app/new/dir/n', 'new\n');
    fs.rmSync(path.join(d, 'app/sub/f3'));
    fs.chmodSync(path.join(d, 'app/sub/f4'), 0o600);
    // Only its time changes: the key does not (content and mode do), the layer does.
    fs.utimesSync(path.join(d, 'app/sub/f5'), Date.UTC(2021, 0, 1) / 1000, Date.UTC(2021, 0, 1) / 1000);
    write(d, 'app/sub/f6', 'changed too\n');
    const mixed = await same(d, env);
    assert.match(mixed, REUSED);
    assert.is(REUSED.exec(mixed)![2], '1', 'f3 is removed');

    // A file becomes a directory, a directory a file, a link points elsewhere.
    fs.rmSync(path.join(d, 'app/sub/f8'));
    write(d, 'app/sub/f8/inside', 'now a directory\n');
    fs.rmSync(path.join(d, 'app/other'), { recursive: true });
    write(d, 'app/other', 'now a file\n');
    fs.rmSync(path.join(d, 'app/link'));
    fs.symlinkSync('sub/f2', path.join(d, 'app/link'));
    const types = await same(d, env);
    assert.match(types, REUSED);

    // Every edit is written on the last full copy, not on the edit before it: the overlay does not
    // deepen, and a file changed once and changed back is the full copy's again.
    write(d, 'app/sub/f9', 'fourth\n');
    assert.match(await same(d, env), REUSED);
    write(d, 'app/sub/f7', 'file 7\n');
    write(d, 'app/sub/f10', 'fifth\n');
    assert.match(await same(d, env), REUSED);

    // /app/shared is the parent's too: without it in the context a full copy shows the parent's.
    fs.rmSync(path.join(d, 'app/shared'));
    const uncover = await same(d, env);
    assert.match(uncover, REFUSED);
    assert.match(REFUSED.exec(uncover)![1]!, /\/app\/shared is gone from the context but the parent has it/);
    const out = await cli(['run', '--rm', 'reuse', 'cat', '/app/shared', '/app/keep/p'], { root });
    assert.is(out.stdout, 'parent\nparent\n');
}

it('COPY --chmod and --chown on the last result equal a full copy: the mode the copy gives is what is kept', async () => {
  root = tmpdir('tsb-copyreuse-store-');
  try {
    const d = ctx('FROM base\nCOPY --chmod=u=rwX,go=rX --chown=7:8 app /app\n', files(30));
    fs.chmodSync(path.join(d, 'app/sub/f2'), 0o700);
    fs.chmodSync(path.join(d, 'app/sub/f3'), 0o600);
    age(path.join(d, 'app'));
    await build(d, []);
    write(d, 'app/sub/f1', 'edited\n');
    const log = await same(d);
    assert.ok(Number(/\((\d+) known unchanged by the times recorded last time\)/.exec(log)?.[1]) >= 30, log);
    const out = await cli(['run', '--rm', 'reuse', 'stat', '-c', '%a %u:%g', '/app/sub/f2', '/app/sub/f3'], { root });
    assert.is(out.stdout, '755 7:8\n644 7:8\n');
  } finally {
    removeStore(root);
    root = sharedRoot;
  }
});

it('edits on a full copy: the store stays consistent, one level deep, and prune removes it all', async () => {
  const d = ctx('FROM base\nCOPY app /app\n', files(20));
  await build(d, []);
  for (let i = 0; i < 4; i++) {
    write(d, 'app/sub/f1', `edit ${i}\n`);
    assert.match((await build(d, [])).log, REUSED);
  }
  const doctor = await cli(['doctor'], { root });
  assert.is(doctor.code, 0, doctor.stdout + doctor.stderr);
  const meta = () => JSON.parse(fs.readFileSync(path.join(root, 'snapshots/overlayfs/metadata.json'), 'utf8')) as { snapshots: Record<string, { parent?: string; labels: Record<string, string> }> };
  const snaps = meta().snapshots;
  for (const [k, s] of Object.entries(snaps)) {
    if (s.labels['tsbuild.squashed'] === undefined) continue;
    assert.is(s.labels['tsbuild.squashed'], '1', k);
    assert.is(snaps[s.parent!]!.labels['tsbuild.squashed'], undefined, `${k} is on a full copy`);
  }
  const out = await cli(['run', '--rm', 'reuse', 'cat', '/app/sub/f1', '/app/sub/f2'], { root });
  assert.is(out.stdout, 'edit 3\nfile 2\n');
  // With the cache and the image gone, nothing holds them: prune leaves no snapshot behind.
  assert.is((await cli(['rmi', 'reuse'], { root })).code, 0);
  const pruned = await cli(['system', 'prune', '-a', '-f'], { root });
  assert.is(pruned.code, 0, pruned.stderr);
  assert.equal(Object.keys(meta().snapshots), []);
});

test.run();
