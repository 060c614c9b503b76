/** `info`: the store, its default driver, and what this kernel and machine support. */
import fs from 'node:fs';
import os from 'node:os';
import { spawnSync } from 'node:child_process';
import { driverSupport } from '../snapshotter/index.js';
import { describeCgroups, helperPath, hostCaps } from '../runtime/index.js';
import { defaultDriver } from '../store/index.js';

export interface Info {
  root: string;
  snapshotter: string;
  drivers: Record<string, string>;
  kernel: string;
  cgroups: string;
  /** Capabilities this host lets tsbuild grant (what --privileged gives). */
  capabilities: number;
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
  return {
    root,
    snapshotter: defaultDriver(root),
    drivers: driverSupport(root, overlayProbe),
    kernel: os.release(),
    cgroups: describeCgroups(),
    capabilities: hostCaps().size,
    helper: helperPath(),
    cpus: os.availableParallelism(),
  };
}
