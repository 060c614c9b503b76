import path from 'node:path';
import { OverlaySnapshotter } from './overlay.js';
import { NativeSnapshotter } from './native.js';
import { BtrfsSnapshotter } from './btrfs.js';
import type { Snapshotter } from './types.js';
import { TsbuildError } from '../errors/index.js';

export type { Snapshotter, Mount, Info, Kind, Usage } from './types.js';
export { SnapshotError } from './errors.js';
export { OverlaySnapshotter, duSync } from './overlay.js';

export const DRIVERS = ['overlayfs', 'native', 'btrfs'] as const;
export { BtrfsSnapshotter, onBtrfs } from './btrfs.js';
export { NativeSnapshotter } from './native.js';

/** Opens the named driver's snapshotter under `<storeRoot>/snapshots/<driver>`. */
export function openSnapshotter(storeRoot: string, driver = 'overlayfs'): Snapshotter {
  switch (driver) {
    case 'overlayfs':
      return new OverlaySnapshotter(path.join(storeRoot, 'snapshots', 'overlayfs'));
    case 'native':
      return new NativeSnapshotter(path.join(storeRoot, 'snapshots', 'native'));
    case 'btrfs':
      return new BtrfsSnapshotter(path.join(storeRoot, 'snapshots', 'btrfs'));
    default:
      throw new TsbuildError('USAGE', `unknown snapshotter "${driver}": this build supports ${DRIVERS.join(', ')}`);
  }
}
