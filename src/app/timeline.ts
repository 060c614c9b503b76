/**
 * A build's timeline as a picture: a Gantt chart with one lane per stage, a bar per step coloured by
 * its verdict (cached, ran, failed, cancelled), the critical path outlined, and each bar's tooltip
 * giving the step's line, duration and cache verdict. SVG, or HTML around the same SVG with a legend
 * and a table; self-contained (no script, font or style fetched from anywhere).
 */
import fs from 'node:fs';
import { UsageError } from '../errors/index.js';
import { getBuild, type BuildRecord, type StepRecord } from './history.js';
import type { Store } from '../store/index.js';

const COLORS: Record<StepRecord['verdict'], string> = { cached: '#8aa4c8', ran: '#3f9d5a', failed: '#d0453a', cancelled: '#d9962b' };

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/**
 * The chain of steps that decided the build's length: from the step that ended last, back through the
 * dependency that ended last before it started.
 */
export function criticalPath(steps: StepRecord[]): Set<string> {
  const byId = new Map(steps.filter((s) => s.id).map((s) => [s.id!, s]));
  const end = (s: StepRecord) => s.start + s.durationMs;
  const path = new Set<string>();
  let cur = [...byId.values()].sort((a, b) => end(b) - end(a))[0];
  while (cur && !path.has(cur.id!)) {
    path.add(cur.id!);
    cur = (cur.deps ?? []).map((d) => byId.get(d)).filter((s): s is StepRecord => s !== undefined).sort((a, b) => end(b) - end(a))[0];
  }
  return path;
}

export function timelineSvg(r: BuildRecord): string {
  const lanes = [...new Set(r.steps.map((s) => s.stage ?? '(build)'))];
  const total = Math.max(1, r.durationMs, ...r.steps.map((s) => s.start + s.durationMs));
  const [left, width, laneH, top] = [160, 900, 34, 40];
  const x = (ms: number) => left + (ms / total) * width;
  const crit = criticalPath(r.steps);
  const height = top + lanes.length * laneH + 30;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${left + width + 20}" height="${height}" viewBox="0 0 ${left + width + 20} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="10" y="20" font-weight="bold">${esc(`build ${r.id} (${r.status}) ${(r.durationMs / 1000).toFixed(2)}s, cache ${r.cacheHits}/${r.cacheable}`)}</text>`,
  ];
  // A time axis: about ten ticks at round intervals.
  const step = [1, 2, 5].flatMap((m) => [10, 100, 1000, 10000, 100000].map((p) => m * p)).find((t) => total / t <= 10) ?? 600000;
  for (let t = 0; t <= total; t += step) {
    out.push(`<line x1="${x(t).toFixed(1)}" y1="${top - 6}" x2="${x(t).toFixed(1)}" y2="${height - 24}" stroke="#e4e4e4"/>`, `<text x="${x(t).toFixed(1)}" y="${height - 10}" text-anchor="middle" fill="#666">${(t / 1000).toFixed(step < 1000 ? 1 : 0)}s</text>`);
  }
  lanes.forEach((lane, i) => {
    const y = top + i * laneH;
    out.push(`<text class="lane" x="10" y="${y + laneH / 2 + 4}">${esc(lane)}</text>`);
    for (const s of r.steps.filter((st) => (st.stage ?? '(build)') === lane)) {
      const w = Math.max(2, x(s.start + s.durationMs) - x(s.start));
      const onPath = s.id !== undefined && crit.has(s.id);
      const tip = `${s.line !== undefined ? `line ${s.line}: ` : ''}${s.name}\n${(s.durationMs / 1000).toFixed(2)}s, ${s.verdict}${s.reason ? ` (cache miss: ${s.reason})` : ''}${onPath ? '\non the critical path' : ''}`;
      out.push(
        `<rect class="bar ${s.verdict}${onPath ? ' critical' : ''}" data-lane="${esc(lane)}" data-step="${esc(s.name)}"${s.line !== undefined ? ` data-line="${s.line}"` : ''} data-verdict="${s.verdict}" x="${x(s.start).toFixed(1)}" y="${y + 6}" width="${w.toFixed(1)}" height="${laneH - 12}" rx="3" fill="${COLORS[s.verdict]}"${onPath ? ' stroke="#111" stroke-width="2"' : ''}><title>${esc(tip)}</title></rect>`,
      );
    }
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

export function timelineHtml(r: BuildRecord): string {
  const legend = Object.entries(COLORS).map(([k, c]) => `<span><i style="background:${c}"></i>${k}</span>`).join(' ');
  const rows = r.steps
    .map((s) => `<tr><td>${s.line ?? ''}</td><td>${esc(s.stage ?? '')}</td><td>${esc(s.name)}</td><td>${s.verdict}</td><td>${(s.durationMs / 1000).toFixed(2)}s</td><td>${esc(s.reason ?? '')}</td></tr>`)
    .join('\n');
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>tsbuild build ${r.id}</title>
<style>body{font-family:sans-serif;margin:20px}i{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;vertical-align:middle}
table{border-collapse:collapse;margin-top:16px}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;font-size:13px}</style></head>
<body><p>${legend} <span>(outlined: the critical path; hover a bar for its details)</span></p>
${timelineSvg(r)}<table><tr><th>line</th><th>stage</th><th>step</th><th>verdict</th><th>time</th><th>cache miss</th></tr>
${rows}
</table></body></html>
`;
}

/** SVG or HTML by the file's extension. */
export function renderTimeline(r: BuildRecord, file: string): string {
  if (/\.svg$/i.test(file)) return timelineSvg(r);
  if (/\.html?$/i.test(file)) return timelineHtml(r);
  throw new UsageError(`--timeline ${file}: give a .svg or .html file name`);
}

export function checkTimelineFile(file: string): void {
  if (!/\.(svg|html?)$/i.test(file)) throw new UsageError(`--timeline ${file}: give a .svg or .html file name`);
}

/** Draws a recorded build into `file` (`.svg` or `.html`). */
export function writeTimeline(store: Store, ref: string, file: string): void {
  checkTimelineFile(file);
  fs.writeFileSync(file, renderTimeline(getBuild(store, ref), file));
}
