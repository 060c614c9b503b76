/** `exec`: a new process in a running container, attached or in the background (`-d`). */
import path from 'node:path';
import { TsbuildError, UsageError } from '../errors/index.js';
import { processStartTime } from '../fsutil/index.js';
import { execInContainer, type SpawnOptions } from '../runtime/index.js';
import type { Store } from '../store/index.js';
import { containerAlive, isActive } from './containers.js';
import type { OpOptions } from './events.js';
import { spawnReporting } from './detached.js';

export interface ExecRequest {
  args: string[];
  env?: string[];
  user?: string;
  workdir?: string;
  tty?: boolean;
  interactive?: boolean;
  privileged?: boolean;
}

/** `exec`: a new process in the running container; its exit code. */
export async function execContainer(store: Store, ref: string, req: ExecRequest, io: SpawnOptions & OpOptions = {}): Promise<number> {
  const c = store.containers.find(ref);
  if (c.status === 'paused') throw new TsbuildError('CONTAINER_PAUSED', `container ${c.id} is paused, unpause the container before exec`);
  if (!isActive(c) || !containerAlive(c) || !c.config) throw new TsbuildError('CONTAINER_NOT_RUNNING', `container ${c.id} is not running`);
  if (req.args.length === 0) throw new UsageError('exec needs a command: tsbuild exec [OPTIONS] CONTAINER COMMAND [ARG...]');
  const cfg = c.config;
  const start = processStartTime(c.containerPid!);
  const security = req.privileged ? { ...cfg.security, privileged: true } : cfg.security;
  try {
    return (
      await execInContainer(
        {
          pid: c.containerPid!, cgroupProcs: c.cgroupProcs ?? [], args: req.args, env: [...cfg.env, ...(req.env ?? [])],
          cwd: req.workdir ?? cfg.cwd, user: req.user ?? cfg.user, terminal: req.tty, security, rlimits: cfg.ulimits,
          seccompCacheDir: path.join(store.root, 'cache', 'seccomp'),
        },
        { stdin: req.interactive ? 'inherit' : 'ignore', stdout: 'inherit', stderr: 'inherit', ...io },
      )
    ).exitCode;
  } catch (e) {
    // The container ended between the check and the setns.
    if (processStartTime(c.containerPid!) !== start) throw new TsbuildError('CONTAINER_NOT_RUNNING', `container ${c.id} is not running`);
    const f = (e as { failure?: { stage: string; errno: number } }).failure;
    if (f?.stage === 'exec') throw Object.assign(new TsbuildError('EXEC_FAILED', `exec failed: ${(e as Error).message}`), { exitCode: f.errno === 2 ? 127 : 126 });
    throw e;
  }
}

/**
 * `exec -d`: the process runs under a small tsbuild process of its own (`command` + root, driver,
 * container, request), which outlives this command and ends with the exec'd process; this returns
 * once it has started (or throws why it did not, with Docker's exit code).
 */
export async function execDetached(store: Store, ref: string, req: ExecRequest, command: string[]): Promise<void> {
  const c = store.containers.find(ref);
  if (c.status === 'paused') throw new TsbuildError('CONTAINER_PAUSED', `container ${c.id} is paused, unpause the container before exec`);
  if (!isActive(c) || !containerAlive(c)) throw new TsbuildError('CONTAINER_NOT_RUNNING', `container ${c.id} is not running`);
  await spawnReporting([...command, store.root, store.snapshotter.driver, c.id, JSON.stringify({ ...req, interactive: false, tty: false })], {
    code: 'EXEC_FAILED',
    exitCode: 126,
    onExit: (code) => `exec -d: the process that runs it exited (${code}) before it started`,
  }).result();
}
