/** The build cache through the CLI: exact hits, explained misses, concurrency, crashes, prune. */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cli, cliSpawn, executedSteps, pidsMatching, removeStore, tmpdir, e2eHarness } from '../testutil/index.js';

const { it, root, dirs, ctx } = e2eHarness('cache');

const build = async (d: string, args: string[] = []) => {
  const r = await cli(['--progress', 'plain', ...args, d], { root });
  assert.is(r.code, 0, r.stderr);
  return r.stderr;
};
const executed = executedSteps;
const misses = (log: string) => log.split('\n').filter((l) => / cache miss: /.test(l)).map((l) => l.replace(/^#\d+ cache miss: /, ''));

/** Every file of the store: path → inode, size, content digest (a rewrite through rename changes the inode). */
function storeFiles(dir: string, base = dir, out = new Map<string, string>()): Map<string, string> {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    // Snapshots' contents are the images' files, not the store's records.
    if (e.isDirectory() && path.relative(base, p) !== 'snapshots/overlayfs/snapshots') storeFiles(p, base, out);
    else if (e.isFile() || e.isSymbolicLink()) {
      const st = fs.lstatSync(p);
      out.set(path.relative(base, p), `${st.ino}:${st.size}:${e.isFile() && st.size < 1 << 20 ? fs.readFileSync(p).toString('base64') : ''}`);
    }
  }
  return out;
}

// #18: a build that hits the cache throughout records that it ran (its build record and history)
// and nothing else: no record, step history, name table or memo is rewritten, and no lock is left.
it('a no-change rebuild writes only its build record and history; hits move record mtimes in place', async () => {
  const d = ctx('FROM base AS app\nCOPY src /src\nRUN echo quiet > /quiet\n', { 'src/a': 'a', 'src/b': 'b' });
  await build(d, ['-t', 'quiet']);
  await build(d, ['-t', 'quiet']);
  const before = storeFiles(root);
  const recordTimes = new Map([...before.keys()].filter((f) => f.startsWith('cache/records/')).map((f) => [f, fs.statSync(path.join(root, f)).mtimeMs]));
  await new Promise((r) => setTimeout(r, 20));
  const log = await build(d, ['-t', 'quiet']);
  assert.equal(executed(log), []);
  const after = storeFiles(root);
  const expected = (f: string) => f.startsWith('builds/') || f.startsWith('history/');
  const changed = [...after].filter(([f, v]) => before.get(f) !== v && !expected(f)).map(([f]) => f);
  assert.equal(changed, [], 'rewritten or new');
  assert.equal([...before.keys()].filter((f) => !after.has(f) && !expected(f)), [], 'removed');
  assert.equal([...after.keys()].filter((f) => f.endsWith('.lock')), [], 'no lock left');
  const touched = [...recordTimes].filter(([f, t]) => fs.statSync(path.join(root, f)).mtimeMs > t);
  assert.ok(touched.length >= 3, `the hits' use times moved (${touched.length} of ${recordTimes.size} records)`);
});

it('an unchanged rebuild runs nothing and gives the same image; touching mtimes is still a hit', async () => {
  const d = ctx('FROM base AS app\nCOPY src /src\nRUN echo built > /built\n', { 'src/a': 'a', 'src/b': 'b' });
  const first = await build(d, ['-t', 'c1']);
  assert.ok(executed(first).some((s) => s.includes('RUN echo built')));
  const id1 = (await cli(['inspect', 'c1'], { root })).stdout;
  const second = await build(d, ['-t', 'c1']);
  assert.equal(executed(second), [], `nothing executes:\n${second}`);
  assert.is((await cli(['inspect', 'c1'], { root })).stdout, id1, 'the same image');
  fs.utimesSync(path.join(d, 'src/a'), new Date(), new Date(Date.now() + 5000));
  const third = await build(d);
  assert.equal(executed(third), []);
});

it('changing one file of 20,000 re-runs only the steps after that COPY and names the file', async () => {
  const files: Record<string, string> = {};
  for (let i = 0; i < 20000; i++) files[`src/d${i % 100}/f${i}.txt`] = `content ${i}\n`;
  const d = ctx('FROM base AS big\nRUN echo before > /before\nCOPY src /src\nRUN ls -R /src | wc -l > /count\n', files);
  await build(d);
  fs.writeFileSync(path.join(d, 'src/d7/f1207.txt'), 'changed\n');
  const log = await build(d);
  const ran = executed(log);
  assert.ok(!ran.some((s) => s.includes('echo before')), 'the step before the COPY is cached');
  assert.ok(ran.some((s) => s.includes('COPY src /src')) && ran.some((s) => s.includes('RUN ls -R')), ran.join('\n'));
  assert.ok(misses(log).includes('1 file changed: src/d7/f1207.txt'), misses(log).join('\n'));
  assert.ok(misses(log).some((m) => /^parent changed \(\[big 3\/4\] COPY src \/src\)/.test(m)), misses(log).join('\n'));
});

it('a build arg that only stage B uses does not rebuild stage A', async () => {
  const d = ctx('FROM base AS a\nRUN echo a > /a\nFROM base AS b\nARG VERSION=1\nRUN echo $VERSION > /v\nFROM base AS final\nCOPY --from=a /a /a\nCOPY --from=b /v /v\n');
  await build(d, ['--build-arg', 'VERSION=1.2']);
  const log = await build(d, ['--build-arg', 'VERSION=1.3']);
  const ran = executed(log);
  assert.not.ok(ran.some((s) => s.includes('echo a')), ran.join('\n'));
  assert.ok(ran.some((s) => s.includes('echo $VERSION')));
  assert.ok(misses(log).includes('ARG VERSION changed 1.2 → 1.3'), misses(log).join('\n'));
});

it('a new base image digest rebuilds everything after FROM and says so', async () => {
  const baseCtx = ctx('RUN echo v1 > /version\n');
  await build(baseCtx, ['-t', 'mybase']);
  const child = tmpdir('tsb-child-');
  dirs.push(child);
  fs.writeFileSync(path.join(child, 'Dockerfile'), 'FROM mybase\nRUN cat /version > /copy\n');
  await build(child);
  assert.equal(executed(await build(child)), []);
  fs.writeFileSync(path.join(baseCtx, 'Dockerfile'), fs.readFileSync(path.join(baseCtx, 'Dockerfile'), 'utf8').replace('v1', 'v2'));
  await build(baseCtx, ['-t', 'mybase']);
  const log = await build(child);
  assert.ok(executed(log).some((s) => s.includes('RUN cat /version')));
  assert.ok(misses(log).some((m) => /parent changed/.test(m)), misses(log).join('\n'));
});

it('concurrent builds sharing steps: each step runs once, the others wait and take its result', async () => {
  // The RUN writes when it ran (nanoseconds): two runs could never give the same layer.
  const common = 'FROM base AS x\nRUN sleep 1; date +%s%N > /when\n';
  const d1 = ctx(common + 'COPY Dockerfile /df\n');
  const d2 = ctx(common + 'RUN echo other > /other\n');
  const builds = [d1, d1, d2].map((d, i) => cli(['--progress', 'plain', '-t', `conc-${i}`, d], { root }));
  const [a, b, c] = await Promise.all(builds);
  for (const r of [a!, b!, c!]) assert.is(r.code, 0, r.stderr);
  const when = await Promise.all([0, 1, 2].map(async (i) => (await cli(['run', '--rm', `conc-${i}`, 'cat', '/when'], { root })).stdout));
  assert.ok(when[0] !== '' && when.every((w) => w === when[0]), `the shared RUN ran once: ${when.join(' ')}`);
  const ids = await Promise.all([0, 1].map(async (i) => JSON.parse((await cli(['inspect', `conc-${i}`], { root })).stdout)[0].Id as string));
  assert.is(ids[0], ids[1], 'the identical builds give the same image');
  const waited = [a!, b!, c!].filter((r) => /waiting for another build \(pid \d+\), which runs this same step/.test(r.stderr));
  assert.ok(waited.length >= 1, `a build said it waited:\n${[a!, b!, c!].map((r) => r.stderr).join('\n---\n')}`);
});

it('eight concurrent builds (two identical, the rest sharing steps) with run, prune and rmi at the same time: all succeed, images correct', async () => {
  for (const name of ['kept', 'victim']) {
    const pre = await cli(['-q', '-t', name, ctx(`FROM base AS v\nRUN echo ${name} > /v\n`)], { root });
    assert.is(pre.code, 0, pre.stderr);
  }
  const shared = 'FROM base AS s\nRUN sleep 0.5; echo shared > /shared\n';
  const ds = [0, 0, 1, 2, 3, 4, 5, 6].map((i) => ctx(`${shared}RUN echo ${i} > /mine && sleep 0.${i}\nCOPY Dockerfile /df\n`));
  const builds = ds.map((d, i) => cli(['-q', '-t', `eight-${i}`, d], { root }));
  const others = [
    cli(['run', '--rm', 'kept', 'cat', '/v'], { root }),
    cli(['prune', '--all'], { root }),
    cli(['image', 'prune', '-f'], { root }),
    cli(['rmi', 'victim'], { root }),
  ];
  const results = await Promise.all([...builds, ...others]);
  results.forEach((r, i) => assert.is(r.code, 0, `${i < 8 ? `build ${i}` : ['run', 'prune', 'image prune', 'rmi'][i - 8]}: ${r.stderr}`));
  assert.is(results[8]!.stdout, 'kept\n', 'the run saw its image');
  assert.is(results[0]!.stdout, results[1]!.stdout, 'the identical builds give one image');
  for (let i = 0; i < 8; i++) {
    const r = await cli(['run', '--rm', `eight-${i}`, 'cat', '/shared', '/mine'], { root });
    assert.is(r.stdout, `shared\n${i < 2 ? 0 : i - 1}\n`, `eight-${i}: ${r.stderr}`);
  }
});

it('kill -9 during a build leaves a cache the next build can use', async () => {
  const marker = `sleep ${300 + Math.floor(Math.random() * 100)}`;
  const d = ctx(`FROM base AS k\nRUN echo first > /first\nRUN ${marker}\n`);
  const child = cliSpawn(['--progress', 'plain', d], root);
  try {
    const deadline = Date.now() + 30_000;
    while (pidsMatching(new RegExp(`^${marker}`)).length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    child.kill('SIGKILL');
    await new Promise((r) => child.on('close', r));
  } finally {
    child.kill('SIGKILL');
    for (const p of pidsMatching(new RegExp(`^${marker}`))) process.kill(p, 'SIGKILL');
  }
  fs.writeFileSync(path.join(d, 'Dockerfile'), fs.readFileSync(path.join(d, 'Dockerfile'), 'utf8').replace(marker, 'echo done'));
  const log = await build(d);
  assert.not.ok(executed(log).some((s) => s.includes('echo first')), 'the step finished before the kill is a hit');
});

it('two --no-cache builds of a deterministic Dockerfile give the same image digest', async () => {
  const d = ctx('FROM base AS s1\nRUN echo built > /f && mkdir -p /d/e\nFROM base AS s2\nCOPY --from=s1 /f /f\nCOPY one.txt /one\nENV X=1\n', { 'one.txt': '1' });
  const a = await cli(['-q', '--no-cache', d], { root });
  await new Promise((r) => setTimeout(r, 1100));
  const b = await cli(['-q', '--no-cache', d], { root });
  assert.is(a.code, 0, a.stderr);
  assert.is(a.stdout, b.stdout);
});

it('--no-cache, --no-cache-filter and --explain (text and JSON)', async () => {
  const d = ctx('FROM base AS one\nRUN echo 1 > /1\nFROM one AS two\nRUN echo 2 > /2\n');
  await build(d);
  let log = await build(d, ['--no-cache-filter', 'two']);
  assert.ok(executed(log).some((s) => s.includes('echo 2')));
  assert.not.ok(executed(log).some((s) => s.includes('echo 1')));
  assert.ok(misses(log).includes('cache disabled (--no-cache)'));
  log = await build(d, ['--no-cache']);
  assert.ok(executed(log).some((s) => s.includes('echo 1')));
  const j = await cli(['--progress', 'plain', '--explain', 'json', d], { root });
  const ex = JSON.parse(j.stdout) as { steps: { step: string; hit: boolean; key: string; inputs: Record<string, string> }[] };
  const run2 = ex.steps.find((s) => s.step.includes('echo 2'))!;
  assert.ok(run2.hit && run2.key.startsWith('sha256:') && run2.inputs['parent']?.startsWith('sha256:'));
  const t = await cli(['--progress', 'plain', '--explain', 'text', d], { root });
  assert.match(t.stdout, /\[two 2\/2\] RUN echo 2 > \/2\n  CACHED\n  key sha256:/);
});

it('cache ls, prune with --keep-storage and --filter, and images survive prune', async () => {
  const d = ctx('FROM base AS p\nRUN head -c 100000 /dev/urandom > /blob\n');
  await build(d, ['-t', 'pruned']);
  const ls = await cli(['cache', 'ls'], { root });
  assert.match(ls.stdout, /RUN head -c 100000/);
  let r = await cli(['cache', 'prune', '--filter', 'until=1h'], { root });
  assert.match(r.stdout, /Deleted 0 cache records/);
  r = await cli(['prune', '--keep-storage', '0'], { root });
  assert.match(r.stdout, /Deleted [1-9]\d* cache records/);
  assert.is((await cli(['run', '--rm', 'pruned', 'test', '-s', '/blob'], { root })).code, 0, 'an image keeps what it needs');
  const log = await build(d);
  assert.ok(misses(log).some((m) => /removed \(pruned\)/.test(m)), misses(log).join('\n'));
  r = await cli(['prune', '--keep-storage', 'lots'], { root });
  assert.is(r.code, 2);
  assert.match(r.stderr, /invalid size "lots"/);
});

it('the .dockerignore in force is part of a context COPY\'s key (COPY . with different ignore files)', async () => {
  const d = ctx('FROM base AS i\nCOPY . /ctx/\nRUN ls /ctx > /list\n', { keep: 'k', skip: 's' });
  fs.writeFileSync(path.join(d, 'Dockerfile.dockerignore'), 'skip\n');
  fs.copyFileSync(path.join(d, 'Dockerfile'), path.join(d, 'Dockerfile2'));
  fs.writeFileSync(path.join(d, 'Dockerfile2.dockerignore'), 'keep\n');
  const a = await cli(['-q', '-f', path.join(d, 'Dockerfile'), d], { root });
  const b = await cli(['-q', '-f', path.join(d, 'Dockerfile2'), d], { root });
  assert.is((await cli(['run', '--rm', a.stdout.trim(), 'cat', '/list'], { root })).stdout, 'Dockerfile\nDockerfile.dockerignore\nDockerfile2\nDockerfile2.dockerignore\nbusybox\nkeep\n');
  assert.is((await cli(['run', '--rm', b.stdout.trim(), 'cat', '/list'], { root })).stdout, 'Dockerfile\nDockerfile.dockerignore\nDockerfile2\nDockerfile2.dockerignore\nbusybox\nskip\n');
});

it('verify rebuilds an image from its recorded inputs and compares digests', async () => {
  const d = ctx('FROM base AS v\nRUN echo same > /f\n');
  await build(d, ['-t', 'verified']);
  let r = await cli(['verify', 'verified'], { root });
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, /^verified: verified rebuilds to the same digest sha256:/);
  const n = ctx('FROM base AS v\nRUN cat /proc/sys/kernel/random/uuid > /f\n');
  await build(n, ['-t', 'random']);
  r = await cli(['verify', 'random'], { root });
  assert.is(r.code, 1);
  assert.match(r.stdout, /^MISMATCH: random is sha256:\w+, a rebuild gives sha256:\w+/);
});

it('automatic GC: <store>/config.json keepStorage prunes least recently used records after a build', async () => {
  const other = tmpdir('tsb-gc-store-');
  try {
    fs.writeFileSync(path.join(other, 'config.json'), JSON.stringify({ gc: { keepStorage: '1' } }));
    const d = ctx('FROM base AS g\nRUN head -c 50000 /dev/urandom > /blob\n');
    const r = await cli(['-t', 'gced', '--progress', 'plain', d], { root: other });
    assert.is(r.code, 0, r.stderr);
    const ls = await cli(['cache', 'ls'], { root: other });
    assert.match(ls.stdout, /\n0 records|, 0B\n$/, ls.stdout);
    assert.is((await cli(['run', '--rm', 'gced', 'test', '-s', '/blob'], { root: other })).code, 0, 'the image keeps its layers');
  } finally {
    removeStore(other);
  }
});

it('--no-cache: a duplicate of a cached step is retired (deleted later), the image is the same, df counts it, prune and gc.keepRetired delete it', async () => {
  const other = tmpdir('tsb-retire-store-');
  try {
    const d = ctx('FROM base AS g\nCOPY tree /tree\nRUN echo made > /made\n', Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`tree/f${i}`, `${i}\n`])));
    const retired = path.join(other, 'snapshots/overlayfs/snapshots/retired');
    const waiting = () => (fs.existsSync(retired) ? fs.readdirSync(retired) : []);
    const id = async (args: string[]) => {
      const r = await cli(['build', '-q', ...args, d], { root: other });
      assert.is(r.code, 0, r.stderr);
      return r.stdout.trim();
    };
    const cacheSize = async () => {
      const out = (await cli(['system', 'df', '--format', '{{.Type}}={{.Size}}'], { root: other })).stdout;
      const m = /Build Cache=([\d.]+)(B|kB|MB|GB)/.exec(out);
      assert.ok(m, out);
      return parseFloat(m[1]!) * { B: 1, kB: 1e3, MB: 1e6, GB: 1e9 }[m[2] as 'B' | 'kB' | 'MB' | 'GB'];
    };
    const first = await id(['-t', 'one']);
    assert.equal(waiting(), []);
    const records = await cacheSize();
    assert.is(await id(['--no-cache', '-t', 'two']), first, 'the same image as the cached build');
    assert.is(waiting().length, 4, 'every layer step made a duplicate: the base stage\'s two, this COPY and RUN');
    assert.is((await cli(['run', '--rm', 'two', 'cat', '/made', '/tree/f49'], { root: other })).stdout, 'made\n49\n');
    // The retired trees count on top of the records' layers (busybox's alone is about 2 MB).
    assert.ok((await cacheSize()) > records + 1e6, `${await cacheSize()} against ${records}`);
    assert.is((await cli(['cache', 'prune', '-f', '--keep-storage', '1TB'], { root: other })).code, 0);
    assert.equal(waiting(), [], 'a prune deletes retired trees, whatever it keeps of the cache');
    fs.writeFileSync(path.join(other, 'config.json'), JSON.stringify({ gc: { keepRetired: '0' } }));
    await id(['--no-cache', '-t', 'three']);
    assert.equal(waiting(), [], 'gc.keepRetired 0: deleted before the build ends');
    fs.writeFileSync(path.join(other, 'config.json'), JSON.stringify({ gc: { keepRetired: 'lots' } }));
    const bad = await cli(['build', '--no-cache', '-t', 'four', d], { root: other });
    assert.is(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /invalid size "lots".*gc\.keepRetired in .*config\.json/);
    assert.not.match(bad.stderr, /\[\d\/\d\]/, 'refused before any step ran');
  } finally {
    removeStore(other);
  }
});

it('retired trees go at once when a build runs out of inodes, with a warning; the build run again works', async () => {
  // A tmpfs whose inode count is set from what the builds need: room for one more COPY of the tree
  // only once the retired duplicates are deleted.
  const mnt = tmpdir('tsb-retire-full-');
  assert.is(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=512m,nr_inodes=200000', 'tmpfs', mnt]).status, 0);
  const store = path.join(mnt, 'store');
  try {
    const d = ctx('FROM base AS g\nCOPY tree /tree\n', Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`tree/f${i}`, `${i}\n`])));
    const used = () => {
      const st = fs.statfsSync(mnt);
      return st.files - st.ffree;
    };
    const build = (args: string[]) => cli(['build', '-q', ...args, d], { root: store });
    const first = await build(['-t', 'one']);
    assert.is(first.code, 0, first.stderr);
    const before = used();
    assert.is((await build(['--no-cache', '-t', 'two'])).code, 0);
    const retired = path.join(store, 'snapshots/overlayfs/snapshots/retired');
    assert.ok(fs.readdirSync(retired).length >= 3, 'the duplicates wait');
    // What one --no-cache build takes, and a limit with less than that free but more than a tenth
    // of all inodes free (so the headroom rule after a build does not delete them first).
    const perBuild = used() - before;
    const now = used();
    const free = Math.ceil(now / 9) + 20;
    assert.ok(free < perBuild - 200, `the test's arithmetic: ${free} free against ${perBuild} per build`);
    assert.is(spawnSync('mount', ['-o', `remount,nr_inodes=${now + free}`, mnt]).status, 0);
    const full = await build(['--no-cache', '-t', 'three']);
    assert.is.not(full.code, 0, 'this build finds no inodes for the COPY');
    assert.match(full.stderr, /no space left on device/);
    assert.match(full.stderr, /the disk was full: deleted \d+ retired snapshot trees/);
    assert.equal(fs.readdirSync(retired), [], 'every retired tree is gone');
    const again = await build(['--no-cache', '-t', 'three']);
    assert.is(again.code, 0, again.stderr);
    assert.is((await cli(['run', '--rm', 'three', 'cat', '/tree/f999'], { root: store })).stdout, '999\n');
  } finally {
    removeStore(store);
    spawnSync('umount', [mnt]);
    fs.rmSync(mnt, { recursive: true, force: true });
  }
});

it('damaged cache files (records, step history, the checksum memo) are misses, not failures; prune --all removes them', async () => {
  const store = tmpdir('tsb-cache-damaged-');
  try {
    const d = ctx('RUN echo one > /one\nCOPY . /ctx\n', { 'f.txt': 'f' });
    const b1 = await cli(['--progress', 'plain', d], { root: store });
    assert.is(b1.code, 0, b1.stderr);
    const cacheDir = path.join(store, 'cache');
    let damaged = 0;
    for (const sub of ['records', 'steps']) {
      for (const f of fs.readdirSync(path.join(cacheDir, sub))) {
        fs.writeFileSync(path.join(cacheDir, sub, f), '{"key": "tor');
        damaged++;
      }
    }
    const memos = fs.readdirSync(path.join(cacheDir, 'checksums'));
    assert.is(memos.length, 1, 'one memo, for the one context');
    fs.writeFileSync(path.join(cacheDir, 'checksums', memos[0]!), 'tsbuild-checksums 1\n/x\0');
    assert.ok(damaged > 0);
    const b2 = await cli(['--progress', 'plain', d], { root: store });
    assert.is(b2.code, 0, b2.stderr);
    assert.match(b2.stderr, /RUN echo one/);
    const ls = await cli(['cache', 'ls'], { root: store });
    assert.is(ls.code, 0, ls.stderr);
    const pr = await cli(['prune', '--all'], { root: store });
    assert.is(pr.code, 0, pr.stderr);
    const left = fs.readdirSync(path.join(cacheDir, 'records')).filter((f) => {
      try {
        JSON.parse(fs.readFileSync(path.join(cacheDir, 'records', f), 'utf8'));
        return false;
      } catch {
        return true;
      }
    });
    assert.equal(left, [], 'no damaged record is left');
  } finally {
    removeStore(store);
  }
});

test.run();
