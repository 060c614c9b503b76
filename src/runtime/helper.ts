/**
 * Drives the C helper (native/build/tsbuild-sandbox). The spec goes in on fd 3; a failure inside the
 * helper comes back on fd 4 as `{stage, op, path, errno, message}`; the container's pid on fd 5.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TsbuildError, CancelledError } from '../errors/index.js';
import type { ExecSpec, SandboxSpec } from './spec.js';
import type { SysMount } from './mounts.js';
import { isRootless } from './userns.js';
import { FUSE_OVERLAY, mountFuseOverlay } from './fuse.js';
import { spawnChild } from './spawn.js';

// A function, not a constant: the CLI's startup snapshot (scripts/bundle.mjs) is made where the
// module's location is not yet known, and is told it when it starts.
const repoRoot = () => path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export function helperPath(): string {
  const p = process.env.TSBUILD_HELPER ?? path.join(repoRoot(), 'native/build/tsbuild-sandbox');
  if (!fs.existsSync(p)) {
    throw new TsbuildError('HELPER_MISSING', `the sandbox helper ${p} is missing: run "npm ci" (or "npm run build") in ${repoRoot()} with a C compiler installed`);
  }
  return p;
}

export interface HelperFailure {
  stage: string;
  op: string;
  path: string;
  errno: number;
  message: string;
}

export class SandboxError extends TsbuildError {
  readonly failure: HelperFailure;
  constructor(f: HelperFailure) {
    const what = f.stage === 'exec' && (f.op === 'lookup' || f.op === 'exec') && f.errno === 2
      ? `executable file not found: "${f.path}" (not in the image's PATH or not present)`
      : f.stage === 'exec' && f.op === 'chdir'
        ? `working directory ${f.path} cannot be entered: ${f.message}`
        : `${f.stage}: ${f.op} ${f.path}: ${f.message || `errno ${f.errno}`}`;
    // In a user namespace the kernel mounts a fresh /proc only where the outer one hides nothing.
    const hint = f.stage === 'mounts' && f.path === '/proc' && f.errno === 1 && isRootless()
      ? ': the /proc this tsbuild runs under has masked paths (a container runtime\'s default); in Kubernetes set procMount: Unmasked (docs/rootless.md)'
      : f.stage === 'idmap'
        ? `: the filesystem under ${f.path} cannot be shown through a user namespace's map (idmapped mounts need Linux 5.12 or later and ext4, xfs, btrfs or tmpfs); run with --userns host`
        : '';
    super('SANDBOX', `sandbox setup failed: ${what}${hint}`);
    this.failure = f;
  }
}

export interface RunResult {
  exitCode: number;
}

export interface StartInfo {
  helperPid: number;
  containerPid?: number;
  kill: (sig: NodeJS.Signals) => void;
  /** With `stdin: 'pipe'`: the process's standard input. */
  stdin?: NodeJS.WritableStream;
  /** runContainer adds the container's cgroup.procs files. */
  cgroupProcs?: string[];
}

export interface SpawnOptions {
  stdin?: 'inherit' | 'ignore' | 'pipe';
  stdout?: 'inherit' | 'pipe' | 'ignore';
  stderr?: 'inherit' | 'pipe' | 'ignore';
  onStdout?: (chunk: Buffer) => void;
  onStderr?: (chunk: Buffer) => void;
  onStart?: (info: StartInfo) => void;
  signal?: AbortSignal;
}

/**
 * Runs a spec to completion (`run`), or a process in a running container (`exec`, whose spec also
 * names the container's pid). Abort kills the helper; the process dies with it (PDEATHSIG).
 */
export function runSpec(spec: SandboxSpec | ExecSpec, opts: SpawnOptions = {}, mode: 'run' | 'exec' = 'run'): Promise<RunResult> {
  if (opts.signal?.aborted) return Promise.reject(new CancelledError());
  return new Promise((resolve, reject) => {
    const child = spawnChild(helperPath(), [mode], {
      stdio: [opts.stdin ?? 'ignore', opts.stdout ?? 'pipe', opts.stderr ?? 'pipe', 'pipe', 'pipe', 'pipe'],
    });
    let errText = '';
    let pidText = '';
    const fds = child.stdio as unknown as (NodeJS.ReadableStream | null)[];
    const errStream = fds[4] ?? null;
    const pidStream = fds[5] ?? null;
    errStream?.on('data', (d: Buffer) => (errText += d.toString('utf8')));
    // Started means exec'd: the error channel is close-on-exec, so it ends (empty) once the
    // container's process runs, and carries the reason when it could not start.
    let started = false;
    const maybeStarted = () => {
      if (started || !pidText.endsWith('\n') || !errEnded || errText.trim() !== '') return;
      started = true;
      opts.onStart?.({ helperPid: child.pid!, containerPid: parseInt(pidText, 10), kill: (s) => child.kill(s), stdin: child.stdin ?? undefined });
    };
    pidStream?.on('data', (d: Buffer) => {
      pidText += d.toString('utf8');
      maybeStarted();
    });
    if (opts.onStdout) child.stdout?.on('data', opts.onStdout);
    if (opts.onStderr) child.stderr?.on('data', opts.onStderr);
    const specStream = child.stdio[3] as NodeJS.WritableStream;
    specStream.on('error', () => {
      // the helper died before reading its spec; the exit status says why
    });
    specStream.end(JSON.stringify(spec));
    const onAbort = () => child.kill('SIGKILL');
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    let errEnded = !errStream;
    let exit: { code: number | null; sig: NodeJS.Signals | null } | undefined;
    const finish = () => {
      if (!exit || !errEnded) return;
      opts.signal?.removeEventListener('abort', onAbort);
      if (opts.signal?.aborted) return reject(new CancelledError());
      const line = errText.trim().split('\n')[0];
      if (line) {
        try {
          return reject(new SandboxError(JSON.parse(line) as HelperFailure));
        } catch {
          return reject(new TsbuildError('SANDBOX', `sandbox helper failed: ${line}`));
        }
      }
      if (exit.sig) return resolve({ exitCode: 128 + (os.constants.signals[exit.sig] ?? 1) });
      resolve({ exitCode: exit.code ?? 1 });
    };
    errStream?.on('end', () => {
      errEnded = true;
      maybeStarted();
      finish();
    });
    errStream?.on('error', () => {
      errEnded = true;
      finish();
    });
    child.on('error', (e) => reject(new TsbuildError('SANDBOX', `cannot start the sandbox helper: ${e.message}`, { cause: e })));
    child.on('close', (code, sig) => {
      exit = { code, sig };
      errEnded = true;
      finish();
    });
  });
}

function helperSync(args: string[], input?: Buffer): Buffer {
  // xattr listings grow with the tree (a label on every file on SELinux hosts): not spawnSync's 1 MiB.
  const r = spawnSync(helperPath(), args, { encoding: 'buffer', input, maxBuffer: 1 << 30 });
  if (r.status !== 0) {
    const text = r.stderr.toString('utf8').trim();
    try {
      throw new SandboxError(JSON.parse(text.split('\n')[0]!) as HelperFailure);
    } catch (e) {
      if (e instanceof SandboxError) throw e;
      throw new TsbuildError('SANDBOX', `sandbox helper ${args[0]} failed: ${text || `exit ${r.status}`}`);
    }
  }
  return r.stdout;
}

/** Mounts on the host (used to write into a snapshot for COPY). The caller must unmount in `finally`. */
export function hostMount(m: SysMount, target: string): void {
  if (m.type === FUSE_OVERLAY) return mountFuseOverlay(m, target);
  const args = ['mount', m.type, m.source, target, String(m.flags), m.data];
  if (m.cwd) args.push(m.cwd);
  helperSync(args);
}

export function hostUnmount(target: string): void {
  helperSync(['umount', target]);
}

/**
 * Whether overlay mounts here (with `userxattr` inside a user namespace): one mount tried under `dir`,
 * which is made and removed. Undefined when it works, else the reason; throws only when `dir` cannot
 * be made.
 */
export function probeOverlay(dir: string): string | undefined {
  for (const d of ['l', 'u', 'w', 'm']) fs.mkdirSync(path.join(dir, d), { recursive: true });
  try {
    hostMount({ type: 'overlay', source: 'overlay', flags: 0, data: `lowerdir=${dir}/l,upperdir=${dir}/u,workdir=${dir}/w${isRootless() ? ',userxattr' : ''}` }, path.join(dir, 'm'));
    hostUnmount(path.join(dir, 'm'));
    return undefined;
  } catch (e) {
    return (e as Error).message;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}


/**
 * Which extended attributes belong in a layer: everything a file carries (security.capability,
 * user.*, trusted.*) except overlayfs's own bookkeeping and SELinux labels, which belong to the host
 * (as containerd's and Docker's differs leave them out).
 */
export function layerXattr(name: string): boolean {
  return !name.startsWith('trusted.overlay.') && !name.startsWith('user.overlay.') && !name.startsWith('user.fuseoverlayfs.') && name !== 'security.selinux';
}

export interface LayerMeta {
  xattrs: Map<string, Record<string, Buffer>>;
  opaque: Set<string>;
  copiedUp: Set<string>;
}

/** The helper's xattr listing (relpath\0name\0hexvalue\0…) as layer metadata. */
export function parseLayerMeta(raw: Buffer): LayerMeta {
  const out = new Map<string, Record<string, Buffer>>();
  const opaque = new Set<string>();
  /** Files fuse-overlayfs copied up from a lower layer (it records their origin). */
  const copiedUp = new Set<string>();
  // Overlay in a user namespace (userxattr) marks opaque directories in the user.* namespace.
  const opaqueMark = isRootless() ? 'user.overlay.opaque' : 'trusted.overlay.opaque';
  let pos = 0;
  const field = (): Buffer => {
    const z = raw.indexOf(0, pos);
    const f = raw.subarray(pos, z < 0 ? raw.length : z);
    pos = z < 0 ? raw.length : z + 1;
    return f;
  };
  while (pos < raw.length) {
    const rel = field().toString('latin1');
    const name = field().toString('utf8');
    const value = Buffer.from(field().toString('latin1'), 'hex');
    if ((name === opaqueMark || name === 'user.fuseoverlayfs.opaque') && value.toString() === 'y') opaque.add(rel);
    if (name === 'user.fuseoverlayfs.origin') copiedUp.add(rel);
    if (!layerXattr(name)) continue;
    const cur = out.get(rel) ?? {};
    cur[name] = value;
    out.set(rel, cur);
  }
  return { xattrs: out, opaque, copiedUp };
}

export type HelperMetaOp =
  | { op: 'mknod'; path: string | Buffer; mode: number; major: number; minor: number }
  | { op: 'setxattr'; path: string | Buffer; name: string; value: Buffer };

/** Creates device nodes and sets xattrs (what Node cannot), in order, through the helper. */
export function applyMeta(ops: HelperMetaOp[]): void {
  if (ops.length === 0) return;
  const parts: Buffer[] = [];
  const f = (s: string | Buffer) => parts.push(Buffer.from(s), Buffer.from([0]));
  for (const o of ops) {
    if (o.path.includes('\0')) throw new TsbuildError('SANDBOX', `path with a NUL byte: ${JSON.stringify(o.path.toString())}`);
    if (o.op === 'mknod') {
      f('m');
      f(o.path);
      f(String(o.mode));
      f(String(o.major));
      f(String(o.minor));
    } else {
      f('x');
      f(o.path);
      f(o.name);
      f(o.value.toString('hex'));
    }
  }
  const r = spawnSync(helperPath(), ['apply-meta'], { input: Buffer.concat(parts), encoding: 'buffer' });
  if (r.status !== 0) {
    const text = r.stderr.toString('utf8').trim();
    let failure: HelperFailure | undefined;
    try {
      failure = JSON.parse(text.split('\n')[0]!) as HelperFailure;
    } catch {
      throw new TsbuildError('SANDBOX', `sandbox helper apply-meta failed: ${text || `exit ${r.status}`}`);
    }
    throw new SandboxError(failure);
  }
}
