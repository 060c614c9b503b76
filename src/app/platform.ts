/**
 * `build --platform`: the platform every stage is built for unless its FROM names another. A
 * Dockerfile without RUN steps builds for any platform (its FROM images are pulled for it; COPY needs
 * no emulation). With RUN steps, another platform's programs run under qemu-user (runtime's
 * emulation): when this machine cannot, the build is refused up front with what to install, never
 * built for the wrong platform.
 */
import { UsageError } from '../errors/index.js';
import { formatPlatform, hostPlatform, normalizePlatform, type ImageConfig, type Platform } from '../image/index.js';
import { emulationFor, runsNatively, type EmulationProbe } from '../runtime/index.js';

/** A --platform value, normalised (aarch64 → arm64); a bad one is a usage error naming the form. */
export function platformFlag(value: string): Platform {
  let p: Platform;
  try {
    p = normalizePlatform(value);
  } catch (e) {
    throw new UsageError(`--platform ${value}: ${(e as Error).message}`);
  }
  if (p.os !== 'linux') throw new UsageError(`--platform ${value}: tsbuild runs Linux images; use linux/ARCH (this machine is ${formatPlatform(hostPlatform())})`);
  return p;
}

export function checkPlatform(value: string | undefined, hasRun = true, probe?: EmulationProbe): Platform | undefined {
  if (value === undefined || value === '') return undefined;
  const all = value.split(',').map((v) => v.trim());
  if (all.length > 1) {
    const distinct = new Set(all.map((s) => formatPlatform(normalizePlatform(s))));
    if (distinct.size > 1) {
      throw new UsageError(`--platform ${value}: multi-platform builds (an image index) are not supported yet; build each platform on its own (--platform ${all[0]}, then --platform ${all[1]}, with different tags)`);
    }
  }
  const p = platformFlag(all[0]!);
  // Programs of another platform only run in RUN steps: without any, no emulation is needed.
  if (hasRun) emulationFor(p, probe);
  return p;
}

/**
 * The platform a container runs as, when not this machine's (then under emulation, checked now so
 * that `run` fails before anything is made). Like Docker, an image of another platform that nobody
 * asked for (no --platform) runs with a warning.
 */
export function runPlatform(config: ImageConfig, requested: string | undefined, warn: (m: string) => void, probe?: EmulationProbe): string | undefined {
  if (!config.architecture) return undefined;
  const p: Platform = { os: config.os || 'linux', architecture: config.architecture, ...(config.variant ? { variant: config.variant } : {}) };
  if (runsNatively(p)) return undefined;
  const e = emulationFor(p, probe)!;
  if (requested === undefined) warn(`WARNING: the image's platform (${formatPlatform(p)}) does not match this machine's (${formatPlatform(hostPlatform())}) and no --platform was given: it runs under emulation (${e.via})`);
  return formatPlatform(p);
}
