/** RUN: the step's command in the sandbox on a fresh active snapshot, committed as the next layer. */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { TsbuildError } from '../errors/index.js';
import type { OpContext } from '../builder/index.js';
import { MS, Networks, emulationFor, isRootless, oomMessage, runContainer, type SpecMount } from '../runtime/index.js';
import { parsePlatform } from '../image/index.js';
import { commitState, prepareStep, writableDir } from './layer.js';
import { tempKey } from '../store/index.js';
import type { OpResult, OpSpec, OpsEnv, StateRef } from './types.js';
import { prepareRunMounts, type PreparedMounts } from './runmounts.js';

export class ExecError extends TsbuildError {
  readonly exitCode: number;
  readonly tail: string;
  constructor(command: string, exitCode: number, tail: string, oom?: string) {
    super(
      'RUN_FAILED',
      `process "${command}" did not complete successfully: exit code: ${exitCode}${oom ? ` (${oom})` : ''}` + (tail ? `\n--- last lines of output ---\n${tail}` : ''),
    );
    this.exitCode = exitCode;
    this.tail = tail;
  }
}

/** Keeps the last N lines of a stream for error messages. */
export class Tail {
  private buf = '';
  constructor(private max = 20) {}
  push(d: Buffer): void {
    this.buf += d.toString('utf8');
    if (this.buf.length > 64 * 1024) this.buf = this.buf.slice(-32 * 1024);
  }
  text(): string {
    return this.buf.split('\n').filter((l, i, a) => l !== '' || i < a.length - 1).slice(-this.max).join('\n');
  }
}

export async function execOp(env: OpsEnv, op: Extract<OpSpec, { kind: 'exec' }>, root: StateRef, inputs: OpResult[], ctx: OpContext): Promise<StateRef> {
  // Before anything is prepared: a platform this machine cannot run is an error that says what to install.
  const emulation = op.platform ? emulationFor(parsePlatform(op.platform)) : undefined;
  const key = tempKey('active', 'run');
  const mounts = await prepareStep(env, key, root.snapshot);
  const work = path.join(env.storeRoot, 'tmp', `run-${process.pid}-${crypto.randomBytes(4).toString('hex')}`);
  let committed = false;
  let runMounts: PreparedMounts | undefined;
  // --network default: an endpoint on the bridge for this step alone, as BuildKit's CNI network.
  // Rootless: the host's network instead (no bridge without root), as BuildKit's rootless default.
  const nets = op.network === 'default' && !isRootless() ? new Networks(env.storeRoot) : undefined;
  const endpoint = crypto.randomBytes(32).toString('hex');
  try {
    fs.mkdirSync(work, { recursive: true });
    const ep = await nets?.attach(endpoint, { name: 'build-step', networks: [{ network: 'bridge' }] });
    runMounts = await prepareRunMounts(env, op, inputs, work, ctx.signal);
    const files = op.files.map((f, i): SpecMount => {
      const host = path.join(work, `file-${i}`);
      fs.writeFileSync(host, f.data, { mode: f.mode });
      fs.chmodSync(host, f.mode);
      return { destination: f.path, type: 'none', source: host, flags: MS.BIND | MS.RDONLY, data: '', file: true };
    });
    const tail = new Tail();
    const r = await runContainer(
      {
        rootMounts: mounts,
        writableDir: () => writableDir(env, key),
        workDir: work,
        args: op.args,
        env: [...op.env, ...runMounts.env],
        cwd: op.cwd,
        user: op.user,
        hostname: op.hostname,
        network: op.network === 'default' ? (isRootless() ? 'host' : 'bridge') : op.network,
        netns: ep && { path: `/run/netns/${ep.netns}`, ip: ep.endpoints[0]!.endpoint.ip },
        security: { privileged: op.insecure },
        rlimits: op.ulimits,
        extraHosts: op.extraHosts,
        shmSize: op.shmSize,
        seccompCacheDir: path.join(env.storeRoot, 'cache', 'seccomp'),
        mountDir: path.join(env.storeRoot, 'tmp', 'mnt'),
        cgroup: { name: `${env.cgroupParent ? `${env.cgroupParent}/` : ''}${path.basename(work)}`, limits: env.limits },
        extraMounts: [...runMounts.mounts, ...files],
        emulation,
      },
      {
        signal: ctx.signal,
        onStdout: (d) => {
          tail.push(d);
          ctx.log('stdout', d);
        },
        onStderr: (d) => {
          tail.push(d);
          ctx.log('stderr', d);
        },
      },
    );
    if (r.exitCode !== 0) throw new ExecError(op.args.join(' '), r.exitCode, tail.text(), r.oomKilled ? oomMessage(r.memoryLimit) : undefined);
    const out = await commitState(env, key, root, op.history, { created: env.created, created_by: op.createdBy, comment: 'buildkit.dockerfile.v0' });
    committed = true;
    return out;
  } finally {
    await nets?.detach(endpoint);
    await runMounts?.cleanup();
    if (!committed) await env.snapshotter.remove(key).catch(() => undefined);
    fs.rmSync(work, { recursive: true, force: true });
  }
}
