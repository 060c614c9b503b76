/**
 * Resource and security flags as Docker users write them (`--memory 64m`, `--cpus 0.5`,
 * `--ulimit nofile=1024:2048`, `--device-read-bps /dev/sda:1mb`, `--cap-add NET_ADMIN`), checked and
 * turned into the runtime's typed limits before anything starts. Every refusal names the flag and
 * the accepted form.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { UsageError } from '../errors/index.js';
import type { StoreConfig } from '../store/index.js';
import { deviceNumbers, loadProfile, parseDevice, parseSecurityOpts, type CgroupLimits, type SecurityOptions, type Rlimit } from '../runtime/index.js';

/** Docker's RAMInBytes: a number with an optional b, k, m, g, t or p suffix (powers of 1024). */
export function parseMemory(v: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([bkmgtp]?)b?$/i.exec(v.trim());
  if (!m) throw new UsageError(`${flag} ${v}: use a number with an optional unit b, k, m, g (e.g. 64m, 1.5g)`);
  const n = Math.round(parseFloat(m[1]!) * 1024 ** 'bkmgtp'.indexOf((m[2] || 'b').toLowerCase()));
  if (n <= 0) throw new UsageError(`${flag} ${v}: must be more than 0`);
  return n;
}

function int(v: string, flag: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!/^-?\d+$/.test(v.trim())) throw new UsageError(`${flag} ${v}: use a whole number from ${min} to ${max}`);
  const n = parseInt(v, 10);
  if (n < min || n > max) throw new UsageError(`${flag} ${v}: use a whole number from ${min} to ${max}`);
  return n;
}

/** `0-3,5`: each CPU (or memory node) must exist here. */
function cpuset(v: string, flag: string, max: number): string {
  if (!/^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(v)) throw new UsageError(`${flag} ${v}: use a list such as 0-1,3`);
  for (const part of v.split(',')) {
    const [a, b = a] = part.split('-').map(Number);
    if (a! > b! || b! > max) throw new UsageError(`${flag} ${v}: this machine has ${flag === '--cpuset-cpus' ? 'CPUs' : 'memory nodes'} 0-${max}`);
  }
  return v;
}

/** `PATH:RATE` for --device-read-bps/--device-write-bps. */
function deviceRate(v: string, flag: string): { major: number; minor: number; rate: number; flag: string } {
  const i = v.lastIndexOf(':');
  if (i <= 0) throw new UsageError(`${flag} ${v}: use DEVICE:RATE, e.g. /dev/sda:1mb`);
  const dev = v.slice(0, i);
  let st: fs.Stats;
  try {
    st = fs.statSync(dev);
  } catch {
    throw new UsageError(`${flag} ${v}: ${dev} does not exist on this host`);
  }
  if (!st.isBlockDevice()) throw new UsageError(`${flag} ${v}: ${dev} is not a block device`);
  return { ...deviceNumbers(st.rdev), rate: parseMemory(v.slice(i + 1), flag), flag };
}

export interface LimitFlags {
  memory?: string;
  memorySwap?: string;
  memoryReservation?: string;
  oomKillDisable?: boolean;
  cpus?: string;
  cpuShares?: string;
  cpuQuota?: string;
  cpuPeriod?: string;
  cpusetCpus?: string;
  cpusetMems?: string;
  pidsLimit?: string;
  blkioWeight?: string;
  deviceReadBps?: string[];
  deviceWriteBps?: string[];
}

export function parseLimits(f: LimitFlags): CgroupLimits {
  const l: CgroupLimits = {};
  if (f.memory !== undefined) l.memory = parseMemory(f.memory, '--memory');
  if (f.memoryReservation !== undefined) l.memoryReservation = parseMemory(f.memoryReservation, '--memory-reservation');
  if (f.memorySwap !== undefined) {
    if (l.memory === undefined) throw new UsageError('--memory-swap needs --memory too (it is the total of memory and swap)');
    l.memorySwap = f.memorySwap.trim() === '-1' ? -1 : parseMemory(f.memorySwap, '--memory-swap');
    if (l.memorySwap !== -1 && l.memorySwap < l.memory) throw new UsageError(`--memory-swap ${f.memorySwap}: must be at least --memory (it counts memory and swap together), or -1 for unlimited swap`);
  }
  if (f.oomKillDisable) l.oomKillDisable = true;
  const ncpu = os.availableParallelism();
  if (f.cpus !== undefined) {
    const c = Number(f.cpus);
    if (!/^\d*\.?\d+$/.test(f.cpus.trim()) || !(c > 0)) throw new UsageError(`--cpus ${f.cpus}: use a positive number of CPUs, e.g. 0.5 or 2`);
    if (c > ncpu) throw new UsageError(`--cpus ${f.cpus}: this machine has ${ncpu} CPUs`);
    if (f.cpuQuota !== undefined || f.cpuPeriod !== undefined) throw new UsageError('--cpus and --cpu-quota/--cpu-period are exclusive: give one or the other');
    l.cpuPeriod = 100000;
    l.cpuQuota = Math.round(c * 100000);
  }
  if (f.cpuPeriod !== undefined) l.cpuPeriod = int(f.cpuPeriod, '--cpu-period', 1000, 1000000);
  if (f.cpuQuota !== undefined) l.cpuQuota = int(f.cpuQuota, '--cpu-quota', 1000);
  if (f.cpuShares !== undefined) l.cpuShares = int(f.cpuShares, '--cpu-shares', 2, 262144);
  if (f.cpusetCpus !== undefined) l.cpusetCpus = cpuset(f.cpusetCpus, '--cpuset-cpus', ncpu - 1);
  if (f.cpusetMems !== undefined) l.cpusetMems = cpuset(f.cpusetMems, '--cpuset-mems', 1023);
  if (f.pidsLimit !== undefined) l.pidsLimit = int(f.pidsLimit, '--pids-limit', -1);
  if (f.blkioWeight !== undefined) l.blkioWeight = int(f.blkioWeight, '--blkio-weight', 10, 1000);
  if (f.deviceReadBps?.length) l.deviceReadBps = f.deviceReadBps.map((v) => deviceRate(v, '--device-read-bps'));
  if (f.deviceWriteBps?.length) l.deviceWriteBps = f.deviceWriteBps.map((v) => deviceRate(v, '--device-write-bps'));
  return l;
}

/** `--add-host name:ip` (IPv4 or IPv6), as Docker takes it. */
export function parseAddHosts(values: string[]): string[] {
  return values.map((v) => {
    const i = v.indexOf(':');
    const name = v.slice(0, i), ip = v.slice(i + 1);
    if (i <= 0 || !/^[a-zA-Z0-9._-]+$/.test(name) || net.isIP(ip) === 0) throw new UsageError(`--add-host ${v}: use NAME:IP, e.g. db:10.0.0.5`);
    return `${name}:${ip}`;
  });
}

/** Docker's --ulimit names, as rlimit resources. */
const ULIMITS: Record<string, string> = {
  core: 'RLIMIT_CORE', cpu: 'RLIMIT_CPU', data: 'RLIMIT_DATA', fsize: 'RLIMIT_FSIZE', locks: 'RLIMIT_LOCKS', memlock: 'RLIMIT_MEMLOCK',
  msgqueue: 'RLIMIT_MSGQUEUE', nice: 'RLIMIT_NICE', nofile: 'RLIMIT_NOFILE', nproc: 'RLIMIT_NPROC', rss: 'RLIMIT_RSS', rtprio: 'RLIMIT_RTPRIO',
  rttime: 'RLIMIT_RTTIME', sigpending: 'RLIMIT_SIGPENDING', stack: 'RLIMIT_STACK', as: 'RLIMIT_AS',
};

/**
 * `--ulimit name=soft[:hard]` (-1 is unlimited). A limit above this process's hard limit is refused:
 * raising a hard limit needs CAP_SYS_RESOURCE, which root here may not hold.
 */
export function parseUlimits(values: string[], hardLimits: () => Map<string, { soft: number; hard: number }>): Rlimit[] {
  // Read only when there is a value to check: most commands give none, and it is a file read.
  let limits: Map<string, { soft: number; hard: number }> | undefined;
  return values.map((v) => {
    const m = /^([a-z]+)=(-?\d+)(?::(-?\d+))?$/.exec(v.trim());
    const type = m ? ULIMITS[m[1]!] : undefined;
    if (!m || !type) throw new UsageError(`--ulimit ${v}: use NAME=SOFT[:HARD] with a name from ${Object.keys(ULIMITS).join(', ')}`);
    const soft = parseInt(m[2]!, 10);
    const hard = m[3] !== undefined ? parseInt(m[3], 10) : soft;
    if (soft !== -1 && hard !== -1 && soft > hard) throw new UsageError(`--ulimit ${v}: the soft limit is above the hard limit`);
    const host = (limits ??= hardLimits()).get(type)?.hard;
    const over = (x: number) => host !== undefined && host >= 0 && (x === -1 || x > host);
    if (over(soft) || over(hard)) throw new UsageError(`--ulimit ${v}: above this host's hard limit ${host} for ${m[1]} (raising it needs CAP_SYS_RESOURCE); use at most ${host}`);
    return { type, soft, hard };
  });
}

export interface SecurityFlags {
  privileged?: boolean;
  capAdd?: string[];
  capDrop?: string[];
  securityOpt?: string[];
  devices?: string[];
}

export function parseSecurity(f: SecurityFlags): SecurityOptions {
  const opts = parseSecurityOpts(f.securityOpt ?? [], loadProfile);
  const devices = (f.devices ?? []).map(parseDevice);
  return { privileged: f.privileged, capAdd: f.capAdd, capDrop: f.capDrop, devices, ...opts };
}

/** The limits of every RUN step from the store's config.json "build" object, by run's flag names. */
export function storeConfigLimits(c: StoreConfig['build'], root: string): CgroupLimits {
  const get = (kebab: string) => {
    const v = c?.[kebab] ?? c?.[kebab.replace(/-(\w)/g, (_, x: string) => x.toUpperCase())];
    return v === undefined ? undefined : String(v);
  };
  try {
    return parseLimits({
      memory: get('memory'), memorySwap: get('memory-swap'), cpus: get('cpus'), cpuShares: get('cpu-shares'), cpuQuota: get('cpu-quota'),
      cpuPeriod: get('cpu-period'), cpusetCpus: get('cpuset-cpus'), cpusetMems: get('cpuset-mems'), pidsLimit: get('pids-limit'),
    });
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    throw new UsageError(`${path.join(root, 'config.json')}, "build": ${e.message} (the keys are run's flag names)`);
  }
}
