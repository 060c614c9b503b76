/**
 * `build --platform`: the platform every stage is built for unless its FROM names another. A
 * Dockerfile without RUN steps builds for any platform (its FROM images are pulled for it; COPY needs
 * no emulation). With RUN steps, another platform's programs run under qemu-user (runtime's
 * emulation): when this machine cannot, the build is refused up front with what to install, never
 * built for the wrong platform.
 */
import { UsageError } from '../errors/index.js';
import { configPlatform, formatPlatform, hostPlatform, normalizePlatform, type ImageConfig, type Platform } from '../image/index.js';
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

/**
 * `build --platform a[,b…]`: the platforms to build for (none given: this machine's, as an empty
 * list). Each must be runnable here when the Dockerfile has RUN steps. Several make an image index,
 * which the store names, `--push` pushes and an OCI archive holds; Docker archives, directories
 * and filesystem tars hold one platform's image.
 */
export function checkPlatforms(value: string | undefined, hasRun = true, outputs: { type: string; push: boolean }[] = [], probe?: EmulationProbe): Platform[] {
  if (value === undefined || value.trim() === '') return [];
  const seen = new Map<string, Platform>();
  for (const v of value.split(',').map((x) => x.trim()).filter(Boolean)) {
    const p = platformFlag(v);
    seen.set(formatPlatform(p), p);
  }
  const all = [...seen.values()];
  // Programs of another platform only run in RUN steps: without any, no emulation is needed.
  if (hasRun) for (const p of all) emulationFor(p, probe);
  const single = outputs.find((o) => !o.push && o.type !== 'image' && o.type !== 'oci');
  if (all.length > 1 && single) {
    throw new UsageError(`--platform ${value} with --output type=${single.type}: a ${single.type} output holds one platform's image; build it with one --platform, or write the multi-platform image as type=oci or push it (--push, type=registry)`);
  }
  return all;
}

/**
 * The platform a container runs as, when not this machine's (then under emulation, checked now so
 * that `run` fails before anything is made). Like Docker, an image of another platform that nobody
 * asked for (no --platform) runs with a warning.
 */
export function runPlatform(config: ImageConfig, requested: string | undefined, warn: (m: string) => void, probe?: EmulationProbe): string | undefined {
  if (!config.architecture) return undefined;
  const p: Platform = { ...configPlatform(config), os: config.os || 'linux' };
  if (runsNatively(p)) return undefined;
  const e = emulationFor(p, probe)!;
  if (requested === undefined) warn(`WARNING: the image's platform (${formatPlatform(p)}) does not match this machine's (${formatPlatform(hostPlatform())}) and no --platform was given: it runs under emulation (${e.via})`);
  return formatPlatform(p);
}
