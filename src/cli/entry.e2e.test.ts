/**
 * bin/tsbuild: the single executable when the build made one, the startup snapshot's blob when
 * that was made by this node binary (or with TSBUILD_GC=single), the bundle otherwise; a moved tree
 * and an npm-style symlink work. (Every other e2e test runs through bin/tsbuild, so the single
 * executable carries the whole suite.)
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { busyboxContext, cliPath, removeStore, repoRoot, sandboxUnavailable, testUnless, tmpdir } from '../testutil/index.js';

const blob = path.join(repoRoot, 'dist/bundle/cli.blob');
const noBlob = fs.existsSync(blob) ? undefined : 'no startup snapshot was built (scripts/bundle.mjs says why)';
const sea = path.join(repoRoot, 'dist/bundle/tsbuild-sea');
const noSea = noBlob ?? (fs.existsSync(sea) ? undefined : 'no single executable was built (scripts/bundle.mjs says why)');

function tsbuild(bin: string, args: string[], env: Record<string, string> = {}) {
  return spawnSync(bin, args, { encoding: 'utf8', env: { ...process.env, ...env } });
}

/** A copy of what a command needs, elsewhere, as an installed tree would be. */
function movedTree(): string {
  const t = tmpdir('tsb-entry-');
  for (const d of ['bin', 'dist/bundle', 'native/build', 'src/runtime/profiles', 'package.json']) fs.cpSync(path.join(repoRoot, d), path.join(t, d), { recursive: true });
  fs.symlinkSync(path.join(repoRoot, 'node_modules'), path.join(t, 'node_modules'));
  return t;
}

testUnless(noSea, 'the single executable starts the CLI, the blob with TSBUILD_GC=single; the environment is read in each process, not frozen into the snapshot', () => {
  const store = tmpdir('tsb-entry-store-');
  try {
    for (const [env, startup] of [[{}, `single executable (${sea})`], [{ TSBUILD_GC: 'single' }, `snapshot (${blob})`]] as const) {
      const a = tsbuild(cliPath, ['info', '--format', 'json'], { TSBUILD_ROOT: store, ...env });
      assert.is(a.status, 0, a.stderr);
      const i = JSON.parse(a.stdout) as { startup: string; root: string; helper: string };
      assert.is(i.startup, startup);
      assert.is(i.root, store);
      assert.is(i.helper, path.join(repoRoot, 'native/build/tsbuild-sandbox'), 'paths from the module\'s place, as the bundle has them');
      const other = tsbuild(cliPath, ['info', '--format', 'json'], { TSBUILD_ROOT: `${store}/other`, ...env });
      assert.is((JSON.parse(other.stdout) as { root: string }).root, `${store}/other`);
    }
    const plain = tsbuild(cliPath, ['info'], { TSBUILD_ROOT: store, TSBUILD_NO_SNAPSHOT: '1' });
    assert.match(plain.stdout, /Startup: +bundle/, 'TSBUILD_NO_SNAPSHOT=1 loads the bundle');
    const df = path.join(store, 'Dockerfile');
    fs.writeFileSync(df, 'FROM scratch AS a\nARG X=1\nRUN echo $X\n');
    const viaSea = tsbuild(cliPath, ['parse', '-f', df, '--format', 'json']);
    const viaSnap = tsbuild(cliPath, ['parse', '-f', df, '--format', 'json'], { TSBUILD_GC: 'single' });
    const viaBundle = tsbuild(process.execPath, [path.join(repoRoot, 'bin/tsbuild.js'), 'parse', '-f', df, '--format', 'json']);
    assert.is(viaSea.stdout, viaBundle.stdout, 'the same answer every way');
    assert.is(viaSnap.stdout, viaBundle.stdout, 'the same answer every way');
    assert.ok(viaSea.stdout.length > 0);
    // Arguments reach the single executable as they are, a leading `--` too (not taken as Node's).
    const dd = tsbuild(cliPath, ['--', 'parse', '-f', df]);
    const ddSnap = tsbuild(cliPath, ['--', 'parse', '-f', df], { TSBUILD_GC: 'single' });
    assert.is(dd.status, ddSnap.status);
    assert.is(dd.stderr, ddSnap.stderr);
  } finally {
    fs.rmSync(store, { recursive: true, force: true });
  }
});

test("V8's parallel GC by default; TSBUILD_GC=single runs it on the main thread, through the blob or the bundle", () => {
  const store = tmpdir('tsb-entry-store-');
  try {
    const gc = (env: Record<string, string> = {}) => {
      const r = tsbuild(cliPath, ['info', '--format', 'json'], { TSBUILD_ROOT: store, ...env });
      assert.is(r.status, 0, r.stderr);
      return (JSON.parse(r.stdout) as { gc: string }).gc;
    };
    assert.is(gc(), 'parallel');
    assert.is(gc({ TSBUILD_GC: 'parallel' }), 'parallel');
    assert.is(gc({ TSBUILD_GC: 'single' }), 'single-threaded');
    assert.is(gc({ TSBUILD_GC: 'single', TSBUILD_NO_SNAPSHOT: '1' }), 'single-threaded', 'the bundle too');
    const typo = tsbuild(cliPath, ['info'], { TSBUILD_ROOT: store, TSBUILD_GC: 'sngle' });
    assert.is(typo.status, 2);
    assert.match(typo.stderr, /TSBUILD_GC=sngle is not a choice: set it to single or parallel, or unset it \(parallel\)/);
  } finally {
    fs.rmSync(store, { recursive: true, force: true });
  }
});

test("glibc's malloc asks for transparent huge pages and a 32 MiB mmap threshold (GLIBC_TUNABLES), a hugetlb setting of the user's own stands, TSBUILD_THP=off leaves it alone", () => {
  // A `node` of the test's own on PATH shows what bin/tsbuild starts Node with (not the blob's
  // binary, so bin/tsbuild takes the bundle path and runs `node` from PATH; TSBUILD_NO_SNAPSHOT
  // keeps it from the single executable). What the single executable sees is checked below.
  const fake = tmpdir('tsb-entry-node-');
  try {
    fs.writeFileSync(path.join(fake, 'node'), '#!/bin/sh\nprintf "%s" "${GLIBC_TUNABLES-unset}"\n', { mode: 0o755 });
    const tunables = (env: Record<string, string>) => {
      const base: Record<string, string | undefined> = { ...process.env, PATH: `${fake}:${process.env.PATH}`, TSBUILD_NO_SNAPSHOT: '1', ...env };
      if (!('GLIBC_TUNABLES' in env)) delete base.GLIBC_TUNABLES;
      const r = spawnSync(cliPath, ['info'], { encoding: 'utf8', env: base as NodeJS.ProcessEnv });
      assert.is(r.status, 0, r.stderr);
      return r.stdout;
    };
    const ours = 'glibc.malloc.hugetlb=1:glibc.malloc.mmap_threshold=33554432';
    assert.is(tunables({}), ours);
    assert.is(tunables({ TSBUILD_THP: 'on' }), ours);
    assert.is(tunables({ GLIBC_TUNABLES: 'glibc.malloc.tcache_count=0' }), `glibc.malloc.tcache_count=0:${ours}`, "the user's tunables are kept");
    assert.is(tunables({ GLIBC_TUNABLES: 'glibc.malloc.mmap_threshold=131072' }), 'glibc.malloc.mmap_threshold=131072:glibc.malloc.hugetlb=1', "the user's threshold stands");
    assert.is(tunables({ GLIBC_TUNABLES: 'glibc.malloc.hugetlb=0' }), 'glibc.malloc.hugetlb=0', "the user's choice stands");
    assert.is(tunables({ TSBUILD_THP: 'off' }), 'unset');
    assert.is(tunables({ TSBUILD_THP: 'off', GLIBC_TUNABLES: 'glibc.malloc.tcache_count=0' }), 'glibc.malloc.tcache_count=0');
  } finally {
    fs.rmSync(fake, { recursive: true, force: true });
  }
  const store = tmpdir('tsb-entry-store-');
  try {
    const malloc = (env: Record<string, string> = {}) => {
      const r = tsbuild(cliPath, ['info', '--format', 'json'], { TSBUILD_ROOT: store, ...env });
      assert.is(r.status, 0, r.stderr);
      return (JSON.parse(r.stdout) as { malloc: string }).malloc;
    };
    const thp = fs.existsSync('/sys/kernel/mm/transparent_hugepage/enabled') ? /\[(\w+)\]/.exec(fs.readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8'))?.[1] : undefined;
    assert.is(malloc(), thp === 'always' || thp === 'madvise' ? 'transparent huge pages' : `transparent huge pages asked for, but this kernel gives none (transparent_hugepage: ${thp ?? 'absent'})`);
    assert.is(malloc({ TSBUILD_THP: 'off' }), 'default (4 KiB pages)');
    assert.is(malloc({ GLIBC_TUNABLES: 'glibc.malloc.hugetlb=0' }), 'default (4 KiB pages)');
    const typo = tsbuild(cliPath, ['info'], { TSBUILD_ROOT: store, TSBUILD_THP: 'yes' });
    assert.is(typo.status, 2);
    assert.match(typo.stderr, /TSBUILD_THP=yes is not a choice: set it to on or off/);
  } finally {
    fs.rmSync(store, { recursive: true, force: true });
  }
});

testUnless(sandboxUnavailable(), "containers and RUN steps do not inherit bin/tsbuild's GLIBC_TUNABLES", async () => {
  const root = tmpdir('tsb-entry-store-');
  const ctx = busyboxContext('RUN env > /build-env\n');
  try {
    const env = { TSBUILD_ROOT: root, TSBUILD_PULL: 'never' };
    const b = tsbuild(cliPath, ['build', '-q', '-t', 'envcheck', ctx], env);
    assert.is(b.status, 0, b.stderr);
    const r = tsbuild(cliPath, ['run', '--rm', '--network', 'none', 'envcheck', 'sh', '-c', 'env; echo ---; cat /build-env'], env);
    assert.is(r.status, 0, r.stderr);
    assert.match(r.stdout, /PATH=/);
    assert.match(r.stdout, /---\n(.|\n)*PATH=/, 'the RUN step\'s environment was captured');
    assert.not.match(r.stdout, /GLIBC_TUNABLES/);
  } finally {
    removeStore(root);
    fs.rmSync(ctx, { recursive: true, force: true });
  }
});

testUnless(noBlob, "the snapshot's script is ASCII (V8 keeps one with any other character as UTF-16), and what was escaped means the same", () => {
  const script = fs.readFileSync(path.join(repoRoot, 'dist/bundle/snapshot.cjs'), 'latin1');
  assert.is(/[^\x00-\x7f]/.exec(script)?.index, undefined);
  // `µs` was in a regular expression and an object key of the duration parser.
  const store = tmpdir('tsb-entry-store-');
  try {
    fs.writeFileSync(path.join(store, 'Dockerfile'), 'FROM scratch\nHEALTHCHECK --interval=1500\u00b5s --timeout=2000us CMD ["true"]\n');
    const b = tsbuild(cliPath, ['build', '-q', '-t', 'durations', store], { TSBUILD_ROOT: store, TSBUILD_PULL: 'never' });
    assert.is(b.status, 0, b.stderr);
    const i = tsbuild(cliPath, ['inspect', '--format', '{{.Config.Healthcheck.Interval}} {{.Config.Healthcheck.Timeout}}', 'durations'], { TSBUILD_ROOT: store });
    assert.is(i.stdout.trim(), '1500000 2000000', i.stderr);
  } finally {
    fs.rmSync(store, { recursive: true, force: true });
  }
});

testUnless(noSea, 'a moved tree and an npm-style symlink start their own single executable or blob; a blob another node made is not used', () => {
  const t = movedTree();
  try {
    const link = path.join(t, 'tsbuild-link');
    fs.symlinkSync(path.join(t, 'bin/tsbuild'), link);
    for (const bin of [path.join(t, 'bin/tsbuild'), link]) {
      for (const [env, startup] of [[{}, `single executable (${path.join(t, 'dist/bundle/tsbuild-sea')})`], [{ TSBUILD_GC: 'single' }, `snapshot (${path.join(t, 'dist/bundle/cli.blob')})`]] as const) {
        const r = tsbuild(bin, ['info', '--format', 'json'], { TSBUILD_ROOT: path.join(t, 'store'), ...env });
        assert.is(r.status, 0, r.stderr);
        const i = JSON.parse(r.stdout) as { startup: string; helper: string };
        assert.is(i.startup, startup, bin);
        assert.is(i.helper, path.join(t, 'native/build/tsbuild-sandbox'), 'the moved tree\'s helper');
      }
    }
    // The copy above did not keep the stamp's time (as cp -r): the recorded identity still says it is
    // the same node. Then as after an upgrade of node in place (the same path, a binary of another
    // time and identity), then with another node first on PATH.
    const stamp = path.join(t, 'dist/bundle/cli.blob.stamp');
    const startup = (env: Record<string, string> = {}) => {
      const r = tsbuild(path.join(t, 'bin/tsbuild'), ['info'], { TSBUILD_ROOT: path.join(t, 'store'), TSBUILD_GC: 'single', ...env });
      assert.is(r.status, 0, r.stderr);
      return /Startup: +(\w+)/.exec(r.stdout)?.[1];
    };
    assert.is.not(fs.statSync(stamp).mtimeMs, fs.statSync(process.execPath).mtimeMs);
    assert.is(startup(), 'snapshot', 'a stamp that lost its time, the same node');
    const rec = path.join(t, 'dist/bundle/cli.blob.node');
    const recorded = fs.readFileSync(rec, 'utf8');
    fs.writeFileSync(rec, recorded.replace(/:\d+\n$/, ':1\n'));
    assert.is(startup(), 'bundle', 'another time, and no stamp that says otherwise');
    spawnSync('touch', ['-r', process.execPath, stamp]);
    assert.is(startup(), 'snapshot', 'the stamp alone: the same node, no stat process');
    const node = fs.statSync(process.execPath);
    for (const ms of [node.mtimeMs - 1000, node.mtimeMs + 1000]) {
      fs.utimesSync(stamp, node.atime, new Date(ms));
      assert.is(startup(), 'bundle', 'an older or newer node');
    }
    spawnSync('touch', ['-r', process.execPath, stamp]);
    fs.writeFileSync(rec, recorded);
    const other = path.join(t, 'otherbin');
    fs.mkdirSync(other);
    fs.copyFileSync(process.execPath, path.join(other, 'node'));
    fs.chmodSync(path.join(other, 'node'), 0o755);
    spawnSync('touch', ['-r', process.execPath, path.join(other, 'node')]);
    assert.is(startup({ PATH: `${other}:${process.env.PATH}` }), 'bundle', 'another node binary with the same time, first on PATH');
    fs.writeFileSync(rec, recorded.replace(/:\d+\n$/, ':1\n'));
    assert.is(startup({ TSBUILD_GC: 'parallel' }), 'single', 'the single executable carries its own node: no check of the one on PATH');
    fs.rmSync(path.join(t, 'dist/bundle/tsbuild-sea'));
    fs.writeFileSync(rec, recorded);
    assert.is(startup({ TSBUILD_GC: 'parallel' }), 'snapshot', 'no single executable: the blob');
    fs.rmSync(path.join(t, 'dist/bundle/cli.blob'));
    assert.match(tsbuild(path.join(t, 'bin/tsbuild'), ['--version']).stdout, /^tsbuild /, 'no blob at all: the bundle');
  } finally {
    fs.rmSync(t, { recursive: true, force: true });
  }
});

test.run();
