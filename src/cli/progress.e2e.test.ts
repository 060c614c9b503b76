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
  const d = ctx('FROM base AS app\nCOPY a.txt /a.txt\nRUN cat /a.txt | tee /copy\n', { 'a.txt': 'one\n' });
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
  assert.match(diff.stdout, /line 6: \[app \d+\/\d+\] RUN cat \/a\.txt \| tee \/copy stopped hitting the cache/);
  assert.not.match(diff.stdout, /busybox/, 'unchanged steps are not listed');
  const logs = (await cli(['builds', 'logs', ids[0]!, '7'], { root })).stdout;
  assert.match(logs, /^#### \[app \d+\/\d+\] RUN exit 7 \(line 7\): failed\n/);
  const all = (await cli(['builds', 'logs', ids[1]!], { root })).stdout;
  assert.match(all, /#### \[app \d+\/\d+\] RUN cat \/a\.txt \| tee \/copy \(line 6\): ran\ntwo\n/, 'the whole output, kept');
  assert.match((await cli(['builds', 'logs', ids[0]!, '99'], { root })).stderr, /has no step at line 99/);
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

it('check: findings with lines and reasons, .dockerignore, sarif, build --check; builds warn, and # check=error=true stops them', async () => {
  const d = ctx('FROM base as Final\nCOPY secret.txt /s\nCMD sleep 1\n', { 'secret.txt': 'x', '.dockerignore': 'secret.txt\n' });
  const r = await cli(['check', d], { root });
  assert.is(r.code, 1, r.stderr);
  assert.match(r.stdout, /Dockerfile:4 FromAsCasing: 'as' and 'FROM' keywords' casing do not match\n  The 'as' keyword/);
  assert.match(r.stdout, /Dockerfile:4 StageNameCasing: Stage name 'Final' should be lowercase/);
  assert.match(r.stdout, /Dockerfile:5 CopyIgnoredFile: Attempting to Copy file "secret.txt" that is excluded by \.dockerignore/);
  assert.match(r.stdout, /Dockerfile:6 JSONArgsRecommended/);
  assert.match(r.stdout, /Check complete, 4 warnings found\.\n$/);
  const sarif = JSON.parse((await cli(['check', '--format', 'sarif', d], { root })).stdout) as { runs: { results: { ruleId: string }[] }[] };
  assert.equal(sarif.runs[0]!.results.map((x) => x.ruleId), ['FromAsCasing', 'StageNameCasing', 'CopyIgnoredFile', 'JSONArgsRecommended']);
  const viaBuild = await cli(['build', '--check', d], { root });
  assert.is(viaBuild.code, 1);
  assert.match(viaBuild.stdout, /Check complete, 4 warnings found/);
  const clean = ctx('CMD ["true"]\n');
  const ok = await cli(['check', clean], { root });
  assert.is(ok.code, 0, ok.stdout);
  assert.is(ok.stdout, 'Check complete, no warnings found.\n');
  // A build shows the findings as warnings with their lines, and builds anyway.
  const warned = ctx('CMD sleep 1\n');
  const b = await cli(['--progress', 'plain', warned], { root });
  assert.is(b.code, 0, b.stderr);
  assert.match(b.stderr, /WARNING: line 4: JSONArgsRecommended: JSON arguments recommended for CMD/);
  assert.match(b.stderr, /1 warning found:\n - line 4: JSONArgsRecommended: JSON arguments recommended for CMD[^\n]*\nwriting image sha256:[0-9a-f]{64}\n$/, 'repeated at the end');
  const strict = ctx('CMD sleep 1\n');
  const df = path.join(strict, 'Dockerfile');
  fs.writeFileSync(df, `# check=error=true\n${fs.readFileSync(df, 'utf8')}`);
  const stopped = await cli(['-t', 'never-built', strict], { root });
  assert.is(stopped.code, 1);
  assert.match(stopped.stderr, /1 build check failed and the Dockerfile says # check=error=true:\n  Dockerfile:5 JSONArgsRecommended/);
  assert.is.not((await cli(['inspect', 'never-built'], { root })).code, 0, 'nothing was built');
  fs.writeFileSync(df, fs.readFileSync(df, 'utf8').replace('# check=error=true', '# check=error=true;skip=JSONArgsRecommended'));
  assert.is((await cli([strict], { root })).code, 0, 'skipped rules do not count');
});

it('--timeline: an svg and an html of a multi-stage build (also when it fails): a bar per step in its stage lane, with its verdict', async () => {
  const d = ctx('FROM base AS left\nRUN echo l > /l\nFROM base AS right\nRUN echo r > /r\nFROM base AS final\nCOPY --from=left /l /l\nCOPY --from=right /r /r\n');
  const svg = path.join(d, 't.svg');
  const r = await cli(['--timeline', svg, d], { root });
  assert.is(r.code, 0, r.stderr);
  const rec = JSON.parse((await cli(['builds', 'show', '--format', 'json', 'latest'], { root })).stdout) as { steps: { name: string; stage: string; verdict: string; line: number }[] };
  const text = fs.readFileSync(svg, 'utf8');
  const bars = [...text.matchAll(/<rect class="bar [^"]*" data-lane="([^"]*)" data-step="([^"]*)" data-line="(\d+)" data-verdict="([a-z]+)"/g)].map((m) => `${m[1]} ${m[3]} ${m[4]}`);
  assert.equal(bars.sort(), rec.steps.map((s) => `${s.stage} ${s.line} ${s.verdict}`).sort());
  assert.ok(['left', 'right', 'final'].every((l) => text.includes(`<text class="lane" x="10" y="`) && text.includes(`>${l}</text>`)));
  assert.match(text, /class="bar [a-z]+ critical"/);
  const html = path.join(d, 't.html');
  assert.is((await cli(['builds', 'show', 'latest', '--timeline', html], { root })).code, 0);
  assert.match(fs.readFileSync(html, 'utf8'), /^<!doctype html>[\s\S]*<svg[\s\S]*<table>/);
  fs.appendFileSync(path.join(d, 'Dockerfile'), 'RUN exit 4\n');
  const failed = await cli(['--timeline', path.join(d, 'f.svg'), d], { root });
  assert.is(failed.code, 1);
  assert.match(fs.readFileSync(path.join(d, 'f.svg'), 'utf8'), /data-verdict="failed"/);
  assert.match((await cli(['--timeline', 'x.png', d], { root })).stderr, /give a \.svg or \.html file name/);
});

it('inspect --layers: size, step, files added, changed, removed, the biggest; size budgets fail the build naming the step', async () => {
  const d = ctx('FROM base AS img\nRUN dd if=/dev/zero of=/big bs=1024 count=4096 2>/dev/null && echo s > /small\nRUN rm /small && echo y > /big && echo n > /new\n');
  assert.is((await cli(['-t', 'layered', d], { root })).code, 0);
  const json = JSON.parse((await cli(['inspect', '--layers', '--format', 'json', 'layered'], { root })).stdout) as { createdBy: string; added: number; changed: number; removed: number; biggest: { path: string; size: number }[] }[];
  const [dd, rm] = json.slice(-2);
  assert.match(dd!.createdBy, /RUN .*dd if=\/dev\/zero/);
  assert.equal([dd!.added, dd!.changed, dd!.removed], [2, 0, 0]);
  assert.equal(dd!.biggest[0], { path: '/big', size: 4 << 20 });
  assert.equal([rm!.added, rm!.changed, rm!.removed], [1, 1, 1], '/new added, /big changed, /small removed');
  const table = (await cli(['inspect', '--layers', 'layered'], { root })).stdout;
  assert.match(table, /LAYER\s+SIZE\s+ADDED\s+CHANGED\s+REMOVED\s+CREATED BY/);
  assert.match(table, /biggest files:\n[\s\S]*layer \d+:\s+4\.\d+MB\s+\/big$/m);
  const over = await cli(['--max-layer-size', '3m', '-t', 'too-big', d], { root });
  assert.is(over.code, 1);
  assert.match(over.stderr, /the layer made by "RUN [^"]*dd if=\/dev\/zero[^"]*" is 4\.\d MiB, over --max-layer-size 3\.0 MiB/);
  assert.is.not((await cli(['inspect', 'too-big'], { root })).code, 0, 'an image over budget gets no name');
  const total = await cli(['--max-image-size', '5m', d], { root });
  assert.match(total.stderr, /the image is [\d.]+ MiB, over --max-image-size 5\.0 MiB; its biggest layer \([\d.]+ MiB\) is made by "RUN [^"]*dd/);
  assert.is((await cli(['--max-layer-size', '10m', '--max-image-size', '20m', d], { root })).code, 0);
});

test.run();
