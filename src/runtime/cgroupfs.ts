/** Shared pieces of the cgroup drivers: the types, and careful reads and writes of cgroupfs files. */
import fs from 'node:fs';
import path from 'node:path';
import { TsbuildError, errnoCode } from '../errors/index.js';
import type { EbpfInsn } from './devicebpf.js';


export class CgroupError extends TsbuildError {
  constructor(message: string, code = 'CGROUP') {
    super(code, message);
  }
}

export interface DeviceRule {
  type: 'a' | 'c' | 'b';
  major: number | '*';
  minor: number | '*';
  access: string;
}

export interface BlkioRate { major: number; minor: number; rate: number; flag: string }

/** What `run` (and build) flags ask for; absent means no limit. */
export interface CgroupLimits {
  memory?: number;
  /** Memory plus swap (Docker's --memory-swap); -1 is unlimited swap. */
  memorySwap?: number;
  memoryReservation?: number;
  oomKillDisable?: boolean;
  cpuQuota?: number;
  cpuPeriod?: number;
  cpuShares?: number;
  cpusetCpus?: string;
  cpusetMems?: string;
  pidsLimit?: number;
  blkioWeight?: number;
  deviceReadBps?: BlkioRate[];
  deviceWriteBps?: BlkioRate[];
  /** Device access: deny all but these (v1 devices controller). Undefined: no device policy. */
  devices?: DeviceRule[];
}

export interface CgroupStats {
  cpuNanos: number;
  memoryBytes: number;
  /** undefined: no limit. */
  memoryLimit?: number;
  pids: number;
  readBytes: number;
  writeBytes: number;
}

export interface Cgroup {
  readonly name: string;
  /** Its cgroup.procs files: who is in it (one per v1 hierarchy, or the v2 cgroup's). */
  readonly procsFiles: string[];
  /**
   * The files a single-threaded process writes "0" into to join it (given to the helper). v1: each
   * hierarchy's `tasks`, which moves the writing thread alone; a write to cgroup.procs takes the
   * kernel's cgroup-wide thread-group lock for writing, whose RCU grace period made every container's
   * first join 4-15 ms here. v2 has only cgroup.procs.
   */
  readonly joinFiles: string[];
  stats(): CgroupStats;
  /** Whether the kernel's OOM killer killed a process in it. */
  oomKilled(): boolean;
  /** Removes it from every hierarchy (killing any process still in it first). */
  remove(): Promise<void>;
  /** v2: the device filter the helper attaches to `dir` (v2 has no devices controller). */
  readonly deviceFilter?: { cgroup: string; program: EbpfInsn[] };
}

export interface CgroupDriver {
  readonly version: 1 | 2;
  create(name: string, limits: CgroupLimits): Cgroup;
  open(name: string): Cgroup | undefined;
  /** Names of our cgroups (for recovery). */
  list(): string[];
}

/** Where each controller is: for v1 one hierarchy per controller, for v2 one for all. */
export interface CgroupLayout {
  mode: 'v1' | 'v2' | 'hybrid' | 'none';
  /** v1 controller → its hierarchy's mount point and our cgroup in it. */
  v1: Map<string, { mount: string; self: string }>;
  v2?: { mount: string; self: string; controllers: Set<string> };
}


/** The join files (Cgroup.joinFiles) of a recorded cgroup's procs files: `tasks` where a v1 hierarchy has one. */
export function joinFilesOf(procsFiles: string[]): string[] {
  return procsFiles.map((f) => {
    const tasks = path.join(path.dirname(f), 'tasks');
    return fs.existsSync(tasks) ? tasks : f;
  });
}

export function readOr(file: string, d = ''): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return d;
  }
}

/** A write that says which flag needed it when the kernel refuses. */
export function writeLimit(file: string, value: string, flag: string): void {
  try {
    fs.writeFileSync(file, value);
  } catch (e) {
    const code = errnoCode(e);
    // cgroupfs answers EACCES, not ENOENT, for a control file it does not have.
    if (code === 'ENOENT' || !fs.existsSync(file)) throw new CgroupError(`${flag}: this host's kernel has no ${path.basename(file)} (the controller or its option is missing); leave ${flag} out`, 'CGROUP_UNSUPPORTED');
    throw new CgroupError(`${flag}: the kernel refused ${value.trim()} for ${path.basename(file)} (${code ?? (e as Error).message}); check the value`);
  }
}

/** Undoing a cgroup we just made: rmdir (a cgroup's control files do not stop it); gone is fine. */
export function rmdirQuiet(dir: string): void {
  try {
    fs.rmdirSync(dir);
  } catch {
    // not empty (a fake tree in tests) or already gone: recovery sweeps what stays
  }
}

export function mkdirp(dir: string, init?: (dir: string) => void, tries = 5): void {
  if (fs.existsSync(dir)) return;
  mkdirp(path.dirname(dir), init, tries);
  try {
    fs.mkdirSync(dir);
    init?.(dir);
  } catch (e) {
    const code = errnoCode(e);
    if (code === 'EEXIST') return;
    // Another tsbuild removed an empty parent (`tsbuild/`) between our mkdirs: make it again.
    if (code === 'ENOENT' && tries > 1) return mkdirp(dir, init, tries - 1);
    throw new CgroupError(`cannot create cgroup ${dir}: ${(e as Error).message}`);
  }
}

/**
 * Removes a cgroup of ours, then every parent it leaves empty up to (not including) `own`, the
 * cgroup tsbuild runs in: `tsbuild/` and a build's `build-<pid>-…/` go with their last child, so
 * nothing of tsbuild's stays in the hierarchy. A parent another container still uses is left.
 */
export async function removeCgroup(dir: string, own: string): Promise<void> {
  await rmdirRetry(dir, path.join(dir, 'cgroup.procs'));
  // path.resolve drops the trailing slash path.join leaves for a cgroup at a hierarchy's root ('/').
  const stop = path.resolve(own) + '/';
  for (let p = path.dirname(dir); p.startsWith(stop); p = path.dirname(p)) {
    try {
      fs.rmdirSync(p);
    } catch {
      return; // not empty (another container, a concurrent build), or already gone
    }
  }
}

/**
 * A killed task stays in a v1 cgroup until it has finished exiting, which on a loaded host (I/O
 * being flushed, a busy reaper) can take seconds: retry with backoff for about ten seconds.
 */
export async function rmdirRetry(dir: string, procsFile: string): Promise<void> {
  for (let i = 0, waited = 0; waited < 10_000; i++) {
    try {
      fs.rmdirSync(dir);
      return;
    } catch (e) {
      const code = errnoCode(e);
      if (code === 'ENOENT') return;
      if (code !== 'EBUSY') throw new CgroupError(`cannot remove cgroup ${dir}: ${(e as Error).message}`);
      // Processes are still leaving (or a child cgroup exists): kill what is left, wait a little.
      for (const pid of readOr(procsFile).split('\n').filter(Boolean)) {
        try {
          process.kill(parseInt(pid, 10), 'SIGKILL');
        } catch {
          // already gone
        }
      }
      for (const child of fs.readdirSync(dir, { withFileTypes: true })) if (child.isDirectory()) await rmdirRetry(path.join(dir, child.name), path.join(dir, child.name, 'cgroup.procs'));
      const pause = Math.min(20 * 2 ** Math.min(i, 4), 320);
      waited += pause;
      await new Promise((r) => setTimeout(r, pause));
    }
  }
  throw new CgroupError(`cgroup ${dir} stays busy; the next tsbuild command retries, or remove it by hand once its processes are gone`);
}

export const num = (s: string | undefined) => (s === undefined || s.trim() === '' || s.trim() === 'max' ? undefined : Number(s.trim()));
export const V1_UNLIMITED = 2 ** 62;
export const keyed = (text: string, key: string) => num(new RegExp(`^${key} (\\d+)$`, 'm').exec(text)?.[1]);

/** The controllers a limit needs, for the error that says which flag a host cannot honour. */
const NEEDS: [keyof CgroupLimits, string, string][] = [
  ['memory', 'memory', '--memory'], ['memorySwap', 'memory', '--memory-swap'], ['memoryReservation', 'memory', '--memory-reservation'],
  ['oomKillDisable', 'memory', '--oom-kill-disable'], ['cpuQuota', 'cpu', '--cpus/--cpu-quota'], ['cpuShares', 'cpu', '--cpu-shares'],
  ['cpusetCpus', 'cpuset', '--cpuset-cpus'], ['cpusetMems', 'cpuset', '--cpuset-mems'], ['pidsLimit', 'pids', '--pids-limit'],
  ['blkioWeight', 'blkio', '--blkio-weight'], ['deviceReadBps', 'blkio', '--device-read-bps'], ['deviceWriteBps', 'blkio', '--device-write-bps'],
  ['devices', 'devices', '--device'],
];

export function requireControllers(limits: CgroupLimits, has: (c: string) => boolean, v2: boolean): void {
  for (const [k, ctrl, flag] of NEEDS) {
    if (limits[k] === undefined) continue;
    const c = v2 && ctrl === 'blkio' ? 'io' : ctrl;
    if (!has(c) && !(v2 && ctrl === 'devices')) throw new CgroupError(`${flag} needs the cgroup ${c} controller, which this host does not provide (tsbuild info lists what it has)`, 'CGROUP_UNSUPPORTED');
  }
}

