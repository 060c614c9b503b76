/** --progress json and github through the CLI: parsed back, and annotated on the Dockerfile line. */
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { cli, e2eHarness } from '../testutil/index.js';

const { it, root, ctx, test } = e2eHarness('prog');

it('--progress json: every line parses, every started step completes, the build ends solved', async () => {
  const d = ctx('RUN echo one > /one\nFROM base AS two\nRUN echo two; echo err >&2\nCOPY --from=base /one /one\n');
  const r = await cli(['--progress', 'json', '--no-cache', '-t', 'prog', d], { root });
  assert.is(r.code, 0, r.stderr);
  const events = r.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { type: string; vertex?: { id: number; name: string; line?: number }; stream?: string; data?: string; duration_ms?: number });
  const started = new Set(events.filter((e) => e.type === 'vertex.started').map((e) => e.vertex!.id));
  const completed = new Set(events.filter((e) => e.type === 'vertex.completed').map((e) => e.vertex!.id));
  assert.ok(started.size >= 4);
  assert.equal([...started].sort(), [...completed].sort());
  const logs = events.filter((e) => e.type === 'vertex.log');
  assert.ok(logs.some((e) => e.stream === 'stdout' && e.data === 'two\n'));
  assert.ok(logs.some((e) => e.stream === 'stderr' && e.data === 'err\n'));
  assert.ok(events.some((e) => e.type === 'vertex.cache_miss'));
  const run2 = events.find((e) => e.type === 'vertex.started' && e.vertex!.name.includes('RUN echo two'))!;
  assert.is(run2.vertex!.line, 6, 'three lines of the test base come first');
  assert.is(events.filter((e) => e.type === 'build.solved').length, 1);
});

it('--progress github: steps in groups, a failing RUN and a syntax error annotated on their lines', async () => {
  const d = ctx('RUN echo building\nRUN echo about to fail && exit 3\n');
  const r = await cli(['--progress', 'github', d], { root });
  assert.is(r.code, 1);
  assert.match(r.stderr, /::group::#\d+ \[base \d+\/\d+\] RUN echo building \([\d.]+s\)\ncache miss: [^\n]+\nbuilding\n::endgroup::/);
  assert.match(r.stderr, new RegExp(`::error file=${path.join(d, 'Dockerfile').replace(/[/.]/g, '\\$&')},line=5,title=\\[base \\d+/\\d+\\] RUN echo about to fail && exit 3::`));
  assert.match(r.stderr, /about to fail\n::endgroup::/);
  const bad = ctx('RUN --bogus=1 true\n');
  const s = await cli(['--progress', 'github', bad], { root });
  assert.is(s.code, 1);
  assert.match(s.stderr, /::error file=[^,]+Dockerfile,line=4::/);
  const mode = await cli(['--progress', 'fancy', bad], { root });
  assert.is(mode.code, 2);
  assert.match(mode.stderr, /use auto, tty, plain, json or github/);
});

it('builds: every build is recorded; diff names the step whose input changed and why; show, rm, prune, buildx history', async () => {
  await cli(['builds', 'prune'], { root });
  const d = ctx('FROM base AS app\nCOPY a.txt /a.txt\nRUN cat /a.txt > /copy\n', { 'a.txt': 'one\n' });
  assert.is((await cli(['-t', 'hist', d], { root })).code, 0);
  assert.is((await cli(['-t', 'hist', d], { root })).code, 0, 'all cached');
  fs.writeFileSync(path.join(d, 'a.txt'), 'two\n');
  assert.is((await cli(['-t', 'hist', d], { root })).code, 0);
  fs.writeFileSync(path.join(d, 'Dockerfile'), fs.readFileSync(path.join(d, 'Dockerfile'), 'utf8') + 'RUN exit 7\n');
  assert.is((await cli([d], { root })).code, 1);
  const ids = (await cli(['builds', 'ls', '-q'], { root })).stdout.trim().split('\n');
  assert.is(ids.length, 4);
  const ls = (await cli(['buildx', 'history', 'ls'], { root })).stdout;
  assert.match(ls, /BUILD ID\s+STARTED\s+DURATION\s+STATUS/);
  assert.match(ls, /failed/);
  const diff = await cli(['builds', 'diff', ids[2]!, ids[1]!], { root });
  assert.is(diff.code, 0, diff.stderr);
  assert.match(diff.stdout, /line 5: \[app \d+\/\d+\] COPY a\.txt \/a\.txt stopped hitting the cache: .*a\.txt/);
  assert.match(diff.stdout, /line 6: \[app \d+\/\d+\] RUN cat \/a\.txt > \/copy stopped hitting the cache/);
  assert.not.match(diff.stdout, /busybox/, 'unchanged steps are not listed');
  const failed = await cli(['builds', 'diff', '^1', 'latest'], { root });
  assert.match(failed.stdout, /line 7: \[app \d+\/\d+\] RUN exit 7 failed: new step/);
  assert.match(diff.stdout, /cache 50% \(was 100%\)|cache \d+% \(was 100%\)/);
  const show = (await cli(['builds', 'show', ids[1]!], { root })).stdout;
  assert.match(show, new RegExp(`Build ${ids[1]} \\(completed\\)`));
  assert.match(show, /Image: sha256:[0-9a-f]{64} \([^)]*hist[^)]*\)/);
  assert.match(show, /COPY a\.txt \/a\.txt\s+5\s+ran\s+\+[\d.]+s\s+[\d.]+s\s+.*a\.txt/);
  const json = JSON.parse((await cli(['builds', 'show', '--format', 'json', 'latest'], { root })).stdout) as { status: string; error: string };
  assert.is(json.status, 'failed');
  assert.match(json.error, /exit code 7|exit 7/);
  assert.is((await cli(['builds', 'rm', ids[3]!], { root })).code, 0);
  assert.is((await cli(['builds', 'show', ids[3]!], { root })).code, 1);
  assert.match((await cli(['builds', 'prune', '--keep', '1'], { root })).stdout, /Deleted 2 build records/);
  assert.equal((await cli(['builds', 'ls', '-q'], { root })).stdout.trim().split('\n'), [ids[0]]);
});

test.run();
