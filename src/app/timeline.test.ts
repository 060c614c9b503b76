import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { criticalPath, renderTimeline, timelineHtml, timelineSvg } from './timeline.js';
import type { BuildRecord } from './history.js';

const rec: BuildRecord = {
  id: 'abc123', started: '2026-12-02T00:00:00.000Z', durationMs: 3000, status: 'failed', context: '.', dockerfile: 'Dockerfile', names: [],
  cacheHits: 1, cacheable: 4,
  steps: [
    { id: 'a', deps: [], name: '[deps 1/2] RUN fetch', stage: 'deps', line: 3, start: 0, durationMs: 1000, verdict: 'cached' },
    { id: 'b', deps: [], name: '[tools 1/2] RUN make <tools>', stage: 'tools', line: 6, start: 0, durationMs: 400, verdict: 'ran', reason: '1 file changed' },
    { id: 'c', deps: ['a', 'b'], name: '[final 1/2] COPY --from=deps / /', stage: 'final', line: 9, start: 1000, durationMs: 500, verdict: 'ran' },
    { id: 'd', deps: ['c'], name: '[final 2/2] RUN test', stage: 'final', line: 10, start: 1500, durationMs: 1500, verdict: 'failed' },
  ],
};

test('critical path: back from the last step through the dependency that ended last', () => {
  assert.equal([...criticalPath(rec.steps)].sort(), ['a', 'c', 'd']);
});

test('svg: a lane per stage, a bar per step with its verdict, line and tooltip; the critical path outlined; text escaped', () => {
  const svg = timelineSvg(rec);
  assert.equal([...svg.matchAll(/<text class="lane"[^>]*>([^<]*)</g)].map((m) => m[1]), ['deps', 'tools', 'final']);
  const bars = [...svg.matchAll(/<rect class="bar ([a-z]+)( critical)?" data-lane="([^"]*)" data-step="([^"]*)" data-line="(\d+)" data-verdict="([a-z]+)"[^>]*><title>([^<]*)<\/title>/g)];
  assert.equal(bars.map((b) => [b[3], b[5], b[6], b[2] === ' critical']), [['deps', '3', 'cached', true], ['tools', '6', 'ran', false], ['final', '9', 'ran', true], ['final', '10', 'failed', true]]);
  assert.match(bars[1]![4]!, /make &lt;tools&gt;/);
  assert.match(bars[1]![7]!, /line 6: \[tools 1\/2\] RUN make &lt;tools&gt;\n0\.40s, ran \(cache miss: 1 file changed\)/);
  assert.ok(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'));
  assert.not.match(svg, /https?:\/\/(?!www\.w3\.org\/2000\/svg)/, 'nothing fetched');
});

test('html wraps the same svg with a legend and a table; the file name picks the format', () => {
  const html = timelineHtml(rec);
  assert.match(html, /^<!doctype html>/);
  assert.ok(html.includes(timelineSvg(rec)));
  assert.match(html, /<td>10<\/td><td>final<\/td><td>\[final 2\/2\] RUN test<\/td><td>failed<\/td>/);
  assert.is(renderTimeline(rec, 'x.SVG'), timelineSvg(rec));
  assert.throws(() => renderTimeline(rec, 'x.png'), /give a \.svg or \.html file name/);
});

test.run();
