import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { byText } from './order.js';

test('byText: code-unit order, as Go sorts strings: upper case before lower, no locale folding', () => {
  assert.equal(['b', 'a', 'B', 'a1', 'A', 'é', 'z'].sort(byText), ['A', 'B', 'a', 'a1', 'b', 'z', 'é']);
  assert.equal(['2026-01-02T00:00:00.000Z', '2025-12-31T23:59:59.999Z', '2026-01-01T00:00:00.000Z'].sort(byText), ['2025-12-31T23:59:59.999Z', '2026-01-01T00:00:00.000Z', '2026-01-02T00:00:00.000Z']);
  assert.is(byText('x', 'x'), 0);
});

test.run();
