import fs from 'node:fs';
import path from 'node:path';
import { snapshotterSuite } from './testsuite.js';
import { ZfsSnapshotter, zfsUnavailable } from './zfs.js';

// Needs zfs and a directory on a zfs dataset (TSBUILD_ZFS_ROOT); otherwise the suite says why it skipped.
const zfsRoot = process.env.TSBUILD_ZFS_ROOT;
snapshotterSuite({
  name: 'zfs',
  unavailable: zfsUnavailable() ?? (zfsRoot ? undefined : 'set TSBUILD_ZFS_ROOT to a directory on a zfs dataset to run it'),
  create: (root) => new ZfsSnapshotter(path.join(root, 'snapshots', 'zfs')),
  tmpRoot: () => fs.mkdtempSync(path.join(zfsRoot ?? '/nonexistent', 'tsb-zfs-')),
  storeDir: (root) => path.join(root, 'snapshots', 'zfs'),
});
