/**
 * Seccomp: a profile in Docker's JSON format (the default one ships as data in profiles/) compiled
 * into a classic BPF program for the helper to install. Policy and compilation live here; the helper
 * only loads the instructions. Semantics follow Docker/libseccomp: rules are filtered by the host
 * architecture, the container's capabilities and the kernel version; names a table lacks are skipped
 * for that architecture; the default action applies to everything else; a foreign architecture is
 * killed. See docs/runtime.md.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TsbuildError } from '../errors/index.js';
import { kernelAtLeast } from '../fsutil/index.js';

export class SeccompError extends TsbuildError {
  constructor(message: string) {
    super('SECCOMP_PROFILE', message);
  }
}

interface ArgRule { index: number; value: number; valueTwo?: number; op: string }
interface RuleFilter { caps?: string[]; arches?: string[]; minKernel?: string }
interface SyscallRule { names?: string[]; name?: string; action: string; errnoRet?: number; args?: ArgRule[] | null; includes?: RuleFilter; excludes?: RuleFilter }
export interface SeccompProfile {
  defaultAction: string;
  defaultErrnoRet?: number;
  archMap?: { architecture: string; subArchitectures: string[] | null }[] | null;
  architectures?: string[] | null;
  syscalls?: SyscallRule[] | null;
}

/** One classic BPF instruction: [code, jt, jf, k]. */
export type BpfInsn = [number, number, number, number];

// A function for the CLI's startup snapshot, which learns the module's location when it starts.
const profilesDir = () => path.join(path.dirname(fileURLToPath(import.meta.url)), '../../src/runtime/profiles');
let syscallTables: Record<string, Record<string, number>> | undefined;

function tables(): Record<string, Record<string, number>> {
  syscallTables ??= JSON.parse(fs.readFileSync(path.join(profilesDir(), 'syscalls.json'), 'utf8')) as Record<string, Record<string, number>>;
  return syscallTables;
}

const ACTIONS = ['SCMP_ACT_ALLOW', 'SCMP_ACT_ERRNO', 'SCMP_ACT_KILL', 'SCMP_ACT_KILL_THREAD', 'SCMP_ACT_KILL_PROCESS', 'SCMP_ACT_TRAP', 'SCMP_ACT_TRACE', 'SCMP_ACT_LOG'];
const OPS = ['SCMP_CMP_EQ', 'SCMP_CMP_NE', 'SCMP_CMP_LT', 'SCMP_CMP_LE', 'SCMP_CMP_GT', 'SCMP_CMP_GE', 'SCMP_CMP_MASKED_EQ'];

/** Reads and checks a profile; every problem names the file and what is wrong. */
export function parseProfile(text: string, where: string): SeccompProfile {
  let p: SeccompProfile;
  try {
    p = JSON.parse(text) as SeccompProfile;
  } catch (e) {
    throw new SeccompError(`seccomp profile ${where} is not valid JSON: ${(e as Error).message}`);
  }
  const bad = (what: string) => new SeccompError(`seccomp profile ${where}: ${what} (see Docker's seccomp profile format)`);
  if (typeof p !== 'object' || p === null || typeof p.defaultAction !== 'string') throw bad('"defaultAction" is missing');
  if (!ACTIONS.includes(p.defaultAction)) throw bad(`unknown defaultAction "${p.defaultAction}"`);
  for (const [i, r] of (p.syscalls ?? []).entries()) {
    if (!Array.isArray(r.names) && typeof r.name !== 'string') throw bad(`syscalls[${i}] has no "names"`);
    if (!ACTIONS.includes(r.action)) throw bad(`syscalls[${i}]: unknown action "${r.action}"${r.action === 'SCMP_ACT_NOTIFY' ? ' (notify needs a listener, which tsbuild does not run)' : ''}`);
    for (const a of r.args ?? []) {
      if (!OPS.includes(a.op)) throw bad(`syscalls[${i}]: unknown comparison "${a.op}"`);
      if (!(a.index >= 0 && a.index <= 5)) throw bad(`syscalls[${i}]: argument index ${a.index} is not 0-5`);
    }
  }
  return p;
}

export function loadProfile(file: string): SeccompProfile {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new SeccompError(`cannot read seccomp profile ${file}: ${(e as Error).message}`);
  }
  return parseProfile(text, file);
}

let defaultProfile: SeccompProfile | undefined;
export function defaultSeccompProfile(): SeccompProfile {
  defaultProfile ??= loadProfile(path.join(profilesDir(), 'seccomp-default.json'));
  return defaultProfile;
}

// linux/audit.h, linux/seccomp.h
const AUDIT_ARCH: Record<string, number> = { x86_64: 0xc000003e, x86: 0x40000003, aarch64: 0xc00000b7 };
const X32_BIT = 0x40000000;
const RET = { KILL_PROCESS: 0x80000000, KILL_THREAD: 0, TRAP: 0x00030000, ERRNO: 0x00050000, TRACE: 0x7ff00000, LOG: 0x7ffc0000, ALLOW: 0x7fff0000 };
// BPF opcodes (linux/bpf_common.h)
const LD_W_ABS = 0x20, JEQ = 0x15, JGT = 0x25, JGE = 0x35, JA = 0x05, RET_K = 0x06, AND_K = 0x54;
/** seccomp_data: nr at 0, arch at 4, args[i] at 16 + 8i (low word first on little-endian hosts). */
const OFF_NR = 0, OFF_ARCH = 4;

/** Go's GOARCH names (what profiles' `arches` use) and the tables for each seccomp arch. */
const HOST_ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64' };
const SCMP_ARCH: Record<string, { goName: string; table: string; audit: string }> = {
  SCMP_ARCH_X86_64: { goName: 'amd64', table: 'x86_64', audit: 'x86_64' },
  SCMP_ARCH_X32: { goName: 'x32', table: 'x32', audit: 'x86_64' },
  SCMP_ARCH_X86: { goName: 'x86', table: 'x86', audit: 'x86' },
};

function action(name: string, errnoRet: number | undefined, defaultErrno: number): number {
  switch (name) {
    case 'SCMP_ACT_ALLOW': return RET.ALLOW;
    case 'SCMP_ACT_ERRNO': return RET.ERRNO | ((errnoRet ?? defaultErrno) & 0xffff);
    case 'SCMP_ACT_KILL':
    case 'SCMP_ACT_KILL_THREAD': return RET.KILL_THREAD;
    case 'SCMP_ACT_KILL_PROCESS': return RET.KILL_PROCESS;
    case 'SCMP_ACT_TRAP': return RET.TRAP;
    case 'SCMP_ACT_TRACE': return RET.TRACE | ((errnoRet ?? 0) & 0xffff);
    case 'SCMP_ACT_LOG': return RET.LOG;
  }
  throw new SeccompError(`unknown seccomp action ${name}`);
}


export interface CompileOptions {
  /** Capabilities the process gets (`CAP_SYS_ADMIN`, …), for includes/excludes by caps. */
  caps: Set<string>;
  /** Node's process.arch of the host (default: this one). */
  hostArch?: string;
  /** Kernel release (default: this one). */
  kernel?: string;
}

/** The rules that apply on this host for these capabilities, in profile order. */
function applicable(p: SeccompProfile, o: CompileOptions, goArch: string): SyscallRule[] {
  const kernel = o.kernel ?? os.release();
  return (p.syscalls ?? []).filter((r) => {
    const inc = r.includes ?? {};
    const exc = r.excludes ?? {};
    if (inc.arches?.length && !inc.arches.includes(goArch)) return false;
    if (inc.caps?.length && !inc.caps.every((c) => o.caps.has(c))) return false;
    if (inc.minKernel && !kernelAtLeast(inc.minKernel, kernel)) return false;
    if (exc.arches?.includes(goArch)) return false;
    if (exc.caps?.some((c) => o.caps.has(c))) return false;
    return true;
  });
}

/** Instructions checking one argument comparison; `fail` is a jump target label resolved later. */
type Insn = { code: number; k: number; jt?: number | string; jf?: number | string; label?: string };

function argChecks(a: ArgRule, fail: string): Insn[] {
  const lo = 16 + 8 * a.index;
  const hi = lo + 4;
  const v = BigInt.asUintN(64, BigInt(a.op === 'SCMP_CMP_MASKED_EQ' ? (a.valueTwo ?? 0) : a.value));
  const vhi = Number(v >> 32n), vlo = Number(v & 0xffffffffn);
  const mask = BigInt.asUintN(64, BigInt(a.value));
  const mhi = Number(mask >> 32n), mlo = Number(mask & 0xffffffffn);
  const pass = `pass-${Math.random()}`;
  const ld = (off: number): Insn => ({ code: LD_W_ABS, k: off });
  const end: Insn = { code: -1, k: 0, label: pass };
  switch (a.op) {
    case 'SCMP_CMP_EQ':
      return [ld(hi), { code: JEQ, k: vhi, jt: 0, jf: fail }, ld(lo), { code: JEQ, k: vlo, jt: 0, jf: fail }, end];
    case 'SCMP_CMP_NE':
      return [ld(hi), { code: JEQ, k: vhi, jt: 0, jf: pass }, ld(lo), { code: JEQ, k: vlo, jt: fail, jf: 0 }, end];
    case 'SCMP_CMP_MASKED_EQ':
      return [ld(hi), { code: AND_K, k: mhi }, { code: JEQ, k: vhi, jt: 0, jf: fail }, ld(lo), { code: AND_K, k: mlo }, { code: JEQ, k: vlo, jt: 0, jf: fail }, end];
    case 'SCMP_CMP_GT':
    case 'SCMP_CMP_GE':
      return [ld(hi), { code: JGT, k: vhi, jt: pass, jf: 0 }, { code: JEQ, k: vhi, jt: 0, jf: fail }, ld(lo), { code: a.op === 'SCMP_CMP_GT' ? JGT : JGE, k: vlo, jt: pass, jf: fail }, end];
    case 'SCMP_CMP_LT':
    case 'SCMP_CMP_LE':
      return [ld(hi), { code: JGE, k: vhi, jt: 0, jf: pass }, { code: JEQ, k: vhi, jt: 0, jf: fail }, ld(lo), { code: a.op === 'SCMP_CMP_LT' ? JGE : JGT, k: vlo, jt: fail, jf: pass }, end];
  }
  throw new SeccompError(`unknown comparison ${a.op}`);
}

/** One arch's section: every applicable rule's syscalls, then the default action. */
function section(rules: SyscallRule[], table: Record<string, number>, def: number, defaultErrno: number): Insn[] {
  const out: Insn[] = [{ code: LD_W_ABS, k: OFF_NR }];
  for (const r of rules) {
    const ret = action(r.action, r.errnoRet, defaultErrno);
    for (const name of r.names ?? [r.name!]) {
      const nr = table[name];
      if (nr === undefined) continue;
      if (!r.args?.length) {
        out.push({ code: JEQ, k: nr, jt: 0, jf: 1 }, { code: RET_K, k: ret });
        continue;
      }
      const skip = `skip-${Math.random()}`;
      const fail = `fail-${Math.random()}`;
      out.push({ code: JEQ, k: nr, jt: 0, jf: skip });
      for (const a of r.args) out.push(...argChecks(a, fail));
      // A failed comparison reloads the syscall number for the rules after this one.
      out.push({ code: RET_K, k: ret }, { code: LD_W_ABS, k: OFF_NR, label: fail }, { code: -1, k: 0, label: skip });
    }
  }
  out.push({ code: RET_K, k: def });
  return out;
}

/** Resolves labels into relative jumps and drops the label placeholders. */
function assemble(insns: Insn[]): BpfInsn[] {
  const real: Insn[] = [];
  const at = new Map<string, number>();
  for (const i of insns) {
    if (i.label) at.set(i.label, real.length);
    if (i.code !== -1) real.push(i);
  }
  return real.map((i, n) => {
    const rel = (j: number | string | undefined) => {
      if (j === undefined) return 0;
      if (typeof j === 'number') return j;
      const d = at.get(j)! - n - 1;
      if (d < 0 || d > 255) throw new SeccompError('internal: a seccomp jump is out of range');
      return d;
    };
    return [i.code, rel(i.jt), rel(i.jf), i.k >>> 0];
  });
}

/** The BPF program for `profile` on this host, for a process with `o.caps`. */
export function compileSeccomp(profile: SeccompProfile, o: CompileOptions): BpfInsn[] {
  const goArch = HOST_ARCH[o.hostArch ?? process.arch];
  if (goArch !== 'amd64') throw new SeccompError(`seccomp: tsbuild has syscall tables for x86_64 only, not ${o.hostArch ?? process.arch}; run with --security-opt seccomp=unconfined`);
  const defaultErrno = profile.defaultErrnoRet ?? 1;
  const def = action(profile.defaultAction, profile.defaultErrnoRet, defaultErrno);
  const map = profile.archMap?.find((m) => m.architecture === 'SCMP_ARCH_X86_64');
  const arches = new Set(['SCMP_ARCH_X86_64', ...(map?.subArchitectures ?? []), ...(profile.architectures ?? [])]);
  const rules = applicable(profile, o, goArch);
  const t = tables();
  const native = section(rules, t[SCMP_ARCH['SCMP_ARCH_X86_64']!.table]!, def, defaultErrno);
  const x32 = arches.has('SCMP_ARCH_X32') ? section(rules, t['x32']!, def, defaultErrno) : [{ code: RET_K, k: RET.KILL_PROCESS }];
  const x86 = arches.has('SCMP_ARCH_X86') ? section(rules, t['x86']!, def, defaultErrno) : [{ code: RET_K, k: RET.KILL_PROCESS }];
  // Long jumps go through `ja` (32-bit offsets); conditional jumps only skip one instruction.
  const prog: Insn[] = [
    { code: LD_W_ABS, k: OFF_ARCH },
    { code: JEQ, k: AUDIT_ARCH['x86_64']!, jt: 1, jf: 0 },
    { code: JA, k: 0, label: 'to-x86' },
    { code: LD_W_ABS, k: OFF_NR },
    { code: JGE, k: X32_BIT, jt: 0, jf: 1 },
    { code: JA, k: 0, label: 'to-x32' },
    ...native,
    { code: -1, k: 0, label: 'x32' },
    ...x32,
    { code: -1, k: 0, label: 'x86' },
    { code: JEQ, k: AUDIT_ARCH['x86']!, jt: 1, jf: 0 },
    { code: RET_K, k: RET.KILL_PROCESS },
    ...x86,
  ];
  // `ja` targets: patched after assembly (their k is an absolute distance, not limited to 255).
  const out = assemble(prog.map((i) => (i.label?.startsWith('to-') ? { ...i, label: undefined, target: i.label.slice(3) } : i)) as Insn[]);
  const labels = new Map<string, number>();
  let n = 0;
  for (const i of prog) {
    if (i.label && !i.label.startsWith('to-')) labels.set(i.label, n);
    if (i.code !== -1) n++;
  }
  n = 0;
  for (const i of prog) {
    if (i.code === -1) continue;
    if (i.label?.startsWith('to-')) out[n]![3] = labels.get(i.label.slice(3))! - n - 1;
    n++;
  }
  if (out.length > 4096) throw new SeccompError(`seccomp profile compiles to ${out.length} instructions; the kernel takes at most 4096`);
  return out;
}
