/**
 * Running another platform's programs (`build --platform linux/arm64`, an arm64 image's container) with
 * qemu-user, as BuildKit does with binfmt_misc. Two ways, in this order:
 *
 * 1. The host registered a qemu handler with the F flag (binfmt-support, systemd-binfmt, tonistiigi/binfmt):
 *    every process can already run such programs, in any container, since F opens the interpreter
 *    at registration.
 * 2. Otherwise, a qemu-ARCH-static on this machine is registered for the container alone: binfmt_misc
 *    has an instance per user namespace (Linux 6.7), so the container gets a user namespace of its own
 *    (identity-mapped as root) and the helper registers the handler there. Nothing changes on the host.
 *
 * The magic and mask are qemu's (scripts/qemu-binfmt-conf.sh): an ELF header of that machine type.
 */
import fs from 'node:fs';
import path from 'node:path';
import { TsbuildError } from '../errors/index.js';
import { formatPlatform, hostPlatform, type Platform } from '../image/index.js';

interface Handler {
  qemu: string;
  magic: string;
  mask: string;
}

const ELF64 = '\\x7f\\x45\\x4c\\x46\\x02\\x01\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x02\\x00';
const ELF32 = '\\x7f\\x45\\x4c\\x46\\x01\\x01\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x02\\x00';
const MASK = '\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\x00\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xfe\\xff\\xff\\xff';

/** OCI architecture → qemu's name and ELF header pattern. */
const HANDLERS: Record<string, Handler> = {
  arm64: { qemu: 'aarch64', magic: `${ELF64}\\xb7\\x00`, mask: MASK },
  arm: { qemu: 'arm', magic: `${ELF32}\\x28\\x00`, mask: MASK },
  riscv64: { qemu: 'riscv64', magic: `${ELF64}\\xf3\\x00`, mask: MASK },
  ppc64le: { qemu: 'ppc64le', magic: `${ELF64}\\x15\\x00`, mask: '\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xfc\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xfe\\xff\\xff\\x00' },
  s390x: {
    qemu: 's390x',
    magic: '\\x7f\\x45\\x4c\\x46\\x02\\x02\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x02\\x00\\x16',
    mask: '\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xfc\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xfe\\xff\\xff',
  },
  mips64le: { qemu: 'mips64el', magic: `${ELF64}\\x08\\x00`, mask: '\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\x00\\xfe\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xfe\\xff\\xff\\xff' },
  amd64: { qemu: 'x86_64', magic: `${ELF64}\\x3e\\x00`, mask: MASK },
};

/** Architectures this machine's kernel runs itself (an x86-64 kernel runs i386 programs). */
const NATIVE: Record<string, string[]> = { amd64: ['amd64', '386'], arm64: ['arm64'] };

export interface Emulation {
  platform: string;
  /** binfmt_misc `register` lines to write in the container's own user namespace; empty: the host's handler serves. */
  register: string[];
  /** What runs the programs, for messages and `info`. */
  via: string;
}

export class EmulationError extends TsbuildError {
  constructor(message: string) {
    super('EMULATION_UNAVAILABLE', message);
  }
}

export interface EmulationProbe {
  /** The host's binfmt_misc (default /proc/sys/fs/binfmt_misc). */
  binfmtDir?: string;
  /** Where qemu-ARCH-static is looked for (default: /usr/bin, /usr/local/bin, PATH). */
  searchDirs?: string[];
}

/** Whether this machine runs programs of `p` itself (no emulation needed). */
export function runsNatively(p: Platform): boolean {
  const host = hostPlatform();
  return p.os === host.os && (NATIVE[host.architecture] ?? [host.architecture]).includes(p.architecture);
}

/** The host's handler for a qemu name, when registered, enabled and with the F flag (usable in containers). */
function hostHandler(qemu: string, dir: string): string | undefined {
  try {
    const text = fs.readFileSync(path.join(dir, `qemu-${qemu}`), 'utf8');
    const flags = /^flags: *(\S*)/m.exec(text)?.[1] ?? '';
    return text.startsWith('enabled') && flags.includes('F') ? /^interpreter (\S+)/m.exec(text)?.[1] ?? `qemu-${qemu}` : undefined;
  } catch {
    return undefined;
  }
}

function findStatic(qemu: string, dirs: string[]): string | undefined {
  for (const d of dirs) {
    const f = path.join(d, `qemu-${qemu}-static`);
    try {
      fs.accessSync(f, fs.constants.X_OK);
      return f;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * How programs of platform `p` run here: undefined when natively, else the emulation; an error that
 * says what to install when neither the host nor this machine's qemu can.
 */
export function emulationFor(p: Platform, probe: EmulationProbe = {}): Emulation | undefined {
  if (runsNatively(p)) return undefined;
  const name = formatPlatform(p);
  const h = p.os === 'linux' ? HANDLERS[p.architecture] : undefined;
  if (!h) throw new EmulationError(`platform ${name}: tsbuild cannot run its programs on this ${formatPlatform(hostPlatform())} machine (no qemu-user emulation is known for it); build it on a ${name} machine`);
  const hostVia = hostHandler(h.qemu, probe.binfmtDir ?? '/proc/sys/fs/binfmt_misc');
  if (hostVia) return { platform: name, register: [], via: `${hostVia} (binfmt_misc handler qemu-${h.qemu})` };
  const dirs = probe.searchDirs ?? ['/usr/bin', '/usr/local/bin', ...(process.env.PATH ?? '').split(':').filter(Boolean)];
  const bin = findStatic(h.qemu, dirs);
  if (!bin) {
    throw new EmulationError(
      `platform ${name}: this ${formatPlatform(hostPlatform())} machine needs qemu-user to run its programs, and neither a binfmt_misc handler qemu-${h.qemu} nor qemu-${h.qemu}-static is installed: install qemu-user-static (Debian: apt-get install qemu-user-static), or build on a ${name} machine`,
    );
  }
  // F: the interpreter is opened now, from the host; P: argv[0] is kept (busybox applets need it).
  return { platform: name, register: [`:tsbuild-${h.qemu}:M::${h.magic}:${h.mask}:${bin}:FP`], via: bin };
}

/** Each known platform and how it would run here, for `tsbuild info`. */
export function emulationSummary(probe: EmulationProbe = {}): { platform: string; via?: string; error?: string }[] {
  const host = hostPlatform().architecture;
  const natives = NATIVE[host] ?? [host];
  const archs = [...natives, ...Object.keys(HANDLERS).filter((a) => !natives.includes(a))];
  return archs.map((arch) => {
    const p: Platform = arch === 'arm' ? { os: 'linux', architecture: arch, variant: 'v7' } : { os: 'linux', architecture: arch };
    try {
      const e = emulationFor(p, probe);
      return { platform: formatPlatform(p), via: e ? e.via : 'native' };
    } catch (err) {
      return { platform: formatPlatform(p), error: (err as Error).message };
    }
  });
}
