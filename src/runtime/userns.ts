/**
 * Rootless: an ordinary user's tsbuild runs inside a user namespace (its root is the user) with a mount
 * namespace of its own, as podman does. One holder process per user keeps both alive, so every command
 * of that user joins the same namespaces and sees the same mounts; the helper does the syscalls, and
 * this file decides the id maps (from /etc/subuid and /etc/subgid through newuidmap/newgidmap, or the
 * user's own id alone when there is no range).
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TsbuildError } from '../errors/index.js';
import { helperPath, SandboxError, type HelperFailure } from './helper.js';

export interface SubIds {
  start: number;
  count: number;
}

/** The user's first range in an /etc/subuid-style file (lines `NAME_OR_UID:START:COUNT`). */
export function parseSubIds(text: string, user: string, id: number): SubIds | undefined {
  for (const line of text.split('\n')) {
    const [who, start, count] = line.trim().split(':');
    if (who === undefined || start === undefined || count === undefined) continue;
    if (who !== user && who !== String(id)) continue;
    const s = Number(start), c = Number(count);
    if (Number.isSafeInteger(s) && Number.isSafeInteger(c) && s >= 0 && c > 0) return { start: s, count: c };
  }
  return undefined;
}

export type MapKind = 'subids' | 'single';

export interface IdMapPlan {
  kind: MapKind;
  /** `newuidmap`/`newgidmap` triples (inside, outside, count), or the single line written directly. */
  uid: number[];
  gid: number[];
  /** Why there is no range, when kind is single. */
  reason?: string;
}

/**
 * Container root is the user; ids 1..N are the user's subordinate range, as podman maps them. Without
 * a range (or without newuidmap) only the user's own id exists inside.
 */
export function planIdMaps(o: { uid: number; gid: number; user: string; subuid?: string; subgid?: string; newuidmap: boolean }): IdMapPlan {
  const su = o.subuid === undefined ? undefined : parseSubIds(o.subuid, o.user, o.uid);
  const sg = o.subgid === undefined ? undefined : parseSubIds(o.subgid, o.user, o.gid);
  if (su && sg && o.newuidmap) return { kind: 'subids', uid: [0, o.uid, 1, 1, su.start, su.count], gid: [0, o.gid, 1, 1, sg.start, sg.count] };
  const reason = !su ? `no range for ${o.user} in /etc/subuid` : !sg ? `no range for ${o.user} in /etc/subgid` : 'newuidmap/newgidmap are not installed (Debian: apt-get install uidmap)';
  return { kind: 'single', uid: [0, o.uid, 1], gid: [0, o.gid, 1], reason };
}

function readOr(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** `cmd` is an executable somewhere on PATH. */
export function onPath(cmd: string): boolean {
  return (process.env.PATH ?? '/usr/bin:/bin').split(':').some((d) => {
    try {
      fs.accessSync(path.join(d, cmd), fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

export function hostIdMapPlan(): IdMapPlan {
  const uid = process.getuid!(), gid = process.getgid!();
  const user = process.env.USER ?? safeUserName() ?? String(uid);
  return planIdMaps({ uid, gid, user, subuid: readOr('/etc/subuid'), subgid: readOr('/etc/subgid'), newuidmap: onPath('newuidmap') && onPath('newgidmap') });
}

function safeUserName(): string | undefined {
  try {
    return os.userInfo().username;
  } catch {
    return undefined;
  }
}

/** Where the holder's pid is kept: the user's runtime directory, else a private directory in /tmp. */
export function rootlessRunDir(): string {
  // Inside, this process is uid 0: the outer command says where its holder is recorded.
  if (process.env.TSBUILD_USERNS_DIR) return process.env.TSBUILD_USERNS_DIR;
  const base = process.env.XDG_RUNTIME_DIR;
  return base ? path.join(base, 'tsbuild') : path.join(os.tmpdir(), `tsbuild-${process.getuid!()}`);
}

/** The holder's pid, if the recorded one is still our holder (its user namespace is not ours). */
function liveHolder(pidFile: string): number | undefined {
  const pid = Number(readOr(pidFile)?.trim());
  if (!Number.isInteger(pid) || pid <= 1) return undefined;
  try {
    // " (deleted)": the helper was rebuilt or upgraded since; the holder and its namespace still serve.
    if (fs.readlinkSync(`/proc/${pid}/exe`).replace(/ \(deleted\)$/, '') !== fs.realpathSync(helperPath())) return undefined;
    if (!fs.readFileSync(`/proc/${pid}/cmdline`, 'latin1').endsWith('\0userns\0')) return undefined;
    if (fs.readlinkSync(`/proc/${pid}/ns/user`) === fs.readlinkSync('/proc/self/ns/user')) return undefined;
    return pid;
  } catch {
    return undefined;
  }
}

/** What the kernel's answer to unshare(CLONE_NEWUSER) means, in the words of its settings. */
export function unshareCause(f: HelperFailure): string {
  if (f.stage === 'userns' && f.op === 'unshare') {
    if (f.errno === 28) return 'the kernel allows no more user namespaces (ENOSPC: user.max_user_namespaces is 0 or used up)';
    if (f.errno === 1 || f.errno === 13) return `the kernel or a security policy forbids them (${f.errno === 1 ? 'EPERM' : 'EACCES'}: kernel.unprivileged_userns_clone=0, an AppArmor restriction, or a seccomp profile such as a container runtime's default)`;
  }
  return new SandboxError(f).message;
}

function userNamespaceError(detail: string): TsbuildError {
  return new TsbuildError(
    'USERNS',
    `cannot create a user namespace for rootless tsbuild: ${detail}. Unprivileged user namespaces must be allowed ` +
      '(sysctl user.max_user_namespaces > 0, kernel.unprivileged_userns_clone=1 where it exists, kernel.apparmor_restrict_unprivileged_userns=0 on Ubuntu), or run tsbuild as root',
  );
}

function writeMaps(pid: number, plan: IdMapPlan): void {
  if (plan.kind === 'subids') {
    for (const [cmd, args] of [['newuidmap', plan.uid], ['newgidmap', plan.gid]] as const) {
      const r = spawnSync(cmd, [String(pid), ...args.map(String)], { encoding: 'utf8' });
      if (r.status !== 0) throw userNamespaceError(`${cmd} ${pid} ${args.join(' ')} failed: ${(r.stderr || r.error?.message || '').trim()} (check the ranges in /etc/subuid and /etc/subgid)`);
    }
    return;
  }
  try {
    // Without CAP_SETGID in the parent namespace, the kernel takes a gid map only once setgroups is off.
    fs.writeFileSync(`/proc/${pid}/setgroups`, 'deny');
    fs.writeFileSync(`/proc/${pid}/uid_map`, `${plan.uid.join(' ')}\n`);
    fs.writeFileSync(`/proc/${pid}/gid_map`, `${plan.gid.join(' ')}\n`);
  } catch (e) {
    throw userNamespaceError(`writing the single-id map failed: ${(e as Error).message}`);
  }
}

/** Starts a holder: unshare, maps written here, "ok" once it is root inside. */
async function startHolder(plan: IdMapPlan): Promise<number> {
  const child = spawn(helperPath(), ['userns'], { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
  let out = '', err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString('utf8')));
  const exited = new Promise<never>((_, reject) => {
    child.on('error', (e) => reject(userNamespaceError(e.message)));
    child.on('close', () => {
      const line = err.trim().split('\n')[0] ?? '';
      let f: HelperFailure | undefined;
      try {
        f = JSON.parse(line) as HelperFailure;
      } catch {
        // not the helper's JSON: reported as text below
      }
      reject(f ? userNamespaceError(unshareCause(f)) : userNamespaceError(line || 'the namespace holder exited'));
    });
  });
  const said = (word: string) =>
    new Promise<void>((resolve) => {
      const check = (d?: Buffer) => {
        if (d) out += d.toString('utf8');
        if (out.includes(`${word}\n`)) {
          child.stdout!.off('data', check);
          resolve();
        }
      };
      child.stdout!.on('data', check);
      check();
    });
  try {
    await Promise.race([said('ready'), exited]);
    writeMaps(child.pid!, plan);
    child.stdin!.write('g');
    await Promise.race([said('ok'), exited]);
  } catch (e) {
    child.kill('SIGKILL');
    throw e;
  }
  exited.catch(() => undefined);
  child.removeAllListeners('close');
  for (const s of [child.stdin, child.stdout, child.stderr]) s?.destroy();
  child.unref();
  return child.pid!;
}

/**
 * The holder's pid: the recorded one if alive, else a new one (`created`). Two commands racing both
 * start one; the first to link its pid file wins and the other's holder is ended (by the pid we started).
 */
export async function userNamespaceHolder(plan: IdMapPlan, runDir = rootlessRunDir()): Promise<{ pid: number; created: boolean }> {
  const pidFile = path.join(runDir, 'userns.pid');
  const live = liveHolder(pidFile);
  if (live) return { pid: live, created: false };
  fs.mkdirSync(runDir, { recursive: true, mode: 0o700 });
  const st = fs.statSync(runDir);
  if (st.uid !== process.getuid!() || (st.mode & 0o022) !== 0) {
    throw new TsbuildError('USERNS', `${runDir} is not a private directory of this user: remove it, or set XDG_RUNTIME_DIR to one`);
  }
  const pid = await startHolder(plan);
  const tmp = `${pidFile}.${pid}`;
  fs.writeFileSync(tmp, `${pid}\n`);
  for (;;) {
    try {
      fs.linkSync(tmp, pidFile);
      fs.rmSync(tmp, { force: true });
      return { pid, created: true };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const other = liveHolder(pidFile);
    if (other) {
      fs.rmSync(tmp, { force: true });
      process.kill(pid, 'SIGKILL');
      return { pid: other, created: false };
    }
    fs.rmSync(pidFile, { force: true });
  }
}

/**
 * Ends the recorded holder (`system migrate`), from inside its namespace, where this process is its
 * root; returns its pid, or undefined when none is recorded.
 */
export function endUserNamespaceHolder(runDir = rootlessRunDir()): number | undefined {
  const pidFile = path.join(runDir, 'userns.pid');
  const text = readOr(pidFile);
  if (text === undefined) return undefined;
  const pid = Number(text.trim());
  fs.rmSync(pidFile, { force: true });
  if (Number.isInteger(pid) && pid > 1) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  return pid;
}

/**
 * Runs this same command again inside the holder's namespaces, with stdio passed through; resolves
 * to its exit code. Signals are forwarded and this one waits for the inner one to finish its own
 * clean-up; if this one is killed, the inner one dies too (PDEATHSIG) and the next command recovers.
 */
export function reexecInUserNamespace(holder: number, argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(helperPath(), ['join', String(holder), ...argv], { stdio: ['inherit', 'inherit', 'inherit', 'pipe'], env });
    let err = '';
    (child.stdio[3] as NodeJS.ReadableStream).on('data', (d: Buffer) => (err += d.toString('utf8')));
    // Every signal goes on to the inner command, which owns the clean-up; from a terminal it gets
    // Ctrl-C twice (the group, and this), and takes the two as one press.
    const handlers: [NodeJS.Signals, () => void][] = (['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'] as NodeJS.Signals[]).map((s) => [s, () => child.kill(s)]);
    for (const [s, h] of handlers) process.on(s, h);
    child.on('error', (e) => reject(userNamespaceError(e.message)));
    child.on('close', (code, sig) => {
      for (const [s, h] of handlers) process.off(s, h);
      const line = err.trim().split('\n')[0];
      if (line) {
        try {
          return reject(userNamespaceError(new SandboxError(JSON.parse(line) as HelperFailure).message));
        } catch {
          return reject(userNamespaceError(line));
        }
      }
      resolve(sig ? 128 + (os.constants.signals[sig] ?? 1) : code ?? 1);
    });
  });
}

let selfMap: string | undefined;
function ownUidMap(): string {
  return (selfMap ??= readOr('/proc/self/uid_map') ?? '');
}

/** This process runs in a user namespace that is not the host's (rootless, or nested in one). */
export function isRootless(): boolean {
  const lines = ownUidMap().trim().split('\n').map((l) => l.trim().split(/\s+/).join(' '));
  return lines.length > 0 && lines[0] !== '' && !(lines.length === 1 && lines[0] === '0 0 4294967295');
}

/** How ids are mapped in this process's namespace (for `info` and warnings). */
export function rootlessMapKind(): MapKind | undefined {
  if (!isRootless()) return undefined;
  const lines = ownUidMap().trim().split('\n');
  return lines.length === 1 && lines[0]!.trim().split(/\s+/)[2] === '1' ? 'single' : 'subids';
}

/** What extraction may create here: a rootless namespace can make no device node nor trusted.* xattr. */
export function extractionLimits(): { devices: boolean; xattr: (name: string) => boolean } | undefined {
  if (!isRootless()) return undefined;
  return { devices: false, xattr: (n) => !n.startsWith('trusted.') && !(n.startsWith('security.') && n !== 'security.capability') };
}
