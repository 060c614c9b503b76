/**
 * `run`: an image's process in the sandbox on a fresh writable snapshot, through the runtime's one
 * container path. The record is written (status `created`, with everything needed to start the
 * process again) before the process starts; then either this process supervises it (attached), or a
 * monitor does (`-d`): a small tsbuild process of its own that outlives the command, as conmon does
 * for podman. Supervising means: start, log, record the exit, apply the restart policy, run the
 * health check. Terminal modes and signal forwarding are the caller's (`hooks`).
 */
import { NotFoundError, TsbuildError, UsageError } from '../errors/index.js';
import { parseDuration, signalNumber } from '../planner/index.js';
import {
  isRootless, delegatedToUser, DEFAULT_LOG_OPTIONS, mergeEnv, type CgroupLimits, type ContainerConfig, type ContainerState, type NetworkMode, type RestartPolicy, type Rlimit, type SecurityOptions,
} from '../runtime/index.js';
import type { ImageConfig } from '../image/index.js';
import { imageLayers, tempKey, unpackLayers, type Store } from '../store/index.js';
import { logger, type OpOptions } from './events.js';
import { pullPolicy, resolveOrPull, type RegistryOptions } from './registry.js';
import { supervise } from './supervise.js';
import { spawnReporting } from './detached.js';
import { bridged, bridgedUser, dnsConfig, leaveNetwork, networkConfig, networkMode } from './network.js';
import { anonymousVolumes, mountList, populateVolumes, prepareMounts, type StorageRequest } from './mounts.js';
import { ROOTLESS_NO_LIMITS } from './rootless.js';
import { addKeepIdUser, allocateUserns, usernsConfig } from './userns.js';
import { platformFlag, runPlatform } from './platform.js';

export interface RunRequest extends RegistryOptions, StorageRequest {
  image: string;
  /** `--platform`: the image is pulled (or must be) for it; another platform than this machine's runs under emulation. */
  platform?: string;
  /** `--userns` host (default), auto[:size=N]; `--uidmap`/`--gidmap` CONTAINER:HOST:SIZE (app/userns.ts). */
  userns?: string;
  uidmap?: string[];
  gidmap?: string[];
  /** Replaces the image's CMD when not empty. */
  command?: string[];
  /** Replaces the image's ENTRYPOINT ('' clears it). */
  entrypoint?: string;
  name?: string;
  /** Remove the container when it exits. */
  rm?: boolean;
  /** Start in the background under a monitor; `run` returns the id. */
  detach?: boolean;
  interactive?: boolean;
  tty?: boolean;
  /** KEY=VALUE, applied over the image's environment. */
  env?: string[];
  workdir?: string;
  user?: string;
  hostname?: string;
  /** bridge (default), host, none, container:NAME. */
  network?: NetworkMode;
  /** -p specs, -P, --mac-address. */
  publish?: string[];
  publishAll?: boolean;
  mac?: string;
  /** --network-alias, --ip (user networks), --dns, --dns-search, --dns-option. */
  aliases?: string[];
  ip?: string;
  dns?: string[];
  dnsSearch?: string[];
  dnsOptions?: string[];
  init?: boolean;
  readOnly?: boolean;
  /** missing | always | never. */
  pull?: string;
  /** cgroup limits (--memory, --cpus, --pids-limit, …). */
  limits?: CgroupLimits;
  /** Capabilities, seccomp, no_new_privs, devices, privileged. */
  security?: SecurityOptions;
  ulimits?: Rlimit[];
  /** /etc/hosts entries (`name:ip`) and the /dev/shm size in bytes. */
  extraHosts?: string[];
  shmSize?: number;
  /** --stop-signal (else the image's STOPSIGNAL, else SIGTERM) and --stop-timeout in seconds. */
  stopSignal?: string;
  stopTimeout?: number;
  /** --restart no|on-failure[:N]|always|unless-stopped. */
  restart?: string;
  /** --health-* flags over the image's HEALTHCHECK; --no-healthcheck disables it. */
  health?: { cmd?: string; interval?: string; timeout?: string; startPeriod?: string; retries?: number; none?: boolean };
  /** --log-opt max-size=10m, max-file=3. */
  logOpts?: string[];
}

export interface RunHooks {
  /** Just before the process starts (after any pull): e.g. put the terminal in raw mode. */
  beforeStart?: () => void;
  /** The process runs; `kill` signals it. */
  onStart?: (kill: (sig: NodeJS.Signals) => void) => void;
  /**
   * `-d`: how to start a monitor (argv of a tsbuild process; the id is appended), which the front
   * end knows and the app does not.
   */
  monitorCommand?: string[];
}

/** Docker's rule for container names (run --name, rename). */
export function checkContainerName(name: string): void {
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(name)) throw new UsageError(`invalid container name "${name}": use letters, digits, _ . -`);
}

/** Docker's rule: Entrypoint + Cmd, where arguments after the image replace Cmd. */
export function containerArgs(entrypoint: string[] | null | undefined, cmd: string[] | null | undefined, override: string[], entryFlag?: string): string[] {
  const ep = entryFlag !== undefined ? (entryFlag === '' ? [] : [entryFlag]) : (entrypoint ?? []);
  const c = override.length > 0 ? override : entryFlag !== undefined ? [] : (cmd ?? []);
  return [...ep, ...c];
}

/** `--restart` as Docker reads it. */
export function parseRestart(v: string | undefined): RestartPolicy {
  if (v === undefined || v === '' || v === 'no') return { name: 'no', maxRetries: 0 };
  const [name, n] = v.split(':');
  if (name === 'on-failure') {
    if (n !== undefined && !/^\d+$/.test(n)) throw new UsageError(`--restart ${v}: the retry count must be a whole number, e.g. on-failure:3`);
    return { name, maxRetries: n ? parseInt(n, 10) : 0 };
  }
  if ((name === 'always' || name === 'unless-stopped') && n === undefined) return { name, maxRetries: 0 };
  throw new UsageError(`--restart ${v}: use no, on-failure[:max-retries], always or unless-stopped`);
}

/** `--log-opt max-size=10m --log-opt max-file=3`. */
export function parseLogOpts(opts: string[]): { maxSize: number; maxFile: number } {
  const o = { ...DEFAULT_LOG_OPTIONS };
  for (const kv of opts) {
    const [k, v = ''] = kv.split(/=(.*)/s);
    if (k === 'max-size') {
      const m = /^(\d+)([kmg]?)$/i.exec(v);
      if (!m) throw new UsageError(`--log-opt ${kv}: use a size such as 10m (k, m or g)`);
      o.maxSize = parseInt(m[1]!, 10) * 1024 ** ' kmg'.indexOf((m[2] || ' ').toLowerCase());
    } else if (k === 'max-file') {
      if (!/^[1-9]\d*$/.test(v)) throw new UsageError(`--log-opt ${kv}: use a whole number of files, 1 or more`);
      o.maxFile = parseInt(v, 10);
    } else throw new UsageError(`--log-opt ${kv}: tsbuild's json-file logs take max-size and max-file`);
  }
  return o;
}

function duration(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  try {
    return parseDuration(v);
  } catch {
    throw new UsageError(`${flag} ${v}: use a duration such as 30s, 1m30s or 500ms`);
  }
}

/** The image's HEALTHCHECK with the --health-* flags over it (undefined: no check). */
function healthConfig(img: NonNullable<ImageConfig['config']>['Healthcheck'], h: RunRequest['health']): ContainerConfig['healthcheck'] {
  if (h?.none) return undefined;
  const test = h?.cmd !== undefined ? ['CMD-SHELL', h.cmd] : img?.Test;
  if (!test || test.length === 0 || test[0] === 'NONE') return undefined;
  return {
    test,
    interval: duration(h?.interval, '--health-interval') ?? img?.Interval,
    timeout: duration(h?.timeout, '--health-timeout') ?? img?.Timeout,
    startPeriod: duration(h?.startPeriod, '--health-start-period') ?? img?.StartPeriod,
    retries: h?.retries ?? img?.Retries,
  };
}


/** Resolves the image, prepares the writable snapshot and writes the record (status `created`). */
export async function createContainer(store: Store, req: RunRequest, o: OpOptions = {}): Promise<ContainerState> {
  const network = networkMode(req.network);
  if (network.startsWith('container:')) store.containers.find(network.slice('container:'.length));
  else if (bridgedUser(network) && !store.networks.get(network)) throw new NotFoundError(`network ${network} not found: create it with tsbuild network create ${network}`, 'NETWORK_NOT_FOUND');
  if (req.name !== undefined) checkContainerName(req.name);
  const userns = usernsConfig(req, store.snapshotter.driver);
  if (isRootless() && !delegatedToUser() && req.limits && Object.keys(req.limits).length > 0) o.onEvent?.({ type: 'warning', message: ROOTLESS_NO_LIMITS });
  for (const e of req.env ?? []) if (e.startsWith('=') || e === '') throw new UsageError(`-e ${e}: the variable name is empty`);
  const restart = parseRestart(req.restart);
  if (restart.name !== 'no' && req.rm) throw new UsageError(`--restart ${req.restart} and --rm conflict: a container removed when it exits cannot be restarted`);
  const log = parseLogOpts(req.logOpts ?? []);
  if (req.stopSignal !== undefined) {
    try {
      signalNumber(req.stopSignal);
    } catch {
      throw new UsageError(`--stop-signal ${req.stopSignal}: not a signal; use a name such as SIGTERM or SIGQUIT, or a number`);
    }
  }
  if (req.platform !== undefined) platformFlag(req.platform);
  const img = await resolveOrPull(store, req.image, { ...req, signal: o.signal, log: logger(o), policy: pullPolicy(req.pull, store.root) });
  const platform = runPlatform(img.config, req.platform, (message) => o.onEvent?.({ type: 'warning', message }));
  const cfg = img.config.config ?? {};
  const args = containerArgs(cfg.Entrypoint, cfg.Cmd, req.command ?? [], req.entrypoint);
  if (args.length === 0) throw new UsageError(`image ${req.image} has no CMD or ENTRYPOINT: give a command, e.g. tsbuild run ${req.image} sh`);
  const healthcheck = healthConfig(cfg.Healthcheck, req.health);
  // Flags are checked before anything is made.
  const mounts = mountList(store, req, Object.keys(cfg.Volumes ?? {}));
  const shared = mounts.find((m) => /shared$/.test(m.propagation ?? ''));
  if (userns && shared) {
    throw new UsageError(`${shared.source}:${shared.target}: ${shared.propagation} propagation cannot be given to a container with a user namespace of its own (its mounts may not reach the host); use rslave, or --userns host`);
  }
  const net = { ...networkConfig(network, req.publish ?? [], req.publishAll ?? false, cfg.ExposedPorts, req.mac), ...dnsConfig(network, req) };
  // Images built with another snapshotter (or pulled before) get their snapshots here.
  const top = await unpackLayers({ storeRoot: store.root, store: store.content, snapshotter: store.snapshotter }, imageLayers(req.image, img.manifest, img.config), {
    signal: o.signal,
    onWarning: (message) => o.onEvent?.({ type: 'warning', message }),
  });

  const id = store.containers.newId();
  const short = id.slice(0, 12);
  const key = tempKey('ctr', short);
  // Labelled, so crash recovery keeps it after this process ends: the record owns it.
  await store.snapshotter.prepare(key, top, { 'tsbuild.container': id });
  let madeVolumes: string[] = [];
  try {
    madeVolumes = prepareMounts(store, mounts);
    await populateVolumes(store, key, mounts, { volatile: req.rm === true });
    if (userns?.keepId) await addKeepIdUser(store, key, userns.keepId);
  } catch (e) {
    for (const v of madeVolumes) store.volumes.remove(v);
    await store.snapshotter.remove(key);
    throw e;
  }
  const hostname = req.hostname ?? short;
  // Docker's order: PATH default, HOSTNAME, the image's ENV, TERM for a tty, then -e.
  const env = mergeEnv([`HOSTNAME=${hostname}`, ...(cfg.Env ?? []), ...(req.tty ? ['TERM=xterm'] : []), ...(req.env ?? [])]);
  const config: ContainerConfig = {
    args, env, cwd: req.workdir ?? (cfg.WorkingDir || '/'), user: req.user ?? (userns?.keepId ? `${userns.keepId.uid}:${userns.keepId.gid}` : cfg.User ?? ''), hostname, network,
    tty: req.tty, interactive: req.interactive, init: req.init, readOnly: req.readOnly, security: req.security, limits: req.limits,
    ulimits: req.ulimits, extraHosts: req.extraHosts, shmSize: req.shmSize, stopSignal: req.stopSignal ?? cfg.StopSignal,
    stopTimeout: req.stopTimeout, restart, healthcheck, log, autoRemove: req.rm, ...(mounts.length > 0 ? { mounts } : {}), ...net,
    ...(userns ? { userns } : {}),
    ...(platform ? { platform } : {}),
  };
  const state: ContainerState = {
    // A generated name is picked under the lock that create() holds, among the records it reads
    // anyway: no second read of every record, and no two runs picking the same name between.
    id, name: req.name ?? '', image: req.image, imageId: img.configDigest, command: args, created: new Date().toISOString(),
    status: 'created', snapshot: key, keep: !req.rm, detached: req.detach, config, restartCount: 0,
  };
  try {
    store.containers.create(state, (others) => {
      if (req.name === undefined) state.name = uniqueName(others);
      allocateUserns(config, others);
    });
  } catch (e) {
    for (const v of madeVolumes) store.volumes.remove(v);
    await store.snapshotter.remove(key);
    throw e;
  }
  return state;
}

const ADJECTIVES = ['brave', 'calm', 'eager', 'fond', 'gentle', 'happy', 'jolly', 'keen', 'lucid', 'merry', 'nifty', 'quiet', 'sharp', 'tender', 'vivid', 'witty', 'zen', 'bold', 'crisp', 'deft'];
const NOUNS = ['turing', 'hopper', 'lovelace', 'ritchie', 'thompson', 'knuth', 'dijkstra', 'liskov', 'hamilton', 'torvalds', 'pike', 'kernighan', 'wirth', 'backus', 'allen', 'perlman', 'shannon', 'noether', 'curie', 'babbage'];

/** Docker-style `adjective_name`, unique among `others` (a number appended if needed). */
function uniqueName(others: ContainerState[]): string {
  const taken = new Set(others.map((c) => c.name));
  for (let i = 0; ; i++) {
    const n = `${ADJECTIVES[Math.floor(Math.random() * ADJECTIVES.length)]}_${NOUNS[Math.floor(Math.random() * NOUNS.length)]}${i >= 10 ? i : ''}`;
    if (!taken.has(n)) return n;
  }
}

/** Runs the container to its end (attached); returns its exit code. Failures to start carry `exitCode` 125/126/127. */
export async function run(store: Store, req: RunRequest, o: OpOptions & RunHooks = {}): Promise<number> {
  if (req.detach) {
    await runDetached(store, req, o.monitorCommand, o);
    return 0;
  }
  const c = await createContainer(store, req, o);
  try {
    return await supervise(store, c.id, {
      stdin: req.interactive ? 'inherit' : 'ignore',
      out: (stream, chunk) => (stream === 'stdout' ? process.stdout : process.stderr).write(chunk),
      beforeStart: o.beforeStart,
      onStart: (info) => o.onStart?.(info.kill),
      onEvent: o.onEvent,
      signal: o.signal,
    });
  } finally {
    if (req.rm) await removeStopped(store, c.id, { volumes: true });
  }
}

/** `run -d`: the monitor starts while the container is made; returns the id. */
export async function runDetached(store: Store, req: RunRequest, monitorCommand: string[] | undefined, o: OpOptions = {}): Promise<string> {
  const monitor = spawnMonitor(store, monitorCommand);
  let c: ContainerState;
  try {
    c = await createContainer(store, req, o);
  } catch (e) {
    monitor.cancel();
    throw e;
  }
  try {
    await monitor.start(c.id);
  } catch (e) {
    if (req.rm) await removeStopped(store, c.id, { volumes: true }).catch(() => undefined);
    throw e;
  }
  return c.id;
}

/** Removes a stopped container's snapshot and record; with `volumes`, its anonymous volumes too (rm -v, run --rm). */
export async function removeStopped(store: Store, id: string, o: { volumes?: boolean } = {}): Promise<void> {
  const c = store.containers.get(id);
  const anon = o.volumes ? anonymousVolumes(store, c?.config?.mounts) : [];
  // Its owner normally detached it; after a kill -9 of the owner this is where it goes.
  // (`none` too: a container taken off its last network by `disconnect` still has its namespace.)
  if (c?.config && (bridged(c.config.network) || c.config.network === 'none')) await leaveNetwork(store, id, { forget: false }).catch(() => undefined);
  if (c?.snapshot) await store.snapshotter.remove(c.snapshot).catch(() => undefined);
  // A record too damaged to name its snapshot: find the snapshot by its label.
  if (c && !c.snapshot) {
    const keys: string[] = [];
    await store.snapshotter.walk((info) => {
      if (info.labels['tsbuild.container'] === id) keys.push(info.key);
    });
    for (const k of keys) await store.snapshotter.remove(k).catch(() => undefined);
  }
  store.containers.delete(id);
  if (anon.length === 0) return;
  // After the record: a volume another container still names is kept (Docker's rule for rm -v).
  // Every other record is read for it, so only when there is a volume to remove.
  const used = new Set(store.containers.list().flatMap((x) => (x.config?.mounts ?? []).map((m) => m.source)));
  for (const v of anon) if (!used.has(v)) store.volumes.remove(v);
}

export interface MonitorHandle {
  /** Gives the monitor its container and waits until it reports the process running (or why not). */
  start(id: string): Promise<void>;
  /** The container will not be made after all: the monitor exits. */
  cancel(): void;
}

/**
 * Spawns a monitor before the container exists, so its start-up (a Node process) overlaps with
 * creating the container; `start(id)` then hands it the id over a socket pair (fd 3), and the monitor
 * answers on the same socket with `{"ok":true}` or the reason the process did not start (thrown with
 * Docker's exit code). The monitor then lives on its own, in a session of its own.
 */
export function spawnMonitor(store: Store, monitorCommand: string[] | undefined): MonitorHandle {
  if (!monitorCommand) throw new TsbuildError('NO_MONITOR', 'this front end cannot start detached containers (no monitor command)');
  const r = spawnReporting([...monitorCommand, store.root, store.snapshotter.driver], {
    code: 'RUN_START',
    exitCode: 125,
    onExit: (code) => `the container's monitor exited (${code}) before the container started: see monitor.log in the container's directory`,
  });
  return {
    async start(id) {
      r.chan.write(`${id}\n`);
      await r.result();
    },
    cancel() {
      r.chan.end();
      r.release();
    },
  };
}

/** Starts container `id` under a new monitor and waits for its first start. */
export async function startDetached(store: Store, id: string, monitorCommand: string[] | undefined): Promise<void> {
  await spawnMonitor(store, monitorCommand).start(id);
}

