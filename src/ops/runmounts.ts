/**
 * RUN --mount: turns mount specs into sandbox mounts for one step, and undoes everything afterwards.
 * Nothing under a mount target reaches the layer: the target is covered for the whole step, and the
 * mount point itself is a stub that is removed when the image did not have it.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { TsbuildError } from '../errors/index.js';
import { acquireLock, resolveInRoot } from '../fsutil/index.js';
import { MS, hostMountAsync, hostUnmountAsync, isRootless, toSysMount, type SpecMount } from '../runtime/index.js';
import { cacheMountDir, tempKey } from '../store/index.js';
import type { OpResult, OpSpec, OpsEnv, RunMountSpec } from './types.js';

export class MountError extends TsbuildError {
  constructor(message: string) {
    super('RUN_MOUNT', message);
  }
}

export interface PreparedMounts {
  mounts: SpecMount[];
  env: string[];
  cleanup(): Promise<void>;
}

/** What the per-type preparers share: the step, its scratch dir, and the undo list. */
interface MountCtx {
  env: OpsEnv;
  op: Extract<OpSpec, { kind: 'exec' }>;
  work: string;
  signal: AbortSignal;
  /** Undo actions, run in reverse by cleanup. */
  undo: (() => void | Promise<void>)[];
  /** The host directory behind a mount's `from` input (the context, or a stage/image view mounted on the host). */
  inputRoot(i: number): Promise<string>;
  /** Environment variables the mounts add (a secret's env=, SSH_AUTH_SOCK). */
  extraEnv: string[];
}

type Spec<T extends RunMountSpec['type']> = Extract<RunMountSpec, { type: T }> & { input?: number };

async function bindMount(c: MountCtx, m: Spec<'bind'>, n: number): Promise<SpecMount> {
  const base = await c.inputRoot(m.input!);
  const src = m.source ? resolveInRoot(base, m.source) : base;
  let st: fs.Stats;
  try {
    st = fs.statSync(src);
  } catch {
    throw new MountError(`--mount=type=bind,source=${m.source || '.'}: not found in ${m.from ? `"${m.from}"` : 'the build context'}`);
  }
  if (!m.rw) return { destination: m.target, type: 'none', source: src, flags: MS.BIND | MS.REC | MS.RDONLY, data: '', file: !st.isDirectory() };
  if (st.isDirectory() && isRootless() && c.env.snapshotter.driver !== 'overlayfs') {
    // A rootless store off the kernel's overlay is one on a kernel that may refuse overlay in a user
    // namespace (the fuse-overlayfs or native fallback): the scratch copy is a real one.
    const copy = path.join(c.work, `bind-${n}`);
    fs.cpSync(src, copy, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
    return { destination: m.target, type: 'none', source: copy, flags: MS.BIND | MS.REC, data: '' };
  }
  if (st.isDirectory()) {
    // Writable, but writes are thrown away: an overlay whose upper layer is scratch space.
    const up = path.join(c.work, `bind-${n}`);
    fs.mkdirSync(path.join(up, 'upper'), { recursive: true });
    fs.mkdirSync(path.join(up, 'work'));
    return { destination: m.target, type: 'overlay', source: 'overlay', flags: 0, data: `lowerdir=${src},upperdir=${up}/upper,workdir=${up}/work` };
  }
  const copy = path.join(c.work, `bind-${n}`);
  fs.copyFileSync(src, copy);
  return { destination: m.target, type: 'none', source: copy, flags: MS.BIND, data: '', file: true };
}

async function cacheMount(c: MountCtx, m: Spec<'cache'>, n: number): Promise<SpecMount> {
  let dir = cacheMountDir(c.env.storeRoot, m.id);
  if (!fs.existsSync(dir)) {
    // Made aside and renamed into place, so a concurrent step sees it whole or not at all.
    const tmp = `${dir}.tmp-${process.pid}-${crypto.randomBytes(3).toString('hex')}`;
    fs.mkdirSync(tmp, { recursive: true });
    if (m.from !== undefined) {
      const base = await c.inputRoot(m.input!);
      fs.cpSync(m.source ? resolveInRoot(base, m.source) : base, tmp, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
    }
    fs.chmodSync(tmp, m.mode);
    fs.chownSync(tmp, m.uid, m.gid);
    try {
      fs.renameSync(tmp, dir);
    } catch {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  }
  if (m.sharing === 'locked') c.undo.push((await acquireLock(`${dir}.lock`, { wait: true, signal: c.signal }))!);
  else if (m.sharing === 'private') {
    const release = await acquireLock(`${dir}.lock`, { wait: false });
    if (release) c.undo.push(release);
    else {
      // In use by another build: this step gets its own throwaway copy, as BuildKit does.
      const priv = path.join(c.work, `cache-${n}`);
      fs.mkdirSync(priv);
      fs.chmodSync(priv, m.mode);
      fs.chownSync(priv, m.uid, m.gid);
      dir = priv;
    }
  }
  fs.writeFileSync(path.join(path.dirname(dir), `${path.basename(dir)}.id`), m.id);
  return { destination: m.target, type: 'none', source: dir, flags: MS.BIND | MS.REC | (m.ro ? MS.RDONLY : 0), data: '' };
}

function secretMount(c: MountCtx, m: Spec<'secret'>, n: number): SpecMount | undefined {
  const s = c.env.secrets?.secrets.get(m.id);
  let value: Buffer | undefined;
  if (s?.file !== undefined) {
    try {
      value = fs.readFileSync(s.file);
    } catch (e) {
      throw new MountError(`secret ${m.id}: cannot read ${s.file}: ${(e as Error).message}`);
    }
  } else if (s?.env !== undefined) {
    const v = process.env[s.env];
    if (v !== undefined) value = Buffer.from(v);
  }
  if (value === undefined) {
    if (m.required) throw new MountError(`secret ${m.id} is required but was not provided: pass --secret id=${m.id},src=FILE (or env=VAR)`);
    return undefined;
  }
  if (m.env) c.extraEnv.push(`${m.env}=${value.toString('utf8')}`);
  if (!m.target) return undefined;
  const f = path.join(c.work, `secret-${n}`);
  fs.writeFileSync(f, value, { mode: 0o400 });
  fs.chownSync(f, m.uid, m.gid);
  fs.chmodSync(f, m.mode);
  return { destination: m.target, type: 'none', source: f, flags: MS.BIND | MS.RDONLY | MS.NOSUID | MS.NODEV | MS.NOEXEC, data: '', file: true };
}

async function sshMount(c: MountCtx, m: Spec<'ssh'>, n: number): Promise<SpecMount | undefined> {
  const sock = c.env.secrets?.ssh.get(m.id);
  if (!sock) {
    if (m.required) throw new MountError(`ssh agent "${m.id}" is required but was not provided: pass --ssh ${m.id === 'default' ? 'default' : `${m.id}=SOCKET`}`);
    return undefined;
  }
  if (!fs.existsSync(sock)) throw new MountError(`ssh agent "${m.id}": socket ${sock} does not exist`);
  // A proxy socket of our own carries the step's mode and owner without touching the user's
  // agent socket; each connection is piped through to the real agent.
  const proxy = path.join(c.work, `ssh-${n}.sock`);
  const server = net.createServer((conn) => {
    const up = net.connect(sock);
    conn.pipe(up).pipe(conn);
    const end = () => {
      conn.destroy();
      up.destroy();
    };
    conn.on('error', end);
    up.on('error', end);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(proxy, resolve);
  });
  c.undo.push(() => new Promise<void>((r) => server.close(() => r())));
  fs.chmodSync(proxy, m.mode);
  fs.chownSync(proxy, m.uid, m.gid);
  // The first ssh mount owns SSH_AUTH_SOCK, unless the step already sets it.
  if (!c.extraEnv.some((e) => e.startsWith('SSH_AUTH_SOCK=')) && !c.op.env.some((e) => e.startsWith('SSH_AUTH_SOCK='))) c.extraEnv.push(`SSH_AUTH_SOCK=${m.target}`);
  return { destination: m.target, type: 'none', source: proxy, flags: MS.BIND, data: '', file: true };
}

export async function prepareRunMounts(env: OpsEnv, op: Extract<OpSpec, { kind: 'exec' }>, inputs: OpResult[], work: string, signal: AbortSignal): Promise<PreparedMounts> {
  const undo: (() => void | Promise<void>)[] = [];
  const views = new Map<number, string>();
  const cleanup = async () => {
    for (const u of undo.reverse()) {
      try {
        await u();
      } catch {
        // best effort: recoverStore sweeps what is left
      }
    }
  };
  const inputRoot = async (i: number): Promise<string> => {
    const r = inputs[i];
    if (!r) throw new MountError('internal: mount input missing');
    if (r.kind === 'context') return r.dir;
    if (r.kind !== 'state') throw new MountError('internal: bad mount input');
    let dir = views.get(i);
    if (dir) return dir;
    dir = path.join(env.storeRoot, 'tmp', 'mnt', `${process.pid}-${crypto.randomBytes(4).toString('hex')}`);
    fs.mkdirSync(dir, { recursive: true });
    views.set(i, dir);
    const d = dir;
    undo.push(() => fs.rmdirSync(d));
    if (!r.snapshot) return dir;
    const key = tempKey('view', 'mount-from');
    const vm = await env.snapshotter.view(key, r.snapshot);
    undo.push(() => env.snapshotter.remove(key));
    // Through the build's long-lived helper: a synchronous helper each forked Node twice per mount.
    for (const m of vm) await hostMountAsync(toSysMount(m), dir);
    undo.push(() => hostUnmountAsync(d));
    return dir;
  };
  const c: MountCtx = { env, op, work, signal, undo, inputRoot, extraEnv: [] };
  const mounts: SpecMount[] = [];
  try {
    for (const [i, m] of (op.mounts as (RunMountSpec & { input?: number })[]).entries()) {
      const n = i + 1;
      const sm =
        m.type === 'bind' ? await bindMount(c, m, n)
        : m.type === 'cache' ? await cacheMount(c, m, n)
        : m.type === 'tmpfs' ? { destination: m.target, type: 'tmpfs', source: 'tmpfs', flags: MS.NOSUID | MS.NODEV, data: m.size !== undefined ? `size=${m.size}` : '' }
        : m.type === 'secret' ? secretMount(c, m, n)
        : await sshMount(c, m, n);
      if (sm) mounts.push(sm);
    }
  } catch (e) {
    await cleanup();
    throw e;
  }
  return { mounts, env: c.extraEnv, cleanup };
}
