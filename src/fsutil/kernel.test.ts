import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { bootId, kernelAtLeast } from './kernel.js';

test('kernelAtLeast compares major and minor of a release, whatever follows them', () => {
  assert.ok(kernelAtLeast('5.10', '6.18.44-fc-v1272'));
  assert.ok(kernelAtLeast('5.10', '5.10.0-28-amd64'));
  assert.ok(kernelAtLeast('5.8', '5.10'));
  assert.not.ok(kernelAtLeast('5.10', '5.9.16'));
  assert.not.ok(kernelAtLeast('5.10', '4.19.0'));
  assert.ok(kernelAtLeast('6.1', '6.1-rc5'));
  assert.ok(kernelAtLeast('1.0'), 'the running kernel by default');
});

test('bootId is the kernel\'s UUID for this boot, the same on every call', () => {
  assert.match(bootId(), /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  assert.is(bootId(), bootId());
});

test.run();
