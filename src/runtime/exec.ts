/**
 * `exec`: a new process inside a running container, with the container's own namespaces, cgroup,
 * capabilities, seccomp filter and no_new_privs. The user is looked up in the container's live
 * /etc/passwd (through /proc/<pid>/root, never following a symlink out of it), so users added after
 * the container started are found, as with `docker exec`.
 */
import fs from 'node:fs';
import { DEFAULT_PATH } from '../image/index.js';
import { resolveInRoot } from '../fsutil/index.js';
import { joinFilesOf } from './cgroupfs.js';
import { runSpec, type RunResult, type SpawnOptions } from './helper.js';
import { CAP_NAMES, resolveCaps, seccompProgram, type SecurityOptions } from './security.js';
import { defaultRlimits, type ExecSpec, type Rlimit } from './spec.js';
import { resolveUser } from './user.js';

export interface ExecOptions {
  /** The container's first process, as the host sees it. */
  pid: number;
  /** cgroup.procs files of the container's cgroup. */
  cgroupProcs: string[];
  args: string[];
  /** The container's environment followed by the exec's own (later wins). */
  env: string[];
  /** Empty: the container's working directory. */
  cwd: string;
  user: string;
  terminal?: boolean;
  security?: SecurityOptions;
  rlimits?: Rlimit[];
  seccompCacheDir?: string;
}

const NAMESPACES: [string, string][] = [['user', 'user'], ['mount', 'mnt'], ['pid', 'pid'], ['uts', 'uts'], ['ipc', 'ipc'], ['network', 'net'], ['cgroup', 'cgroup']];

/** The namespaces of `pid` that are not ours: the ones the exec must join. */
export function namespacesOf(pid: number): string[] {
  return NAMESPACES.filter(([, f]) => {
    try {
      return fs.readlinkSync(`/proc/${pid}/ns/${f}`) !== fs.readlinkSync(`/proc/self/ns/${f}`);
    } catch {
      return false;
    }
  }).map(([t]) => t);
}

function readInContainer(pid: number, p: string): string | undefined {
  try {
    return fs.readFileSync(resolveInRoot(`/proc/${pid}/root`, p), 'utf8');
  } catch {
    return undefined;
  }
}

/** Later entries win, in the position of the first. */
export function mergeEnv(env: string[]): string[] {
  const m = new Map<string, string>();
  for (const e of env) {
    const i = e.indexOf('=');
    m.set(i < 0 ? e : e.slice(0, i), i < 0 ? '' : e.slice(i + 1));
  }
  return [...m].map(([k, v]) => `${k}=${v}`);
}

export async function execInContainer(o: ExecOptions, io: SpawnOptions): Promise<RunResult> {
  const user = resolveUser(o.user, readInContainer(o.pid, '/etc/passwd'), readInContainer(o.pid, '/etc/group'));
  const env = mergeEnv([`PATH=${DEFAULT_PATH}`, `HOME=${user.home}`, ...o.env]);
  const sec = o.security ?? {};
  const caps = resolveCaps(sec);
  const capNums = caps.map((c) => CAP_NAMES.indexOf(c)).filter((n) => n >= 0);
  const seccomp = seccompProgram(sec, user.uid === 0 ? caps : [], o.seccompCacheDir);
  const spec: ExecSpec = {
    pid: o.pid,
    process: {
      terminal: o.terminal ?? false,
      user: { uid: user.uid, gid: user.gid, additionalGids: user.additionalGids },
      args: o.args,
      env,
      cwd: o.cwd || '/',
      capabilities: { bounding: capNums, effective: user.uid === 0 ? capNums : [] },
      rlimits: [...defaultRlimits().filter((d) => !o.rlimits?.some((r) => r.type === d.type)), ...(o.rlimits ?? [])],
      noNewPrivileges: sec.noNewPrivileges ?? !sec.privileged,
      createCwd: false,
    },
    linux: { namespaces: namespacesOf(o.pid).map((type) => ({ type })), ...(seccomp ? { seccomp } : {}), cgroupJoin: joinFilesOf(o.cgroupProcs) },
  };
  return runSpec(spec, io, 'exec');
}
