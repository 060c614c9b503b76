/**
 * Security policy of a container, as Docker's defaults and flags define it: capabilities (the
 * default set, --cap-add/--cap-drop with ALL, --privileged as everything this host can grant),
 * no_new_privs, the seccomp profile, and devices (Docker's default allow-list for the devices
 * cgroup, --device HOST[:CONTAINER][:rwm]). Data only; the helper applies it.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeFileAtomic } from '../fsutil/index.js';
import { TsbuildError } from '../errors/index.js';
import type { DeviceRule } from './cgroups.js';
import { compileSeccomp, defaultSeccompProfile, type BpfInsn, type SeccompProfile } from './seccomp.js';

export class SecurityError extends TsbuildError {
  constructor(message: string, code = 'SECURITY_OPTION') {
    super(code, message);
  }
}

/** Capability names by number (linux/capability.h). */
export const CAP_NAMES = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID', 'CAP_SETUID', 'CAP_SETPCAP',
  'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE', 'CAP_NET_BROADCAST', 'CAP_NET_ADMIN', 'CAP_NET_RAW', 'CAP_IPC_LOCK', 'CAP_IPC_OWNER',
  'CAP_SYS_MODULE', 'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE', 'CAP_SYS_PACCT', 'CAP_SYS_ADMIN', 'CAP_SYS_BOOT', 'CAP_SYS_NICE',
  'CAP_SYS_RESOURCE', 'CAP_SYS_TIME', 'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD', 'CAP_LEASE', 'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL', 'CAP_SETFCAP',
  'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG', 'CAP_WAKE_ALARM', 'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ', 'CAP_PERFMON', 'CAP_BPF',
  'CAP_CHECKPOINT_RESTORE',
];

/** Docker's default capability set (moby's oci/caps/defaults.go). */
export const DEFAULT_CAPS = ['CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID', 'CAP_SETUID', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_NET_RAW', 'CAP_SYS_CHROOT', 'CAP_MKNOD', 'CAP_AUDIT_WRITE', 'CAP_SETFCAP'];

/** `chown`, `CAP_CHOWN`, `Cap_Chown` → `CAP_CHOWN`; `ALL` stays `ALL`. */
export function capName(s: string, flag: string): string {
  const u = s.trim().toUpperCase();
  if (u === 'ALL') return u;
  const name = u.startsWith('CAP_') ? u : `CAP_${u}`;
  if (!CAP_NAMES.includes(name)) throw new SecurityError(`${flag} ${s}: unknown capability; use a name such as NET_ADMIN or SYS_PTRACE (or ALL)`, 'INVALID_CAPABILITY');
  return name;
}

/** The capabilities this process can hand on: its bounding set (root here may lack CAP_SYS_RESOURCE). */
export function hostCaps(status = '/proc/self/status'): Set<string> {
  let mask = (1n << BigInt(CAP_NAMES.length)) - 1n;
  try {
    const m = /^CapBnd:\s*([0-9a-f]+)$/m.exec(fs.readFileSync(status, 'utf8'));
    if (m) mask = BigInt('0x' + m[1]);
  } catch {
    // no /proc: assume every capability
  }
  return new Set(CAP_NAMES.filter((_, i) => (mask >> BigInt(i)) & 1n));
}

export interface SecurityOptions {
  /** Every capability the host can grant, host devices, no seccomp, no masked paths, writable /sys. */
  privileged?: boolean;
  capAdd?: string[];
  capDrop?: string[];
  /** Default: on, unless privileged. */
  noNewPrivileges?: boolean;
  /** Default: Docker's default profile (none when privileged). */
  seccomp?: 'default' | 'unconfined' | SeccompProfile;
  /** Parsed (and checked against the host) by parseDevice when the flags are read. */
  devices?: Device[];
}

/** Docker's rule: ALL in --cap-add starts from every capability, ALL in --cap-drop from none; then drops, then adds. */
export function resolveCaps(o: SecurityOptions, host: Set<string> = hostCaps()): string[] {
  if (o.privileged) return CAP_NAMES.filter((c) => host.has(c));
  const adds = (o.capAdd ?? []).map((c) => capName(c, '--cap-add'));
  const drops = (o.capDrop ?? []).map((c) => capName(c, '--cap-drop'));
  let set = new Set(adds.includes('ALL') ? CAP_NAMES.filter((c) => host.has(c)) : DEFAULT_CAPS);
  if (drops.includes('ALL')) set = new Set();
  for (const d of drops) set.delete(d);
  for (const a of adds) if (a !== 'ALL') set.add(a);
  for (const c of set) {
    if (!host.has(c)) {
      if (adds.includes(c)) throw new SecurityError(`--cap-add ${c}: this host cannot grant it (tsbuild itself does not hold ${c})`, 'INVALID_CAPABILITY');
      set.delete(c);
    }
  }
  return CAP_NAMES.filter((c) => set.has(c));
}

/** A host device given to a container (`--device`), as parseDevice found it on the host. */
export interface Device {
  hostPath: string;
  containerPath: string;
  permissions: string;
  type: 'c' | 'b';
  major: number;
  minor: number;
}

/** Major and minor numbers of a device node's st_rdev (glibc's gnu_dev_major/minor). */
export function deviceNumbers(rdev: number | bigint): { major: number; minor: number } {
  const r = Number(rdev);
  return { major: (r >> 8) & 0xfff, minor: (r & 0xff) | ((r >> 12) & 0xfff00) };
}

/** `--device HOST[:CONTAINER][:rwm]`, checked against the host. */
export function parseDevice(spec: string): Device {
  const parts = spec.split(':');
  let perms = 'rwm';
  if (parts.length > 1 && /^[rwm]+$/.test(parts.at(-1)!)) perms = parts.pop()!;
  if (parts.length > 2 || !parts[0]) throw new SecurityError(`--device ${spec}: use HOST[:CONTAINER][:PERMISSIONS], e.g. /dev/fuse or /dev/sdb:/dev/xvdb:r`);
  const hostPath = parts[0]!;
  const containerPath = parts[1] ?? hostPath;
  if (!hostPath.startsWith('/') || !containerPath.startsWith('/')) throw new SecurityError(`--device ${spec}: paths must be absolute`);
  let st: fs.Stats;
  try {
    st = fs.statSync(hostPath);
  } catch {
    throw new SecurityError(`--device ${spec}: ${hostPath} does not exist on this host`);
  }
  if (!st.isCharacterDevice() && !st.isBlockDevice()) throw new SecurityError(`--device ${spec}: ${hostPath} is not a device node`);
  return { hostPath, containerPath, permissions: perms, type: st.isCharacterDevice() ? 'c' : 'b', ...deviceNumbers(st.rdev) };
}

/** Docker's default device policy: mknod of anything, access only to the standard nodes and ptys. */
export const DEFAULT_DEVICE_RULES: DeviceRule[] = [
  { type: 'c', major: '*', minor: '*', access: 'm' },
  { type: 'b', major: '*', minor: '*', access: 'm' },
  { type: 'c', major: 1, minor: 3, access: 'rwm' },
  { type: 'c', major: 1, minor: 5, access: 'rwm' },
  { type: 'c', major: 1, minor: 7, access: 'rwm' },
  { type: 'c', major: 1, minor: 8, access: 'rwm' },
  { type: 'c', major: 1, minor: 9, access: 'rwm' },
  { type: 'c', major: 5, minor: 0, access: 'rwm' },
  { type: 'c', major: 5, minor: 1, access: 'rwm' },
  { type: 'c', major: 5, minor: 2, access: 'rwm' },
  { type: 'c', major: 136, minor: '*', access: 'rwm' },
];

/** The devices cgroup rules: everything when privileged, else the defaults plus each --device. */
export function deviceRules(o: SecurityOptions): DeviceRule[] {
  if (o.privileged) return [{ type: 'a', major: '*', minor: '*', access: 'rwm' }];
  return [...DEFAULT_DEVICE_RULES, ...(o.devices ?? []).map((d) => ({ type: d.type, major: d.major, minor: d.minor, access: d.permissions }))];
}

/** The seccomp program for these options and capabilities, or undefined for none. */
export function seccompProgram(o: SecurityOptions, caps: string[], cacheDir?: string): BpfInsn[] | undefined {
  if (o.privileged || o.seccomp === 'unconfined') return undefined;
  const profile = o.seccomp === undefined || o.seccomp === 'default' ? defaultSeccompProfile() : o.seccomp;
  if (!cacheDir) return compileSeccomp(profile, { caps: new Set(caps) });
  // Compiling the default profile takes ~12 ms, a twentieth of a container's start: programs are
  // kept by the digest of everything they depend on (profile, capabilities, architecture, kernel).
  const key = crypto.createHash('sha256').update(JSON.stringify([profile, [...caps].sort(), process.arch, os.release(), COMPILER_VERSION])).digest('hex');
  const file = path.join(cacheDir, `${key}.json`);
  try {
    const cached = JSON.parse(fs.readFileSync(file, 'utf8')) as unknown;
    if (Array.isArray(cached) && cached.length > 0 && cached.every((i) => Array.isArray(i) && i.length === 4 && i.every((n) => Number.isInteger(n)))) return cached as BpfInsn[];
    throw new Error('not a program');
  } catch {
    const prog = compileSeccomp(profile, { caps: new Set(caps) });
    try {
      fs.mkdirSync(cacheDir, { recursive: true });
      writeFileAtomic(file, JSON.stringify(prog));
    } catch {
      // a cache that cannot be written only costs the compile next time
    }
    return prog;
  }
}

/** Changes whenever the compiler's output for the same inputs would change. */
const COMPILER_VERSION = 1;

/** `--security-opt` values: seccomp=unconfined|PROFILE.json, no-new-privileges[=true|false]. */
export function parseSecurityOpts(values: string[], load: (file: string) => SeccompProfile): Pick<SecurityOptions, 'seccomp' | 'noNewPrivileges'> {
  const out: Pick<SecurityOptions, 'seccomp' | 'noNewPrivileges'> = {};
  for (const v of values) {
    const i = v.search(/[=:]/);
    const key = i < 0 ? v : v.slice(0, i);
    const val = i < 0 ? undefined : v.slice(i + 1);
    if (key === 'no-new-privileges') {
      if (val !== undefined && val !== 'true' && val !== 'false') throw new SecurityError(`--security-opt ${v}: use no-new-privileges, no-new-privileges=true or =false`);
      out.noNewPrivileges = val !== 'false';
    } else if (key === 'seccomp') {
      if (!val) throw new SecurityError(`--security-opt ${v}: use seccomp=unconfined or seccomp=PROFILE.json`);
      out.seccomp = val === 'unconfined' ? 'unconfined' : load(val);
    } else if (key === 'apparmor' || key === 'label') {
      // AppArmor and SELinux are not used by tsbuild; accepted so Docker command lines keep working.
    } else throw new SecurityError(`--security-opt ${v}: known options are seccomp=…, no-new-privileges, apparmor=…, label=…`);
  }
  return out;
}
