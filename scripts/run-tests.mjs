#!/usr/bin/env node
// Runs every uvu test file under dist/ (compiled from src/**/*.test.ts), each in its own process so
// one crashing file cannot hide the rest, and ends with the line CI reads: `N passed, N failed, N skipped`.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const filter = process.argv[2] ? new RegExp(process.argv[2]) : null;
function walk(dir) {
  const out = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(p));
    else if (e.name.endsWith('.test.js')) out.push(p);
  }
  return out;
}
const files = walk(path.join(root, 'dist')).sort().filter((f) => !filter || filter.test(f));
let passed = 0, failed = 0, skipped = 0;
const broken = [];
for (const f of files) {
  const rel = path.relative(root, f);
  console.log(`\n# ${rel}`);
  const r = spawnSync(process.execPath, [f], { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8', env: { ...process.env, FORCE_COLOR: '0' }, maxBuffer: 64 << 20 });
  const out = r.stdout ?? '';
  process.stdout.write(out);
  const total = /Total:\s+(\d+)/.exec(out);
  const ok = /Passed:\s+(\d+)/.exec(out);
  const sk = /Skipped:\s+(\d+)/.exec(out);
  if (!total || !ok) {
    failed += 1;
    broken.push(`${rel} (exit ${r.status ?? r.signal}, no summary)`);
    continue;
  }
  const t = +total[1], p = +ok[1], s = sk ? +sk[1] : 0;
  passed += p;
  skipped += s;
  failed += Math.max(0, t - p - s);
  if (t - p - s > 0 || r.status !== 0) broken.push(rel);
}
if (broken.length) console.log(`\nfailing files:\n  ${broken.join('\n  ')}`);
console.log(`\n${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 || broken.length > 0 ? 1 : 0);
