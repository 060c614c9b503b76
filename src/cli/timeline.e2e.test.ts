/**
 * The timeline picture in a real browser: headless Chromium (Debian's `chromium`) renders the HTML and
 * the SVG of a multi-stage build, and the test reads back from the DOM that every step has a bar in
 * its stage's lane, with its verdict, and a size. Chromium runs in a network namespace of its own
 * (`unshare --net`, loopback only), so whatever it tries to reach, nothing leaves this machine.
 */
import { spawnSync } from 'node:child_process';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import { cli, e2eHarness, programUnavailable } from '../testutil/index.js';

const { itUnless, root, ctx, test } = e2eHarness('tl');
const noChromium = programUnavailable('chromium', ['--version'], 'chromium');

/** Chromium's DOM after loading and running the page's scripts. */
function dumpDom(file: string): string {
  const r = spawnSync('unshare', ['--net', 'chromium', '--headless', '--no-sandbox', '--disable-gpu', '--allow-file-access-from-files', '--virtual-time-budget=2000', '--dump-dom', `file://${file}`], { encoding: 'utf8', timeout: 60_000 });
  assert.is(r.status, 0, r.stderr);
  return r.stdout;
}

// Added to a copy of the page: each bar's lane (by the lane label whose row it sits in), verdict and box.
const PROBE = `<script>
const lanes = [...document.querySelectorAll('text.lane')].map((t) => ({ name: t.textContent, y: t.getBBox().y + t.getBBox().height / 2 }));
const bars = [...document.querySelectorAll('rect.bar')].map((r) => {
  const b = r.getBBox();
  const mid = b.y + b.height / 2;
  const lane = lanes.reduce((best, l) => (Math.abs(l.y - mid) < Math.abs(best.y - mid) ? l : best), lanes[0]);
  return { step: r.dataset.step, line: r.dataset.line, verdict: r.dataset.verdict, lane: lane.name, width: b.width, height: b.height, fill: getComputedStyle(r).fill };
});
const pre = document.createElement('pre');
pre.id = 'probe';
pre.textContent = JSON.stringify(bars);
document.body.appendChild(pre);
</script>`;

itUnless(noChromium, 'headless Chromium renders the timeline: every step a bar in its stage lane, with its verdict and a size', async () => {
  const d = ctx('FROM base AS left\nRUN echo l > /l\nFROM base AS right\nRUN echo r > /r\nFROM base AS final\nCOPY --from=left /l /l\nCOPY --from=right /r /r\nRUN cat /l /r\n');
  const html = path.join(d, 'timeline.html');
  const r = await cli(['--timeline', html, d], { root });
  assert.is(r.code, 0, r.stderr);
  const rec = JSON.parse((await cli(['builds', 'show', '--format', 'json', 'latest'], { root })).stdout) as { steps: { name: string; stage: string; verdict: string; line: number }[] };
  const probed = path.join(d, 'probed.html');
  fs.writeFileSync(probed, fs.readFileSync(html, 'utf8').replace('</body>', `${PROBE}</body>`));
  const dom = dumpDom(probed);
  const json = /<pre id="probe">([^<]*)<\/pre>/.exec(dom)?.[1];
  assert.ok(json, 'the probe ran in the page');
  const bars = JSON.parse(json!.replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&')) as { step: string; line: string; verdict: string; lane: string; width: number; height: number; fill: string }[];
  assert.equal(bars.map((b) => `${b.lane} ${b.line} ${b.verdict}`).sort(), rec.steps.map((s) => `${s.stage} ${s.line} ${s.verdict}`).sort());
  for (const b of bars) {
    assert.ok(b.width >= 2 && b.height > 0, `${b.step} has a size`);
    assert.match(b.fill, /^rgb\(/, `${b.step} is filled`);
  }
  // The SVG alone parses as SVG in the browser too.
  const svg = path.join(d, 'timeline.svg');
  assert.is((await cli(['builds', 'show', 'latest', '--timeline', svg], { root })).code, 0);
  assert.is((dumpDom(svg).match(/<rect class="bar /g) ?? []).length, rec.steps.length);
});

test.run();
