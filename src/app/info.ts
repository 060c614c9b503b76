/** `info`: the store, its default driver, and what this kernel and machine support. */
import fs from 'node:fs';
import os from 'node:os';
import { driverSupport } from '../snapshotter/index.js';
import { fileBatching, pageCacheAdvice } from '../fsutil/index.js';
import { AUTO_SIZE, AUTO_USER, autoRanges, delegatedToUser, fuseOverlayUnavailable, describeCgroups, detectCgroups, helperPath, hostCaps, probeOverlay, rootlessMapKind, slirpAvailable, emulationSummary, spawnMethod, hostMountMethod } from '../runtime/index.js';
import { defaultDriver } from '../store/index.js';

export interface Info {
  root: string;
  snapshotter: string;
  drivers: Record<string, string>;
  kernel: string;
  cgroups: string;
  /** Capabilities this host lets tsbuild grant (what --privileged gives). */
  capabilities: number;
  helper: string;
  /** How the helper is started: posix_spawn through the addon, or a fork through child_process and why. */
  spawn: string;
  /** Whether large streamed writes advise the kernel on their page cache (the pagecache addon), or why not. */
  pageCache: string;
  /** Whether layer apply makes small files in batches through the files addon, or why not. */
  smallFiles: string;
  /** Whether host mounts and xattr listings are made in this process (the mounts addon) or by the helper, and why. */
  mounts: string;
  cpus: number;
  /** Rootless: how ids are mapped, and what that gives up; absent for root. */
  rootless?: string;
  /** As root: what --userns auto would draw from; absent when rootless. */
  userNamespaces?: string;
  /** Each platform qemu-user could emulate, and what runs its programs here (or why nothing can). */
  platforms: { platform: string; via?: string; error?: string }[];
}

function usernsText(): string | undefined {
  if (rootlessMapKind()) return undefined;
  const uid = autoRanges('/etc/subuid'), gid = autoRanges('/etc/subgid');
  const per = '--uidmap/--gidmap give a container a user namespace of its own';
  if (uid.length === 0 || gid.length === 0) return `${per}; --userns auto needs a range for the user "${AUTO_USER}" in ${uid.length === 0 ? '/etc/subuid' : '/etc/subgid'}`;
  const n = (r: { count: number }[]) => r.reduce((a, x) => a + x.count, 0);
  return `${per}; --userns auto draws from "${AUTO_USER}": ${n(uid)} uids, ${n(gid)} gids (${Math.floor(Math.min(n(uid), n(gid)) / AUTO_SIZE)} blocks of ${AUTO_SIZE})`;
}

function rootlessText(): string | undefined {
  const kind = rootlessMapKind();
  if (!kind) return undefined;
  let map = '';
  try {
    map = fs.readFileSync('/proc/self/uid_map', 'utf8').trim().split('\n').map((l) => l.trim().split(/\s+/).join(' ')).join(', ');
  } catch {
    // unreadable: the kind alone is said
  }
  const ids = kind === 'single' ? 'only the user\'s own id (chown to other ids fails)' : 'the user and its /etc/subuid range';
  const nets = slirpAvailable() ? 'networks slirp4netns (default), host, none' : 'networks host (default), none (install slirp4netns for a network of its own and -p)';
  const limits = delegatedToUser() ? 'cgroup limits in the delegated v2 subtree' : 'no cgroup limits (no cgroup delegated to this user)';
  return `yes: user namespace mapping ${ids} [inside outside count: ${map}]; ${nets}; ${limits}; no device nodes from images`;
}

function pageCacheText(): string {
  const s = pageCacheAdvice();
  return s.on ? 'writeback started behind large writes; a pulled blob\'s pages dropped once unpacked (native/build/tsbuild-pagecache.node)' : `left to the kernel (${s.reason})`;
}

function smallFilesText(): string {
  const s = fileBatching();
  return s.on ? "a layer's files up to 64 KiB made a batch at a time, one call into C a batch (native/build/tsbuild-files.node)" : `made one by one through Node (${s.reason})`;
}

function overlayProbe(): string | undefined {
  return probeOverlay(fs.mkdtempSync(`${os.tmpdir()}/tsb-info-`));
}

export function info(root: string): Info {
  fs.mkdirSync(root, { recursive: true });
  return {
    root,
    snapshotter: defaultDriver(root),
    drivers: driverSupport(root, overlayProbe, fuseOverlayUnavailable),
    kernel: os.release(),
    cgroups: describeCgroups(),
    capabilities: hostCaps().size,
    helper: helperPath(),
    spawn: spawnMethod(),
    pageCache: pageCacheText(),
    smallFiles: smallFilesText(),
    mounts: hostMountMethod(),
    cpus: os.availableParallelism(),
    rootless: rootlessText(),
    userNamespaces: usernsText(),
    platforms: emulationSummary(),
  };
}

/** The fields of `docker info` that mean something here, under Docker's names, for `info --format`. */
export interface DockerInfo {
  Containers: number;
  ContainersRunning: number;
  ContainersPaused: number;
  ContainersStopped: number;
  Images: number;
  Driver: string;
  DockerRootDir: string;
  KernelVersion: string;
  OperatingSystem: string;
  OSVersion: string;
  OSType: string;
  Architecture: string;
  NCPU: number;
  MemTotal: number;
  Name: string;
  ServerVersion: string;
  CgroupDriver: string;
  CgroupVersion: string;
  MemoryLimit: boolean;
  SwapLimit: boolean;
  CpuCfsPeriod: boolean;
  CpuCfsQuota: boolean;
  CPUShares: boolean;
  CPUSet: boolean;
  PidsLimit: boolean;
  OomKillDisable: boolean;
  IPv4Forwarding: boolean;
  Debug: boolean;
  SecurityOptions: string[];
  Labels: string[];
  Warnings: string[];
}

function osRelease(): Record<string, string> {
  const out: Record<string, string> = {};
  let text = '';
  try {
    text = fs.readFileSync('/etc/os-release', 'utf8');
  } catch {
    return out;
  }
  for (const m of text.matchAll(/^([A-Z_]+)=("?)(.*)\2$/gm)) out[m[1]!] = m[3]!;
  return out;
}

/**
 * `docker info`'s shape, from this machine and the store's counts. Docker's daemon-only fields
 * (swarm, plugins, registry mirrors) are left out: a template naming one fails and says which.
 */
export function dockerInfo(i: Info, counts: { containers: { status: string }[]; images: number }, version: string): DockerInfo {
  const layout = detectCgroups();
  const has = (c: string) => layout.v1.has(c) || (layout.v2?.controllers.has(c) ?? false);
  const memoryV1 = layout.v1.get('memory');
  const swap = memoryV1 ? fs.existsSync(`${memoryV1.mount}/memory.memsw.limit_in_bytes`) : has('memory');
  const rel = osRelease();
  const n = (s: string) => counts.containers.filter((c) => c.status === s).length;
  const running = n('running') + n('restarting');
  const warnings: string[] = [];
  if (!has('memory')) warnings.push('WARNING: No memory limit support');
  if (!swap) warnings.push('WARNING: No swap limit support');
  if (!has('pids')) warnings.push('WARNING: No pids limit support');
  return {
    Containers: counts.containers.length,
    ContainersRunning: running,
    ContainersPaused: n('paused'),
    ContainersStopped: counts.containers.length - running - n('paused'),
    Images: counts.images,
    Driver: i.snapshotter,
    DockerRootDir: i.root,
    KernelVersion: i.kernel,
    OperatingSystem: rel['PRETTY_NAME'] ?? 'Linux',
    OSVersion: rel['VERSION_ID'] ?? '',
    OSType: 'linux',
    Architecture: os.machine(),
    NCPU: i.cpus,
    MemTotal: os.totalmem(),
    Name: os.hostname(),
    ServerVersion: version,
    CgroupDriver: layout.mode === 'none' ? 'none' : 'cgroupfs',
    // Docker says 1 for a hybrid host, whose limits are v1's.
    CgroupVersion: layout.mode === 'v2' ? '2' : layout.mode === 'none' ? '' : '1',
    MemoryLimit: has('memory'),
    SwapLimit: swap,
    CpuCfsPeriod: has('cpu'),
    CpuCfsQuota: has('cpu'),
    CPUShares: has('cpu'),
    CPUSet: has('cpuset'),
    PidsLimit: has('pids'),
    OomKillDisable: memoryV1 !== undefined,
    IPv4Forwarding: fs.existsSync('/proc/sys/net/ipv4/ip_forward') && fs.readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim() === '1',
    Debug: false,
    SecurityOptions: ['name=seccomp,profile=builtin', ...(i.rootless ? ['name=rootless'] : [])],
    Labels: [],
    Warnings: warnings,
  };
}
