/**
 * Cgroups behind one interface, v1 and v2. `detectCgroups` reads what the host has (v1, v2 or
 * hybrid, and which controllers where) from mountinfo and /proc/self/cgroup; `cgroupManager` gives
 * the driver for it. Every cgroup of ours lives under `<our own cgroup>/tsbuild/<name>` in each
 * hierarchy, so containers are charged to whatever limits tsbuild itself runs under, and names carry
 * the owner's pid (`ctr-<pid>-…`), which lets recovery remove what a dead tsbuild left. All paths are
 * built from an injectable root, so the policy is unit-tested against a fake tree.
 */
import fs from 'node:fs';
import path from 'node:path';
import { TsbuildError, errnoCode } from '../errors/index.js';

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
  /** The cgroup.procs files a process writes "0" into to join (given to the helper). */
  readonly procsFiles: string[];
  stats(): CgroupStats;
  /** Whether the kernel's OOM killer killed a process in it. */
  oomKilled(): boolean;
  /** Removes it from every hierarchy (killing any process still in it first). */
  remove(): Promise<void>;
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

function readOr(file: string, d = ''): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return d;
  }
}

/** A write that says which flag needed it when the kernel refuses. */
function writeLimit(file: string, value: string, flag: string): void {
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
function rmdirQuiet(dir: string): void {
  try {
    fs.rmdirSync(dir);
  } catch {
    // not empty (a fake tree in tests) or already gone: recovery sweeps what stays
  }
}

function mkdirp(dir: string, init?: (dir: string) => void): void {
  if (fs.existsSync(dir)) return;
  mkdirp(path.dirname(dir), init);
  try {
    fs.mkdirSync(dir);
    init?.(dir);
  } catch (e) {
    if (errnoCode(e) !== 'EEXIST') throw new CgroupError(`cannot create cgroup ${dir}: ${(e as Error).message}`);
  }
}

async function rmdirRetry(dir: string, procsFile: string): Promise<void> {
  for (let i = 0; i < 50; i++) {
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
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  throw new CgroupError(`cgroup ${dir} stays busy; remove it by hand once its processes are gone`);
}

const num = (s: string | undefined) => (s === undefined || s.trim() === '' || s.trim() === 'max' ? undefined : Number(s.trim()));
const V1_UNLIMITED = 2 ** 62;
const keyed = (text: string, key: string) => num(new RegExp(`^${key} (\\d+)$`, 'm').exec(text)?.[1]);

/** The controllers a limit needs, for the error that says which flag a host cannot honour. */
const NEEDS: [keyof CgroupLimits, string, string][] = [
  ['memory', 'memory', '--memory'], ['memorySwap', 'memory', '--memory-swap'], ['memoryReservation', 'memory', '--memory-reservation'],
  ['oomKillDisable', 'memory', '--oom-kill-disable'], ['cpuQuota', 'cpu', '--cpus/--cpu-quota'], ['cpuShares', 'cpu', '--cpu-shares'],
  ['cpusetCpus', 'cpuset', '--cpuset-cpus'], ['cpusetMems', 'cpuset', '--cpuset-mems'], ['pidsLimit', 'pids', '--pids-limit'],
  ['blkioWeight', 'blkio', '--blkio-weight'], ['deviceReadBps', 'blkio', '--device-read-bps'], ['deviceWriteBps', 'blkio', '--device-write-bps'],
  ['devices', 'devices', '--device'],
];

function requireControllers(limits: CgroupLimits, has: (c: string) => boolean, v2: boolean): void {
  for (const [k, ctrl, flag] of NEEDS) {
    if (limits[k] === undefined || (k === 'devices' && v2)) continue;
    const c = v2 && ctrl === 'blkio' ? 'io' : ctrl;
    if (!has(c)) throw new CgroupError(`${flag} needs the cgroup ${c} controller, which this host does not provide (tsbuild info lists what it has)`, 'CGROUP_UNSUPPORTED');
  }
}

class V1Cgroups implements CgroupDriver {
  readonly version = 1;
  constructor(private layout: CgroupLayout) {}
  private dir(ctrl: string, name: string): string {
    const h = this.layout.v1.get(ctrl)!;
    return path.join(h.mount, h.self, 'tsbuild', name);
  }
  private controllers(): string[] {
    return [...this.layout.v1.keys()].filter((c) => !c.startsWith('name='));
  }
  create(name: string, l: CgroupLimits): Cgroup {
    requireControllers(l, (c) => this.layout.v1.has(c), false);
    const made: string[] = [];
    try {
      for (const c of this.controllers()) {
        // A new cpuset cgroup starts with no CPUs and no memory nodes: inherit the parent's.
        const init = c === 'cpuset' ? (d: string) => {
          for (const f of ['cpuset.cpus', 'cpuset.mems']) if (readOr(path.join(d, f)).trim() === '') fs.writeFileSync(path.join(d, f), readOr(path.join(path.dirname(d), f)).trim());
        } : undefined;
        const dir = this.dir(c, name);
        mkdirp(dir, init);
        made.push(dir);
      }
      this.apply(name, l);
    } catch (e) {
      for (const d of made.reverse()) rmdirQuiet(d);
      throw e;
    }
    return this.handle(name);
  }
  private apply(name: string, l: CgroupLimits): void {
    const f = (ctrl: string, file: string) => path.join(this.dir(ctrl, name), file);
    if (l.memory !== undefined) writeLimit(f('memory', 'memory.limit_in_bytes'), String(l.memory), '--memory');
    if (l.memorySwap !== undefined) writeLimit(f('memory', 'memory.memsw.limit_in_bytes'), String(l.memorySwap), '--memory-swap');
    if (l.memoryReservation !== undefined) writeLimit(f('memory', 'memory.soft_limit_in_bytes'), String(l.memoryReservation), '--memory-reservation');
    if (l.oomKillDisable) writeLimit(f('memory', 'memory.oom_control'), '1', '--oom-kill-disable');
    if (l.cpuPeriod !== undefined) writeLimit(f('cpu', 'cpu.cfs_period_us'), String(l.cpuPeriod), '--cpu-period');
    if (l.cpuQuota !== undefined) writeLimit(f('cpu', 'cpu.cfs_quota_us'), String(l.cpuQuota), '--cpus/--cpu-quota');
    if (l.cpuShares !== undefined) writeLimit(f('cpu', 'cpu.shares'), String(l.cpuShares), '--cpu-shares');
    if (l.cpusetCpus !== undefined) writeLimit(f('cpuset', 'cpuset.cpus'), l.cpusetCpus, '--cpuset-cpus');
    if (l.cpusetMems !== undefined) writeLimit(f('cpuset', 'cpuset.mems'), l.cpusetMems, '--cpuset-mems');
    if (l.pidsLimit !== undefined) writeLimit(f('pids', 'pids.max'), l.pidsLimit > 0 ? String(l.pidsLimit) : 'max', '--pids-limit');
    if (l.blkioWeight !== undefined) writeLimit(f('blkio', 'blkio.weight'), String(l.blkioWeight), '--blkio-weight');
    for (const r of l.deviceReadBps ?? []) writeLimit(f('blkio', 'blkio.throttle.read_bps_device'), `${r.major}:${r.minor} ${r.rate}`, r.flag);
    for (const r of l.deviceWriteBps ?? []) writeLimit(f('blkio', 'blkio.throttle.write_bps_device'), `${r.major}:${r.minor} ${r.rate}`, r.flag);
    if (l.devices) {
      writeLimit(f('devices', 'devices.deny'), 'a', '--device');
      for (const d of l.devices) writeLimit(f('devices', 'devices.allow'), `${d.type} ${d.major}:${d.minor} ${d.access}`, '--device');
    }
  }
  private handle(name: string): Cgroup {
    const dirs = this.controllers().map((c) => this.dir(c, name));
    const mem = this.layout.v1.has('memory') ? this.dir('memory', name) : undefined;
    const at = (ctrl: string, file: string) => (this.layout.v1.has(ctrl) ? readOr(path.join(this.dir(ctrl, name), file)) : '');
    return {
      name,
      procsFiles: dirs.map((d) => path.join(d, 'cgroup.procs')),
      stats: () => {
        const io = at('blkio', 'blkio.throttle.io_service_bytes_recursive') || at('blkio', 'blkio.throttle.io_service_bytes');
        const sum = (op: string) => [...io.matchAll(new RegExp(`^\\d+:\\d+ ${op} (\\d+)$`, 'gm'))].reduce((a, m) => a + Number(m[1]), 0);
        const limit = num(at('memory', 'memory.limit_in_bytes'));
        return {
          cpuNanos: num(at('cpuacct', 'cpuacct.usage')) ?? 0,
          memoryBytes: num(at('memory', 'memory.usage_in_bytes')) ?? 0,
          memoryLimit: limit !== undefined && limit < V1_UNLIMITED ? limit : undefined,
          pids: num(at('pids', 'pids.current')) ?? 0,
          readBytes: sum('Read'),
          writeBytes: sum('Write'),
        };
      },
      oomKilled: () => (mem ? (keyed(readOr(path.join(mem, 'memory.oom_control')), 'oom_kill') ?? 0) > 0 : false),
      remove: async () => {
        for (const d of dirs) await rmdirRetry(d, path.join(d, 'cgroup.procs'));
      },
    };
  }
  open(name: string): Cgroup | undefined {
    const c = this.controllers()[0];
    return c && fs.existsSync(this.dir(c, name)) ? this.handle(name) : undefined;
  }
  list(): string[] {
    const c = this.controllers()[0];
    return c ? dirsIn(path.dirname(this.dir(c, 'x'))) : [];
  }
}

function dirsIn(dir: string): string[] {
  try {
    return fs.readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
  } catch {
    return [];
  }
}

/** Docker's (runc's) conversions from v1 units to v2 ones. */
export const sharesToWeight = (shares: number) => Math.round(1 + ((shares - 2) * 9999) / 262142);
export const blkioToIoWeight = (w: number) => Math.round(1 + ((w - 10) * 9999) / 990);

class V2Cgroups implements CgroupDriver {
  readonly version = 2;
  constructor(private v2: NonNullable<CgroupLayout['v2']>) {}
  private base(): string {
    return path.join(this.v2.mount, this.v2.self, 'tsbuild');
  }
  create(name: string, l: CgroupLimits): Cgroup {
    requireControllers(l, (c) => this.v2.controllers.has(c), true);
    if (l.oomKillDisable) throw new CgroupError('--oom-kill-disable: cgroup v2 has no way to disable the OOM killer (as with Docker on v2); leave it out', 'CGROUP_UNSUPPORTED');
    const dir = path.join(this.base(), name);
    // Controllers must be enabled in every parent's subtree_control, from our own cgroup down.
    const want = ['cpu', 'cpuset', 'io', 'memory', 'pids'].filter((c) => this.v2.controllers.has(c));
    mkdirp(dir);
    for (const parent of [path.join(this.v2.mount, this.v2.self), this.base(), ...path.relative(this.base(), dir).split('/').slice(0, -1).map((_, i, a) => path.join(this.base(), ...a.slice(0, i + 1)))]) {
      const have = new Set(readOr(path.join(parent, 'cgroup.subtree_control')).trim().split(/\s+/));
      const missing = want.filter((c) => !have.has(c));
      if (!missing.length) continue;
      try {
        fs.writeFileSync(path.join(parent, 'cgroup.subtree_control'), missing.map((c) => `+${c}`).join(' '));
      } catch (e) {
        rmdirQuiet(dir);
        throw new CgroupError(`cgroup v2: cannot delegate ${missing.join(', ')} below ${parent} (${errnoCode(e) ?? (e as Error).message}); a cgroup with processes cannot delegate: run tsbuild in a cgroup of its own (e.g. systemd-run --scope)`);
      }
    }
    const f = (file: string) => path.join(dir, file);
    try {
      if (l.memory !== undefined) writeLimit(f('memory.max'), String(l.memory), '--memory');
      if (l.memorySwap !== undefined) writeLimit(f('memory.swap.max'), l.memorySwap < 0 ? 'max' : String(Math.max(0, l.memorySwap - (l.memory ?? 0))), '--memory-swap');
      if (l.memoryReservation !== undefined) writeLimit(f('memory.low'), String(l.memoryReservation), '--memory-reservation');
      if (l.cpuQuota !== undefined || l.cpuPeriod !== undefined) writeLimit(f('cpu.max'), `${l.cpuQuota !== undefined && l.cpuQuota > 0 ? l.cpuQuota : 'max'} ${l.cpuPeriod ?? 100000}`, '--cpus/--cpu-quota');
      if (l.cpuShares !== undefined) writeLimit(f('cpu.weight'), String(sharesToWeight(l.cpuShares)), '--cpu-shares');
      if (l.cpusetCpus !== undefined) writeLimit(f('cpuset.cpus'), l.cpusetCpus, '--cpuset-cpus');
      if (l.cpusetMems !== undefined) writeLimit(f('cpuset.mems'), l.cpusetMems, '--cpuset-mems');
      if (l.pidsLimit !== undefined) writeLimit(f('pids.max'), l.pidsLimit > 0 ? String(l.pidsLimit) : 'max', '--pids-limit');
      if (l.blkioWeight !== undefined) writeLimit(f('io.weight'), `default ${blkioToIoWeight(l.blkioWeight)}`, '--blkio-weight');
      for (const r of l.deviceReadBps ?? []) writeLimit(f('io.max'), `${r.major}:${r.minor} rbps=${r.rate}`, r.flag);
      for (const r of l.deviceWriteBps ?? []) writeLimit(f('io.max'), `${r.major}:${r.minor} wbps=${r.rate}`, r.flag);
    } catch (e) {
      rmdirQuiet(dir);
      throw e;
    }
    return this.handle(name);
  }
  private handle(name: string): Cgroup {
    const dir = path.join(this.base(), name);
    const at = (file: string) => readOr(path.join(dir, file));
    return {
      name,
      procsFiles: [path.join(dir, 'cgroup.procs')],
      stats: () => {
        const io = at('io.stat');
        const sum = (k: string) => [...io.matchAll(new RegExp(`${k}=(\\d+)`, 'g'))].reduce((a, m) => a + Number(m[1]), 0);
        return {
          cpuNanos: (keyed(at('cpu.stat'), 'usage_usec') ?? 0) * 1000,
          memoryBytes: num(at('memory.current')) ?? 0,
          memoryLimit: num(at('memory.max')),
          pids: num(at('pids.current')) ?? 0,
          readBytes: sum('rbytes'),
          writeBytes: sum('wbytes'),
        };
      },
      oomKilled: () => (keyed(at('memory.events'), 'oom_kill') ?? 0) > 0,
      remove: () => rmdirRetry(dir, path.join(dir, 'cgroup.procs')),
    };
  }
  open(name: string): Cgroup | undefined {
    return fs.existsSync(path.join(this.base(), name)) ? this.handle(name) : undefined;
  }
  list(): string[] {
    return dirsIn(this.base());
  }
}

/** A driver for no cgroups at all: runs without, unless a limit is asked for. */
class NoCgroups implements CgroupDriver {
  readonly version = 1;
  create(name: string, l: CgroupLimits): Cgroup {
    requireControllers(l, () => false, false);
    return { name, procsFiles: [], stats: () => ({ cpuNanos: 0, memoryBytes: 0, pids: 0, readBytes: 0, writeBytes: 0 }), oomKilled: () => false, remove: async () => undefined };
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
