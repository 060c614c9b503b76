/**
 * snapshotter: containerd's snapshotter contract (prepare, view, mounts, commit, update, remove, stat,
 * walk, usage, cleanup, and sync for trees written unsynced) with mounts as data, and its drivers: overlayfs, fuse-overlayfs, native (plain
 * copies), btrfs, zfs. Every driver passes one conformance suite (testsuite.ts) and gives the same layer bytes.
 * Optional diff seams: `upperDir` (overlay) and `diffDirs` (tree comparison).
 *
 * Imports errors and fsutil only.
 */
import path from 'node:path';
import { OverlaySnapshotter } from './overlay.js';
import { FuseOverlaySnapshotter } from './fuse.js';
import { NativeSnapshotter } from './native.js';
import { BtrfsSnapshotter, onBtrfs } from './btrfs.js';
import { ZfsSnapshotter, zfsUnavailable } from './zfs.js';
import type { Snapshotter } from './types.js';
import { TsbuildError } from '../errors/index.js';

export type { Snapshotter, Mount } from './types.js';
export { SnapshotError } from './errors.js';
export { duSync } from './du.js';
export { removeAllSnapshots } from './base.js';
export { checkMetadata, type MetadataCheck } from './metadata.js';
export { NativeSnapshotter } from './native.js';

const DRIVERS = ['overlayfs', 'fuse-overlayfs', 'native', 'btrfs', 'zfs'] as const;

/** Opens the named driver's snapshotter under `<storeRoot>/snapshots/<driver>`. */
export function openSnapshotter(storeRoot: string, driver = 'overlayfs', o: { userNamespace?: boolean } = {}): Snapshotter {
  switch (driver) {
    case 'overlayfs':
      return new OverlaySnapshotter(path.join(storeRoot, 'snapshots', 'overlayfs'), { userxattr: o.userNamespace });
    case 'fuse-overlayfs':
      return new FuseOverlaySnapshotter(path.join(storeRoot, 'snapshots', 'fuse-overlayfs'));
    case 'native':
      return new NativeSnapshotter(path.join(storeRoot, 'snapshots', 'native'));
    case 'btrfs':
      return new BtrfsSnapshotter(path.join(storeRoot, 'snapshots', 'btrfs'));
    case 'zfs':
      return new ZfsSnapshotter(path.join(storeRoot, 'snapshots', 'zfs'));
    default:
      throw new TsbuildError('USAGE', `unknown snapshotter "${driver}": this build supports ${DRIVERS.join(', ')}`);
  }
}

/** What each driver needs and whether this machine (and this store's filesystem) has it. */
export function driverSupport(storeRoot: string, overlayProbe: () => string | undefined, fuseUnavailable: () => string | undefined): Record<string, string> {
  const ov = overlayProbe();
  const fuse = fuseUnavailable();
  return {
    overlayfs: ov ? `unavailable: ${ov}` : 'available',
    'fuse-overlayfs': fuse ? `unavailable: ${fuse}` : 'available (overlay served from user space; the rootless fallback)',
    native: 'available (plain copies; any filesystem)',
    btrfs: onBtrfs(storeRoot) ? 'available' : 'unavailable: the store is not on btrfs',
    zfs: zfsUnavailable() ? `unavailable: ${zfsUnavailable()}` : 'available when the store is on a zfs dataset',
  };
}
