/**
 * Whether the recovery sweep has anything to find. Everything a process leaves in the store while it
 * works (temp snapshots, mounts, temp files, cgroups) is named by its pid and swept once that process
 * is gone; a process that ends normally removes its own first. So each process that opens the store
 * says so with a file of its own, `tmp/live/<pid>-<start time>`, removed when it exits. A file whose
 * process is gone (killed, crashed) means a sweep is due; none means nothing was left behind, and
 * the sweep (a walk of every snapshot's record, the store's temp files and the host's cgroups: about
 * 7 ms of every command) is skipped. It still runs at least once an hour, for what is only old (an
 * abandoned partial download) and what a process of an older tsbuild, which made no such file, left,
 * and in the first command after the machine restarted (the boot is recorded in `swept`).
 */
import fs from 'node:fs';
import path from 'node:path';
import { bootId, processStartTime, sameProcessAlive } from '../fsutil/index.js';

const FULL_SWEEP_MS = 3600_000;

const liveDir = (root: string) => path.join(root, 'tmp', 'live');
const sweptMark = (root: string) => path.join(liveDir(root), 'swept');

const registered = new Set<string>();

/**
 * This process works in the store until it exits. Best effort: where the file cannot be made (a full
 * disk) the command goes on, and what a kill of it leaves waits for the hourly sweep.
 */
export function registerLive(root: string): void {
  const file = path.join(liveDir(root), `${process.pid}-${processStartTime(process.pid) ?? 0}`);
  if (registered.has(file)) return;
  try {
    fs.mkdirSync(liveDir(root), { recursive: true, mode: 0o700 });
    fs.writeFileSync(file, '');
  } catch {
    return;
  }
  if (registered.size === 0) {
    process.on('exit', () => {
      for (const f of registered) fs.rmSync(f, { force: true });
    });
  }
  registered.add(file);
}

/**
 * The files of processes that are gone, and whether a sweep is due: when one is gone, when the last
 * sweep was an hour ago or more, or when none is recorded.
 */
export function sweepDue(root: string): { due: boolean; gone: string[] } {
  let names: string[];
  try {
    names = fs.readdirSync(liveDir(root));
  } catch {
    return { due: true, gone: [] };
  }
  const gone = names.filter((n) => {
    const m = /^(\d+)-(\d+)$/.exec(n);
    return m !== null && !sameProcessAlive(Number(m[1]), Number(m[2]) || undefined);
  });
  const last = fs.statSync(sweptMark(root), { throwIfNoEntry: false });
  return { due: gone.length > 0 || !last || Date.now() - last.mtimeMs >= FULL_SWEEP_MS || sweptBoot(root) !== bootId(), gone };
}

/** The boot the last sweep ran in: the first command after a restart sweeps (unsynced.ts). */
function sweptBoot(root: string): string {
  try {
    return fs.readFileSync(sweptMark(root), 'utf8');
  } catch {
    return '';
  }
}

/** A sweep finished: the files of the processes it swept after go, and the hour starts again. */
export function sweptAfter(root: string, gone: string[]): void {
  try {
    for (const n of gone) fs.rmSync(path.join(liveDir(root), n), { force: true });
    fs.mkdirSync(liveDir(root), { recursive: true, mode: 0o700 });
    fs.writeFileSync(sweptMark(root), bootId());
  } catch {
    // A full disk: the next command sweeps again.
  }
}
