/**
 * Platforms as OCI image indexes name them. The host platform is given normalised, as BuildKit's
 * TARGETPLATFORM is: arm64 without its implied `v8` variant (index lookups treat a missing arm64
 * variant as v8), 32-bit arm as `v7`.
 */
import { TsbuildError } from '../errors/index.js';
import type { Descriptor, ImageConfig } from './types.js';

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

const ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };

export function hostPlatform(): Platform {
  const architecture = ARCH[process.arch] ?? process.arch;
  return architecture === 'arm' ? { os: 'linux', architecture, variant: 'v7' } : { os: 'linux', architecture };
}

export function parsePlatform(s: string): Platform {
  const [os, architecture, variant] = s.split('/');
  if (!os || !architecture) throw new TsbuildError('INVALID_PLATFORM', `invalid platform "${s}": use os/arch[/variant], e.g. linux/amd64`);
  return { os, architecture, variant };
}

export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/');
}

/**
 * The platform an image config says it is for (its variant only when it has one), keys in the order
 * descriptors have always been written in (index bytes, so digests, depend on it).
 */
export function configPlatform(c: ImageConfig): Platform {
  return { architecture: c.architecture, os: c.os, ...(c.variant ? { variant: c.variant } : {}) };
}

/** `os/arch[/variant]` as people write it (x86_64, aarch64), normalised as indexes name platforms. */
export function normalizePlatform(s: string): Platform {
  const p = parsePlatform(s.trim().toLowerCase());
  const arch: Record<string, string> = { x86_64: 'amd64', x86: '386', i386: '386', aarch64: 'arm64', armhf: 'arm', armel: 'arm' };
  const architecture = arch[p.architecture] ?? p.architecture;
  const variant = architecture === 'arm64' && p.variant === 'v8' ? undefined : architecture === 'arm' && !p.variant ? (p.architecture === 'armel' ? 'v6' : 'v7') : p.variant;
  return { os: p.os, architecture, ...(variant ? { variant } : {}) };
}

/** Whether an image made for `have` is what `want` asks for (a missing variant matches any). */
export function samePlatform(have: Platform, want: Platform): boolean {
  const a = normalizePlatform(formatPlatform(have));
  const b = normalizePlatform(formatPlatform(want));
  const va = have.variant ? a.variant : undefined;
  const vb = want.variant ? b.variant : undefined;
  return a.os === b.os && a.architecture === b.architecture && (va === undefined || vb === undefined || va === vb);
}

/** The index entry for `want`: exact variant first, then one without a variant (arm64's v8 is implied). */
export function selectManifest(manifests: Descriptor[], want: Platform): Descriptor | undefined {
  const candidates = manifests.filter((m) => m.platform && m.platform.os === want.os && m.platform.architecture === want.architecture);
  const norm = (v?: string) => (want.architecture === 'arm64' && (v === undefined || v === '') ? 'v8' : v ?? '');
  return candidates.find((m) => norm(m.platform!.variant) === norm(want.variant)) ?? (want.variant ? undefined : candidates[0]) ?? candidates.find((m) => !m.platform!.variant);
}
