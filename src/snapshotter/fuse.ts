/**
 * The fuse-overlayfs driver: the overlay driver's layout and metadata, served by fuse-overlayfs
 * instead of the kernel. For kernels that refuse overlay in a user namespace (rootless before 5.11),
 * as podman's mount_program. The mounts it gives are `fuse.fuse-overlayfs` mounts (mount(8)'s name) with absolute paths
 * (a process, not mount(2), takes them: no page-sized option limit, no working directory).
 *
 * What fuse-overlayfs writes differs from the kernel's in two marks the differ reads: an opaque
 * directory also holds a `.wh..wh..opq` file (and a `.wh..opq` whiteout), and rootless it is
 * marked `user.fuseoverlayfs.opaque`. Hard links copied up are not kept as one file (no index).
 */
import path from 'node:path';
import { OverlaySnapshotter } from './overlay.js';
import type { Mount } from './types.js';

export class FuseOverlaySnapshotter extends OverlaySnapshotter {
  override readonly driver: string = 'fuse-overlayfs';

  // `volatile` is the kernel's option; fuse-overlayfs syncs only when asked (fsync), so it is dropped.
  protected override overlay(lowers: string[], rw?: { upper: string; work: string; volatile?: boolean }): Mount {
    const abs = (p: string) => path.join(this.dir, p);
    const opts = [`lowerdir=${lowers.map(abs).join(':')}`, ...(rw ? [`upperdir=${abs(rw.upper)}`, `workdir=${abs(rw.work)}`] : [])];
    return { type: 'fuse.fuse-overlayfs', source: 'fuse-overlayfs', options: rw ? opts : ['ro', ...opts] };
  }
}
