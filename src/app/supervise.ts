/**
 * Supervising a container: start its process, log its output, record its start and exit, apply its
 * restart policy with Docker's back-off, and run its health check while it runs. The attached
 * `tsbuild run` supervises in its own process; a detached container's monitor does the same.
 */
import path from 'node:path';
import { TsbuildError } from '../errors/index.js';
import { processStartTime } from '../fsutil/index.js';
import {
  LogWriter, emulationFor, execInContainer, oomMessage, runContainer, SandboxError,
  type ContainerConfig, type ContainerState, type RestartPolicy, type RunResult, type StartInfo,
} from '../runtime/index.js';
import type { Store } from '../store/index.js';
import { parsePlatform } from '../image/index.js';
import type { OpOptions } from './events.js';
import { specMounts } from './mounts.js';
import { bridged, joinNetwork, leaveNetwork, userMode } from './network.js';

export interface SuperviseIO {
  stdin: 'inherit' | 'ignore' | 'pipe';
  /** Output as it comes; the log file gets it too. */
  out: (stream: 'stdout' | 'stderr', chunk: Buffer) => void;
  beforeStart?: () => void;
  onStart?: (info: StartInfo) => void;
  /** The first start: succeeded (undefined) or failed (the error). */
  onFirstStart?: (err?: unknown) => void;
  onEvent?: OpOptions['onEvent'];
  signal?: AbortSignal;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Docker's restart decision, after an exit that nobody asked for. */
export function shouldRestart(p: RestartPolicy, exitCode: number, restartCount: number, manualStop: boolean): boolean {
  if (manualStop || p.name === 'no') return false;
  if (p.name === 'on-failure') return exitCode !== 0 && (p.maxRetries === 0 || restartCount < p.maxRetries);
  return true;
}

/** One start of the container's process, to its end: records start and exit; returns the exit code. */
async function startOnce(store: Store, rec: ContainerState, cfg: ContainerConfig, logs: LogWriter, io: SuperviseIO, onStarted: () => void): Promise<RunResult & { oomKilled: boolean }> {
  const id = rec.id;
  const cgroup = `ctr-${process.pid}-${id.slice(0, 12)}`;
  const pidStart = processStartTime(process.pid);
  let health: HealthChecker | undefined;
  const netns = await joinNetwork(store, rec, cfg, (m) => {
    logs.write('stderr', Buffer.from(`${m}\n`));
    io.out('stderr', Buffer.from(`${m}\n`));
  });
  try {
    const r = await runContainer(
      {
        // A container removed when it exits (podman does the same for --rm): its writes need not
        // survive a crash, and its unmount need not wait for the store's filesystem to sync.
        rootMounts: await store.snapshotter.mounts(rec.snapshot, { volatile: cfg.autoRemove === true }),
        writableDir: async () => (await store.snapshotter.upperDir?.(rec.snapshot)) ?? (await store.snapshotter.diffDirs?.(rec.snapshot))?.upper,
        workDir: store.containers.dirOf(id),
        args: cfg.args, env: cfg.env, cwd: cfg.cwd, user: cfg.user, hostname: cfg.hostname, network: cfg.network, netns,
        terminal: cfg.tty, init: cfg.init, readonlyRoot: cfg.readOnly, security: cfg.security,
        // The owner's pid in the name: recovery removes the cgroup if the owner dies.
        cgroup: { name: cgroup, limits: cfg.limits },
        rlimits: cfg.ulimits, extraHosts: cfg.extraHosts, shmSize: cfg.shmSize,
        seccompCacheDir: path.join(store.root, 'cache', 'seccomp'),
        mountDir: path.join(store.root, 'tmp', 'mnt'),
        extraMounts: specMounts(store, cfg.mounts),
        userns: cfg.userns && { uid: cfg.userns.uid, gid: cfg.userns.gid },
        emulation: cfg.platform ? emulationFor(parsePlatform(cfg.platform)) : undefined,
      },
      {
        stdin: io.stdin, stdout: 'pipe', stderr: 'pipe', signal: io.signal,
        onStdout: (d) => {
          logs.write('stdout', d);
          io.out('stdout', d);
        },
        onStderr: (d) => {
          logs.write('stderr', d);
          io.out('stderr', d);
        },
        onStart: (info) => {
          const s = store.containers.update(id, (cur) => ({
            status: 'running', pid: process.pid, pidStart, containerPid: info.containerPid, cgroup, cgroupProcs: info.cgroupProcs,
            startedAt: new Date().toISOString(), exitCode: undefined, error: undefined, oomKilled: undefined,
            health: cfg.healthcheck ? { status: 'starting', failingStreak: 0, log: cur.health?.log ?? [] } : undefined,
          }));
          if (s && cfg.healthcheck && info.containerPid) health = new HealthChecker(store, s, cfg.healthcheck);
          io.onStart?.(info);
          onStarted();
        },
      },
    );
    logs.flush();
    return r;
  } finally {
    health?.stop();
    if (bridged(cfg.network) || userMode(cfg.network)) await leaveNetwork(store, id);
  }
}

/** Docker's exit codes for a process that could not start: 127 not found, 126 not executable. */
function startError(e: unknown): Error {
  if (e instanceof SandboxError && e.failure.stage === 'exec') {
    return Object.assign(new TsbuildError('RUN_EXEC', `cannot start the container's process: ${e.message}`), { exitCode: e.failure.errno === 2 ? 127 : 126 });
  }
  return e as Error;
}

/** Sleeps the back-off in slices, so a `stop` meanwhile takes effect at once; false if stopped. */
async function backOff(store: Store, id: string, ms: number): Promise<boolean> {
  for (const until = Date.now() + ms; Date.now() < until; ) {
    await sleep(Math.min(100, until - Date.now()));
    const c = store.containers.get(id);
    if (!c || c.manualStop) {
      store.containers.update(id, { status: 'exited' });
      return false;
    }
  }
  return true;
}

/**
 * Starts the container's process and sees it to its end, restarting it as its policy says, with
 * Docker's back-off (100 ms doubling to 1 min, reset after 10 s of running). Returns the last exit code.
 */
export async function supervise(store: Store, id: string, io: SuperviseIO): Promise<number> {
  const rec = store.containers.get(id);
  if (!rec?.config) throw new TsbuildError('CONTAINER_CONFIG', `container ${id.slice(0, 12)} has no run configuration (made by an older tsbuild): remove it and run it again`);
  const cfg = rec.config;
  const policy = cfg.restart ?? { name: 'no' as const, maxRetries: 0 };
  const logs = new LogWriter(path.join(store.containers.dirOf(id), 'ctr.log'), cfg.log);
  let delay = 100;
  let first = true;
  try {
    for (;;) {
      const began = Date.now();
      io.beforeStart?.();
      let code: number;
      try {
        const r = await startOnce(store, rec, cfg, logs, io, () => {
          if (first) io.onFirstStart?.();
          first = false;
        });
        code = r.exitCode;
        // One write for the exit and the restart decision: nobody may see `exited` between restarts.
        store.containers.update(id, (cur) => {
          const again = !io.signal?.aborted && shouldRestart(policy, code, cur.restartCount ?? 0, cur.manualStop ?? false);
          return { status: again ? 'restarting' : 'exited', exitCode: code, finishedAt: new Date().toISOString(), oomKilled: r.oomKilled, containerPid: undefined, ...(again ? { restartCount: (cur.restartCount ?? 0) + 1 } : {}) };
        });
        if (r.oomKilled) io.onEvent?.({ type: 'warning', message: oomMessage(cfg.limits?.memory) });
      } catch (e) {
        const err = startError(e);
        code = (err as { exitCode?: number }).exitCode ?? 125;
        store.containers.update(id, { status: 'exited', exitCode: code, finishedAt: new Date().toISOString(), error: err.message, containerPid: undefined });
        if (first) {
          io.onFirstStart?.(err);
          throw err;
        }
      }
      if (store.containers.get(id)?.status !== 'restarting') return code;
      if (Date.now() - began >= 10_000) delay = 100;
      if (!(await backOff(store, id, delay))) return code;
      delay = Math.min(delay * 2, 60_000);
    }
  } finally {
    logs.close();
  }
}

/** The monitor's health check: Docker's defaults (30 s interval and timeout, 3 retries, no start period). */
class HealthChecker {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly started = Date.now();
  constructor(private store: Store, private c: ContainerState, private h: NonNullable<ContainerConfig['healthcheck']>) {
    this.schedule();
  }
  private ms(ns: number | undefined, dflt: number): number {
    return ns ? Math.max(1, Math.round(ns / 1e6)) : dflt;
  }
  private schedule() {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.probe().finally(() => this.schedule()), this.ms(this.h.interval, 30_000));
    this.timer.unref();
  }
  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
  }
  private async probe() {
    const c = this.c;
    const cfg = c.config!;
    const args = this.h.test[0] === 'CMD-SHELL' ? ['/bin/sh', '-c', this.h.test.slice(1).join(' ')] : this.h.test.slice(1);
    const start = new Date().toISOString();
    let output = '';
    let exitCode: number;
    const ac = new AbortController();
    const timeout = setTimeout(() => ac.abort(), this.ms(this.h.timeout, 30_000));
    try {
      const r = await execInContainer(
        { pid: c.containerPid!, cgroupProcs: c.cgroupProcs ?? [], args, env: cfg.env, cwd: cfg.cwd, user: cfg.user, security: cfg.security, rlimits: cfg.ulimits, seccompCacheDir: path.join(this.store.root, 'cache', 'seccomp') },
        { stdout: 'pipe', stderr: 'pipe', onStdout: (d) => (output += d.toString()), onStderr: (d) => (output += d.toString()), signal: ac.signal },
      );
      exitCode = r.exitCode;
    } catch (e) {
      exitCode = -1;
      output += ac.signal.aborted ? `Health check exceeded timeout (${this.ms(this.h.timeout, 30_000) / 1000}s)` : (e as Error).message;
    } finally {
      clearTimeout(timeout);
    }
    if (this.stopped) return;
    const inStart = Date.now() - this.started < this.ms(this.h.startPeriod, 0);
    const retries = this.h.retries || 3;
    this.store.containers.update(c.id, (cur) => {
      const prev = cur.health ?? { status: 'starting' as const, failingStreak: 0, log: [] };
      const log = [...prev.log, { start, end: new Date().toISOString(), exitCode, output: output.slice(0, 4096) }].slice(-5);
      if (exitCode === 0) return { health: { status: 'healthy', failingStreak: 0, log } };
      // Failures in the start period do not count (unless the container was healthy already).
      if (inStart && prev.status === 'starting') return { health: { ...prev, log } };
      const streak = prev.failingStreak + 1;
      return { health: { status: streak >= retries ? 'unhealthy' : prev.status, failingStreak: streak, log } };
    });
  }
}
