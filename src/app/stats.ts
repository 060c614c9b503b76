/** `stats`: live CPU, memory, PIDs and block I/O of running containers, from their cgroups. */
import os from 'node:os';
import { processAlive } from '../fsutil/index.js';
import { cgroups, isRootless, type CgroupStats, type ContainerState } from '../runtime/index.js';
import { TsbuildError } from '../errors/index.js';
import type { Store } from '../store/index.js';

/** What a container without a cgroup (rootless, nothing delegated) cannot do, and why. */
export function noCgroup(c: ContainerState, what: string): TsbuildError {
  return new TsbuildError(
    'NO_CGROUP',
    `${what} needs the container's cgroup, and ${c.name} has none: ${isRootless() ? 'a rootless tsbuild creates cgroups only where the host delegates a cgroup v2 subtree to the user (docs/rootless.md)' : 'it was started without one'}`,
  );
}

export interface ContainerStats extends CgroupStats {
  id: string;
  name: string;
  /** Of one CPU, as `docker stats` shows it (200% is two CPUs busy). */
  cpuPercent: number;
  /** The memory limit, or the machine's memory when there is none. */
  memoryLimitOrTotal: number;
}

function running(store: Store, refs: string[]): ContainerState[] {
  const live = store.containers.list().filter((c) => c.status === 'running' && c.pid !== undefined && processAlive(c.pid) && c.cgroup);
  return refs.length ? refs.map((r) => store.containers.find(r)).filter((c) => live.some((l) => l.id === c.id)) : live;
}

/** Two samples `intervalMs` apart, for CPU usage; containers that end meanwhile are left out. */
export async function containerStats(store: Store, refs: string[], intervalMs = 1000): Promise<ContainerStats[]> {
  const driver = cgroups();
  const list = running(store, refs);
  const first = new Map(list.map((c) => [c.id, driver.open(c.cgroup!)?.stats()]));
  for (const c of list) if (refs.length && !first.get(c.id)) throw noCgroup(c, 'stats');
  const t0 = process.hrtime.bigint();
  await new Promise((r) => setTimeout(r, intervalMs));
  const wall = Number(process.hrtime.bigint() - t0);
  const out: ContainerStats[] = [];
  for (const c of list) {
    const s = driver.open(c.cgroup!)?.stats();
    const before = first.get(c.id);
    if (!s || !before) continue;
    out.push({ ...s, id: c.id, name: c.name, cpuPercent: wall > 0 ? ((s.cpuNanos - before.cpuNanos) / wall) * 100 : 0, memoryLimitOrTotal: s.memoryLimit ?? os.totalmem() });
  }
  return out;
}
