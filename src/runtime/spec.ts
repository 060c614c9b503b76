/**
 * Sandbox policy: what a RUN step or a container gets. The result is a JSON spec shaped on the OCI runtime
 * spec (process, root, mounts, linux.namespaces, maskedPaths, readonlyPaths) with mount options already
 * turned into mount(2) flags and data, so the C helper only carries it out.
 */
import fs from 'node:fs';
import { toSysMount, MS, type SysMount } from './mounts.js';
import type { Mount } from '../snapshotter/index.js';
import { CAP_NAMES } from './security.js';
import type { IdMap } from './idmap.js';

/** host, none, bridge (the default bridge network), or container:NAME (another container's stack). */
export type NetworkMode = string;

/** One rlimit; -1 is unlimited. */
export interface Rlimit { type: string; soft: number; hard: number }

export interface SpecMount extends SysMount {
  destination: string;
  /** The mount point is a file (bind of a file), not a directory. */
  file?: boolean;
  /** mount(2) propagation flags set on the mount after it is made (MS_PRIVATE, MS_SLAVE, MS_SHARED, MS_REC). */
  propagation?: number;
  /** A volume tsbuild manages: a container with its own user namespace sees it through its map. */
  idmap?: boolean;
}

export interface SandboxSpec {
  ociVersion: string;
  process: {
    terminal: boolean;
    user: { uid: number; gid: number; additionalGids: number[] };
    args: string[];
    env: string[];
    cwd: string;
    capabilities: { bounding: number[]; effective: number[] };
    rlimits: { type: string; soft: number; hard: number }[];
    noNewPrivileges: boolean;
    createCwd: boolean;
  };
  root: { path: string; readonly: boolean; mounts: SysMount[] };
  hostname: string;
  mounts: SpecMount[];
  symlinks: { path: string; target: string }[];
  linux: {
    /** With a path: an existing namespace to join (a prepared network namespace, another container's). */
    namespaces: { type: string; path?: string }[];
    maskedPaths: string[];
    readonlyPaths: string[];
    /** Classic BPF, [[code, jt, jf, k], ...]; installed last (no_new_privs) or while still root. */
    seccomp?: number[][];
    /** Propagation of the container's whole mount tree, set before anything is mounted. */
    rootfsPropagation: number;
    /** The files the container process writes "0" into first, to join its cgroup (Cgroup.joinFiles). */
    cgroupJoin: string[];
    /** cgroup v2: an eBPF device filter to attach to the container's cgroup. */
    devicesBpf?: { cgroup: string; program: number[][] };
    /** With a `user` namespace: its maps, and the host paths the container sees through them. */
    uidMappings?: IdMap[];
    gidMappings?: IdMap[];
    idmapPaths?: string[];
    /** binfmt_misc handlers registered in the container's own user namespace (emulation). */
    binfmt?: string[];
  };
  loopbackUp: boolean;
  init: boolean;
}

/** What `exec` gives the helper: the container's pid, the namespaces to join, and the process as for `run`. */
export interface ExecSpec {
  pid: number;
  process: SandboxSpec['process'];
  linux: { namespaces: { type: string }[]; seccomp?: number[][]; cgroupJoin: string[] };
}

/** Docker's masked paths (moby's oci/defaults.go), with the per-CPU thermal_throttle dirs it adds. */
function maskedPaths(sysCpu = '/sys/devices/system/cpu'): string[] {
  let cpus: string[] = [];
  try {
    cpus = fs.readdirSync(sysCpu).filter((d) => /^cpu\d+$/.test(d)).map((d) => `${sysCpu}/${d}/thermal_throttle`);
  } catch {
    // no sysfs here
  }
  return [
    '/proc/asound', '/proc/acpi', '/proc/interrupts', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
    '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware', '/sys/devices/virtual/powercap', ...cpus,
  ];
}
const READONLY = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];
const DEVICES = ['null', 'zero', 'full', 'random', 'urandom', 'tty'];

/**
 * Reads the limits in force (/proc/self/limits; a seam for tests). Root here may lack CAP_SYS_RESOURCE,
 * so no limit the sandbox sets may exceed the current hard limit.
 */
export function currentLimits(file = '/proc/self/limits'): Map<string, { soft: number; hard: number }> {
  const out = new Map<string, { soft: number; hard: number }>();
  const names: Record<string, string> = { 'Max open files': 'RLIMIT_NOFILE', 'Max processes': 'RLIMIT_NPROC', 'Max core file size': 'RLIMIT_CORE' };
  let text = '';
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return out;
  }
  for (const line of text.split('\n')) {
    for (const [label, key] of Object.entries(names)) {
      if (!line.startsWith(label)) continue;
      const [soft, hard] = line.slice(label.length).trim().split(/\s+/);
      const n = (v: string | undefined) => (v === 'unlimited' || v === undefined ? -1 : parseInt(v, 10));
      out.set(key, { soft: n(soft), hard: n(hard) });
    }
  }
  return out;
}

/** Docker's default NOFILE is 1048576; it is lowered to the hard limit when that is smaller. */
export function defaultRlimits(limits = currentLimits()): { type: string; soft: number; hard: number }[] {
  const want = 1048576;
  const cur = limits.get('RLIMIT_NOFILE');
  const cap = (v: number) => (cur && cur.hard >= 0 ? Math.min(v, cur.hard) : v);
  return [{ type: 'RLIMIT_NOFILE', soft: cap(want), hard: cap(want) }];
}

export interface SpecOptions {
  rootPath: string;
  rootMounts: Mount[];
  args: string[];
  env: string[];
  cwd: string;
  uid: number;
  gid: number;
  additionalGids?: number[];
  hostname: string;
  network: NetworkMode;
  /** The network namespace to join (bridge, container:NAME); `none` makes a new one, `host` none at all. */
  netnsPath?: string;
  terminal?: boolean;
  init?: boolean;
  readonlyRoot?: boolean;
  /** Files to bind into /etc (resolv.conf, hosts, hostname), host paths. */
  etcFiles?: Record<string, string>;
  extraMounts?: SpecMount[];
  rlimits?: { type: string; soft: number; hard: number }[];
  /** Host /dev, writable /sys, no masked or read-only paths (--privileged, RUN --security=insecure). */
  privileged?: boolean;
  /** Capability names for the bounding set (and the effective set of root). */
  caps: string[];
  noNewPrivileges?: boolean;
  seccomp?: number[][];
  /** Device nodes bound in from the host (--device). */
  devices?: { hostPath: string; containerPath: string }[];
  cgroupJoin?: string[];
  devicesBpf?: { cgroup: string; program: number[][] };
  /** Size of /dev/shm in bytes (default 64 MiB, as Docker). */
  shmSize?: number;
  /**
   * Bind the host's /sys instead of mounting sysfs: a user namespace may mount sysfs only over a
   * network namespace it owns, so a rootless container on the host's network gets a read-only bind.
   */
  bindSys?: boolean;
  /** A user namespace of the container's own (root only): maps, and the paths seen through them. */
  userns?: { uid: IdMap[]; gid: IdMap[]; paths: string[] };
  /** binfmt_misc `register` lines for qemu-user (another platform's programs); needs a user namespace not the host's. */
  binfmt?: string[];
}

export function buildSpec(o: SpecOptions): SandboxSpec {
  const caps = o.caps.map((c) => CAP_NAMES.indexOf(c)).filter((n) => n >= 0);
  // Privileged: the host's /dev (every device), with a private pty instance, shm and mqueue on top.
  const dev: SpecMount[] = o.privileged
    ? [{ destination: '/dev', type: 'none', source: '/dev', flags: MS.BIND | MS.REC, data: '' }]
    : [
        { destination: '/dev', type: 'tmpfs', source: 'tmpfs', flags: MS.NOSUID | MS.STRICTATIME, data: 'mode=755,size=65536k' },
        ...DEVICES.map((d) => ({ destination: `/dev/${d}`, type: 'none', source: `/dev/${d}`, flags: MS.BIND, data: '', file: true })),
      ];
  const mounts: SpecMount[] = [
    { destination: '/proc', type: 'proc', source: 'proc', flags: MS.NOSUID | MS.NOEXEC | MS.NODEV, data: '' },
    ...dev,
    ...(o.devices ?? []).map((d) => ({ destination: d.containerPath, type: 'none', source: d.hostPath, flags: MS.BIND, data: '', file: true })),
    { destination: '/dev/pts', type: 'devpts', source: 'devpts', flags: MS.NOSUID | MS.NOEXEC, data: 'newinstance,ptmxmode=0666,mode=0620' },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', flags: MS.NOSUID | MS.NOEXEC | MS.NODEV, data: `mode=1777,size=${o.shmSize ?? 64 << 20}` },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', flags: MS.NOSUID | MS.NOEXEC | MS.NODEV, data: '' },
    o.bindSys
      ? { destination: '/sys', type: 'none', source: '/sys', flags: MS.BIND | MS.REC | MS.NOSUID | MS.NOEXEC | MS.NODEV | (o.privileged ? 0 : MS.RDONLY), data: '' }
      : { destination: '/sys', type: 'sysfs', source: 'sysfs', flags: MS.NOSUID | MS.NOEXEC | MS.NODEV | (o.privileged ? 0 : MS.RDONLY), data: '' },
  ];
  for (const [name, src] of Object.entries(o.etcFiles ?? {})) {
    mounts.push({ destination: `/etc/${name}`, type: 'none', source: src, flags: MS.BIND | MS.RDONLY, data: '', file: true });
  }
  mounts.push(...(o.extraMounts ?? []));
  const namespaces: { type: string; path?: string }[] = [...(o.userns ? ['user'] : []), 'mount', 'pid', 'uts', 'ipc'].map((type) => ({ type }));
  if (o.netnsPath) namespaces.push({ type: 'network', path: o.netnsPath });
  else if (o.network === 'none') namespaces.push({ type: 'network' });
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: o.terminal ?? false,
      user: { uid: o.uid, gid: o.gid, additionalGids: o.additionalGids ?? [] },
      args: o.args,
      env: o.env,
      cwd: o.cwd,
      capabilities: { bounding: caps, effective: o.uid === 0 ? caps : [] },
      rlimits: o.rlimits ?? defaultRlimits(),
      noNewPrivileges: o.noNewPrivileges ?? false,
      createCwd: true,
    },
    root: { path: o.rootPath, readonly: o.readonlyRoot ?? false, mounts: o.rootMounts.map(toSysMount) },
    hostname: o.hostname,
    mounts,
    symlinks: [
      { path: 'dev/ptmx', target: 'pts/ptmx' },
      { path: 'dev/fd', target: '/proc/self/fd' },
      { path: 'dev/stdin', target: '/proc/self/fd/0' },
      { path: 'dev/stdout', target: '/proc/self/fd/1' },
      { path: 'dev/stderr', target: '/proc/self/fd/2' },
    ],
    linux: {
      namespaces,
      rootfsPropagation: rootPropagation(mounts),
      maskedPaths: o.privileged ? [] : maskedPaths(),
      readonlyPaths: o.privileged ? [] : READONLY,
      ...(o.seccomp ? { seccomp: o.seccomp } : {}),
      cgroupJoin: o.cgroupJoin ?? [],
      ...(o.devicesBpf ? { devicesBpf: o.devicesBpf } : {}),
      ...(o.userns ? { uidMappings: o.userns.uid, gidMappings: o.userns.gid, idmapPaths: o.userns.paths } : {}),
      ...(o.binfmt?.length ? { binfmt: o.binfmt } : {}),
    },
    loopbackUp: o.network === 'none' && !o.netnsPath,
    init: o.init ?? false,
  };
}

/**
 * Docker's rule: the tree is rprivate unless a mount asks for slave or shared propagation, which needs
 * the tree rslave (to keep receiving the host's mounts) or rshared (to send them back).
 */
export function rootPropagation(mounts: SpecMount[]): number {
  if (mounts.some((m) => (m.propagation ?? 0) & MS.SHARED)) return MS.SHARED | MS.REC;
  if (mounts.some((m) => (m.propagation ?? 0) & MS.SLAVE)) return MS.SLAVE | MS.REC;
  return MS.PRIVATE | MS.REC;
}

/** The mount points a spec puts into the root filesystem (so stubs it creates can be removed after). */
export function mountDestinations(spec: SandboxSpec): { path: string; file: boolean }[] {
  return spec.mounts.map((m) => ({ path: m.destination, file: m.file ?? false }));
}
