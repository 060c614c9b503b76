/** The cgroup v1 driver: one hierarchy per controller, our cgroups under `<own cgroup>/tsbuild/`. */
import fs from 'node:fs';
import path from 'node:path';
import { V1_UNLIMITED, keyed, mkdirp, num, readOr, requireControllers, rmdirQuiet, removeCgroup, writeLimit, type Cgroup, type CgroupDriver, type CgroupLayout, type CgroupLimits } from './cgroupfs.js';

export class V1Cgroups implements CgroupDriver {
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
        const init = c === 'cpuset' ? inheritCpuset : undefined;
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
      joinFiles: dirs.map((d) => path.join(d, 'tasks')),
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
      // Every hierarchy is tried even when one fails (a task slow to leave one controller must not
      // strand the others); the first failure is thrown once all were tried, and what stays is
      // listed again, so the next command's reap finishes it.
      remove: async () => {
        let first: unknown;
        for (const c of this.controllers()) {
          const h = this.layout.v1.get(c)!;
          await removeCgroup(this.dir(c, name), path.join(h.mount, h.self)).catch((e: unknown) => (first ??= e));
        }
        if (first !== undefined) throw first;
      },
    };
  }
  /** A cgroup exists while any hierarchy still has it: a removal cut short leaves some behind. */
  open(name: string): Cgroup | undefined {
    return this.controllers().some((c) => fs.existsSync(this.dir(c, name))) ? this.handle(name) : undefined;
  }
  list(): string[] {
    return [...new Set(this.controllers().flatMap((c) => dirsIn(path.dirname(this.dir(c, 'x')))))].sort();
  }
}

/**
 * A new cpuset cgroup starts with no CPUs and no memory nodes, and a process cannot join it (ENOSPC):
 * it inherits its parent's. The parent itself may be one another tsbuild has just made and not yet
 * filled (concurrent builds share `tsbuild/`), so empty ancestors are filled first, top down.
 */
export function inheritCpuset(dir: string): void {
  for (const f of ['cpuset.cpus', 'cpuset.mems']) {
    if (readOr(path.join(dir, f)).trim() !== '') continue;
    const parent = path.dirname(dir);
    if (parent === dir || !fs.existsSync(path.join(parent, f))) continue;
    if (readOr(path.join(parent, f)).trim() === '') inheritCpuset(parent);
    fs.writeFileSync(path.join(dir, f), readOr(path.join(parent, f)).trim());
  }
}

export function dirsIn(dir: string): string[] {
  try {
    return fs.readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
  } catch {
    return [];
  }
}

