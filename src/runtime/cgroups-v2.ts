/** The cgroup v2 driver: one hierarchy, controllers delegated down, devices through an eBPF filter. */
import fs from 'node:fs';
import path from 'node:path';
import { errnoCode } from '../errors/index.js';
import { CgroupError, keyed, mkdirp, num, readOr, requireControllers, rmdirQuiet, removeCgroup, writeLimit, type Cgroup, type CgroupDriver, type CgroupLayout, type CgroupLimits } from './cgroupfs.js';
import { deviceProgram } from './devicebpf.js';
import { dirsIn } from './cgroups-v1.js';

/** Docker's (runc's) conversions from v1 units to v2 ones. */
export const sharesToWeight = (shares: number) => Math.round(1 + ((shares - 2) * 9999) / 262142);
export const blkioToIoWeight = (w: number) => Math.round(1 + ((w - 10) * 9999) / 990);

export class V2Cgroups implements CgroupDriver {
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
    return this.handle(name, l.devices ? { cgroup: dir, program: deviceProgram(l.devices) } : undefined);
  }
  private handle(name: string, deviceFilter?: Cgroup['deviceFilter']): Cgroup {
    const dir = path.join(this.base(), name);
    const at = (file: string) => readOr(path.join(dir, file));
    return {
      name,
      deviceFilter,
      procsFiles: [path.join(dir, 'cgroup.procs')],
      joinFiles: [path.join(dir, 'cgroup.procs')],
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
      remove: () => removeCgroup(dir, path.join(this.v2.mount, this.v2.self)),
    };
  }
  open(name: string): Cgroup | undefined {
    return fs.existsSync(path.join(this.base(), name)) ? this.handle(name) : undefined;
  }
  list(): string[] {
    return dirsIn(this.base());
  }
}

