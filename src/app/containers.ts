/**
 * The container lifecycle after `run`: list, stop, kill, wait, start, restart, remove, pause, rename,
 * top, logs, exec, inspect. Every operation reads the record (which checks that the owner lives) and
 * acts on the container's first process by the host pid recorded there; the monitor that owns a
 * detached container notices the exit and records it, so concurrent commands see one truth.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { NotFoundError, TsbuildError, UsageError } from '../errors/index.js';
import { sameProcessAlive } from '../fsutil/index.js';
import { signalNumber } from '../planner/index.js';
import { cgroupPids, isFrozen, readLogs, setFrozen, type ContainerState, type LogEntry } from '../runtime/index.js';
import type { Store } from '../store/index.js';
import { noCgroup } from './stats.js';
import { checkContainerName, removeStopped, startDetached } from './run.js';
import { inspectMounts } from './mounts.js';
import { dockerConfig, imageConfigFields, nilPointer } from './dockershape.js';
import { networkSettings, portBindings } from './network.js';
import { usernsMode } from './userns.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Newest first; without `all` only running (and paused, restarting) ones. */
export function listContainers(store: Store, o: { all?: boolean } = {}): ContainerState[] {
  return store.containers.list().filter((c) => o.all || c.status === 'running' || c.status === 'paused' || c.status === 'restarting');
}

export const isActive = (c: ContainerState) => c.status === 'running' || c.status === 'paused' || c.status === 'restarting';

/** The container's first process is the one recorded (not a recycled pid). */
export function containerAlive(c: ContainerState): boolean {
  return c.containerPid !== undefined && fs.existsSync(`/proc/${c.containerPid}`) && (c.pid === undefined || sameProcessAlive(c.pid, c.pidStart));
}

function signalOf(s: string, flag: string): number {
  try {
    return signalNumber(s);
  } catch {
    throw new UsageError(`${flag} ${s}: not a signal; use a name such as SIGTERM, KILL or HUP, or a number`);
  }
}

/** Sends a signal to the container's first process; a paused container is thawed so it can act on it. */
async function signalContainer(c: ContainerState, sig: number): Promise<void> {
  if (!c.containerPid || !containerAlive(c)) return;
  try {
    process.kill(c.containerPid, sig);
  } catch {
    // it ended meanwhile
  }
  if (c.status === 'paused' && c.cgroupProcs) await setFrozen(c.cgroupProcs, false).catch(() => undefined);
}

/** Waits until the container is no longer active; true if it stopped within `ms`. */
async function waitInactive(store: Store, id: string, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  for (;;) {
    const c = store.containers.get(id);
    if (!c || !isActive(c)) return true;
    if (Date.now() >= until) return false;
    await sleep(50);
  }
}

/** Waits for the owner (monitor or attached CLI) to finish writing and exit, so removal cannot race it. */
async function waitOwnerGone(c: ContainerState, ms: number): Promise<void> {
  if (c.pid === undefined || c.pid === process.pid) return;
  const until = Date.now() + ms;
  while (sameProcessAlive(c.pid, c.pidStart) && Date.now() < until) await sleep(50);
  // A monitor that does not exit is ended: it owns nothing any more.
  if (c.detached && sameProcessAlive(c.pid, c.pidStart)) {
    try {
      process.kill(c.pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
}

/**
 * `stop`: the stop signal (--stop-signal, STOPSIGNAL, SIGTERM), then SIGKILL after `timeout` seconds
 * (the container's --stop-timeout, else 10). Restart policies do not bring it back.
 */
export async function stopContainer(store: Store, ref: string, o: { timeout?: number; signal?: string } = {}): Promise<void> {
  const c = store.containers.find(ref);
  const cur = store.containers.update(c.id, { manualStop: true }) ?? c;
  if (!isActive(cur)) return;
  const sig = signalOf(o.signal ?? cur.config?.stopSignal ?? 'SIGTERM', '--signal');
  const timeout = o.timeout ?? cur.config?.stopTimeout ?? 10;
  await signalContainer(cur, sig);
  if (timeout >= 0 && (await waitInactive(store, c.id, timeout * 1000))) return;
  const now = store.containers.get(c.id);
  if (now) await signalContainer(now, 9);
  if (!(await waitInactive(store, c.id, 10_000))) throw new TsbuildError('STOP_TIMEOUT', `container ${ref} did not stop after SIGKILL: see "tsbuild inspect ${ref}"`);
}

/** `kill`: one signal (default SIGKILL); the container must be running. */
export async function killContainer(store: Store, ref: string, signal = 'SIGKILL'): Promise<void> {
  const c = store.containers.find(ref);
  const sig = signalOf(signal, '--signal');
  if (!isActive(c) || !containerAlive(c)) throw new TsbuildError('CONTAINER_NOT_RUNNING', `cannot kill container ${ref}: container ${c.id} is not running`);
  // Docker: a kill is a decision of the user, so the restart policy stays quiet, except on-failure
  // sees the exit code as any other.
  if (sig === 9 || sig === 15) store.containers.update(c.id, { manualStop: true });
  await signalContainer(c, sig);
}

/** `wait`: blocks until the container stops; its exit code. */
export async function waitContainer(store: Store, ref: string, signal?: AbortSignal): Promise<number> {
  const c = store.containers.find(ref);
  for (;;) {
    const cur = store.containers.get(c.id);
    if (!cur) return c.exitCode ?? 0;
    if (!isActive(cur) && cur.status !== 'created') return cur.exitCode ?? 0;
    if (cur.status === 'created' && cur.pid === undefined) return cur.exitCode ?? 0;
    if (signal?.aborted) throw new TsbuildError('CANCELLED', 'wait cancelled');
    await sleep(100);
  }
}

/** `start`: a stopped (or created) container again, detached, on its own writable layer. */
export async function startContainer(store: Store, ref: string, monitorCommand: string[] | undefined): Promise<void> {
  const c = store.containers.find(ref);
  if (isActive(c)) return;
  if (c.status === 'dead') throw new TsbuildError('CONTAINER_DEAD', c.error ?? `container ${ref} is damaged: remove it`);
  store.containers.update(c.id, { manualStop: false, detached: true, pid: undefined, pidStart: undefined });
  await startDetached(store, c.id, monitorCommand);
}

export async function restartContainer(store: Store, ref: string, monitorCommand: string[] | undefined, timeout?: number): Promise<void> {
  await stopContainer(store, ref, { timeout });
  const c = store.containers.find(ref);
  await waitOwnerGone(c, 10_000);
  await startContainer(store, ref, monitorCommand);
}

/** Removes each container's record and snapshot; `force` kills a running one first. */
export async function removeContainers(store: Store, refs: string[], o: { force?: boolean; volumes?: boolean; onRemoved?: (ref: string) => void } | ((ref: string) => void) = {}): Promise<void> {
  const opts = typeof o === 'function' ? { onRemoved: o } : o;
  for (const ref of refs) {
    const c = store.containers.find(ref);
    if (isActive(c)) {
      if (!opts.force) {
        throw new TsbuildError('CONTAINER_RUNNING', `cannot remove container ${ref}: it is ${c.status}; stop it first ("tsbuild stop ${ref}") or force removal with "tsbuild rm -f ${ref}"`);
      }
      store.containers.update(c.id, { manualStop: true });
      await signalContainer(c, 9);
      await waitInactive(store, c.id, 10_000);
    }
    await waitOwnerGone(store.containers.get(c.id) ?? c, 10_000);
    await removeStopped(store, c.id, { volumes: opts.volumes });
    opts.onRemoved?.(ref);
  }
}

/**
 * `container prune` (and `system prune`'s first part): every container that is not running, paused
 * or restarting, created longer ago than `untilMs` when given; their writable layers are what it frees.
 * One started meanwhile by another command stays.
 */
export async function pruneContainers(store: Store, o: { untilMs?: number } = {}): Promise<{ removed: string[]; bytes: number }> {
  const old = (c: ContainerState) => o.untilMs === undefined || Date.now() - Date.parse(c.created) > o.untilMs;
  const removed: string[] = [];
  let bytes = 0;
  for (const c of store.containers.list().filter((x) => !isActive(x) && old(x))) {
    const { SizeRw } = await containerSize(store, c.id);
    try {
      await removeContainers(store, [c.id]);
    } catch (e) {
      if (e instanceof TsbuildError && (e.code === 'CONTAINER_RUNNING' || e.code === 'CONTAINER_NOT_FOUND')) continue;
      throw e;
    }
    removed.push(c.id);
    bytes += SizeRw;
  }
  return { removed, bytes };
}

export async function pauseContainer(store: Store, ref: string, pause: boolean): Promise<void> {
  const c = store.containers.find(ref);
  if (pause && c.status === 'paused') throw new TsbuildError('CONTAINER_PAUSED', `container ${c.id} is already paused`);
  if (!pause && c.status !== 'paused') throw new TsbuildError('CONTAINER_NOT_PAUSED', `container ${c.id} is not paused`);
  if (!isActive(c) || !containerAlive(c)) throw new TsbuildError('CONTAINER_NOT_RUNNING', `container ${c.id} is not running`);
  if (!c.cgroupProcs?.length) throw noCgroup(c, pause ? 'pause' : 'unpause');
  await setFrozen(c.cgroupProcs, pause);
  store.containers.update(c.id, { status: pause ? 'paused' : 'running' });
}

export function renameContainer(store: Store, ref: string, name: string): void {
  checkContainerName(name);
  store.containers.rename(store.containers.find(ref).id, name);
}

/** `pid` and every process below it, from each process's parent in /proc. */
function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${e}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(e)]);
    } catch {
      // gone meanwhile
    }
  }
  const out: number[] = [];
  for (const todo = [pid]; todo.length; ) {
    const p = todo.pop()!;
    out.push(p);
    todo.push(...(children.get(p) ?? []));
  }
  return out;
}

export interface TopRow { UID: string; PID: string; PPID: string; C: string; STIME: string; TTY: string; TIME: string; CMD: string }

/** `top`: the container's processes, read from its cgroup and /proc, as `ps -ef` shows them. */
export function topContainer(store: Store, ref: string): TopRow[] {
  const c = store.containers.find(ref);
  if (!isActive(c) || !containerAlive(c)) throw new TsbuildError('CONTAINER_NOT_RUNNING', `container ${c.id} is not running`);
  const tick = 100;
  const boot = Date.now() / 1000 - parseFloat(fs.readFileSync('/proc/uptime', 'utf8').split(' ')[0]!);
  const users = new Map<number, string>();
  try {
    for (const l of fs.readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const f = l.split(':');
      if (f.length > 2) users.set(Number(f[2]), f[0]!);
    }
  } catch {
    // numeric uids then
  }
  const rows: TopRow[] = [];
  // Without a cgroup (rootless), the container's processes are its first process and its descendants.
  const pids = c.cgroupProcs?.length ? cgroupPids(c.cgroupProcs) : c.containerPid ? descendants(c.containerPid) : [];
  for (const pid of pids.sort((a, b) => a - b)) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const uid = Number(/^Uid:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
      const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ') || `[${stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))}]`;
      const cpu = (Number(f[11]) + Number(f[12])) / tick;
      const started = new Date((boot + Number(f[19]) / tick) * 1000);
      rows.push({
        UID: users.get(uid) ?? String(uid), PID: String(pid), PPID: f[1]!, C: '0', STIME: started.toTimeString().slice(0, 5), TTY: '?',
        TIME: new Date(cpu * 1000).toISOString().slice(11, 19), CMD: cmd,
      });
    } catch {
      // ended meanwhile
    }
  }
  return rows;
}

/** Docker's `--since`/`--until`: RFC 3339, a Unix timestamp, or a duration back from now (10m). */
export function parseLogTime(v: string, flag: string, now = Date.now()): number {
  if (/^\d+(\.\d+)?$/.test(v)) return parseFloat(v) * 1000;
  const d = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(v);
  if (d) return now - parseFloat(d[1]!) * { ms: 1, s: 1e3, m: 6e4, h: 36e5 }[d[2] as 'ms']!;
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new UsageError(`${flag} ${v}: use a time such as 2026-01-02T15:04:05Z, a Unix timestamp, or a duration such as 10m`);
  return t;
}

/** `logs`: the container's output, stdout and stderr kept apart; with `follow`, until it ends for good. */
export function containerLogs(store: Store, ref: string, o: { tail?: number; since?: number; until?: number; follow?: boolean; signal?: AbortSignal } = {}): AsyncGenerator<LogEntry> {
  const c = store.containers.find(ref);
  const file = path.join(store.containers.dirOf(c.id), 'ctr.log');
  // A restart policy may bring the container back: follow ends when nobody will write any more.
  const done = () => {
    const cur = store.containers.get(c.id);
    return !cur || (!isActive(cur) && !(cur.pid !== undefined && cur.detached && sameProcessAlive(cur.pid, cur.pidStart)));
  };
  return readLogs(file, { tail: o.tail, since: o.since, until: o.until, follow: o.follow ? { done, signal: o.signal } : undefined });
}

/** `inspect` of a container: Docker's shape (Id, Created, State, Config, HostConfig, Mounts). */
/**
 * `inspect --size` of a container, as Docker's: SizeRw, what the container wrote (its own layer), and
 * SizeRootFs, that plus its image's layers. A layer already removed counts as empty.
 */
export async function containerSize(store: Store, ref: string): Promise<{ SizeRw: number; SizeRootFs: number }> {
  const c = store.containers.find(ref);
  let rw = 0;
  try {
    rw = (await store.snapshotter.usage(c.snapshot)).size;
  } catch {
    rw = 0; // the container's layer is gone (removed, or never made)
  }
  let image = 0;
  try {
    image = store.content.resolve(c.imageId).manifest.layers.reduce((a, l) => a + l.size, 0);
  } catch {
    image = 0; // its image was removed since
  }
  return { SizeRw: rw, SizeRootFs: rw + image };
}

export function inspectContainer(store: Store, ref: string): Record<string, unknown> {
  const c = store.containers.find(ref);
  const cfg = c.config;
  const status = c.status === 'dead' ? 'dead' : c.status;
  return {
    Id: c.id,
    Created: c.created,
    Path: c.command[0] ?? '',
    Args: c.command.slice(1),
    State: {
      Status: status,
      Running: c.status === 'running' || c.status === 'paused',
      Paused: c.status === 'paused',
      Restarting: c.status === 'restarting',
      OOMKilled: c.oomKilled ?? false,
      Dead: c.status === 'dead',
      Pid: isActive(c) ? (c.containerPid ?? 0) : 0,
      MonitorPid: isActive(c) ? (c.pid ?? 0) : 0,
      ExitCode: c.exitCode ?? 0,
      Error: c.error ?? '',
      StartedAt: c.startedAt ?? '0001-01-01T00:00:00Z',
      FinishedAt: c.finishedAt ?? '0001-01-01T00:00:00Z',
      Health: c.health ? { Status: c.health.status, FailingStreak: c.health.failingStreak, Log: c.health.log.map((l) => ({ Start: l.start, End: l.end, ExitCode: l.exitCode, Output: l.output })) } : nilPointer,
    },
    Image: c.imageId,
    Name: `/${c.name}`,
    RestartCount: c.restartCount ?? 0,
    LogPath: path.join(store.containers.dirOf(c.id), 'ctr.log'),
    Driver: store.snapshotter.driver,
    HostConfig: cfg
      ? {
          NetworkMode: cfg.network, PortBindings: portBindings(cfg.ports), RestartPolicy: { Name: cfg.restart?.name ?? 'no', MaximumRetryCount: cfg.restart?.maxRetries ?? 0 }, AutoRemove: cfg.autoRemove ?? false,
          Privileged: cfg.security?.privileged ?? false, ReadonlyRootfs: cfg.readOnly ?? false, Init: cfg.init ?? false, CapAdd: cfg.security?.capAdd ?? null, CapDrop: cfg.security?.capDrop ?? null,
          UsernsMode: usernsMode(cfg), Memory: cfg.limits?.memory ?? 0, PidsLimit: cfg.limits?.pidsLimit ?? null, CpuQuota: cfg.limits?.cpuQuota ?? 0, ShmSize: cfg.shmSize ?? 64 << 20,
          LogConfig: { Type: 'json-file', Config: { 'max-size': String(cfg.log?.maxSize ?? ''), 'max-file': String(cfg.log?.maxFile ?? '') } },
        }
      : {},
    Mounts: inspectMounts(store, cfg?.mounts),
    NetworkSettings: networkSettings(c),
    Config: dockerConfig({
      // What the image gave (labels, volumes, ports) when it is still here, then the container's own.
      ...imageConfigFields(store, c.imageId),
      ...(cfg
        ? {
            Hostname: cfg.hostname, User: cfg.user, Tty: cfg.tty ?? false, OpenStdin: cfg.interactive ?? false, Env: cfg.env, Cmd: c.command, Image: c.image,
            WorkingDir: cfg.cwd, StopSignal: cfg.stopSignal ?? 'SIGTERM', StopTimeout: cfg.stopTimeout ?? 10,
            ...(cfg.healthcheck ? { Healthcheck: { Test: cfg.healthcheck.test, Interval: cfg.healthcheck.interval ?? 0, Timeout: cfg.healthcheck.timeout ?? 0, StartPeriod: cfg.healthcheck.startPeriod ?? 0, Retries: cfg.healthcheck.retries ?? 0 } } : {}),
          }
        : { Cmd: c.command, Image: c.image }),
    }),
    GraphDriver: { Name: store.snapshotter.driver, Data: { Snapshot: c.snapshot } },
    Platform: os.platform(),
  };
}

/** Is `ref` a container (for `inspect`, which takes images and containers)? */
export function isContainer(store: Store, ref: string): boolean {
  try {
    store.containers.find(ref);
    return true;
  } catch (e) {
    if (e instanceof NotFoundError) return false;
    throw e;
  }
}

/** Docker's status column: `Up 3 minutes (healthy)`, `Exited (0) 2 seconds ago`, `Restarting (1) …`. */
export function statusText(c: ContainerState, ago: (iso: string) => string): string {
  const health = c.health && c.status === 'running' ? ` (${c.health.status === 'starting' ? 'health: starting' : c.health.status})` : '';
  switch (c.status) {
    case 'running':
      return `Up ${ago(c.startedAt ?? c.created).replace(/ ago$/, '')}${health}`;
    case 'paused':
      return `Up ${ago(c.startedAt ?? c.created).replace(/ ago$/, '')} (Paused)`;
    case 'restarting':
      return `Restarting (${c.exitCode ?? 0}) ${ago(c.finishedAt ?? c.created)}`;
    case 'exited':
      return `Exited (${c.exitCode ?? 0}) ${ago(c.finishedAt ?? c.created)}`;
    case 'dead':
      return 'Dead';
    default:
      return 'Created';
  }
}

/** Whether the container is frozen right now (for tests and `ps` when the record lags). */
export function containerFrozen(c: ContainerState): boolean {
  return c.cgroupProcs ? isFrozen(c.cgroupProcs) : false;
}
