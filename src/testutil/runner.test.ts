/** The test runner's counting (scripts/test-count.mjs), which decides CI's `N failed`. */
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { repoRoot } from './index.js';

interface Count { passed: number; failed: number; skipped: number; broken?: string }
type CountFile = (r: { stdout: string; status: number | string | null; timedOut?: boolean }) => Count;

// A plain .mjs outside src/: loaded at run time so tsc does not need its types.
const modPath = path.join(repoRoot, 'scripts/test-count.mjs');
const load = async (): Promise<CountFile> => ((await import(modPath)) as { countFile: CountFile }).countFile;

const summary = (total: number, passed: number, skipped: number) => `  Total:     ${total}\n  Passed:    ${passed}\n  Skipped:   ${skipped}\n  Duration:  1ms\n`;

test('a failure in a file with skips is counted (uvu Total excludes skips)', async () => {
  const countFile = await load();
  // 3 tests ran, 2 passed, 1 skipped besides: one failure, which Total - Passed - Skipped would hide.
  assert.equal(countFile({ stdout: summary(3, 2, 1), status: 1 }), { passed: 2, failed: 1, skipped: 1, broken: '' });
});

test('a clean file with skips has no failures', async () => {
  const countFile = await load();
  assert.equal(countFile({ stdout: summary(2, 2, 1), status: 0 }), { passed: 2, failed: 0, skipped: 1, broken: undefined });
});

test('no summary, a timeout, or a non-zero exit with all passed each count one failure', async () => {
  const countFile = await load();
  assert.is(countFile({ stdout: 'Segmentation fault', status: 139 }).failed, 1);
  assert.is(countFile({ stdout: '', status: null, timedOut: true }).broken, 'timed out');
  const crashedAfter = countFile({ stdout: summary(2, 2, 0), status: 1 });
  assert.is(crashedAfter.failed, 1);
  assert.is(crashedAfter.passed, 2);
});

test.run();
