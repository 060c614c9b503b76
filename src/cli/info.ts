/** `tsbuild info`: the store, its default driver, and what this kernel and machine support. */
import fs from 'node:fs';
import os from 'node:os';
import { spawnSync } from 'node:child_process';
import { driverSupport } from '../snapshotter/index.js';
import { helperPath } from '../runtime/index.js';
import { flagStr, type FlagSpec, type Parsed, rootFlag, helpFlag } from './args.js';
import { defaultDriver, storeRoot } from './store.js';

export const infoFlags: FlagSpec[] = [
  rootFlag,
  { name: 'format', type: 'string', arg: 'text|json', help: 'output format' },
  helpFlag,
];

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

export function infoCommand(p: Parsed): number {
  const root = storeRoot(flagStr(p, 'root'));
  fs.mkdirSync(root, { recursive: true });
  const cgroup2 = fs.existsSync('/sys/fs/cgroup/cgroup.controllers');
  const info = {
    root,
    snapshotter: defaultDriver(root),
    drivers: driverSupport(root, overlayProbe),
    kernel: os.release(),
    cgroups: cgroup2 ? 'v2 (unified)' : fs.existsSync('/sys/fs/cgroup/memory') ? 'v1' : 'none found',
    helper: helperPath(),
    cpus: os.availableParallelism(),
  };
  if (flagStr(p, 'format') === 'json') {
    process.stdout.write(JSON.stringify(info, null, 2) + '\n');
    return 0;
  }
  process.stdout.write(`Store:        ${info.root}\nSnapshotter:  ${info.snapshotter} (default; --snapshotter or config.json "snapshotter" change it)\n`);
  for (const [d, s] of Object.entries(info.drivers)) process.stdout.write(`  ${d.padEnd(10)} ${s}\n`);
  process.stdout.write(`Kernel:       ${info.kernel}\nCgroups:      ${info.cgroups}\nHelper:       ${info.helper}\nCPUs:         ${info.cpus}\n`);
  return 0;
}
