/**
 * The one path from a prepared snapshot to a running process, shared by build RUN steps and
 * `tsbuild run`: the snapshot's layer directories → the user looked up in the image's own
 * /etc/passwd and /etc/group → HOME and PATH defaults → generated /etc files → the sandbox spec →
 * mount stubs noted → the helper runs it → stubs removed from the writable layer. The caller owns the
 * snapshot (prepares it before, commits or removes it after) and the scratch directory.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { DEFAULT_PATH } from '../image/index.js';
import { processAlive } from '../fsutil/index.js';
import type { Mount } from '../snapshotter/index.js';
import { runSpec, type RunResult, type SpawnOptions } from './helper.js';
import { hostUnmountAsync } from './mountserver.js';
import { FUSE_OVERLAY, containerRootMounts, mountFuseOverlayAsync } from './fuse.js';
import { toSysMount } from './mounts.js';
import { layerDirs, missingMountPoints, readFileInLayers, removeMountStubs } from './layers.js';
import { buildSpec, defaultRlimits, mountDestinations, type NetworkMode, type Rlimit, type SpecMount } from './spec.js';
import { resolveUser } from './user.js';
import { writeEtcFiles, type Resolv } from './etc.js';
import { cgroupManager, delegatedToUser, type CgroupDriver, type CgroupLimits } from './cgroups.js';
import { isRootless } from './userns.js';
import type { Emulation } from './emulation.js';
import { IDENTITY_MAPS, hostIdOf, idmapSources, isIdentityMap, type UserNamespaceMaps } from './idmap.js';
import { TsbuildError } from '../errors/index.js';
import { deviceRules, resolveCaps, seccompProgram, type SecurityOptions } from './security.js';

export interface ContainerOptions {
  /** The mounts of the container's writable snapshot, as its snapshotter gives them. */
  rootMounts: Mount[];
  /** Where the container's writes land on the host (overlay upperdir, a native copy), for stub removal. */
  writableDir: () => Promise<string | undefined>;
  /** The caller's scratch directory: the root mount point and generated /etc files go here. */
  workDir: string;
  args: string[];
  /** KEY=VALUE; HOME (from the user's passwd entry) and PATH are added when missing. */
  env: string[];
  cwd: string;
  /** USER spec (`name`, `uid`, `name:group`, …), resolved in the image; empty is root. */
  user: string;
  hostname: string;
  network: NetworkMode;
  /** The prepared network namespace to join, and the container's address in it (for /etc/hosts). */
  netns?: { path: string; ip?: string; resolv?: Resolv };
  terminal?: boolean;
  init?: boolean;
  readonlyRoot?: boolean;
  /** Capabilities, seccomp, no_new_privs, devices, privileged (Docker's defaults when absent). */
  security?: SecurityOptions;
  /** The container's cgroup: its name (`ctr-<pid>-…`, parent/child allowed) and limits. */
  cgroup?: { name: string; limits?: CgroupLimits };
  /** The cgroup driver (tests inject one); default: the host's. */
  cgroups?: CgroupDriver;
  extraMounts?: SpecMount[];
  /** --ulimit values; they replace the defaults of the same type. */
  rlimits?: Rlimit[];
  /** --add-host `name:ip` entries for /etc/hosts. */
  extraHosts?: string[];
  /** --shm-size in bytes. */
  shmSize?: number;
  /** Where compiled seccomp programs are kept between containers (the store's). */
  seccompCacheDir?: string;
  /** A user namespace of the container's own (--userns auto, --uidmap; root only). */
  userns?: UserNamespaceMaps;
  /**
   * Where a root served by a process (fuse-overlayfs) is mounted on the host: the store's tmp/mnt,
   * whose `<pid>-…` names let recovery unmount what a dead process left. Default: `workDir`.
   */
  mountDir?: string;
  /** Another platform's programs run through qemu-user (see emulation.ts). */
  emulation?: Emulation;
}

export interface ContainerResult extends RunResult {
  /** The kernel's OOM killer ended a process of the container. */
  oomKilled: boolean;
  /** The memory limit in force, if any. */
  memoryLimit?: number;
}

/** What Docker users read when the OOM killer ended a process: the limit that was hit. */
export function oomMessage(limit: number | undefined): string {
  return `container killed: out of memory${limit !== undefined ? ` (limit ${limit >= 1 << 30 ? `${+(limit / 2 ** 30).toFixed(1)} GiB` : `${+(limit / 2 ** 20).toFixed(1)} MiB`})` : ''}`;
}

/**
 * Removes the cgroups of tsbuild processes that died (kill -9, a crash): their names carry the owner's
 * pid (`ctr-<pid>-…`, `build-<pid>-…`). Live owners' cgroups are left alone.
 */
export async function reapCgroups(driver: CgroupDriver = cgroups()): Promise<number> {
  let n = 0;
  for (const name of driver.list()) {
    const m = /^[a-z]+-(\d+)-/.exec(name);
    if (!m || processAlive(parseInt(m[1]!, 10))) continue;
    await driver.open(name)?.remove().catch(() => undefined);
    n++;
  }
  return n;
}

let hostCgroups: CgroupDriver | undefined;
/** The host's cgroup driver, detected once per process. */
export function cgroups(): CgroupDriver {
  hostCgroups ??= cgroupManager();
  return hostCgroups;
}

/**
 * A rootless process owns no cgroup unless the host delegated one: without, the container runs
 * with none (the app layer has said that limits are not applied). Otherwise a failure is an error.
 */
function rootlessCgroup<T>(make: () => T): T | undefined {
  return isRootless() && !delegatedToUser() ? undefined : make();
}

function hasVar(env: string[], name: string): boolean {
  return env.some((e) => e === name || e.startsWith(`${name}=`));
}

/** Generated /etc files belong to the container's root, as Docker's do with userns-remap. */
function ownedBy(files: Record<string, string>, root: { uid: number; gid: number } | undefined): Record<string, string> {
  if (root) for (const f of Object.values(files)) fs.chownSync(f, root.uid, root.gid);
  return files;
}

/**
 * A container with its own user namespace: its user must have an id in the map, and the directory
 * that takes its writes without a map (an overlay's upper) must belong to its root, since the root
 * directory's owner comes from there.
 */
async function ownUserNamespace(o: ContainerOptions, rootMounts: Mount[], user: { uid: number; gid: number }, served: boolean): Promise<{ root: { uid: number; gid: number }; paths: string[] }> {
  const maps = o.userns!;
  const root = { uid: hostIdOf(maps.uid, 0)!, gid: hostIdOf(maps.gid, 0)! };
  for (const [kind, id, m] of [['uid', user.uid, maps.uid], ['gid', user.gid, maps.gid]] as const) {
    if (hostIdOf(m, id) === undefined) {
      throw new TsbuildError('USERNS_UNMAPPED', `the container's user has ${kind} ${id}, which its user namespace does not map (${m.map((x) => `${x.containerID}:${x.hostID}:${x.size}`).join(', ')}): map a range that holds it, or run as another user (-u)`);
    }
  }
  // Through an identity map the layers look as they are: no idmapped mounts needed.
  const paths = isIdentityMap(maps) ? [] : idmapSources(rootMounts);
  const upper = await o.writableDir();
  // A served root shows the upper through the map already.
  if (upper && !served && !paths.includes(upper)) fs.chownSync(upper, root.uid, root.gid);
  return { root, paths };
}

/**
 * A root that a process serves (fuse-overlayfs) is mounted on the host before the helper runs, since
 * the helper makes mount(2) calls only; the helper then takes that tree as the root. With a user
 * namespace of the container's own, fuse-overlayfs shows the layers through the map (a FUSE tree
 * cannot be idmapped).
 */
async function mountServedRoot(o: ContainerOptions, rootMounts: Mount[]): Promise<string | undefined> {
  const m = rootMounts.find((x) => x.type === FUSE_OVERLAY);
  if (!m) return undefined;
  const dir = path.join(o.mountDir ?? o.workDir, `${process.pid}-root-${crypto.randomBytes(4).toString('hex')}`);
  fs.mkdirSync(dir, { recursive: true });
  try {
    await mountFuseOverlayAsync(toSysMount(m), dir, o.userns);
  } catch (e) {
    fs.rmdirSync(dir);
    throw e;
  }
  return dir;
}

export async function runContainer(opts: ContainerOptions, io: SpawnOptions): Promise<ContainerResult> {
  // Handlers of our own live in a user namespace not the host's: as root, one that keeps every id
  // (rootless, the container is in one already).
  const o = opts.emulation?.register.length && !opts.userns && !isRootless() ? { ...opts, userns: IDENTITY_MAPS } : opts;
  // Rootless, a user namespace of the container's own gets no idmapped mounts (they need host root):
  // fuse-overlayfs shows the layers through the map instead, and volumes are seen as they are.
  const ownRootless = o.userns !== undefined && isRootless();
  const rootMounts = containerRootMounts(o.rootMounts, o.userns !== undefined, 'a user namespace of the container\'s own in a rootless tsbuild');
  const dirs = layerDirs(rootMounts);
  const user = resolveUser(o.user, readFileInLayers(dirs, '/etc/passwd'), readFileInLayers(dirs, '/etc/group'));
  const env = [...o.env];
  if (!hasVar(env, 'PATH')) env.unshift(`PATH=${DEFAULT_PATH}`);
  if (!hasVar(env, 'HOME')) env.push(`HOME=${user.home}`);
  const rootPath = path.join(o.workDir, 'rootfs');
  fs.mkdirSync(rootPath, { recursive: true });
  const sec = o.security ?? {};
  const caps = resolveCaps(sec);
  // Seccomp rules that depend on capabilities look at what the process will hold: nothing, for non-root.
  const seccomp = seccompProgram(sec, user.uid === 0 ? caps : [], o.seccompCacheDir);
  const served = rootMounts.some((m) => m.type === FUSE_OVERLAY);
  const userns = o.userns && (await ownUserNamespace(o, rootMounts, user, served));
  const driver = o.cgroups ?? cgroups();
  const cg = o.cgroup ? rootlessCgroup(() => driver.create(o.cgroup!.name, { ...o.cgroup!.limits, devices: deviceRules(sec) })) : undefined;
  let stubs: string[] = [];
  let servedRoot: string | undefined;
  try {
    servedRoot = await mountServedRoot(o, rootMounts);
    const spec = buildSpec({
      rootPath: servedRoot ?? rootPath,
      rootMounts: servedRoot ? [] : rootMounts,
      args: o.args,
      env,
      cwd: o.cwd || '/',
      uid: user.uid,
      gid: user.gid,
      additionalGids: user.additionalGids,
      hostname: o.hostname,
      network: o.network,
      netnsPath: o.netns?.path,
      terminal: o.terminal,
      init: o.init,
      readonlyRoot: o.readonlyRoot,
      privileged: sec.privileged,
      caps,
      noNewPrivileges: sec.noNewPrivileges ?? !sec.privileged,
      seccomp,
      devices: sec.devices,
      cgroupJoin: cg?.joinFiles,
      devicesBpf: cg?.deviceFilter,
      etcFiles: ownedBy(writeEtcFiles(path.join(o.workDir, 'etc'), o.hostname, o.network, o.extraHosts, o.netns?.ip, o.netns?.resolv), userns?.root),
      shmSize: o.shmSize,
      // sysfs mounts only over a network namespace that the container's user namespace owns.
      bindSys: userns ? o.network !== 'none' || o.netns !== undefined : isRootless() && !o.netns && o.network !== 'none',
      userns: userns && { uid: o.userns!.uid, gid: o.userns!.gid, paths: [...userns.paths, ...(ownRootless ? [] : (o.extraMounts ?? []).filter((m) => m.idmap).map((m) => m.source))] },
      extraMounts: o.extraMounts,
      binfmt: o.emulation?.register,
      rlimits: [...defaultRlimits().filter((d) => !o.rlimits?.some((r) => r.type === d.type)), ...(o.rlimits ?? [])],
    });
    // Mount points the image lacked are created by the helper; they must not end up in the layer.
    stubs = missingMountPoints(dirs, mountDestinations(spec).map((m) => m.path));
    const r = await runSpec(spec, { ...io, onStart: io.onStart && ((info) => io.onStart!({ ...info, cgroupProcs: cg?.procsFiles })) });
    // The limit asked for is the one hit: no need to read every stats file back for it.
    return { ...r, oomKilled: cg?.oomKilled() ?? false, memoryLimit: o.cgroup?.limits?.memory };
  } finally {
    if (servedRoot) {
      await hostUnmountAsync(servedRoot).catch(() => undefined);
      try {
        fs.rmdirSync(servedRoot);
      } catch {
        // still mounted (busy): recovery unmounts it once this process is gone
      }
    }
    const upper = await o.writableDir();
    if (upper) removeMountStubs(upper, stubs);
    await cg?.remove();
  }
}
