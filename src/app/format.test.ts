import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ago, humanDuration } from './format.js';

test('durations read as Docker prints them (go-units HumanDuration)', () => {
  const cases: [number, string][] = [
    [0, 'Less than a second'],
    [0.9, 'Less than a second'],
    [1, '1 second'],
    [59, '59 seconds'],
    [60, 'About a minute'],
    [119, 'About a minute'],
    [120, '2 minutes'],
    [3599, '59 minutes'],
    [3600, 'About an hour'],
    [5399, 'About an hour'],
    [5400, '2 hours'],
    [47 * 3600, '47 hours'],
    [48 * 3600, '2 days'],
    [13 * 86400, '13 days'],
    [14 * 86400, '2 weeks'],
    [59 * 86400, '8 weeks'],
    [60 * 86400, '2 months'],
    [729 * 86400, '24 months'],
    [730 * 86400, '2 years'],
    [56.9 * 365 * 86400, '56 years'],
  ];
  for (const [s, want] of cases) assert.is(humanDuration(s), want, `${s} s`);
});

test('ago: relative to now; a time in the future or missing is not a negative age', () => {
  const now = Date.parse('2026-12-04T00:00:00Z');
  assert.is(ago('2026-12-03T23:58:00Z', now), '2 minutes ago');
  assert.is(ago('2026-12-04T00:00:05Z', now), 'Less than a second ago');
  assert.is(ago(undefined, now), 'N/A');
});

test.run();
