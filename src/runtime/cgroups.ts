/**
 * Cgroups behind one interface, v1 and v2. `detectCgroups` reads what the host has (v1, v2 or
 * hybrid, and which controllers where) from mountinfo and /proc/self/cgroup; `cgroupManager` gives
 * the driver for it. Every cgroup of ours lives under `<our own cgroup>/tsbuild/<name>` in each
 * hierarchy, so containers are charged to whatever limits tsbuild itself runs under, and names carry
 * the owner's pid (`ctr-<pid>-…`), which lets recovery remove what a dead tsbuild left. All paths are
 * built from an injectable root, so the policy is unit-tested against a fake tree.
 */
import path from 'node:path';
import { writable } from '../fsutil/index.js';
import { readOr, requireControllers, type Cgroup, type CgroupDriver, type CgroupLayout, type CgroupLimits } from './cgroupfs.js';
import { V1Cgroups } from './cgroups-v1.js';
import { V2Cgroups } from './cgroups-v2.js';

export { CgroupError } from './cgroupfs.js';
export type { BlkioRate, Cgroup, CgroupDriver, CgroupLayout, CgroupLimits, CgroupStats, DeviceRule } from './cgroupfs.js';
export { sharesToWeight, blkioToIoWeight } from './cgroups-v2.js';

/** Reads the host's layout; the file arguments are seams for tests. */
export function detectCgroups(mountinfo = '/proc/self/mountinfo', selfCgroup = '/proc/self/cgroup'): CgroupLayout {
  const self = new Map<string, string>();
  let selfV2 = '/';
  for (const line of readOr(selfCgroup).split('\n')) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    if (m[1] === '0' && m[2] === '') selfV2 = m[3]!;
    for (const c of m[2]!.split(',')) if (c) self.set(c, m[3]!);
  }
  const v1 = new Map<string, { mount: string; self: string }>();
  let v2: CgroupLayout['v2'];
  for (const line of readOr(mountinfo).split('\n')) {
    const [pre, post] = line.split(' - ');
    if (!pre || !post) continue;
    const mountPoint = pre.split(' ')[4]!;
    const [fstype, , opts = ''] = post.split(' ');
    if (fstype === 'cgroup') {
      for (const o of opts.split(',')) if (self.has(o) && !v1.has(o)) v1.set(o, { mount: mountPoint, self: self.get(o)! });
    } else if (fstype === 'cgroup2' && !v2) {
      const controllers = new Set(readOr(path.join(mountPoint, selfV2, 'cgroup.controllers')).trim().split(/\s+/).filter(Boolean));
      v2 = { mount: mountPoint, self: selfV2, controllers };
    }
  }
  const mode = v1.size && v2 ? 'hybrid' : v1.size ? 'v1' : v2 ? 'v2' : 'none';
  return { mode, v1, v2 };
}

/** A driver for no cgroups at all: runs without, unless a limit is asked for. */
class NoCgroups implements CgroupDriver {
  readonly version = 1;
  create(name: string, l: CgroupLimits): Cgroup {
    requireControllers(l, () => false, false);
    return { name, procsFiles: [], joinFiles: [], stats: () => ({ cpuNanos: 0, memoryBytes: 0, pids: 0, readBytes: 0, writeBytes: 0 }), oomKilled: () => false, remove: async () => undefined };
  }
  open(): Cgroup | undefined {
    return undefined;
  }
  list(): string[] {
    return [];
  }
}

/** v2 when the memory controller is on the unified hierarchy, v1 when it is on its own, else none. */
export function cgroupManager(layout: CgroupLayout = detectCgroups()): CgroupDriver {
  if (layout.v1.has('memory')) return new V1Cgroups(layout);
  if (layout.v2?.controllers.has('memory') || (layout.mode === 'v2' && layout.v2)) return new V2Cgroups(layout.v2!);
  return new NoCgroups();
}

/** What `tsbuild info` says about the host's cgroups. */
export function describeCgroups(layout: CgroupLayout = detectCgroups()): string {
  const v1 = [...layout.v1.keys()].filter((c) => !c.startsWith('name=')).sort();
  const v2 = [...(layout.v2?.controllers ?? [])].sort();
  const parts: string[] = [layout.mode];
  if (v1.length) parts.push(`v1: ${v1.join(', ')}`);
  if (layout.v2) parts.push(`v2 at ${layout.v2.mount}: ${v2.join(', ') || 'no controllers'}`);
  return parts.join('; ');
}


/**
 * For a rootless tsbuild: did the host delegate a cgroup to this user? Only a v2 subtree can be
 * (systemd's user@.service with Delegate=yes): our own cgroup must be writable and carry controllers,
 * and the memory controller must not sit on a v1 hierarchy (whose cgroups only root makes).
 */
export function delegatedToUser(layout: CgroupLayout = detectCgroups(), isWritable: (p: string) => boolean = writable): boolean {
  if (!layout.v2 || layout.v1.has('memory') || layout.v2.controllers.size === 0) return false;
  const self = path.join(layout.v2.mount, layout.v2.self);
  return isWritable(self) && isWritable(path.join(self, 'cgroup.subtree_control'));
}
