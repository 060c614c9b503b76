/**
 * `build --platform`: a Dockerfile without RUN steps builds for any platform (its FROM images are
 * pulled for it; COPY needs no emulation). With RUN steps, another platform's programs would have to
 * run here: refused with the reason (whether a binfmt_misc handler could run them), never silently
 * ignored.
 */
import fs from 'node:fs';
import { UsageError } from '../errors/index.js';
import { formatPlatform, hostPlatform, parsePlatform } from '../image/index.js';

const QEMU: Record<string, string> = { arm64: 'aarch64', amd64: 'x86_64', arm: 'arm', '386': 'i386', ppc64le: 'ppc64le', s390x: 's390x', riscv64: 'riscv64', mips64le: 'mips64el' };

/** Is a binfmt_misc handler for that architecture registered and enabled (qemu-user)? A seam for tests. */
export function emulationFor(arch: string, dir = '/proc/sys/fs/binfmt_misc'): boolean {
  const q = QEMU[arch] ?? arch;
  try {
    return fs.readFileSync(`${dir}/qemu-${q}`, 'utf8').startsWith('enabled');
  } catch {
    return false;
  }
}

export function checkPlatform(value: string | undefined, hasRun = true, binfmtDir?: string): void {
  if (value === undefined || value === '') return;
  const host = hostPlatform();
  const all = value.split(',').map((v) => v.trim());
  const same = (s: string) => {
    const p = parsePlatform(s);
    return p.os === host.os && p.architecture === host.architecture && (p.variant === undefined || p.variant === host.variant);
  };
  if (all.length > 1 && !all.every(same)) {
    throw new UsageError(`--platform ${value}: multi-platform builds are not supported yet; tsbuild builds for this machine (${formatPlatform(host)}): build each platform on a machine of that platform`);
  }
  for (const s of all) {
    if (same(s) || !hasRun) continue;
    const p = parsePlatform(s);
    const why = emulationFor(p.architecture, binfmtDir)
      ? `emulation for ${p.architecture} is registered here (binfmt_misc), but tsbuild does not build for other platforms yet`
      : `this machine cannot run ${p.architecture} programs (no binfmt_misc handler for qemu-${QEMU[p.architecture] ?? p.architecture} is registered)`;
    throw new UsageError(`--platform ${s}: the Dockerfile has RUN steps, this machine is ${formatPlatform(host)} and ${why}; build on a ${formatPlatform(p)} machine`);
  }
}
