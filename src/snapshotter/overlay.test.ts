import path from 'node:path';
import { snapshotterSuite } from './testsuite.js';
import { OverlaySnapshotter } from './overlay.js';
import { sandboxUnavailable, tmpdir } from '../testutil/index.js';

snapshotterSuite({
  name: 'overlayfs',
  unavailable: sandboxUnavailable(),
  create: (root) => new OverlaySnapshotter(path.join(root, 'snapshots', 'overlayfs')),
  tmpRoot: () => tmpdir('tsb-snap-'),
  storeDir: (root) => path.join(root, 'snapshots', 'overlayfs'),
});
