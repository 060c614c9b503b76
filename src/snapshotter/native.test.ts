import path from 'node:path';
import { snapshotterSuite } from './testsuite.js';
import { NativeSnapshotter } from './native.js';
import { sandboxUnavailable, tmpdir } from '../testutil/index.js';

snapshotterSuite({
  name: 'native',
  unavailable: sandboxUnavailable(),
  create: (root) => new NativeSnapshotter(path.join(root, 'snapshots', 'native')),
  tmpRoot: () => tmpdir('tsb-snap-'),
  storeDir: (root) => path.join(root, 'snapshots', 'native'),
});
