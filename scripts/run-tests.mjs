#!/usr/bin/env node
// Runs every uvu test file under dist/ (compiled from src/**/*.test.ts), each in its own process so
// one crashing or hanging file cannot hide the rest, and ends with the line CI reads:
// `N passed, N failed, N skipped`. uvu's `Total` counts the tests that ran (skips are not in it), so a
// file's failures are Total - Passed; a file that dies, hangs past the timeout or prints no summary
// counts as one failure.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { countFile } from './test-count.mjs';

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
// Generous: the slowest file (registry e2e) takes about two minutes on this machine.
const timeoutMs = Number(process.env.TSBUILD_TEST_TIMEOUT_S ?? 900) * 1000;
// `run`'s default network is the bridge, which would put a bridge, veths and NAT rules into this
// machine's own namespace: tests default to the host network, and the network tests, which ask for
// the bridge, run tsbuild inside a throwaway network namespace of their own.
const testEnv = { ...process.env, FORCE_COLOR: '0', TSBUILD_NETWORK: process.env.TSBUILD_NETWORK ?? 'host' };
let passed = 0, failed = 0, skipped = 0;
const broken = [];
for (const f of files) {
  const rel = path.relative(root, f);
  console.log(`\n# ${rel}`);
  const r = spawnSync(process.execPath, [f], { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8', env: testEnv, maxBuffer: 64 << 20, timeout: timeoutMs, killSignal: 'SIGTERM' });
  const out = r.stdout ?? '';
  process.stdout.write(out);
  const c = countFile({ stdout: out, status: r.status ?? r.signal, timedOut: r.error?.code === 'ETIMEDOUT' });
  passed += c.passed;
  failed += c.failed;
  skipped += c.skipped;
  if (c.broken !== undefined) broken.push(c.broken ? `${rel} (${c.broken === 'timed out' ? `timed out after ${timeoutMs / 1000} s; TSBUILD_TEST_TIMEOUT_S changes the limit` : c.broken})` : rel);
}
if (broken.length) console.log(`\nfailing files:\n  ${broken.join('\n  ')}`);
console.log(`\n${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 || broken.length > 0 ? 1 : 0);
