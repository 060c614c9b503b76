/**
 * fuse-overlayfs mounts. The kernel's overlay is a mount(2) call the helper makes; fuse-overlayfs is a
 * process that serves the mount from user space. Started here, it daemonizes once the mount is in
 * place and ends by itself when the mount is unmounted (umount through the helper, as for any mount).
 * It is the rootless fallback on kernels that refuse overlay in a user namespace (before 5.11), as in
 * podman, and the way to show a layer under shifted ids without idmapped mounts (`uidmapping`).
 */
import { execFile, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { promisify } from 'node:util';
import { TsbuildError } from '../errors/index.js';
import type { SysMount } from './mounts.js';
import type { IdMap } from './idmap.js';
import type { Mount } from '../snapshotter/index.js';
import { isRootless, onPath } from './userns.js';
import { overlayDirs } from './layers.js';

/** The mount type, as mount(8) and mountinfo name it (mount.fuse starts the program). */
export const FUSE_OVERLAY = 'fuse.fuse-overlayfs';

/** Undefined when fuse-overlayfs can serve mounts here, else what is missing. */
export function fuseOverlayUnavailable(): string | undefined {
  if (!onPath('fuse-overlayfs')) return 'fuse-overlayfs is not installed (Debian: apt-get install fuse-overlayfs)';
  try {
    fs.accessSync('/dev/fuse', fs.constants.R_OK | fs.constants.W_OK);
  } catch {
    return '/dev/fuse is missing or not usable by this user';
  }
  return undefined;
}

/** fuse-overlayfs's `uidmapping=` form of a map: the triples joined by colons. */
const mapping = (m: IdMap[]) => m.map((x) => `${x.containerID}:${x.hostID}:${x.size}`).join(':');

function args(m: SysMount, target: string, ids?: { uid: IdMap[]; gid: IdMap[] }): string[] {
  // squash options and the like are not ours to pass; only the layer directories and the id maps.
  const opts = m.data.split(',').filter((o) => /^(lowerdir|upperdir|workdir)=/.test(o));
  if (ids) opts.push(`uidmapping=${mapping(ids.uid)}`, `gidmapping=${mapping(ids.gid)}`);
  return ['-o', opts.join(','), target];
}

function failure(target: string, stderr: string, status: number | null): TsbuildError {
  // Its own noise ("unknown argument ignored: lazytime") is not the reason.
  const why = stderr.split('\n').filter((l) => l.trim() && !l.includes('unknown argument ignored')).join('; ') || `exit ${status}`;
  return new TsbuildError('SNAPSHOT_MOUNT', `fuse-overlayfs could not mount ${target}: ${why}; check that /dev/fuse is usable, or choose another snapshotter with --snapshotter`);
}

/**
 * Mounts `m` (a fuse-overlayfs mount of the snapshotter's) on `target`; `ids` shows the layers'
 * owners through a map, as an idmapped mount would. Returns once the mount is in place.
 */
export function mountFuseOverlay(m: SysMount, target: string, ids?: { uid: IdMap[]; gid: IdMap[] }): void {
  const r = spawnSync('fuse-overlayfs', args(m, target, ids), { cwd: m.cwd, encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'] });
  if (r.error || r.status !== 0) throw failure(target, r.error?.message ?? r.stderr, r.status);
}

export async function mountFuseOverlayAsync(m: SysMount, target: string, ids?: { uid: IdMap[]; gid: IdMap[] }): Promise<void> {
  try {
    await promisify(execFile)('fuse-overlayfs', args(m, target, ids), { cwd: m.cwd, encoding: 'utf8' });
  } catch (e) {
    const err = e as Error & { stderr?: string; code?: number };
    throw failure(target, err.stderr || err.message, err.code ?? null);
  }
}

/**
 * The same tree served by fuse-overlayfs: a kernel overlay's directories (relative ones made absolute:
 * a process takes them, not mount(2) from a working directory). For a container whose layers must be
 * shown through a map where idmapped mounts are not allowed (a rootless tsbuild). A plain directory
 * (native, btrfs) has no layers to serve: that is an error naming the drivers that work.
 */
function servedByFuse(mounts: Mount[], why: string): Mount[] {
  return mounts.map((m) => {
    if (m.type === FUSE_OVERLAY) return m;
    const d = overlayDirs(m);
    if (!d) throw new TsbuildError('USERNS_DRIVER', `${why} needs the container's root served by fuse-overlayfs, which takes overlay layers: run it with --snapshotter overlayfs or fuse-overlayfs (this root is a plain directory)`);
    const opts = [`lowerdir=${d.lower.join(':')}`, ...(d.upper ? [`upperdir=${d.upper}`] : []), ...(d.work ? [`workdir=${d.work}`] : [])];
    return { type: FUSE_OVERLAY, source: 'fuse-overlayfs', options: m.options.includes('ro') ? ['ro', ...opts] : opts };
  });
}

/**
 * A container's root mounts as they are mounted for it: rootless, one with a user namespace of its
 * own is always served by fuse-overlayfs (idmapped mounts need host root), for running it and for
 * `cp` alike, so fuse-overlayfs's marks in its upper are only ever read by fuse-overlayfs.
 */
export function containerRootMounts(mounts: Mount[], ownNamespace: boolean, why: string): Mount[] {
  return ownNamespace && isRootless() ? servedByFuse(mounts, why) : mounts;
}
