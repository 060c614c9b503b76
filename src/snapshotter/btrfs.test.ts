import fs from 'node:fs';
import path from 'node:path';
import { snapshotterSuite } from './testsuite.js';
import { BtrfsSnapshotter } from './btrfs.js';
import { makeBtrfs, sandboxUnavailable } from '../testutil/index.js';

const why = sandboxUnavailable();
const fsys = why ? { unavailable: why } : makeBtrfs();
let n = 0;
snapshotterSuite({
  name: 'btrfs',
  unavailable: 'unavailable' in fsys ? fsys.unavailable : undefined,
  create: (root) => new BtrfsSnapshotter(path.join(root, 'snapshots', 'btrfs')),
  tmpRoot: () => {
    const d = path.join((fsys as { dir: string }).dir, `t${n++}`);
    fs.mkdirSync(d);
    return d;
  },
  storeDir: (root) => path.join(root, 'snapshots', 'btrfs'),
  teardown: () => {
    if ('dispose' in fsys) fsys.dispose();
  },
});
