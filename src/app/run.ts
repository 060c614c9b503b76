/**
 * `run`: an image's process in the sandbox on a fresh writable snapshot, through the runtime's one
 * container path. The container record is written before the process starts and updated when it
 * ends; `rm` (or `--rm`) removes record and snapshot. Terminal modes and signal forwarding are the
 * caller's (`hooks`), since only the CLI knows its terminal.
 */
import path from 'node:path';
import { TsbuildError, UsageError } from '../errors/index.js';
import { oomMessage, runContainer, SandboxError, type CgroupLimits, type NetworkMode, type Rlimit, type SecurityOptions } from '../runtime/index.js';
import { imageLayers, tempKey, unpackLayers, type Store } from '../store/index.js';
import { logger, type OpOptions } from './events.js';
import { pullPolicy, resolveOrPull, type RegistryOptions } from './registry.js';

export interface RunRequest extends RegistryOptions {
  image: string;
  /** Replaces the image's CMD when not empty. */
  command?: string[];
  /** Replaces the image's ENTRYPOINT ('' clears it). */
  entrypoint?: string;
  name?: string;
  /** Remove the container when it exits. */
  rm?: boolean;
  interactive?: boolean;
  tty?: boolean;
  /** KEY=VALUE, applied over the image's environment. */
  env?: string[];
  workdir?: string;
  user?: string;
  hostname?: string;
  network?: NetworkMode;
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
}

export interface RunHooks {
  /** Just before the process starts (after any pull): e.g. put the terminal in raw mode. */
  beforeStart?: () => void;
  /** The process runs; `kill` signals it. */
  onStart?: (kill: (sig: NodeJS.Signals) => void) => void;
}

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/** Docker's rule: Entrypoint + Cmd, where arguments after the image replace Cmd. */
export function containerArgs(entrypoint: string[] | null | undefined, cmd: string[] | null | undefined, override: string[], entryFlag?: string): string[] {
  const ep = entryFlag !== undefined ? (entryFlag === '' ? [] : [entryFlag]) : (entrypoint ?? []);
  const c = override.length > 0 ? override : entryFlag !== undefined ? [] : (cmd ?? []);
  return [...ep, ...c];
}

/** Runs the container to its end; returns its exit code. Failures to start carry `exitCode` 125/126/127. */
export async function run(store: Store, req: RunRequest, o: OpOptions & RunHooks = {}): Promise<number> {
  const network = req.network ?? 'host';
  if (network !== 'host' && network !== 'none') throw new UsageError(`--network ${String(network)}: use host or none (bridge networking is not implemented yet)`);
  if (req.name !== undefined && !NAME_RE.test(req.name)) throw new UsageError(`invalid container name "${req.name}": use letters, digits, _ . -`);
  for (const e of req.env ?? []) if (e.startsWith('=') || e === '') throw new UsageError(`-e ${e}: the variable name is empty`);
  const keep = !req.rm;
  const img = await resolveOrPull(store, req.image, { ...req, signal: o.signal, log: logger(o), policy: pullPolicy(req.pull, store.root) });
  const cfg = img.config.config ?? {};
  const args = containerArgs(cfg.Entrypoint, cfg.Cmd, req.command ?? [], req.entrypoint);
  if (args.length === 0) throw new UsageError(`image ${req.image} has no CMD or ENTRYPOINT: give a command, e.g. tsbuild run ${req.image} sh`);
  // Images built with another snapshotter (or pulled before) get their snapshots here.
  const top = await unpackLayers({ storeRoot: store.root, store: store.content, snapshotter: store.snapshotter }, imageLayers(req.image, img.manifest, img.config), { signal: o.signal });

  const id = store.containers.newId();
  const short = id.slice(0, 12);
  const key = tempKey('ctr', short);
  const mounts = await store.snapshotter.prepare(key, top, keep ? { 'tsbuild.container': id } : {});
  const cgroup = key;
  const state = {
    id, name: req.name ?? short, image: req.image, imageId: img.configDigest, command: args, created: new Date().toISOString(),
    status: 'created' as const, snapshot: key, keep, cgroup,
  };
  try {
    store.containers.create(state);
  } catch (e) {
    await store.snapshotter.remove(key);
    throw e;
  }
  const hostname = req.hostname ?? short;
  // Docker's order: PATH default, HOSTNAME, the image's ENV, TERM for a tty, then -e.
  const env = [`HOSTNAME=${hostname}`, ...(cfg.Env ?? []), ...(req.tty ? ['TERM=xterm'] : []), ...(req.env ?? [])];
  try {
    o.beforeStart?.();
    store.containers.update(id, { status: 'running', pid: process.pid });
    const r = await runContainer(
      {
        rootMounts: mounts,
        writableDir: async () => (await store.snapshotter.upperDir?.(key)) ?? (await store.snapshotter.diffDirs?.(key))?.upper,
        workDir: store.containers.dirOf(id),
        args,
        env: dedupeEnv(env),
        cwd: req.workdir ?? (cfg.WorkingDir || '/'),
        user: req.user ?? cfg.User ?? '',
        hostname,
        network,
        terminal: req.tty,
        init: req.init,
        readonlyRoot: req.readOnly,
        security: req.security,
        cgroup: { name: cgroup, limits: req.limits },
        rlimits: req.ulimits,
        extraHosts: req.extraHosts,
        shmSize: req.shmSize,
        seccompCacheDir: path.join(store.root, 'cache', 'seccomp'),
      },
      { stdin: req.interactive ? 'inherit' : 'ignore', stdout: 'inherit', stderr: 'inherit', onStart: (info) => o.onStart?.(info.kill) },
    );
    store.containers.update(id, { status: 'exited', exitCode: r.exitCode, oomKilled: r.oomKilled });
    if (r.oomKilled) o.onEvent?.({ type: 'warning', message: oomMessage(r.memoryLimit) });
    return r.exitCode;
  } catch (e) {
    store.containers.update(id, { status: 'exited', exitCode: 125 });
    if (e instanceof SandboxError && e.failure.stage === 'exec') {
      const exitCode = e.failure.errno === 2 ? 127 : 126;
      throw Object.assign(new TsbuildError('RUN_EXEC', `cannot start the container's process: ${e.message}`), { exitCode });
    }
    throw e;
  } finally {
    if (!keep) {
      await store.snapshotter.remove(key).catch(() => undefined);
      store.containers.delete(id);
    }
  }
}

/** Later entries win, in the position of the first (as a map keyed by name would give them). */
function dedupeEnv(env: string[]): string[] {
  const m = new Map<string, string>();
  for (const e of env) {
    const i = e.indexOf('=');
    m.set(i < 0 ? e : e.slice(0, i), i < 0 ? '' : e.slice(i + 1));
  }
  return [...m].map(([k, v]) => `${k}=${v}`);
}
