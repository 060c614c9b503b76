/**
 * Pause and unpause: the freezer of a container's cgroup, found from its cgroup.procs files so any
 * tsbuild process can reach it whatever its own cgroup. v1 has `freezer.state` (FROZEN/THAWED, with
 * FREEZING while the kernel works on it); v2 has `cgroup.freeze` and reports `frozen 1` in
 * `cgroup.events` once every process is stopped.
 */
import fs from 'node:fs';
import path from 'node:path';
import { CgroupError } from './cgroupfs.js';

function readOr(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** The directory that carries the freezer, and which kind. */
function freezerOf(procsFiles: string[]): { dir: string; v2: boolean } | undefined {
  for (const f of procsFiles) {
    const dir = path.dirname(f);
    if (fs.existsSync(path.join(dir, 'freezer.state'))) return { dir, v2: false };
    if (fs.existsSync(path.join(dir, 'cgroup.freeze'))) return { dir, v2: true };
  }
  return undefined;
}

export function isFrozen(procsFiles: string[]): boolean {
  const f = freezerOf(procsFiles);
  if (!f) return false;
  return f.v2 ? /^frozen 1$/m.test(readOr(path.join(f.dir, 'cgroup.events'))) : readOr(path.join(f.dir, 'freezer.state')).trim() === 'FROZEN';
}

/** Freezes or thaws, and waits (up to `timeoutMs`) until the kernel says it is done. */
export async function setFrozen(procsFiles: string[], frozen: boolean, timeoutMs = 5000): Promise<void> {
  const f = freezerOf(procsFiles);
  if (!f) throw new CgroupError('this host has no freezer cgroup for the container: pause needs the v1 freezer controller or cgroup v2', 'NO_FREEZER');
  if (f.v2) fs.writeFileSync(path.join(f.dir, 'cgroup.freeze'), frozen ? '1' : '0');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!f.v2) fs.writeFileSync(path.join(f.dir, 'freezer.state'), frozen ? 'FROZEN' : 'THAWED');
    if (isFrozen(procsFiles) === frozen) return;
    if (Date.now() > deadline) throw new CgroupError(`the container's cgroup ${f.dir} did not ${frozen ? 'freeze' : 'thaw'} within ${timeoutMs / 1000} s`, 'FREEZE_TIMEOUT');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Every process in the cgroup (host pids), from the first hierarchy that lists any. */
export function cgroupPids(procsFiles: string[]): number[] {
  for (const f of procsFiles) {
    const pids = readOr(f).split('\n').filter(Boolean).map(Number);
    if (pids.length) return pids;
  }
  return [];
}
