/**
 * Container records: `containers/<id>/state.json`, one per container, written atomically under the
 * store's container lock. A record says who owns the running container (the attached `tsbuild run`,
 * or a detached container's monitor) by pid and start time; reading a record checks that owner, so a
 * container whose owner died (kill -9, a reboot) reads as exited with the reason, never as running.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { NotFoundError, TsbuildError } from '../errors/index.js';
import { byText, processAlive, readJSONFile, sameProcessAlive, withLock, writeFileAtomicChunks } from '../fsutil/index.js';
import type { CgroupLimits } from './cgroupfs.js';
import type { SecurityOptions } from './security.js';
import type { NetworkMode, Rlimit } from './spec.js';
import type { MountConfig } from './volumes.js';
import type { PortBinding } from './network.js';
import type { IdMap } from './idmap.js';

export type ContainerStatus = 'created' | 'running' | 'paused' | 'restarting' | 'exited' | 'dead';

export interface RestartPolicy {
  name: 'no' | 'on-failure' | 'always' | 'unless-stopped';
  /** on-failure only: 0 is unlimited. */
  maxRetries: number;
}

export interface HealthConfig {
  /** ["CMD", ...] or ["CMD-SHELL", "..."] as in an image config; ["NONE"] disables. */
  test: string[];
  /** Nanoseconds, as in an image config (0: the default). */
  interval?: number;
  timeout?: number;
  startPeriod?: number;
  retries?: number;
}

export interface HealthState {
  status: 'starting' | 'healthy' | 'unhealthy';
  failingStreak: number;
  log: { start: string; end: string; exitCode: number; output: string }[];
}

/** Everything needed to start the container's process again (`start`, restart policies). */
export interface ContainerConfig {
  args: string[];
  env: string[];
  cwd: string;
  user: string;
  hostname: string;
  network: NetworkMode;
  tty?: boolean;
  interactive?: boolean;
  init?: boolean;
  readOnly?: boolean;
  security?: SecurityOptions;
  limits?: CgroupLimits;
  ulimits?: Rlimit[];
  extraHosts?: string[];
  shmSize?: number;
  stopSignal?: string;
  /** Seconds; default 10. */
  stopTimeout?: number;
  restart?: RestartPolicy;
  healthcheck?: HealthConfig;
  log?: { maxSize: number; maxFile: number };
  /** -p/-P: ports to publish (bridge; host port 0 is chosen at each start). */
  ports?: PortBinding[];
  /** --mac-address and --ip on the first network; --network-alias there. */
  mac?: string;
  ip?: string;
  aliases?: string[];
  /** Networks joined later (`network connect`), kept across restarts. */
  extraNetworks?: { network: string; aliases?: string[] }[];
  /** --dns (upstreams), --dns-search, --dns-option. */
  dns?: string[];
  dnsSearch?: string[];
  dnsOptions?: string[];
  /** Binds, volumes and tmpfs mounts (-v, --mount, --tmpfs, the image's VOLUMEs, --volumes-from). */
  mounts?: MountConfig[];
  /** --rm: the record and snapshot go when the container ends for good. */
  autoRemove?: boolean;
  /** A user namespace of its own: `auto` (a block allocated at create) or the --uidmap/--gidmap given. */
  /** `keepId`: the container ids the user's own are (--userns keep-id, rootless), its default user. */
  /** os/arch[/variant] of an image of another platform than this machine's: it runs under emulation. */
  platform?: string;
  userns?: { mode: 'auto' | 'map' | 'keep-id'; size?: number; uid: IdMap[]; gid: IdMap[]; keepId?: { uid: number; gid: number } };
}

export interface ContainerState {
  id: string;
  name: string;
  image: string;
  imageId: string;
  command: string[];
  created: string;
  status: ContainerStatus;
  /** The owner: the attached `tsbuild run`, or the detached container's monitor. */
  pid?: number;
  /** The owner's start time (/proc/PID/stat), so a recycled pid is not taken for it. */
  pidStart?: number;
  /** The container's first process, as the host sees it. */
  containerPid?: number;
  detached?: boolean;
  exitCode?: number;
  startedAt?: string;
  finishedAt?: string;
  /** Why the container is not running, when it was not its own decision. */
  error?: string;
  restartCount?: number;
  /** `stop`/`kill`/`rm -f` asked it to end: restart policies do not apply. */
  manualStop?: boolean;
  health?: HealthState;
  snapshot: string;
  keep: boolean;
  /** The container's cgroup name (under tsbuild's own), for stats. */
  cgroup?: string;
  /** Its cgroup.procs files, absolute: any tsbuild process finds the cgroup, whatever its own cgroup. */
  cgroupProcs?: string[];
  oomKilled?: boolean;
  /** While it runs on the bridge: its address and the host ports actually published. */
  network?: { ip: string; gateway: string; mac: string; ports: PortBinding[] };
  config?: ContainerConfig;
}

const ACTIVE: ContainerStatus[] = ['running', 'paused', 'restarting'];

/**
 * A record is replaced atomically; it is fsynced unless the container is `--rm`: such a record lives
 * for one run, a process crash keeps the page cache, and after a power loss a lost record only means
 * its layer is swept as one nobody names. Four fsyncs were a tenth of `run --rm IMAGE true`.
 */
function save(file: string, s: ContainerState): void {
  writeFileAtomicChunks(file, [JSON.stringify(s, null, 1)], { sync: !s.config?.autoRemove });
}

export class Containers {
  private dir: string;
  constructor(storeRoot: string) {
    this.dir = path.join(storeRoot, 'containers');
    fs.mkdirSync(this.dir, { recursive: true });
  }
  newId(): string {
    return crypto.randomBytes(32).toString('hex');
  }
  dirOf(id: string): string {
    return path.join(this.dir, id);
  }
  private file(id: string): string {
    return path.join(this.dirOf(id), 'state.json');
  }
  private held = false;
  /** The store-wide container lock; re-entrant within this process (list() inside create()). */
  private locked<T>(fn: () => T): T {
    if (this.held) return fn();
    return withLock(path.join(this.dir, '.lock'), () => {
      this.held = true;
      try {
        return fn();
      } finally {
        this.held = false;
      }
    });
  }
  /** One record as stored, or a `dead` placeholder when it is damaged (so `rm` can still remove it). */
  private read(id: string): ContainerState | null {
    try {
      return readJSONFile<ContainerState | null>(this.file(id), null);
    } catch (e) {
      return {
        id, name: id.slice(0, 12), image: '', imageId: '', command: [], created: new Date(0).toISOString(), status: 'dead', snapshot: '', keep: true,
        error: `the container's record is damaged (${(e as Error).message.split('. ')[0]}): remove the container with "tsbuild rm ${id.slice(0, 12)}"`,
      };
    }
  }
  /** The record as it is true now: an active container whose owner is gone has exited. */
  private truth(s: ContainerState): ContainerState {
    if (!ACTIVE.includes(s.status) || s.pid === undefined || sameProcessAlive(s.pid, s.pidStart)) return s;
    return this.locked(() => {
      const cur = this.read(s.id);
      if (!cur || !ACTIVE.includes(cur.status) || cur.pid === undefined || sameProcessAlive(cur.pid, cur.pidStart)) return cur ?? s;
      const next: ContainerState = {
        ...cur, status: 'exited', exitCode: cur.exitCode ?? 137, finishedAt: new Date().toISOString(),
        error: `${cur.detached ? 'its monitor' : 'tsbuild run'} (pid ${cur.pid}) died, and the container was killed with it`,
      };
      save(this.file(s.id), next);
      return next;
    });
  }
  list(): ContainerState[] {
    const out: ContainerState[] = [];
    for (const id of fs.readdirSync(this.dir)) {
      const m = /^\.new-(\d+)-/.exec(id);
      // A record being created by a process that died before it finished.
      if (m && !processAlive(parseInt(m[1]!, 10))) fs.rmSync(path.join(this.dir, id), { recursive: true, force: true });
      if (id.startsWith('.')) continue;
      const s = this.read(id);
      if (s) out.push(this.truth(s));
    }
    return out.sort((a, b) => byText(b.created, a.created));
  }
  get(id: string): ContainerState | undefined {
    const s = this.read(id);
    return s ? this.truth(s) : undefined;
  }
  /**
   * Creates the record; a taken name is an error, as in Docker. `complete` fills in what depends on the
   * other containers (a generated name, a --userns auto block), under the same lock, so two creates
   * cannot pick the same.
   */
  create(s: ContainerState, complete?: (others: ContainerState[]) => void): void {
    this.locked(() => {
      const others = this.list();
      complete?.(others);
      const taken = others.find((c) => c.name === s.name);
      if (taken) {
        throw new TsbuildError('NAME_IN_USE', `the container name "${s.name}" is already in use by container ${taken.id}: remove it with "tsbuild rm ${s.name}" or pick another --name`);
      }
      // The directory appears with its record in it (a rename), so a kill in between leaves no
      // record-less directory that would keep the container's layer from recovery for ever.
      const tmp = path.join(this.dir, `.new-${process.pid}-${s.id}`);
      fs.mkdirSync(tmp, { recursive: true });
      save(path.join(tmp, 'state.json'), s);
      fs.renameSync(tmp, this.dirOf(s.id));
    });
  }
  /**
   * Read-modify-write under the lock; `patch` may be a function of the current record. Returns the new
   * record, or undefined when it is gone (removed meanwhile): an update never brings a record back.
   */
  update(id: string, patch: Partial<ContainerState> | ((cur: ContainerState) => Partial<ContainerState>)): ContainerState | undefined {
    return this.locked(() => {
      const cur = this.read(id);
      if (!cur || cur.status === 'dead') return undefined;
      const next = { ...cur, ...(typeof patch === 'function' ? patch(cur) : patch) };
      save(this.file(id), next);
      return next;
    });
  }
  /** Renames under the lock, so two renames cannot take one name. */
  rename(id: string, name: string): void {
    this.locked(() => {
      const taken = this.list().find((c) => c.name === name && c.id !== id);
      if (taken) throw new TsbuildError('NAME_IN_USE', `the container name "${name}" is already in use by container ${taken.id}: pick another name`);
      const cur = this.read(id);
      if (cur) save(this.file(id), { ...cur, name });
    });
  }
  /** By name, full id, or a unique id prefix, as Docker resolves them. */
  find(ref: string): ContainerState {
    const all = this.list();
    const byName = all.find((x) => x.name === ref);
    if (byName) return byName;
    const byId = all.filter((x) => x.id.startsWith(ref));
    if (byId.length > 1) throw new TsbuildError('CONTAINER_AMBIGUOUS', `"${ref}" matches ${byId.length} containers: give more of the id`);
    if (!byId[0] || ref === '') throw new NotFoundError(`No such container: ${ref}`, 'CONTAINER_NOT_FOUND');
    return byId[0];
  }
  delete(id: string): void {
    this.locked(() => fs.rmSync(this.dirOf(id), { recursive: true, force: true }));
  }
}
