import path from 'node:path';
import { snapshotterSuite } from './testsuite.js';
import { FuseOverlaySnapshotter } from './fuse.js';
import { programUnavailable, sandboxUnavailable, tmpdir } from '../testutil/index.js';

snapshotterSuite({
  name: 'fuse-overlayfs',
  unavailable: sandboxUnavailable() ?? programUnavailable('fuse-overlayfs', ['--version'], 'fuse-overlayfs'),
  create: (root) => new FuseOverlaySnapshotter(path.join(root, 'snapshots', 'fuse-overlayfs')),
  tmpRoot: () => tmpdir('tsb-snap-'),
  storeDir: (root) => path.join(root, 'snapshots', 'fuse-overlayfs'),
});
