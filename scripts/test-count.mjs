// How one test file's run counts, from uvu's summary. uvu's `Total` is the number of tests that ran
// (test.skip does not add to it), so failures are Total - Passed, never Total - Passed - Skipped.
// A file that timed out, printed no summary, or exited non-zero with nothing failed counts one failure.
export function countFile({ stdout, status, timedOut }) {
  if (timedOut) return { passed: 0, failed: 1, skipped: 0, broken: 'timed out' };
  const total = /Total:\s+(\d+)/.exec(stdout);
  const ok = /Passed:\s+(\d+)/.exec(stdout);
  const sk = /Skipped:\s+(\d+)/.exec(stdout);
  if (!total || !ok) return { passed: 0, failed: 1, skipped: 0, broken: `exit ${status}, no summary` };
  const t = +total[1], p = +ok[1], s = sk ? +sk[1] : 0;
  let failed = Math.max(0, t - p);
  if (failed === 0 && status !== 0) failed = 1;
  return { passed: p, failed, skipped: s, broken: failed > 0 ? (status !== 0 && t === p ? `exit ${status}` : '') : undefined };
}
