/** `info`: the store, its default driver, and what this kernel and machine support. */
import fs from 'node:fs';
import os from 'node:os';
import { spawnSync } from 'node:child_process';
import { driverSupport } from '../snapshotter/index.js';
import { helperPath } from '../runtime/index.js';
import { defaultDriver } from '../store/index.js';

export interface Info {
  root: string;
  snapshotter: string;
  drivers: Record<string, string>;
  kernel: string;
  cgroups: string;
  helper: string;
  cpus: number;
}

function overlayProbe(): string | undefined {
  const dir = fs.mkdtempSync(`${os.tmpdir()}/tsb-info-`);
  try {
    for (const d of ['l', 'u', 'w', 'm']) fs.mkdirSync(`${dir}/${d}`);
    const r = spawnSync(helperPath(), ['mount', 'overlay', 'overlay', `${dir}/m`, '0', `lowerdir=${dir}/l,upperdir=${dir}/u,workdir=${dir}/w`], { encoding: 'utf8' });
    if (r.status !== 0) return r.stderr.trim() || 'mount failed';
    spawnSync(helperPath(), ['umount', `${dir}/m`]);
    return undefined;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export function info(root: string): Info {
  fs.mkdirSync(root, { recursive: true });
  const cgroup2 = fs.existsSync('/sys/fs/cgroup/cgroup.controllers');
  return {
    root,
    snapshotter: defaultDriver(root),
    drivers: driverSupport(root, overlayProbe),
    kernel: os.release(),
    cgroups: cgroup2 ? 'v2 (unified)' : fs.existsSync('/sys/fs/cgroup/memory') ? 'v1' : 'none found',
    helper: helperPath(),
    cpus: os.availableParallelism(),
  };
}
